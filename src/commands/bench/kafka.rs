//! `pinstream bench --kafka host:port`: Kafka -> Delta against file -> Delta on the same
//! records, in the same run (issue 11: the Kafka path must reach 80% of the file path's rate).
//!
//! 1. Generates the data as the file bench does ([`super::generate`]), and produces the same
//!    events (same emulator spec, so the same messages) to three fresh topics of
//!    [`PARTITIONS`] partitions, keyed by post (not timed; the topic names are unique per run).
//! 2. At each worker count, times `pinstream run --from file:<data> --until-done` and
//!    `pinstream run --from kafka://<brokers>/<prefix> --until-done` into fresh lakes: wall time
//!    of the child process, start-up (broker metadata, table creation) included, since a
//!    user waits for that too.
//!    The two alternate `--repeat` times (a single run of each swings by ±10% on a shared
//!    machine).
//! 3. Prints each path's median rate, the file path's as the floor's base, the share of the
//!    medians and the range of the runs' shares, then each path's median CPU; fails when two
//!    runs did not commit the same rows.

use std::path::Path;
use std::time::Instant;

use super::{
    Error, RunSummary, bench_dir, check_same_rows, generate, median_of, range, run_pipeline,
};
use crate::config::BenchArgs;
use crate::connectors::emulator::EmulatorSpec;
use crate::connectors::{self, MessageKey, Produce, http::HttpFormat};

/// Partitions of each bench topic (issue 11 measures 6-partition topics).
const PARTITIONS: i32 = 6;
/// The share of the file path's rate the Kafka path must reach (issue 11).
const FLOOR: f64 = 0.8;

/// One timed run: its summary and the child's wall time.
struct Timed {
    summary: RunSummary,
    seconds: f64,
}

impl Timed {
    /// The child's user and system time, NaN where the system did not tell it.
    fn cpu(&self) -> f64 {
        self.summary.cpu_seconds.unwrap_or(f64::NAN)
    }
}

/// Runs `source` into a fresh `lake`, timing the whole child process.
fn timed(source: &str, lake: &Path, workers: usize, extra: &[&str]) -> Result<Timed, Error> {
    let started = Instant::now();
    let summary = run_pipeline(source, lake, workers, extra)?;
    Ok(Timed {
        summary,
        seconds: started.elapsed().as_secs_f64(),
    })
}

pub fn bench_kafka(args: &BenchArgs, brokers: &str) -> Result<(), Error> {
    let dir = bench_dir(args);
    // The distinct-heavy data set (the last --universe): the expensive case.
    let universe = args.universe.last().copied().unwrap_or(1_000_000);
    let data = generate(args, &dir, universe)?;
    let records = args.events * 3;
    let prefix = format!(
        "pinstream-bench-{}-{}",
        std::process::id(),
        crate::now_micros()
    );
    let to = format!("kafka://{brokers}/{prefix}");
    let spec = EmulatorSpec {
        seed: 1,
        events: Some(args.events),
        universe,
        ..EmulatorSpec::default()
    };
    let started = Instant::now();
    let produced = connectors::connector_for(&to)
        .and_then(|connector| {
            connector.produce(&Produce {
                to: &to,
                events: &spec,
                rate: None,
                partitions: PARTITIONS,
                key: MessageKey::Post,
                properties: &[],
                http_format: HttpFormat::Proxy,
                concurrency: 1,
                progress: &|_| {},
            })
        })
        .expect("the kafka connector has a producer")?;
    println!(
        "data: {} events = {records} records, universe {} posts; produced to {prefix}.{{pin,geo,user}} ({PARTITIONS} partitions each) in {:.1} s",
        args.events,
        universe,
        started.elapsed().as_secs_f64()
    );
    if produced != args.events {
        return Err(Error::BenchCheck(format!(
            "produced {produced} events of {}",
            args.events
        )));
    }
    let file_source = format!("file:{}", data.display());
    for &workers in &args.workers {
        for (label, extra) in [
            ("with analytics", &[][..]),
            ("tables only", &["--no-analytics"][..]),
        ] {
            let (mut runs, mut records_in) = (Vec::new(), 0);
            for _ in 0..args.repeat {
                let file = timed(&file_source, &dir.join("lake-file"), workers, extra)?;
                let kafka = timed(&to, &dir.join("lake-kafka"), workers, extra)?;
                check_same_rows(
                    (&file.summary, "the file run"),
                    (&kafka.summary, "the kafka run"),
                )?;
                records_in = file.summary.records_in;
                runs.push((file, kafka));
            }
            report(workers, label, records_in, &runs);
        }
    }
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Each path's median rate and wall time over the alternated `runs` (file, Kafka), the floor
/// of this run, the share of the medians and the range of the shares; then each path's median
/// CPU, which tells where a gap between the paths goes (the engine's process includes
/// librdkafka's threads; the broker's CPU is not in it).
fn report(workers: usize, label: &str, records: u64, runs: &[(Timed, Timed)]) {
    let middle =
        |value: fn(&(Timed, Timed)) -> f64| median_of(&runs.iter().map(value).collect::<Vec<_>>());
    let (file, kafka) = (middle(|run| run.0.seconds), middle(|run| run.1.seconds));
    let (file_cpu, kafka_cpu) = (middle(|run| run.0.cpu()), middle(|run| run.1.cpu()));
    let (file_rate, kafka_rate) = (records as f64 / file, records as f64 / kafka);
    let share = kafka_rate / file_rate;
    let shares: Vec<f64> = runs
        .iter()
        .map(|(file, kafka)| 100.0 * file.seconds / kafka.seconds)
        .collect();
    println!(
        "{workers} worker(s), {label}, wall time with start-up, median of {} alternated runs: file -> Delta {file_rate:>8.0} records/s ({file:.2} s); kafka -> Delta {kafka_rate:>8.0} records/s ({kafka:.2} s); floor {:.0} records/s ({:.0}% of file): share {:.0}% (runs {}%) {}",
        runs.len(),
        FLOOR * file_rate,
        FLOOR * 100.0,
        share * 100.0,
        range(&shares, 0),
        if share >= FLOOR {
            "ok"
        } else {
            "BELOW THE FLOOR"
        },
    );
    println!(
        "  CPU of the engine's process (user + system, medians): file -> Delta {file_cpu:.2} s; kafka -> Delta {kafka_cpu:.2} s, librdkafka's threads included (the broker's CPU is not)"
    );
}
