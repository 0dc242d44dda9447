//! Stream analytics (Kinesis Data Analytics for SQL's job) on Apache DataFusion: records of
//! a stream become rows by its `[[analytics.inputs]]` schema, one-shot SQL reads a stream's
//! retained records as a table, and applications run KDA-dialect continuous queries whose
//! windows close on the inputs' watermark and whose rows go to output streams.

pub mod discover;
