//! Configuration: the command line (clap) and job files (TOML), checked into one [`Config`].
//!
//! Two stages, as in ripgrep: raw flags and the raw job file first, then [`Config::resolve`]
//! applies the flags over the job and checks everything, so a bad setting is one clear line
//! before anything starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::source::SourceSpec;
use crate::source::emulator::EmulatorSpec;
use crate::source::kafka::{KafkaSpec, StartFrom, Topics};
use crate::source::kinesis::{KinesisSpec, StartAt, Streams};

/// The embedded default job (`pinstream run` with no job file).
pub const DEFAULT_JOB: &str = include_str!("../dataflows/local.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("job file {path}: {reason}")]
    JobFile { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// pinstream: pin/geo/user posting events -> clean, deduplicated, exactly-once Delta tables.
#[derive(Debug, Parser)]
#[command(name = "pinstream", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log filter (tracing EnvFilter syntax), e.g. `info`, `pinstream=debug`. RUST_LOG wins when set.
    #[arg(
        long,
        global = true,
        default_value = "warn,pinstream=info",
        env = "PINSTREAM_LOG"
    )]
    pub log: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job: read the sources, clean, deduplicate, append to the Delta tables.
    ///
    /// With no JOB file, runs the embedded default (dataflows/local.toml): the built-in
    /// emulator into ./lake, until Ctrl-C or SIGTERM, which commit what is held and exit 0.
    Run(RunArgs),
    /// Write the built-in emulator's event stream somewhere (tests and benchmarks make their
    /// data this way).
    Emulate(EmulateArgs),
    /// Measure throughput: serde_json alone vs the whole pipeline (file -> Delta), at 1 and 2
    /// workers, with peak memory. Prints the figures.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Job file (TOML, see dataflows/). Without it: the embedded default job.
    pub job: Option<PathBuf>,
    /// Lake root for every table: a local directory (or file:// URL). Overrides the job's.
    #[arg(long)]
    pub lake: Option<String>,
    /// A source, replacing the job's sources (repeat for several): file:<dir>, http (the
    /// ingest endpoints of the HTTP server),
    /// kafka://<host:port>/<topic-prefix>[?start=earliest|latest|<time>&group_id=<id>],
    /// emulator:events=<n>,seed=<s>,rate=<per-second>[,universe=<n>][,partitions=<n>].
    #[arg(long = "from", value_name = "SOURCE")]
    pub from: Vec<String>,
    /// Timely worker threads. The tables do not depend on it.
    #[arg(long)]
    pub workers: Option<usize>,
    /// HTTP address for the API, metrics and dashboard (port 0: any free port).
    #[arg(long, env = "PINSTREAM_HTTP")]
    pub http: Option<SocketAddr>,
    /// Stop once every source is exhausted (files read, emulator count reached, Kafka caught
    /// up with the end offsets it had at start) and all is committed, then exit 0. Without it the job runs until Ctrl-C or SIGTERM.
    #[arg(long)]
    pub until_done: bool,
    /// Micro-batch length (e.g. 1s, 500ms): one Delta commit per table per batch.
    #[arg(long, value_parser = parse_duration)]
    pub batch_interval: Option<Duration>,
    /// Close a micro-batch early once a worker has read this many records in it.
    #[arg(long)]
    pub batch_records: Option<usize>,
    /// When done, write a JSON summary of the run (counts, seconds, peak memory) to this file.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Do not maintain the live analytics (tables only).
    #[arg(long)]
    pub no_analytics: bool,
    /// Window of `trending_categories` (rows first seen within it count), e.g. 5m.
    #[arg(long, value_parser = parse_duration)]
    pub trending_window: Option<Duration>,
    /// How often changed aggregates are written to <lake>/aggregates/<name> (and at shutdown).
    #[arg(long, value_parser = parse_duration)]
    pub aggregate_interval: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct EmulateArgs {
    /// Where to: file:<dir> writes <dir>/pin.jsonl, geo.jsonl and user.jsonl;
    /// kafka://<host:port>/<prefix> produces to the topics <prefix>.pin, .geo and .user
    /// (created when missing), keyed by post index; kinesis://<prefix> puts to the streams
    /// streaming-<prefix>-pin, -geo and -user (created with 2 shards when missing) with
    /// PutRecords; http://<host:port>[/<prefix>] sends the
    /// original emulators' HTTP bodies (see --http-format) to a pinstream run --from http.
    #[arg(long)]
    pub to: String,
    /// Number of events (each is one pin, one geo and one user message).
    #[arg(long)]
    pub events: u64,
    /// Seed: the same seed gives the same stream, byte for byte.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Distinct posts the events are drawn from (with replacement, so posts repeat).
    #[arg(long, default_value_t = EmulatorSpec::default().universe)]
    pub universe: u64,
    /// Events per second (Kafka and HTTP; default: as fast as possible).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Partitions of each topic created (Kafka only; existing topics are left as they are).
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// A librdkafka property for the producer, key=value (repeat for several), e.g.
    /// security.protocol=SSL.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// Bodies for http://: `proxy` (Confluent REST Proxy, POST /topics/<prefix>.<stream>) or
    /// `kinesis` (API Gateway, PUT /streams/streaming-<prefix>-<stream>/record).
    #[arg(long, value_enum, default_value_t = HttpFormat::Proxy)]
    pub http_format: HttpFormat,
    /// Requests in flight at once (http:// only: each is answered after its commit).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

/// The request bodies `emulate --to http://` sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HttpFormat {
    Proxy,
    Kinesis,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Events to generate (3 records each).
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Distinct posts (the default makes most rows distinct, the expensive case).
    #[arg(long, default_value_t = 1_000_000)]
    pub universe: u64,
    /// Worker counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub workers: Vec<usize>,
    /// Directory for the generated data and lakes (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Seconds of the freshness run (the emulator at --freshness-rate); 0 skips it.
    #[arg(long, default_value_t = 10)]
    pub freshness_seconds: u64,
    /// Events per second of the freshness run.
    #[arg(long, default_value_t = 20_000)]
    pub freshness_rate: u64,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e} (try 1s or 500ms)"))
}

