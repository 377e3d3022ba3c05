//! Faults of the lake and of a source mid-run (issue 13), against the real local servers
//! behind a TCP proxy the test cuts ([`crate::support::proxy`]; the servers keep their data):
//!
//! - the S3 lake stops answering mid-run (first requests hang with no answer, then
//!   connections are reset): the hung request fails within its 30 s timeout, the engine says
//!   so in one line and `pinstream_lake_up 0`, reading pauses at the in-flight limit, and when
//!   the lake is back the run finishes by itself with the tables of the SPEC reference;
//! - the Kinesis endpoint does the same: reads retry and resume, tables exact;
//! - a local lake on a full file system: the run fails in one line, exit 1, the Delta logs
//!   stay readable, and once space is freed a restart gives the reference tables.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::kinesis::{Cleanup, emulate_kinesis, kinesis_records_read, url, wait_for};
use crate::support::proxy::Proxy;
use crate::support::*;

/// A gauge or counter without labels from a running engine's `/metrics`.
fn metric(port: u16, name: &str) -> Option<f64> {
    let text = http_get(port, "/metrics")?;
    text.lines()
        .find(|line| line.split(' ').next() == Some(name))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

/// Lines of `log` containing `needle`.
fn lines_with(log: &str, needle: &str) -> usize {
    log.lines().filter(|line| line.contains(needle)).count()
}

#[test]
fn s3_lake_unreachable_mid_run_is_waited_out_and_the_tables_are_exact() {
    let Some(endpoint) = service("PINSTREAM_S3_ENDPOINT", "s3") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("input");
    emulate(&input, 6_000, 21, 4_000);
    write_edge_cases(&input);
    let lake = format!("{}/lake", s3_bucket("outage"));
    let proxy = Proxy::start(&endpoint);
    let port = free_port();
    let log = work.path().join("run.log");
    let mut run = pinstream()
        .env("AWS_ENDPOINT_URL_S3", proxy.url())
        .args(["run", "--from"])
        .arg(format!("file:{}", input.display()))
        .args(["--lake", &lake, "--until-done", "--batch-records", "300"])
        .args(["--http", &format!("127.0.0.1:{port}")])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for("three commits", 120, || commits(&lake, "pin") >= 3);

    // The lake takes requests and never answers: the request in flight must fail within its
    // 30 s timeout (it is what tells the engine the lake is down).
    let cut = Instant::now();
    proxy.hang();
    wait_for("pinstream_lake_up 0", 60, || {
        metric(port, "pinstream_lake_up") == Some(0.0)
    });
    let noticed = cut.elapsed();
    assert!(
        noticed < Duration::from_secs(50),
        "the lake was noticed down after {noticed:?}"
    );
    // Then connections are reset at once, until the outage has lasted 30 s (at least 10 s
    // of it reset). Reading has paused at the in-flight limit: nothing more is read.
    proxy.refuse();
    std::thread::sleep(Duration::from_secs(2));
    let read = metric(port, "pinstream_source_records_total{kind=\"file\"}");
    let committed = commits(&lake, "pin");
    std::thread::sleep(
        Duration::from_secs(30)
            .saturating_sub(cut.elapsed())
            .max(Duration::from_secs(10)),
    );
    assert_eq!(
        metric(port, "pinstream_source_records_total{kind=\"file\"}"),
        read,
        "reading went on while the lake was down"
    );
    assert_eq!(
        commits(&lake, "pin"),
        committed,
        "a commit landed during the outage"
    );
    assert!(
        run.try_wait().unwrap().is_none(),
        "the run ended during the outage"
    );
    let outage = cut.elapsed();

    proxy.forward();
    wait_for("pinstream_lake_up 1", 60, || {
        metric(port, "pinstream_lake_up") != Some(0.0)
    });
    let last_commit = metric(port, "pinstream_last_commit_timestamp_seconds");
    let status = run.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "the run failed ({status}):\n{log}");
    assert_eq!(lines_with(&log, "lake unreachable"), 1, "{log}");
    assert_eq!(lines_with(&log, "lake reachable again"), 1, "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(last_commit.is_some_and(|t| t > 1.7e9), "{last_commit:?}");
    eprintln!("outage {outage:?}, noticed after {noticed:?}");

    // Exact: the SPEC reference of the input, as if nothing had happened.
    check_against_reference(&input, &lake);
}

#[test]
fn an_s3_lake_that_never_answers_fails_the_start_within_its_request_timeouts() {
    let Some(endpoint) = service("PINSTREAM_S3_ENDPOINT", "s3") else {
        return;
    };
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), 10, 1, 10);
    let lake = format!("{}/lake", s3_bucket("never-answers"));
    let proxy = Proxy::start(&endpoint);
    // Connections are taken and never answered: only the 30 s request timeout ends a
    // request. The lake has not answered once, so nothing is waited out: the run fails.
    proxy.hang();
    let started = Instant::now();
    let output = pinstream()
        .env("AWS_ENDPOINT_URL_S3", proxy.url())
        .args(["run", "--from"])
        .arg(format!("file:{}", input.path().display()))
        .args(["--lake", &lake, "--until-done"])
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{log}");
    // Opening a table is two requests in turn (the checkpoint hint, then the log listing),
    // each failing after its 30 s: about a minute, never the ten the hang took.
    assert!(
        elapsed < Duration::from_secs(100),
        "failed after {elapsed:?}:\n{log}"
    );
    let last = log.lines().last().unwrap_or_default();
    assert!(last.starts_with("pinstream: table "), "{last}\n{log}");
    assert_eq!(lines_with(&log, "pinstream: "), 1, "{log}");
    eprintln!("failed after {elapsed:?}: {last}");
}

