//! The built-in emulator's registry entry: its `emulator:...` and `[[source]] type =
//! "emulator"` forms.

use serde::Deserialize;

use super::{EmulatorSource, EmulatorSpec};
use crate::connectors::{
    JobContext, Source, SourceError, SourceSettings, SourceSpec, StartedSource,
};

pub struct EmulatorConnector;

/// A job file's `[[source]] type = "emulator"`; a missing key keeps its default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    seed: Option<u64>,
    events: Option<u64>,
    rate: Option<f64>,
    universe: Option<u64>,
    partitions: Option<u32>,
}

impl crate::connectors::Connector for EmulatorConnector {
    fn name(&self) -> &'static str {
        "emulator"
    }

    fn url_form(&self) -> &'static str {
        "emulator:events=<n>,seed=<s>,rate=<per-second>"
    }

    fn parse_url(&self, url: &str) -> Result<SourceSpec, SourceError> {
        Ok(SourceSpec::new(match url {
            "emulator" => EmulatorSpec::default(),
            settings => EmulatorSpec::parse(settings)?,
        }))
    }

    fn parse_section(&self, section: toml::Table) -> Result<SourceSpec, SourceError> {
        let Section {
            seed,
            events,
            rate,
            universe,
            partitions,
        } = crate::connectors::section("emulator", section)?;
        let default = EmulatorSpec::default();
        Ok(SourceSpec::new(EmulatorSpec {
            seed: seed.unwrap_or(default.seed),
            events: events.or(default.events),
            rate: rate.or(default.rate),
            universe: universe.unwrap_or(default.universe),
            partitions: partitions.unwrap_or(default.partitions),
        }))
    }
}

impl SourceSettings for EmulatorSpec {
    fn is_bounded(&self) -> bool {
        self.events.is_some()
    }

    fn start(&self, _job: &JobContext) -> Result<Box<dyn StartedSource>, SourceError> {
        Ok(Box::new(self.clone()))
    }
}

impl StartedSource for EmulatorSpec {
    fn open(&self, worker: usize, peers: usize) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(EmulatorSource::new(self, worker, peers)))
    }
}
