//! The Kinesis source (SPEC §1): streams `streaming-<prefix>-pin`, `-geo`, `-user` (or a list
//! of streams, each named with its stream token), one JSON record per Kinesis record (or a
//! JSON string holding base64 JSON, as the API Gateway mapping writes it).
//!
//! Positions: the Delta `txn` version is an i64 but Kinesis sequence numbers have up to 56
//! digits, and the tables are the only state. So the position of a shard (partition id
//! `kinesis:<stream>/<shardId>`) is a monotone count, the number of its records consumed
//! counted from TRIM_HORIZON, and the exact sequence number of the last one rides along as
//! its [`Cursor`], stored by the sink in the same commit. On resume a shard reads from
//! AFTER_SEQUENCE_NUMBER at its cursor; only when no cursor matches the stored count (tables
//! written before cursors existed) is it read from TRIM_HORIZON skipping that many records
//! (exact while retention has not trimmed records already counted), with a log line.
//! `RawRecord.offset` is the record's index in the shard.
//!
//! `start = latest` or a timestamp (for shards with no stored position) also reads from
//! TRIM_HORIZON and skips, counting them, the records that arrived before the job opened
//! (or before the timestamp), so positions keep meaning "records from TRIM_HORIZON".
//!
//! Shards are listed with ListShards at open and every [`LIST_INTERVAL`]; each worker reads the
//! shards whose partition id hashes to it. After a split or merge a child shard is read only
//! once its parents are drained (GetRecords returned no next iterator) by whichever worker of
//! this process owns them (a process-wide registry), or are gone from ListShards (expired).
//!
//! Transient errors (connection refused or reset, timeouts, 5xx, throttling, expired
//! iterators) never end the run: each shard backs off exponentially (bounded by
//! [`MAX_BACKOFF`]), a rate-limited warning is logged and `pinstream_source_retries_total`
//! counts them. A new iterator after an error resumes after the last record fetched.
//!
//! `--until-done`: done once every shard listed at open is caught up (an empty GetRecords
//! with MillisBehindLatest 0) or, when closed, drained.
//!
//! [`put_events`] is `pinstream emulate --to kinesis://<prefix>`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StreamStatus};
use base64::Engine as _;

use crate::connectors::emulator::{Emulator, EmulatorSpec};
use crate::connectors::{
    Cursor, Cursors, PartitionId, PollStatus, Positions, RawRecord, Source, SourceError,
};
use crate::stream::Stream;

/// How often the shards are listed again.
const LIST_INTERVAL: Duration = Duration::from_secs(10);
/// Kinesis allows 5 GetRecords per second per shard.
const GET_INTERVAL: Duration = Duration::from_millis(200);
/// Timeout of one request made from `poll` (the engine's loop must not block long).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait before a shard is read again after errors.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long opening keeps retrying ListShards before the source counts as unreachable.
const OPEN_RETRY: Duration = Duration::from_secs(30);
/// At most one warning per this interval (the rest are counted).
const WARN_INTERVAL: Duration = Duration::from_secs(10);
/// Records per GetRecords: the API's maximum. A shard starts asking for
/// [`GET_LIMIT_START`] and doubles while full answers come fast, halves (down to
/// [`GET_LIMIT_MIN`]) when they are slow: an endpoint that is slow per record (kinesis-mock
/// on a busy machine takes seconds for 10,000) is never asked for more than it answers
/// within the timeout, because a request given up on is still worked through by the server.
const GET_LIMIT: i32 = 10_000;
const GET_LIMIT_START: i32 = 1_000;
const GET_LIMIT_MIN: i32 = 250;
/// Records per PutRecords (the API's maximum).
const PUT_BATCH: usize = 500;
/// Timeout of one PutRecords.
const PUT_TIMEOUT: Duration = Duration::from_secs(60);

/// Shards drained in this process (partition ids), so a child's owner knows its parents are.
static DRAINED: LazyLock<Mutex<HashSet<PartitionId>>> = LazyLock::new(Default::default);

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// Which streams to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Streams {
    /// `streaming-<prefix>-pin`, `-geo`, `-user`.
    Prefix(String),
    /// Named streams; each carries its stream as a name token.
    List(Vec<String>),
}

impl Streams {
    pub fn resolve(&self) -> Result<Vec<(String, Stream)>, SourceError> {
        match self {
            Streams::Prefix(prefix) => Ok(Stream::ALL
                .iter()
                .map(|s| (stream_name(prefix, *s), *s))
                .collect()),
            Streams::List(names) => names
                .iter()
                .map(|name| match Stream::from_name_token(name) {
                    Some(stream) => Ok((name.clone(), stream)),
                    None => Err(SourceError::Config(format!(
                        "kinesis stream `{name}`: its name must carry the stream (pin, geo or user) as a token, e.g. streaming-abc-pin"
                    ))),
                })
                .collect(),
        }
    }
}

