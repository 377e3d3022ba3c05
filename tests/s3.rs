//! Delta on S3 and table maintenance, against a real S3 server (moto with serialised writes,
//! started by `scripts/services.sh start s3`; scripts/test.sh starts it and exports
//! PINSTREAM_S3_ENDPOINT). Without PINSTREAM_S3_ENDPOINT these tests skip with a message.
//! Tables are read back with Python `deltalake` straight from the S3 server.
//!
//! - an S3 replay equals the SPEC reference (clean, quarantine and aggregate tables);
//! - SIGKILL while writing to S3, then restart, equals the uninterrupted run;
//! - two processes appending to one S3 lake at once: every row once, versions contiguous,
//!   both processes' positions stored;
//! - compaction (online and `pinstream maintain`, racing each other) while a run appends:
//!   rows exact, file count down, restart still resumes;
//! - `maintain --vacuum` deletes the unreferenced files only.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::*;

fn maintain(lake: &str, extra: &[&str]) -> Output {
    pinstream()
        .args(["maintain", "--lake", lake])
        .args(extra)
        .output()
        .unwrap()
}

/// Live data files per table, as Python `deltalake` reads the log, and the data files (not
/// the log) stored under each table.
fn file_counts(lake: &str) -> serde_json::Value {
    let script = r#"
import json, os, sys
sys.path.insert(0, sys.argv[1])
from spec_reference import open_table, is_s3, s3_filesystem
from pyarrow import fs
lake = sys.argv[2]
counts = {}
for name in ("pin", "geo", "user", "quarantine"):
    path = lake.rstrip("/") + "/" + name
    live = len(open_table(path).file_uris())
    key = path.split("://", 1)[1]
    infos = s3_filesystem().get_file_info(fs.FileSelector(key, recursive=True))
    stored = sum(1 for i in infos if i.type == fs.FileType.File and "_delta_log" not in i.path
                 and i.path.endswith(".parquet"))
    counts[name] = {"live": live, "stored": stored}
print(json.dumps(counts), flush=True)
os._exit(0)
"#;
    python_json(script, lake)
}

#[test]
fn s3_replay_gives_the_reference_tables_and_aggregates_and_a_second_replay_changes_nothing() {
    let Some(_) = s3_available() else { return };
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), 3_000, 42, 1_000);
    write_edge_cases(input.path());
    let lake = format!("{}/lake", s3_bucket("replay"));
    assert_success(&replay(
        input.path(),
        &lake,
        // Small batches: enough commits for a checkpoint even on a loaded machine (see
        // tests/maintain.rs).
        &["--workers", "2", "--batch-records", "150"],
    ));
    let summary = check_against_reference(input.path(), &lake);
    assert!(
        summary["quarantine"]["rows"].as_u64().unwrap() >= 20,
        "{summary}"
    );
    check_aggregates(input.path(), &lake, None);

    let versions: Vec<_> = ["pin", "geo", "user", "quarantine"]
        .iter()
        .map(|table| commits(&lake, table))
        .collect();
    assert!(
        versions[0] >= 10,
        "enough commits for a checkpoint: {versions:?}"
    );
    assert_success(&replay(input.path(), &lake, &["--workers", "1"]));
    let again: Vec<_> = ["pin", "geo", "user", "quarantine"]
        .iter()
        .map(|table| commits(&lake, table))
        .collect();
    assert_eq!(versions, again, "a second replay committed again");
}

#[test]
fn a_missing_bucket_fails_the_run_with_one_line() {
    let Some(_) = s3_available() else { return };
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), 10, 1, 10);
    let started = Instant::now();
    let output = replay(input.path(), "s3://pinstream-no-such-bucket/lake", &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("pinstream: ") && last.contains("NoSuchBucket"),
        "{stderr}"
    );
    assert!(!last.contains("<?xml"), "{last}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn s3_sigkill_at_several_points_then_restart_gives_the_uninterrupted_tables() {
    let Some(_) = s3_available() else { return };
    let lake = format!("{}/lake", s3_bucket("kill"));
    crate::exactly_once::sigkill_and_restart_give_the_uninterrupted_tables(
        &lake,
        12_000,
        9_000,
        &[1, 4, 8, 11],
    );
}

