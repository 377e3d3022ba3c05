//! `pinstream emulate --to file:<dir>`: `<dir>/pin.jsonl`, `geo.jsonl` and `user.jsonl`.

use crate::connectors::emulator;
use crate::connectors::{Produce, SourceError};

/// Writes the events as JSON Lines, one file per stream; returns how many events.
pub fn write_files(target: &Produce<'_>) -> Result<u64, SourceError> {
    let dir = target.to.strip_prefix("file:").unwrap_or(target.to);
    std::fs::create_dir_all(dir).map_err(|source| SourceError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let written = emulator::write_files(target.events, dir.as_ref()).map_err(|source| {
        SourceError::Write {
            target: dir.to_owned(),
            source,
        }
    })?;
    (target.progress)(written);
    Ok(written)
}
