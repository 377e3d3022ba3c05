//! The kafka connector.

mod source;

pub use source::*;
