//! Replaying files gives exactly the SPEC's tables, whatever the worker count, and replaying
//! them again changes nothing.

use crate::support::*;

#[test]
fn the_sample_replays_to_the_reference_tables_and_a_second_replay_changes_nothing() {
    let Some(sample) = sample_dir() else {
        eprintln!("../shared/data/pinterest-sample is not here; skipped");
        return;
    };
    let lake = tempfile::tempdir().unwrap();
    assert_success(&replay(&sample, lake.path(), &["--workers", "2"]));
    let summary = check_against_reference(&sample, lake.path());
    assert_eq!(summary["pin"]["rows"], 2161, "{summary}");
    assert_eq!(summary["geo"]["rows"], 2178, "{summary}");
    assert_eq!(summary["user"]["rows"], 2178, "{summary}");
    assert_eq!(summary["quarantine"]["rows"], 17, "{summary}");

    let versions: Vec<_> = ["pin", "geo", "user", "quarantine"]
        .iter()
        .map(|table| commits(lake.path(), table))
        .collect();
    assert_success(&replay(&sample, lake.path(), &["--workers", "1"]));
    let again: Vec<_> = ["pin", "geo", "user", "quarantine"]
        .iter()
        .map(|table| commits(lake.path(), table))
        .collect();
    assert_eq!(versions, again, "a second replay committed again");
    check_against_reference(&sample, lake.path());
}

#[test]
fn emulated_data_and_every_edge_case_give_the_reference_tables_at_one_and_three_workers() {
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), 3_000, 42, 1_000);
    write_edge_cases(input.path());
    for workers in ["1", "3"] {
        let lake = tempfile::tempdir().unwrap();
        assert_success(&replay(
            input.path(),
            lake.path(),
            &["--workers", workers, "--batch-records", "700"],
        ));
        let summary = check_against_reference(input.path(), lake.path());
        let quarantined = summary["quarantine"]["rows"].as_u64().unwrap();
        assert!(quarantined >= 20, "edge cases reach quarantine: {summary}");
        let pins = summary["pin"]["rows"].as_u64().unwrap();
        assert!(
            pins > 900 && pins < 1_005,
            "1,000 posts drawn 3,000 times: {summary}"
        );
    }
}

/// A file with enough lines consumed has the byte offset of its next line committed with its
/// position; a restart seeks there (the log says so) instead of counting the lines, reads only
/// what was appended since, and numbers those lines on from the position.
#[test]
fn a_restart_resumes_a_long_file_at_the_byte_offset_stored_with_its_position() {
    let lines = 100_000; // pinstream::connectors::file::source::CURSOR_MIN_LINES
    let input = tempfile::tempdir().unwrap();
    let path = input.path().join("user.jsonl");
    let mut text = long_user_file(lines, 0);
    std::fs::write(&path, &text).unwrap();
    let lake = tempfile::tempdir().unwrap();
    let source = format!("file:{}", input.path().display());
    let summary = lake.path().join("summary.json");
    let run = || {
        let extra = ["--summary", summary.to_str().unwrap()];
        let log = run_logging_files(&source, lake.path(), &extra);
        (run_summary(&summary), log)
    };
    let (first, _) = run();
    assert_eq!(first["records_in"], lines, "{first}");

    // Two more users and a line that does not parse, appended after the restart's position.
    text.push_str(&user_line(lines));
    text.push_str("not json\n");
    text.push_str(&user_line(lines + 1));
    std::fs::write(&path, &text).unwrap();
    let (second, log) = run();
    assert!(
        log.contains(FILE_SEEKED),
        "the restart counted the lines instead:\n{log}"
    );
    assert_eq!(second["records_in"], 3, "{second}");
    assert_eq!(second["duplicates"], 0, "{second}");
    assert_eq!(second["rows_committed"], 3, "{second}");
    let tables = python_json(
        r#"
import json, os, sys
from deltalake import DeltaTable
lake = sys.argv[2]
users = DeltaTable(lake + "/user").to_pyarrow_table()
quarantine = DeltaTable(lake + "/quarantine").to_pyarrow_table()
print(json.dumps({"users": users.num_rows, "sources": quarantine.column("source").to_pylist()}), flush=True)
# As the other scripts: deltalake's runtime can abort the interpreter's own exit.
os._exit(0)
"#,
        lake.path(),
    );
    assert_eq!(tables["users"], lines + 2, "{tables}");
    assert_eq!(
        tables["sources"],
        serde_json::json!([format!("file:user.jsonl@{}", lines + 1)]),
        "{tables}"
    );
}

/// A lake whose commits name no byte offset for a long file (written before files had cursors)
/// costs one count: the restart counts the file's lines, and the next commit, made for other
/// new rows, stores the offset it counted its way to, so the start after seeks.
#[test]
fn a_restart_that_counted_a_long_file_stores_its_offset_with_the_next_commit() {
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("user.jsonl"), long_user_file(100_000, 0)).unwrap();
    let geo = |ind: usize| {
        format!(
            "{{\"ind\": {ind}, \"timestamp\": \"2020-01-01 00:00:00\", \"latitude\": 1.5, \"longitude\": 2.5, \"country\": \"Fiji\"}}\n"
        )
    };
    let mut geos = geo(1);
    std::fs::write(input.path().join("geo.jsonl"), &geos).unwrap();
    let lake = tempfile::tempdir().unwrap();
    let source = format!("file:{}", input.path().display());
    let run = || run_logging_files(&source, lake.path(), &[]);
    run();
    // As a lake written before files had cursors: no commit names one.
    for table in ["pin", "geo", "user", "quarantine"] {
        let log = lake.path().join(table).join("_delta_log");
        for entry in std::fs::read_dir(log).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let stripped: Vec<String> = text
                .lines()
                .map(|line| {
                    let mut action: serde_json::Value = serde_json::from_str(line).unwrap();
                    if let Some(info) = action["commitInfo"].as_object_mut() {
                        info.remove("pinstream.cursors");
                    }
                    action.to_string()
                })
                .collect();
            std::fs::write(&path, stripped.join("\n") + "\n").unwrap();
        }
    }
    geos.push_str(&geo(2));
    std::fs::write(input.path().join("geo.jsonl"), &geos).unwrap();
    let counted = run();
    assert!(!counted.contains(FILE_SEEKED), "{counted}");
    let log = run();
    assert!(
        log.contains(FILE_SEEKED),
        "the offset counted was not stored:\n{log}"
    );
}
