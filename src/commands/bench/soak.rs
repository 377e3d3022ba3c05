//! `pinstream bench --soak`: a long run at a steady rate, watched from outside.
//!
//! A child `pinstream run --from emulator:rate=R` (analytics on, online compaction on, the
//! emulator drawing from `--universe` posts) into a fresh lake, sampled every `--sample`:
//! the child's resident memory (`/proc/<pid>/status` VmRSS), freshness and commit latency
//! over the last 10 s (the `*_recent_*` gauges of `/metrics`), records read and rows
//! committed, and per table its live data files (from the Delta log), version and log
//! checkpoints. Each sample is one CSV row and one printed line; at the end a verdict:
//!
//! - **memory flat**: every sample of the last 10 minutes within ±10% of the sample at the
//!   10th minute. A run shorter than 20 minutes is scaled: every sample of the second half
//!   within ±10% of the sample at the half.
//! - **freshness p99 steady**, after a warm-up of the first tenth of the run: no sample's
//!   p99 above twice the median sample p99, and the median of the last third at most 25%
//!   above the median of the first third (faster is not a failure).
//! - **log checkpoints present**: every table has one, and the last is at most
//!   2 × [`CHECKPOINT_INTERVAL`] commits behind the table's version (one every 10 commits;
//!   a compaction commit on the tenth skips one).
//! - **small files compacted**: no table ever holds more live files than compaction lets
//!   it (see [`file_bound`]).
//!
//! A failed criterion makes the command fail (exit status 1) once everything is printed.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deltalake::DeltaTable;

use super::{Error, bench_dir, io, median};
use crate::config::BenchArgs;
use crate::sink::delta::CHECKPOINT_INTERVAL;
use crate::sink::maintain::{self, DEFAULT_MIN_FILES, DEFAULT_TARGET_FILE_SIZE};
use crate::table::Table;

/// The child's micro-batch length: one commit per table per batch.
const BATCH_INTERVAL: Duration = Duration::from_secs(1);
/// The child's compaction period at most (the engine's default); shorter runs compact every
/// third of their length, so that each sees compaction at least twice.
const COMPACT_EVERY: Duration = Duration::from_secs(600);
/// How long the child may take to stop (commit what it holds) after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// What the soak runs: the settings the verdict's bounds are derived from.
#[derive(Clone, Debug, PartialEq)]
struct Plan {
    duration: Duration,
    sample: Duration,
    rate: u64,
    universe: u64,
    workers: usize,
    compact_every: Duration,
}

impl Plan {
    fn new(args: &BenchArgs) -> Result<Plan, Error> {
        if !(args.minutes > 0.0 && args.minutes.is_finite()) || args.sample.is_zero() {
            return Err(Error::BenchCheck(format!(
                "--minutes ({}) and --sample ({:?}) must be longer than 0",
                args.minutes, args.sample
            )));
        }
        let duration = Duration::from_secs_f64(args.minutes * 60.0);
        Ok(Plan {
            duration,
            sample: args.sample,
            rate: args.rate,
            universe: args.universe.last().copied().unwrap_or(1_000_000),
            workers: args.workers.iter().copied().max().unwrap_or(1),
            compact_every: COMPACT_EVERY.min(duration / 3).max(Duration::from_secs(1)),
        })
    }
}

/// One table at one moment, as its Delta log says.
#[derive(Clone, Debug, Default, PartialEq)]
struct TableState {
    /// Live data files (added and not removed).
    files: usize,
    bytes: u64,
    version: i64,
    /// `_delta_log/*.checkpoint*.parquet` files.
    checkpoints: usize,
    last_checkpoint: Option<i64>,
}

/// One sample of the run.
#[derive(Clone, Debug, Default, PartialEq)]
struct Sample {
    seconds: f64,
    rss_bytes: u64,
    records_in: u64,
    rows_committed: u64,
    /// Records read per second since the previous sample.
    records_per_second: f64,
    /// Over the last 10 s; `None` when nothing was published (or committed) in them.
    freshness_p50_ms: Option<f64>,
    freshness_p99_ms: Option<f64>,
    commit_p99_ms: Option<f64>,
    commit_max_ms: Option<f64>,
    /// In [`Table::ALL`] order.
    tables: Vec<TableState>,
}

