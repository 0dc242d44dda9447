//! Process wiring: what keeps an operator's mistake from costing data (folder locks), and
//! the commands of the binaries beyond parsing their arguments.

pub mod cdn_commands;
pub mod dir_lock;
pub mod dns_serve;
pub mod logs;
pub mod sql_client;
