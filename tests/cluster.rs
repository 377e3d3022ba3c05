//! One job over several processes (a timely cluster on 127.0.0.1): the tables and the
//! aggregates are those of one process on the same input, whatever the process and worker
//! counts; a lost process stops the others within seconds, and the restarted cluster resumes
//! exactly; HTTP ingest answers on every process.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// The processes of one cluster run, each with its log and HTTP port.
struct ClusterRun {
    children: Vec<Child>,
    logs: Vec<PathBuf>,
    http: Vec<u16>,
}

/// A hosts file with `processes` free loopback ports, in `dir`.
fn hosts_file(dir: &Path, processes: usize) -> PathBuf {
    let hosts: Vec<String> = (0..processes)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let path = dir.join("hosts");
    std::fs::write(&path, hosts.join("\n") + "\n").unwrap();
    path
}

impl ClusterRun {
    /// Starts `pinstream run <args> --hosts <hosts> --process i --workers <workers>` for every
    /// process of the hosts file, the last first (they may start in any order).
    fn start(hosts: &Path, workers: usize, args: &[&str], logs: &Path) -> ClusterRun {
        let processes = std::fs::read_to_string(hosts).unwrap().lines().count();
        let mut run = ClusterRun {
            children: Vec::new(),
            logs: Vec::new(),
            http: Vec::new(),
        };
        for process in (0..processes).rev() {
            let log = logs.join(format!("process-{process}.log"));
            let port = free_port();
            let child = pinstream()
                .arg("run")
                .args(args)
                .arg("--hosts")
                .arg(hosts)
                .args(["--process", &process.to_string()])
                .args(["--workers", &workers.to_string()])
                .args(["--http", &format!("127.0.0.1:{port}")])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            run.children.insert(0, child);
            run.logs.insert(0, log);
            run.http.insert(0, port);
        }
        run
    }

