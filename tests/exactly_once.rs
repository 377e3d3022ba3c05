//! Exactly once: a replay killed with SIGKILL at several points and restarted ends with the
//! same tables as an uninterrupted run: no row lost, none twice.

use crate::support::*;

#[test]
fn sigkill_at_several_points_then_restart_gives_the_uninterrupted_tables() {
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), 20_000, 7, 15_000);
    write_edge_cases(input.path());

    let uninterrupted = tempfile::tempdir().unwrap();
    assert_success(&replay(
        input.path(),
        uninterrupted.path(),
        &["--workers", "2"],
    ));
    let expected = check_against_reference(input.path(), uninterrupted.path());

    let lake = tempfile::tempdir().unwrap();
    let mut kills = 0;
    // 1 = right after the tables exist; the others land mid-replay, before and after the
    // first checkpoint (version 9).
    for point in [1, 3, 8, 11, 16] {
        if run_and_kill(
            &format!("file:{}", input.path().display()),
            lake.path(),
            point,
        ) {
            kills += 1;
        }
    }
    assert!(
        kills >= 3,
        "only {kills} kills landed mid-replay: make the data larger"
    );
    assert_success(&replay(input.path(), lake.path(), &["--workers", "2"]));
    let after_kills = check_against_reference(input.path(), lake.path());
    assert_eq!(after_kills, expected);
}

/// The fence between two processes that both believe they own a partition (issue 4, a
/// consumer-group rebalance): a commit whose `txn` appIds someone else committed since the
/// snapshot the batch started from is refused as `Fenced`, not appended; commits of other
/// partitions from the same stale snapshot still go through (two processes append side by
/// side).
#[test]
fn a_commit_of_positions_another_process_moved_meanwhile_is_fenced() {
    use pinstream::sink::{Lake, SinkError};
    use pinstream::source::Positions;
    use pinstream::table::Table;

    let lake_dir = tempfile::tempdir().unwrap();
    let location = lake_dir.path().to_str().unwrap().to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut old_owner = Lake::open(&location).await.unwrap();
        let mut new_owner = Lake::open(&location).await.unwrap();
        let at = |partition: &str, position: i64| -> Positions {
            [(partition.into(), position)].into_iter().collect()
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
        let fresh = Lake::open(&location).await.unwrap();
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
