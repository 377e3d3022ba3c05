//! HTTP ingest: the original emulators' REST-proxy and API-Gateway bodies land in the tables,
//! bad bodies get a 4xx and store nothing, and no 2xx is sent for data that was not committed.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use pinstream::stream::Stream;

use crate::support::*;

pub(crate) fn start(lake: &Path, port: u16, batch_interval: &str) -> Child {
    let child = pinstream()
        .args(["run", "--from", "http", "--lake"])
        .arg(lake)
        .args([
            "--http",
            &format!("127.0.0.1:{port}"),
            "--batch-interval",
            batch_interval,
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while http_get(port, "/healthz").is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "no /healthz");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

pub(crate) fn stop(mut child: Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}

/// Emulated messages of each stream that clean (a quarantine row's `source` names where it
/// came from, so only clean rows compare between HTTP and a file replay).
fn clean_lines(dir: &Path) -> Vec<(Stream, String)> {
    emulate(dir, 60, 21, 1_000);
    let mut lines = Vec::new();
    for stream in Stream::ALL {
        let text = std::fs::read_to_string(dir.join(format!("{stream}.jsonl"))).unwrap();
        lines.extend(
            text.lines()
                .filter(|line| pinstream::clean::clean(stream, line.as_bytes()).is_ok())
                .map(|line| (stream, line.to_owned())),
        );
    }
    lines
}

#[test]
fn proxy_and_gateway_bodies_land_in_the_tables_and_bad_bodies_store_nothing() {
    let generated = tempfile::tempdir().unwrap();
    let lines = clean_lines(generated.path());
    // The same messages as files, for the reference.
    let input = tempfile::tempdir().unwrap();
    for stream in Stream::ALL {
        let text: String = lines
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        std::fs::write(input.path().join(format!("{stream}.jsonl")), text).unwrap();
    }
    let lake = tempfile::tempdir().unwrap();
    let port = free_port();
    let engine = start(lake.path(), port, "200ms");

    let of = |stream| {
        lines
            .iter()
            .filter(move |(s, _)| *s == stream)
            .map(|(_, l)| l.as_str())
    };
    // pin: REST proxy bodies, 10 records each.
    let pins: Vec<&str> = of(Stream::Pin).collect();
    for chunk in pins.chunks(10) {
        let records: Vec<String> = chunk
            .iter()
            .map(|value| format!(r#"{{"value": {value}}}"#))
            .collect();
        let body = format!(r#"{{"records": [{}]}}"#, records.join(", "));
        let (status, answer) = http_send(port, "POST", "/topics/0a1b.pin", &body).unwrap();
        assert_eq!(status, 200, "{answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["offsets"].as_array().unwrap().len(), chunk.len());
    }
    // geo: one record per request, Data as an object or as base64 of the JSON, alternately.
    for (i, line) in of(Stream::Geo).enumerate() {
        let data = if i % 2 == 0 {
            line.to_owned()
        } else {
            format!(
                "\"{}\"",
                base64::engine::general_purpose::STANDARD.encode(line)
            )
        };
        let body = format!(
            r#"{{"StreamName": "streaming-0a1b-geo", "Data": {data}, "PartitionKey": "p"}}"#
        );
        let (status, answer) =
            http_send(port, "PUT", "/streams/streaming-0a1b-geo/record", &body).unwrap();
        assert_eq!(status, 200, "{answer}");
        assert!(answer.contains("SequenceNumber"), "{answer}");
    }
    // user: batches in both spellings.
    let users: Vec<&str> = of(Stream::User).collect();
    for (i, chunk) in users.chunks(7).enumerate() {
        let body = if i % 2 == 0 {
            let records: Vec<String> = chunk
                .iter()
                .map(|d| format!(r#"{{"data": {d}, "partition-key": "k"}}"#))
                .collect();
            format!(r#"{{"records": [{}]}}"#, records.join(", "))
        } else {
            let records: Vec<String> = chunk
                .iter()
                .map(|d| format!(r#"{{"Data": {d}, "PartitionKey": "k"}}"#))
                .collect();
            format!(r#"{{"Records": [{}]}}"#, records.join(", "))
        };
        let (status, answer) =
            http_send(port, "PUT", "/streams/streaming-0a1b-user/records", &body).unwrap();
        assert_eq!(status, 200, "{answer}");
        assert!(answer.contains(r#""FailedRecordCount":0"#), "{answer}");
    }
    // Bad bodies: a 4xx with a JSON reason, and nothing stored.
    let bad = [
        ("POST", "/topics/0a1b.pin", "{not json", 422),
        ("POST", "/topics/0a1b.pin", r#"{"records": 5}"#, 422),
        ("POST", "/topics/0a1b.other", r#"{"records": []}"#, 404),
        (
            "PUT",
            "/streams/streaming-0a1b-geo/record",
            r#"{"Data": "***"}"#,
            422,
        ),
        (
            "PUT",
            "/streams/streaming-0a1b-user/records",
            r#"{"rows": []}"#,
            422,
        ),
    ];
    for (method, path, body, expected) in bad {
        let (status, answer) = http_send(port, method, path, body).unwrap();
        assert_eq!(status, expected, "{method} {path} {body}: {answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
    }
    stop(engine);
    // Exactly the clean messages sent, each once; no quarantine rows from the bad bodies.
    let summary = check_against_reference(input.path(), lake.path());
    assert_eq!(summary["quarantine"]["rows"], 0, "{summary}");
    assert!(summary["pin"]["rows"].as_u64().unwrap() > 30, "{summary}");
}

#[test]
fn no_acknowledgement_for_data_killed_before_its_commit() {
    let lake = tempfile::tempdir().unwrap();
    let port = free_port();
    // Batches of 60 s: the request waits for a commit that never comes before the kill.
    let mut engine = start(lake.path(), port, "60s");
    let user = r#"{"ind": 7, "first_name": "A", "last_name": "B", "age": 30, "date_joined": "2016-01-01 00:00:00"}"#;
    let body = format!(r#"{{"records": [{{"data": {user}, "partition-key": "k"}}]}}"#);
    // Batches end on the wall clock's whole minutes (60 s batches since a round origin): keep
    // the request and the kill inside one minute, or a batch end between them commits it.
    let within_minute = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 60_000
    };
    while !(200..55_000).contains(&within_minute()) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let client =
        std::thread::spawn(move || http_send(port, "PUT", "/streams/s-user/records", &body));
    std::thread::sleep(Duration::from_millis(800));
    engine.kill().unwrap(); // SIGKILL between receive and commit
    engine.wait().unwrap();
    let answer = client.join().unwrap();
    assert!(
        !matches!(answer, Some((200..=299, _))),
        "acknowledged without a commit: {answer:?}"
    );
    // Nothing of the request is stored: no commit of the `user` table adds a data file (a
    // commit of positions alone, when a batch ended while the engine started, adds none).
    let log = lake.path().join("user").join("_delta_log");
    let adds: Vec<String> = std::fs::read_dir(&log)
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .flat_map(|path| {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .filter(|line| line.starts_with(r#"{"add""#))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        adds.is_empty(),
        "stored before its commit was acknowledged ({} commits): {adds:?}",
        commits(lake.path(), "user")
    );
}

#[test]
fn emulate_to_http_sends_the_original_bodies_and_they_land_like_files() {
    let files = tempfile::tempdir().unwrap();
    emulate(files.path(), 150, 8, 100);
    let from_files = tempfile::tempdir().unwrap();
    assert_success(&replay(files.path(), from_files.path(), &[]));
    for format in ["proxy", "kinesis"] {
        let lake = tempfile::tempdir().unwrap();
        let port = free_port();
        let engine = start(lake.path(), port, "200ms");
        let output = pinstream()
            .args([
                "emulate",
                "--to",
                &format!("http://127.0.0.1:{port}/abc"),
                "--events",
                "150",
            ])
            .args(["--seed", "8", "--universe", "100", "--http-format", format])
            .output()
            .unwrap();
        assert_success(&output);
        stop(engine);
        let counts = assert_same_tables(from_files.path(), lake.path());
        assert!(counts["pin"].as_u64().unwrap() > 50, "{format}: {counts}");
    }
}
