//! The archive source (issue 12): a Kafka Connect S3 sink archive on the local S3 server
//! (moto), read with Kafka offsets as positions, then live Kafka (tansu). Without
//! PINSTREAM_S3_ENDPOINT (and PINSTREAM_KAFKA for the first test) these tests skip with a
//! message.
//!
//! - backfill from the archive, then Kafka, on one lake: the tables of the SPEC reference,
//!   every offset read once, every bad message quarantined once; the archive and Kafka in
//!   one job (one process, and a cluster): Kafka reads only the offsets after the archive's
//!   end;
//! - follow mode reads the objects written while the job runs (S3, and a local directory
//!   with `file:`);
//! - SIGKILL while reading the archive, then restart, equals the uninterrupted run.

use std::path::Path;
use std::time::{Duration, Instant};

use pinstream::connectors::archive::ConnectWriter;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::support::*;

/// Every message of `topic` (`total` of them over `partitions` partitions), per partition
/// in offset order (offsets from 0, contiguous: asserted, as the archive's names rely on
/// it). Read to the known total: tansu's watermarks can lag behind the end.
fn read_topic(broker: &str, topic: &str, partitions: i32, total: usize) -> Vec<Vec<Vec<u8>>> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", unique_name("archiver"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut messages = vec![Vec::new(); partitions as usize];
    let started = Instant::now();
    while messages.iter().map(Vec::len).sum::<usize>() < total {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "reading {topic}"
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let Ok(message) = message else { continue };
        let partition = &mut messages[message.partition() as usize];
        assert_eq!(
            message.offset(),
            partition.len() as i64,
            "contiguous offsets"
        );
        partition.push(message.payload().unwrap_or_default().to_vec());
    }
    messages
}

