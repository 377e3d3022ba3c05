//! The Kafka source against a real broker (tansu, started by `scripts/services.sh start kafka`;
//! scripts/test.sh starts it and exports PINSTREAM_KAFKA). Without PINSTREAM_KAFKA these tests
//! skip with a message.
//!
//! The emulator's stream is the same whether written to files or produced to Kafka, so a
//! Kafka run must give the tables a file replay gives (the reference is checked on the file
//! replay; quarantine rows differ only in their `source`).

use std::path::Path;
use std::process::Output;

use crate::support::*;

/// The broker, or `None` (and a message) when the tests should skip.
fn broker() -> Option<String> {
    match std::env::var("PINSTREAM_KAFKA") {
        Ok(broker) if !broker.is_empty() => Some(broker),
        _ => {
            eprintln!(
                "SKIPPED: PINSTREAM_KAFKA is not set; start a broker with \
                 `scripts/services.sh start kafka && eval \"$(scripts/services.sh env)\"` \
                 (scripts/test.sh does)"
            );
            None
        }
    }
}

/// A topic prefix no other test (or earlier run against the same broker) uses.
fn unique_prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("t{}-{nanos}-{name}", std::process::id())
}

fn url(broker: &str, prefix: &str) -> String {
    format!("kafka://{broker}/{prefix}")
}

/// `pinstream emulate --to kafka://...` (3 partitions per topic).
fn emulate_kafka(broker: &str, prefix: &str, events: u64, seed: u64, universe: u64) {
    let output = pinstream()
        .args(["emulate", "--to", &url(broker, prefix)])
        .args(["--events", &events.to_string(), "--seed", &seed.to_string()])
        .args(["--universe", &universe.to_string(), "--partitions", "3"])
        .output()
        .unwrap();
    assert_success(&output);
}

/// `pinstream run --from kafka://... --lake <lake> --until-done --workers 2` plus `extra`.
fn run_kafka(broker: &str, prefix: &str, lake: &Path, extra: &[&str]) -> Output {
    pinstream()
        .args(["run", "--from", &url(broker, prefix)])
        .arg("--lake")
        .arg(lake)
        .args(["--until-done", "--workers", "2"])
        .args(extra)
        .output()
        .unwrap()
}

