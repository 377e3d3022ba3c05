//! Configuration: the command line (clap) and job files (TOML), checked into one [`Config`].
//!
//! Two stages, as in ripgrep: raw flags and the raw job file first, then [`Config::resolve`]
//! applies the flags over the job and checks everything, so a bad setting is one clear line
//! before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::connectors::emulator::EmulatorSpec;
use crate::connectors::http::HttpFormat;
use crate::connectors::{JobSettings, MessageKey, SourceSpec};
use crate::sink::maintain::{CompactionPolicy, DEFAULT_MIN_FILES, DEFAULT_TARGET_FILE_SIZE};
use crate::sink::schema::Codec;

/// The embedded default job (`pinstream run` with no job file).
pub const DEFAULT_JOB: &str = include_str!("../dataflows/local.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("job file {path}: {reason}")]
    JobFile { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// The default log filter: pinstream's progress, everyone's warnings, but not delta-rs's
/// warning about the parts of a failed upload nor its error line for a failed commit, which
/// pinstream reports itself (a full disk would otherwise be said three times).
pub const DEFAULT_LOG: &str = "warn,pinstream=info,deltalake_core::datafile::writer=error,deltalake_core::kernel::transaction=off";

/// pinstream: pin/geo/user posting events -> clean, deduplicated, exactly-once Delta tables.
#[derive(Debug, Parser)]
#[command(name = "pinstream", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log filter (tracing EnvFilter syntax), e.g. `info`, `pinstream=debug`. RUST_LOG wins when set.
    /// (The default keeps delta-rs's own reports of a failed upload or commit, a full disk or a
    /// lost lake, quiet: pinstream reports that failure itself, in one line.)
    #[arg(long, global = true, default_value = DEFAULT_LOG, env = "PINSTREAM_LOG")]
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
    /// One-off maintenance of every table of a lake (clean, quarantine, aggregates), local
    /// or S3: compact small files, vacuum, and write a log checkpoint when one is due.
    /// Prints one line per table. Safe while a `pinstream run` appends to the same lake.
    Maintain(MaintainArgs),
}

#[derive(Debug, Args)]
pub struct MaintainArgs {
    /// Job file whose lake to maintain (and whose [maintenance] settings to use).
    pub job: Option<PathBuf>,
    /// Lake root: a local directory or s3://bucket/prefix (default: the job's, else ./lake).
    #[arg(long)]
    pub lake: Option<String>,
    /// Pack small files into files of about --target-file-size (the default when neither
    /// --compact nor --vacuum is given).
    #[arg(long)]
    pub compact: bool,
    /// Delete data files no version within --retention needs: removed ones, and files no
    /// commit references (left by a crash between writing and committing).
    #[arg(long)]
    pub vacuum: bool,
    /// How long removed files are kept for readers of older versions and time travel.
    /// Less than the table's delta.deletedFileRetentionDuration (7 days unless set) is
    /// refused without --force.
    #[arg(long, value_parser = parse_duration, default_value = "168h")]
    pub retention: Duration,
    /// Allow a retention below the table's. Careful: with a short retention, vacuum can
    /// delete the files of a commit in flight (a running `pinstream run`), losing its rows.
    #[arg(long)]
    pub force: bool,
    /// Files below this size are compacted into files of about this size (e.g. 128MiB).
    #[arg(long, value_parser = parse_size)]
    pub target_file_size: Option<u64>,
    /// Rewrite a group of small files only when it has at least this many.
    #[arg(long)]
    pub min_files: Option<usize>,
    /// Parquet codec of the rewritten files (default: the job's `compression`, else snappy):
    /// snappy, zstd, zstd(<1-22>), gzip, gzip(<0-9>), lz4 or uncompressed.
    #[arg(long)]
    pub compression: Option<Codec>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Job file (TOML, see dataflows/). Without it: the embedded default job.
    pub job: Option<PathBuf>,
    /// Run as one process of a cluster: FILE lists every process's `host:port` (timely's
    /// hosts file, one per line, in process order). Every process runs the same job with the
    /// same --workers; the outputs do not depend on the number of processes. Overrides the
    /// job's [cluster] hosts.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// This process's index in the hosts list (0 commits the tables).
    #[arg(long, env = "PINSTREAM_PROCESS")]
    pub process: Option<usize>,
    /// How long the processes of a cluster wait for each other at start (e.g. 60s).
    #[arg(long, value_parser = parse_duration)]
    pub join_timeout: Option<Duration>,
    /// Lake root for every table: a local directory (or file:// URL) or s3://bucket/prefix
    /// (configured by the standard AWS variables: AWS_REGION, AWS_ENDPOINT_URL[_S3],
    /// credentials, AWS_ALLOW_HTTP). Overrides the job's.
    #[arg(long)]
    pub lake: Option<String>,
    /// A source, replacing the job's sources (repeat for several): file:<dir>, http (the
    /// ingest endpoints of the HTTP server),
    /// kafka://<host:port>/<topic-prefix>[?start=earliest|latest|<time>&group_id=<id>],
    /// kinesis://<stream-prefix>[?start=..&endpoint=..&region=..],
    /// emulator:events=<n>,seed=<s>,rate=<per-second>[,universe=<n>][,partitions=<n>].
    ///
    /// Separate processes with the same Kafka group (no --hosts) split the partitions, and
    /// each deduplicates and aggregates only what it reads: exact only when every re-send of
    /// a message goes to the same partition (keyed by post). For one job over several
    /// processes, run a cluster with --hosts.
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
    /// How often, within a micro-batch, the live aggregates catch up (e.g. 5ms): the step of
    /// the dataflow's clock. Shorter is fresher and costs the analytics a little per step.
    #[arg(long, value_parser = parse_duration)]
    pub tick: Option<Duration>,
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
    /// How often small files are compacted while running (e.g. 10m), or `off`.
    #[arg(long, value_parser = parse_every)]
    pub compact_every: Option<Every>,
    /// Compaction's target file size (e.g. 128MiB); smaller files are packed together.
    #[arg(long, value_parser = parse_size)]
    pub target_file_size: Option<u64>,
    /// Compaction rewrites a group of small files only when it has at least this many.
    #[arg(long)]
    pub min_files: Option<usize>,
    /// Parquet codec of every data file written: snappy (the default), zstd, zstd(<1-22>),
    /// gzip, gzip(<0-9>), lz4 or uncompressed. Overrides the job's `compression`.
    #[arg(long)]
    pub compression: Option<Codec>,
}

/// A period, or never.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Every {
    Off,
    Period(Duration),
}

