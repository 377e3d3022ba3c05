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
