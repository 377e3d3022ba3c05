//! The kafka connector: `kafka://host:port[,host:port]/<topic-prefix>[?start=..&group_id=..&assign=..]`
//! or a job file's `[[source]] type = "kafka"` (brokers, topic_prefix or topics, group_id,
//! start, assign, properties). By default the job assigns the partitions to its workers
//! itself; with `assign = "group"` its live object is the process's consumer group
//! [`Membership`], joined when the job starts (see `source.rs` for how partitions are
//! assigned and read).

mod client;
mod commit;
mod fetch;
mod group;
mod producer;
mod source;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use serde::Deserialize;

pub use group::Membership;
pub use source::*;

use crate::connectors::{
    Handover, JobContext, JobSettings, Produce, Source, SourceError, SourceSettings, SourceSpec,
    StartedSource,
};
use crate::stats::Stats;
use crate::stream::Stream;

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// Which topics to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topics {
    /// `<prefix>.pin`, `<prefix>.geo`, `<prefix>.user`.
    Prefix(String),
    /// Named topics; each carries its stream as a name token (`abc.pin`, `events-geo`).
    List(Vec<String>),
}

impl Topics {
    /// The topics with their streams.
    pub fn resolve(&self) -> Result<Vec<(String, Stream)>, SourceError> {
        match self {
            Topics::Prefix(prefix) => Ok(Stream::ALL
                .iter()
                .map(|s| (format!("{prefix}.{s}"), *s))
                .collect()),
            Topics::List(topics) => topics
                .iter()
                .map(|topic| match Stream::from_name_token(topic) {
                    Some(stream) => Ok((topic.clone(), stream)),
                    None => Err(SourceError::Config(format!(
                        "kafka topic `{topic}`: its name must carry the stream (pin, geo or user) as a token, e.g. abc.pin"
                    ))),
                })
                .collect(),
        }
    }
}

/// Where a partition with no stored position starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartFrom {
    /// The oldest message the broker holds.
    #[default]
    Earliest,
    /// Only messages produced after the job first opened the partition.
    Latest,
    /// The first message with a timestamp at or after this one (milliseconds since the epoch).
    Timestamp(i64),
}

impl StartFrom {
    /// `earliest`, `latest`, an RFC 3339 / `YYYY-MM-DD HH:MM:SS` (UTC) timestamp, or
    /// milliseconds since the epoch.
    pub fn parse(text: &str) -> Result<StartFrom, SourceError> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "earliest" | "beginning" => return Ok(StartFrom::Earliest),
            "latest" | "end" => return Ok(StartFrom::Latest),
            _ => {}
        }
        if let Ok(ms) = text.parse::<i64>()
            && ms >= 0
        {
            return Ok(StartFrom::Timestamp(ms));
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
            return Ok(StartFrom::Timestamp(t.timestamp_millis()));
        }
        for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
                return Ok(StartFrom::Timestamp(t.and_utc().timestamp_millis()));
            }
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            let t = d.and_hms_opt(0, 0, 0).expect("midnight exists");
            return Ok(StartFrom::Timestamp(t.and_utc().timestamp_millis()));
        }
        Err(SourceError::Config(format!(
            "kafka start `{text}`: expected earliest, latest, a timestamp (2024-05-01T00:00:00Z) or epoch milliseconds"
        )))
    }
}

impl fmt::Display for StartFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartFrom::Earliest => f.write_str("earliest"),
            StartFrom::Latest => f.write_str("latest"),
            StartFrom::Timestamp(ms) => write!(f, "{ms}"),
        }
    }
}

/// Who decides which process reads which partition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Assign {
    /// The job itself: one process reads every partition, a cluster spreads them over its
    /// workers. No group join, so reading starts at once (a join costs about half of
    /// `session.timeout.ms` on every start) and nothing moves partitions behind the
    /// dataflow's back.
    #[default]
    Job,
    /// The consumer group: processes started apart (no `--hosts`) with the same `group_id`
    /// share the partitions, and a rebalance restarts the dataflow from the tables.
    Group,
}

impl Assign {
    /// `job` or `group`.
    pub fn parse(text: &str) -> Result<Assign, SourceError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "job" => Ok(Assign::Job),
            "group" => Ok(Assign::Group),
            _ => Err(SourceError::Config(format!(
                "kafka assign `{text}`: expected job (the job assigns partitions to its workers) or group (the consumer group shares them among processes)"
            ))),
        }
    }
}