fn parse_every(text: &str) -> Result<Every, String> {
    match text.trim() {
        "off" | "never" => Ok(Every::Off),
        text => {
            let period = parse_duration(text)?;
            if period.is_zero() {
                return Err("must be longer than 0 (or `off`)".into());
            }
            Ok(Every::Period(period))
        }
    }
}

/// A size in bytes: a number with an optional unit (B, KB, KiB, MB, MiB, GB, GiB).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}`: not a size (try 128MiB or 64MB)"))?;
    let unit = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1u64,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (B, KB, KiB, MB, MiB, GB, GiB)"
            ));
        }
    };
    let bytes = number * unit as f64;
    if !(1.0..=(1u64 << 40) as f64).contains(&bytes) {
        return Err(format!("`{text}`: must be between 1 B and 1 TiB"));
    }
    Ok(bytes as u64)
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
    /// How Kafka messages are keyed: `post` (a post's messages and re-sends share a
    /// partition) or `none` (spread over the partitions, as REST-proxy posts are).
    #[arg(long, value_enum, default_value_t = MessageKey::Post)]
    pub key: MessageKey,
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

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Events to generate (3 records each).
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Distinct posts of each data set measured, comma-separated: 11000 is the emulator's
    /// default (the seeds' shape: most records re-send a post), 1000000 makes ~91% of the rows
    /// distinct (the expensive case). `--cluster` uses the last.
    #[arg(long, value_delimiter = ',', default_value = "11000,1000000")]
    pub universe: Vec<u64>,
    /// Worker counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub workers: Vec<usize>,
    /// Directory for the generated data and lakes (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Seconds of the freshness run (the emulator at --freshness-rate); 0 skips it.
    #[arg(long, default_value_t = 10)]
    pub freshness_seconds: u64,
    /// Events per second of each freshness run (3 records per event), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "20000,100000")]
    pub freshness_rate: Vec<u64>,
    /// Measure compaction instead: the time to compact --files small files of one table.
    #[arg(long)]
    pub compaction: bool,
    /// Measure the cost of crossing processes instead: the same data as 1 process × 2
    /// workers and as 2 processes × 1 worker (a cluster on 127.0.0.1): records/s, peak RSS
    /// per process, bytes sent between processes per record.
    #[arg(long)]
    pub cluster: bool,
    /// Measure Kafka -> Delta instead, against file -> Delta on the same records in the same
    /// run: produces the data to fresh 6-partition topics on this broker (host:port, not
    /// timed), then times `run --until-done` from each, start-up included.
    #[arg(long, value_name = "HOST:PORT")]
    pub kafka: Option<String>,
    /// Runs of each freshness rate, of each path for --kafka (file and Kafka alternated), and
    /// rounds of the files -> Delta runs (the floors, then tables only and with analytics):
    /// the figures printed are the medians, with the ranges (a single run's freshness p99,
    /// Kafka share or parse floor swings by ±50%, ±10% and 2x on a shared 2-core machine).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Small files written for --compaction.
    #[arg(long, default_value_t = 1_000)]
    pub files: u64,
    /// Rows per small file for --compaction.
    #[arg(long, default_value_t = 100)]
    pub rows_per_file: u64,
    /// Lake for --compaction: a local directory or s3://bucket/prefix (default: a temporary
    /// directory).
    #[arg(long)]
    pub lake: Option<String>,
    /// Soak instead: `pinstream run` from the emulator at --rate for --minutes (posts from
    /// --universe, the largest --workers), analytics and compaction on, sampled every
    /// --sample into --csv, then a verdict; exit status 1 when it fails.
    #[arg(long)]
    pub soak: bool,
    /// Length of the --soak run in minutes (fractions allowed: 0.5 is 30 s).
    #[arg(long, default_value_t = 30.0)]
    pub minutes: f64,
    /// Emulator events per second of the --soak run (3 records each).
    #[arg(long, default_value_t = 20_000)]
    pub rate: u64,
    /// How often --soak samples (memory, freshness, commit latency, files).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub sample: Duration,
    /// The CSV file of the --soak samples, one row per sample.
    #[arg(long, default_value = "soak.csv")]
    pub csv: PathBuf,
    /// Measure an HTTP ingest flood instead: --connections clients posting REST-proxy and
    /// Kinesis-proxy bodies for --flood-seconds; prints acknowledged requests/s and
    /// records/s, refusals, ack latency, the engine's peak RSS, and checks the tables.
    #[arg(long)]
    pub flood: bool,
    /// Concurrent connections of --flood.
    #[arg(long, default_value_t = 300)]
    pub connections: usize,
    /// Seconds of --flood.
    #[arg(long, default_value_t = 20)]
    pub flood_seconds: u64,
    /// Messages per batch body of --flood.
    #[arg(long, default_value_t = 20)]
    pub records_per_request: usize,
    /// The engine's source for --flood: `http` (the default limits) or `http:<limits>`.
    #[arg(long, default_value = "http")]
    pub flood_source: String,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e} (try 1s or 500ms)"))
}

