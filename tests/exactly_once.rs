//! Exactly once: a replay killed with SIGKILL at several points and restarted ends with the
//! same tables as an uninterrupted run: no row lost, none twice.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

/// Starts a replay and SIGKILLs it once the `pin` table has `commits_before_kill` commits.
fn replay_and_kill(input: &Path, lake: &Path, commits_before_kill: usize) -> bool {
    let mut child = pinstream()
        .arg("run")
        .arg("--from")
        .arg(format!("file:{}", input.display()))
        .arg("--lake")
        .arg(lake)
        .args(["--until-done", "--workers", "2", "--batch-records", "1500"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "run failed before the kill: {status}");
            return false; // finished before the kill point
        }
        if commits(lake, "pin") >= commits_before_kill
            || started.elapsed() > Duration::from_secs(120)
        {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

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
        if replay_and_kill(input.path(), lake.path(), point) {
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
