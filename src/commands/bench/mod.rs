//! `pinstream bench`: throughput of the whole pipeline against serde_json alone.
//!
//! 1. Generates the data with the emulator (files, as `pinstream emulate` does).
//! 2. Baseline: serde_json parsing every line into typed records (plain `String`/`i64`
//!    structs, no cleaning), on 1 thread and on all cores; and the same parse followed by
//!    writing the records as the tables' Parquet ([`parquet_floor`]), the floor that counts
//!    the output format too.
//! 3. The pipeline: `pinstream run --from file:<data> --until-done` in a child process per
//!    worker count, into a fresh lake: parse, clean, dedup, Delta commit. Wall time includes
//!    opening the tables and the last commit; peak memory is the child's. `--repeat` rounds,
//!    each measuring the floors on all cores right before its runs: a run's share is against
//!    its own round's floors, and the medians and ranges are printed.

pub mod flood;
mod kafka;
mod parquet_floor;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::Deserialize;

use super::Error;
use crate::clean::floor::parse_typed;
use crate::config::BenchArgs;
use crate::connectors::emulator::{self, EmulatorSpec};
use crate::stream::Stream;

mod soak;

/// What a run writes with `--summary`.
#[derive(Debug, Deserialize)]
pub struct RunSummary {
    pub records_in: u64,
    pub clean: u64,
    pub quarantined: u64,
    pub rows_committed: u64,
    pub seconds: f64,
    pub peak_rss_bytes: u64,
    /// User and system time of the whole run; `None` where the system did not tell it.
    pub cpu_seconds: Option<f64>,
    pub freshness_ms: Option<Freshness>,
    #[serde(default)]
    pub cluster_bytes_sent: u64,
    /// Time reading was held because the commits were behind.
    #[serde(default)]
    pub backpressure_seconds: f64,
}

#[derive(Debug, Deserialize)]
pub struct Freshness {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// The cores this machine gives the process: the floors' threads, and what a run's CPU time
/// is a share of.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The middle value (the upper one of an even count); `None` when there are none.
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// The median of `values` left as they are (NaN when there are none), for a printed line.
fn median_of(values: &[f64]) -> f64 {
    median(&mut values.to_vec()).unwrap_or(f64::NAN)
}

/// The lowest and the highest of `values`, as `low-high` with `decimals`.
fn range(values: &[f64], decimals: usize) -> String {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{low:.decimals$}-{high:.decimals$}")
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Every non-empty line of the three files, with its stream.
fn lines_of(files: &[(Stream, Vec<u8>)]) -> Vec<(Stream, &[u8])> {
    files
        .iter()
        .flat_map(|(stream, bytes)| {
            bytes
                .split(|b| *b == b'\n')
                .filter(|line| !line.is_empty())
                .map(move |line| (*stream, line))
        })
        .collect()
}

/// Runs `work` on `threads` threads over `lines`, thread i taking lines i, i + threads, ...
/// (every thread gets the same mix of streams; pins are the longest records). Returns what
/// the threads returned and the lines per second.
fn on_threads<'a, T: Send>(
    lines: &'a [(Stream, &'a [u8])],
    threads: usize,
    work: impl Fn(&mut dyn Iterator<Item = &'a (Stream, &'a [u8])>) -> T + Sync,
) -> (Vec<T>, f64) {
    let started = Instant::now();
    let results = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|thread| {
                let work = &work;
                scope.spawn(move || work(&mut lines.iter().skip(thread).step_by(threads)))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a floor thread panicked"))
            .collect()
    });
    (
        results,
        lines.len() as f64 / started.elapsed().as_secs_f64(),
    )
}

/// Parses every line with serde_json on `threads` threads: the records parsed and records/s.
fn serde_baseline(lines: &[(Stream, &[u8])], threads: usize) -> (usize, f64) {
    let (parsed, rate) = on_threads(lines, threads, |lines| {
        lines
            .filter(|(stream, line)| parse_typed(*stream, line))
            .count()
    });
    (parsed.into_iter().sum(), rate)
}

/// Parses every line and writes the records as the tables' Parquet on `threads` threads
/// ([`parquet_floor`]): the records parsed, the Parquet bytes and records/s.
fn parquet_baseline(
    lines: &[(Stream, &[u8])],
    threads: usize,
) -> Result<(usize, usize, f64), Error> {
    let (results, rate) = on_threads(lines, threads, |lines| {
        parquet_floor::parse_and_write(lines)
    });
    let (mut parsed, mut bytes) = (0, 0);
    for result in results {
        let (records, written) = result?;
        parsed += records;
        bytes += written;
    }
    Ok((parsed, bytes, rate))
}

