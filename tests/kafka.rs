//! The Kafka source against a real broker (tansu, started by `scripts/services.sh start kafka`;
//! scripts/test.sh starts it and exports PINSTREAM_KAFKA). Without PINSTREAM_KAFKA these tests
//! skip with a message.
//!
//! The emulator's stream is the same whether written to files or produced to Kafka, so a
//! Kafka run must give the tables a file replay gives (the reference is checked on the file
//! replay; quarantine rows differ only in their `source`).

use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use crate::support::*;

/// The broker, or `None` (and a message) when the tests should skip.
fn broker() -> Option<String> {
    service("PINSTREAM_KAFKA", "kafka")
}

fn url(broker: &str, prefix: &str) -> String {
    format!("kafka://{broker}/{prefix}")
}

/// The source of a run: its own consumer group for the offsets it acknowledges (tests run
/// concurrently on one broker). The job assigns the partitions itself (the default).
fn group_url(broker: &str, prefix: &str) -> String {
    format!("kafka://{broker}/{prefix}?group_id={prefix}")
}

/// The source of a process that shares the partitions with the other processes of its
/// consumer group (`assign=group`).
fn member_url(broker: &str, prefix: &str) -> String {
    format!("{}&assign=group", group_url(broker, prefix))
}

/// `pinstream emulate --to kafka://...` (3 partitions per topic).
fn emulate_kafka(broker: &str, prefix: &str, events: u64, seed: u64, universe: u64) {
    emulate_kafka_partitions(broker, prefix, events, seed, universe, 3)
}

fn emulate_kafka_partitions(
    broker: &str,
    prefix: &str,
    events: u64,
    seed: u64,
    universe: u64,
    partitions: u32,
) {
    let output = pinstream()
        .args(["emulate", "--to", &url(broker, prefix)])
        .args(["--events", &events.to_string(), "--seed", &seed.to_string()])
        .args(["--universe", &universe.to_string()])
        .args(["--partitions", &partitions.to_string()])
        .output()
        .unwrap();
    assert_success(&output);
}

/// `pinstream run --from kafka://... --lake <lake> --until-done --workers 2` plus `extra`.
fn run_kafka(broker: &str, prefix: &str, lake: &Path, extra: &[&str]) -> Output {
    let source = group_url(broker, prefix);
    run_until_done(&source, lake, &[&["--workers", "2"], extra].concat())
}

