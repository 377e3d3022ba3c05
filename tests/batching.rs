//! Micro-batches closed by `--batch-records`: a full batch closes at once for every worker and
//! the next one starts now, not at the next interval's start, so the tables commit as the
//! batches fill, the live aggregates stay fresh, and the tables stay exact.

use std::time::{Duration, Instant};

use crate::support::*;

/// The emulator's events (3 records each) and events per second: 16 s of reading.
const EVENTS: u64 = 4_800;
const RATE: u64 = 300;

#[test]
fn full_batches_close_at_once_and_the_aggregates_stay_fresh() {
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), EVENTS, 5, 1_000);
    let work = tempfile::tempdir().unwrap();
    let lake = work.path().join("lake");
    let summary = work.path().join("summary.json");
    let log = work.path().join("stderr.log");
    // 2 workers read 450 records/s each: a worker's batch fills every ~4 s, far inside the
    // 20 s interval. Freshness is sampled once per time the aggregates publish, and records
    // held at one time are one sample: ticks of 100 ms (10 samples/s) keep a held batch's
    // sample above 1% of them, so the p99 shows it.
    let started = Instant::now();
    let mut child = pinstream()
        .args(["run", "--from"])
        .arg(format!(
            "emulator:events={EVENTS},seed=5,universe=1000,rate={RATE}"
        ))
        .arg("--lake")
        .arg(&lake)
        .args(["--until-done", "--workers", "2", "--batch-interval", "20s"])
        .args(["--batch-records", "1800", "--tick", "100ms", "--summary"])
        .arg(&summary)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // The table's creation and 3 batches in its log, and when.
    let mut three_batches = None;
    while child.try_wait().unwrap().is_none() {
        if three_batches.is_none() && commits(&lake, "pin") >= 4 {
            three_batches = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "pinstream failed ({status}):\n{stderr}");
    let totals = run_summary(&summary);
    eprintln!("3 batches committed after {three_batches:?}; summary: {totals}");

    // (a) The batches commit as they fill: without early closes a run this short would
    // commit at most twice (a wall-clock interval's end, then the end of the input).
    let three_batches = three_batches.expect("3 batches committed while the run went on");
    assert!(three_batches < Duration::from_secs(20), "{three_batches:?}");
    assert_eq!(totals["records_in"], 3 * EVENTS);
    // (b) A full batch's successor starts now: the aggregates publish every tick, not when
    // the wall clock reaches the next interval (~4 s late here, once per batch).
    let p99 = totals["freshness_ms"]["p99"]
        .as_f64()
        .expect("freshness sampled");
    assert!(p99 < 2_000.0, "freshness p99 {p99} ms: {totals}");
    // (c) Each batch commits within milliseconds, seconds before the next fills: reading was
    // not held by the commits, but for the first steps (until the commits' frontier is known).
    let held = totals["backpressure_seconds"].as_f64().expect("timed");
    assert!(held < 0.1, "{totals}");

    // And the tables are those of the same events replayed as files.
    let files = tempfile::tempdir().unwrap();
    assert_success(&replay(input.path(), files.path(), &[]));
    assert_same_tables(files.path(), &lake);
    check_aggregates(input.path(), &lake, None);
}

/// A replay whose batches fill far faster than they commit (200 records per worker: read in
/// well under a millisecond, committed in milliseconds) is held by the commits, and the time
/// it was held is in the summary (and `pinstream_backpressure_seconds`); the tables are those
/// of a replay in large batches.
#[test]
fn reading_held_by_the_commits_is_timed_and_loses_nothing() {
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), 3_000, 6, 2_000);
    let work = tempfile::tempdir().unwrap();
    let (held, plain) = (work.path().join("held"), work.path().join("plain"));
    let summary = work.path().join("summary.json");
    let output = replay(
        input.path(),
        &held,
        &[
            "--workers",
            "2",
            "--batch-records",
            "200",
            "--summary",
            summary.to_str().unwrap(),
        ],
    );
    assert_success(&output);
    let totals = run_summary(&summary);
    let seconds = totals["backpressure_seconds"].as_f64().expect("timed");
    assert!(seconds > 0.0, "reading was never held: {totals}");
    assert_success(&replay(input.path(), &plain, &[]));
    assert_same_tables(&plain, &held);
}