/// A Kafka source as configured (`--from kafka://...` or a job file's `[[source]]`).
#[derive(Clone, Debug, PartialEq)]
pub struct KafkaSpec {
    /// `bootstrap.servers`: `host:port[,host:port...]`.
    pub brokers: String,
    pub topics: Topics,
    /// `group.id`; `None` until the job's name is known (`pinstream-<job>`).
    pub group_id: Option<String>,
    pub start: StartFrom,
    /// Who assigns the partitions to processes.
    pub assign: Assign,
    /// Any librdkafka property, set on the client as is (TLS, SASL, timeouts...).
    pub properties: BTreeMap<String, String>,
    /// Report `Exhausted` once the end offsets seen at open are reached (`--until-done`).
    pub stop_at_end: bool,
}

impl KafkaSpec {
    /// Parses `kafka://host:port[,host:port...]/<prefix>[?start=latest&group_id=g&assign=group]` (the
    /// `kafka://` prefix included).
    pub fn parse(text: &str) -> Result<KafkaSpec, SourceError> {
        let err = |msg: &str| {
            SourceError::Config(format!(
                "kafka source `{text}`: {msg} (expected kafka://host:port/<topic-prefix>)"
            ))
        };
        let rest = text
            .strip_prefix("kafka://")
            .ok_or_else(|| err("must start with kafka://"))?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (brokers, prefix) = rest.split_once('/').ok_or_else(|| err("no topic prefix"))?;
        if brokers.is_empty() || brokers.split(',').any(|b| b.trim().is_empty()) {
            return Err(err("no broker address"));
        }
        check_topic_name(prefix).map_err(|msg| err(&msg))?;
        let mut spec = KafkaSpec {
            brokers: brokers.to_owned(),
            topics: Topics::Prefix(prefix.to_owned()),
            group_id: None,
            start: StartFrom::Earliest,
            assign: Assign::Job,
            properties: BTreeMap::new(),
            stop_at_end: false,
        };
        for item in query.into_iter().flat_map(|q| q.split('&')) {
            match item.split_once('=') {
                Some(("start", value)) => spec.start = StartFrom::parse(value)?,
                Some(("group_id" | "group", value)) if !value.is_empty() => {
                    spec.group_id = Some(value.to_owned())
                }
                Some(("assign", value)) => spec.assign = Assign::parse(value)?,
                _ => {
                    return Err(err(&format!(
                        "unknown option `{item}` (start, group_id, assign)"
                    )));
                }
            }
        }
        Ok(spec)
    }

    /// The consumer group id: the configured one, or `pinstream`.
    pub fn group(&self) -> String {
        self.group_id
            .clone()
            .unwrap_or_else(|| "pinstream".to_owned())
    }

    /// The client configuration shared by the consumer and the producer: brokers, then the
    /// job's properties over everything else.
    fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// A topic name or prefix Kafka accepts: 1..249 of `[A-Za-z0-9._-]`.
fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty topic prefix".into());
    }
    if name.len() > 240
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "topic prefix `{name}` may only hold letters, digits, `.`, `_` and `-`"
        ));
    }
    Ok(())
}

pub struct Connector;

/// A job file's `[[source]] type = "kafka"`: `topic_prefix` (topics `<prefix>.pin/.geo/.user`)
/// or `topics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    brokers: String,
    topic_prefix: Option<String>,
    topics: Option<Vec<String>>,
    group_id: Option<String>,
    /// `earliest` (default), `latest`, a timestamp or epoch milliseconds.
    start: Option<toml::Value>,
    /// `job` (default) or `group`.
    assign: Option<String>,
    /// librdkafka properties, set on the client as they are.
    #[serde(default)]
    properties: BTreeMap<String, toml::Value>,
}

impl Section {
    fn into_spec(self) -> Result<KafkaSpec, SourceError> {
        let config = |text: &str| SourceError::Config(text.to_owned());
        if self.brokers.trim().is_empty() {
            return Err(config("kafka source: brokers is empty"));
        }
        let topics = match (self.topic_prefix, self.topics) {
            (Some(prefix), None) => {
                // The same checks as --from kafka://.
                KafkaSpec::parse(&format!("kafka://{}/{prefix}", self.brokers))?;
                Topics::Prefix(prefix)
            }
            (None, Some(topics)) if !topics.is_empty() => Topics::List(topics),
            _ => {
                return Err(config(
                    "kafka source: give either topic_prefix or a non-empty topics list",
                ));
            }
        };
        topics.resolve()?;
        let start = match self.start {
            None => Ok(StartFrom::Earliest),
            Some(toml::Value::String(text)) => StartFrom::parse(&text),
            Some(toml::Value::Integer(ms)) => StartFrom::parse(&ms.to_string()),
            Some(toml::Value::Datetime(time)) => StartFrom::parse(&time.to_string()),
            Some(other) => StartFrom::parse(&other.to_string()),
        }?;
        let properties = self
            .properties
            .into_iter()
            .map(|(key, value)| match value {
                toml::Value::String(text) => Ok((key, text)),
                toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                    Ok((key, value.to_string()))
                }
                _ => Err(SourceError::Config(format!(
                    "kafka source: property {key} must be a string, number or boolean"
                ))),
            })
            .collect::<Result<_, _>>()?;
        let assign = self
            .assign
            .as_deref()
            .map_or(Ok(Assign::Job), Assign::parse)?;
        Ok(KafkaSpec {
            brokers: self.brokers,
            topics,
            group_id: self.group_id,
            start,
            assign,
            properties,
            stop_at_end: false,
        })
    }
}