#[test]
fn two_processes_appending_to_one_s3_lake_keep_every_row_once() {
    let Some(_) = s3_available() else { return };
    // Disjoint inputs under distinct folders: distinct partitions (txn appIds) per process.
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (work.path().join("input-a"), work.path().join("input-b"));
    emulate(&a.join("a"), 2_500, 1, 2_000);
    emulate(&b.join("b"), 2_500, 2, 2_000);
    write_edge_cases(&b.join("b"));

    // What one process reading both gives.
    let single = work.path().join("single");
    let output = pinstream()
        .arg("run")
        .arg("--from")
        .arg(format!("file:{}", a.display()))
        .arg("--from")
        .arg(format!("file:{}", b.display()))
        .arg("--lake")
        .arg(&single)
        .args(["--until-done", "--workers", "2"])
        .output()
        .unwrap();
    assert_success(&output);

    let lake = format!("{}/lake", s3_bucket("two"));
    let spawn = |input: &Path| {
        pinstream()
            .arg("run")
            .arg("--from")
            .arg(format!("file:{}", input.display()))
            .args(["--lake", &lake, "--until-done", "--workers", "2"])
            .args(["--batch-records", "200", "--compact-every", "off"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(&a), spawn(&b));
    let (first, second) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    assert_success(&first);
    assert_success(&second);
    let counts = assert_same_tables(&single, &lake);
    assert!(counts["pin"].as_u64().unwrap() > 1_000, "{counts}");

    // Versions 0..n with none missing: every commit landed as its own version.
    for table in ["pin", "geo", "user", "quarantine"] {
        let log = format!("{lake}/{table}/_delta_log/");
        let mut versions: Vec<u64> = s3_keys(&log)
            .iter()
            .filter_map(|key| key.rsplit('/').next()?.strip_suffix(".json")?.parse().ok())
            .collect();
        versions.sort();
        let expected: Vec<u64> = (0..versions.len() as u64).collect();
        assert_eq!(versions, expected, "{table}: versions not contiguous");
    }
    // Both processes' positions are in the tables: running either again reads nothing new
    // and commits nothing.
    let before = commits(&lake, "pin");
    for input in [&a, &b] {
        assert_success(&replay(input, &lake, &["--compact-every", "off"]));
    }
    assert_eq!(commits(&lake, "pin"), before, "a rerun committed again");
    assert_same_tables(&single, &lake);
}

#[test]
fn compaction_while_a_run_appends_keeps_every_row_once_and_drops_the_file_count() {
    let Some(_) = s3_available() else { return };
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), 4_000, 5, 3_000);
    write_edge_cases(input.path());

    // Uncompacted, for the file count.
    let plain = format!("{}/lake", s3_bucket("plain"));
    assert_success(&replay(
        input.path(),
        &plain,
        &["--batch-records", "300", "--compact-every", "off"],
    ));

    // Online compaction every 300 ms inside the run, and `pinstream maintain --compact` in
    // a loop beside it: three writers on every table.
    let lake = format!("{}/lake", s3_bucket("compact"));
    let mut run = pinstream()
        .arg("run")
        .arg("--from")
        .arg(format!("file:{}", input.path().display()))
        .args(["--lake", &lake, "--until-done"])
        .args(["--batch-records", "300", "--compact-every", "300ms"])
        .args(["--min-files", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut compacted_meanwhile = 0;
    while run.try_wait().unwrap().is_none() {
        let output = maintain(&lake, &["--compact", "--min-files", "2"]);
        if output.status.success() {
            let stdout = String::from_utf8_lossy(&output.stdout);
            compacted_meanwhile += stdout.matches(" compacted ").count();
        }
    }
    let output = run.wait_with_output().unwrap();
    assert_success(&output);
    let log = String::from_utf8_lossy(&output.stderr);
    let online = log.matches("compacted").count();
    assert!(
        compacted_meanwhile + online > 0,
        "no compaction landed while the run appended:\n{log}"
    );
    let summary = check_against_reference(input.path(), &lake);
    assert_eq!(summary, check_against_reference(input.path(), &plain));

    let (compacted, uncompacted) = (file_counts(&lake), file_counts(&plain));
    for table in ["pin", "geo", "user"] {
        let (after, before) = (
            compacted[table]["live"].as_u64().unwrap(),
            uncompacted[table]["live"].as_u64().unwrap(),
        );
        assert!(
            after < before,
            "{table}: {after} live files compacted, {before} not"
        );
    }

    // The positions survived the rewrites: a rerun reads nothing new (its dedup state
    // rebuilt from the compacted files) and the tables stay as they are.
    let before = commits(&lake, "pin");
    assert_success(&replay(input.path(), &lake, &["--compact-every", "off"]));
    assert_eq!(commits(&lake, "pin"), before, "a rerun committed again");
    check_against_reference(input.path(), &lake);
}

#[test]
fn vacuum_deletes_only_unreferenced_files_and_refuses_a_short_retention_unless_forced() {
    let Some(_) = s3_available() else { return };
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), 2_000, 9, 1_500);
    let lake = format!("{}/lake", s3_bucket("vacuum"));
    assert_success(&replay(input.path(), &lake, &["--batch-records", "400"]));
    let compact = maintain(&lake, &["--compact", "--min-files", "2"]);
    assert_success(&compact);
    let before = file_counts(&lake);
    assert!(
        before["pin"]["stored"].as_u64() > before["pin"]["live"].as_u64(),
        "compaction left the rewritten files for vacuum: {before}"
    );

    // The default retention (7 days) keeps the files just removed.
    let kept = maintain(&lake, &["--vacuum"]);
    assert_success(&kept);
    assert_eq!(file_counts(&lake), before);

    let refused = maintain(&lake, &["--vacuum", "--retention", "0s"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("retention"), "{stderr}");

    let forced = maintain(&lake, &["--vacuum", "--retention", "0s", "--force"]);
    assert_success(&forced);
    let stdout = String::from_utf8_lossy(&forced.stdout);
    assert!(
        stdout.contains("pin: ") && stdout.contains("vacuumed"),
        "{stdout}"
    );
    let after = file_counts(&lake);
    for table in ["pin", "geo", "user", "quarantine"] {
        assert_eq!(
            after[table]["stored"], after[table]["live"],
            "{table}: files left after vacuum: {after}"
        );
        assert_eq!(after[table]["live"], before[table]["live"], "{after}");
    }
    check_against_reference(input.path(), &lake);
}
