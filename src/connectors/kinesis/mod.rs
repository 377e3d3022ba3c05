//! The kinesis connector: `kinesis://<prefix>[?endpoint=..&region=..&start=..]` or a job
//! file's `[[source]] type = "kinesis"` (prefix or streams, region, endpoint, start).

mod producer;
mod source;

use std::fmt;

use aws_sdk_kinesis::Client;
use serde::Deserialize;

pub use source::*;

use crate::connectors::{
    JobContext, JobSettings, Produce, Source, SourceError, SourceSettings, SourceSpec,
    StartedSource,
};
use crate::stream::Stream;

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// Which streams to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Streams {
    /// `streaming-<prefix>-pin`, `-geo`, `-user`.
    Prefix(String),
    /// Named streams; each carries its stream as a name token.
    List(Vec<String>),
}

impl Streams {
    pub fn resolve(&self) -> Result<Vec<(String, Stream)>, SourceError> {
        match self {
            Streams::Prefix(prefix) => Ok(Stream::ALL
                .iter()
                .map(|s| (stream_name(prefix, *s), *s))
                .collect()),
            Streams::List(names) => names
                .iter()
                .map(|name| match Stream::from_name_token(name) {
                    Some(stream) => Ok((name.clone(), stream)),
                    None => Err(SourceError::Config(format!(
                        "kinesis stream `{name}`: its name must carry the stream (pin, geo or user) as a token, e.g. streaming-abc-pin"
                    ))),
                })
                .collect(),
        }
    }
}

/// `streaming-<prefix>-<stream>`.
pub fn stream_name(prefix: &str, stream: Stream) -> String {
    format!("streaming-{prefix}-{stream}")
}

/// Where a shard with no stored position starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartAt {
    #[default]
    TrimHorizon,
    /// Records that arrive after the job opened the shard.
    Latest,
    /// Records that arrived at or after this time (milliseconds since the epoch).
    Timestamp(i64),
}

impl StartAt {
    /// `trim_horizon`, `latest`, or a timestamp as the Kafka source takes it.
    pub fn parse(text: &str) -> Result<StartAt, SourceError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "trim_horizon" | "earliest" => return Ok(StartAt::TrimHorizon),
            "latest" => return Ok(StartAt::Latest),
            _ => {}
        }
        match crate::connectors::kafka::StartFrom::parse(text) {
            Ok(crate::connectors::kafka::StartFrom::Timestamp(ms)) => Ok(StartAt::Timestamp(ms)),
            _ => Err(SourceError::Config(format!(
                "kinesis start `{text}`: expected trim_horizon, latest, a timestamp (2024-05-01T00:00:00Z) or epoch milliseconds"
            ))),
        }
    }
}

impl fmt::Display for StartAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartAt::TrimHorizon => f.write_str("trim_horizon"),
            StartAt::Latest => f.write_str("latest"),
            StartAt::Timestamp(ms) => write!(f, "{ms}"),
        }
    }
}

/// A Kinesis source as configured (`--from kinesis://...` or a job file's `[[source]]`).
#[derive(Clone, Debug, PartialEq)]
pub struct KinesisSpec {
    pub streams: Streams,
    /// Region; the standard chain (AWS_REGION, profile) when `None`.
    pub region: Option<String>,
    /// Endpoint URL; AWS_ENDPOINT_URL_KINESIS / AWS_ENDPOINT_URL when `None`.
    pub endpoint: Option<String>,
    pub start: StartAt,
    /// Report `Exhausted` once the shards listed at open are caught up (`--until-done`).
    pub stop_at_end: bool,
}

