//! The http connector.

mod source;

pub use source::*;