/// Runs `pinstream run <source> --until-done` into a fresh `lake` and reads its summary.
fn run_pipeline(
    source: &str,
    lake: &Path,
    workers: usize,
    extra: &[&str],
) -> Result<RunSummary, Error> {
    let _ = std::fs::remove_dir_all(lake);
    resume_pipeline(source, lake, workers, extra)
}

/// Runs `pinstream run <source> --until-done` on `lake` as it is (a restart when it holds
/// the source's rows already) and reads its summary.
fn resume_pipeline(
    source: &str,
    lake: &Path,
    workers: usize,
    extra: &[&str],
) -> Result<RunSummary, Error> {
    let summary_path = lake.with_extension("summary.json");
    let status = Command::new(std::env::current_exe().map_err(io("locating pinstream"))?)
        .args(["run", "--from", source, "--lake"])
        .arg(lake)
        .args([
            "--until-done",
            "--workers",
            &workers.to_string(),
            "--summary",
        ])
        .arg(&summary_path)
        .args(["--http", "127.0.0.1:0"])
        .args(extra)
        .env("PINSTREAM_LOG", "warn")
        .status()
        .map_err(io("starting pinstream run"))?;
    if !status.success() {
        return Err(Error::Io {
            context: format!("pinstream run --workers {workers}"),
            source: std::io::Error::other(format!("exited with {status}")),
        });
    }
    let text = std::fs::read_to_string(&summary_path).map_err(io("reading the run summary"))?;
    serde_json::from_str(&text).map_err(|e| Error::Io {
        context: "parsing the run summary".into(),
        source: std::io::Error::other(e),
    })
}

pub fn bench(args: &BenchArgs) -> Result<(), Error> {
    if args.compaction {
        return bench_compaction(args);
    }
    if args.cluster {
        return bench_cluster(args);
    }
    if args.soak {
        return soak::soak(args);
    }
    if args.flood {
        return flood::bench_flood(args);
    }
    if let Some(brokers) = &args.kafka {
        return kafka::bench_kafka(args, brokers);
    }
    let dir = bench_dir(args);
    for &universe in &args.universe {
        bench_files(args, &dir, universe)?;
    }
    // Freshness: the emulator at a steady rate, record arrival -> aggregate published.
    if args.freshness_seconds > 0 {
        let workers = args.workers.iter().copied().max().unwrap_or(1);
        let universe = args.universe.last().copied().unwrap_or(1_000_000);
        for &rate in &args.freshness_rate {
            bench_freshness(args, &dir, workers, rate, universe)?;
        }
    }
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// The kind of data a universe makes, for the printed lines.
fn shape(universe: u64, events: u64) -> &'static str {
    if universe <= events / 10 {
        "mostly re-sends (the seeds' shape)"
    } else {
        "distinct-heavy"
    }
}

/// The pipeline's two ways of running on files, in the order each round runs them (the last
/// one's lake is the one the restart reads).
const FILE_RUNS: [(&str, &[&str]); 2] = [
    ("tables only", &["--no-analytics"]),
    ("with analytics", &[]),
];

/// One round of the floors on some threads: records/s of the parse alone and of the parse
/// with the format, and what they made.
struct Floors {
    parse: f64,
    format: f64,
    parsed: usize,
    parquet_bytes: usize,
}

impl Floors {
    fn measure(lines: &[(Stream, &[u8])], threads: usize) -> Result<Floors, Error> {
        let (parsed, parse) = serde_baseline(lines, threads);
        let (_, parquet_bytes, format) = parquet_baseline(lines, threads)?;
        Ok(Floors {
            parse,
            format,
            parsed,
            parquet_bytes,
        })
    }
}

