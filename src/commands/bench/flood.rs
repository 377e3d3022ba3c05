//! `pinstream bench --flood`: many clients posting HTTP ingest bodies above the engine's
//! capacity, against a real `pinstream run --from http` child.
//!
//! Every connection is its own HTTP/1.1 client (hyper, keep-alive) sending one body after
//! another: REST-proxy batches (`POST /topics/..`), API-Gateway single records and batches
//! (`PUT /streams/../record(s)`), each holding distinct clean messages of the emulator's
//! posts (body `b` carries stream `b % 3` of posts `(b / 3) * k ..`, so no message is sent
//! in two bodies). A refusal with `Retry-After` is honoured and the same body sent again.
//!
//! After the flood the child is stopped (SIGTERM: it commits what it holds) and its tables
//! read back: every acknowledged message must be there exactly once, and none whose every
//! attempt was refused. An attempt whose outcome the client cannot know (504, a connection
//! lost after sending) may be there at most once.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use super::{Error, io};
use crate::emulator::{Emulator, Parameters};
use crate::sink::Lake;
use crate::sink::schema::Codec;
use crate::stream::Stream;
use crate::table::TableRow;

/// What to run.
#[derive(Clone, Debug)]
pub struct FloodSettings {
    /// Concurrent client connections.
    pub connections: usize,
    /// How long the clients send new bodies (a body refused at the end is not sent again).
    pub duration: Duration,
    /// Messages per batch body (single-record bodies carry one).
    pub records_per_request: usize,
    /// The child's `--from`: `http` or `http:<limits>`.
    pub source: String,
    /// The child's `--batch-interval`.
    pub batch_interval: String,
    /// The child's `--workers`.
    pub workers: usize,
    /// Extra connections sending bodies of [`OVERSIZED_BYTES`], over any sane
    /// `max_body_bytes`: half declare their length, half stream chunks without one. Each must
    /// get 413 without the engine buffering it.
    pub oversized: usize,
    /// Where the child writes its tables (made anew).
    pub lake: PathBuf,
}

/// What the flood measured, and what the tables hold of it.
#[derive(Debug, Default)]
pub struct FloodReport {
    pub seconds: f64,
    /// Requests answered 2xx, and their messages.
    pub requests_acknowledged: u64,
    pub records_acknowledged: u64,
    /// Non-2xx answers by status.
    pub refusals: BTreeMap<u16, u64>,
    /// Non-2xx answers without a `Retry-After` header (by status).
    pub refusals_without_retry_after: BTreeMap<u16, u64>,
    /// Answers to the oversized bodies, by status (0: the connection closed unanswered).
    pub oversized_answers: BTreeMap<u16, u64>,
    /// Connections lost after a request was sent (its outcome unknown), and failed connects.
    pub transport_errors: u64,
    pub connect_errors: u64,
    /// Time from sending an attempt to its 2xx, over acknowledged attempts (milliseconds).
    pub ack_latency_ms: Quantiles,
    /// The child's resident memory once started, and its peak (VmHWM) at the end.
    pub rss_before_bytes: u64,
    pub peak_rss_bytes: u64,
    /// Messages whose every attempt was refused (never stored, the check says).
    pub records_refused: u64,
    /// Messages with an attempt of unknown outcome and none acknowledged.
    pub records_unknown: u64,
    /// The check against the tables: acknowledged messages missing, or present more than
    /// once; refused ones present; rows no body sent (all must be 0).
    pub missing: u64,
    pub duplicated: u64,
    pub refused_but_stored: u64,
    pub unknown_stored_twice: u64,
    pub unexpected_rows: u64,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Quantiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl FloodReport {
    /// Everything the check found wrong, in words (empty: the tables are exact).
    pub fn problems(&self) -> Vec<String> {
        [
            (
                self.missing,
                "acknowledged messages missing from the tables",
            ),
            (
                self.duplicated,
                "acknowledged messages stored more than once",
            ),
            (self.refused_but_stored, "refused messages stored"),
            (
                self.unknown_stored_twice,
                "unanswered messages stored twice",
            ),
            (self.unexpected_rows, "rows no request carried"),
        ]
        .into_iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, what)| format!("{count} {what}"))
        .collect()
    }
}

/// How one body ended, as its client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// An attempt got a 2xx: stored exactly once.
    Acknowledged,
    /// Every attempt was refused before the engine took it (413/429/503): not stored.
    Refused,
    /// An attempt's outcome is unknown (504, connection lost after sending): at most once.
    Unknown,
}

