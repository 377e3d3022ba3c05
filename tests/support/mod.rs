//! Shared helpers: the binary, the Python reader, fixtures.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub mod broker;
pub mod proxy;

pub fn pinstream() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pinstream"));
    command.env("PINSTREAM_LOG", pinstream::config::DEFAULT_LOG);
    // Tests run in parallel: each run's HTTP server takes any free port, not 8080.
    command.env("PINSTREAM_HTTP", "127.0.0.1:0");
    s3_env(&mut command);
    command
}

/// A local server's address from `var` (exported by `scripts/services.sh env`), or `None`
/// and a loud SKIPPED line when it is unset and the tests using `service` should skip.
pub fn service(var: &str, service: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            eprintln!(
                "SKIPPED: {var} is not set; start the {service} server with \
                 `scripts/services.sh start {service} && eval \"$(scripts/services.sh env)\"` \
                 (scripts/test.sh does)"
            );
            None
        }
    }
}

/// A name no other test (or earlier run against the same long-lived server) uses: for
/// topics, streams and buckets.
pub fn unique_name(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("t{}-{nanos}-{name}", std::process::id())
}

/// The Python interpreter of [`python`], pointed at the test S3 server.
pub fn python_command() -> Command {
    let mut command = Command::new(python());
    s3_env(&mut command);
    command
}

/// The S3 server for `s3://` lakes (moto, started by `scripts/services.sh start s3`;
/// scripts/test.sh starts it and exports PINSTREAM_S3_ENDPOINT), or `None` when unset.
pub fn s3_endpoint() -> Option<String> {
    std::env::var("PINSTREAM_S3_ENDPOINT")
        .ok()
        .filter(|endpoint| !endpoint.is_empty())
}

/// Points a child (pinstream or the Python readers) at the test S3 server with the standard
/// AWS variables, keeping any the environment already sets.
pub fn s3_env(command: &mut Command) {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    command.env("AWS_ENDPOINT_URL_S3", &endpoint);
    command.env("AWS_ALLOW_HTTP", "true");
    for (key, default) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        if std::env::var_os(key).is_none() {
            command.env(key, default);
        }
    }
}

/// Each request the tests make to the S3 server themselves: ureq has no timeout unless told,
/// and one answer that never came held a whole test (and every test waiting for its turn).
const S3_TEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A fresh bucket on the test S3 server, named after `name` and unique per run; its
/// `s3://` URL.
pub fn s3_bucket(name: &str) -> String {
    let endpoint = s3_endpoint().expect("PINSTREAM_S3_ENDPOINT is set");
    let bucket = unique_name(name).to_ascii_lowercase().replace('_', "-");
    let bucket: String = bucket.chars().take(63).collect();
    // moto takes an unsigned CreateBucket.
    ureq::put(&format!("{endpoint}/{bucket}"))
        .config()
        .timeout_global(Some(S3_TEST_TIMEOUT))
        .build()
        .send_empty()
        .unwrap_or_else(|e| panic!("creating bucket {bucket} at {endpoint}: {e}"));
    format!("s3://{bucket}")
}

/// The test S3 server's endpoint when the S3 tests should run; otherwise prints why they
/// skip. The S3 tests no longer take turns: every S3 request of the engine has a timeout and
/// a bounded retry, and a lake that answers slowly under load is waited out (src/sink/store.rs).
pub fn s3_available() -> Option<String> {
    service("PINSTREAM_S3_ENDPOINT", "s3")
}