#[test]
fn kafka_replay_gives_the_tables_of_the_same_events_from_files() {
    let Some(broker) = broker() else { return };
    let prefix = unique_name("replay");
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
    assert_eq!(run_summary(&summary)["records_in"], 6_000);
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
    assert_eq!(run_summary(&summary)["records_in"], 0);
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn kafka_sigkill_then_restart_gives_the_uninterrupted_tables() {
    let Some(broker) = broker() else { return };
    let prefix = unique_name("kill");
    emulate_kafka(&broker, &prefix, 20_000, 7, 15_000);
    let work = tempfile::tempdir().unwrap();
    let uninterrupted = work.path().join("uninterrupted");
    assert_success(&run_kafka(&broker, &prefix, &uninterrupted, &[]));

    let lake = work.path().join("killed");
    let mut kills = 0;
    for point in [2, 5, 9] {
        if run_and_kill(&group_url(&broker, &prefix), &lake, point) {
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
    let prefix = unique_name("resume");
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
    assert_eq!(run_summary(&summary)["records_in"], 9_000);

    // More events into the same topics (another seed: partly new posts).
    emulate_kafka(&broker, &prefix, 1_000, 22, 2_000);
    assert_success(&run_kafka(
        &broker,
        &prefix,
        &lake,
        &["--summary", path(&summary)],
    ));
    assert_eq!(
        run_summary(&summary)["records_in"],
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
    let prefix = unique_name("group");
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

/// `text` without terminal colour codes (the log lines the engine writes).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn read_log(path: &Path) -> String {
    plain(&std::fs::read_to_string(path).unwrap_or_default())
}

/// Waits until `done` holds, panicking after `limit` with `what`.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` to end (at most `limit`), asserting success; shows its log otherwise.
fn wait_success(child: &mut Child, log: &Path, limit: Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}:\n{}", read_log(log));
            return;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}:\n{}", read_log(log));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The partition counts a process was given by the group, in order (from its log).
fn assignments(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|line| line.contains("kafka group assigned partitions"))
        .filter_map(|line| {
            let at = line.find("partitions=")? + "partitions=".len();
            line[at..].split_whitespace().next()?.parse().ok()
        })
        .collect()
}

/// Issue 4: a second consumer process with the same job splits the partitions (consumer
/// group), and the tables stay exact through joins, a SIGKILL and a restart. Hazards this
/// catches: a process that gains a partition without the rows its previous owner committed
/// (duplicates), and a process committing a batch of a partition it has lost (duplicates or
/// a position moved back: loss).
#[test]
fn kafka_two_processes_of_one_job_split_the_partitions_and_stay_exact() {
    let Some(broker) = broker() else { return };
    let prefix = unique_name("split");
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    emulate(&files, 30_000, 7, 20_000);
    emulate_kafka_partitions(&broker, &prefix, 30_000, 7, 20_000, 4);
    let lake = work.path().join("lake");
    let source = member_url(&broker, &prefix);
    let spawn = |name: &str| -> (Child, PathBuf) {
        let log = work.path().join(format!("{name}.log"));
        let child = pinstream()
            .args(["run", "--from", &source, "--lake"])
            .arg(&lake)
            .args(["--until-done", "--workers", "2", "--batch-records", "1500"])
            .arg("--summary")
            .arg(work.path().join(format!("{name}.json")))
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        (child, log)
    };

    // A alone, then B joins: the group splits the 12 partitions between them.
    let (mut a, a_log) = spawn("a");
    wait_for("A's first commits", Duration::from_secs(120), || {
        commits(&lake, "pin") >= 3
    });
    let (mut b, b_log) = spawn("b");
    wait_for("B's assignment", Duration::from_secs(60), || {
        !assignments(&read_log(&b_log)).is_empty()
    });
    let at = commits(&lake, "pin");
    wait_for("commits after B joined", Duration::from_secs(60), || {
        commits(&lake, "pin") >= at + 3
    });
    // A dies mid-run (its partitions move to B once the group drops it), then comes back.
    assert!(
        a.try_wait().unwrap().is_none(),
        "A finished before the kill: make the data larger"
    );
    a.kill().unwrap();
    a.wait().unwrap();
    let (mut a2, a2_log) = spawn("a2");
    wait_success(&mut b, &b_log, Duration::from_secs(300));
    wait_success(&mut a2, &a2_log, Duration::from_secs(300));

    // The split really happened: A held all 12 partitions, then gave up some to B.
    let (a_text, b_text) = (read_log(&a_log), read_log(&b_log));
    assert_eq!(assignments(&a_text).first(), Some(&12), "{a_text}");
    assert!(
        assignments(&b_text).iter().any(|&n| 0 < n && n < 12),
        "B never shared the partitions: {:?}\n{b_text}",
        assignments(&b_text)
    );
    assert!(run_summary(&work.path().join("b.json"))["records_in"].as_u64() > Some(0));
    // The same tables as the reference (checked on a file replay of the same events:
    // quarantine rows differ only in their `source`), every quarantined message once.
    let file_lake = work.path().join("file-lake");
    assert_success(&replay(&files, &file_lake, &["--workers", "2"]));
    let reference = check_against_reference(&files, &file_lake);
    let counts = assert_same_tables(&file_lake, &lake);
    assert_eq!(counts["pin"], reference["pin"]["rows"]);
    assert_eq!(counts["quarantine"], reference["quarantine"]["rows"]);
    assert!(counts["pin"].as_u64().unwrap() > 10_000, "{counts}");
}

/// Every commit stores the position of every partition the process reads, moved or not, in
/// a consumer group and with the job's own assignment alike: the Delta fence refuses a commit
/// only over the appIds it writes, so a process that gained a partition and has not read from
/// it yet, a stale process still committing one it lost, or a second process started with
/// the same job must write it too (`kafka_two_processes_...` found tables with a batch twice
/// when only moved positions were stored, and so did two job-assigned processes).
#[test]
fn kafka_commits_store_every_partition_of_the_process() {
    let Some(broker) = broker() else { return };
    let prefix = unique_name("carry");
    let work = tempfile::tempdir().unwrap();
    // 4 partitions a stream, of different lengths: some reach their end batches before the
    // others, and those batches move only the rest.
    emulate_kafka_partitions(&broker, &prefix, 4_000, 5, 3_000, 4);
    for (name, source) in [
        ("group", member_url(&broker, &prefix)),
        ("job", url(&broker, &prefix)),
    ] {
        let lake = work.path().join(name);
        let output = run_until_done(
            &source,
            &lake,
            &["--workers", "2", "--batch-records", "300"],
        );
        assert_success(&output);
        assert_every_commit_stores_every_partition(&lake, &prefix);
    }
}

/// Two processes started apart with the same job (`assign = "job"`) both read every
/// partition into one lake: the tables are those of one process. Each commit stores every
/// position, so whichever commits an offset second is fenced and restarts from the tables
/// (when commits stored only the positions they moved, this test failed 4 runs of 4, with up
/// to a whole table twice).
#[test]
fn kafka_two_processes_started_apart_with_the_same_job_stay_exact() {
    let Some(broker) = broker() else { return };
    let prefix = unique_name("twojob");
    let work = tempfile::tempdir().unwrap();
    emulate_kafka_partitions(&broker, &prefix, 30_000, 7, 20_000, 4);
    let single = work.path().join("single");
    assert_success(&run_until_done(
        &url(&broker, &prefix),
        &single,
        &["--workers", "2"],
    ));
    let lake = work.path().join("lake");
    let spawn = || {
        pinstream()
            .args(["run", "--from", &url(&broker, &prefix), "--lake"])
            .arg(&lake)
            .args(["--until-done", "--workers", "2", "--batch-records", "1500"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    assert_success(&first.wait_with_output().unwrap());
    assert_success(&second.wait_with_output().unwrap());
    assert_same_tables(&single, &lake);
}

/// Every commit after the table's creation, of each table of `lake`, stores the position of
/// all 4 partitions of each of the 3 topics of `prefix`.
fn assert_every_commit_stores_every_partition(lake: &Path, prefix: &str) {
    let apps: Vec<String> = ["pin", "geo", "user"]
        .iter()
        .flat_map(|stream| (0..4).map(move |p| format!("kafka:{prefix}.{stream}/{p}")))
        .collect();
    for table in ["pin", "geo", "user", "quarantine"] {
        let log = lake.join(table).join("_delta_log");
        let mut commits: Vec<PathBuf> = std::fs::read_dir(&log)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        commits.sort();
        // Version 0 creates the table; every later one is a batch of this run.
        assert!(commits.len() > 5, "{table}: {} commits", commits.len());
        for commit in &commits[1..] {
            let text = std::fs::read_to_string(commit).unwrap();
            let stored: Vec<&String> = apps
                .iter()
                .filter(|app| text.contains(&format!("\"appId\":\"{app}\"")))
                .collect();
            assert_eq!(
                stored.len(),
                apps.len(),
                "{}: stores {stored:?}\n{text}",
                commit.display()
            );
        }
    }
}

/// The value of the metric line starting with `name` in `/metrics` of the server on `port`.
fn metric(port: u16, name: &str) -> Option<f64> {
    let text = http_get(port, "/metrics")?;
    text.lines()
        .find(|line| line.starts_with(name))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

/// The offsets group `group` has committed, summed over the three topics of `prefix` (their
/// first `partitions` partitions).
pub fn group_offsets(broker: &str, group: &str, prefix: &str, partitions: i32) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for stream in ["pin", "geo", "user"] {
        for partition in 0..partitions {
            list.add_partition(&format!("{prefix}.{stream}"), partition);
        }
    }
    let Ok(committed) = consumer.committed_offsets(list, Duration::from_secs(5)) else {
        return 0;
    };
    committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        })
        .sum()
}

/// Issue 4: a broker stopped for 30 s mid-run and restarted with the same data. The engine
/// logs the outage, shows it in `/metrics`, keeps retrying by itself, reads what was produced
/// after the broker came back, and the tables equal the reference of all events. The broker
/// is a private one (own port, storage on the local S3 server so a restart keeps the data).
#[test]
fn kafka_broker_stopped_for_30s_mid_run_and_the_engine_recovers_alone() {
    use crate::support::broker::{PrivateBroker, s3_port};
    let Some(s3) = s3_port() else { return };
    let work = tempfile::tempdir().unwrap();
    let bucket = unique_name("tansu").to_ascii_lowercase();
    let mut broker = PrivateBroker::start(s3, &bucket, work.path().join("tansu.log"));
    let address = broker.address();
    let prefix = "outage";
    emulate_kafka(&address, prefix, 1_500, 31, 2_000);

    let http = free_port();
    let log = work.path().join("engine.log");
    let lake = work.path().join("lake");
    let mut engine = pinstream()
        .args(["run", "--from", &group_url(&address, prefix), "--lake"])
        .arg(&lake)
        .args(["--workers", "2", "--batch-records", "1500"])
        .env("PINSTREAM_HTTP", format!("127.0.0.1:{http}"))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let all_before = 3 * 1_500;
    wait_for(
        "the first events committed",
        Duration::from_secs(120),
        || group_offsets(&address, prefix, prefix, 3) >= all_before,
    );

    broker.stop();
    let stopped = Instant::now();
    wait_for("the outage in /metrics", Duration::from_secs(30), || {
        metric(http, "pinstream_kafka_brokers_down") == Some(1.0)
    });
    while stopped.elapsed() < Duration::from_secs(30) {
        assert!(
            engine.try_wait().unwrap().is_none(),
            "the engine gave up during the outage:\n{}",
            read_log(&log)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    broker.restart();
    // More events once the broker is back (same topics: the restart kept them).
    emulate_kafka(&address, prefix, 1_500, 32, 2_000);
    let all = 2 * all_before;
    wait_for("every event committed", Duration::from_secs(180), || {
        group_offsets(&address, prefix, prefix, 3) >= all
    });
    assert_eq!(metric(http, "pinstream_kafka_brokers_down"), Some(0.0));
    assert!(metric(http, "pinstream_kafka_broker_outages_total") >= Some(1.0));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &engine.id().to_string()])
        .status();
    wait_success(&mut engine, &log, Duration::from_secs(60));
    let text = read_log(&log);
    assert!(text.contains("kafka brokers unreachable"), "{text}");
    assert!(text.contains("kafka brokers reachable again"), "{text}");

    let files = work.path().join("files");
    emulate(&files.join("before"), 1_500, 31, 2_000);
    emulate(&files.join("after"), 1_500, 32, 2_000);
    let file_lake = work.path().join("file-lake");
    assert_success(&replay(&files, &file_lake, &["--workers", "2"]));
    let reference = check_against_reference(&files, &file_lake);
    let counts = assert_same_tables(&file_lake, &lake);
    assert_eq!(counts["pin"], reference["pin"]["rows"]);
}

/// Resident memory of process `pid` now, bytes.
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            let kb = line.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?;
            kb.trim().parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Issue 4, backpressure: with a large backlog in Kafka and a sink slower than the reading
/// (tiny batches: 4 Delta commits per 600 records, so commit latency is the bottleneck; no
/// test hook, the real commit path), the consumer's position never runs more than the
/// in-flight batches ahead of the committed positions, and memory stays bounded.
///
/// Read position: `pinstream_source_records_total{kind="kafka"}`; committed position:
/// `pinstream_source_positions_committed` (a fresh job reads every partition from offset 0),
/// both from one scrape. The group's offsets are checked too: they follow the tables.
#[test]
fn kafka_backlog_is_read_no_faster_than_the_sink_commits() {
    let Some(broker) = broker() else { return };
    let prefix = unique_name("backlog");
    let events = 100_000u64;
    emulate_kafka_partitions(&broker, &prefix, events, 5, 1_000_000, 4);
    let backlog = 3 * events as i64;
    let work = tempfile::tempdir().unwrap();
    let http = free_port();
    let log = work.path().join("engine.log");
    let (workers, batch_records) = (2i64, 300i64);
    let mut engine = pinstream()
        .args(["run", "--from", &group_url(&broker, &prefix), "--lake"])
        .arg(work.path().join("lake"))
        .args(["--workers", &workers.to_string()])
        .args(["--batch-records", &batch_records.to_string()])
        .env("PINSTREAM_HTTP", format!("127.0.0.1:{http}"))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let (mut most_ahead, mut peak_rss, mut samples) = (0i64, 0u64, 0);
    let (mut read, mut committed) = (0i64, 0i64);
    while started.elapsed() < Duration::from_secs(20) {
        assert!(
            engine.try_wait().unwrap().is_none(),
            "engine stopped:\n{}",
            read_log(&log)
        );
        if let Some(text) = http_get(http, "/metrics") {
            let value = |name: &str| {
                text.lines()
                    .find(|line| line.starts_with(name))
                    .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            };
            if let (Some(r), Some(c)) = (
                value("pinstream_source_records_total{kind=\"kafka\"}"),
                value("pinstream_source_positions_committed"),
            ) {
                (read, committed) = (r as i64, c as i64);
                most_ahead = most_ahead.max(read - committed);
                samples += 1;
            }
        }
        peak_rss = peak_rss.max(rss(engine.id()));
        std::thread::sleep(Duration::from_millis(100));
    }
    // The group's offsets follow the tables, never lead them (read the tables' after).
    let group = group_offsets(&broker, &prefix, &prefix, 4);
    let tables = metric(http, "pinstream_source_positions_committed").unwrap_or(0.0) as i64;
    let _ = engine.kill();
    let _ = engine.wait();
    assert!(
        group > 0 && group <= tables,
        "group {group}, tables {tables}"
    );
    eprintln!(
        "backlog {backlog} records: after 20 s read {read}, committed {committed}, \
         most read ahead of the commits {most_ahead} ({samples} samples), peak RSS {} MiB",
        peak_rss >> 20
    );
    assert!(samples > 50 && committed > 0, "{}", read_log(&log));
    // The sink, not the backlog, set the pace: most of the backlog is still in Kafka.
    assert!(
        read < backlog / 2,
        "read {read} of {backlog}: the sink was not the bottleneck"
    );
    // Reading stops BATCHES_IN_FLIGHT (3) batches past the last commit: the open batch plus
    // three closed ones, each at most `batch_records` per worker.
    let bound = 4 * workers * batch_records;
    assert!(
        most_ahead <= bound,
        "read {most_ahead} ahead of the commits (bound {bound})"
    );
    assert!(peak_rss < 512 << 20, "peak RSS {} MiB", peak_rss >> 20);
}