impl KinesisSpec {
    /// Parses `kinesis://<prefix>[?endpoint=<url>&region=<r>&start=trim_horizon|latest|<time>]`.
    pub fn parse(text: &str) -> Result<KinesisSpec, SourceError> {
        let err = |msg: &str| {
            SourceError::Config(format!(
                "kinesis source `{text}`: {msg} (expected kinesis://<prefix>[?endpoint=..&region=..&start=..])"
            ))
        };
        let rest = text
            .strip_prefix("kinesis://")
            .ok_or_else(|| err("must start with kinesis://"))?;
        let (prefix, query) = match rest.split_once('?') {
            Some((prefix, query)) => (prefix, Some(query)),
            None => (rest, None),
        };
        check_prefix(prefix).map_err(|msg| err(&msg))?;
        let mut spec = KinesisSpec {
            streams: Streams::Prefix(prefix.to_owned()),
            region: None,
            endpoint: None,
            start: StartAt::TrimHorizon,
            stop_at_end: false,
        };
        for item in query.into_iter().flat_map(|q| q.split('&')) {
            match item.split_once('=') {
                Some(("start", value)) => spec.start = StartAt::parse(value)?,
                Some(("region", value)) if !value.is_empty() => {
                    spec.region = Some(value.to_owned())
                }
                Some(("endpoint", value)) if !value.is_empty() => {
                    spec.endpoint = Some(value.to_owned())
                }
                _ => {
                    return Err(err(&format!(
                        "unknown option `{item}` (endpoint, region, start)"
                    )));
                }
            }
        }
        Ok(spec)
    }

    /// A client: the standard credential chain, with the job's region and endpoint over the
    /// environment's.
    async fn client(&self) -> Client {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &self.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let config = loader.load().await;
        let mut builder = aws_sdk_kinesis::config::Builder::from(&config);
        if config.region().is_none() {
            builder = builder.region(aws_config::Region::new("us-east-1"));
        }
        Client::from_conf(builder.build())
    }

    fn describe(&self) -> String {
        match &self.streams {
            Streams::Prefix(prefix) => format!("kinesis streaming-{prefix}-*"),
            Streams::List(names) => format!("kinesis {}", names.join(",")),
        }
    }
}

/// A stream name prefix: `[A-Za-z0-9_.-]`, short enough for the 128-character names.
fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Err("empty stream prefix".into());
    }
    if prefix.len() > 110
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "stream prefix `{prefix}` may only hold letters, digits, `.`, `_` and `-`"
        ));
    }
    Ok(())
}

pub struct Connector;

/// A job file's `[[source]] type = "kinesis"`: `prefix` (streams
/// `streaming-<prefix>-pin/-geo/-user`) or `streams`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    prefix: Option<String>,
    streams: Option<Vec<String>>,
    region: Option<String>,
    endpoint: Option<String>,
    /// `trim_horizon` (default), `latest`, a timestamp or epoch milliseconds.
    start: Option<toml::Value>,
}

impl Section {
    fn into_spec(self) -> Result<KinesisSpec, SourceError> {
        let streams = match (self.prefix, self.streams) {
            (Some(prefix), None) => {
                // The same checks as --from kinesis://.
                KinesisSpec::parse(&format!("kinesis://{prefix}"))?;
                Streams::Prefix(prefix)
            }
            (None, Some(streams)) if !streams.is_empty() => Streams::List(streams),
            _ => {
                return Err(SourceError::Config(
                    "kinesis source: give either prefix or a non-empty streams list".into(),
                ));
            }
        };
        streams.resolve()?;
        let start = match self.start {
            None => Ok(StartAt::TrimHorizon),
            Some(toml::Value::String(text)) => StartAt::parse(&text),
            Some(toml::Value::Datetime(time)) => StartAt::parse(&time.to_string()),
            Some(other) => StartAt::parse(&other.to_string()),
        }?;
        Ok(KinesisSpec {
            streams,
            region: self.region.filter(|r| !r.is_empty()),
            endpoint: self.endpoint.filter(|e| !e.is_empty()),
            start,
            stop_at_end: false,
        })
    }
}

