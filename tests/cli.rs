//! The command line: clear one-line errors, clean stop on SIGTERM.

use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn bad_configuration_exits_non_zero_with_one_line() {
    let cases: [&[&str]; 3] = [
        &["run", "--workers", "0"],
        &["run", "--from", "carrier-pigeon:1"],
        &["run", "no-such-job.toml"],
    ];
    for args in cases {
        let output = pinstream().args(args).output().unwrap();
        assert!(!output.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<_> = stderr
            .lines()
            .filter(|l| l.starts_with("pinstream:"))
            .collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn sigterm_commits_what_is_held_and_exits_zero() {
    let lake = tempfile::tempdir().unwrap();
    let mut child = pinstream()
        .args(["run", "--from", "emulator:seed=3,rate=2000", "--lake"])
        .arg(lake.path())
        .args(["--batch-interval", "200ms"])
        .spawn()
        .unwrap();
    let started = Instant::now();
    while commits(lake.path(), "pin") < 3 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(commits(lake.path(), "pin") >= 3);
}