/// `streaming-<prefix>-<stream>`.
pub fn stream_name(prefix: &str, stream: Stream) -> String {
    format!("streaming-{prefix}-{stream}")
}

/// Where a shard with no stored position starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartAt {
    #[default]
    TrimHorizon,
    /// Records that arrive after the job opened the shard.
    Latest,
    /// Records that arrived at or after this time (milliseconds since the epoch).
    Timestamp(i64),
}

impl StartAt {
    /// `trim_horizon`, `latest`, or a timestamp as the Kafka source takes it.
    pub fn parse(text: &str) -> Result<StartAt, SourceError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "trim_horizon" | "earliest" => return Ok(StartAt::TrimHorizon),
            "latest" => return Ok(StartAt::Latest),
            _ => {}
        }
        match crate::connectors::kafka::StartFrom::parse(text) {
            Ok(crate::connectors::kafka::StartFrom::Timestamp(ms)) => Ok(StartAt::Timestamp(ms)),
            _ => Err(SourceError::Config(format!(
                "kinesis start `{text}`: expected trim_horizon, latest, a timestamp (2024-05-01T00:00:00Z) or epoch milliseconds"
            ))),
        }
    }
}

impl fmt::Display for StartAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartAt::TrimHorizon => f.write_str("trim_horizon"),
            StartAt::Latest => f.write_str("latest"),
            StartAt::Timestamp(ms) => write!(f, "{ms}"),
        }
    }
}

/// A Kinesis source as configured (`--from kinesis://...` or a job file's `[[source]]`).
#[derive(Clone, Debug, PartialEq)]
pub struct KinesisSpec {
    pub streams: Streams,
    /// Region; the standard chain (AWS_REGION, profile) when `None`.
    pub region: Option<String>,
    /// Endpoint URL; AWS_ENDPOINT_URL_KINESIS / AWS_ENDPOINT_URL when `None`.
    pub endpoint: Option<String>,
    pub start: StartAt,
    /// Report `Exhausted` once the shards listed at open are caught up (`--until-done`).
    pub stop_at_end: bool,
}

impl KinesisSpec {
    /// Parses `kinesis://<prefix>[?endpoint=<url>&region=<r>&start=trim_horizon|latest|<time>]`.
    pub fn parse(text: &str) -> Result<KinesisSpec, SourceError> {
        let err = |msg: &str| {
            SourceError::Config(format!(
                "kinesis source `{text}`: {msg} (expected kinesis://<prefix>[?endpoint=..&region=..&start=..])"
            ))
        };
        let rest = text
            .strip_prefix("kinesis://")
            .ok_or_else(|| err("must start with kinesis://"))?;
        let (prefix, query) = match rest.split_once('?') {
            Some((prefix, query)) => (prefix, Some(query)),
            None => (rest, None),
        };
        check_prefix(prefix).map_err(|msg| err(&msg))?;
        let mut spec = KinesisSpec {
            streams: Streams::Prefix(prefix.to_owned()),
            region: None,
            endpoint: None,
            start: StartAt::TrimHorizon,
            stop_at_end: false,
        };
        for item in query.into_iter().flat_map(|q| q.split('&')) {
            match item.split_once('=') {
                Some(("start", value)) => spec.start = StartAt::parse(value)?,
                Some(("region", value)) if !value.is_empty() => {
                    spec.region = Some(value.to_owned())
                }
                Some(("endpoint", value)) if !value.is_empty() => {
                    spec.endpoint = Some(value.to_owned())
                }
                _ => {
                    return Err(err(&format!(
                        "unknown option `{item}` (endpoint, region, start)"
                    )));
                }
            }
        }
        Ok(spec)
    }

    /// A client: the standard credential chain, with the job's region and endpoint over the
    /// environment's.
    async fn client(&self) -> Client {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &self.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let config = loader.load().await;
        let mut builder = aws_sdk_kinesis::config::Builder::from(&config);
        if config.region().is_none() {
            builder = builder.region(aws_config::Region::new("us-east-1"));
        }
        Client::from_conf(builder.build())
    }

    fn describe(&self) -> String {
        match &self.streams {
            Streams::Prefix(prefix) => format!("kinesis streaming-{prefix}-*"),
            Streams::List(names) => format!("kinesis {}", names.join(",")),
        }
    }
}

/// A stream name prefix: `[A-Za-z0-9_.-]`, short enough for the 128-character names.
fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Err("empty stream prefix".into());
    }
    if prefix.len() > 110
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "stream prefix `{prefix}` may only hold letters, digits, `.`, `_` and `-`"
        ));
    }
    Ok(())
}

