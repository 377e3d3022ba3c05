//! The Kinesis source against kinesis-mock (started by `scripts/services.sh start kinesis`;
//! scripts/test.sh starts it and exports AWS_ENDPOINT_URL_KINESIS and test credentials).
//! Without AWS_ENDPOINT_URL_KINESIS these tests skip with a message.
//!
//! The emulator's stream is the same whether written to files or put to Kinesis, so a Kinesis
//! run must give the tables a file replay gives.
//!
//! kinesis-mock is one single-threaded node process whose PutRecords costs grow with the
//! shard's length: the tests here take [`kinesis_lock`] so they run one at a time (the rest
//! of the suite still runs beside them) and keep their streams small.

use std::path::Path;
use std::process::Output;

use crate::support::*;

/// The endpoint, or `None` (and a message) when the tests should skip.
pub(crate) fn endpoint() -> Option<String> {
    service("AWS_ENDPOINT_URL_KINESIS", "kinesis")
}

/// Deletes the three streams of a prefix when dropped: kinesis-mock, like an AWS account,
/// allows 50 shards in all, so a long-lived server fills up without this.
pub(crate) struct Cleanup(pub(crate) String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        with_kinesis(async |client| {
            for stream in ["pin", "geo", "user"] {
                let name = format!("streaming-{}-{stream}", self.0);
                if let Err(error) = client.delete_stream().stream_name(&name).send().await {
                    eprintln!(
                        "deleting {name}: {}",
                        aws_sdk_kinesis::error::DisplayErrorContext(&error)
                    );
                }
            }
        });
    }
}

/// Runs `work` with a client of the test Kinesis server (configured by the standard AWS
/// variables), on a runtime of its own.
fn with_kinesis<T>(work: impl AsyncFnOnce(aws_sdk_kinesis::Client) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        work(aws_sdk_kinesis::Client::new(&config)).await
    })
}

pub(crate) fn url(prefix: &str) -> String {
    format!("kinesis://{prefix}")
}

pub(crate) fn emulate_kinesis(prefix: &str, events: u64, seed: u64, universe: u64) {
    let output = pinstream()
        .args(["emulate", "--to", &url(prefix)])
        .args(["--events", &events.to_string(), "--seed", &seed.to_string()])
        .args(["--universe", &universe.to_string()])
        .output()
        .unwrap();
    assert_success(&output);
}

/// `pinstream run --from kinesis://... --lake <lake> --until-done --workers 2` plus `extra`.
fn run_kinesis(prefix: &str, lake: impl AsRef<std::ffi::OsStr>, extra: &[&str]) -> Output {
    run_until_done(&url(prefix), lake, &[&["--workers", "2"], extra].concat())
}

