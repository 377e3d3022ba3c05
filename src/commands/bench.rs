//! `pinstream bench`: throughput of the whole pipeline against serde_json alone.

use super::Error;
use crate::config::BenchArgs;

pub fn bench(_args: &BenchArgs) -> Result<(), Error> {
    Ok(())
}
