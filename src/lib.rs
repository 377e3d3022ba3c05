//! pinstream: pin/geo/user posting events -> cleaned, deduplicated, exactly-once Delta tables,
//! on timely dataflow.

pub mod analytics;
pub mod clean;
pub mod commands;
pub mod config;
pub mod dataflow;
pub mod serve;
pub mod sink;
pub mod source;
pub mod stream;
pub mod table;

/// Now, in microseconds since the Unix epoch (UTC).
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as i64)
        .unwrap_or(0)
}
