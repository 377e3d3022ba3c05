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
//! the job owns them (the job's registry of finished partitions, [`Shared`]; in a cluster the
//! dataflow tells every process), or are gone from ListShards (expired).
//!
//! Transient errors (connection refused or reset, timeouts, 5xx, throttling, expired
//! iterators) never end the run: each shard backs off exponentially (bounded by
//! [`MAX_BACKOFF`]), a rate-limited warning is logged and `pinstream_source_retries_total`
//! counts them. A new iterator after an error resumes after the last record fetched.
//!
//! `--until-done`: done once every shard listed at open is caught up (an empty GetRecords
//! with MillisBehindLatest 0) or, when closed, drained.
//!
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::types::ShardIteratorType;
use base64::Engine as _;

use super::{KinesisSpec, StartAt};
use crate::connectors::{
    Cursor, CursorLookup, Cursors, PartitionId, PollStatus, Position, Positions, RawRecord, Source,
    SourceError,
};
use crate::stats::Stats;
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
/// Commits per table read back at start, newest first, looking for the shards' cursors
/// (every shard with a position has one).
const CURSOR_SEARCH_COMMITS: u64 = 200;
/// What the Kinesis sources of one running job share (every worker, every dataflow restart).
#[derive(Clone, Default)]
pub struct Shared {
    /// The job's counters (retries).
    pub stats: Arc<Stats>,
    /// Shards drained anywhere in the job (the job's [`crate::connectors::JobContext::finished`]),
    /// so a child's owner knows its parents are.
    pub drained: crate::connectors::FinishedPartitions,
}

/// An SDK error in one line: the service's code and message, or the whole chain for
/// transport errors (the service errors' Debug carries the raw response).
pub(super) fn error_text<E, R>(error: &aws_sdk_kinesis::error::SdkError<E, R>) -> String
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

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, SourceError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| SourceError::Runtime {
            purpose: "the kinesis client",
            source,
        })
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
    emitted: Position,
    /// Records fetched (into the pending queue or skipped): records of lower index are skipped.
    fetched: Position,
    /// Records the current iterator returned: the next one is at `seen.next_offset()`.
    seen: Position,
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
    shared: Shared,
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
    /// Shards this instance drained since [`Source::take_finished`] was last called.
    newly_drained: Vec<PartitionId>,
}