impl super::Connector for Connector {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn url_form(&self) -> &'static str {
        "kafka://<host:port>/<topic-prefix>"
    }

    fn producer_form(&self) -> Option<&'static str> {
        Some("kafka://<host:port>/<topic-prefix>")
    }

    fn parse_url(&self, url: &str) -> Result<SourceSpec, SourceError> {
        Ok(SourceSpec::new(KafkaSpec::parse(url)?))
    }

    fn parse_section(&self, section: toml::Table) -> Result<SourceSpec, SourceError> {
        let section: Section = super::section("kafka", section)?;
        Ok(SourceSpec::new(section.into_spec()?))
    }

    fn produce(&self, target: &Produce<'_>) -> Option<Result<u64, SourceError>> {
        Some(producer::produce_events(target))
    }
}

impl SourceSettings for KafkaSpec {
    fn is_bounded(&self) -> bool {
        true
    }

    fn for_job(&mut self, job: &JobSettings<'_>) {
        // The group the positions are acknowledged to (for lag tools), and with
        // `assign = "group"` the one processes of the job share the partitions through (the
        // tables, not the group's offsets, hold the positions).
        self.group_id
            .get_or_insert_with(|| format!("pinstream-{}", job.name));
        self.stop_at_end = job.until_done;
    }

    /// With `assign = "group"`, joins the consumer group (once per run: dataflow restarts
    /// keep the membership).
    fn start(&self, job: &JobContext) -> Result<Box<dyn StartedSource>, SourceError> {
        // An archive of these topics in the job hands its partitions over (see source.rs).
        for (topic, _) in self.topics.resolve()? {
            job.handover.live(&topic);
        }
        Ok(Box::new(Started {
            membership: match (self.assign, job.cluster) {
                (Assign::Job, _) => None,
                // A cluster spreads the partitions over its workers itself: a group moving
                // them between processes behind the dataflow's back would break that.
                (Assign::Group, true) => {
                    return Err(SourceError::Config(
                        "kafka source: assign = group cannot be used in a cluster (--hosts): the cluster assigns the partitions to its workers itself".into(),
                    ));
                }
                (Assign::Group, false) => Some(Membership::join(self, job)?),
            },
            spec: self.clone(),
            stats: job.stats.clone(),
            handover: job.handover.clone(),
        }))
    }
}

/// A Kafka source of a running job: its settings and the process's group membership.
struct Started {
    spec: KafkaSpec,
    /// The process's place in the consumer group (`assign = "group"` only).
    membership: Option<Membership>,
    stats: Arc<Stats>,
    handover: Handover,
}