/// The CSV header: one column per [`Sample`] figure, then four per table.
fn csv_header() -> String {
    let mut columns: Vec<String> = [
        "seconds",
        "rss_mib",
        "records_in",
        "rows_committed",
        "records_per_second",
        "freshness_p50_ms",
        "freshness_p99_ms",
        "commit_latency_p99_ms",
        "commit_latency_max_ms",
    ]
    .map(str::to_owned)
    .to_vec();
    for table in Table::ALL {
        for figure in ["files", "bytes", "version", "checkpoints"] {
            columns.push(format!("{}_{figure}", table.name()));
        }
    }
    columns.join(",")
}

fn csv_row(sample: &Sample) -> String {
    let optional = |value: Option<f64>| value.map_or(String::new(), |v| format!("{v:.1}"));
    let mut fields = vec![
        format!("{:.1}", sample.seconds),
        format!("{:.1}", mib(sample.rss_bytes)),
        sample.records_in.to_string(),
        sample.rows_committed.to_string(),
        format!("{:.0}", sample.records_per_second),
        optional(sample.freshness_p50_ms),
        optional(sample.freshness_p99_ms),
        optional(sample.commit_p99_ms),
        optional(sample.commit_max_ms),
    ];
    for table in &sample.tables {
        fields.extend([
            table.files.to_string(),
            table.bytes.to_string(),
            table.version.to_string(),
            table.checkpoints.to_string(),
        ]);
    }
    fields.join(",")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

pub fn soak(args: &BenchArgs) -> Result<(), Error> {
    let plan = Plan::new(args)?;
    let dir = bench_dir(args);
    let lake = dir.join("soak-lake");
    let _ = std::fs::remove_dir_all(&lake);
    std::fs::create_dir_all(&dir).map_err(io("creating the bench directory"))?;
    let mut csv =
        std::fs::File::create(&args.csv).map_err(io(format!("creating {}", args.csv.display())))?;
    writeln!(csv, "{}", csv_header()).map_err(io("writing the CSV"))?;
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(io("finding a free port"))?;
    let log = dir.join("soak-run.log");
    println!(
        "soak: {:.1} min at {} events/s ({} records/s), universe {} posts, {} worker(s), \
         compaction every {}, samples every {} into {}; the run's log: {}",
        plan.duration.as_secs_f64() / 60.0,
        plan.rate,
        plan.rate * 3,
        plan.universe,
        plan.workers,
        humantime::format_duration(plan.compact_every),
        humantime::format_duration(plan.sample),
        args.csv.display(),
        log.display(),
    );
    let mut child = start_run(&plan, &lake, address, &log)?;
    let result = watch(&plan, &mut child, &lake, address, &mut csv);
    let stopped = stop(&mut child);
    let samples = result?;
    stopped?;
    let verdict = verdict(&plan, &samples);
    println!("verdict:");
    for criterion in &verdict {
        println!(
            "  {} {}: {}",
            if criterion.pass { "PASS" } else { "FAIL" },
            criterion.name,
            criterion.figures
        );
    }
    let failed: Vec<&str> = verdict.iter().filter(|c| !c.pass).map(|c| c.name).collect();
    println!(
        "soak verdict: {}",
        if failed.is_empty() { "PASS" } else { "FAIL" }
    );
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::BenchCheck(format!(
            "soak failed: {}",
            failed.join(", ")
        )))
    }
}

