//! The built-in emulator as a connector: its settings (the `emulator:events=..,seed=..` form of
//! `--from` and of job files) and the [`Source`](crate::connectors::Source) adapter over the
//! generator in [`crate::emulator`], which knows nothing about sources.

mod connector;
mod source;

use std::fmt;
use std::io;
use std::path::Path;

pub use self::connector::EmulatorConnector;
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

/// Why an emulator spec was refused. Every variant carries the whole spec as given, so the
/// one-line message says which `--from` or job-file value to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("emulator spec {spec:?}: expected key=value, got {item:?}")]
    NotKeyValue { spec: String, item: String },
    #[error("emulator spec {spec:?}: key {key:?} given twice")]
    Repeated { spec: String, key: String },
    #[error(
        "emulator spec {spec:?}: unknown key {key:?} (expected seed, events, rate, universe, partitions)"
    )]
    UnknownKey { spec: String, key: String },
    #[error("emulator spec {spec:?}: {key} must be {expected}, got {value:?}")]
    BadValue {
        spec: String,
        key: String,
        expected: String,
        value: String,
    },
}

/// A bad spec is bad configuration, whichever connector code path met it.
impl From<SpecError> for SourceError {
    fn from(error: SpecError) -> Self {
        SourceError::Config(error.to_string())
    }
}

impl EmulatorSpec {
    /// Parses `events=1000,seed=7,rate=500,universe=20000,partitions=4`. Every key is
    /// optional (missing ones keep their default); an `emulator:` prefix is accepted;
    /// `events` and `rate` also accept `none` (endless / unlimited).
    pub fn parse(s: &str) -> Result<Self, SpecError> {
        let body = s.trim();
        let body = body.strip_prefix("emulator:").unwrap_or(body).trim();
        let mut spec = EmulatorSpec::default();
        let mut seen: Vec<&str> = Vec::new();
        for item in body.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(SpecError::NotKeyValue {
                    spec: s.into(),
                    item: item.into(),
                });
            };
            let (key, value) = (key.trim(), value.trim());
            if seen.contains(&key) {
                return Err(SpecError::Repeated {
                    spec: s.into(),
                    key: key.into(),
                });
            }
            let bad = |expected: &str| SpecError::BadValue {
                spec: s.into(),
                key: key.into(),
                expected: expected.into(),
                value: value.into(),
            };
            let int = |expected: &str| {
                value
                    .replace('_', "")
                    .parse::<u64>()
                    .map_err(|_| bad(expected))
            };
            let none = value.eq_ignore_ascii_case("none");
            match key {
                "seed" => spec.seed = int("a non-negative integer")?,
                "events" if none => spec.events = None,
                "events" => spec.events = Some(int("a non-negative integer or `none`")?),
                "rate" if none => spec.rate = None,
                "rate" => {
                    let expected = "a positive number of events per second or `none`";
                    match value.parse::<f64>() {
                        Ok(rate) if rate.is_finite() && rate > 0.0 => spec.rate = Some(rate),
                        _ => return Err(bad(expected)),
                    }
                }
                "universe" => {
                    let expected = "a positive integer";
                    spec.universe = match int(expected)? {
                        0 => return Err(bad(expected)),
                        universe => universe,
                    }
                }
                "partitions" => {
                    let expected = format!("an integer between 1 and {MAX_PARTITIONS}");
                    spec.partitions = match u32::try_from(int(&expected)?) {
                        Ok(partitions @ 1..=MAX_PARTITIONS) => partitions,
                        _ => return Err(bad(&expected)),
                    }
                }
                _ => {
                    return Err(SpecError::UnknownKey {
                        spec: s.into(),
                        key: key.into(),
                    });
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
            match EmulatorSpec::parse(bad).map_err(|e| e.to_string()) {
                Err(msg) => {
                    assert!(msg.contains(needle), "{bad}: {msg}");
                    assert!(msg.contains(bad), "{bad}: message names the input: {msg}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert_eq!(
            EmulatorSpec::parse("rate=0"),
            Err(SpecError::BadValue {
                spec: "rate=0".into(),
                key: "rate".into(),
                expected: "a positive number of events per second or `none`".into(),
                value: "0".into(),
            })
        );
        // `--from` reports it as bad configuration, like every other source's settings.
        let error = SourceError::from(EmulatorSpec::parse("speed=3").unwrap_err());
        assert!(matches!(error, SourceError::Config(msg) if msg.contains("speed=3")));
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
