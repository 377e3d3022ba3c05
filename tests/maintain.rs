//! `pinstream maintain` on a local lake: compaction keeps every row once and drops the file
//! count, a missing checkpoint is written, bad settings are one line. (The S3 side, and
//! compaction racing a running stream, are in tests/s3.rs.)

use crate::support::*;

fn maintain(lake: &std::path::Path, extra: &[&str]) -> std::process::Output {
    pinstream()
        .args(["maintain", "--lake"])
        .arg(lake)
        .args(extra)
        .output()
        .unwrap()
}

fn data_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
        .count()
}

/// Emulated events (`events` from `universe` posts) and the edge cases, replayed with `extra`
/// into a fresh lake that must hold the reference's tables: the input, the lake and the
/// reference's summary.
fn replayed(
    events: u64,
    seed: u64,
    universe: u64,
    extra: &[&str],
) -> (tempfile::TempDir, tempfile::TempDir, serde_json::Value) {
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), events, seed, universe);
    write_edge_cases(input.path());
    let lake = tempfile::tempdir().unwrap();
    assert_success(&replay(input.path(), lake.path(), extra));
    let expected = check_against_reference(input.path(), lake.path());
    (input, lake, expected)
}

#[test]
fn maintain_compacts_a_local_lake_and_writes_a_missing_checkpoint() {
    let (input, lake, expected) = replayed(
        3_000,
        3,
        2_000,
        &["--workers", "2", "--batch-records", "150"],
    );
    // Small batches: a checkpoint is due only at 10 commits (the writer's interval), and a
    // loaded machine makes fewer, larger batches (CI once saw 9 pin commits at 400 records a
    // batch, where an idle one makes 16-18; at 150, 42-51).
    let pin_commits = commits(lake.path(), "pin");
    assert!(
        pin_commits >= 10,
        "{pin_commits} pin commits: none of its checkpoints is due"
    );
    let files_before = data_files(&lake.path().join("pin"));
    assert!(files_before >= 10, "{files_before} pin files");

    let output = maintain(lake.path(), &["--min-files", "2"]);
    assert_success(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let pin = stdout.lines().find(|l| l.starts_with("pin: ")).unwrap();
    assert!(pin.contains("compacted"), "{stdout}");
    assert!(
        stdout
            .lines()
            .filter(|l| l.starts_with("aggregates/"))
            .all(|l| l.contains("a snapshot table, not compacted")),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().count(),
        15,
        "one line per table (4 + 11 aggregates): {stdout}"
    );
    // Same rows; the removed files stay until vacuum, the live ones are few.
    assert_eq!(check_against_reference(input.path(), lake.path()), expected);

    // Lose the pin table's checkpoints: a pass with nothing to compact (so no commit of its
    // own, whose commit hook could write one at a checkpoint version) writes one at the
    // latest version.
    let log = lake.path().join("pin/_delta_log");
    for entry in std::fs::read_dir(&log).unwrap().filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains(".checkpoint.") || name == "_last_checkpoint" {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    let again = maintain(lake.path(), &["--min-files", "2"]);
    assert_success(&again);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout
            .lines()
            .filter(|l| !l.starts_with("aggregates/"))
            .all(|l| l.contains("no small files to compact")),
        "a second pass found nothing to do: {stdout}"
    );
    let pin = stdout.lines().find(|l| l.starts_with("pin: ")).unwrap();
    assert!(pin.contains("checkpoint written at version"), "{stdout}");
    assert!(log.join("_last_checkpoint").exists());
    let vacuum = maintain(lake.path(), &["--vacuum", "--retention", "0s", "--force"]);
    assert_success(&vacuum);
    assert!(data_files(&lake.path().join("pin")) < files_before);
    assert_eq!(check_against_reference(input.path(), lake.path()), expected);
    // A restart after all that still resumes: nothing new is committed.
    let versions = commits(lake.path(), "pin");
    assert_success(&replay(input.path(), lake.path(), &["--workers", "2"]));
    assert_eq!(commits(lake.path(), "pin"), versions);
}

/// The codecs of the column chunks of every live data file, per table (clean and aggregate),
/// read from the Parquet footers with pyarrow.
fn codecs(lake: &std::path::Path) -> serde_json::Value {
    python_json(
        r#"
import json, os, sys
import pyarrow.parquet as pq
from deltalake import DeltaTable
lake = sys.argv[2]
tables = ["pin", "geo", "user", "quarantine"] + [
    "aggregates/" + name for name in sorted(os.listdir(os.path.join(lake, "aggregates")))]
out = {}
for table in tables:
    codecs = set()
    for uri in DeltaTable(os.path.join(lake, table)).file_uris():
        meta = pq.ParquetFile(uri.removeprefix("file://")).metadata
        for g in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                codecs.add(meta.row_group(g).column(c).compression)
    out[table] = sorted(codecs)
print(json.dumps(out))
"#,
        lake,
    )
}

/// A job's codec is every table's, the aggregates' too, and the rows are the same; maintain
/// rewrites with its own (`--compression`), leaving the snapshot tables as they are.
#[test]
fn the_job_s_codec_writes_every_table_and_maintain_rewrites_with_its_own() {
    let (input, lake, expected) = replayed(
        2_000,
        5,
        1_500,
        &[
            "--workers",
            "2",
            "--batch-records",
            "300",
            "--compression",
            "zstd(3)",
        ],
    );
    let written = codecs(lake.path());
    let tables = written.as_object().unwrap();
    assert_eq!(tables.len(), 15, "{written}");
    for (table, codecs) in tables {
        assert_eq!(codecs, &serde_json::json!(["ZSTD"]), "{table}: {written}");
    }

    assert_success(&maintain(
        lake.path(),
        &["--min-files", "2", "--compression", "gzip"],
    ));
    assert_eq!(check_against_reference(input.path(), lake.path()), expected);
    let rewritten = codecs(lake.path());
    assert_eq!(rewritten["pin"], serde_json::json!(["GZIP"]), "{rewritten}");
    assert_eq!(
        rewritten["aggregates/q1_popular_category_by_country"],
        serde_json::json!(["ZSTD"]),
        "{rewritten}"
    );
}

#[test]
fn bad_maintenance_settings_are_one_line() {
    let lake = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (vec!["--target-file-size", "12 parsecs"], "unknown unit"),
        (vec!["--min-files", "1"], "min_files must be at least 2"),
        (vec!["--compression", "lzo"], "unknown codec"),
    ] {
        let output = maintain(lake.path(), &args);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let job = lake.path().join("job.toml");
    std::fs::write(
        &job,
        "[maintenance]\ncompact_every = \"soon\"\n[[source]]\ntype = \"file\"\ndir = \".\"\n",
    )
    .unwrap();
    let output = pinstream().arg("run").arg(&job).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("maintenance.compact_every"), "{stderr}");
    // An empty directory holds no tables.
    let output = maintain(lake.path(), &[]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no pinstream tables"));
}
