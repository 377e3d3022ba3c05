//! The kinesis connector.

mod source;

pub use source::*;
