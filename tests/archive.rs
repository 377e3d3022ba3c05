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
//! - a topic-partition an earlier run read part of, listed only after a follow-mode run
//!   started (and its objects copied in out of order), goes on from the tables: nothing
//!   read twice;
//! - the same for a file of a followed directory (`file:`);
//! - follow mode lists only what changed: a few keys per listing on an archive of 2,000
//!   objects, not all of them;
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
    follow_into(
        &work.path().join("lake"),
        source,
        files,
        first,
        total,
        write_rest,
    );
}

/// A running pinstream, killed however the test ends (a failed assertion must not leave it
/// running, holding the test's output open).
struct Run(std::process::Child);

impl Drop for Run {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// [`follow`] into `lake`, which may hold the tables of earlier runs.
fn follow_into(
    lake: &Path,
    source: &str,
    files: &Path,
    first: u64,
    total: u64,
    write_rest: impl FnOnce(),
) {
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut run = Run(pinstream()
        .args(["run", "--from", source, "--lake"])
        .arg(lake)
        .args(["--http", &format!("127.0.0.1:{port}")])
        .args(["--batch-interval", "200ms", "--workers", "2"])
        .spawn()
        .unwrap());
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
    // Nothing more comes: no object or file is read a second time.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(records_in(port), Some(total), "read more than once");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &run.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(run.0.wait().unwrap().success());

    let file_lake = work.path().join("file-lake");
    assert_success(&replay(files, &file_lake, &[]));
    assert_same_tables(&file_lake, lake);
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

/// Issue 12: a partition first listed while following resumes at its position in the
/// tables, even when an earlier run under another prefix wrote it.
#[test]
fn archive_follow_mode_resumes_partitions_first_listed_late_from_the_tables() {
    let Some(_) = s3_available() else { return };
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    emulate(&files, 1_500, 9, 1_000);
    let bucket = s3_bucket("late");
    let objects: Vec<(String, Vec<Vec<u8>>)> = ["pin", "geo", "user"]
        .iter()
        .map(|stream| (format!("l.{stream}"), stream_lines(&files, stream)))
        .collect();
    let total: usize = objects.iter().map(|(_, lines)| lines.len()).sum();
    // Run 1: the first 300 offsets of each partition, from `first/`.
    let first = ConnectWriter::new(&format!("{bucket}/first")).unwrap();
    for (topic, lines) in &objects {
        archive(&first, topic, 0, &lines[..300], 100);
    }
    let lake = work.path().join("lake");
    assert_success(&run_until_done(&format!("{bucket}/first"), &lake, &[]));
    // Run 2 follows `second/`, empty when it starts; the whole archive is then copied in,
    // latest objects first (a parallel copy can land them in any order): each partition
    // waits for the object holding its stored position, and reads only what run 1 did not.
    let second = ConnectWriter::new(&format!("{bucket}/second")).unwrap();
    let source = format!("{bucket}/second?interval=200ms&gap_wait=30s");
    follow_into(&lake, &source, &files, 0, (total - 900) as u64, || {
        for (topic, lines) in &objects {
            let chunks: Vec<_> = lines.chunks(100).enumerate().collect();
            for (i, chunk) in chunks.into_iter().rev() {
                second
                    .put_messages(topic, 0, (i * 100) as i64, chunk, i % 2 == 1)
                    .unwrap();
            }
        }
    });
}

/// Issue 12: after the first listing, following lists only what changed. The archive: 600
/// objects over 3 topics of 3 partitions (the cost of later listings does not depend on
/// it: 2,000 objects measured the same); the listings' cost is in the source's debug log.
#[test]
fn archive_follow_mode_lists_only_what_changed() {
    let Some(_) = s3_available() else { return };
    let bucket = s3_bucket("listing");
    let output = pinstream()
        .args(["emulate", "--to", &format!("{bucket}/a?flush_size=5")])
        .args(["--events", "1000", "--seed", "3", "--universe", "1000"])
        .args(["--partitions", "3"])
        .output()
        .unwrap();
    assert_success(&output);
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = work.path().join("log");
    let child = pinstream()
        .args(["run", "--from", &format!("{bucket}/a?interval=200ms")])
        .arg("--lake")
        .arg(work.path().join("lake"))
        .args(["--http", &format!("127.0.0.1:{port}"), "--workers", "2"])
        .env("PINSTREAM_LOG", "warn,pinstream::connectors::archive=debug")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let run = Run(child);
    let started = Instant::now();
    let listings = |log: &Path| -> Vec<(u64, u64)> {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        // Without the terminal colours around field names.
        let mut plain = String::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(|&c| c == 'm');
            } else {
                plain.push(c);
            }
        }
        let text = plain;
        let field = |line: &str, name: &str| -> Option<u64> {
            let (_, rest) = line.split_once(&format!("{name}="))?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        };
        text.lines()
            .filter(|line| line.contains(" listed"))
            .filter_map(|line| Some((field(line, "requests")?, field(line, "keys")?)))
            .collect()
    };
    // Everything read, then a few listings more.
    loop {
        assert!(started.elapsed() < Duration::from_secs(120), "not read");
        if records_in(port) == Some(3_000) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // A listing logged just after everything was read may have started before the last
    // objects were opened (CI, loaded, logged (14, 15) there once): the ones after it count.
    let read_at = listings(&log).len() + 1;
    while listings(&log).len() < read_at + 5 {
        assert!(started.elapsed() < Duration::from_secs(120), "no listings");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(run);
    let listings = listings(&log);
    let (first, later) = listings.split_first().unwrap();
    eprintln!("first listing (requests, keys): {first:?}; later ones: {later:?}");
    // The first listing is whole: every object, in pages of 1,000.
    assert!(first.1 >= 600 && first.0 >= 1, "{first:?}");
    // Once every partition folder's objects were opened: the prefix, `topics/` and the 3
    // topic folders with the delimiter (1 + 3 + 3 x 3 keys and folders), then 9 partition
    // folders after their last object (nothing new).
    for listing in &listings[read_at..] {
        assert_eq!(*listing, (14, 13), "{listings:?}");
    }
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

/// Issue 12: a file an earlier run read, moved back into a followed directory after the
/// start, goes on from its position in the tables instead of being read again.
#[test]
fn file_follow_mode_resumes_files_first_listed_late_from_the_tables() {
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    emulate(&files, 1_500, 8, 1_000);
    let incoming = work.path().join("incoming");
    let aside = work.path().join("aside");
    std::fs::create_dir_all(&incoming).unwrap();
    std::fs::create_dir_all(&aside).unwrap();
    for stream in ["pin", "geo", "user"] {
        let text = std::fs::read_to_string(files.join(format!("{stream}.jsonl"))).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Run 1 reads the first 300 lines of each stream; the rest is written to the same
        // file later (a file that grows is not read again, so it comes as a second file).
        std::fs::write(
            incoming.join(format!("{stream}-0.jsonl")),
            lines[..300].join("\n") + "\n",
        )
        .unwrap();
        std::fs::write(
            aside.join(format!("{stream}-1.jsonl")),
            lines[300..].join("\n") + "\n",
        )
        .unwrap();
    }
    let lake = work.path().join("lake");
    assert_success(&replay(&incoming, &lake, &[]));
    // Run 2 starts without run 1's files; they are moved back in, with the rest.
    for stream in ["pin", "geo", "user"] {
        let name = format!("{stream}-0.jsonl");
        std::fs::rename(incoming.join(&name), aside.join(&name)).unwrap();
    }
    let source = format!("file:{}?interval=200ms", incoming.display());
    follow_into(&lake, &source, &files, 0, 3 * 1_200, || {
        for stream in ["pin", "geo", "user"] {
            for part in 0..2 {
                let name = format!("{stream}-{part}.jsonl");
                std::fs::rename(aside.join(&name), incoming.join(&name)).unwrap();
            }
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
