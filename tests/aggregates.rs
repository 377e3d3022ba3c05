//! The sample replayed: the aggregate tables and the HTTP API agree with the SPEC §3 batch
//! reference (q3b is Anguilla, 15,000,000), live and after shutdown.

use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn the_sample_gives_the_reference_aggregates_over_http_and_in_the_tables() {
    let Some(sample) = sample_dir() else {
        eprintln!("../shared/data/pinterest-sample is not here; skipped");
        return;
    };
    let lake = tempfile::tempdir().unwrap();
    let port = free_port();
    // No --until-done: the engine keeps serving once the files are read.
    let mut engine = pinstream()
        .args([
            "run",
            "--workers",
            "2",
            "--aggregate-interval",
            "200ms",
            "--from",
        ])
        .arg(format!("file:{}", sample.display()))
        .arg("--lake")
        .arg(lake.path())
        .args(["--http", &format!("127.0.0.1:{port}")])
        .spawn()
        .unwrap();
    // Wait until every record is committed and q3b is published.
    let started = Instant::now();
    loop {
        let committed = http_get(port, "/api/v1/stats")
            .and_then(|body| serde_json::from_str::<serde_json::Value>(&body).ok())
            .and_then(|stats| stats["rows_committed"].as_u64());
        if committed == Some(6_534) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not committed in time: {committed:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(600)); // one aggregate-table interval and then some
    let api = format!("http://127.0.0.1:{port}");
    let live = check_aggregates(&sample, lake.path(), Some(&api));
    assert_eq!(
        live["q3b_top_country"],
        serde_json::json!([["Anguilla", 15_000_000]]),
        "{live}"
    );
    let q3b: serde_json::Value =
        serde_json::from_str(&http_get(port, "/api/v1/aggregates/q3b_top_country").unwrap())
            .unwrap();
    assert_eq!(
        q3b["rows"],
        serde_json::json!([{"country": "Anguilla", "follower_count": 15_000_000}])
    );

    let status = std::process::Command::new("kill")
        .args(["-TERM", &engine.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(engine.wait().unwrap().success());
    // The tables written at shutdown hold the same results.
    check_aggregates(&sample, lake.path(), None);
}