/// When a micro-batch closes.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchPolicy {
    pub interval: Duration,
    pub max_records: usize,
}

/// The live analytics' settings.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalyticsSettings {
    pub enabled: bool,
    pub trending_window: Duration,
    /// How often changed aggregates are written as Delta tables.
    pub table_interval: Duration,
}

/// A checked job: everything the engine needs to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub name: String,
    pub lake: String,
    pub sources: Vec<SourceSpec>,
    pub workers: usize,
    pub http: SocketAddr,
    pub batch: BatchPolicy,
    pub analytics: AnalyticsSettings,
    pub until_done: bool,
}

/// A job file as written (see dataflows/*.toml).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    name: Option<String>,
    lake: Option<String>,
    workers: Option<usize>,
    http: Option<SocketAddr>,
    #[serde(default)]
    batch: BatchFile,
    #[serde(default)]
    analytics: AnalyticsFile,
    #[serde(default)]
    source: Vec<SourceFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalyticsFile {
    enabled: Option<bool>,
    trending_window: Option<String>,
    table_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchFile {
    interval: Option<String>,
    max_records: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum SourceFile {
    File {
        dir: PathBuf,
    },
    Emulator {
        seed: Option<u64>,
        events: Option<u64>,
        rate: Option<f64>,
        universe: Option<u64>,
        partitions: Option<u32>,
    },
    /// A Kafka cluster: `topic_prefix` (topics `<prefix>.pin/.geo/.user`) or `topics`.
    Kafka {
        brokers: String,
        topic_prefix: Option<String>,
        topics: Option<Vec<String>>,
        group_id: Option<String>,
        /// `earliest` (default), `latest`, a timestamp or epoch milliseconds.
        start: Option<toml::Value>,
        /// librdkafka properties, set on the client as they are.
        #[serde(default)]
        properties: BTreeMap<String, toml::Value>,
    },
    /// Kinesis: `prefix` (streams `streaming-<prefix>-pin/-geo/-user`) or `streams`.
    Kinesis {
        prefix: Option<String>,
        streams: Option<Vec<String>>,
        region: Option<String>,
        endpoint: Option<String>,
        /// `trim_horizon` (default), `latest`, a timestamp or epoch milliseconds.
        start: Option<toml::Value>,
    },
    /// Messages sent to the engine's HTTP server (`POST /topics/..`, `PUT /streams/..`).
    Http {},
}

impl SourceFile {
    fn into_spec(self, job_dir: &Path) -> Result<SourceSpec, String> {
        Ok(match self {
            SourceFile::Http {} => SourceSpec::Http(Default::default()),
            SourceFile::File { dir } => SourceSpec::File {
                dir: if dir.is_relative() && !job_dir.as_os_str().is_empty() {
                    job_dir.join(dir)
                } else {
                    dir
                },
            },
            SourceFile::Emulator {
                seed,
                events,
                rate,
                universe,
                partitions,
            } => {
                let default = EmulatorSpec::default();
                SourceSpec::Emulator(EmulatorSpec {
                    seed: seed.unwrap_or(default.seed),
                    events: events.or(default.events),
                    rate: rate.or(default.rate),
                    universe: universe.unwrap_or(default.universe),
                    partitions: partitions.unwrap_or(default.partitions),
                })
            }
            SourceFile::Kafka {
                brokers,
                topic_prefix,
                topics,
                group_id,
                start,
                properties,
            } => {
                if brokers.trim().is_empty() {
                    return Err("kafka source: brokers is empty".into());
                }
                let topics = match (topic_prefix, topics) {
                    (Some(prefix), None) => {
                        // The same checks as --from kafka://.
                        KafkaSpec::parse(&format!("kafka://{brokers}/{prefix}"))
                            .map_err(|e| e.to_string())?;
                        Topics::Prefix(prefix)
                    }
                    (None, Some(topics)) if !topics.is_empty() => Topics::List(topics),
                    _ => {
                        return Err(
                            "kafka source: give either topic_prefix or a non-empty topics list"
                                .into(),
                        );
                    }
                };
                topics.resolve().map_err(|e| e.to_string())?;
                let start = match start {
                    None => Ok(StartFrom::Earliest),
                    Some(toml::Value::String(text)) => StartFrom::parse(&text),
                    Some(toml::Value::Integer(ms)) => StartFrom::parse(&ms.to_string()),
                    Some(toml::Value::Datetime(time)) => StartFrom::parse(&time.to_string()),
                    Some(other) => StartFrom::parse(&other.to_string()),
                }
                .map_err(|e| e.to_string())?;
                let properties = properties
                    .into_iter()
                    .map(|(key, value)| match value {
                        toml::Value::String(text) => Ok((key, text)),
                        toml::Value::Integer(_)
                        | toml::Value::Float(_)
                        | toml::Value::Boolean(_) => Ok((key, value.to_string())),
                        _ => Err(format!(
                            "kafka source: property {key} must be a string, number or boolean"
                        )),
                    })
                    .collect::<Result<_, String>>()?;
                SourceSpec::Kafka(KafkaSpec {
                    brokers,
                    topics,
                    group_id,
                    start,
                    properties,
                    stop_at_end: false,
                    membership: None,
                })
            }
            SourceFile::Kinesis {
                prefix,
                streams,
                region,
                endpoint,
                start,
            } => {
                let streams = match (prefix, streams) {
                    (Some(prefix), None) => {
                        // The same checks as --from kinesis://.
                        KinesisSpec::parse(&format!("kinesis://{prefix}"))
                            .map_err(|e| e.to_string())?;
                        Streams::Prefix(prefix)
                    }
                    (None, Some(streams)) if !streams.is_empty() => Streams::List(streams),
                    _ => {
                        return Err(
                            "kinesis source: give either prefix or a non-empty streams list".into(),
                        );
                    }
                };
                streams.resolve().map_err(|e| e.to_string())?;
                let start = match start {
                    None => Ok(StartAt::TrimHorizon),
                    Some(toml::Value::String(text)) => StartAt::parse(&text),
                    Some(toml::Value::Datetime(time)) => StartAt::parse(&time.to_string()),
                    Some(other) => StartAt::parse(&other.to_string()),
                }
                .map_err(|e| e.to_string())?;
                SourceSpec::Kinesis(KinesisSpec {
                    streams,
                    region: region.filter(|r| !r.is_empty()),
                    endpoint: endpoint.filter(|e| !e.is_empty()),
                    start,
                    stop_at_end: false,
                })
            }
        })
    }
}

impl Config {
    /// The job file (or the embedded default) with the flags applied, checked.
    pub fn resolve(args: &RunArgs) -> Result<Config, ConfigError> {
        let (text, path, job_dir) = match &args.job {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::JobFile {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                // Relative paths in a job file are relative to the working directory, like
                // the flags: job files are run from the project root.
                (text, path.display().to_string(), PathBuf::new())
            }
            None => (
                DEFAULT_JOB.to_owned(),
                "<embedded default>".to_owned(),
                PathBuf::new(),
            ),
        };
        let job: JobFile = toml::from_str(&text).map_err(|e| ConfigError::JobFile {
            path: path.clone(),
            reason: e.message().to_owned(),
        })?;
        let mut sources = if args.from.is_empty() {
            job.source
                .into_iter()
                .map(|s| {
                    s.into_spec(&job_dir)
                        .map_err(|reason| ConfigError::JobFile {
                            path: path.clone(),
                            reason,
                        })
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            args.from
                .iter()
                .map(|text| {
                    SourceSpec::parse(text).map_err(|e| ConfigError::Invalid(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let interval = match (&args.batch_interval, &job.batch.interval) {
            (Some(interval), _) => *interval,
            (None, Some(text)) => parse_duration(text).map_err(|reason| ConfigError::JobFile {
                path: path.clone(),
                reason: format!("batch.interval {reason}"),
            })?,
            (None, None) => Duration::from_secs(1),
        };
        let duration = |value: &Option<String>, key: &str, default: Duration| match value {
            Some(text) => parse_duration(text).map_err(|reason| ConfigError::JobFile {
                path: path.clone(),
                reason: format!("{key} {reason}"),
            }),
            None => Ok(default),
        };
        let analytics = AnalyticsSettings {
            enabled: !args.no_analytics && job.analytics.enabled.unwrap_or(true),
            trending_window: match args.trending_window {
                Some(window) => window,
                None => duration(
                    &job.analytics.trending_window,
                    "analytics.trending_window",
                    Duration::from_secs(300),
                )?,
            },
            table_interval: match args.aggregate_interval {
                Some(interval) => interval,
                None => duration(
                    &job.analytics.table_interval,
                    "analytics.table_interval",
                    Duration::from_secs(10),
                )?,
            },
        };
        let name = job.name.unwrap_or_else(|| "job".to_owned());
        for source in &mut sources {
            if let SourceSpec::Kafka(kafka) = source {
                // Processes of one job share its partitions through this group (the
                // tables, not the group's offsets, hold the positions).
                kafka
                    .group_id
                    .get_or_insert_with(|| format!("pinstream-{name}"));
                kafka.stop_at_end = args.until_done;
            }
            if let SourceSpec::Kinesis(kinesis) = source {
                kinesis.stop_at_end = args.until_done;
            }
        }
        let config = Config {
            name,
            lake: args
                .lake
                .clone()
                .or(job.lake)
                .unwrap_or_else(|| "./lake".to_owned()),
            sources,
            workers: args.workers.or(job.workers).unwrap_or(1),
            http: args
                .http
                .or(job.http)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            batch: BatchPolicy {
                interval,
                max_records: args
                    .batch_records
                    .or(job.batch.max_records)
                    .unwrap_or(200_000),
            },
            analytics,
            until_done: args.until_done,
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |text: String| Err(ConfigError::Invalid(text));
        if self.sources.is_empty() {
            return invalid("the job has no source: add a [[source]] or pass --from".into());
        }
        if self.workers == 0 || self.workers > 1024 {
            return invalid(format!("--workers must be 1..1024, not {}", self.workers));
        }
        if self.batch.interval.is_zero() {
            return invalid("the batch interval must be longer than 0".into());
        }
        if self.analytics.trending_window.is_zero() || self.analytics.table_interval.is_zero() {
            return invalid("analytics windows and intervals must be longer than 0".into());
        }
        if self.batch.max_records == 0 {
            return invalid("batch max_records must be at least 1".into());
        }
        if self.until_done
            && let Some(source) = self.sources.iter().find(|s| !s.is_bounded())
        {
            return invalid(format!(
                "--until-done needs sources that end, and {source:?} never does (give the emulator events=<n>)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(extra: &[&str]) -> RunArgs {
        let mut argv = vec!["pinstream", "run"];
        argv.extend(extra);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Run(args) => args,
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn embedded_default_is_the_emulator_into_lake() {
        let config = Config::resolve(&run_args(&[])).unwrap();
        assert_eq!(config.lake, "./lake");
        assert_eq!(config.http.to_string(), "127.0.0.1:8080");
        assert!(matches!(config.sources[..], [SourceSpec::Emulator(_)]));
        assert_eq!(config.batch.interval, Duration::from_secs(1));
    }

    #[test]
    fn flags_override_the_job() {
        let config = Config::resolve(&run_args(&[
            "--lake",
            "/tmp/x",
            "--from",
            "file:/data",
            "--from",
            "emulator:events=5",
            "--workers",
            "3",
            "--until-done",
            "--batch-interval",
            "250ms",
        ]))
        .unwrap();
        assert_eq!(config.lake, "/tmp/x");
        assert_eq!(config.workers, 3);
        assert_eq!(config.sources.len(), 2);
        assert_eq!(config.batch.interval, Duration::from_millis(250));
        assert!(config.until_done);
    }

    #[test]
    fn shipped_job_files_parse() {
        for path in [
            "dataflows/local.toml",
            "dataflows/replay-files.toml",
            "dataflows/kafka.toml",
            "dataflows/http-ingest.toml",
        ] {
            let args = RunArgs {
                job: Some(path.into()),
                ..run_args(&[])
            };
            Config::resolve(&args).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
    }

    #[test]
    fn bad_settings_are_one_clear_line() {
        let cases: [(&[&str], &str); 4] = [
            (&["--workers", "0"], "--workers must be 1..1024"),
            (&["--from", "ftp://x"], "unknown source `ftp://x`"),
            (&["--until-done"], "--until-done needs sources that end"),
            (&["--batch-records", "0"], "at least 1"),
        ];
        for (flags, expected) in cases {
            let error = Config::resolve(&run_args(flags)).unwrap_err().to_string();
            assert!(error.contains(expected), "{flags:?}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job.toml");
        std::fs::write(&job, "lake = 3\n").unwrap();
        let args = RunArgs {
            job: Some(job),
            ..run_args(&[])
        };
        let error = Config::resolve(&args).unwrap_err().to_string();
        assert!(
            error.starts_with("job file ") && error.contains("invalid type"),
            "{error}"
        );
    }

    #[test]
    fn kafka_sources_from_flags_and_job_files() {
        let config = Config::resolve(&run_args(&[
            "--from",
            "kafka://127.0.0.1:9092/abc",
            "--until-done",
        ]))
        .unwrap();
        let [SourceSpec::Kafka(kafka)] = &config.sources[..] else {
            panic!("{:?}", config.sources);
        };
        assert_eq!(kafka.topics, Topics::Prefix("abc".into()));
        assert_eq!(kafka.group_id.as_deref(), Some("pinstream-local"));
        assert!(kafka.stop_at_end);

        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job.toml");
        std::fs::write(
            &job,
            r#"
name = "msk"
[[source]]
type = "kafka"
brokers = "b-1.example:9094,b-2.example:9094"
topics = ["raw.pin", "raw.geo"]
group_id = "mine"
start = 2024-05-01T00:00:00Z
[source.properties]
"security.protocol" = "SSL"
"fetch.max.bytes" = 1048576
"enable.ssl.certificate.verification" = true
"#,
        )
        .unwrap();
        let args = RunArgs {
            job: Some(job.clone()),
            ..run_args(&[])
        };
        let config = Config::resolve(&args).unwrap();
        let [SourceSpec::Kafka(kafka)] = &config.sources[..] else {
            panic!("{:?}", config.sources);
        };
        assert_eq!(kafka.brokers, "b-1.example:9094,b-2.example:9094");
        assert_eq!(
            kafka.topics,
            Topics::List(vec!["raw.pin".into(), "raw.geo".into()])
        );
        assert_eq!(kafka.group_id.as_deref(), Some("mine"));
        assert_eq!(kafka.start, StartFrom::Timestamp(1_714_521_600_000));
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
        ] {
            std::fs::write(&job, format!("[[source]]\ntype = \"kafka\"\n{body}\n")).unwrap();
            let args = RunArgs {
                job: Some(job.clone()),
                ..run_args(&[])
            };
            let error = Config::resolve(&args).unwrap_err().to_string();
            assert!(error.contains(needle), "{body}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }

    #[test]
    fn kinesis_sources_from_flags_and_job_files() {
        let config = Config::resolve(&run_args(&[
            "--from",
            "kinesis://abc?region=eu-west-1",
            "--until-done",
        ]))
        .unwrap();
        let [SourceSpec::Kinesis(kinesis)] = &config.sources[..] else {
            panic!("{:?}", config.sources);
        };
        assert_eq!(kinesis.streams, Streams::Prefix("abc".into()));
        assert_eq!(kinesis.region.as_deref(), Some("eu-west-1"));
        assert!(kinesis.stop_at_end);

        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job.toml");
        std::fs::write(
            &job,
            r#"
[[source]]
type = "kinesis"
streams = ["streaming-x-pin", "streaming-x-geo"]
region = "us-west-2"
endpoint = "http://127.0.0.1:4568"
start = "latest"
"#,
        )
        .unwrap();
        let args = RunArgs {
            job: Some(job.clone()),
            ..run_args(&[])
        };
        let config = Config::resolve(&args).unwrap();
        let [SourceSpec::Kinesis(kinesis)] = &config.sources[..] else {
            panic!("{:?}", config.sources);
        };
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
            std::fs::write(&job, format!("[[source]]\ntype = \"kinesis\"\n{body}\n")).unwrap();
            let args = RunArgs {
                job: Some(job.clone()),
                ..run_args(&[])
            };
            let error = Config::resolve(&args).unwrap_err().to_string();
            assert!(error.contains(needle), "{body}: {error}");
        }
    }
}