/// Archives `messages` of `topic`/`partition` from offset 0 as the Connect sink does,
/// `flush_size` per object, every other object gzip-compressed.
fn archive(
    writer: &ConnectWriter,
    topic: &str,
    partition: i32,
    messages: &[Vec<u8>],
    flush_size: usize,
) {
    for (i, chunk) in messages.chunks(flush_size).enumerate() {
        let start = (i * flush_size) as i64;
        writer
            .put_messages(topic, partition, start, chunk, i % 2 == 1)
            .unwrap();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn archive_backfill_then_kafka_reads_every_offset_once() {
    let Some(broker) = service("PINSTREAM_KAFKA", "kafka") else {
        return;
    };
    let Some(_) = s3_available() else { return };
    let prefix = unique_name("archive");
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    emulate(&files, 2_000, 11, 1_500);
    let output = pinstream()
        .args(["emulate", "--to", &format!("kafka://{broker}/{prefix}")])
        .args(["--events", "2000", "--seed", "11", "--universe", "1500"])
        .args(["--partitions", "3"])
        .output()
        .unwrap();
    assert_success(&output);

    // The head of each partition archived (the rest only in Kafka), plus an object whose
    // name does not parse: skipped, counted, nothing else lost.
    let bucket = s3_bucket("archive");
    let writer = ConnectWriter::new(&bucket).unwrap();
    let mut archived = 0;
    for stream in ["pin", "geo", "user"] {
        let topic = format!("{prefix}.{stream}");
        for (p, messages) in read_topic(&broker, &topic, 3, 2_000).iter().enumerate() {
            assert!(!messages.is_empty(), "{topic}/{p} is empty");
            let head = &messages[..messages.len() * 2 / 3];
            archive(&writer, &topic, p as i32, head, 100);
            archived += head.len();
        }
    }
    writer
        .put(
            &format!("topics/{prefix}.pin/partition=0/{prefix}.pin+0+garbage.json"),
            b"{}\n".to_vec(),
        )
        .unwrap();

    let lake = work.path().join("lake");
    let summary = work.path().join("summary.json");
    let run1 = run_until_done(
        &format!("{bucket}/topics/"),
        &lake,
        &["--workers", "2", "--summary", path(&summary)],
    );
    assert_success(&run1);
    assert_eq!(run_summary(&summary)["records_in"], archived);
    let stderr = String::from_utf8_lossy(&run1.stderr);
    assert_eq!(stderr.matches("bad object skipped").count(), 1, "{stderr}");
    // The archive's positions are the Kafka source's: one txn appId per topic-partition.
    let log = std::fs::read_dir(lake.join("pin/_delta_log"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    for p in 0..3 {
        let app = format!("\"appId\":\"kafka:{prefix}.pin/{p}\"");
        assert!(log.contains(&app), "no txn for {app} in {log}");
    }

    let run2 = run_until_done(
        &format!("kafka://{broker}/{prefix}?group_id={prefix}"),
        &lake,
        &["--workers", "2", "--summary", path(&summary)],
    );
    assert_success(&run2);
    assert_eq!(run_summary(&summary)["records_in"], 6_000 - archived);

    let file_lake = work.path().join("file-lake");
    assert_success(&replay(&files, &file_lake, &["--workers", "2"]));
    let reference = check_against_reference(&files, &file_lake);
    let counts = assert_same_tables(&file_lake, &lake);
    assert_eq!(counts["pin"], reference["pin"]["rows"]);
    assert_eq!(counts["quarantine"], reference["quarantine"]["rows"]);

    // Both in one job (issue 12), the live source listed first: each topic-partition is read
    // from the archive to its end, then from Kafka at the next offset. Nothing is read
    // twice (Kafka gives exactly the offsets after the archive's end), nothing is skipped.
    let one_job = work.path().join("one-job");
    let output = pinstream()
        .args([
            "run",
            "--from",
            &format!("kafka://{broker}/{prefix}?group_id={prefix}-one"),
        ])
        .args(["--from", &format!("{bucket}/topics/")])
        .arg("--lake")
        .arg(&one_job)
        .args([
            "--until-done",
            "--workers",
            "2",
            "--summary",
            path(&summary),
        ])
        .output()
        .unwrap();
    assert_success(&output);
    let totals = run_summary(&summary);
    assert_eq!(totals["kafka_messages"], 6_000 - archived, "{totals}");
    assert_eq!(totals["records_in"], 6_000, "{totals}");
    let counts = assert_same_tables(&file_lake, &one_job);
    assert_eq!(counts["quarantine"], reference["quarantine"]["rows"]);

    // The same across processes: a cluster of 2 x 1 worker, the archive listed first.
    let cluster = work.path().join("cluster");
    crate::cluster::run_cluster(
        &format!("{bucket}/topics/"),
        &cluster,
        2,
        1,
        &[
            "--from",
            &format!("kafka://{broker}/{prefix}?group_id={prefix}-two"),
        ],
    );
    assert_same_tables(&file_lake, &cluster);
}

/// The emulated files' lines of each stream as one partition of topic `<topic>.<stream>`.
fn stream_lines(files: &Path, stream: &str) -> Vec<Vec<u8>> {
    std::fs::read_to_string(files.join(format!("{stream}.jsonl")))
        .unwrap()
        .lines()
        .map(|line| line.as_bytes().to_vec())
        .collect()
}

fn records_in(port: u16) -> Option<u64> {
    let stats: serde_json::Value = serde_json::from_str(&http_get(port, "/api/v1/stats")?).ok()?;
    stats["records_in"].as_u64()
}

/// Runs `--from source` without `--until-done`, waits until it read the `first` records
/// written before it started, calls `write_rest`, waits until it read `total`, stops it
/// with SIGTERM; the tables must equal a replay of `files`.
fn follow(source: &str, files: &Path, first: u64, total: u64, write_rest: impl FnOnce()) {
    let work = tempfile::tempdir().unwrap();
    let lake = work.path().join("lake");
    let port = free_port();
    let mut child = pinstream()
        .args(["run", "--from", source, "--lake"])
        .arg(&lake)
        .args(["--http", &format!("127.0.0.1:{port}")])
        .args(["--batch-interval", "200ms", "--workers", "2"])
        .spawn()
        .unwrap();
    let started = Instant::now();
    while records_in(port) != Some(first) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "first objects not read"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    write_rest();
    while records_in(port) != Some(total) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "objects written later not read: {:?} of {total}",
            records_in(port)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());

    let file_lake = work.path().join("file-lake");
    assert_success(&replay(files, &file_lake, &[]));
    assert_same_tables(&file_lake, &lake);
}

#[test]
fn archive_follow_mode_reads_objects_written_while_it_runs() {
    let Some(_) = s3_available() else { return };
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    emulate(&files, 1_500, 5, 1_000);
    let bucket = s3_bucket("follow");
    let writer = ConnectWriter::new(&bucket).unwrap();
    let objects: Vec<(String, Vec<Vec<u8>>)> = ["pin", "geo", "user"]
        .iter()
        .map(|stream| (format!("f.{stream}"), stream_lines(&files, stream)))
        .collect();
    let total: usize = objects.iter().map(|(_, lines)| lines.len()).sum();
    // The first 300 lines of each stream now, the rest while the job runs.
    for (topic, lines) in &objects {
        archive(&writer, topic, 0, &lines[..300], 100);
    }
    let source = format!("{bucket}/topics?interval=200ms");
    follow(&source, &files, 900, total as u64, || {
        for (topic, lines) in &objects {
            for (i, chunk) in lines[300..].chunks(100).enumerate() {
                writer
                    .put_messages(topic, 0, 300 + (i * 100) as i64, chunk, false)
                    .unwrap();
            }
        }
    });
}

#[test]
fn file_follow_mode_reads_files_written_while_it_runs() {
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    emulate(&files, 1_500, 5, 1_000);
    let incoming = work.path().join("incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    let chunks: Vec<(String, String)> = ["pin", "geo", "user"]
        .iter()
        .flat_map(|stream| {
            let text = std::fs::read_to_string(files.join(format!("{stream}.jsonl"))).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            lines
                .chunks(300)
                .enumerate()
                .map(|(i, chunk)| (format!("{stream}-{i:03}.jsonl"), chunk.join("\n") + "\n"))
                .collect::<Vec<_>>()
        })
        .collect();
    let total = 3 * 1_500;
    let (now, later): (Vec<_>, Vec<_>) = chunks
        .iter()
        .partition(|(name, _)| name.ends_with("000.jsonl"));
    for (name, text) in &now {
        std::fs::write(incoming.join(name), text).unwrap();
    }
    let source = format!("file:{}?interval=200ms", incoming.display());
    follow(&source, &files, 900, total, || {
        for (name, text) in &later {
            // Written aside and renamed in, as a file drop should be.
            let aside = work.path().join(name);
            std::fs::write(&aside, text).unwrap();
            std::fs::rename(&aside, incoming.join(name)).unwrap();
        }
    });
}

#[test]
fn archive_sigkill_then_restart_gives_the_uninterrupted_tables() {
    let Some(_) = s3_available() else { return };
    let bucket = s3_bucket("archive-kill");
    let output = pinstream()
        .args(["emulate", "--to", &format!("{bucket}/a?flush_size=500")])
        .args(["--events", "10000", "--seed", "7", "--universe", "8000"])
        .args(["--partitions", "3"])
        .output()
        .unwrap();
    assert_success(&output);
    let source = format!("{bucket}/a");
    let work = tempfile::tempdir().unwrap();
    let uninterrupted = work.path().join("uninterrupted");
    assert_success(&run_until_done(
        &source,
        &uninterrupted,
        &["--workers", "2"],
    ));

    let lake = work.path().join("killed");
    let mut kills = 0;
    for point in [2, 4, 7] {
        if run_and_kill(&source, &lake, point) {
            kills += 1;
        }
    }
    assert!(kills > 0, "every run finished before its kill");
    assert_success(&run_until_done(&source, &lake, &["--workers", "2"]));
    assert_same_tables(&uninterrupted, &lake);
}