/// Starts `pinstream run` from the endless emulator into `lake`, its log into `log`.
fn start_run(
    plan: &Plan,
    lake: &Path,
    address: std::net::SocketAddr,
    log: &Path,
) -> Result<Child, Error> {
    let log = std::fs::File::create(log).map_err(io("creating the run's log"))?;
    Command::new(std::env::current_exe().map_err(io("locating pinstream"))?)
        .args(["run", "--from"])
        .arg(format!(
            "emulator:rate={},seed=3,universe={}",
            plan.rate, plan.universe
        ))
        .arg("--lake")
        .arg(lake)
        .args(["--workers", &plan.workers.to_string()])
        .args(["--http", &address.to_string()])
        .arg("--batch-interval")
        .arg(humantime::format_duration(BATCH_INTERVAL).to_string())
        .arg("--compact-every")
        .arg(humantime::format_duration(plan.compact_every).to_string())
        .args(["--min-files", &DEFAULT_MIN_FILES.to_string()])
        .args(["--target-file-size", &DEFAULT_TARGET_FILE_SIZE.to_string()])
        .env("PINSTREAM_LOG", "warn,pinstream=info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(io("starting pinstream run"))
}

/// SIGTERM (the child commits what it holds and exits 0), SIGKILL after [`STOP_TIMEOUT`].
fn stop(child: &mut Child) -> Result<(), Error> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let started = Instant::now();
    loop {
        match child.try_wait().map_err(io("waiting for pinstream run"))? {
            Some(status) if status.success() => return Ok(()),
            Some(status) => {
                return Err(Error::BenchCheck(format!(
                    "pinstream run exited with {status}"
                )));
            }
            None if started.elapsed() > STOP_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::BenchCheck(format!(
                    "pinstream run did not stop within {} s of SIGTERM",
                    STOP_TIMEOUT.as_secs()
                )));
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Samples the child every `plan.sample` until `plan.duration` has passed, writing each
/// sample to `csv` and a line to stdout.
fn watch(
    plan: &Plan,
    child: &mut Child,
    lake: &Path,
    address: std::net::SocketAddr,
    csv: &mut std::fs::File,
) -> Result<Vec<Sample>, Error> {
    let runtime = super::super::io_runtime()?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let metrics_url = format!("http://{address}/metrics");
    let started = Instant::now();
    let mut tables: Vec<Option<DeltaTable>> = Table::ALL.iter().map(|_| None).collect();
    let mut samples: Vec<Sample> = Vec::new();
    let pid = child.id().to_string();
    for tick in 1.. {
        let due = plan.sample * tick;
        if due > plan.duration + plan.sample / 2 {
            break;
        }
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        if let Some(status) = child.try_wait().map_err(io("watching pinstream run"))? {
            return Err(Error::BenchCheck(format!(
                "pinstream run exited with {status} after {:.0} s (see its log)",
                started.elapsed().as_secs_f64()
            )));
        }
        let seconds = started.elapsed().as_secs_f64();
        let rss_bytes = super::super::status_bytes(&pid, "VmRSS").unwrap_or(0);
        // Before the server listens (the first second or so) a scrape fails: empty figures.
        let metrics = agent
            .get(&metrics_url)
            .call()
            .ok()
            .and_then(|mut response| response.body_mut().read_to_string().ok())
            .unwrap_or_default();
        let figure = |series: &str| metric(&metrics, series);
        let millis = |series: &str| figure(series).map(|seconds| seconds * 1e3);
        let records_in =
            figure(r#"pinstream_source_records_total{kind="emulator"}"#).unwrap_or(0.0) as u64;
        let previous = samples.last().cloned().unwrap_or_default();
        let table_states = runtime.block_on(read_tables(lake, &mut tables));
        let sample = Sample {
            seconds,
            rss_bytes,
            records_in,
            rows_committed: figure("pinstream_rows_committed_total").unwrap_or(0.0) as u64,
            records_per_second: records_in.saturating_sub(previous.records_in) as f64
                / (seconds - previous.seconds).max(1e-3),
            freshness_p50_ms: millis(r#"pinstream_freshness_recent_seconds{quantile="0.5"}"#),
            freshness_p99_ms: millis(r#"pinstream_freshness_recent_seconds{quantile="0.99"}"#),
            commit_p99_ms: millis(
                r#"pinstream_batch_commit_latency_recent_seconds{quantile="0.99"}"#,
            ),
            commit_max_ms: millis(r#"pinstream_batch_commit_latency_recent_seconds{quantile="1"}"#),
            tables: table_states,
        };
        writeln!(csv, "{}", csv_row(&sample)).map_err(io("writing the CSV"))?;
        csv.flush().map_err(io("writing the CSV"))?;
        println!("{}", sample_line(&sample));
        samples.push(sample);
    }
    Ok(samples)
}

/// The value of one series (`name{labels}` exactly as rendered) in Prometheus text.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// Every table's state now (a table not yet created: all zero). The handles are kept and
/// brought up to date, so each sample reads only the new commits.
async fn read_tables(lake: &Path, handles: &mut [Option<DeltaTable>]) -> Vec<TableState> {
    let mut states = Vec::new();
    for (table, handle) in Table::ALL.into_iter().zip(handles.iter_mut()) {
        if handle.is_none() {
            let root = url::Url::from_directory_path(lake).ok();
            if let Some(root) = root {
                *handle = maintain::open(&root, table.name()).await.ok().flatten();
            }
        }
        let mut state = TableState::default();
        if let Some(delta) = handle.as_mut() {
            match delta.update_state().await {
                Ok(()) => {
                    if let Ok(snapshot) = delta.snapshot() {
                        for file in snapshot.log_data() {
                            state.files += 1;
                            state.bytes += file.size().max(0) as u64;
                        }
                    }
                    state.version = delta.version().map_or(-1, |v| v as i64);
                }
                Err(error) => tracing::warn!(table = %table, "soak: reading the log: {error}"),
            }
        }
        (state.checkpoints, state.last_checkpoint) =
            checkpoints(&lake.join(table.name()).join("_delta_log"));
        states.push(state);
    }
    states
}

/// The checkpoint files in a `_delta_log` directory, and the last one's version.
fn checkpoints(log: &Path) -> (usize, Option<i64>) {
    let versions: Vec<i64> = std::fs::read_dir(log)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let (version, rest) = name.split_once('.')?;
            (rest.starts_with("checkpoint") && rest.ends_with("parquet"))
                .then(|| version.parse().ok())?
        })
        .collect();
    (versions.len(), versions.iter().copied().max())
}

fn sample_line(sample: &Sample) -> String {
    let millis = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.0} ms"));
    let files: Vec<String> = Table::ALL
        .iter()
        .zip(&sample.tables)
        .map(|(table, state)| format!("{} {}/{}", table.name(), state.files, state.checkpoints))
        .collect();
    format!(
        "{:>6.0} s  RSS {:>6.0} MiB  {:>7.0} records/s  {} rows  freshness p50 {} p99 {}  \
         commit p99 {} max {}  files/checkpoints {}",
        sample.seconds,
        mib(sample.rss_bytes),
        sample.records_per_second,
        sample.rows_committed,
        millis(sample.freshness_p50_ms),
        millis(sample.freshness_p99_ms),
        millis(sample.commit_p99_ms),
        millis(sample.commit_max_ms),
        files.join(", "),
    )
}

/// One criterion of the verdict, with the figures it was judged on.
#[derive(Debug, PartialEq)]
struct Criterion {
    name: &'static str,
    pass: bool,
    figures: String,
}

fn verdict(plan: &Plan, samples: &[Sample]) -> Vec<Criterion> {
    vec![
        memory_flat(plan, samples),
        freshness_steady(plan, samples),
        checkpoints_present(samples),
        files_compacted(plan, samples),
        commit_latency(samples),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The first sample at or after `seconds`.
fn sample_at(samples: &[Sample], seconds: f64) -> Option<&Sample> {
    samples.iter().find(|sample| sample.seconds >= seconds)
}

/// Every sample of the last 10 minutes within ±10% of the sample at the 10th minute; for a
/// run shorter than 20 minutes, every sample of the second half against the one at the half.
fn memory_flat(plan: &Plan, samples: &[Sample]) -> Option<Criterion> {
    let length = plan.duration.as_secs_f64();
    let (reference_at, window_from) = if length >= 1200.0 {
        (600.0, length - 600.0)
    } else {
        (length / 2.0, length / 2.0)
    };
    let name = "memory flat";
    let Some(reference) = sample_at(samples, reference_at) else {
        return Some(Criterion {
            name,
            pass: false,
            figures: format!("no sample at {reference_at:.0} s"),
        });
    };
    let window: Vec<u64> = samples
        .iter()
        .filter(|s| s.seconds >= window_from)
        .map(|s| s.rss_bytes)
        .collect();
    let (low, high) = (
        window.iter().copied().min().unwrap_or(0),
        window.iter().copied().max().unwrap_or(0),
    );
    let base = reference.rss_bytes as f64;
    let pass = base > 0.0 && low as f64 >= 0.9 * base && high as f64 <= 1.1 * base;
    Some(Criterion {
        name,
        pass,
        figures: format!(
            "RSS {:.0} MiB at {:.0} s; from {window_from:.0} s on {:.0}..{:.0} MiB ({:+.1}%..{:+.1}%, bound ±10%), {:.0} MiB at the end",
            mib(reference.rss_bytes),
            reference.seconds,
            mib(low),
            mib(high),
            100.0 * (low as f64 / base - 1.0),
            100.0 * (high as f64 / base - 1.0),
            mib(samples.last().map_or(0, |s| s.rss_bytes)),
        ),
    })
}

/// After the first tenth of the run: no sample's p99 above twice the median sample p99,
/// and the last third's median at most 25% above the first third's.
fn freshness_steady(plan: &Plan, samples: &[Sample]) -> Option<Criterion> {
    let length = plan.duration.as_secs_f64();
    let name = "freshness p99 steady";
    let after: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.seconds > length / 10.0)
        .filter_map(|s| Some((s.seconds, s.freshness_p99_ms?)))
        .collect();
    let all = || after.iter().map(|(_, p99)| *p99).collect::<Vec<f64>>();
    let Some(median_all) = median(&mut all()) else {
        return Some(Criterion {
            name,
            pass: false,
            figures: "no freshness after the warm-up".into(),
        });
    };
    let third = |from: f64, to: f64| {
        let mut values: Vec<f64> = after
            .iter()
            .filter(|(seconds, _)| *seconds > from && *seconds <= to)
            .map(|(_, p99)| *p99)
            .collect();
        median(&mut values)
    };
    let start = length / 10.0;
    let span = (length - start) / 3.0;
    let first = third(start, start + span).unwrap_or(median_all);
    let last = third(start + 2.0 * span, f64::INFINITY).unwrap_or(median_all);
    let values = all();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    let pass = max <= 2.0 * median_all && last <= 1.25 * first;
    Some(Criterion {
        name,
        pass,
        figures: format!(
            "after {start:.0} s: sample p99 min {min:.0} / median {median_all:.0} / max {max:.0} ms (max bound 2 × median = {:.0}); first third's median {first:.0} ms, last third's {last:.0} ms ({:+.0}%, bound +25%)",
            2.0 * median_all,
            100.0 * (last / first - 1.0),
        ),
    })
}

/// Every table has a log checkpoint at the end, at most 2 × CHECKPOINT_INTERVAL behind.
fn checkpoints_present(samples: &[Sample]) -> Option<Criterion> {
    let last = samples.last()?;
    let mut pass = true;
    let figures: Vec<String> = Table::ALL
        .iter()
        .zip(&last.tables)
        .map(|(table, state)| {
            let keeping_up = state.last_checkpoint.is_some_and(|checkpoint| {
                state.version - checkpoint <= 2 * CHECKPOINT_INTERVAL as i64
            });
            pass &= keeping_up;
            format!(
                "{} {} (last at version {}, table at {})",
                table.name(),
                state.checkpoints,
                state.last_checkpoint.map_or("-".into(), |v| v.to_string()),
                state.version
            )
        })
        .collect();
    Some(Criterion {
        name: "log checkpoints present",
        pass,
        figures: figures.join("; "),
    })
}

/// The most live files compaction lets a table hold: after a pass, fewer than `min_files`
/// small files plus the packed ones (bytes / target size, rounded up); then each batch adds
/// at most one file per worker until the next pass, a period (with a quarter of slack for the
/// pass itself and the samples' timing) later.
fn file_bound(plan: &Plan, bytes: u64) -> usize {
    let batches_per_period =
        (plan.compact_every.as_secs_f64() * 1.25 / BATCH_INTERVAL.as_secs_f64()).ceil() as usize;
    DEFAULT_MIN_FILES
        + bytes.div_ceil(DEFAULT_TARGET_FILE_SIZE) as usize
        + plan.workers * batches_per_period
}

/// No sample of any table above [`file_bound`].
fn files_compacted(plan: &Plan, samples: &[Sample]) -> Option<Criterion> {
    let last = samples.last()?;
    let mut pass = true;
    let figures: Vec<String> = Table::ALL
        .iter()
        .enumerate()
        .map(|(index, table)| {
            let (mut peak, mut bound, mut drops) = (0, 0, 0);
            let mut previous = 0;
            for sample in samples {
                let state = &sample.tables[index];
                let limit = file_bound(plan, state.bytes);
                pass &= state.files <= limit;
                if state.files >= peak {
                    (peak, bound) = (state.files, limit);
                }
                drops += usize::from(state.files < previous);
                previous = state.files;
            }
            format!(
                "{} {} at the end, peak {peak} (bound {bound}), {drops} compaction(s) seen",
                table.name(),
                last.tables[index].files,
            )
        })
        .collect();
    Some(Criterion {
        name: "small files compacted",
        pass,
        figures: figures.join("; "),
    })
}

/// Commit latency is reported, not judged (the issue sets no bound): always a pass.
fn commit_latency(samples: &[Sample]) -> Option<Criterion> {
    let mut p99: Vec<f64> = samples.iter().filter_map(|s| s.commit_p99_ms).collect();
    let max = samples
        .iter()
        .filter_map(|s| s.commit_max_ms)
        .fold(0.0, f64::max);
    let median_p99 = median(&mut p99)?;
    Some(Criterion {
        name: "commit latency (reported)",
        pass: true,
        figures: format!(
            "sample p99 median {median_p99:.0} ms, largest p99 {:.0} ms, max {max:.0} ms",
            p99.last().copied().unwrap_or(0.0)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(minutes: u64) -> Plan {
        Plan {
            duration: Duration::from_secs(minutes * 60),
            sample: Duration::from_secs(10),
            rate: 20_000,
            universe: 1_000_000,
            workers: 2,
            compact_every: Duration::from_secs(600),
        }
    }

    fn samples(
        minutes: u64,
        rss_mib: impl Fn(f64) -> u64,
        p99: impl Fn(f64) -> f64,
    ) -> Vec<Sample> {
        (1..=minutes * 6)
            .map(|tick| {
                let seconds = tick as f64 * 10.0;
                Sample {
                    seconds,
                    rss_bytes: rss_mib(seconds) << 20,
                    freshness_p99_ms: Some(p99(seconds)),
                    tables: Table::ALL
                        .iter()
                        .map(|_| TableState {
                            files: 30,
                            bytes: 1 << 20,
                            version: seconds as i64,
                            checkpoints: seconds as usize / 10,
                            last_checkpoint: Some(seconds as i64 / 10 * 10),
                        })
                        .collect(),
                    ..Sample::default()
                }
            })
            .collect()
    }

    #[test]
    fn memory_flat_compares_the_last_ten_minutes_with_the_tenth() {
        let flat = samples(
            30,
            |s| if s < 300.0 { 100 } else { 400 + (s as u64 % 7) },
            |_| 900.0,
        );
        assert!(memory_flat(&plan(30), &flat).unwrap().pass);
        // Growing 1 MiB a minute from 400 MiB: +20 MiB by the end is 5%, still flat...
        let slow = samples(30, |s| 400 + (s / 60.0) as u64, |_| 900.0);
        assert!(memory_flat(&plan(30), &slow).unwrap().pass);
        // ...10 MiB a minute is not.
        let leak = samples(30, |s| 400 + (s / 6.0) as u64, |_| 900.0);
        let criterion = memory_flat(&plan(30), &leak).unwrap();
        assert!(!criterion.pass, "{criterion:?}");
        // A 10-minute run judges its second half against the sample at 5 minutes.
        let short = samples(10, |s| if s < 300.0 { 100 } else { 400 }, |_| 900.0);
        assert!(memory_flat(&plan(10), &short).unwrap().pass);
    }

    #[test]
    fn freshness_steady_allows_neither_spikes_nor_drift() {
        let steady = samples(30, |_| 400, |s| 900.0 + (s % 50.0));
        assert!(freshness_steady(&plan(30), &steady).unwrap().pass);
        // The warm-up (first tenth) may be slow.
        let warm = samples(30, |_| 400, |s| if s < 180.0 { 9_000.0 } else { 900.0 });
        assert!(freshness_steady(&plan(30), &warm).unwrap().pass);
        let spike = samples(30, |_| 400, |s| if s == 1000.0 { 2_000.0 } else { 900.0 });
        assert!(!freshness_steady(&plan(30), &spike).unwrap().pass);
        let drift = samples(30, |_| 400, |s| 600.0 + s / 3.0);
        assert!(!freshness_steady(&plan(30), &drift).unwrap().pass);
    }

    #[test]
    fn checkpoints_and_files() {
        let run = samples(30, |_| 400, |_| 900.0);
        assert!(checkpoints_present(&run).unwrap().pass);
        assert!(files_compacted(&plan(30), &run).unwrap().pass);
        let mut behind = run.clone();
        behind.last_mut().unwrap().tables[2].last_checkpoint = Some(1000);
        assert!(!checkpoints_present(&behind).unwrap().pass);
        // 10 small + 1 packed + 2 workers × 750 batches.
        assert_eq!(file_bound(&plan(30), 1 << 20), 1511);
        let mut piling = run;
        piling[100].tables[3].files = 1512;
        assert!(!files_compacted(&plan(30), &piling).unwrap().pass);
    }

    #[test]
    fn csv_rows_have_every_column() {
        let run = samples(1, |_| 400, |_| 900.0);
        let columns = csv_header().split(',').count();
        assert_eq!(columns, 9 + 4 * Table::ALL.len());
        assert_eq!(csv_row(&run[0]).split(',').count(), columns);
        assert_eq!(
            metric("a 1\npinstream_x{q=\"1\"} 0.25\n", "pinstream_x{q=\"1\"}"),
            Some(0.25)
        );
    }
}
