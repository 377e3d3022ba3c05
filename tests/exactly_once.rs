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