/// An SDK error in one line: the service's code and message, or the whole chain for
/// transport errors (the service errors' Debug carries the raw response).
fn error_text<E, R>(error: &aws_sdk_kinesis::error::SdkError<E, R>) -> String
where
    E: aws_sdk_kinesis::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    match error.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or_default()
        ),
        None => DisplayErrorContext(error).to_string(),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, SourceError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SourceError::Config(format!("starting a runtime: {e}")))
}

fn partition_id(stream: &str, shard: &str) -> PartitionId {
    format!("kinesis:{stream}/{shard}").into()
}

/// The worker a shard belongs to: a stable hash of its id.
fn owner(id: &str, peers: usize) -> usize {
    (xxhash_rust::xxh3::xxh3_64(id.as_bytes()) % peers as u64) as usize
}

/// The payload as JSON bytes: as is, or decoded when it is a JSON string of base64 (the API
/// Gateway mapping). Anything else is left for the cleaning to quarantine.
pub fn payload_bytes(data: &[u8]) -> Vec<u8> {
    let trimmed = data.trim_ascii_start();
    if trimmed.first() == Some(&b'"')
        && let Ok(text) = serde_json::from_slice::<String>(trimmed)
        && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(text.trim())
    {
        return decoded;
    }
    data.to_vec()
}

/// Rate-limited warnings.
#[derive(Default)]
struct Warner {
    last: Option<Instant>,
    suppressed: u64,
}

impl Warner {
    fn warn(&mut self, what: &str) {
        if self.last.is_some_and(|at| at.elapsed() < WARN_INTERVAL) {
            self.suppressed += 1;
            return;
        }
        self.last = Some(Instant::now());
        tracing::warn!(suppressed = self.suppressed, "kinesis: {what}");
        self.suppressed = 0;
    }
}

// ---------------------------------------------------------------------------------------------
// The source
// ---------------------------------------------------------------------------------------------

/// One shard as listed.
#[derive(Clone, Debug)]
struct Listed {
    stream_name: String,
    stream: Stream,
    shard_id: String,
    parents: Vec<String>,
    closed: bool,
}

/// One shard this worker reads.
#[derive(Debug)]
struct Shard {
    id: PartitionId,
    stream_name: String,
    shard_id: String,
    stream: Stream,
    /// Parent partition ids (not yet known drained).
    parents: Vec<PartitionId>,
    closed: bool,
    /// Records returned by `poll` (the position).
    emitted: i64,
    /// Records fetched (into the pending queue or skipped): records of lower index are skipped.
    fetched: i64,
    /// Index of the next record the current iterator returns.
    seen: i64,
    /// Sequence number of the last record returned by `poll` (the cursor of `emitted`).
    last_sequence: Option<String>,
    /// Sequence number of record `fetched - 1`: a new iterator starts after it.
    fetched_sequence: Option<String>,
    iterator: Option<String>,
    /// Records asked per GetRecords.
    limit: i32,
    /// Skip (counting them) records that arrived before this time, ms (latest / timestamp).
    skip_before: Option<i64>,
    next_get: Instant,
    failures: u32,
    /// No next iterator: a closed shard read to its end.
    drained: bool,
    /// An empty GetRecords with MillisBehindLatest 0 came back.
    caught_up: bool,
    /// Listed at open: `--until-done` waits for it.
    waited_for: bool,
}

impl Shard {
    fn done(&self) -> bool {
        !self.waited_for || self.drained || self.caught_up
    }
}

/// Worker `worker`'s share (of `peers`) of the shards.
pub struct KinesisSource {
    spec: KinesisSpec,
    worker: usize,
    peers: usize,
    streams: Vec<(String, Stream)>,
    runtime: tokio::runtime::Runtime,
    client: Client,
    shards: Vec<Shard>,
    index: HashMap<PartitionId, usize>,
    /// Ids of all shards listed last time (any worker's), to tell an expired parent.
    listed: HashSet<PartitionId>,
    listed_at: Instant,
    /// Records fetched but not yet returned: (shard index, record, sequence number).
    pending: VecDeque<(usize, RawRecord, String)>,
    /// Positions and cursors from the tables (`seek`), for shards found later.
    stored: Positions,
    stored_cursors: Cursors,
    opened_ms: i64,
    warner: Warner,
}

