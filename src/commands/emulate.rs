//! `pinstream emulate`: the posting emulator as a command.

use super::Error;
use crate::config::EmulateArgs;
use crate::source::SourceError;
use crate::source::emulator::{self, EmulatorSpec};

pub fn emulate(args: &EmulateArgs) -> Result<(), Error> {
    let spec = EmulatorSpec {
        seed: args.seed,
        events: Some(args.events),
        universe: args.universe,
        ..EmulatorSpec::default()
    };
    let Some(dir) = args.to.strip_prefix("file:") else {
        return Err(SourceError::Config(format!(
            "emulate --to `{}`: expected file:<dir>",
            args.to
        ))
        .into());
    };
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        context: dir.to_owned(),
        source,
    })?;
    let written = emulator::write_files(&spec, dir.as_ref()).map_err(|source| Error::Io {
        context: format!("writing to {dir}"),
        source,
    })?;
    tracing::info!(events = written, dir, "emulated events written");
    Ok(())
}