/// The object at `s3://bucket/key` on the test S3 server, as text. moto lists buckets for
/// anyone but serves objects only to a request that carries credentials; it does not check
/// the signature, so a well-formed header with the test key will do.
pub fn s3_get(url: &str) -> String {
    let endpoint = s3_endpoint().expect("PINSTREAM_S3_ENDPOINT is set");
    let path = url.strip_prefix("s3://").expect("an s3:// URL");
    ureq::get(&format!("{endpoint}/{path}"))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
        )
        .header("x-amz-date", "20260101T000000Z")
        .config()
        .timeout_global(Some(S3_TEST_TIMEOUT))
        .build()
        .call()
        .unwrap_or_else(|e| panic!("reading {url}: {e}"))
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// Object keys under `s3://bucket/prefix` on the test S3 server (moto takes unsigned reads).
pub fn s3_keys(url: &str) -> Vec<String> {
    let endpoint = s3_endpoint().expect("PINSTREAM_S3_ENDPOINT is set");
    let rest = url.strip_prefix("s3://").expect("an s3:// URL");
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request = ureq::get(&format!("{endpoint}/{bucket}"))
            .config()
            .timeout_global(Some(S3_TEST_TIMEOUT))
            .build()
            .query("list-type", "2")
            .query("prefix", prefix);
        if let Some(token) = &token {
            request = request.query("continuation-token", token);
        }
        let body = request
            .call()
            .unwrap_or_else(|e| panic!("listing {url}: {e}"))
            .body_mut()
            .read_to_string()
            .unwrap();
        let tag = |text: &str, name: &str| -> Vec<String> {
            text.split(&format!("<{name}>"))
                .skip(1)
                .filter_map(|part| part.split_once(&format!("</{name}>")))
                .map(|(value, _)| value.to_owned())
                .collect()
        };
        keys.extend(tag(&body, "Key"));
        token = tag(&body, "NextContinuationToken").into_iter().next();
        if token.is_none() {
            return keys;
        }
    }
}

/// The real sample, when `../shared` is beside the repository.
pub fn sample_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/pinterest-sample");
    dir.join("pin.jsonl").exists().then_some(dir)
}

/// The Python interpreter with `deltalake` and `polars` (installed once).
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/python-env.sh");
        let output = Command::new("bash")
            .arg(script)
            .output()
            .expect("runs python-env.sh");
        assert!(
            output.status.success(),
            "python-env.sh failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}

/// tests/reference/spec_reference.py: the tests' one SPEC reference (clean rows, §3 analytics,
/// table reader), independent of the engine's code.
pub fn spec_reference() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/spec_reference.py")
}

/// Runs a Python `script` (with `tests/reference` as its first argument, so it can import
/// `spec_reference`, and `lake` as its second) and parses the JSON it prints.
pub fn python_json(script: &str, lake: impl AsRef<OsStr>) -> serde_json::Value {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference");
    let output = python_command()
        .arg("-c")
        .arg(script)
        .arg(reference)
        .arg(lake)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Checks the tables under `lake` against the SPEC reference computed from `input`; returns
/// the summary (row counts per table).
pub fn check_against_reference(input: &Path, lake: impl AsRef<OsStr>) -> serde_json::Value {
    let mut command = python_command();
    let output = command
        .arg(spec_reference())
        .arg(input)
        .arg(lake)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tables differ from the reference:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    report["summary"].clone()
}

pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "pinstream failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `pinstream emulate --to file:<dir>`.
pub fn emulate(dir: &Path, events: u64, seed: u64, universe: u64) {
    let output = pinstream()
        .args(["emulate", "--to"])
        .arg(format!("file:{}", dir.display()))
        .args(["--events", &events.to_string(), "--seed", &seed.to_string()])
        .args(["--universe", &universe.to_string()])
        .output()
        .unwrap();
    assert_success(&output);
}

/// `pinstream run --from file:<input> --lake <lake> --until-done` plus `extra` flags.
pub fn replay(input: &Path, lake: impl AsRef<OsStr>, extra: &[&str]) -> Output {
    run_until_done(&format!("file:{}", input.display()), lake, extra)
}

/// `pinstream run --from <source> --lake <lake> --until-done` plus `extra`, to its end.
pub fn run_until_done(source: &str, lake: impl AsRef<OsStr>, extra: &[&str]) -> Output {
    pinstream()
        .args(["run", "--from", source, "--lake"])
        .arg(lake)
        .arg("--until-done")
        .args(extra)
        .output()
        .unwrap()
}

/// The JSON a run wrote with `--summary <path>`.
pub fn run_summary(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Commit files in a table's log (a local lake or an `s3://` one on the test server).
pub fn commits(lake: impl AsRef<OsStr>, table: &str) -> usize {
    let lake = lake.as_ref();
    if let Some(url) = lake.to_str().filter(|l| l.starts_with("s3://")) {
        let log = format!("{}/{table}/_delta_log/", url.trim_end_matches('/'));
        return s3_keys(&log)
            .iter()
            .filter(|key| {
                let name = key.rsplit('/').next().unwrap_or_default();
                name.ends_with(".json") && name.len() == 25
            })
            .count();
    }
    std::fs::read_dir(Path::new(lake).join(table).join("_delta_log"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.ends_with(".json") && name.len() == 25
                })
                .count()
        })
        .unwrap_or(0)
}