impl KinesisSource {
    pub fn new(
        spec: &KinesisSpec,
        worker: usize,
        peers: usize,
    ) -> Result<KinesisSource, SourceError> {
        let streams = spec.streams.resolve()?;
        let runtime = runtime()?;
        let client = runtime.block_on(spec.client());
        let mut source = KinesisSource {
            spec: spec.clone(),
            worker,
            peers,
            streams,
            runtime,
            client,
            shards: Vec::new(),
            index: HashMap::new(),
            listed: HashSet::new(),
            listed_at: Instant::now(),
            pending: VecDeque::new(),
            stored: Positions::new(),
            stored_cursors: Cursors::new(),
            opened_ms: crate::now_micros() / 1000,
            warner: Warner::default(),
        };
        // An endpoint restarting (a blip) is waited for; one down for good is an error.
        let started = Instant::now();
        let mut backoff = Duration::from_millis(250);
        let listed = loop {
            match source.list() {
                Ok(listed) => break listed,
                Err(error) if started.elapsed() + backoff > OPEN_RETRY => {
                    return Err(SourceError::Unavailable(format!(
                        "{} unreachable after {:.0} s of retries: {error}",
                        spec.describe(),
                        started.elapsed().as_secs_f64()
                    )));
                }
                Err(error) => {
                    crate::connectors::count_retry("kinesis");
                    tracing::warn!("kinesis: {error} (retrying in {backoff:?})");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        source.add_shards(listed, true);
        Ok(source)
    }

    /// Every shard of the streams (missing streams have none, with a warning).
    fn list(&mut self) -> Result<Vec<Listed>, String> {
        let client = self.client.clone();
        let streams = self.streams.clone();
        let mut warnings = Vec::new();
        let result = self.runtime.block_on(async {
            let mut all = Vec::new();
            for (name, stream) in &streams {
                let mut token: Option<String> = None;
                loop {
                    let request = match &token {
                        Some(token) => client.list_shards().next_token(token),
                        None => client.list_shards().stream_name(name),
                    };
                    let output = match tokio::time::timeout(CALL_TIMEOUT, request.send()).await {
                        Err(_) => return Err(format!("ListShards {name}: timed out")),
                        Ok(Err(error)) => {
                            if error
                                .as_service_error()
                                .is_some_and(|e| e.is_resource_not_found_exception())
                            {
                                warnings.push(format!("stream {name} does not exist (yet)"));
                                break;
                            }
                            return Err(format!("ListShards {name}: {}", error_text(&error)));
                        }
                        Ok(Ok(output)) => output,
                    };
                    for shard in output.shards() {
                        let parents = [shard.parent_shard_id(), shard.adjacent_parent_shard_id()]
                            .into_iter()
                            .flatten()
                            .map(str::to_owned)
                            .collect();
                        all.push(Listed {
                            stream_name: name.clone(),
                            stream: *stream,
                            shard_id: shard.shard_id().to_owned(),
                            parents,
                            closed: shard
                                .sequence_number_range()
                                .is_some_and(|r| r.ending_sequence_number().is_some()),
                        });
                    }
                    match output.next_token() {
                        Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                        _ => break,
                    }
                }
            }
            Ok(all)
        });
        for warning in warnings {
            self.warner.warn(&warning);
        }
        result
    }

    fn add_shards(&mut self, listed: Vec<Listed>, at_open: bool) {
        self.listed = listed
            .iter()
            .map(|l| partition_id(&l.stream_name, &l.shard_id))
            .collect();
        self.listed_at = Instant::now();
        for l in listed {
            let id = partition_id(&l.stream_name, &l.shard_id);
            if let Some(&i) = self.index.get(&id) {
                self.shards[i].closed |= l.closed;
                continue;
            }
            if owner(&id, self.peers) != self.worker {
                continue;
            }
            let stored = self.stored.get(&id).copied();
            let cursor = self
                .stored_cursors
                .get(&id)
                .filter(|c| Some(c.position) == stored)
                .map(|c| c.cursor.clone());
            let skip_before = match (stored, at_open, self.spec.start) {
                (Some(_), _, _) | (None, false, _) | (None, true, StartAt::TrimHorizon) => None,
                (None, true, StartAt::Latest) => Some(self.opened_ms),
                (None, true, StartAt::Timestamp(ms)) => Some(ms),
            };
            let parents = l
                .parents
                .iter()
                .map(|p| partition_id(&l.stream_name, p))
                .collect();
            self.index.insert(id.clone(), self.shards.len());
            self.shards.push(Shard {
                id,
                stream_name: l.stream_name,
                shard_id: l.shard_id,
                stream: l.stream,
                parents,
                closed: l.closed,
                emitted: stored.unwrap_or(0),
                fetched: stored.unwrap_or(0),
                seen: 0,
                last_sequence: cursor.clone(),
                fetched_sequence: cursor,
                iterator: None,
                limit: GET_LIMIT_START,
                skip_before,
                next_get: Instant::now(),
                failures: 0,
                drained: false,
                caught_up: false,
                waited_for: at_open,
            });
        }
    }

    /// Lists the shards again when due.
    fn refresh(&mut self) {
        if self.listed_at.elapsed() < LIST_INTERVAL {
            return;
        }
        match self.list() {
            Ok(listed) => self.add_shards(listed, false),
            Err(error) => {
                self.listed_at = Instant::now();
                self.warner.warn(&error);
            }
        }
    }

    /// Whether a shard's parents are all drained (or expired).
    fn parents_drained(&mut self, i: usize) -> bool {
        let drained = DRAINED.lock().unwrap_or_else(|p| p.into_inner());
        let listed = &self.listed;
        self.shards[i]
            .parents
            .retain(|p| listed.contains(p) && !drained.contains(p));
        self.shards[i].parents.is_empty()
    }

    /// One GetRecords round over the due shards (concurrently, each call with its own
    /// timeout so one slow shard does not cost the others their records).
    fn fetch(&mut self) {
        let now = Instant::now();
        let due: Vec<usize> = (0..self.shards.len())
            .filter(|&i| {
                let s = &self.shards[i];
                !s.drained && s.next_get <= now
            })
            .collect();
        let due: Vec<usize> = due
            .into_iter()
            .filter(|&i| self.parents_drained(i))
            .collect();
        if due.is_empty() {
            return;
        }
        let client = &self.client;
        let calls = due.iter().map(|&i| {
            let shard = &self.shards[i];
            let client = client.clone();
            let (stream_name, shard_id) = (shard.stream_name.clone(), shard.shard_id.clone());
            let iterator = shard.iterator.clone();
            let after = shard.fetched_sequence.clone();
            let limit = shard.limit;
            let call = async move {
                let (iterator, fresh) = match iterator {
                    Some(iterator) => (iterator, false),
                    None => {
                        // After the last record fetched when its sequence number is known,
                        // else from the start (skipping what was counted).
                        let request = client
                            .get_shard_iterator()
                            .stream_name(&stream_name)
                            .shard_id(&shard_id);
                        let request = match after {
                            Some(sequence) => request
                                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                                .starting_sequence_number(sequence),
                            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
                        };
                        let output = request.send().await.map_err(|e| Failure {
                            expired: false,
                            throttled: is_throttled(&e),
                            timed_out: false,
                            message: format!("GetShardIterator: {}", error_text(&e)),
                        })?;
                        match output.shard_iterator() {
                            Some(it) => (it.to_owned(), true),
                            None => {
                                return Err(Failure {
                                    expired: false,
                                    throttled: false,
                                    timed_out: false,
                                    message: "GetShardIterator: no shard iterator".to_owned(),
                                });
                            }
                        }
                    }
                };
                let asked = Instant::now();
                client
                    .get_records()
                    .shard_iterator(iterator)
                    .limit(limit)
                    .send()
                    .await
                    .map(|output| (output, fresh, asked.elapsed()))
                    .map_err(|e| Failure {
                        expired: e
                            .as_service_error()
                            .is_some_and(|e| e.is_expired_iterator_exception()),
                        throttled: is_throttled(&e),
                        timed_out: false,
                        message: format!("GetRecords: {}", error_text(&e)),
                    })
            };
            async move {
                tokio::time::timeout(CALL_TIMEOUT, call)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Failure {
                            expired: false,
                            throttled: false,
                            timed_out: true,
                            message: format!("GetRecords: no answer within {CALL_TIMEOUT:?}"),
                        })
                    })
            }
        });
        let results = self.runtime.block_on(futures::future::join_all(calls));
        let now_micros = crate::now_micros();
        for (i, result) in due.into_iter().zip(results) {
            let shard = &mut self.shards[i];
            match result {
                Err(failure) => {
                    crate::connectors::count_retry("kinesis");
                    shard.failures += 1;
                    if failure.expired || shard.failures >= 3 {
                        // A new iterator, after the last record fetched.
                        shard.iterator = None;
                    }
                    if failure.timed_out {
                        shard.limit = (shard.limit / 2).max(GET_LIMIT_MIN);
                    }
                    let backoff = (GET_INTERVAL * 2u32.pow(shard.failures.min(6))).min(MAX_BACKOFF);
                    shard.next_get = Instant::now() + backoff;
                    if !failure.throttled {
                        self.warner.warn(&format!(
                            "{}: {} (attempt {}, next in {backoff:?})",
                            shard.id, failure.message, shard.failures
                        ));
                    }
                }
                Ok((output, fresh, took)) => {
                    if shard.failures > 0 {
                        tracing::info!(shard = %shard.id, "kinesis: reading again after {} failed attempts", shard.failures);
                    }
                    shard.failures = 0;
                    // Slow answers (a loaded endpoint) ask for fewer records next time, fast
                    // full ones for more: calls stay well inside CALL_TIMEOUT.
                    let full = output.records().len() as i32 >= shard.limit;
                    if took > CALL_TIMEOUT / 5 {
                        shard.limit = (shard.limit / 2).max(GET_LIMIT_MIN);
                    } else if full && took < CALL_TIMEOUT / 20 {
                        shard.limit = (shard.limit * 2).min(GET_LIMIT);
                    }
                    if fresh {
                        // An iterator after `fetched_sequence` starts at record `fetched`.
                        shard.seen = if shard.fetched_sequence.is_some() {
                            shard.fetched
                        } else {
                            0
                        };
                    }
                    shard.next_get = Instant::now() + GET_INTERVAL;
                    let records = output.records();
                    for record in records {
                        let index = shard.seen;
                        shard.seen += 1;
                        if index < shard.fetched {
                            continue;
                        }
                        shard.fetched = index + 1;
                        let sequence = record.sequence_number().to_owned();
                        shard.fetched_sequence = Some(sequence.clone());
                        let arrival = record
                            .approximate_arrival_timestamp()
                            .map(|t| t.secs() * 1_000_000 + i64::from(t.subsec_nanos()) / 1000)
                            .unwrap_or(now_micros);
                        if let Some(before) = shard.skip_before {
                            if arrival / 1000 < before {
                                // Before the start: counted as consumed, not read (no
                                // record of this shard is pending before these).
                                shard.emitted = shard.fetched;
                                shard.last_sequence = Some(sequence);
                                continue;
                            }
                            shard.skip_before = None;
                        }
                        self.pending.push_back((
                            i,
                            RawRecord {
                                stream: Some(shard.stream),
                                payload: payload_bytes(record.data().as_ref()),
                                partition: shard.id.clone(),
                                offset: index,
                                arrival,
                            },
                            sequence,
                        ));
                    }
                    shard.iterator = output.next_shard_iterator().map(str::to_owned);
                    if shard.iterator.is_none() {
                        shard.drained = true;
                        DRAINED
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(shard.id.clone());
                    }
                    // Caught up once is enough for `--until-done` (like Kafka's end at open).
                    if records.is_empty() && output.millis_behind_latest() == Some(0) {
                        shard.caught_up = true;
                    }
                }
            }
        }
    }
}