/// When a micro-batch closes.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchPolicy {
    pub interval: Duration,
    pub max_records: usize,
    /// The step of the dataflow clock within a batch: how often the aggregates catch up.
    pub tick: Duration,
}

impl BatchPolicy {
    /// The default [`BatchPolicy::tick`].
    pub const DEFAULT_TICK: Duration = Duration::from_millis(5);
}

/// The live analytics' settings.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalyticsSettings {
    pub enabled: bool,
    pub trending_window: Duration,
    /// How often changed aggregates are written as Delta tables.
    pub table_interval: Duration,
}

/// Online table maintenance while running.
#[derive(Clone, Debug, PartialEq)]
pub struct MaintenanceSettings {
    /// How often small files are compacted; `None`: never.
    pub compact_every: Option<Duration>,
    pub compaction: CompactionPolicy,
}

/// A checked job: everything the engine needs to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub name: String,
    pub lake: String,
    /// The codec of every data file written (compaction's rewrites too).
    pub compression: Codec,
    pub sources: Vec<SourceSpec>,
    pub workers: usize,
    pub http: SocketAddr,
    pub batch: BatchPolicy,
    pub analytics: AnalyticsSettings,
    pub maintenance: MaintenanceSettings,
    pub until_done: bool,
    /// Several processes running this job as one (`--hosts`); `None`: this process alone.
    pub cluster: Option<crate::cluster::Cluster>,
}

