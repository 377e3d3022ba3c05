//! pinstream: pin/geo/user posting events -> cleaned, deduplicated, exactly-once Delta tables,
//! on timely dataflow.

pub mod clean;
pub mod source;
pub mod stream;
