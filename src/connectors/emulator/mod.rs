//! The built-in emulator as a source.

pub use crate::emulator::*;