/// A job file as written (see dataflows/*.toml).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    name: Option<String>,
    lake: Option<String>,
    compression: Option<String>,
    workers: Option<usize>,
    http: Option<SocketAddr>,
    #[serde(default)]
    batch: BatchFile,
    #[serde(default)]
    analytics: AnalyticsFile,
    #[serde(default)]
    maintenance: MaintenanceFile,
    /// `[[source]]` sections, each handed to the connector its `type` names.
    #[serde(default)]
    source: Vec<toml::Table>,
    cluster: Option<ClusterFile>,
}

/// `[cluster]`: the processes that run the job together.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFile {
    /// Every process's `host:port`, in process order.
    hosts: Vec<String>,
    join_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceFile {
    compact_every: Option<String>,
    target_file_size: Option<toml::Value>,
    min_files: Option<usize>,
}

impl MaintenanceFile {
    /// The settings with the flags applied over the file's, checked (`path` for errors).
    fn resolve(
        &self,
        path: &str,
        every: Option<Every>,
        target_file_size: Option<u64>,
        min_files: Option<usize>,
        codec: Codec,
    ) -> Result<MaintenanceSettings, ConfigError> {
        let error = |reason: String| ConfigError::JobFile {
            path: path.to_owned(),
            reason,
        };
        let every = flag_or_job(
            every,
            self.compact_every.as_deref(),
            parse_every,
            (path, "maintenance.compact_every"),
            Every::Period(Duration::from_secs(600)),
        )?;
        let target_file_size = match (target_file_size, &self.target_file_size) {
            (Some(size), _) => size,
            (None, Some(toml::Value::String(text))) => {
                parse_size(text).map_err(|e| error(format!("maintenance.target_file_size {e}")))?
            }
            (None, Some(toml::Value::Integer(n))) => parse_size(&n.to_string())
                .map_err(|e| error(format!("maintenance.target_file_size {e}")))?,
            (None, Some(other)) => {
                return Err(error(format!(
                    "maintenance.target_file_size `{other}`: give a size such as \"128MiB\""
                )));
            }
            (None, None) => DEFAULT_TARGET_FILE_SIZE,
        };
        let min_files = min_files.or(self.min_files).unwrap_or(DEFAULT_MIN_FILES);
        if min_files < 2 {
            return Err(ConfigError::Invalid(format!(
                "min_files must be at least 2 (one file is not worth a rewrite), not {min_files}"
            )));
        }
        Ok(MaintenanceSettings {
            compact_every: match every {
                Every::Off => None,
                Every::Period(period) => Some(period),
            },
            compaction: CompactionPolicy {
                target_file_size,
                min_files,
                codec,
            },
        })
    }
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
    tick: Option<String>,
}

/// What `pinstream maintain` works on, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct MaintainConfig {
    pub lake: String,
    /// `None`: no compaction.
    pub compaction: Option<CompactionPolicy>,
    /// Vacuum's retention and whether a retention below the table's is allowed.
    pub vacuum: Option<(Duration, bool)>,
}

impl MaintainConfig {
    pub fn resolve(args: &MaintainArgs) -> Result<MaintainConfig, ConfigError> {
        let (job, path) = match &args.job {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::JobFile {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                let job: JobFile = toml::from_str(&text).map_err(|e| ConfigError::JobFile {
                    path: path.display().to_string(),
                    reason: e.message().to_owned(),
                })?;
                (Some(job), path.display().to_string())
            }
            None => (None, "<flags>".to_owned()),
        };
        let (lake, compression, maintenance) = match job {
            Some(job) => (job.lake, job.compression, job.maintenance),
            None => (None, None, MaintenanceFile::default()),
        };
        let codec = flag_or_job(
            args.compression,
            compression.as_deref(),
            str::parse,
            (&path, "compression"),
            Codec::default(),
        )?;
        let settings =
            maintenance.resolve(&path, None, args.target_file_size, args.min_files, codec)?;
        let compact = args.compact || !args.vacuum;
        Ok(MaintainConfig {
            lake: args
                .lake
                .clone()
                .or(lake)
                .unwrap_or_else(|| "./lake".to_owned()),
            compaction: compact.then_some(settings.compaction),
            vacuum: args.vacuum.then_some((args.retention, args.force)),
        })
    }
}