/// The floors' lines: the median of the rounds and, for several, their range.
fn print_floors(threads: usize, rounds: &[Floors]) {
    let Some(first) = rounds.first() else {
        return;
    };
    let line = |floor: fn(&Floors) -> f64| {
        let values: Vec<f64> = rounds.iter().map(floor).collect();
        let middle = median_of(&values);
        match rounds.len() {
            1 => format!("{middle:>10.0} records/s"),
            n => format!(
                "{middle:>10.0} records/s (median of {n} rounds, {})",
                range(&values, 0)
            ),
        }
    };
    println!(
        "  floor: serde_json typed parse, {threads} thread(s): {} ({} parsed)",
        line(|f| f.parse),
        first.parsed
    );
    println!(
        "  floor with the format: the same parse, then the records as {} Parquet with the tables' settings (in memory), {threads} thread(s): {} ({} parsed, {:.1} MiB of Parquet)",
        parquet_floor::CODEC,
        line(|f| f.format),
        first.parsed,
        first.parquet_bytes as f64 / (1 << 20) as f64
    );
}

/// Two runs of the same data read every record and committed the same rows (clean,
/// quarantined, duplicates dropped): otherwise their rates compare different work.
fn check_same_rows(a: (&RunSummary, &str), b: (&RunSummary, &str)) -> Result<(), Error> {
    let counts = |s: &RunSummary| (s.records_in, s.clean, s.quarantined, s.rows_committed);
    if counts(a.0) != counts(b.0) || a.0.rows_committed == 0 {
        return Err(Error::BenchCheck(format!(
            "{} and {} differ: (records in, clean, quarantined, rows committed) = {:?} and {:?}",
            a.1,
            b.1,
            counts(a.0),
            counts(b.0)
        )));
    }
    Ok(())
}

/// Files -> Delta on `--events` from `universe` posts: for each worker count, `--repeat`
/// rounds of the floors on all cores followed by the pipeline tables only and with analytics;
/// each run's rate as a share of its own round's floors, the medians and ranges printed.
fn bench_files(args: &BenchArgs, dir: &Path, universe: u64) -> Result<(), Error> {
    let started = Instant::now();
    let data = generate(args, dir, universe)?;
    let files: Vec<(Stream, Vec<u8>)> = Stream::ALL
        .into_iter()
        .map(|stream| {
            std::fs::read(data.join(format!("{stream}.jsonl")))
                .map(|bytes| (stream, bytes))
                .map_err(io("reading the data"))
        })
        .collect::<Result<_, _>>()?;
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    let records = args.events * 3;
    println!(
        "data: {} events = {records} records, {:.1} MiB, universe {universe} posts, {} (generated in {:.1} s)",
        args.events,
        bytes as f64 / (1 << 20) as f64,
        shape(universe, args.events),
        started.elapsed().as_secs_f64()
    );
    let cores = cores();
    let lines = lines_of(&files);
    if cores > 1 {
        // For reference: what one core does (the shares below are against all of them).
        print_floors(1, &[Floors::measure(&lines, 1)?]);
    }
    let source = format!("file:{}", data.display());
    for &workers in &args.workers {
        let lake = dir.join(format!("lake-{workers}w"));
        // Each round measures the floors on all cores, then runs the pipeline both ways right
        // after: every run is compared with the floors the host gave at that moment (the
        // 2-thread parse floor ranged over 2.1-4.2M records/s within one hour on this VM).
        let mut rounds = Vec::new();
        let mut runs: [Vec<RunSummary>; 2] = Default::default();
        for _ in 0..args.repeat {
            rounds.push(Floors::measure(&lines, cores)?);
            for (runs, (_, extra)) in runs.iter_mut().zip(FILE_RUNS) {
                runs.push(run_pipeline(&source, &lake, workers, extra)?);
            }
        }
        print_floors(cores, &rounds);
        for (runs, (label, _)) in runs.iter().zip(FILE_RUNS) {
            for run in &runs[1..] {
                check_same_rows((&runs[0], "one file run"), (run, "another"))?;
            }
            let rates: Vec<f64> = runs
                .iter()
                .map(|run| run.records_in as f64 / run.seconds)
                .collect();
            let shares = |floor: fn(&Floors) -> f64| -> Vec<f64> {
                rates
                    .iter()
                    .zip(&rounds)
                    .map(|(rate, round)| 100.0 * rate / floor(round))
                    .collect()
            };
            let (parse_shares, format_shares) = (shares(|f| f.parse), shares(|f| f.format));
            let peaks: Vec<f64> = runs
                .iter()
                .map(|run| run.peak_rss_bytes as f64 / (1 << 20) as f64)
                .collect();
            println!(
                "  file -> Delta, {workers} worker(s), {label}, median of {} runs: {:>10.0} records/s ({:.2} s) = {:.0}% of the floor on {cores} cores (runs {}%), {:.0}% of the floor with the format (runs {}%), {} rows committed, {} distinct, peak RSS {:.0} MiB (runs {})",
                runs.len(),
                median_of(&rates),
                median_of(&runs.iter().map(|run| run.seconds).collect::<Vec<_>>()),
                median_of(&parse_shares),
                range(&parse_shares, 0),
                median_of(&format_shares),
                range(&format_shares, 0),
                runs[0].rows_committed,
                format_args!(
                    "{:.0}%",
                    100.0 * runs[0].rows_committed as f64 / runs[0].records_in.max(1) as f64
                ),
                median_of(&peaks),
                range(&peaks, 0),
            );
        }
        // A restart on the lake just written (with analytics): the rows the tables hold are
        // read back into the deduplication and the aggregates; nothing new is read.
        let restart = resume_pipeline(&source, &lake, workers, &[])?;
        println!(
            "  restart on that lake, {workers} worker(s), with analytics: caught up in {:.2} s ({} new rows), peak RSS {:.0} MiB",
            restart.seconds,
            restart.rows_committed,
            restart.peak_rss_bytes as f64 / (1 << 20) as f64,
        );
    }
    Ok(())
}

