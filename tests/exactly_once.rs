//! Exactly once: a replay killed with SIGKILL at several points and restarted ends with the
//! same tables as an uninterrupted run: no row lost, none twice.

use crate::support::*;

#[test]
fn sigkill_at_several_points_then_restart_gives_the_uninterrupted_tables() {
    let lake = tempfile::tempdir().unwrap();
    // 1 = right after the tables exist; the others land mid-replay, before and after the
    // first checkpoint (version 9).
    sigkill_and_restart_give_the_uninterrupted_tables(
        lake.path().to_str().unwrap(),
        20_000,
        15_000,
        &[1, 3, 8, 11, 16],
    );
}

/// The same with a file long enough that its byte offset is committed with its position
/// (100,000 lines: `CURSOR_MIN_LINES`), killed once that offset is stored and twice more: each
/// restart seeks to the offset stored with the least position the tables hold (the one of the
/// table a kill left behind), and neither loses nor repeats a line (bad lines would be
/// quarantined twice).
#[test]
fn sigkill_after_a_long_file_has_a_stored_offset_then_restart_gives_the_uninterrupted_tables() {
    let input = tempfile::tempdir().unwrap();
    std::fs::write(
        input.path().join("user.jsonl"),
        long_user_file(150_000, 1_000),
    )
    .unwrap();
    let (uninterrupted, expected) = uninterrupted_replay(input.path());
    assert_eq!(expected["quarantine"]["rows"], 150, "{expected}");

    let lake = tempfile::tempdir().unwrap();
    let source = format!("file:{}", input.path().display());
    let offset_stored = || newest_commit(lake.path(), "user").contains("pinstream.cursors");
    assert!(
        run_and_kill_when(&source, lake.path(), offset_stored),
        "the run ended before the file's offset was stored"
    );
    let mut kills = 1;
    for _ in 0..2 {
        let before = commits(lake.path(), "user");
        kills += usize::from(run_and_kill_when(&source, lake.path(), || {
            commits(lake.path(), "user") >= before + 2
        }));
    }
    assert!(kills >= 2, "only {kills} kills landed mid-replay");
    let log = run_logging_files(&source, lake.path(), &[]);
    assert!(
        log.contains(FILE_SEEKED),
        "the last restart counted the lines instead:\n{log}"
    );
    assert_eq!(check_against_reference(input.path(), lake.path()), expected);
    assert_same_tables(uninterrupted.path(), lake.path());
}

/// `input` replayed without interruption (2 workers) into a new lake: the lake and its
/// summary, checked against the SPEC reference.
fn uninterrupted_replay(input: &std::path::Path) -> (tempfile::TempDir, serde_json::Value) {
    let lake = tempfile::tempdir().unwrap();
    assert_success(&replay(input, lake.path(), &["--workers", "2"]));
    let expected = check_against_reference(input, lake.path());
    (lake, expected)
}

/// The newest commit file of `table` (empty before the table exists).
fn newest_commit(lake: &std::path::Path, table: &str) -> String {
    let log = lake.join(table).join("_delta_log");
    let newest = std::fs::read_dir(log).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .max()
    });
    newest
        .and_then(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default()
}

/// Replays emulated events (and every edge case) into `lake` (a directory or an `s3://`
/// URL), SIGKILLed at each of `points` (commit counts) and restarted, then replayed to the
/// end: the tables must equal an uninterrupted run's and the SPEC reference.
pub fn sigkill_and_restart_give_the_uninterrupted_tables(
    lake: &str,
    events: u64,
    universe: u64,
    points: &[usize],
) {
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), events, 7, universe);
    write_edge_cases(input.path());

    let (uninterrupted, expected) = uninterrupted_replay(input.path());

    let source = format!("file:{}", input.path().display());
    let kills = points
        .iter()
        .filter(|&&point| run_and_kill(&source, lake, point))
        .count();
    assert!(
        kills >= 3,
        "only {kills} kills landed mid-replay: make the data larger"
    );
    assert_success(&replay(input.path(), lake, &["--workers", "2"]));
    let after_kills = check_against_reference(input.path(), lake);
    assert_eq!(after_kills, expected);
    assert_same_tables(uninterrupted.path(), lake);
}

/// The fence between two processes that both believe they own a partition (issue 4, a
/// consumer-group rebalance): a commit whose `txn` appIds someone else committed since the
/// snapshot the batch started from is refused as `Fenced`, not appended; commits of other
/// partitions from the same stale snapshot still go through (two processes append side by
/// side).
#[test]
fn a_commit_of_positions_another_process_moved_meanwhile_is_fenced() {
    use pinstream::connectors::{Position, Positions};
    use pinstream::sink::schema::Codec;
    use pinstream::sink::{Lake, SinkError};
    use pinstream::table::Table;

    let lake_dir = tempfile::tempdir().unwrap();
    let location = lake_dir.path().to_str().unwrap().to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut old_owner = Lake::open(&location, Codec::default()).await.unwrap();
        let mut new_owner = Lake::open(&location, Codec::default()).await.unwrap();
        let at = |partition: &str, position: i64| -> Positions {
            [(partition.into(), Position::new(position))]
                .into_iter()
                .collect()
        };
        // The new owner commits partition 3 first...
        new_owner
            .commit(
                Table::Pin,
                Vec::new(),
                &at("kafka:t.pin/3", 120),
                &Default::default(),
                1,
            )
            .await
            .unwrap();
        // ...so the old owner's in-flight batch of partition 3 must not land.
        match old_owner
            .commit(
                Table::Pin,
                Vec::new(),
                &at("kafka:t.pin/3", 100),
                &Default::default(),
                1,
            )
            .await
        {
            Err(SinkError::Fenced { partitions, .. }) => {
                assert_eq!(partitions, ["kafka:t.pin/3"])
            }
            other => panic!("not fenced: {:?}", other.map(|_| ())),
        }
        // A partition nobody else moved commits from the same stale snapshot.
        old_owner
            .commit(
                Table::Pin,
                Vec::new(),
                &at("kafka:t.pin/4", 50),
                &Default::default(),
                2,
            )
            .await
            .unwrap();
        let fresh = Lake::open(&location, Codec::default()).await.unwrap();
        let pin = fresh.table(Table::Pin);
        let snapshot = pin.snapshot().unwrap();
        for (app, expected) in [("kafka:t.pin/3", 120), ("kafka:t.pin/4", 50)] {
            let version = snapshot
                .transaction_version(pin.log_store().as_ref(), app)
                .await
                .unwrap();
            assert_eq!(version, Some(expected), "{app}");
        }
    });
}