/// A setting from its flag, else parsed from the job file's `key` (an error names the file
/// `path` and the key), else `default`.
fn flag_or_job<T, E: std::fmt::Display>(
    flag: Option<T>,
    text: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
    (path, key): (&str, &str),
    default: T,
) -> Result<T, ConfigError> {
    match (flag, text) {
        (Some(value), _) => Ok(value),
        (None, Some(text)) => parse(text).map_err(|reason| ConfigError::JobFile {
            path: path.to_owned(),
            reason: format!("{key} {reason}"),
        }),
        (None, None) => Ok(default),
    }
}

/// The cluster this process is part of, if any: `--hosts` (or the job's `[cluster] hosts`) with
/// `--process` (or `PINSTREAM_PROCESS`), checked.
fn resolve_cluster(
    args: &RunArgs,
    file: Option<&ClusterFile>,
    path: &str,
) -> Result<Option<crate::cluster::Cluster>, ConfigError> {
    use crate::cluster::{Cluster, DEFAULT_JOIN_TIMEOUT};
    let hosts = match (&args.hosts, file) {
        (Some(hosts), _) => {
            Cluster::read_hosts(hosts).map_err(|e| ConfigError::Invalid(e.to_string()))?
        }
        (None, Some(file)) => file.hosts.clone(),
        (None, None) => {
            if args.process.is_some() {
                return Err(ConfigError::Invalid(
                    "--process needs --hosts (or a [cluster] section in the job)".into(),
                ));
            }
            return Ok(None);
        }
    };
    let Some(process) = args.process else {
        return Err(ConfigError::Invalid(
            "a cluster needs this process's index: --process <i> or PINSTREAM_PROCESS".into(),
        ));
    };
    let join_timeout = flag_or_job(
        args.join_timeout,
        file.and_then(|f| f.join_timeout.as_deref()),
        parse_duration,
        (path, "cluster.join_timeout"),
        DEFAULT_JOIN_TIMEOUT,
    )?;
    Cluster::new(hosts, process, join_timeout)
        .map(Some)
        .map_err(|e| ConfigError::Invalid(e.to_string()))
}

