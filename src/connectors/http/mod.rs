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

/// The http source's settings: the limits that keep a flood of clients from growing the
/// engine's memory (it reads what the job's HTTP server receives). A request past a limit is
/// refused before its body is read, or as soon as the streamed body passes it, and nothing of
/// it is stored; overload answers carry `Retry-After` (see `serve::ingest`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Requests admitted at once: being read, queued, or waiting for their commit. One more
    /// gets 429: without it, hundreds of connections each hold a body and a task.
    pub max_in_flight: usize,
    /// Bytes of request bodies being read plus messages queued for the workers. A request
    /// whose body would pass it gets 503: the ingest's memory stays under about twice this
    /// (a body and its messages while one is parsed).
    pub queue_bytes: u64,
    /// Messages queued for the workers; past it, 503 (a sink slower than the clients).
    pub queue_messages: usize,
    /// A larger body gets 413: from its `Content-Length` before a byte is read, or once a
    /// chunked body passes it (reading stops there).
    pub max_body_bytes: u64,
    /// Messages one request may carry; more gets 413 and nothing of it is queued.
    pub max_records: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_in_flight: 1024,
            queue_bytes: 256 << 20,
            queue_messages: 100_000,
            max_body_bytes: 16 << 20,
            max_records: 10_000,
        }
    }
}

impl HttpSettings {
    /// `http` or `http:max_in_flight=64,queue_bytes=1048576,...` (the job file's keys).
    fn parse(url: &str) -> Result<HttpSettings, SourceError> {
        let Some(items) = url.strip_prefix("http:") else {
            return Ok(HttpSettings::default());
        };
        let mut section = toml::Table::new();
        for item in items.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(SourceError::Config(format!(
                    "http source `{url}`: `{item}` is not key=value"
                )));
            };
            let value: i64 = value.trim().replace('_', "").parse().map_err(|_| {
                SourceError::Config(format!(
                    "http source `{url}`: `{key}` takes a non-negative integer, not `{value}`"
                ))
            })?;
            section.insert(key.trim().to_owned(), toml::Value::Integer(value));
        }
        super::section("http", section)
    }
}

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
        "http[:max_in_flight=<n>,queue_bytes=<n>,queue_messages=<n>,max_body_bytes=<n>,max_records=<n>]"
    }

    fn producer_form(&self) -> Option<&'static str> {
        Some("http://<host:port>[/<prefix>]")
    }

    fn parse_url(&self, url: &str) -> Result<SourceSpec, SourceError> {
        let own_server = url == "http" || (url.starts_with("http:") && !url.starts_with("http://"));
        if !own_server {
            return Err(SourceError::Config(format!(
                "http source `{url}`: takes no address (--from http reads this job's own HTTP server)"
            )));
        }
        Ok(SourceSpec::new(HttpSettings::parse(url)?))
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

    fn start(&self, job: &JobContext) -> Result<Box<dyn StartedSource>, SourceError> {
        Ok(Box::new(IngestQueue::new(self.clone(), job)))
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

    #[test]
    fn limits_in_the_url_and_the_job_file() {
        let small = HttpSettings {
            max_in_flight: 8,
            queue_bytes: 65_536,
            ..HttpSettings::default()
        };
        assert_eq!(
            SourceSpec::parse("http:max_in_flight=8, queue_bytes=65_536").unwrap(),
            SourceSpec::new(small.clone())
        );
        let section: toml::Table =
            toml::from_str("type = \"http\"\nmax_in_flight = 8\nqueue_bytes = 65536").unwrap();
        assert_eq!(
            SourceSpec::from_section(section).unwrap(),
            SourceSpec::new(small)
        );
        for bad in [
            "http:bogus=1",
            "http:max_in_flight=many",
            "http:max_in_flight",
        ] {
            assert!(SourceSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