    /// Waits for every process to exit (at most `limit`, then kills them and fails).
    fn wait(&mut self, limit: Duration) -> Vec<ExitStatus> {
        let started = Instant::now();
        let mut statuses = vec![None; self.children.len()];
        while statuses.iter().any(Option::is_none) {
            for (child, status) in self.children.iter_mut().zip(&mut statuses) {
                if status.is_none() {
                    *status = child.try_wait().unwrap();
                }
            }
            if started.elapsed() > limit {
                for child in &mut self.children {
                    let _ = child.kill();
                }
                panic!(
                    "the cluster did not end within {limit:?}:\n{}",
                    self.log_tails()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        statuses.into_iter().map(Option::unwrap).collect()
    }

    /// Waits for every process and requires each to succeed.
    fn wait_success(&mut self, limit: Duration) {
        let statuses = self.wait(limit);
        assert!(
            statuses.iter().all(ExitStatus::success),
            "a process failed ({statuses:?}):\n{}",
            self.log_tails()
        );
    }

    fn log(&self, process: usize) -> String {
        std::fs::read_to_string(&self.logs[process]).unwrap_or_default()
    }

    fn log_tails(&self) -> String {
        (0..self.logs.len())
            .map(|p| {
                let log = self.log(p);
                let tail: Vec<&str> = log.lines().rev().take(8).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- process {p}:\n{}", tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for ClusterRun {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `processes × workers` processes of `run --from <source> --lake <lake> --until-done`, to
/// their end.
pub fn run_cluster(source: &str, lake: &Path, processes: usize, workers: usize, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let hosts = hosts_file(dir.path(), processes);
    let lake = lake.to_str().unwrap();
    let mut args = vec!["--from", source, "--lake", lake, "--until-done"];
    args.extend(extra);
    ClusterRun::start(&hosts, workers, &args, dir.path()).wait_success(Duration::from_secs(240));
}

#[test]
fn three_processes_from_files_give_the_reference_tables_and_aggregates_as_one_process_does() {
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), 4_000, 42, 1_500);
    write_edge_cases(input.path());
    let source = format!("file:{}", input.path().display());

    let cluster = tempfile::tempdir().unwrap();
    run_cluster(&source, cluster.path(), 3, 1, &[]);
    check_against_reference(input.path(), cluster.path());
    check_aggregates(input.path(), cluster.path(), None);

    let single = tempfile::tempdir().unwrap();
    assert_success(&replay(input.path(), single.path(), &["--workers", "2"]));
    let counts = assert_same_tables(single.path(), cluster.path());
    assert!(counts["pin"].as_u64().unwrap() > 1_000, "{counts}");

    // 2 processes × 2 workers: the same tables again.
    let wide = tempfile::tempdir().unwrap();
    run_cluster(&source, wide.path(), 2, 2, &[]);
    check_against_reference(input.path(), wide.path());
    assert_same_tables(single.path(), wide.path());
    check_aggregates(input.path(), wide.path(), None);
}

#[test]
fn three_processes_from_the_emulator_give_the_tables_of_its_events_as_files() {
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), 3_000, 9, 1_000);
    let files = tempfile::tempdir().unwrap();
    assert_success(&replay(input.path(), files.path(), &[]));

    let lake = tempfile::tempdir().unwrap();
    run_cluster(
        "emulator:events=3000,seed=9,universe=1000,partitions=6",
        lake.path(),
        3,
        1,
        &[],
    );
    assert_same_tables(files.path(), lake.path());
    check_aggregates(input.path(), lake.path(), None);
}

#[test]
fn a_batch_filled_on_one_process_closes_at_once_on_every_process() {
    // 3 partitions: process 0 reads 2 of them (600 records/s) and fills a batch every ~4 s,
    // process 1 reads one and would fill its own every ~8 s. Process 1 must hear of each
    // close at once, or it stays in the closed batch, holding back its commit and process 0's
    // records in the aggregates (100 ms ticks: see tests/batching.rs). (A process with no
    // partition would not do: it stops at once with `--until-done`, holding nothing back.)
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), 4_800, 5, 1_000);
    let dir = tempfile::tempdir().unwrap();
    let lake = tempfile::tempdir().unwrap();
    let hosts = hosts_file(dir.path(), 2);
    let source = "emulator:events=4800,seed=5,universe=1000,rate=300,partitions=3";
    let args = [
        "--from",
        source,
        "--lake",
        lake.path().to_str().unwrap(),
        "--until-done",
        "--batch-interval",
        "20s",
        "--batch-records",
        "2400",
        "--tick",
        "100ms",
    ];
    let started = Instant::now();
    let mut run = ClusterRun::start(&hosts, 1, &args, dir.path());
    // The table's creation and 3 batches in its log, and when; the job's freshness as process
    // 0 (the publisher) last served it.
    let (mut three_batches, mut stats) = (None, serde_json::Value::Null);
    while run
        .children
        .iter_mut()
        .any(|child| child.try_wait().unwrap().is_none())
    {
        if three_batches.is_none() && commits(lake.path(), "pin") >= 4 {
            three_batches = Some(started.elapsed());
        }
        if let Some(served) = http_get(run.http[0], "/api/v1/stats") {
            stats = serde_json::from_str(&served).unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    run.wait_success(Duration::from_secs(10));
    eprintln!("3 batches committed after {three_batches:?}; stats: {stats}");
    let three_batches = three_batches.expect("3 batches committed while the run went on");
    assert!(three_batches < Duration::from_secs(20), "{three_batches:?}");
    let p99 = stats["freshness_ms"]["p99"]
        .as_f64()
        .expect("freshness sampled");
    assert!(p99 < 2_000.0, "freshness p99 {p99} ms: {stats}");
    let files = tempfile::tempdir().unwrap();
    assert_success(&replay(input.path(), files.path(), &[]));
    assert_same_tables(files.path(), lake.path());
}

#[test]
fn three_processes_from_kafka_with_resends_on_any_partition_give_the_reference() {
    let Some(broker) = service("PINSTREAM_KAFKA", "kafka") else {
        return;
    };
    let prefix = unique_name("cluster");
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), 6_000, 13, 2_000);
    // The same events to 4-partition topics with no key: a post's re-sends land anywhere.
    let output = pinstream()
        .args(["emulate", "--to", &format!("kafka://{broker}/{prefix}")])
        .args(["--events", "6000", "--seed", "13", "--universe", "2000"])
        .args(["--partitions", "4", "--key", "none"])
        .output()
        .unwrap();
    assert_success(&output);

    let lake = tempfile::tempdir().unwrap();
    run_cluster(
        &format!("kafka://{broker}/{prefix}?group_id={prefix}"),
        lake.path(),
        3,
        1,
        &[],
    );
    let files = tempfile::tempdir().unwrap();
    assert_success(&replay(input.path(), files.path(), &[]));
    assert_same_tables(files.path(), lake.path());
    check_aggregates(input.path(), lake.path(), None);
    // No consumer group coordinates a cluster, but the offsets still reach the group (for
    // lag tools), each partition's by the worker that reads it, after the tables hold them.
    assert_eq!(
        crate::kafka::group_offsets(&broker, &prefix, &prefix, 4),
        18_000
    );
}

/// A replay of emulated files by a cluster of 3 processes in small batches, for the tests
/// that interrupt it and start the cluster again.
struct InterruptedReplay {
    input: tempfile::TempDir,
    lake: tempfile::TempDir,
    dir: tempfile::TempDir,
    hosts: PathBuf,
    args: Vec<String>,
}

impl InterruptedReplay {
    fn new(events: u64, seed: u64, universe: u64, batch_records: usize) -> InterruptedReplay {
        let (input, lake, dir) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        emulate(input.path(), events, seed, universe);
        let hosts = hosts_file(dir.path(), 3);
        let args = vec![
            "--from".to_owned(),
            format!("file:{}", input.path().display()),
            "--lake".to_owned(),
            lake.path().display().to_string(),
            "--until-done".to_owned(),
            "--batch-records".to_owned(),
            batch_records.to_string(),
        ];
        InterruptedReplay {
            input,
            lake,
            dir,
            hosts,
            args,
        }
    }