fn summary_of(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn kafka_replay_gives_the_tables_of_the_same_events_from_files() {
    let Some(broker) = broker() else { return };
    let prefix = unique_prefix("replay");
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    emulate(&files, 2_000, 11, 1_500);
    emulate_kafka(&broker, &prefix, 2_000, 11, 1_500);

    let file_lake = work.path().join("file-lake");
    assert_success(&replay(&files, &file_lake, &["--workers", "2"]));
    let reference = check_against_reference(&files, &file_lake);

    let lake = work.path().join("kafka-lake");
    let summary = work.path().join("summary.json");
    let output = run_kafka(&broker, &prefix, &lake, &["--summary", path(&summary)]);
    assert_success(&output);
    assert_eq!(summary_of(&summary)["records_in"], 6_000);
    let counts = assert_same_tables(&file_lake, &lake);
    assert_eq!(counts["pin"], reference["pin"]["rows"]);
    assert_eq!(counts["quarantine"], reference["quarantine"]["rows"]);

    // Positions are the next offset per topic-partition, one txn appId each.
    let log = std::fs::read_dir(lake.join("pin/_delta_log"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    for stream in ["pin", "geo", "user"] {
        for p in 0..3 {
            let app = format!("\"appId\":\"kafka:{prefix}.{stream}/{p}\"");
            assert!(log.contains(&app), "no txn for {app}");
        }
    }

    // Run again: nothing new is read.
    let again = run_kafka(&broker, &prefix, &lake, &["--summary", path(&summary)]);
    assert_success(&again);
    assert_eq!(summary_of(&summary)["records_in"], 0);
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn kafka_sigkill_then_restart_gives_the_uninterrupted_tables() {
    let Some(broker) = broker() else { return };
    let prefix = unique_prefix("kill");
    emulate_kafka(&broker, &prefix, 20_000, 7, 15_000);
    let work = tempfile::tempdir().unwrap();
    let uninterrupted = work.path().join("uninterrupted");
    assert_success(&run_kafka(&broker, &prefix, &uninterrupted, &[]));

    let lake = work.path().join("killed");
    let mut kills = 0;
    for point in [2, 5, 9] {
        if run_and_kill(&url(&broker, &prefix), &lake, point) {
            kills += 1;
        }
    }
    assert!(
        kills >= 2,
        "only {kills} kills landed mid-run: make the data larger"
    );
    assert_success(&run_kafka(&broker, &prefix, &lake, &[]));
    let counts = assert_same_tables(&uninterrupted, &lake);
    assert!(counts["pin"].as_u64().unwrap() > 10_000, "{counts}");
}

#[test]
fn kafka_resume_reads_only_new_events() {
    let Some(broker) = broker() else { return };
    let prefix = unique_prefix("resume");
    let work = tempfile::tempdir().unwrap();
    let summary = work.path().join("summary.json");
    emulate_kafka(&broker, &prefix, 3_000, 21, 2_000);
    let lake = work.path().join("lake");
    assert_success(&run_kafka(
        &broker,
        &prefix,
        &lake,
        &["--summary", path(&summary)],
    ));
    assert_eq!(summary_of(&summary)["records_in"], 9_000);

    // More events into the same topics (another seed: partly new posts).
    emulate_kafka(&broker, &prefix, 1_000, 22, 2_000);
    assert_success(&run_kafka(
        &broker,
        &prefix,
        &lake,
        &["--summary", path(&summary)],
    ));
    assert_eq!(
        summary_of(&summary)["records_in"],
        3_000,
        "only the new ones"
    );

    let whole = work.path().join("whole");
    assert_success(&run_kafka(&broker, &prefix, &whole, &[]));
    assert_same_tables(&whole, &lake);
}

#[test]
fn kafka_unreachable_broker_is_one_line_and_nonzero() {
    // No broker needed: nothing listens on this port.
    let port = free_port();
    let output = pinstream()
        .args(["run", "--from", &format!("kafka://127.0.0.1:{port}/x")])
        .args(["--until-done", "--lake"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.contains("unreachable") && last.contains(&port.to_string()),
        "{stderr}"
    );
}

#[test]
fn kafka_offsets_are_committed_to_the_consumer_group_after_the_tables() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

    let Some(broker) = broker() else { return };
    let prefix = unique_prefix("group");
    emulate_kafka(&broker, &prefix, 1_000, 3, 500);
    let lake = tempfile::tempdir().unwrap();
    let group = format!("{prefix}-group");
    let output = pinstream()
        .args([
            "run",
            "--from",
            &format!("{}?group_id={group}", url(&broker, &prefix)),
        ])
        .arg("--lake")
        .arg(lake.path())
        .args(["--until-done", "--workers", "2"])
        .output()
        .unwrap();
    assert_success(&output);

    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker)
        .set("group.id", &group)
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for stream in ["pin", "geo", "user"] {
        for partition in 0..3 {
            list.add_partition(&format!("{prefix}.{stream}"), partition);
        }
    }
    let committed = consumer
        .committed_offsets(list, std::time::Duration::from_secs(10))
        .unwrap();
    let mut per_topic = std::collections::BTreeMap::new();
    for element in committed.elements() {
        if let Offset::Offset(offset) = element.offset() {
            *per_topic.entry(element.topic().to_owned()).or_insert(0) += offset;
        }
    }
    // Every message of every topic is acknowledged once the tables hold it.
    for stream in ["pin", "geo", "user"] {
        assert_eq!(
            per_topic.get(&format!("{prefix}.{stream}")),
            Some(&1_000),
            "{per_topic:?}"
        );
    }
}