#[test]
fn kinesis_endpoint_unreachable_mid_run_is_retried_and_the_tables_are_exact() {
    let Some(endpoint) = crate::kinesis::endpoint() else {
        return;
    };
    let _serial = kinesis_lock();
    let prefix = unique_name("outage");
    let _cleanup = Cleanup(prefix.clone());
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    emulate(&files, 900, 23, 700);
    emulate_kinesis(&prefix, 900, 23, 700);
    let file_lake = work.path().join("file-lake");
    assert_success(&replay(&files, &file_lake, &["--workers", "2"]));

    let proxy = Proxy::start(&endpoint);
    let lake = work.path().join("kinesis-lake");
    let port = free_port();
    let log = work.path().join("run.log");
    let mut run = pinstream()
        .env("AWS_ENDPOINT_URL_KINESIS", proxy.url())
        .args(["run", "--from", &url(&prefix), "--workers", "2", "--lake"])
        .arg(&lake)
        .args(["--until-done", "--batch-records", "150"])
        .args(["--http", &format!("127.0.0.1:{port}")])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for("the first records", 120, || {
        kinesis_records_read(port).is_some_and(|n| n > 0)
    });
    // 10 s of calls that hang (each has a 5 s timeout), then 10 s of reset connections:
    // the shards back off (up to 5 s) and retry; none of it ends the run.
    let cut = Instant::now();
    proxy.hang();
    std::thread::sleep(Duration::from_secs(10));
    proxy.refuse();
    std::thread::sleep(Duration::from_secs(10));
    assert!(
        run.try_wait().unwrap().is_none(),
        "the run ended during the outage"
    );
    let retries = metric(port, "pinstream_source_retries_total{kind=\"kinesis\"}");
    proxy.forward();
    let status = run.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "the run failed ({status}):\n{log}");
    assert!(
        retries.is_some_and(|n| n > 0.0),
        "no retries counted: {retries:?}"
    );
    eprintln!("outage {:?}, retries {retries:?}", cut.elapsed());
    assert_same_tables(&file_lake, &lake);
}

/// A tmpfs of `size` mounted at `at` while alive (unmounted when dropped).
struct Mount(std::path::PathBuf);

impl Mount {
    /// `None` (said loudly; a failure under CI=true) when this machine cannot mount.
    fn tmpfs(at: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output();
        match output {
            Ok(output) if output.status.success() => Some(Mount(at.to_owned())),
            other => {
                let why = match other {
                    Ok(output) => String::from_utf8_lossy(&output.stderr).into_owned(),
                    Err(error) => error.to_string(),
                };
                let message = format!(
                    "SKIPPED: cannot mount a {size} tmpfs for the full-disk test (needs root or \
                     CAP_SYS_ADMIN): {}",
                    why.trim()
                );
                assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
                eprintln!("{message}");
                None
            }
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_local_disk_fails_the_run_in_one_line_and_a_restart_after_freeing_space_loses_nothing() {
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("input");
    emulate(&input, 20_000, 29, 15_000);
    write_edge_cases(&input);
    let Some(_mount) = Mount::tmpfs(&work.path().join("disk"), "8m") else {
        return;
    };
    let lake = work.path().join("disk/lake");
    // Leave about 1.5 MiB free: the tables outgrow it within a few batches.
    let filler = work.path().join("disk/filler");
    std::fs::write(&filler, vec![0u8; (8 << 20) - (3 << 19)]).unwrap();
    let run = |extra: &[&str]| {
        pinstream()
            .args(["run", "--from"])
            .arg(format!("file:{}", input.display()))
            .arg("--lake")
            .arg(&lake)
            .args(["--until-done", "--batch-records", "2000"])
            .args(extra)
            .stdout(Stdio::null())
            .output()
            .unwrap()
    };
    let full = run(&[]);
    let log = String::from_utf8_lossy(&full.stderr);
    assert_eq!(full.status.code(), Some(1), "{log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("pinstream: ") && last.contains("No space left on device"),
        "the last line should say the disk is full: {last}\n{log}"
    );
    assert_eq!(
        lines_with(&log, "No space left on device"),
        1,
        "one line says it:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    // No half-written table: every Delta log still reads.
    let read = python_command()
        .arg("-c")
        .arg(
            "import sys; sys.path.insert(0, sys.argv[1]); from spec_reference import read_tables; \
             read_tables(sys.argv[2])",
        )
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference"))
        .arg(&lake)
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "the tables do not read after the failure:\n{}",
        String::from_utf8_lossy(&read.stderr)
    );

    // Space freed: the restart resumes from the tables and loses nothing.
    std::fs::remove_file(&filler).unwrap();
    assert_success(&run(&[]));
    check_against_reference(&input, &lake);
}