    fn start(&self, logs: &Path) -> ClusterRun {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        ClusterRun::start(&self.hosts, 1, &args, logs)
    }

    /// Starts the cluster and returns once the `pin` table has `commits` commits.
    fn start_until_commits(&self, commits_wanted: usize) -> ClusterRun {
        let run = self.start(self.dir.path());
        let started = Instant::now();
        while commits(self.lake.path(), "pin") < commits_wanted {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "no commits:\n{}",
                run.log_tails()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        run
    }

    /// Starts the whole cluster again, to its end: the tables and aggregates are the
    /// reference's, as after an uninterrupted run.
    fn restart_and_check(&self) {
        let logs = tempfile::tempdir().unwrap();
        self.start(logs.path())
            .wait_success(Duration::from_secs(240));
        check_against_reference(self.input.path(), self.lake.path());
        check_aggregates(self.input.path(), self.lake.path(), None);
    }
}

#[test]
fn a_killed_process_stops_the_others_and_the_restarted_cluster_is_exact() {
    let replay = InterruptedReplay::new(30_000, 7, 20_000, 500);
    let mut run = replay.start_until_commits(3);
    run.children[1].kill().unwrap(); // SIGKILL
    let killed = Instant::now();
    let statuses = run.wait(Duration::from_secs(60));
    assert!(
        killed.elapsed() < Duration::from_secs(20),
        "the others took {:?} to stop",
        killed.elapsed()
    );
    for process in [0, 2] {
        assert!(!statuses[process].success(), "{}", run.log_tails());
        assert!(
            run.log(process).contains("lost process 1"),
            "process {process} did not name the lost peer:\n{}",
            run.log_tails()
        );
    }
    drop(run);
    // The whole cluster again: it resumes from the tables.
    replay.restart_and_check();
}

#[test]
fn processes_with_different_worker_counts_fail_with_one_line() {
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), 10, 1, 10);
    let dir = tempfile::tempdir().unwrap();
    let lake = tempfile::tempdir().unwrap();
    let hosts = hosts_file(dir.path(), 2);
    let source = format!("file:{}", input.path().display());
    let args = |workers: &str, process: &str| {
        pinstream()
            .args(["run", "--from", &source, "--lake"])
            .arg(lake.path())
            .args(["--until-done", "--hosts"])
            .arg(&hosts)
            .args(["--process", process, "--workers", workers])
            .args(["--join-timeout", "20s"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children = [args("2", "0"), args("1", "1")];
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(
            stderr.contains("process 1 runs 1 workers, process 0 runs 2"),
            "{stderr}"
        );
    }
}

#[test]
fn ingest_posted_to_a_non_zero_process_lands_once_and_a_signal_to_one_stops_all() {
    let dir = tempfile::tempdir().unwrap();
    let lake = tempfile::tempdir().unwrap();
    let hosts = hosts_file(dir.path(), 2);
    let args = [
        "--from",
        "http",
        "--lake",
        lake.path().to_str().unwrap(),
        "--batch-interval",
        "200ms",
    ];
    let mut run = ClusterRun::start(&hosts, 1, &args, dir.path());
    for port in &run.http {
        let started = Instant::now();
        while http_get(*port, "/healthz").is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no /healthz:\n{}",
                run.log_tails()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Pins to process 1; the 200 comes only after the cluster's commit holds them.
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), 40, 3, 1_000);
    let pins = std::fs::read_to_string(input.path().join("pin.jsonl")).unwrap();
    let records: Vec<String> = pins
        .lines()
        .map(|value| format!(r#"{{"value": {value}}}"#))
        .collect();
    let body = format!(r#"{{"records": [{}]}}"#, records.join(", "));
    let (status, answer) = http_send(run.http[1], "POST", "/topics/0a1b.pin", &body).unwrap();
    assert_eq!(status, 200, "{answer}");
    assert!(
        commits(lake.path(), "pin") >= 1,
        "acknowledged before any commit"
    );
    // Process 0 serves the job's totals, process 1's records included.
    let stats: serde_json::Value =
        serde_json::from_str(&http_get(run.http[0], "/api/v1/stats").unwrap()).unwrap();
    assert_eq!(stats["processes"], 2, "{stats}");
    assert!(stats["records_in"].as_u64().unwrap() >= 40, "{stats}");
    // A signal to process 1 alone stops the whole cluster, which commits and exits 0.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &run.children[1].id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    run.wait_success(Duration::from_secs(60));
    // Every pin once: the same rows as a file replay of the same messages.
    let only_pins = tempfile::tempdir().unwrap();
    std::fs::write(only_pins.path().join("pin.jsonl"), &pins).unwrap();
    let files = tempfile::tempdir().unwrap();
    assert_success(&replay(only_pins.path(), files.path(), &[]));
    let counts = assert_same_tables(files.path(), lake.path());
    assert!(counts["pin"].as_u64().unwrap() > 30, "{counts}");
}

/// Two network namespaces joined by a veth pair: two hosts with their own addresses, so the
/// cluster's traffic crosses a (virtual) network rather than loopback. Removed on drop.
struct TwoHosts {
    names: [String; 2],
    addresses: [String; 2],
}

impl TwoHosts {
    /// `None` (and a loud line) where namespaces cannot be made (not root, no `ip`).
    fn new() -> Option<TwoHosts> {
        let id = std::process::id() % 200 + 20;
        let names = [format!("ps{id}a"), format!("ps{id}b")];
        let addresses = [format!("10.213.{id}.1"), format!("10.213.{id}.2")];
        let hosts = TwoHosts { names, addresses };
        let [a, b] = &hosts.names;
        let ip = |args: &[&str]| {
            std::process::Command::new("ip")
                .args(args)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        if !ip(&["netns", "add", a]) {
            eprintln!("SKIPPED: cannot create network namespaces (needs root and iproute2)");
            return None;
        }
        let (veth_a, veth_b) = (format!("{a}v"), format!("{b}v"));
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", b],
            vec![
                "link", "add", &veth_a, "type", "veth", "peer", "name", &veth_b,
            ],
            vec!["link", "set", &veth_a, "netns", a],
            vec!["link", "set", &veth_b, "netns", b],
        ];
        for step in &steps {
            assert!(ip(step), "ip {}", step.join(" "));
        }
        for (name, (veth, address)) in hosts
            .names
            .iter()
            .zip([&veth_a, &veth_b].into_iter().zip(&hosts.addresses))
        {
            let cidr = format!("{address}/24");
            for step in [
                vec!["-n", name, "addr", "add", &cidr, "dev", veth],
                vec!["-n", name, "link", "set", veth, "up"],
                vec!["-n", name, "link", "set", "lo", "up"],
            ] {
                assert!(ip(&step), "ip {}", step.join(" "));
            }
        }
        Some(hosts)
    }
}

impl Drop for TwoHosts {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", name])
                .status();
        }
    }
}

#[test]
fn two_hosts_in_network_namespaces_run_one_job_over_a_virtual_network() {
    let Some(hosts) = TwoHosts::new() else {
        return;
    };
    let input = tempfile::tempdir().unwrap();
    emulate(input.path(), 3_000, 17, 1_000);
    write_edge_cases(input.path());
    let dir = tempfile::tempdir().unwrap();
    let lake = tempfile::tempdir().unwrap();
    let hosts_file = dir.path().join("hosts");
    std::fs::write(
        &hosts_file,
        format!("{}:2101\n{}:2101\n", hosts.addresses[0], hosts.addresses[1]),
    )
    .unwrap();
    let children: Vec<Child> = hosts
        .names
        .iter()
        .enumerate()
        .map(|(process, namespace)| {
            std::process::Command::new("ip")
                .args(["netns", "exec", namespace, env!("CARGO_BIN_EXE_pinstream")])
                .args(["run", "--from", &format!("file:{}", input.path().display())])
                .arg("--lake")
                .arg(lake.path())
                .args(["--until-done", "--workers", "2", "--hosts"])
                .arg(&hosts_file)
                .args(["--process", &process.to_string()])
                .args(["--http", "127.0.0.1:0"])
                .env("PINSTREAM_LOG", "warn,pinstream=info")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    check_against_reference(input.path(), lake.path());
    check_aggregates(input.path(), lake.path(), None);
}

#[test]
fn a_frozen_process_is_noticed_by_the_missing_heartbeats_and_the_cluster_restarts_exactly() {
    // SIGSTOP keeps the process's connections open, as a host cut off or frozen does: only
    // the missing heartbeats tell.
    let replay = InterruptedReplay::new(20_000, 8, 10_000, 300);
    let mut run = replay.start_until_commits(3);
    let frozen = run.children[1].id().to_string();
    let signal = |name: &str| {
        std::process::Command::new("kill")
            .args([name, &frozen])
            .status()
            .unwrap()
    };
    assert!(signal("-STOP").success());
    let stopped = Instant::now();
    // Process 0 misses process 1's heartbeats; process 2 then loses process 0.
    loop {
        let exited = [0, 2].map(|p| run.children[p].try_wait().unwrap());
        if exited.iter().all(Option::is_some) {
            for status in exited.into_iter().flatten() {
                assert!(!status.success(), "{}", run.log_tails());
            }
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(40),
            "the others did not notice the frozen process:\n{}",
            run.log_tails()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        run.log(0).contains("lost process 1") && run.log(0).contains("no heartbeat"),
        "{}",
        run.log_tails()
    );
    signal("-KILL");
    drop(run);
    replay.restart_and_check();
}