/// The emulator at `rate` events/s for `--freshness-seconds`, `--repeat` times: arrival ->
/// aggregates published, the medians of the runs and the range of their p99 and max (one run's
/// p99 at 100k events/s ranged over 26-105 ms on this machine). Each run's p99 is printed too,
/// with the share of all cores the run kept busy: a p99 far above the median comes with a
/// share near 100% (a slower host: the same run took 14.5 CPU-s or 19 on this VM), which tells
/// a saturated machine from a slow engine; and with how long its reading was held by the
/// commits (on this VM at 100k events/s, with 2 batches in flight, holds of 80-450 ms came
/// with a p99 of 44-248 ms, and runs held for none had 21-112 ms, median 34 ms).
fn bench_freshness(
    args: &BenchArgs,
    dir: &Path,
    workers: usize,
    rate: u64,
    universe: u64,
) -> Result<(), Error> {
    let events = rate * args.freshness_seconds;
    let source = format!("emulator:events={events},rate={rate},seed=2,universe={universe}");
    let lake = dir.join("lake-freshness");
    let cores = cores();
    let (mut achieved, mut p50, mut p99, mut max) = (vec![], vec![], vec![], vec![]);
    let mut runs = Vec::new();
    for _ in 0..args.repeat {
        let summary = run_pipeline(&source, &lake, workers, &[])?;
        achieved.push(summary.records_in as f64 / summary.seconds);
        if let Some(f) = summary.freshness_ms {
            p50.push(f.p50);
            p99.push(f.p99);
            max.push(f.max);
            let busy = match summary.cpu_seconds {
                Some(cpu) => format!(" at {:.0}%", 100.0 * cpu / (summary.seconds * cores as f64)),
                None => String::new(),
            };
            runs.push(format!(
                "{:.1} ms{busy} (held {:.0} ms)",
                f.p99,
                summary.backpressure_seconds * 1e3
            ));
        }
    }
    let (p99_range, max_range) = (range(&p99, 1), range(&max, 1));
    match (median(&mut p50), median(&mut p99), median(&mut max)) {
        (Some(p50), Some(p99), Some(max)) => println!(
            "freshness at {rate} events/s ({} records/s asked, {:.0} done), {workers} worker(s), analytics on, {} s, median of {} runs: p50 {p50:.1} ms, p99 {p99:.1} ms (runs {p99_range}), max {max:.1} ms (runs {max_range}) (arrival -> aggregates published); each run's p99 at the share of the {cores} cores it kept busy, and how long its reading was held by the commits (backpressure): {}",
            rate * 3,
            median(&mut achieved).unwrap_or(0.0),
            args.freshness_seconds,
            runs.len(),
            runs.join("; "),
        ),
        _ => println!("freshness at {rate} events/s: no sample"),
    }
    Ok(())
}

/// The benchmark's data (`--events` from `--universe` posts, seed 1) as files in
/// `<dir>/data`, made anew.
fn generate(args: &BenchArgs, dir: &Path, universe: u64) -> Result<PathBuf, Error> {
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let spec = EmulatorSpec {
        seed: 1,
        events: Some(args.events),
        universe,
        ..EmulatorSpec::default()
    };
    emulator::write_files(&spec, &data).map_err(io("generating the data"))?;
    Ok(data)
}

