//! The http connector: `--from http` or `[[source]] type = "http"`, the messages sent to the
//! engine's own HTTP server (`POST /topics/..`, `PUT /streams/..`, see `serve::ingest`).
//! Its live object is the [`IngestQueue`] between the server's handlers and the workers,
//! made when the job starts ([`StartedSource::ingest`] hands it to the server).

mod producer;
mod source;

use serde::Deserialize;

pub use source::*;

use crate::connectors::{
    JobContext, Produce, Source, SourceError, SourceSettings, SourceSpec, StartedSource,
};

pub struct Connector;

/// The http source's settings: none (it reads what the job's HTTP server receives).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {}

/// The request bodies `emulate --to http://` sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum HttpFormat {
    /// Confluent REST Proxy: `POST /topics/<prefix>.<stream>`.
    #[default]
    Proxy,
    /// API Gateway: `PUT /streams/streaming-<prefix>-<stream>/record`.
    Kinesis,
}

impl super::Connector for Connector {
    fn name(&self) -> &'static str {
        "http"
    }

    fn url_form(&self) -> &'static str {
        "http"
    }

    fn producer_form(&self) -> Option<&'static str> {
        Some("http://<host:port>[/<prefix>]")
    }

    fn parse_url(&self, url: &str) -> Result<SourceSpec, SourceError> {
        if url != "http" {
            return Err(SourceError::Config(format!(
                "http source `{url}`: takes no address (--from http reads this job's own HTTP server)"
            )));
        }
        Ok(SourceSpec::new(HttpSettings {}))
    }

    fn parse_section(&self, section: toml::Table) -> Result<SourceSpec, SourceError> {
        Ok(SourceSpec::new(super::section::<HttpSettings>(
            "http", section,
        )?))
    }

    fn produce(&self, target: &Produce<'_>) -> Option<Result<u64, SourceError>> {
        Some(producer::send_events(target))
    }
}

impl SourceSettings for HttpSettings {
    fn is_bounded(&self) -> bool {
        false
    }

    fn start(&self, _job: &JobContext) -> Result<Box<dyn StartedSource>, SourceError> {
        Ok(Box::new(IngestQueue::default()))
    }
}

impl StartedSource for IngestQueue {
    fn open(&self, worker: usize, peers: usize) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(HttpSource::new(self, worker, peers)))
    }

    fn ingest(&self) -> Option<&IngestQueue> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_settings_and_the_queue_made_at_start() {
        let spec = SourceSpec::parse("http").unwrap();
        assert!(!spec.is_bounded());
        assert!(SourceSpec::parse("http://x").is_err());
        let started = spec.start(&JobContext::default()).unwrap();
        assert!(started.ingest().is_some());
        let section: toml::Table = toml::from_str("type = \"http\"").unwrap();
        assert_eq!(SourceSpec::from_section(section).unwrap(), spec);
    }
}