/// What the file source logs (at debug) when it resumes a file at the byte offset stored with
/// its position instead of counting its lines.
pub const FILE_SEEKED: &str = "file resumed at the byte offset stored with its position";

/// `pinstream run --from <source> --lake <lake> --until-done --workers 2` plus `extra`, with
/// the file source's debug log: its stderr, once it succeeded.
pub fn run_logging_files(source: &str, lake: &Path, extra: &[&str]) -> String {
    let output = pinstream()
        .args(["run", "--from", source, "--lake"])
        .arg(lake)
        .args(["--until-done", "--workers", "2"])
        .args(extra)
        .env("PINSTREAM_LOG", "warn,pinstream::connectors::file=debug")
        .output()
        .unwrap();
    assert_success(&output);
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A valid `user` message of `ind` (one line, with its newline).
pub fn user_line(ind: usize) -> String {
    format!(
        "{{\"ind\": {ind}, \"first_name\": \"Ada\", \"last_name\": \"Byron\", \"age\": {}, \"date_joined\": \"2016-01-20 22:10:50\"}}\n",
        18 + ind % 60
    )
}

/// The lines of a long `user` file: distinct valid messages, and one that does not parse at
/// every `bad_every`-th line (0: none).
pub fn long_user_file(lines: usize, bad_every: usize) -> String {
    (0..lines)
        .map(|ind| {
            if bad_every > 0 && ind % bad_every == bad_every - 1 {
                format!("not json {ind}\n")
            } else {
                user_line(ind)
            }
        })
        .collect()
}

/// Hand-made messages covering every kind of bad input and the lenient forms, as files of
/// the three streams (plus a file with no stream token, which is not read).
pub fn write_edge_cases(dir: &Path) {
    let uuid = "55abcd28-bda1-4453-bbcd-1427fb3aa49b";
    let pin = |index: &str, unique_id: &str, followers: &str| {
        format!(
            r#"{{"index": {index}, "unique_id": "{unique_id}", "title": "No Title Data Available", "description": "No description available Story format", "poster_name": "User Info Error", "follower_count": {followers}, "tag_list": "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e", "is_image_or_video": "image", "image_src": "Image src error.", "downloaded": 1, "save_location": "Local save in /data/art", "category": "art"}}"#
        )
    };
    let pins = [
        pin("900001", uuid, r#""12k""#),
        pin(r#""900002""#, uuid, r#""3M""#),
        pin("900003", uuid, "4500"),
        pin("900004", uuid, r#""User Info Error""#),
        pin("900005", "not-a-uuid", r#""1""#),
        pin("900006", uuid, r#""99999999999999999999""#),
        pin("900007", uuid, r#""1.5k""#),
        pin(r#""seven""#, uuid, r#""1""#),
        pin("900009", uuid, "null"),
        r#"{"index": 900010, "unique_id": "x"}"#.to_string(),
        "[1, 2, 3]".to_string(),
        "{not json".to_string(),
        String::new(),
        pin("900001", uuid, r#""12k""#),
    ];
    let geo = |ind: &str, timestamp: &str, latitude: &str, longitude: &str| {
        format!(
            r#"{{"ind": {ind}, "timestamp": {timestamp}, "latitude": {latitude}, "longitude": {longitude}, "country": "Anguilla"}}"#
        )
    };
    let geos = [
        geo("900001", r#""2020-01-02 03:04:05""#, "-88.8298", "-170.188"),
        geo(
            "900002",
            r#""2020-01-02T03:04:05.123456Z""#,
            r#""45.5""#,
            "90",
        ),
        geo("900003", r#""2020-01-02T05:04:05+02:00""#, "90", "180"),
        geo("900004", r#""2020-01-02T03:04:05.5""#, "-90", "-180"),
        geo("900005", r#""2020-13-02 03:04:05""#, "0", "0"),
        geo("900006", r#""yesterday""#, "0", "0"),
        geo("900007", r#""2020-01-02 03:04:05""#, "90.5", "0"),
        geo("900008", r#""2020-01-02 03:04:05""#, "0", "-180.01"),
        geo("900009", "null", "0", "0"),
        geo("900010", r#""2020-01-02 03:04:05""#, "null", "0"),
    ];
    let user = |ind: &str, first: &str, age: &str| {
        format!(
            r#"{{"ind": {ind}, "first_name": {first}, "last_name": "Acosta", "age": {age}, "date_joined": "2015-10-21 21:26:45"}}"#
        )
    };
    let users = [
        user("900001", r#""Adam""#, "20"),
        user("900002", r#""Eve""#, r#""42""#),
        user("900003", r#""Old""#, "150"),
        user("900004", r#""Zero""#, "0"),
        user("900005", r#""Too""#, "151"),
        user("900006", r#""Neg""#, "-1"),
        user("900007", "null", "30"),
        user("900008", r#""User Info Error""#, "30"),
        user("900009", r#""Frac""#, "30.5"),
        user("900010", r#""Whole""#, "30.0"),
    ];
    let folder = dir.join("edge");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("pin.jsonl"), pins.join("\n") + "\n").unwrap();
    std::fs::write(folder.join("geo.jsonl"), geos.join("\n")).unwrap();
    let mut user_bytes = (users.join("\r\n") + "\r\n").into_bytes();
    user_bytes.extend_from_slice(b"{\"ind\": 900011, \"first_name\": \"\xff\xfe\"}\n");
    std::fs::write(folder.join("user.jsonl"), user_bytes).unwrap();
    std::fs::write(folder.join("notes.txt"), "not a stream\n").unwrap();
}

/// A port free on 127.0.0.1 right now, below the kernel's ephemeral range (32768 and up by
/// default), and never handed out twice by one test binary.
///
/// A port the kernel picks (binding port 0) is an ephemeral one, which any outgoing
/// connection of a test running at the same time may take before the process it is meant
/// for binds it. A cluster test keeps its hosts file over a kill and a restart, a window of
/// seconds: once in a CI run the restart found its port taken ("Address already in use").
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    const PORTS: std::ops::Range<u16> = 20_000..32_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let span = PORTS.end - PORTS.start;
    // Test binaries that run one after another start at different places.
    let offset = (std::process::id() % u32::from(span)) as u16;
    for _ in 0..span {
        let port = PORTS.start + (offset + NEXT.fetch_add(1, Ordering::Relaxed) % span) % span;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {PORTS:?} on 127.0.0.1");
}

/// Checks the aggregate tables under `lake` (and the HTTP API at `api`, if given) against
/// the SPEC §3 reference computed from `input`; returns the report.
pub fn check_aggregates(
    input: &Path,
    lake: impl AsRef<OsStr>,
    api: Option<&str>,
) -> serde_json::Value {
    let mut command = python_command();
    command
        .arg(spec_reference())
        .arg("--aggregates")
        .arg(input)
        .arg(lake);
    if let Some(api) = api {
        command.arg("--api").arg(api);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "aggregates differ from the reference:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap()
}

/// The SPEC §3 aggregates the reference computes from the input files under `input`
/// (`spec_reference.py --expected`): `{name: [[value, ...], ...]}`, strings or null, longs as
/// JSON integers, doubles as JSON floats. With `all_seen_in_window`, `trending_categories`
/// too, for a run in which every distinct pin row arrived within the trending window.
pub fn reference_aggregates(
    input: &Path,
    all_seen_in_window: bool,
) -> serde_json::Map<String, serde_json::Value> {
    let mut command = python_command();
    command.arg(spec_reference()).arg("--expected").arg(input);
    if all_seen_in_window {
        command.arg("--all-seen-in-window");
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "the reference failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// GET `path` from the server at 127.0.0.1:`port` (HTTP/1.1, no keep-alive); the body.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // Join the chunks.
        let mut rest = body;
        let mut joined = String::new();
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            joined.push_str(tail.get(..size)?);
            rest = tail.get(size + 2..)?;
        }
        return Some(joined);
    }
    Some(body.to_owned())
}

/// Runs `pinstream run --from <source> --lake <lake> --until-done` (2 workers, small batches)
/// and SIGKILLs it once the `pin` table has `commits_before_kill` commits. False when the run
/// finished first.
pub fn run_and_kill(source: &str, lake: impl AsRef<OsStr>, commits_before_kill: usize) -> bool {
    let lake = lake.as_ref();
    run_and_kill_when(source, lake, || commits(lake, "pin") >= commits_before_kill)
}

/// [`run_and_kill`], killing as soon as `ready` says so.
pub fn run_and_kill_when(source: &str, lake: impl AsRef<OsStr>, ready: impl Fn() -> bool) -> bool {
    let lake = lake.as_ref();
    use std::time::{Duration, Instant};
    let mut child = pinstream()
        .args(["run", "--from", source, "--lake"])
        .arg(lake)
        .args(["--until-done", "--workers", "2", "--batch-records", "1500"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "run failed before the kill: {status}");
            return false;
        }
        if ready() || started.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `method path` with a JSON `body` to 127.0.0.1:`port`; the status code and body, or
/// `None` when no answer came (connection refused, reset or closed).
pub fn http_send(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(90)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/vnd.kafka.json.v2+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Some((status, body))
}

/// Reads both lakes with Python `deltalake`: the clean tables must hold the same rows (as
/// multisets), the quarantine tables the same number of rows per stream, each source
/// position once. Returns the row counts.
pub fn assert_same_tables(
    expected: impl AsRef<OsStr>,
    got: impl AsRef<OsStr>,
) -> serde_json::Value {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference");
    let script = r#"
import json, os, sys
from collections import Counter
sys.path.insert(0, sys.argv[1])
from spec_reference import read_tables
expected, problems_a = read_tables(sys.argv[2])
got, problems_b = read_tables(sys.argv[3])
problems = problems_a + problems_b
counts = {}
for name in ("pin", "geo", "user"):
    a, b = Counter(expected[name]), Counter(got[name])
    counts[name] = len(got[name])
    if a != b:
        problems.append(f"{name}: {sum((a - b).values())} rows missing, {sum((b - a).values())} extra")
a = Counter(stream for stream, _ in expected["quarantine"])
b = Counter(stream for stream, _ in got["quarantine"])
counts["quarantine"] = len(got["quarantine"])
if a != b:
    problems.append(f"quarantine per stream: expected {dict(a)}, got {dict(b)}")
sources = Counter(source for _, source in got["quarantine"])
if any(n > 1 for n in sources.values()):
    problems.append("quarantine: a message held more than once")
print(json.dumps({"counts": counts, "problems": problems}), flush=True)
os._exit(1 if problems else 0)
"#;
    let mut command = python_command();
    let output = command
        .arg("-c")
        .arg(script)
        .arg(reference)
        .arg(expected)
        .arg(got)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tables differ:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    report["counts"].clone()
}

/// Held by the tests that use kinesis-mock, one at a time: the mock is one single-threaded
/// node process, and several heavy tests at once on a loaded machine starve it.
pub fn kinesis_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