impl StartedSource for Started {
    fn open(&self, worker: usize, peers: usize) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(KafkaSource::new(
            &self.spec,
            self.membership.as_ref(),
            &self.stats,
            &self.handover,
            worker,
            peers,
        )?))
    }

    fn finish(&self, timeout: Duration) {
        if let Some(membership) = &self.membership {
            membership.flush(timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_url_parsing() {
        let spec = KafkaSpec::parse("kafka://127.0.0.1:9092/abc").unwrap();
        assert_eq!(spec.brokers, "127.0.0.1:9092");
        assert_eq!(spec.topics, Topics::Prefix("abc".into()));
        assert_eq!(spec.start, StartFrom::Earliest);
        assert_eq!(spec.group_id, None);
        assert_eq!(spec.assign, Assign::Job);
        let topics = spec.topics.resolve().unwrap();
        assert_eq!(
            topics,
            [
                ("abc.pin".to_owned(), Stream::Pin),
                ("abc.geo".to_owned(), Stream::Geo),
                ("abc.user".to_owned(), Stream::User)
            ]
        );
        let spec =
            KafkaSpec::parse("kafka://b1:9092,b2:9092/x-y.z?start=latest&group_id=g&assign=group")
                .unwrap();
        assert_eq!(spec.brokers, "b1:9092,b2:9092");
        assert_eq!(spec.start, StartFrom::Latest);
        assert_eq!(spec.group_id.as_deref(), Some("g"));
        assert_eq!(spec.assign, Assign::Group);
        for bad in [
            "kafka://",
            "kafka://host:9092",
            "kafka://host:9092/",
            "kafka:///abc",
            "kafka://host:9092/a/b",
            "kafka://host:9092/abc?speed=3",
            "kafka://host:9092/abc?start=soon",
            "kafka://host:9092/abc?assign=all",
        ] {
            match KafkaSpec::parse(bad) {
                Err(SourceError::Config(msg)) => assert!(msg.contains("kafka"), "{bad}: {msg}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn kafka_start_parsing() {
        assert_eq!(StartFrom::parse("earliest").unwrap(), StartFrom::Earliest);
        assert_eq!(StartFrom::parse("LATEST").unwrap(), StartFrom::Latest);
        let t = StartFrom::Timestamp(1_714_521_600_000);
        assert_eq!(StartFrom::parse("2024-05-01T00:00:00Z").unwrap(), t);
        assert_eq!(StartFrom::parse("2024-05-01T02:00:00+02:00").unwrap(), t);
        assert_eq!(StartFrom::parse("2024-05-01 00:00:00").unwrap(), t);
        assert_eq!(StartFrom::parse("2024-05-01").unwrap(), t);
        assert_eq!(StartFrom::parse("1714521600000").unwrap(), t);
        assert!(StartFrom::parse("-5").is_err());
        assert!(StartFrom::parse("yesterday").is_err());
    }

    #[test]
    fn kafka_topic_lists_need_a_stream_token() {
        let topics = Topics::List(vec!["events-pin".into(), "raw.user".into()]);
        assert_eq!(
            topics.resolve().unwrap(),
            [
                ("events-pin".to_owned(), Stream::Pin),
                ("raw.user".to_owned(), Stream::User)
            ]
        );
        assert!(Topics::List(vec!["pinterest".into()]).resolve().is_err());
    }

    #[test]
    fn kafka_job_sections() {
        let parse = |body: &str| {
            let section: toml::Table =
                toml::from_str(&format!("type = \"kafka\"\n{body}")).unwrap();
            SourceSpec::from_section(section)
        };
        let spec = parse(
            r#"
brokers = "b-1.example:9094,b-2.example:9094"
topics = ["raw.pin", "raw.geo"]
group_id = "mine"
start = 2024-05-01T00:00:00Z
assign = "group"
[properties]
"security.protocol" = "SSL"
"fetch.max.bytes" = 1048576
"enable.ssl.certificate.verification" = true
"#,
        )
        .unwrap();
        let kafka = spec.settings::<KafkaSpec>().unwrap();
        assert_eq!(kafka.brokers, "b-1.example:9094,b-2.example:9094");
        assert_eq!(
            kafka.topics,
            Topics::List(vec!["raw.pin".into(), "raw.geo".into()])
        );
        assert_eq!(kafka.group_id.as_deref(), Some("mine"));
        assert_eq!(kafka.start, StartFrom::Timestamp(1_714_521_600_000));
        assert_eq!(kafka.assign, Assign::Group);
        assert!(!kafka.stop_at_end);
        assert_eq!(kafka.properties["security.protocol"], "SSL");
        assert_eq!(kafka.properties["fetch.max.bytes"], "1048576");
        assert_eq!(
            kafka.properties["enable.ssl.certificate.verification"],
            "true"
        );
        for (body, needle) in [
            (
                "brokers = \"h:1\"",
                "topic_prefix or a non-empty topics list",
            ),
            (
                "brokers = \"h:1\"\ntopic_prefix = \"a\"\ntopics = [\"a.pin\"]",
                "either",
            ),
            ("brokers = \"h:1\"\ntopics = [\"nostream\"]", "stream"),
            (
                "brokers = \"h:1\"\ntopic_prefix = \"a\"\nstart = \"soon\"",
                "start",
            ),
            (
                "brokers = \"h:1\"\ntopic_prefix = \"a b\"",
                "letters, digits",
            ),
            ("topic_prefix = \"a\"", "brokers"),
            (
                "brokers = \"h:1\"\ntopic_prefix = \"a\"\nassign = \"all\"",
                "assign",
            ),
        ] {
            let error = parse(body).unwrap_err().to_string();
            assert!(error.contains(needle), "{body}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }
}