/// The directory for generated data and lakes: `--dir`, or a fresh temporary one.
fn bench_dir(args: &BenchArgs) -> PathBuf {
    args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("pinstream-bench-{}", std::process::id()))
    })
}

/// `bench --cluster`: the same data through 1 process × 2 workers and through a cluster of 2
/// processes × 1 worker on 127.0.0.1. Wall time for the cluster runs from the first start to
/// the last exit (the rendezvous and timely's connections included).
fn bench_cluster(args: &BenchArgs) -> Result<(), Error> {
    let dir = bench_dir(args);
    let universe = args.universe.last().copied().unwrap_or(1_000_000);
    let data = generate(args, &dir, universe)?;
    let records = args.events * 3;
    println!(
        "data: {} events = {records} records, universe {universe} posts",
        args.events
    );
    let source = format!("file:{}", data.display());
    let single = run_pipeline(&source, &dir.join("lake-1x2"), 2, &[])?;
    println!(
        "1 process x 2 workers:   {:>10.0} records/s, {:.2} s, peak RSS {:.0} MiB",
        single.records_in as f64 / single.seconds,
        single.seconds,
        single.peak_rss_bytes as f64 / (1 << 20) as f64,
    );
    let started = Instant::now();
    let summaries = run_cluster_pipeline(&source, &dir.join("lake-2x1"), 2, 1)?;
    let seconds = started.elapsed().as_secs_f64();
    let records_in: u64 = summaries.iter().map(|s| s.records_in).sum();
    let sent: u64 = summaries.iter().map(|s| s.cluster_bytes_sent).sum();
    let rss: Vec<String> = summaries
        .iter()
        .map(|s| format!("{:.0}", s.peak_rss_bytes as f64 / (1 << 20) as f64))
        .collect();
    println!(
        "2 processes x 1 worker:  {:>10.0} records/s, {seconds:.2} s (each process: {} s), peak RSS {} MiB; {:.0} bytes sent between processes per record ({:.1} MiB in all)",
        records_in as f64 / seconds,
        summaries
            .iter()
            .map(|s| format!("{:.2}", s.seconds))
            .collect::<Vec<_>>()
            .join(" / "),
        rss.join(" / "),
        sent as f64 / records_in.max(1) as f64,
        sent as f64 / (1 << 20) as f64,
    );
    if single.rows_committed != summaries.iter().map(|s| s.rows_committed).sum::<u64>() {
        return Err(Error::BenchCheck(format!(
            "the cluster committed {} rows, one process {}",
            summaries.iter().map(|s| s.rows_committed).sum::<u64>(),
            single.rows_committed
        )));
    }
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Runs `pinstream run <source> --until-done` as a cluster of `processes` on 127.0.0.1 into a
/// fresh `lake`; every process's summary.
fn run_cluster_pipeline(
    source: &str,
    lake: &Path,
    processes: usize,
    workers: usize,
) -> Result<Vec<RunSummary>, Error> {
    let _ = std::fs::remove_dir_all(lake);
    let hosts: Vec<String> = (0..processes)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .map(|address| address.to_string())
        })
        .collect::<Result<_, _>>()
        .map_err(io("finding free ports"))?;
    let hosts_file = lake.with_extension("hosts");
    std::fs::write(&hosts_file, hosts.join("\n")).map_err(io("writing the hosts file"))?;
    let exe = std::env::current_exe().map_err(io("locating pinstream"))?;
    let children = (0..processes)
        .map(|process| {
            Command::new(&exe)
                .args(["run", "--from", source, "--lake"])
                .arg(lake)
                .args(["--until-done", "--workers", &workers.to_string()])
                .arg("--hosts")
                .arg(&hosts_file)
                .args(["--process", &process.to_string(), "--summary"])
                .arg(lake.with_extension(format!("{process}.summary.json")))
                .args(["--http", "127.0.0.1:0"])
                .env("PINSTREAM_LOG", "warn")
                .stdout(std::process::Stdio::null())
                .spawn()
                .map_err(io("starting pinstream run"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (process, mut child) in children.into_iter().enumerate() {
        let status = child.wait().map_err(io("waiting for pinstream run"))?;
        if !status.success() {
            return Err(Error::Io {
                context: format!("pinstream run --process {process}"),
                source: std::io::Error::other(format!("exited with {status}")),
            });
        }
    }
    (0..processes)
        .map(|process| {
            let path = lake.with_extension(format!("{process}.summary.json"));
            let text = std::fs::read_to_string(path).map_err(io("reading a run summary"))?;
            serde_json::from_str(&text).map_err(|e| Error::Io {
                context: "parsing a run summary".into(),
                source: std::io::Error::other(e),
            })
        })
        .collect()
}

/// `bench --compaction`: the time to compact `--files` small files (`--rows-per-file` rows
/// of ~300 bytes each) of one table into files of the default target size, on a fresh lake
/// (`--lake`, local or s3://; default a temporary directory). The files are committed 100
/// per commit first (not timed).
fn bench_compaction(args: &BenchArgs) -> Result<(), Error> {
    use crate::sink::maintain::{self, CompactionPolicy, Report};
    use crate::sink::{Lake, SinkError, delta::FileWriter, schema::Codec};
    use crate::table::{QuarantineRow, Table, TableRow};

    let sink = |error: SinkError| Error::Engine(error.into());
    let temporary =
        std::env::temp_dir().join(format!("pinstream-bench-compaction-{}", std::process::id()));
    let location = match &args.lake {
        Some(lake) => lake.clone(),
        None => {
            let _ = std::fs::remove_dir_all(&temporary);
            temporary.display().to_string()
        }
    };
    let runtime = super::io_runtime()?;
    let result = runtime.block_on(async {
        let mut lake = Lake::open(&location, Codec::default())
            .await
            .map_err(sink)?;
        let started = Instant::now();
        let (mut adds, mut written_bytes, mut rows) = (Vec::new(), 0u64, 0u64);
        for file in 0..args.files {
            let mut writer = FileWriter::new(&lake, Table::Quarantine).map_err(sink)?;
            for row in 0..args.rows_per_file {
                let id = file * args.rows_per_file + row;
                writer.push(TableRow::from(QuarantineRow {
                    stream: Some(Stream::ALL[(id % 3) as usize]),
                    source: format!("bench:{file}@{row}"),
                    received_at: crate::now_micros(),
                    raw: format!(
                        "{{\"index\": {id}, \"unique_id\": \"{:032x}\", \"title\": \"post {id}\", \
                         \"description\": \"a description of post {id} that is about as long as the real ones\", \
                         \"follower_count\": \"{}k\", \"category\": \"art\"}}",
                        (id as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834),
                        id % 997,
                    ),
                    reason: "bench".to_owned(),
                }));
            }
            let (file_adds, count) = writer.finish().await.map_err(sink)?;
            written_bytes += file_adds.iter().map(|a| a.size as u64).sum::<u64>();
            rows += count;
            adds.extend(file_adds);
            if adds.len() >= 100 || file + 1 == args.files {
                lake.commit(
                    Table::Quarantine,
                    std::mem::take(&mut adds),
                    &Default::default(),
                    &Default::default(),
                    file,
                )
                .await
                .map_err(sink)?;
            }
        }
        println!(
            "compaction bench: {} files, {rows} rows, {:.1} MiB written to {} in {:.1} s",
            args.files,
            written_bytes as f64 / (1 << 20) as f64,
            lake.root(),
            started.elapsed().as_secs_f64()
        );
        let mut table = maintain::open(lake.root(), "quarantine")
            .await
            .map_err(sink)?
            .expect("the table was just written");
        let policy = CompactionPolicy {
            min_files: 2,
            ..CompactionPolicy::default()
        };
        let mut report = Report {
            table: "quarantine".into(),
            ..Report::default()
        };
        let started = Instant::now();
        maintain::compact(&mut table, "quarantine", &policy, &mut report)
            .await
            .map_err(sink)?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "compaction: {} files ({:.1} MiB, {} rows) -> {} files ({:.1} MiB) in {seconds:.2} s, {:.0} files/s, {:.1} MiB/s",
            report.files_removed,
            report.bytes_removed as f64 / (1 << 20) as f64,
            report.rows_rewritten,
            report.files_added,
            report.bytes_added as f64 / (1 << 20) as f64,
            report.files_removed as f64 / seconds,
            report.bytes_removed as f64 / (1 << 20) as f64 / seconds,
        );
        if report.rows_rewritten != rows {
            return Err(Error::BenchCheck(format!(
                "compaction rewrote {} rows of {rows}",
                report.rows_rewritten
            )));
        }
        Ok(())
    });
    if args.lake.is_none() {
        let _ = std::fs::remove_dir_all(&temporary);
    }
    result
}
