//! The file connector.

mod source;

pub use source::*;