impl super::Connector for Connector {
    fn name(&self) -> &'static str {
        "kinesis"
    }

    fn url_form(&self) -> &'static str {
        "kinesis://<prefix>"
    }

    fn producer_form(&self) -> Option<&'static str> {
        Some("kinesis://<prefix>")
    }

    fn parse_url(&self, url: &str) -> Result<SourceSpec, SourceError> {
        Ok(SourceSpec::new(KinesisSpec::parse(url)?))
    }

    fn parse_section(&self, section: toml::Table) -> Result<SourceSpec, SourceError> {
        let section: Section = super::section("kinesis", section)?;
        Ok(SourceSpec::new(section.into_spec()?))
    }

    fn produce(&self, target: &Produce<'_>) -> Option<Result<u64, SourceError>> {
        Some(producer::put_events(target))
    }
}

impl SourceSettings for KinesisSpec {
    fn is_bounded(&self) -> bool {
        true
    }

    fn for_job(&mut self, job: &JobSettings<'_>) {
        self.stop_at_end = job.until_done;
    }

    fn start(&self, job: &JobContext) -> Result<Box<dyn StartedSource>, SourceError> {
        Ok(Box::new(Started {
            spec: self.clone(),
            shared: Shared {
                stats: job.stats.clone(),
                drained: job.finished.clone(),
            },
        }))
    }
}

/// A Kinesis source of a running job: its settings and what its workers share.
struct Started {
    spec: KinesisSpec,
    shared: Shared,
}

impl StartedSource for Started {
    fn open(&self, worker: usize, peers: usize) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(KinesisSource::new(
            &self.spec,
            &self.shared,
            worker,
            peers,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinesis_url_parsing() {
        let spec = KinesisSpec::parse("kinesis://abc").unwrap();
        assert_eq!(spec.streams, Streams::Prefix("abc".into()));
        assert_eq!(spec.start, StartAt::TrimHorizon);
        assert_eq!(
            spec.streams.resolve().unwrap(),
            [
                ("streaming-abc-pin".to_owned(), Stream::Pin),
                ("streaming-abc-geo".to_owned(), Stream::Geo),
                ("streaming-abc-user".to_owned(), Stream::User)
            ]
        );
        let spec = KinesisSpec::parse(
            "kinesis://x-y?endpoint=http://127.0.0.1:4568&region=eu-west-1&start=latest",
        )
        .unwrap();
        assert_eq!(spec.endpoint.as_deref(), Some("http://127.0.0.1:4568"));
        assert_eq!(spec.region.as_deref(), Some("eu-west-1"));
        assert_eq!(spec.start, StartAt::Latest);
        assert_eq!(
            KinesisSpec::parse("kinesis://a?start=2024-05-01T00:00:00Z")
                .unwrap()
                .start,
            StartAt::Timestamp(1_714_521_600_000)
        );
        for bad in [
            "kinesis://",
            "kinesis://a/b",
            "kinesis://a?speed=3",
            "kinesis://a?start=soon",
        ] {
            match KinesisSpec::parse(bad) {
                Err(SourceError::Config(msg)) => assert!(msg.contains("kinesis"), "{bad}: {msg}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn kinesis_job_sections() {
        let parse = |body: &str| {
            let section: toml::Table =
                toml::from_str(&format!("type = \"kinesis\"\n{body}")).unwrap();
            SourceSpec::from_section(section)
        };
        let spec = parse(
            r#"
streams = ["streaming-x-pin", "streaming-x-geo"]
region = "us-west-2"
endpoint = "http://127.0.0.1:4568"
start = "latest"
"#,
        )
        .unwrap();
        let kinesis = spec.settings::<KinesisSpec>().unwrap();
        assert_eq!(
            kinesis.streams,
            Streams::List(vec!["streaming-x-pin".into(), "streaming-x-geo".into()])
        );
        assert_eq!(kinesis.endpoint.as_deref(), Some("http://127.0.0.1:4568"));
        assert_eq!(kinesis.start, StartAt::Latest);
        assert!(!kinesis.stop_at_end);
        for (body, needle) in [
            ("", "prefix or a non-empty streams list"),
            ("streams = [\"nostream\"]", "stream"),
            ("prefix = \"a\"\nstart = \"soon\"", "start"),
            ("prefix = \"a b\"", "letters, digits"),
        ] {
            let error = parse(body).unwrap_err().to_string();
            assert!(error.contains(needle), "{body}: {error}");
        }
    }
}
