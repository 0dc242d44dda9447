//! Process wiring shared by both binaries: what keeps an operator's mistake from costing data.

pub mod dir_lock;