impl Config {
    /// The job file (or the embedded default) with the flags applied, checked.
    pub fn resolve(args: &RunArgs) -> Result<Config, ConfigError> {
        let (text, path) = match &args.job {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::JobFile {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                // Relative paths in a job file are relative to the working directory, like
                // the flags: job files are run from the project root.
                (text, path.display().to_string())
            }
            None => (DEFAULT_JOB.to_owned(), "<embedded default>".to_owned()),
        };
        let job: JobFile = toml::from_str(&text).map_err(|e| ConfigError::JobFile {
            path: path.clone(),
            reason: e.message().to_owned(),
        })?;
        let mut sources = if args.from.is_empty() {
            job.source
                .into_iter()
                .map(|section| {
                    SourceSpec::from_section(section).map_err(|e| ConfigError::JobFile {
                        path: path.clone(),
                        reason: e.to_string(),
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
        let cluster = resolve_cluster(args, job.cluster.as_ref(), &path)?;
        let duration = |flag: Option<Duration>, text: &Option<String>, key, default| {
            flag_or_job(flag, text.as_deref(), parse_duration, (&path, key), default)
        };
        let interval = duration(
            args.batch_interval,
            &job.batch.interval,
            "batch.interval",
            Duration::from_secs(1),
        )?;
        let analytics = AnalyticsSettings {
            enabled: !args.no_analytics && job.analytics.enabled.unwrap_or(true),
            trending_window: duration(
                args.trending_window,
                &job.analytics.trending_window,
                "analytics.trending_window",
                Duration::from_secs(300),
            )?,
            table_interval: duration(
                args.aggregate_interval,
                &job.analytics.table_interval,
                "analytics.table_interval",
                Duration::from_secs(10),
            )?,
        };
        let compression = flag_or_job(
            args.compression,
            job.compression.as_deref(),
            str::parse,
            (&path, "compression"),
            Codec::default(),
        )?;
        let maintenance = job.maintenance.resolve(
            &path,
            args.compact_every,
            args.target_file_size,
            args.min_files,
            compression,
        )?;
        let name = job.name.unwrap_or_else(|| "job".to_owned());
        let settings = JobSettings {
            name: &name,
            until_done: args.until_done,
        };
        for source in &mut sources {
            source.for_job(&settings);
        }
        let config = Config {
            name,
            lake: args
                .lake
                .clone()
                .or(job.lake)
                .unwrap_or_else(|| "./lake".to_owned()),
            compression,
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
                    .unwrap_or(100_000),
                tick: duration(
                    args.tick,
                    &job.batch.tick,
                    "batch.tick",
                    BatchPolicy::DEFAULT_TICK,
                )?,
            },
            analytics,
            maintenance,
            until_done: args.until_done,
            cluster,
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
        if self.batch.tick.is_zero() || self.batch.tick > self.batch.interval {
            return invalid(format!(
                "the batch tick must be longer than 0 and at most the batch interval ({:?})",
                self.batch.interval
            ));
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
        assert!(config.sources[0].settings::<EmulatorSpec>().is_some());
        assert_eq!(config.sources.len(), 1);
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
    fn the_job_settings_reach_the_sources() {
        use crate::connectors::kafka::{KafkaSpec, Topics};
        use crate::connectors::kinesis::{KinesisSpec, Streams};
        let config = Config::resolve(&run_args(&[
            "--from",
            "kafka://127.0.0.1:9092/abc",
            "--from",
            "kinesis://abc?region=eu-west-1",
            "--until-done",
        ]))
        .unwrap();
        let kafka = config.sources[0].settings::<KafkaSpec>().unwrap();
        assert_eq!(kafka.topics, Topics::Prefix("abc".into()));
        assert_eq!(kafka.group_id.as_deref(), Some("pinstream-local"));
        assert!(kafka.stop_at_end);
        let kinesis = config.sources[1].settings::<KinesisSpec>().unwrap();
        assert_eq!(kinesis.streams, Streams::Prefix("abc".into()));
        assert_eq!(kinesis.region.as_deref(), Some("eu-west-1"));
        assert!(kinesis.stop_at_end);

        // A job file's section goes to its connector; its errors name the job file.
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job.toml");
        for (body, needle) in [
            (
                "type = \"kafka\"\nbrokers = \"h:1\"",
                "topic_prefix or a non-empty topics list",
            ),
            ("type = \"pulsar\"", "unknown source type `pulsar`"),
            ("dir = \".\"", "missing field `type`"),
        ] {
            std::fs::write(&job, format!("[[source]]\n{body}\n")).unwrap();
            let error = Config::resolve(&run_args(&[job.to_str().unwrap()]))
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("job file "), "{error}");
            assert!(error.contains(needle), "{body}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }

    #[test]
    fn sizes_take_decimal_and_binary_units() {
        assert_eq!(parse_size("128MiB"), Ok(128 << 20));
        assert_eq!(parse_size("64 MB"), Ok(64_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert!(
            parse_size("12 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_size("0").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn maintenance_defaults_flags_and_job_settings() {
        let config = Config::resolve(&run_args(&[])).unwrap();
        assert_eq!(
            config.maintenance.compact_every,
            Some(Duration::from_secs(600))
        );
        assert_eq!(config.maintenance.compaction, CompactionPolicy::default());
        let config = Config::resolve(&run_args(&[
            "--compact-every",
            "off",
            "--target-file-size",
            "1MiB",
            "--min-files",
            "3",
        ]))
        .unwrap();
        assert_eq!(config.maintenance.compact_every, None);
        assert_eq!(config.maintenance.compaction.target_file_size, 1 << 20);
        assert_eq!(config.maintenance.compaction.min_files, 3);

        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job.toml");
        let source = "[[source]]\ntype = \"file\"\ndir = \".\"\n";
        std::fs::write(
            &job,
            format!("[maintenance]\ncompact_every = \"30s\"\ntarget_file_size = 1048576\n{source}"),
        )
        .unwrap();
        let config = Config::resolve(&run_args(&[job.to_str().unwrap()])).unwrap();
        assert_eq!(
            config.maintenance.compact_every,
            Some(Duration::from_secs(30))
        );
        assert_eq!(config.maintenance.compaction.target_file_size, 1 << 20);
        for (body, needle) in [
            ("compact_every = \"0s\"", "maintenance.compact_every"),
            ("target_file_size = \"big\"", "maintenance.target_file_size"),
            ("target_file_size = true", "maintenance.target_file_size"),
            ("min_files = 1", "min_files must be at least 2"),
            ("every = \"1m\"", "unknown field"),
        ] {
            std::fs::write(&job, format!("[maintenance]\n{body}\n{source}")).unwrap();
            let error = Config::resolve(&run_args(&[job.to_str().unwrap()]))
                .unwrap_err()
                .to_string();
            assert!(error.contains(needle), "{body}: {error}");
        }
    }

    #[test]
    fn maintain_compacts_unless_only_vacuum_is_asked() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["pinstream", "maintain"];
            argv.extend(extra);
            match Cli::try_parse_from(argv).expect("parses").command {
                Command::Maintain(args) => MaintainConfig::resolve(&args).unwrap(),
                other => panic!("not maintain: {other:?}"),
            }
        };
        let plain = parse(&["--lake", "s3://b/p"]);
        assert_eq!(plain.lake, "s3://b/p");
        assert!(plain.compaction.is_some() && plain.vacuum.is_none());
        let vacuum = parse(&["--vacuum"]);
        assert_eq!(vacuum.lake, "./lake");
        assert!(vacuum.compaction.is_none());
        assert_eq!(
            vacuum.vacuum,
            Some((Duration::from_secs(7 * 86_400), false))
        );
        let both = parse(&["--vacuum", "--compact", "--retention", "1h", "--force"]);
        assert!(both.compaction.is_some());
        assert_eq!(both.vacuum, Some((Duration::from_secs(3600), true)));
        let zstd = parse(&["--compression", "zstd(3)"]);
        assert_eq!(zstd.compaction.unwrap().codec.to_string(), "zstd(3)");
    }

    /// The codec: Snappy unless the job's `compression` or `--compression` (which wins) says
    /// otherwise, the same for the data files and compaction's rewrites; a bad one is refused
    /// with the job file and the key named.
    #[test]
    fn compression_comes_from_the_flag_then_the_job_file() {
        let default = Config::resolve(&run_args(&["--from", "file:."])).unwrap();
        assert_eq!(default.compression, Codec::default());
        assert_eq!(default.compression.to_string(), "snappy");

        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job.toml");
        let source = "[[source]]\ntype = \"file\"\ndir = \".\"\n";
        std::fs::write(&job, format!("compression = \"zstd\"\n{source}")).unwrap();
        let from_file = Config::resolve(&run_args(&[job.to_str().unwrap()])).unwrap();
        assert_eq!(from_file.compression.to_string(), "zstd(1)");
        assert_eq!(
            from_file.maintenance.compaction.codec,
            from_file.compression
        );
        let flag =
            Config::resolve(&run_args(&[job.to_str().unwrap(), "--compression", "lz4"])).unwrap();
        assert_eq!(flag.compression.to_string(), "lz4");
        assert_eq!(flag.maintenance.compaction.codec, flag.compression);

        std::fs::write(&job, format!("compression = \"lzo\"\n{source}")).unwrap();
        let error = Config::resolve(&run_args(&[job.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("job.toml") && error.contains("compression `lzo`: unknown codec"),
            "{error}"
        );
        let refused = Cli::try_parse_from(["pinstream", "run", "--compression", "zstd(40)"])
            .unwrap_err()
            .to_string();
        assert!(refused.contains("zstd levels are 1 to 22"), "{refused}");
    }
}