/// Why a read failed (every failure is retried).
struct Failure {
    expired: bool,
    throttled: bool,
    timed_out: bool,
    message: String,
}

fn is_throttled<E, R>(error: &aws_sdk_kinesis::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_kinesis::error::ProvideErrorMetadata,
{
    error.as_service_error().is_some_and(|e| {
        matches!(
            e.code(),
            Some("ProvisionedThroughputExceededException" | "LimitExceededException")
        )
    })
}

impl Source for KinesisSource {
    fn partitions(&self) -> Vec<PartitionId> {
        self.shards.iter().map(|s| s.id.clone()).collect()
    }

    fn seek(&mut self, from: &Positions) -> Result<(), SourceError> {
        self.seek_exact(from, &Cursors::new())
    }

    fn uses_cursors(&self) -> bool {
        true
    }

    fn seek_exact(&mut self, from: &Positions, cursors: &Cursors) -> Result<(), SourceError> {
        self.stored = from.clone();
        self.stored_cursors = cursors.clone();
        for shard in &mut self.shards {
            shard.last_sequence = None;
            shard.fetched_sequence = None;
            if let Some(&stored) = from.get(&shard.id) {
                if stored < 0 {
                    return Err(SourceError::Config(format!(
                        "{}: stored position {stored} is negative",
                        shard.id
                    )));
                }
                shard.emitted = stored;
                shard.fetched = stored;
                shard.skip_before = None;
                match cursors.get(&shard.id).filter(|c| c.position == stored) {
                    Some(cursor) => {
                        tracing::debug!(shard = %shard.id, position = stored, after = cursor.cursor, "kinesis: resuming after the stored sequence number");
                        shard.last_sequence = Some(cursor.cursor.clone());
                        shard.fetched_sequence = Some(cursor.cursor.clone());
                    }
                    None if stored > 0 => tracing::info!(
                        shard = %shard.id,
                        position = stored,
                        "kinesis: no stored sequence number for this position: reading from TRIM_HORIZON and skipping {stored} records"
                    ),
                    None => {}
                }
            }
            shard.iterator = None;
            shard.seen = 0;
        }
        self.pending.clear();
        Ok(())
    }

    fn poll(&mut self, max: usize, out: &mut Vec<RawRecord>) -> Result<PollStatus, SourceError> {
        if self.pending.is_empty() {
            self.refresh();
            self.fetch();
        }
        let before = out.len();
        while out.len() - before < max {
            let Some((i, record, sequence)) = self.pending.pop_front() else {
                break;
            };
            let shard = &mut self.shards[i];
            shard.emitted = record.offset + 1;
            shard.last_sequence = Some(sequence);
            out.push(record);
        }
        if out.len() > before {
            return Ok(PollStatus::Ready);
        }
        if self.spec.stop_at_end && self.shards.iter().all(Shard::done) {
            return Ok(PollStatus::Exhausted);
        }
        Ok(PollStatus::Idle)
    }

    fn positions(&self) -> Positions {
        self.shards
            .iter()
            .filter(|s| s.emitted > 0)
            .map(|s| (s.id.clone(), s.emitted))
            .collect()
    }

    fn cursors(&self) -> Cursors {
        self.shards
            .iter()
            .filter(|s| s.emitted > 0)
            .filter_map(|s| {
                let cursor = s.last_sequence.clone()?;
                Some((
                    s.id.clone(),
                    Cursor {
                        position: s.emitted,
                        cursor,
                    },
                ))
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Putting the emulator's events (`pinstream emulate --to kinesis://...`)
// ---------------------------------------------------------------------------------------------

/// Creates `streaming-<prefix>-pin/-geo/-user` with `shards` shards when missing, waits until
/// they are active, then puts events `0..spec.events` with PutRecords in batches of up to 500
/// per stream, each record keyed by the post index (a post's records land in one shard, in
/// order). Paced at `rate` events per second when given. Returns the events put.
pub fn put_events(
    target: &KinesisSpec,
    spec: &EmulatorSpec,
    shards: i32,
    rate: Option<f64>,
    mut progress: impl FnMut(u64),
) -> Result<u64, SourceError> {
    let Streams::Prefix(prefix) = &target.streams else {
        return Err(SourceError::Config(
            "emulate --to kinesis:// needs a stream prefix".into(),
        ));
    };
    let events = spec
        .events
        .ok_or_else(|| SourceError::Config("emulate needs a number of events (--events)".into()))?;
    let runtime = runtime()?;
    let client = runtime.block_on(target.client());
    let names = Stream::ALL.map(|s| stream_name(prefix, s));
    let unavailable = |what: String| SourceError::Unavailable(format!("kinesis: {what}"));
    runtime.block_on(async {
        for name in &names {
            match client
                .create_stream()
                .stream_name(name)
                .shard_count(shards)
                .send()
                .await
            {
                Ok(_) => tracing::info!(stream = name, shards, "kinesis stream created"),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_in_use_exception()) =>
                {
                    tracing::info!(stream = name, "kinesis stream exists")
                }
                Err(e) => {
                    return Err(unavailable(format!(
                        "create stream {name}: {}",
                        error_text(&e)
                    )));
                }
            }
        }
        for name in &names {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let summary = client
                    .describe_stream_summary()
                    .stream_name(name)
                    .send()
                    .await
                    .map_err(|e| unavailable(format!("describe {name}: {}", error_text(&e))))?;
                if summary
                    .stream_description_summary()
                    .is_some_and(|s| *s.stream_status() == StreamStatus::Active)
                {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(unavailable(format!("stream {name} did not become active")));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    })?;

    let emulator = Emulator::new(spec);
    let started = Instant::now();
    // Events per round: a full PutRecords per stream, or about 5 rounds a second when paced.
    let chunk = match rate {
        Some(rate) => ((rate / 5.0) as u64).clamp(1, PUT_BATCH as u64),
        None => PUT_BATCH as u64,
    };
    let mut seq = 0;
    while seq < events {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(seq as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let end = (seq + chunk).min(events);
        let mut batches: [Vec<PutRecordsRequestEntry>; 3] = Default::default();
        for n in seq..end {
            let event = emulator.event(n);
            let key = event.index.to_string();
            for (s, stream) in Stream::ALL.into_iter().enumerate() {
                let entry = PutRecordsRequestEntry::builder()
                    .data(Blob::new(event.message(stream)))
                    .partition_key(&key)
                    .build()
                    .map_err(|e| SourceError::Config(format!("kinesis record: {e}")))?;
                batches[s].push(entry);
            }
        }
        // The three streams at once (one request in flight per stream keeps each key's
        // records in order).
        let puts = batches
            .into_iter()
            .zip(&names)
            .map(|(batch, name)| put_batch(&client, name, batch));
        runtime
            .block_on(futures::future::join_all(puts))
            .into_iter()
            .collect::<Result<(), SourceError>>()?;
        seq = end;
        progress(seq);
    }
    Ok(events)
}

/// One PutRecords, retrying the records that failed (throttling) with backoff.
async fn put_batch(
    client: &Client,
    stream: &str,
    mut batch: Vec<PutRecordsRequestEntry>,
) -> Result<(), SourceError> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut attempt = 0u32;
    loop {
        let send = client
            .put_records()
            .stream_name(stream)
            .set_records(Some(batch.clone()))
            .send();
        // A hung endpoint is an error too (a retry may put a batch twice: the emulator's
        // rows repeat anyway and the engine deduplicates).
        let output = match tokio::time::timeout(PUT_TIMEOUT, send).await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(e)) => Err(error_text(&e)),
            Err(_) => Err(format!("no answer within {PUT_TIMEOUT:?}")),
        };
        let output = match output {
            Ok(output) => output,
            Err(message) if attempt < 8 => {
                tracing::warn!("kinesis: PutRecords {stream}: {message}");
                crate::connectors::count_retry("kinesis");
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
                continue;
            }
            Err(message) => {
                return Err(SourceError::Unavailable(format!(
                    "kinesis: PutRecords {stream}: {message}"
                )));
            }
        };
        if output.failed_record_count().unwrap_or(0) == 0 {
            return Ok(());
        }
        // Keep only the failed ones, in order.
        let results = output.records();
        let first_error = results
            .iter()
            .find_map(|r| r.error_message().or(r.error_code()))
            .unwrap_or_default()
            .to_owned();
        batch = batch
            .into_iter()
            .zip(results)
            .filter(|(_, r)| r.error_code().is_some())
            .map(|(entry, _)| entry)
            .collect();
        attempt += 1;
        if attempt > 8 {
            return Err(SourceError::Unavailable(format!(
                "kinesis: PutRecords {stream}: {} records not put ({first_error})",
                batch.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinesis_url_parsing() {
        let spec = KinesisSpec::parse("kinesis://abc").unwrap();
        assert_eq!(spec.streams, Streams::Prefix("abc".into()));
        assert_eq!(spec.start, StartAt::TrimHorizon);
        assert_eq!(
            spec.streams.resolve().unwrap(),
            [
                ("streaming-abc-pin".to_owned(), Stream::Pin),
                ("streaming-abc-geo".to_owned(), Stream::Geo),
                ("streaming-abc-user".to_owned(), Stream::User)
            ]
        );
        let spec = KinesisSpec::parse(
            "kinesis://x-y?endpoint=http://127.0.0.1:4568&region=eu-west-1&start=latest",
        )
        .unwrap();
        assert_eq!(spec.endpoint.as_deref(), Some("http://127.0.0.1:4568"));
        assert_eq!(spec.region.as_deref(), Some("eu-west-1"));
        assert_eq!(spec.start, StartAt::Latest);
        assert_eq!(
            KinesisSpec::parse("kinesis://a?start=2024-05-01T00:00:00Z")
                .unwrap()
                .start,
            StartAt::Timestamp(1_714_521_600_000)
        );
        for bad in [
            "kinesis://",
            "kinesis://a/b",
            "kinesis://a?speed=3",
            "kinesis://a?start=soon",
        ] {
            match KinesisSpec::parse(bad) {
                Err(SourceError::Config(msg)) => assert!(msg.contains("kinesis"), "{bad}: {msg}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn kinesis_payloads_as_is_or_base64_in_a_json_string() {
        let json = br#"{"index":1}"#;
        assert_eq!(payload_bytes(json), json);
        let wrapped = format!(
            "\"{}\"",
            base64::engine::general_purpose::STANDARD.encode(json)
        );
        assert_eq!(payload_bytes(wrapped.as_bytes()), json);
        // Not base64: left as is (quarantined later).
        assert_eq!(payload_bytes(b"\"hello!\""), b"\"hello!\"");
    }

    #[test]
    fn kinesis_shards_spread_over_workers() {
        let ids: Vec<PartitionId> = (0..3)
            .flat_map(|t| {
                (0..32).map(move |p| {
                    partition_id(&format!("streaming-t{t}-pin"), &format!("shardId-{p:012}"))
                })
            })
            .collect();
        for peers in 1..=4 {
            let mut per_worker = vec![0; peers];
            for id in &ids {
                per_worker[owner(id, peers)] += 1;
            }
            assert!(
                per_worker.iter().all(|&n| n >= ids.len() / peers / 2),
                "{per_worker:?}"
            );
        }
        assert_eq!(
            &*partition_id("streaming-a-pin", "shardId-000000000001"),
            "kinesis:streaming-a-pin/shardId-000000000001"
        );
    }
}
