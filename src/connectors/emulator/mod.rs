//! The built-in emulator as a connector: its settings (the `emulator:events=..,seed=..` form of
//! `--from` and of job files) and the [`Source`](crate::connectors::Source) adapter over the
//! generator in [`crate::emulator`], which knows nothing about sources.

mod source;

use std::fmt;
use std::io;
use std::path::Path;

pub use self::source::EmulatorSource;
use crate::connectors::SourceError;
pub use crate::emulator::{Emulator, Event, Parameters};

/// Emulator settings (all part of the stream's identity except `rate`).
#[derive(Clone, Debug, PartialEq)]
pub struct EmulatorSpec {
    pub seed: u64,
    /// Number of events; `None` = endless.
    pub events: Option<u64>,
    /// Events per second over all partitions; `None` = as fast as possible.
    pub rate: Option<f64>,
    /// Number of distinct posts sampled from.
    pub universe: u64,
    /// Event `i` belongs to partition `i % partitions`.
    pub partitions: u32,
}

impl Default for EmulatorSpec {
    fn default() -> Self {
        let Parameters { seed, universe } = Parameters::default();
        EmulatorSpec {
            seed,
            events: None,
            rate: None,
            universe,
            partitions: 4,
        }
    }
}

/// Largest accepted partition count (each one is a Delta `txn` appId).
const MAX_PARTITIONS: u32 = 4096;

impl EmulatorSpec {
    /// Parses `events=1000,seed=7,rate=500,universe=20000,partitions=4`. Every key is
    /// optional (missing ones keep their default); an `emulator:` prefix is accepted;
    /// `events` and `rate` also accept `none` (endless / unlimited).
    pub fn parse(s: &str) -> Result<Self, SourceError> {
        let err = |msg: String| SourceError::Config(format!("emulator spec {s:?}: {msg}"));
        let body = s.trim();
        let body = body.strip_prefix("emulator:").unwrap_or(body).trim();
        let mut spec = EmulatorSpec::default();
        let mut seen: Vec<&str> = Vec::new();
        for item in body.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(err(format!("expected key=value, got {item:?}")));
            };
            let (key, value) = (key.trim(), value.trim());
            if seen.contains(&key) {
                return Err(err(format!("key {key:?} given twice")));
            }
            let int = |what: &str| -> Result<u64, SourceError> {
                value
                    .replace('_', "")
                    .parse::<u64>()
                    .map_err(|_| err(format!("{key} must be {what}, got {value:?}")))
            };
            match key {
                "seed" => spec.seed = int("a non-negative integer")?,
                "events" => {
                    spec.events = if value.eq_ignore_ascii_case("none") {
                        None
                    } else {
                        Some(int("a non-negative integer or `none`")?)
                    }
                }
                "rate" => {
                    spec.rate = if value.eq_ignore_ascii_case("none") {
                        None
                    } else {
                        match value.parse::<f64>() {
                            Ok(r) if r.is_finite() && r > 0.0 => Some(r),
                            _ => {
                                return Err(err(format!(
                                    "rate must be a positive number of events per second or `none`, got {value:?}"
                                )));
                            }
                        }
                    }
                }
                "universe" => {
                    spec.universe = match int("a positive integer")? {
                        0 => return Err(err("universe must be at least 1".into())),
                        u => u,
                    }
                }
                "partitions" => {
                    let p = int("a positive integer")?;
                    if p == 0 || p > u64::from(MAX_PARTITIONS) {
                        return Err(err(format!(
                            "partitions must be between 1 and {MAX_PARTITIONS}, got {value:?}"
                        )));
                    }
                    spec.partitions = p as u32;
                }
                _ => {
                    return Err(err(format!(
                        "unknown key {key:?} (expected seed, events, rate, universe, partitions)"
                    )));
                }
            }
            seen.push(key);
        }
        Ok(spec)
    }
}

/// The canonical form, which [`EmulatorSpec::parse`] reads back.
impl fmt::Display for EmulatorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed={}", self.seed)?;
        if let Some(n) = self.events {
            write!(f, ",events={n}")?;
        }
        if let Some(r) = self.rate {
            write!(f, ",rate={r}")?;
        }
        write!(
            f,
            ",universe={},partitions={}",
            self.universe, self.partitions
        )
    }
}

/// The generator needs only what decides the bytes: the seed and the universe. Partitions,
/// rate and event count are how the connector hands those bytes out.
impl From<&EmulatorSpec> for Parameters {
    fn from(spec: &EmulatorSpec) -> Self {
        Parameters {
            seed: spec.seed,
            universe: spec.universe,
        }
    }
}

/// `pinstream emulate --to file:DIR`: writes events 0..n of the spec in order to
/// `DIR/pin.jsonl`, `geo.jsonl` and `user.jsonl` (see [`crate::emulator::write_jsonl`]) and
/// returns how many it wrote. An endless spec (`events = None`) is refused: it would never end.
pub fn write_files(spec: &EmulatorSpec, dir: &Path) -> io::Result<u64> {
    let Some(events) = spec.events else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the emulator needs events=<n> to write files",
        ));
    };
    crate::emulator::write_jsonl(&Emulator::new(spec), events, dir)?;
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Stream;

    fn spec(s: &str) -> EmulatorSpec {
        EmulatorSpec::parse(s).unwrap()
    }

    #[test]
    fn spec_parsing() {
        assert_eq!(EmulatorSpec::parse("").unwrap(), EmulatorSpec::default());
        let full =
            EmulatorSpec::parse("events=1000,seed=7,rate=500,universe=20000,partitions=4").unwrap();
        assert_eq!(
            full,
            EmulatorSpec {
                seed: 7,
                events: Some(1000),
                rate: Some(500.0),
                universe: 20_000,
                partitions: 4
            }
        );
        assert_eq!(EmulatorSpec::parse(&full.to_string()).unwrap(), full);
        assert_eq!(
            EmulatorSpec::parse("emulator: seed=3 , events=none, rate=0.5").unwrap(),
            EmulatorSpec {
                seed: 3,
                rate: Some(0.5),
                ..EmulatorSpec::default()
            }
        );
        for (bad, needle) in [
            ("events=-1", "events"),
            ("events=ten", "events"),
            ("seed=1.5", "seed"),
            ("rate=0", "rate"),
            ("rate=-3", "rate"),
            ("rate=inf", "rate"),
            ("universe=0", "universe"),
            ("partitions=0", "partitions"),
            ("partitions=100000", "partitions"),
            ("speed=3", "unknown key \"speed\""),
            ("seed", "key=value"),
            ("seed=1,seed=2", "twice"),
        ] {
            match EmulatorSpec::parse(bad) {
                Err(SourceError::Config(msg)) => {
                    assert!(msg.contains(needle), "{bad}: {msg}");
                    assert!(msg.contains(bad), "{bad}: message names the input: {msg}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn write_files_writes_one_line_per_event_and_stream() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec("events=57,seed=12");
        assert_eq!(write_files(&spec, dir.path()).unwrap(), 57);
        let emulator = Emulator::new(&spec);
        for stream in Stream::ALL {
            let text = std::fs::read(dir.path().join(format!("{stream}.jsonl"))).unwrap();
            let lines: Vec<&[u8]> = text
                .strip_suffix(b"\n")
                .unwrap()
                .split(|&b| b == b'\n')
                .collect();
            assert_eq!(lines.len(), 57, "{stream}");
            for (seq, line) in lines.into_iter().enumerate() {
                assert_eq!(line, emulator.event(seq as u64).message(stream));
            }
        }
        let endless = EmulatorSpec::default();
        assert!(write_files(&endless, dir.path()).is_err());
    }
}
