//! The generated events as files, one per stream.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::Emulator;

/// Writes events 0..`events` of `emulator` in order to `DIR/pin.jsonl`, `geo.jsonl` and
/// `user.jsonl`, one JSON object per line: the files `pinstream emulate --to file:` makes and the
/// benchmarks read.
pub fn write_jsonl(emulator: &Emulator, events: u64, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let open = |name: &str| -> io::Result<BufWriter<std::fs::File>> {
        Ok(BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(dir.join(name))?,
        ))
    };
    let (mut pin, mut geo, mut user) =
        (open("pin.jsonl")?, open("geo.jsonl")?, open("user.jsonl")?);
    for seq in 0..events {
        let event = emulator.event(seq);
        for (w, bytes) in [
            (&mut pin, &event.pin),
            (&mut geo, &event.geo),
            (&mut user, &event.user),
        ] {
            w.write_all(bytes)?;
            w.write_all(b"\n")?;
        }
    }
    for mut w in [pin, geo, user] {
        w.flush()?;
    }
    Ok(())
}