/// Every commit of the pin table's log, concatenated (a local lake or an `s3://` one).
fn txn_log(lake: impl AsRef<std::ffi::OsStr>) -> String {
    let lake = lake.as_ref();
    if let Some(url) = lake.to_str().filter(|l| l.starts_with("s3://")) {
        let bucket = url.trim_start_matches("s3://").split('/').next().unwrap();
        return s3_keys(&format!("{}/pin/_delta_log/", url.trim_end_matches('/')))
            .iter()
            .filter(|key| key.ends_with(".json"))
            .map(|key| s3_get(&format!("s3://{bucket}/{key}")))
            .collect();
    }
    std::fs::read_dir(Path::new(lake).join("pin/_delta_log"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect()
}

#[test]
fn kinesis_replay_gives_the_tables_of_the_same_events_from_files() {
    let Some(_) = endpoint() else { return };
    let _serial = kinesis_lock();
    let prefix = unique_name("replay");
    let _cleanup = Cleanup(prefix.clone());
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    emulate(&files, 500, 13, 400);
    emulate_kinesis(&prefix, 500, 13, 400);

    let file_lake = work.path().join("file-lake");
    assert_success(&replay(&files, &file_lake, &["--workers", "2"]));
    let lake = work.path().join("kinesis-lake");
    let summary = work.path().join("summary.json");
    let summary_arg = summary.to_str().unwrap();
    assert_success(&run_kinesis(&prefix, &lake, &["--summary", summary_arg]));
    assert_eq!(run_summary(&summary)["records_in"], 1_500);
    let counts = assert_same_tables(&file_lake, &lake);
    assert!(counts["pin"].as_u64().unwrap() > 0, "{counts}");

    // Positions are records consumed per shard, one txn appId per shard (2 per stream).
    let log = txn_log(&lake);
    for stream in ["pin", "geo", "user"] {
        for shard in 0..2 {
            let app =
                format!("\"appId\":\"kinesis:streaming-{prefix}-{stream}/shardId-{shard:012}\"");
            assert!(log.contains(&app), "no txn for {app}");
        }
    }

    // Exact cursors: each commit names the sequence number of the positions it carries.
    assert!(
        log.contains("\"pinstream.cursors\""),
        "no cursors in the commits"
    );

    // Run again: nothing new is read, and every shard resumes after its stored sequence
    // number (no shard falls back to counting from TRIM_HORIZON).
    let again = run_kinesis(&prefix, &lake, &["--summary", summary_arg]);
    assert_success(&again);
    assert_eq!(run_summary(&summary)["records_in"], 0);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!stderr.contains("no stored sequence number"), "{stderr}");
    // More events: only those are read.
    emulate_kinesis(&prefix, 200, 14, 400);
    assert_success(&run_kinesis(&prefix, &lake, &["--summary", summary_arg]));
    assert_eq!(run_summary(&summary)["records_in"], 600);
}

#[test]
fn kinesis_sigkill_writing_to_s3_then_restart_gives_the_uninterrupted_tables() {
    let Some(_) = endpoint() else { return };
    let _serial = kinesis_lock();
    let Some(_) = s3_available() else { return };
    let prefix = unique_name("kill");
    let _cleanup = Cleanup(prefix.clone());
    emulate_kinesis(&prefix, 4_000, 7, 3_000);
    let work = tempfile::tempdir().unwrap();
    let uninterrupted = work.path().join("uninterrupted");
    assert_success(&run_kinesis(&prefix, &uninterrupted, &[]));

    // Kinesis -> Delta on S3 (issue 5): killed while consuming and writing to the S3 server.
    let lake = format!("{}/killed", s3_bucket("kinesis-kill"));
    let mut kills = 0;
    for point in [2, 5] {
        if run_and_kill(&url(&prefix), &lake, point) {
            kills += 1;
        }
    }
    assert!(kills >= 1, "no kill landed mid-run: make the data larger");
    assert_success(&run_kinesis(&prefix, &lake, &[]));
    let counts = assert_same_tables(&uninterrupted, &lake);
    assert!(counts["pin"].as_u64().unwrap() > 2_000, "{counts}");
    // Every resume was exact: each commit names the sequence number of each position.
    let log = txn_log(&lake);
    assert!(
        log.contains("\"pinstream.cursors\""),
        "no cursors in the commits"
    );
}

/// Splits the first shard of `stream` at the middle of its hash key range and waits until the
/// stream is active again.
fn split_first_shard(stream: &str) {
    use aws_sdk_kinesis::types::StreamStatus;
    with_kinesis(async |client| {
        let shards = client
            .list_shards()
            .stream_name(stream)
            .send()
            .await
            .unwrap();
        let shard = &shards.shards()[0];
        let range = shard.hash_key_range().unwrap();
        let start: u128 = range.starting_hash_key().parse().unwrap();
        let end: u128 = range.ending_hash_key().parse().unwrap();
        let middle = start + (end - start) / 2;
        client
            .split_shard()
            .stream_name(stream)
            .shard_to_split(shard.shard_id())
            .new_starting_hash_key(middle.to_string())
            .send()
            .await
            .unwrap();
        loop {
            let summary = client
                .describe_stream_summary()
                .stream_name(stream)
                .send()
                .await
                .unwrap();
            if *summary
                .stream_description_summary()
                .unwrap()
                .stream_status()
                == StreamStatus::Active
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
}

#[test]
fn kinesis_split_shard_children_are_read_after_their_parent() {
    let Some(_) = endpoint() else { return };
    let _serial = kinesis_lock();
    let prefix = unique_name("split");
    let _cleanup = Cleanup(prefix.clone());
    emulate_kinesis(&prefix, 1_000, 31, 300);
    split_first_shard(&format!("streaming-{prefix}-pin"));
    // Posts repeat (universe 300): later records of a post go to the children.
    emulate_kinesis(&prefix, 1_000, 32, 300);

    let work = tempfile::tempdir().unwrap();
    let summary = work.path().join("summary.json");
    let summary_arg = summary.to_str().unwrap();
    let lake = work.path().join("lake");
    assert_success(&run_kinesis(&prefix, &lake, &["--summary", summary_arg]));
    assert_eq!(run_summary(&summary)["records_in"], 6_000);
    let log = txn_log(&lake);
    for shard in 0..4 {
        let app = format!("\"appId\":\"kinesis:streaming-{prefix}-pin/shardId-{shard:012}\"");
        assert!(log.contains(&app), "no txn for {app}");
    }
    // Any number of workers gives the same tables (parents before children).
    let one = work.path().join("one-worker");
    let output = pinstream()
        .args([
            "run",
            "--from",
            &url(&prefix),
            "--until-done",
            "--workers",
            "1",
            "--lake",
        ])
        .arg(&one)
        .output()
        .unwrap();
    assert_success(&output);
    assert_same_tables(&one, &lake);
    // A cluster of 3 processes: a child may be read by another process than its parent, and
    // still waits for it.
    let cluster = work.path().join("cluster");
    crate::cluster::run_cluster(&url(&prefix), &cluster, 3, 1, &[]);
    assert_same_tables(&one, &cluster);
}

/// `pinstream_source_records_total{kind="kinesis"}` from a running engine's `/metrics`.
pub(crate) fn kinesis_records_read(port: u16) -> Option<u64> {
    let metrics = http_get(port, "/metrics")?;
    metrics
        .lines()
        .find(|l| l.starts_with("pinstream_source_records_total{kind=\"kinesis\"}"))?
        .rsplit(' ')
        .next()?
        .parse::<f64>()
        .ok()
        .map(|v| v as u64)
}

/// Waits until `done` holds, failing the test after `seconds`.
pub(crate) fn wait_for(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn kinesis_shard_split_mid_run_into_an_s3_lake_gives_the_reference_tables() {
    let Some(_) = endpoint() else { return };
    let _serial = kinesis_lock();
    let Some(_) = s3_available() else { return };
    let prefix = unique_name("midsplit");
    let _cleanup = Cleanup(prefix.clone());
    let work = tempfile::tempdir().unwrap();
    // The same events as files, for the reference: before and after the split.
    let (first, second) = (
        work.path().join("events/first"),
        work.path().join("events/second"),
    );
    emulate(&first, 600, 41, 400);
    emulate(&second, 600, 42, 400);
    emulate_kinesis(&prefix, 600, 41, 400);

    let lake = format!("{}/lake", s3_bucket("kinesis-split"));
    let port = free_port();
    let run = pinstream()
        .args(["run", "--from", &url(&prefix), "--workers", "2"])
        .args(["--http", &format!("127.0.0.1:{port}"), "--lake"])
        .arg(&lake)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The engine is reading the parents when the split happens.
    wait_for("the first commit", 120, || commits(&lake, "pin") >= 1);
    split_first_shard(&format!("streaming-{prefix}-pin"));
    split_first_shard(&format!("streaming-{prefix}-user"));
    // Posts repeat (universe 400): records of earlier posts now go to the children.
    emulate_kinesis(&prefix, 600, 42, 400);
    wait_for("every record read", 240, || {
        kinesis_records_read(port) == Some(3_600)
    });
    let status = std::process::Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = run.wait_with_output().unwrap();
    assert_success(&output);

    // The reference for all the events (quarantine rows name their files there, so the
    // Kinesis lake is compared with the checked file replay).
    let events = work.path().join("events");
    let file_lake = work.path().join("file-lake");
    assert_success(&replay(&events, &file_lake, &["--workers", "2"]));
    check_against_reference(&events, &file_lake);
    assert_same_tables(&file_lake, &lake);
    // `--until-done` from where the stopped run committed: every shard (parents drained,
    // children at their ends) resumes at its sequence number and nothing is added.
    let versions = commits(&lake, "pin");
    assert_success(&run_kinesis(&prefix, &lake, &[]));
    assert_eq!(commits(&lake, "pin"), versions, "a resumed run added rows");
    assert_same_tables(&file_lake, &lake);
    // The children were found by the running engine (listed again) and committed.
    let log = txn_log(&lake);
    for shard in 2..4 {
        let app = format!("\"appId\":\"kinesis:streaming-{prefix}-pin/shardId-{shard:012}\"");
        assert!(log.contains(&app), "no txn for {app}");
    }
}

#[test]
fn kinesis_start_latest_or_at_a_timestamp_skips_earlier_records() {
    let Some(_) = endpoint() else { return };
    let _serial = kinesis_lock();
    let prefix = unique_name("start");
    let _cleanup = Cleanup(prefix.clone());
    emulate_kinesis(&prefix, 100, 51, 100);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let between = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    emulate_kinesis(&prefix, 50, 52, 100);

    let work = tempfile::tempdir().unwrap();
    let summary = work.path().join("summary.json");
    let summary_arg = summary.to_str().unwrap();
    let run_from = |start: &str, lake: &str| {
        pinstream()
            .args([
                "run",
                "--from",
                &format!("kinesis://{prefix}?start={start}"),
            ])
            .arg("--lake")
            .arg(work.path().join(lake))
            .args(["--until-done", "--summary", summary_arg])
            .output()
            .unwrap()
    };
    assert_success(&run_from("latest", "latest"));
    assert_eq!(run_summary(&summary)["records_in"], 0);
    assert_success(&run_from(&between.to_string(), "timestamp"));
    assert_eq!(run_summary(&summary)["records_in"], 150);
    assert_success(&run_from("trim_horizon", "all"));
    assert_eq!(run_summary(&summary)["records_in"], 450);
}
