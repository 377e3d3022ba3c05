//! Configuration: the command line (clap) and job files (TOML), checked into one [`Config`].
//!
//! Two stages, as in ripgrep: raw flags and the raw job file first, then [`Config::resolve`]
//! applies the flags over the job and checks everything, so a bad setting is one clear line
//! before anything starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::source::SourceSpec;
use crate::source::emulator::EmulatorSpec;

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
    /// Lake root for every table: a local directory or s3://bucket/prefix. Overrides the job's.
    #[arg(long)]
    pub lake: Option<String>,
    /// A source, replacing the job's sources (repeat for several): file:<dir>,
    /// emulator:events=<n>,seed=<s>,rate=<per-second>[,universe=<n>][,partitions=<n>].
    #[arg(long = "from", value_name = "SOURCE")]
    pub from: Vec<String>,
    /// Timely worker threads. The tables do not depend on it.
    #[arg(long)]
    pub workers: Option<usize>,
    /// HTTP address for the API, metrics and dashboard (port 0: any free port).
    #[arg(long, env = "PINSTREAM_HTTP")]
    pub http: Option<SocketAddr>,
    /// Stop once every source is exhausted (files read, emulator count reached) and all is
    /// committed, then exit 0. Without it the job runs until Ctrl-C or SIGTERM.
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
    /// Where to: file:<dir> writes <dir>/pin.jsonl, geo.jsonl and user.jsonl.
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
}

impl SourceFile {
    fn into_spec(self, job_dir: &Path) -> SourceSpec {
        match self {
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
        }
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
        let sources = if args.from.is_empty() {
            job.source
                .into_iter()
                .map(|s| s.into_spec(&job_dir))
                .collect()
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
        let config = Config {
            name: job.name.unwrap_or_else(|| "job".to_owned()),
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
        for path in ["dataflows/local.toml", "dataflows/replay-files.toml"] {
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
}