/// A body ready to send: its request line, bytes, and the identity of its messages' rows.
struct Body {
    method: &'static str,
    path: String,
    json: Bytes,
    rows: Vec<u64>,
}

/// The identity of a clean row, for matching what was sent with what the tables hold.
fn row_key(row: &crate::clean::Row) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    row.hash(&mut hasher);
    hasher.finish()
}

/// Body `number`: its stream, its format (REST proxy, one Kinesis record, a Kinesis batch)
/// and the clean messages of its posts.
fn body(emulator: &Emulator, number: u64, records: usize) -> Body {
    let stream = Stream::ALL[(number % 3) as usize];
    let format = (number / 3) % 3;
    let count = if format == 1 { 1 } else { records as u64 };
    let first = (number / 3) * records as u64;
    let mut messages = Vec::new();
    let mut rows = Vec::new();
    for post in first..first + count {
        let message = emulator.post(post).message(stream).to_vec();
        if let Ok(row) = crate::clean::clean(stream, &message) {
            rows.push(row_key(&row));
            messages.push(String::from_utf8(message).expect("the emulator writes UTF-8"));
        }
    }
    let (method, path, json) = match format {
        0 => {
            let records: Vec<String> = messages
                .iter()
                .map(|m| format!(r#"{{"value": {m}}}"#))
                .collect();
            (
                "POST",
                format!("/topics/flood.{stream}"),
                format!(r#"{{"records": [{}]}}"#, records.join(", ")),
            )
        }
        1 => {
            // Data as base64 of the JSON on odd posts, as an object on even ones.
            let data = match messages.first() {
                Some(m) if first % 2 == 1 => format!(
                    "\"{}\"",
                    base64::engine::general_purpose::STANDARD.encode(m)
                ),
                Some(m) => m.clone(),
                None => "{}".to_owned(),
            };
            (
                "PUT",
                format!("/streams/streaming-flood-{stream}/record"),
                format!(
                    r#"{{"StreamName": "streaming-flood-{stream}", "Data": {data}, "PartitionKey": "{first}"}}"#
                ),
            )
        }
        _ => {
            let records: Vec<String> = messages
                .iter()
                .map(|m| format!(r#"{{"Data": {m}, "PartitionKey": "k"}}"#))
                .collect();
            (
                "PUT",
                format!("/streams/streaming-flood-{stream}/records"),
                format!(r#"{{"Records": [{}]}}"#, records.join(", ")),
            )
        }
    };
    Body {
        method,
        path,
        json: Bytes::from(json),
        rows,
    }
}

/// What one connection saw.
#[derive(Default)]
struct ClientLog {
    outcomes: Vec<(Outcome, Vec<u64>)>,
    latencies_micros: Vec<u64>,
    refusals: BTreeMap<u16, u64>,
    without_retry_after: BTreeMap<u16, u64>,
    transport_errors: u64,
    connect_errors: u64,
}

async fn connect(addr: SocketAddr) -> Option<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(connection);
    Some(sender)
}

/// One connection: bodies from the shared counter until `stop`, each sent until it is
/// acknowledged, refused without a retry hint, or the flood ends.
async fn client(
    addr: SocketAddr,
    emulator: Arc<Emulator>,
    next_body: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    records: usize,
) -> ClientLog {
    let mut log = ClientLog::default();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    while !stop.load(Ordering::Relaxed) {
        let body = body(
            &emulator,
            next_body.fetch_add(1, Ordering::Relaxed),
            records,
        );
        if body.rows.is_empty() {
            continue;
        }
        let mut outcome = Outcome::Refused;
        loop {
            // A closed keep-alive connection (after a refusal whose body was not read, or
            // the server's choice) is opened again; nothing was sent on it.
            let ready = match sender.as_mut() {
                Some(s) => s.ready().await.is_ok(),
                None => false,
            };
            if !ready {
                sender = connect(addr).await;
                if sender.is_none() {
                    log.connect_errors += 1;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
            let request = hyper::Request::builder()
                .method(body.method)
                .uri(&body.path)
                .header(hyper::header::HOST, addr.to_string())
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(body.json.clone()))
                .expect("a valid request");
            let sent = Instant::now();
            let answer = match sender
                .as_mut()
                .expect("connected")
                .send_request(request)
                .await
            {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(hyper::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    // Read the answer whole, so the connection can carry the next request.
                    let read = response.into_body().collect().await.is_ok();
                    Some((status, retry_after, read))
                }
                Err(_) => None,
            };
            let Some((status, retry_after, read)) = answer else {
                log.transport_errors += 1;
                outcome = Outcome::Unknown;
                sender = None;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                continue;
            };
            if !read {
                sender = None;
            }
            if status.is_success() {
                log.latencies_micros.push(sent.elapsed().as_micros() as u64);
                outcome = Outcome::Acknowledged;
                break;
            }
            *log.refusals.entry(status.as_u16()).or_default() += 1;
            if status == hyper::StatusCode::GATEWAY_TIMEOUT {
                outcome = Outcome::Unknown;
            }
            let Some(seconds) = retry_after else {
                *log.without_retry_after.entry(status.as_u16()).or_default() += 1;
                break;
            };
            if stop.load(Ordering::Relaxed) {
                break;
            }
            tokio::time::sleep(Duration::from_secs(seconds)).await;
        }
        log.outcomes.push((outcome, body.rows));
    }
    log
}

/// The size of the bodies the oversized clients offer.
pub const OVERSIZED_BYTES: usize = 64 << 20;

/// One connection at a time offering a body of [`OVERSIZED_BYTES`]: with its length and
/// `Expect: 100-continue` (as curl does for large bodies: the body follows only if the server
/// asks for it), or chunked without a length, sent until the answer comes or the server
/// closes. The answers' statuses (0: closed before an answer could be read, which a server
/// that stops reading a body it refused may cause).
async fn oversized_client(addr: SocketAddr, chunked: bool, stop: Arc<AtomicBool>) -> Vec<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut statuses = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (mut reader, mut writer) = stream.into_split();
        let framing = if chunked {
            "Transfer-Encoding: chunked".to_owned()
        } else {
            format!("Content-Length: {OVERSIZED_BYTES}\r\nExpect: 100-continue")
        };
        let head = format!(
            "PUT /streams/streaming-flood-pin/records HTTP/1.1\r\nHost: {addr}\r\n{framing}\r\nContent-Type: application/json\r\n\r\n"
        );
        if writer.write_all(head.as_bytes()).await.is_err() {
            statuses.push(0);
            continue;
        }
        let send = async move {
            if !chunked {
                // The body only once asked for: never, for a refused one.
                std::future::pending::<()>().await;
            }
            let chunk = vec![b' '; 64 << 10];
            for _ in 0..OVERSIZED_BYTES / chunk.len() {
                writer
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                writer.write_all(&chunk).await?;
                writer.write_all(b"\r\n").await?;
            }
            writer.write_all(b"0\r\n\r\n").await?;
            // Keep the write half open until the answer is read.
            std::future::pending::<()>().await;
            Ok::<_, std::io::Error>(())
        };
        let receive = async {
            let mut head = [0u8; 12];
            match reader.read_exact(&mut head).await {
                Ok(_) => std::str::from_utf8(&head[9..12])
                    .ok()
                    .and_then(|code| code.parse().ok())
                    .unwrap_or(0),
                Err(_) => 0,
            }
        };
        let status = tokio::select! {
            status = receive => status,
            _ = send => 0,
        };
        statuses.push(status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    statuses
}

/// A free port on 127.0.0.1 for the child's HTTP server.
fn free_port() -> Result<u16, Error> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(io("finding a free port"))
}

/// A process's resident memory now and at its peak, from /proc (0 where unknown).
fn rss_of(pid: u32) -> (u64, u64) {
    let figure = |field| crate::commands::status_bytes(&pid.to_string(), field).unwrap_or(0);
    (figure("VmRSS"), figure("VmHWM"))
}

/// Starts `pinstream run --from <source>` on `port` and waits for its `/healthz`.
fn start_child(exe: &Path, settings: &FloodSettings, port: u16) -> Result<Child, Error> {
    let _ = std::fs::remove_dir_all(&settings.lake);
    let mut child = Command::new(exe)
        .args(["run", "--from", &settings.source, "--lake"])
        .arg(&settings.lake)
        .args(["--http", &format!("127.0.0.1:{port}")])
        .args(["--batch-interval", &settings.batch_interval])
        .args(["--workers", &settings.workers.to_string()])
        .env("PINSTREAM_LOG", "warn,pinstream=info")
        .stdout(Stdio::null())
        .spawn()
        .map_err(io("starting pinstream run"))?;
    let started = Instant::now();
    loop {
        let healthy = std::net::TcpStream::connect(("127.0.0.1", port))
            .and_then(|mut stream| {
                use std::io::{Read, Write};
                stream.set_read_timeout(Some(Duration::from_secs(2)))?;
                write!(
                    stream,
                    "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                )?;
                let mut answer = String::new();
                stream.read_to_string(&mut answer)?;
                Ok(answer.starts_with("HTTP/1.1 200"))
            })
            .unwrap_or(false);
        if healthy {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::BenchCheck(format!(
                "pinstream run exited at start with {status}"
            )));
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            return Err(Error::BenchCheck(
                "pinstream run: no /healthz in 60 s".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM (the child commits what it holds and exits 0).
fn stop_child(mut child: Child) -> Result<(), Error> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .map_err(io("sending SIGTERM"))?;
    if !status.success() {
        return Err(Error::BenchCheck("kill -TERM failed".into()));
    }
    let status = child.wait().map_err(io("waiting for pinstream run"))?;
    if !status.success() {
        return Err(Error::BenchCheck(format!(
            "pinstream run exited with {status}"
        )));
    }
    Ok(())
}

/// Runs the flood against a fresh child of `exe` and checks its tables.
pub fn flood(exe: &Path, settings: &FloodSettings) -> Result<FloodReport, Error> {
    let port = free_port()?;
    let child = start_child(exe, settings, port)?;
    let pid = child.id();
    let (rss_before, _) = rss_of(pid);
    let runtime = super::super::io_runtime()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let emulator = Arc::new(Emulator::new(Parameters {
        seed: 13,
        universe: u64::MAX / 4,
    }));
    let next_body = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let (logs, oversized_answers): (Vec<ClientLog>, Vec<u16>) = runtime.block_on(async {
        let clients: Vec<_> = (0..settings.connections)
            .map(|_| {
                tokio::spawn(client(
                    addr,
                    emulator.clone(),
                    next_body.clone(),
                    stop.clone(),
                    settings.records_per_request,
                ))
            })
            .collect();
        let oversized: Vec<_> = (0..settings.oversized)
            .map(|i| tokio::spawn(oversized_client(addr, i % 2 == 1, stop.clone())))
            .collect();
        tokio::time::sleep(settings.duration).await;
        stop.store(true, Ordering::Relaxed);
        let mut logs = Vec::new();
        for client in clients {
            logs.push(client.await.unwrap_or_default());
        }
        let mut answers = Vec::new();
        for client in oversized {
            answers.extend(client.await.unwrap_or_default());
        }
        (logs, answers)
    });
    let seconds = started.elapsed().as_secs_f64();
    let (_, peak_rss) = rss_of(pid);
    stop_child(child)?;

    let mut report = FloodReport {
        seconds,
        rss_before_bytes: rss_before,
        peak_rss_bytes: peak_rss,
        ..FloodReport::default()
    };
    for status in oversized_answers {
        *report.oversized_answers.entry(status).or_default() += 1;
    }
    let mut sent: HashMap<u64, Outcome> = HashMap::new();
    let mut latencies = Vec::new();
    for log in logs {
        for (outcome, rows) in log.outcomes {
            match outcome {
                Outcome::Acknowledged => {
                    report.requests_acknowledged += 1;
                    report.records_acknowledged += rows.len() as u64;
                }
                Outcome::Refused => report.records_refused += rows.len() as u64,
                Outcome::Unknown => report.records_unknown += rows.len() as u64,
            }
            sent.extend(rows.into_iter().map(|row| (row, outcome)));
        }
        latencies.extend(log.latencies_micros);
        for (status, count) in log.refusals {
            *report.refusals.entry(status).or_default() += count;
        }
        for (status, count) in log.without_retry_after {
            *report
                .refusals_without_retry_after
                .entry(status)
                .or_default() += count;
        }
        report.transport_errors += log.transport_errors;
        report.connect_errors += log.connect_errors;
    }
    latencies.sort_unstable();
    let quantile = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .map_or(0.0, |micros| *micros as f64 / 1e3)
    };
    report.ack_latency_ms = Quantiles {
        p50: quantile(0.5),
        p99: quantile(0.99),
        max: quantile(1.0),
    };
    let stored = runtime.block_on(stored_rows(&settings.lake))?;
    for (key, outcome) in &sent {
        let count = stored.get(key).copied().unwrap_or(0);
        match outcome {
            Outcome::Acknowledged if count == 0 => report.missing += 1,
            Outcome::Acknowledged if count > 1 => report.duplicated += 1,
            Outcome::Refused if count > 0 => report.refused_but_stored += 1,
            Outcome::Unknown if count > 1 => report.unknown_stored_twice += 1,
            _ => {}
        }
    }
    report.unexpected_rows = stored
        .iter()
        .filter(|(key, _)| !sent.contains_key(key))
        .map(|(_, count)| *count)
        .sum();
    Ok(report)
}

/// How often each row is in the lake's clean tables (and every quarantine row, which no
/// body should have made, under a key of its own).
async fn stored_rows(lake: &Path) -> Result<HashMap<u64, u64>, Error> {
    let lake = Lake::open(&lake.display().to_string(), Codec::default())
        .await
        .map_err(|e| Error::Engine(e.into()))?;
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for file in lake.held_files(0, 1).map_err(|e| Error::Engine(e.into()))? {
        lake.read_file(file.table, &file.path, |row| {
            let key = match row {
                TableRow::Clean(row) => row_key(row),
                TableRow::Quarantine(quarantined) => {
                    let mut hasher = std::collections::hash_map::DefaultHasher::new();
                    quarantined.hash(&mut hasher);
                    hasher.finish()
                }
            };
            *counts.entry(key).or_default() += 1;
        })
        .await
        .map_err(|e| Error::Engine(e.into()))?;
    }
    Ok(counts)
}

/// `bench --flood`: the flood against the default limits (or `--flood-source`), printed.
pub fn bench_flood(args: &crate::config::BenchArgs) -> Result<(), Error> {
    let dir = super::bench_dir(args);
    let settings = FloodSettings {
        connections: args.connections,
        duration: Duration::from_secs(args.flood_seconds),
        records_per_request: args.records_per_request,
        source: args.flood_source.clone(),
        batch_interval: "200ms".into(),
        workers: args.workers.iter().copied().max().unwrap_or(1),
        oversized: 8,
        lake: dir.join("lake-flood"),
    };
    let exe = std::env::current_exe().map_err(io("locating pinstream"))?;
    let report = flood(&exe, &settings)?;
    print_report(&settings, &report);
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let problems = report.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::BenchCheck(problems.join("; ")))
    }
}

fn print_report(settings: &FloodSettings, report: &FloodReport) {
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    println!(
        "flood: {} connections for {:.1} s against `run --from {}` ({} worker(s), batches of {}), up to {} records per batch body",
        settings.connections,
        report.seconds,
        settings.source,
        settings.workers,
        settings.batch_interval,
        settings.records_per_request,
    );
    println!(
        "acknowledged: {:.0} requests/s, {:.0} records/s ({} requests, {} records)",
        report.requests_acknowledged as f64 / report.seconds,
        report.records_acknowledged as f64 / report.seconds,
        report.requests_acknowledged,
        report.records_acknowledged,
    );
    let refusals: Vec<String> = report
        .refusals
        .iter()
        .map(|(status, count)| format!("{status}: {count}"))
        .collect();
    println!(
        "refused: {} (without Retry-After: {:?}); connections lost after sending: {}, failed connects: {}",
        if refusals.is_empty() {
            "none".to_owned()
        } else {
            refusals.join(", ")
        },
        report.refusals_without_retry_after,
        report.transport_errors,
        report.connect_errors,
    );
    println!(
        "ack latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; child RSS {:.0} MiB at start, peak {:.0} MiB",
        report.ack_latency_ms.p50,
        report.ack_latency_ms.p99,
        report.ack_latency_ms.max,
        mib(report.rss_before_bytes),
        mib(report.peak_rss_bytes),
    );
    println!(
        "oversized bodies ({} MiB, {} connections): answers {:?}",
        OVERSIZED_BYTES >> 20,
        settings.oversized,
        report.oversized_answers
    );
    let problems = report.problems();
    println!(
        "tables: {} acknowledged records each stored once, {} refused ones absent, {} of unknown outcome: {}",
        report.records_acknowledged,
        report.records_refused,
        report.records_unknown,
        if problems.is_empty() {
            "exact".to_owned()
        } else {
            problems.join("; ")
        }
    );
}