impl KinesisSource {
    pub fn new(
        spec: &KinesisSpec,
        shared: &Shared,
        worker: usize,
        peers: usize,
    ) -> Result<KinesisSource, SourceError> {
        let streams = spec.streams.resolve()?;
        let runtime = runtime()?;
        let client = runtime.block_on(spec.client());
        let mut source = KinesisSource {
            spec: spec.clone(),
            shared: shared.clone(),
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
            newly_drained: Vec::new(),
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
                    shared.stats.count_retry("kinesis");
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
                emitted: stored.unwrap_or(Position::START),
                fetched: stored.unwrap_or(Position::START),
                seen: Position::START,
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
        let drained = self.shared.drained.lock();
        let listed = &self.listed;
        self.shards[i]
            .parents
            .retain(|p| listed.contains(p) && !drained.contains(p));
        self.shards[i].parents.is_empty()
    }

    /// One GetRecords round over the due shards (concurrently, each call with its own
    /// timeout so one slow shard does not cost the others their records).
    fn fetch(&mut self) {
        let due = self.due_shards();
        if due.is_empty() {
            return;
        }
        let calls = due.iter().map(|&i| {
            let read = Read::of(&self.shards[i]);
            read_shard(self.client.clone(), read)
        });
        let results = self.runtime.block_on(futures::future::join_all(calls));
        let now_micros = crate::now_micros();
        for (i, result) in due.into_iter().zip(results) {
            match result {
                Err(failure) => self.failed(i, failure),
                Ok(read) => self.take(i, read, now_micros),
            }
        }
    }

    /// The shards to read now: not drained, their wait over, their parents drained.
    fn due_shards(&mut self) -> Vec<usize> {
        let now = Instant::now();
        let waiting: Vec<usize> = (0..self.shards.len())
            .filter(|&i| !self.shards[i].drained && self.shards[i].next_get <= now)
            .collect();
        waiting
            .into_iter()
            .filter(|&i| self.parents_drained(i))
            .collect()
    }

    /// A read of shard `i` failed: back off (exponentially), and after an expired iterator or
    /// repeated failures start again after the last record fetched.
    fn failed(&mut self, i: usize, failure: Failure) {
        self.shared.stats.count_retry("kinesis");
        let shard = &mut self.shards[i];
        shard.failures += 1;
        if failure.expired || shard.failures >= 3 {
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

    /// Takes what a read of shard `i` returned: its records into the pending queue, its
    /// next iterator, whether it is drained or caught up.
    fn take(&mut self, i: usize, read: Fetched, now_micros: i64) {
        let Fetched {
            output,
            fresh,
            took,
        } = read;
        let shard = &mut self.shards[i];
        if shard.failures > 0 {
            tracing::info!(shard = %shard.id, "kinesis: reading again after {} failed attempts", shard.failures);
        }
        shard.failures = 0;
        shard.adapt_limit(output.records().len(), took);
        if fresh {
            // An iterator after `fetched_sequence` starts at record `fetched`.
            shard.seen = if shard.fetched_sequence.is_some() {
                shard.fetched
            } else {
                Position::START
            };
        }
        shard.next_get = Instant::now() + GET_INTERVAL;
        for record in output.records() {
            if let Some((raw, sequence)) = shard.accept(record, now_micros) {
                self.pending.push_back((i, raw, sequence));
            }
        }
        shard.iterator = output.next_shard_iterator().map(str::to_owned);
        if shard.iterator.is_none() {
            shard.drained = true;
            self.shared.drained.lock().insert(shard.id.clone());
            self.newly_drained.push(shard.id.clone());
        }
        // Caught up once is enough for `--until-done` (like Kafka's end at open).
        if output.records().is_empty() && output.millis_behind_latest() == Some(0) {
            shard.caught_up = true;
        }
    }
}

impl Shard {
    /// Slow answers (a loaded endpoint) ask for fewer records next time, fast full ones for
    /// more: calls stay well inside [`CALL_TIMEOUT`].
    fn adapt_limit(&mut self, records: usize, took: Duration) {
        let full = records as i32 >= self.limit;
        if took > CALL_TIMEOUT / 5 {
            self.limit = (self.limit / 2).max(GET_LIMIT_MIN);
        } else if full && took < CALL_TIMEOUT / 20 {
            self.limit = (self.limit * 2).min(GET_LIMIT);
        }
    }

    /// Counts one record the iterator returned; the raw record and its sequence number when
    /// it is to be read (not fetched before, not before the configured start).
    fn accept(
        &mut self,
        record: &aws_sdk_kinesis::types::Record,
        now_micros: i64,
    ) -> Option<(RawRecord, String)> {
        let index = self.seen.next_offset();
        self.seen = index.next();
        if self.fetched.covers(index) {
            return None;
        }
        self.fetched = index.next();
        let sequence = record.sequence_number().to_owned();
        self.fetched_sequence = Some(sequence.clone());
        let arrival = record
            .approximate_arrival_timestamp()
            .map(|t| t.secs() * 1_000_000 + i64::from(t.subsec_nanos()) / 1000)
            .unwrap_or(now_micros);
        if let Some(before) = self.skip_before {
            if arrival / 1000 < before {
                // Before the start: counted as consumed, not read (no record of this shard
                // is pending before these).
                self.emitted = self.fetched;
                self.last_sequence = Some(sequence);
                return None;
            }
            self.skip_before = None;
        }
        let raw = RawRecord {
            stream: Some(self.stream),
            payload: payload_bytes(record.data().as_ref()).into(),
            partition: self.id.clone(),
            offset: index,
            arrival,
        };
        Some((raw, sequence))
    }
}

/// What one read of a shard needs, taken from it so the reads run concurrently.
struct Read {
    stream_name: String,
    shard_id: String,
    iterator: Option<String>,
    /// Start after this sequence number when a new iterator is needed (else TRIM_HORIZON).
    after: Option<String>,
    limit: i32,
}

impl Read {
    fn of(shard: &Shard) -> Read {
        Read {
            stream_name: shard.stream_name.clone(),
            shard_id: shard.shard_id.clone(),
            iterator: shard.iterator.clone(),
            after: shard.fetched_sequence.clone(),
            limit: shard.limit,
        }
    }
}

/// One GetRecords answer: whether its iterator was new, and how long it took.
struct Fetched {
    output: aws_sdk_kinesis::operation::get_records::GetRecordsOutput,
    fresh: bool,
    took: Duration,
}

/// One GetRecords call (with a new iterator first when there is none), within
/// [`CALL_TIMEOUT`].
async fn read_shard(client: Client, read: Read) -> Result<Fetched, Failure> {
    let call = async {
        let (iterator, fresh) = match read.iterator.clone() {
            Some(iterator) => (iterator, false),
            None => (new_iterator(&client, &read).await?, true),
        };
        let asked = Instant::now();
        client
            .get_records()
            .shard_iterator(iterator)
            .limit(read.limit)
            .send()
            .await
            .map(|output| Fetched {
                output,
                fresh,
                took: asked.elapsed(),
            })
            .map_err(|e| Failure {
                expired: e
                    .as_service_error()
                    .is_some_and(|e| e.is_expired_iterator_exception()),
                throttled: is_throttled(&e),
                timed_out: false,
                message: format!("GetRecords: {}", error_text(&e)),
            })
    };
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

/// An iterator after the last record fetched when its sequence number is known, else from
/// the start (the records already counted are skipped by [`Shard::accept`]).
async fn new_iterator(client: &Client, read: &Read) -> Result<String, Failure> {
    let request = client
        .get_shard_iterator()
        .stream_name(&read.stream_name)
        .shard_id(&read.shard_id);
    let request = match &read.after {
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
    output.shard_iterator().map(str::to_owned).ok_or(Failure {
        expired: false,
        throttled: false,
        timed_out: false,
        message: "GetShardIterator: no shard iterator".to_owned(),
    })
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

    fn take_finished(&mut self) -> Vec<PartitionId> {
        std::mem::take(&mut self.newly_drained)
    }

    fn seek(&mut self, from: &Positions) -> Result<(), SourceError> {
        self.seek_exact(from, &Cursors::new())
    }

    fn cursors_to_look_up(&self, from: &Positions) -> CursorLookup {
        CursorLookup {
            positions: from.clone(),
            commits: CURSOR_SEARCH_COMMITS,
        }
    }

    fn seek_exact(&mut self, from: &Positions, cursors: &Cursors) -> Result<(), SourceError> {
        self.stored = from.clone();
        self.stored_cursors = cursors.clone();
        for shard in &mut self.shards {
            shard.last_sequence = None;
            shard.fetched_sequence = None;
            if let Some(&stored) = from.get(&shard.id) {
                if stored < Position::START {
                    return Err(SourceError::NegativePosition {
                        partition: shard.id.clone(),
                        position: stored,
                    });
                }
                shard.emitted = stored;
                shard.fetched = stored;
                shard.skip_before = None;
                match cursors.get(&shard.id).filter(|c| c.position == stored) {
                    Some(cursor) => {
                        tracing::debug!(shard = %shard.id, position = stored.value(), after = cursor.cursor, "kinesis: resuming after the stored sequence number");
                        shard.last_sequence = Some(cursor.cursor.clone());
                        shard.fetched_sequence = Some(cursor.cursor.clone());
                    }
                    None if stored > Position::START => tracing::info!(
                        shard = %shard.id,
                        position = stored.value(),
                        "kinesis: no stored sequence number for this position: reading from TRIM_HORIZON and skipping {stored} records"
                    ),
                    None => {}
                }
            }
            shard.iterator = None;
            shard.seen = Position::START;
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
            shard.emitted = record.offset.next();
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
            .filter(|s| s.emitted > Position::START)
            .map(|s| (s.id.clone(), s.emitted))
            .collect()
    }

    fn cursors(&self) -> Cursors {
        self.shards
            .iter()
            .filter(|s| s.emitted > Position::START)
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

#[cfg(test)]
mod tests {
    use super::*;

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
