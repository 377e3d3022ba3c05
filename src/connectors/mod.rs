//! Sources: where raw messages come from. Every source implements [`Source`]; the dataflow
//! drives them all the same way.
//!
//! **The registry.** Each connector lives in its folder (`connectors/<name>/`: settings in
//! `mod.rs`, `source.rs`, `producer.rs` for `pinstream emulate`) and is known to the rest of
//! the engine only through [`connectors()`]: the job file's `[[source]] type = "<name>"`
//! sections and `--from <name>:...` values are handed to the connector of that name, and
//! `emulate --to` picks its producer the same way. Adding a source is a folder and one line
//! in [`connectors()`].
//!
//! **Settings are data, started sources are live.** A connector's settings
//! ([`SourceSettings`]) are plain values (compared, cloned, printed); the objects a run needs
//! (a Kafka group membership, the HTTP ingest queue) are built by [`SourceSettings::start`]
//! when the job starts, with the job's own state ([`JobContext`]: its counters, its shutdown
//! flag), never in process-wide statics: one process may run several jobs (tests), and one
//! job may span processes.
//!
//! A source never decides what is committed. It reports positions (one per partition, named
//! by a stable [`PartitionId`]); the sink writes them as Delta `txn` actions in the same commit
//! as the rows they cover, and on start the source is [`Source::seek`]ed to what the tables hold.

pub mod archive;
pub mod emulator;
pub mod file;
pub mod http;
pub mod kafka;
pub mod kinesis;
pub mod lines;
pub mod payloads;

use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use bytes::Bytes;

use crate::stats::Stats;
use crate::stream::Stream;

/// Stable name of one partition of one source (a file, an emulator partition, a Kafka
/// topic-partition, a Kinesis shard). It is the Delta `txn` appId, so it must not change
/// between runs of the same job: `file:pin.jsonl`, `emulator:seed=7:p0/4`, `kafka:abc.pin/3`.
pub type PartitionId = Arc<str>;

/// Where a partition stands: the offset of the next message to read (lines consumed for a
/// file, events emitted for an emulator partition, next offset for Kafka, records counted
/// for a Kinesis shard). It is the Delta `txn` version ([`Position::value`]), so it only
/// grows and is never negative.
///
/// A position is not an [`Offset`]: the record at offset `n` is the `n`-th of its partition
/// (from 0), and once it is read the partition stands at position `n + 1`
/// ([`Offset::next`]). A position `p` covers the offsets below it ([`Position::covers`]);
/// the record read next is at [`Position::next_offset`].
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Position(i64);

impl Position {
    /// The beginning of a partition: nothing read yet.
    pub const START: Position = Position(0);

    /// The position `value` (a stored `txn` version, a count of records, a Kafka offset).
    pub const fn new(value: i64) -> Position {
        Position(value)
    }

    /// The number it stands for: the `txn` version, the Kafka offset to commit.
    pub const fn value(self) -> i64 {
        self.0
    }

    /// The offset of the record read next from here.
    pub const fn next_offset(self) -> Offset {
        Offset(self.0)
    }

    /// Whether the record at `offset` is before this position (read, or committed).
    pub const fn covers(self, offset: Offset) -> bool {
        offset.0 < self.0
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where one record is in its partition: 0-based (a file's line index, an emulator event's
/// `k`, a Kafka offset, a Kinesis record index). See [`Position`] for the difference.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Offset(i64);

impl Offset {
    /// The offset `value`.
    pub const fn new(value: i64) -> Offset {
        Offset(value)
    }

    /// The number it stands for.
    pub const fn value(self) -> i64 {
        self.0
    }

    /// The position once this record is read: the offset after it.
    pub const fn next(self) -> Position {
        Position(self.0 + 1)
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Position per partition. Stored as the `txn` version, so it only grows.
pub type Positions = BTreeMap<PartitionId, Position>;

/// The exact place in a partition a position stands for, in the source's own terms, for
/// sources whose positions do not fit the `txn` version (an i64): a Kinesis sequence number
/// has up to 56 digits, so the version is a count of records and the sequence number of the
/// last one rides along as a cursor. The sink stores each cursor in the same commit as its
/// position (commit metadata); a cursor is only valid for exactly that position.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// The position (the `txn` version) this cursor belongs to.
    pub position: Position,
    /// Where to resume: the source resumes *after* it (Kinesis: AFTER_SEQUENCE_NUMBER).
    pub cursor: String,
}

/// Exact cursors per partition.
pub type Cursors = BTreeMap<PartitionId, Cursor>;

/// The cursors a source resumes from, to look up in the tables at start
/// ([`Source::cursors_to_look_up`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CursorLookup {
    /// The stored positions whose cursors are wanted.
    pub positions: Positions,
    /// How many of each table's newest commits are read looking for them (each is a read of
    /// the log: on S3 a request).
    pub commits: u64,
}

/// One raw message as read, before any parsing.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RawRecord {
    /// The stream, when the source knows it (a topic suffix, a file name token).
    pub stream: Option<Stream>,
    /// The message bytes exactly as received (often a slice of a larger buffer the source
    /// read: see [`lines`]).
    #[serde(with = "payload_serde")]
    pub payload: Bytes,
    /// Which partition it came from and its offset there: quarantine rows name it
    /// (`<partition>@<offset>`).
    pub partition: PartitionId,
    pub offset: Offset,
    /// When the message arrived (source timestamp where the source has one), micros UTC.
    pub arrival: i64,
}

/// A payload as serde bytes: raw records never leave their process, but timely's exchange
/// asks every record type for serde.
mod payload_serde {
    use bytes::Bytes;

    pub fn serialize<S: serde::Serializer>(payload: &Bytes, to: S) -> Result<S::Ok, S::Error> {
        to.serialize_bytes(payload)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(from: D) -> Result<Bytes, D::Error> {
        let bytes: Vec<u8> = serde::Deserialize::deserialize(from)?;
        Ok(bytes.into())
    }
}

impl RawRecord {
    /// The message a line of a file or object holds: the line without its end (`\n`,
    /// `\r\n`); `None` for a blank line, which is no message (SPEC §5).
    pub fn from_line(
        line: Bytes,
        stream: Stream,
        partition: &PartitionId,
        offset: Offset,
        arrival: i64,
    ) -> Option<RawRecord> {
        let mut payload: &[u8] = &line;
        while let [rest @ .., b'\n' | b'\r'] = payload {
            payload = rest;
        }
        if payload.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        Some(RawRecord {
            stream: Some(stream),
            payload: line.slice(..payload.len()),
            partition: partition.clone(),
            offset,
            arrival,
        })
    }

    /// Where the record came from, for the `source` column of quarantine rows.
    pub fn origin(&self) -> String {
        format!("{}@{}", self.partition, self.offset)
    }
}

/// How often a followed directory or archive is listed again, unless its settings say.
pub const DEFAULT_LIST_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// A listing interval as written in a URL (`?interval=10s`) or a job file: a duration above 0.
pub fn parse_list_interval(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(interval) if !interval.is_zero() => Ok(interval),
        _ => Err(format!(
            "interval `{text}`: expected a duration above 0 (`10s`, `500ms`)"
        )),
    }
}

/// What a poll found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollStatus {
    /// Records may follow at once.
    Ready,
    /// Nothing now; more may come later (rate limit, live stream).
    Idle,
    /// Nothing more will ever come (file read, emulator count reached).
    Exhausted,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// `pinstream emulate` could not write its events to `target`.
    #[error("writing to {target}: {source}")]
    Write {
        target: String,
        #[source]
        source: std::io::Error,
    },
    /// `pinstream emulate` could not send its events to `target`.
    #[error("sending to {target}: {reason}")]
    Send { target: String, reason: String },
    /// A connector's client could not be made or refused a call (Kafka: a bad property).
    #[error("{connector} {at}: {source}")]
    Client {
        connector: &'static str,
        /// Where: the brokers, the stream.
        at: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A partition could not be positioned where the tables say it stands.
    #[error("{partition}: cannot resume at position {position}: {source}")]
    Seek {
        partition: PartitionId,
        position: Position,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The tables hold a position no source writes (a damaged or foreign `txn` action).
    #[error("{partition}: stored position {position} is negative")]
    NegativePosition {
        partition: PartitionId,
        position: Position,
    },
    /// A connector's background thread could not be started.
    #[error("starting the {purpose} thread: {source}")]
    Thread {
        purpose: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A tokio runtime for a connector's client could not be started.
    #[error("starting a runtime for {purpose}: {source}")]
    Runtime {
        purpose: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Bad settings: one line saying which and why.
    #[error("{0}")]
    Config(String),
    /// A required service (a Kafka broker) could not be reached after retries.
    #[error("{0}")]
    Unavailable(String),
}

/// A reader of raw messages. Each timely worker opens its own instance (see
/// [`StartedSource::open`]) holding its share of the partitions.
pub trait Source: Send {
    /// The partitions this instance reads. Their positions are looked up in the tables
    /// before the first poll.
    fn partitions(&self) -> Vec<PartitionId>;
    /// Resume after `from`, the positions stored in the last Delta commit (a partition
    /// absent from `from` starts at its beginning).
    fn seek(&mut self, from: &Positions) -> Result<(), SourceError>;
    /// Of the positions stored for this instance's partitions, those the source commits
    /// exact cursors for ([`Source::cursors`]), and how far back to look for them: only these
    /// are looked up in the tables at start (a cursor not found costs that many reads per
    /// table). None by default.
    fn cursors_to_look_up(&self, _from: &Positions) -> CursorLookup {
        CursorLookup::default()
    }
    /// Resume after `from`, using `cursors` (each valid only where its position equals the
    /// stored one) where the source has them.
    fn seek_exact(&mut self, from: &Positions, _cursors: &Cursors) -> Result<(), SourceError> {
        self.seek(from)
    }
    /// Partitions first found since the last call, after the start (a followed archive's
    /// new topic-partition, a file added to a followed directory). The source holds them back
    /// until [`Source::seek_new`] says where they stand: the tables may hold a position for
    /// them (an earlier run read part of them), and reading them from their beginning would
    /// read that part again.
    fn take_new_partitions(&mut self) -> Vec<PartitionId> {
        Vec::new()
    }
    /// Resume the partitions [`Source::take_new_partitions`] handed out after `from`, their
    /// positions in the tables (a partition absent from `from` starts at its beginning).
    fn seek_new(&mut self, _from: &Positions) -> Result<(), SourceError> {
        Ok(())
    }
    /// Append up to `max` records to `out`.
    fn poll(&mut self, max: usize, out: &mut Vec<RawRecord>) -> Result<PollStatus, SourceError>;
    /// The position after the last record returned by `poll`, for every partition read.
    fn positions(&self) -> Positions;
    /// The exact cursor of each partition at the position [`Source::positions`] reports now
    /// (sources that have them).
    fn cursors(&self) -> Cursors {
        Cursors::new()
    }
    /// The positions the tables now hold (called after commits). Sources may acknowledge
    /// them upstream for monitoring (Kafka: the consumer group's offsets, for lag tools);
    /// resuming never depends on it.
    fn committed(&mut self, _positions: &Positions) {}
    /// Partitions that reached their end since the last call (a drained Kinesis shard), for
    /// the other processes of a cluster; they are in [`JobContext::finished`] already.
    fn take_finished(&mut self) -> Vec<PartitionId> {
        Vec::new()
    }
    /// Whether the partitions this instance should read changed since it was opened (a Kafka
    /// group rebalance). The engine then restarts the dataflow from the tables: the
    /// deduplication state of a gained partition must include what its previous owner
    /// committed.
    fn reassigned(&self) -> bool {
        false
    }
    /// Whether another process may read this instance's partitions too (Kafka: a group
    /// rebalance hands them over, and a second process started with the same job reads them
    /// all). Every commit then stores the position of each of them, moved or not: a commit is
    /// refused when another process stored one of the positions it stores since this one last
    /// committed ([`crate::sink::Lake::commit`]'s fence), so two processes that both read a
    /// partition cannot both commit it, whichever commits first.
    fn may_be_shared(&self) -> bool {
        false
    }
}

// ---------------------------------------------------------------------------------------------
// The registry
// ---------------------------------------------------------------------------------------------

/// Every connector. `--from` values and `[[source]]` sections find theirs by name here.
pub fn connectors() -> &'static [&'static dyn Connector] {
    &[
        &archive::Connector,
        &file::Connector,
        &emulator::EmulatorConnector,
        &http::Connector,
        &kafka::Connector,
        &kinesis::Connector,
    ]
}

/// One kind of source: its name and how its settings are written.
pub trait Connector: Sync {
    /// The job file's `type` and the scheme of its `--from` / `--to` values (`kafka`).
    fn name(&self) -> &'static str;
    /// Other job file `type`s naming it (`archive` for `s3`).
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    /// How its `--from` value is written, for error messages (`kafka://<host:port>/<prefix>`).
    fn url_form(&self) -> &'static str;
    /// How an `emulate --to` value is written, when the connector has a producer.
    fn producer_form(&self) -> Option<&'static str> {
        None
    }
    /// Settings from a `--from` value whose scheme is [`Connector::name`]
    /// (`kafka://host:9092/abc`).
    fn parse_url(&self, url: &str) -> Result<SourceSpec, SourceError>;
    /// Settings from a job file's `[[source]]` section (its `type` removed).
    fn parse_section(&self, section: toml::Table) -> Result<SourceSpec, SourceError>;
    /// `pinstream emulate --to <url>`: writes the emulator's events there and returns how
    /// many; `None` when the connector has no producer.
    fn produce(&self, _target: &Produce<'_>) -> Option<Result<u64, SourceError>> {
        None
    }
}

/// The connector a `--from` / `--to` value names: its scheme (`kafka` of `kafka://...`,
/// `file` of `file:<dir>`, `http` of `http`).
pub fn connector_for(url: &str) -> Option<&'static dyn Connector> {
    let scheme = url.split(':').next().unwrap_or_default();
    connector_named(scheme)
}

/// The connector of a job file's `type`.
pub fn connector_named(name: &str) -> Option<&'static dyn Connector> {
    connectors()
        .iter()
        .copied()
        .find(|c| c.name() == name || c.aliases().contains(&name))
}

/// `a, b or c`.
fn forms(forms: impl Iterator<Item = &'static str>) -> String {
    let forms: Vec<&str> = forms.collect();
    match forms.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => forms.join(""),
    }
}

/// Why an `emulate --to` value names no producer: the forms that do.
pub fn no_producer(to: &str) -> SourceError {
    SourceError::Config(format!(
        "emulate --to `{to}`: expected {}",
        forms(connectors().iter().filter_map(|c| c.producer_form()))
    ))
}

/// What `pinstream emulate` asks a producer to write.
pub struct Produce<'a> {
    /// The `--to` value.
    pub to: &'a str,
    /// The events: seed, count, universe.
    pub events: &'a emulator::EmulatorSpec,
    /// Events per second; `None`: as fast as possible.
    pub rate: Option<f64>,
    /// Partitions of each topic created (Kafka).
    pub partitions: i32,
    /// How messages are keyed (Kafka).
    pub key: MessageKey,
    /// Client properties, `key=value` (Kafka).
    pub properties: &'a [String],
    /// Request bodies (HTTP).
    pub http_format: http::HttpFormat,
    /// Requests in flight (HTTP).
    pub concurrency: usize,
    /// Called with the number of events sent so far.
    pub progress: &'a (dyn Fn(u64) + Sync),
}

/// How `emulate` keys the messages it produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MessageKey {
    /// By post index: a post's messages, and every re-send of them, share a partition.
    Post,
    /// No key, as the original emulator's REST-proxy posts: the producer spreads the
    /// messages, so a post's re-sends land on any partition.
    None,
}

/// The job-wide settings a source's own may depend on.
pub struct JobSettings<'a> {
    /// The job's name (Kafka: the default consumer group `pinstream-<name>`).
    pub name: &'a str,
    /// `--until-done`: sources that can end report it.
    pub until_done: bool,
}

/// Partitions that reached their end, shared by the job ([`JobContext::finished`]).
pub type FinishedPartitions = Arc<parking_lot::Mutex<HashSet<PartitionId>>>;

/// A Kafka Connect archive and the live topics in one job: the archive backfills each
/// topic-partition it holds, then hands it over to the live source at the position it ended
/// at, so no offset is read by both. Both read a topic-partition `kafka:<topic>/<p>` on the
/// same worker ([`kafka::owner`]), so the handover is local to a process (a cluster needs no
/// message for it), unlike [`FinishedPartitions`], which must reach every process and carries
/// no position. Shared by the job's sources on every worker of the process, for the whole
/// run (a dataflow restart registers again).
#[derive(Clone, Default)]
pub struct Handover(Arc<parking_lot::Mutex<Handovers>>);

#[derive(Default)]
struct Handovers {
    /// Topics a live source of the job reads.
    live: HashSet<String>,
    /// Topic-partitions a backfill holds: `None` while it reads them, then the position it
    /// ended at (the next offset).
    backfilled: HashMap<PartitionId, Option<Position>>,
}

/// Where a live source stands with a topic-partition ([`Handover::state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backfill {
    /// No backfill holds it: read it from the stored position (or the start).
    None,
    /// A backfill is reading it: wait.
    Reading,
    /// The backfill read everything it held: go on from this position.
    Drained(Position),
}

impl Handover {
    /// A live source reads `topic` (called when the job starts, before any worker reads).
    pub fn live(&self, topic: &str) {
        self.0.lock().live.insert(topic.to_owned());
    }

    /// Whether a live source of the job reads `topic`: a backfill then hands its partitions
    /// over and does not follow them further.
    pub fn is_live(&self, topic: &str) -> bool {
        self.0.lock().live.contains(topic)
    }

    /// A backfill holds `partition` and reads it first (called when it opens, before any
    /// worker reads).
    pub fn backfill(&self, partition: &PartitionId) {
        self.0.lock().backfilled.insert(partition.clone(), None);
    }

    /// The backfill read all it holds of `partition`; `at` is the next offset.
    pub fn drained(&self, partition: &PartitionId, at: Position) {
        self.0.lock().backfilled.insert(partition.clone(), Some(at));
    }

    /// Where `partition` stands for a live source.
    pub fn state(&self, partition: &PartitionId) -> Backfill {
        match self.0.lock().backfilled.get(partition) {
            None => Backfill::None,
            Some(None) => Backfill::Reading,
            Some(Some(at)) => Backfill::Drained(*at),
        }
    }
}

/// What a job gives its sources when they start: its own counters and shutdown flag.
#[derive(Clone, Default)]
pub struct JobContext {
    pub stats: Arc<Stats>,
    pub shutdown: Arc<AtomicBool>,
    /// The job runs as a cluster of processes: every source's partitions are spread over all
    /// the cluster's workers by worker index (no consumer-group coordination is needed, and
    /// none must move partitions behind the dataflow's back).
    pub cluster: bool,
    /// Partitions that reached their end anywhere in the job (a drained Kinesis parent
    /// shard), so a partition that must wait for them (its children) knows, whichever worker
    /// or process read them. In a cluster the dataflow tells every process
    /// ([`Source::take_finished`]).
    pub finished: FinishedPartitions,
    /// Topic-partitions an archive backfills before the live Kafka source reads them.
    pub handover: Handover,
}

/// A connector's settings: plain data, checked when parsed.
pub trait SourceSettings: fmt::Debug + Send + Sync + AnySettings {
    /// Whether the source can end (files, a bounded emulator, Kafka caught up with the end
    /// offsets it had at open); `--until-done` waits for those.
    fn is_bounded(&self) -> bool;
    /// Takes in the job-wide settings (called once, after parsing).
    fn for_job(&mut self, _job: &JobSettings<'_>) {}
    /// Builds what a run of the job needs (called once per run, before the dataflow starts).
    fn start(&self, job: &JobContext) -> Result<Box<dyn StartedSource>, SourceError>;
}

/// Cloning, comparing and downcasting settings behind `dyn`: implemented for every
/// `Clone + PartialEq` settings type, so connectors only derive.
pub trait AnySettings {
    fn clone_box(&self) -> Box<dyn SourceSettings>;
    fn equals(&self, other: &dyn Any) -> bool;
    fn as_any(&self) -> &dyn Any;
}

impl<T: SourceSettings + Clone + PartialEq + 'static> AnySettings for T {
    fn clone_box(&self) -> Box<dyn SourceSettings> {
        Box::new(self.clone())
    }
    fn equals(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<T>() == Some(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A source started for a run: opens each worker's share, holds the connector's live objects.
pub trait StartedSource: Send + Sync {
    /// Opens worker `worker`'s share (of `peers` workers).
    fn open(&self, worker: usize, peers: usize) -> Result<Box<dyn Source>, SourceError>;
    /// The queue the HTTP server's ingest endpoints feed, for a source that reads them.
    fn ingest(&self) -> Option<&http::IngestQueue> {
        None
    }
    /// The job is done and committed: flush what is acknowledged upstream (Kafka: the
    /// group's offsets), waiting at most `timeout`.
    fn finish(&self, _timeout: std::time::Duration) {}
}

/// A source as configured (`--from` or a job file's `[[source]]`), before it is started.
#[derive(Debug)]
pub struct SourceSpec(Box<dyn SourceSettings>);

impl Clone for SourceSpec {
    fn clone(&self) -> Self {
        SourceSpec(self.0.clone_box())
    }
}

impl PartialEq for SourceSpec {
    fn eq(&self, other: &Self) -> bool {
        self.0.equals(other.0.as_any())
    }
}

impl SourceSpec {
    pub fn new(settings: impl SourceSettings + 'static) -> SourceSpec {
        SourceSpec(Box::new(settings))
    }

    /// Parses a `--from` value with the connector of its scheme.
    pub fn parse(text: &str) -> Result<SourceSpec, SourceError> {
        match connector_for(text) {
            Some(connector) => connector.parse_url(text),
            None => Err(SourceError::Config(format!(
                "unknown source `{text}`: expected {}",
                forms(connectors().iter().map(|c| c.url_form()))
            ))),
        }
    }

    /// Parses a job file's `[[source]]` section with the connector its `type` names.
    pub fn from_section(mut section: toml::Table) -> Result<SourceSpec, SourceError> {
        let names = || {
            connectors()
                .iter()
                .map(|c| format!("`{}`", c.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let kind = match section.remove("type") {
            Some(toml::Value::String(kind)) => kind,
            Some(other) => {
                return Err(SourceError::Config(format!(
                    "source type {other}: expected one of {}",
                    names()
                )));
            }
            None => {
                return Err(SourceError::Config(format!(
                    "missing field `type` in a [[source]] (one of {})",
                    names()
                )));
            }
        };
        match connector_named(&kind) {
            Some(connector) => connector.parse_section(section),
            None => Err(SourceError::Config(format!(
                "unknown source type `{kind}`, expected one of {}",
                names()
            ))),
        }
    }

    /// The settings, if they are of type `T` (tests, tools).
    pub fn settings<T: 'static>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref()
    }

    pub fn is_bounded(&self) -> bool {
        self.0.is_bounded()
    }

    pub fn for_job(&mut self, job: &JobSettings<'_>) {
        self.0.for_job(job)
    }

    pub fn start(&self, job: &JobContext) -> Result<Box<dyn StartedSource>, SourceError> {
        self.0.start(job)
    }
}

/// Deserializes a job file section into a connector's own section type (which should deny
/// unknown fields), as one line.
pub fn section<T: serde::de::DeserializeOwned>(
    kind: &str,
    section: toml::Table,
) -> Result<T, SourceError> {
    section.try_into().map_err(|e: toml::de::Error| {
        SourceError::Config(format!("{kind} source: {}", e.message().trim_end()))
    })
}

/// Sources started for a run, in the job's order.
pub fn start_all(
    specs: &[SourceSpec],
    job: &JobContext,
) -> Result<Vec<Arc<dyn StartedSource>>, SourceError> {
    specs
        .iter()
        .map(|spec| Ok(Arc::from(spec.start(job)?)))
        .collect()
}

/// What the sources' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use super::{PartitionId, PollStatus, Position, RawRecord, Source};

    /// Records as (partition, offset, payload text), for comparing what a source read.
    pub fn described(records: Vec<RawRecord>) -> Vec<(String, i64, String)> {
        records
            .into_iter()
            .map(|r| {
                (
                    r.partition.to_string(),
                    r.offset.value(),
                    String::from_utf8(r.payload.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    /// `source` lists `partition` (new since the start) on its next poll, holds its records
    /// back while the driver looks up where the tables say it stands (`take_new_partitions`
    /// names it once), and resumes it at `stored`.
    pub fn resumes_new_partition_at(source: &mut dyn Source, partition: &str, stored: i64) {
        let mut out = Vec::new();
        assert_eq!(source.poll(10, &mut out).unwrap(), PollStatus::Idle); // lists
        assert_eq!(source.poll(10, &mut out).unwrap(), PollStatus::Idle); // held back
        assert!(out.is_empty());
        assert_eq!(
            source.take_new_partitions(),
            vec![PartitionId::from(partition)]
        );
        assert!(source.take_new_partitions().is_empty());
        source
            .seek_new(&[(partition.into(), Position::new(stored))].into())
            .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_finds_connectors_by_scheme_and_type() {
        let mut names: Vec<_> = connectors().iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), connectors().len(), "names are unique");
        for (url, name) in [
            ("file:/data", "file"),
            ("emulator", "emulator"),
            ("emulator:events=5", "emulator"),
            ("http", "http"),
            ("http://127.0.0.1:8080", "http"),
            ("kafka://h:9092/abc", "kafka"),
            ("kinesis://abc", "kinesis"),
            ("s3://bucket/topics/", "s3"),
        ] {
            assert_eq!(connector_for(url).map(|c| c.name()), Some(name), "{url}");
        }
        assert_eq!(connector_named("archive").map(|c| c.name()), Some("s3"));
        assert!(connector_for("ftp://x").is_none());
        let error = SourceSpec::parse("ftp://x").unwrap_err().to_string();
        for connector in connectors() {
            assert!(error.contains(connector.url_form()), "{error}");
        }
        let error = no_producer("emulator:events=1").to_string();
        assert!(
            error.contains("file:<dir>") && error.contains(" or "),
            "{error}"
        );
    }

    #[test]
    fn settings_compare_and_clone_as_data() {
        let spec = SourceSpec::parse("emulator:events=5,seed=7").unwrap();
        assert_eq!(spec.clone(), spec);
        assert_ne!(spec, SourceSpec::parse("emulator:events=5,seed=8").unwrap());
        assert_ne!(spec, SourceSpec::parse("file:/data").unwrap());
        assert!(spec.is_bounded());
    }

    #[test]
    fn a_record_leaves_its_partition_at_the_offset_after_it() {
        let position = Position::START;
        let offset = position.next_offset();
        assert_eq!(offset, Offset::new(0));
        assert!(!position.covers(offset));
        let after = offset.next();
        assert_eq!(after, Position::new(1));
        assert!(after.covers(offset));
        assert!(!after.covers(after.next_offset()));
        assert_eq!(after.value(), 1);
    }

    #[test]
    fn positions_and_offsets_keep_their_plain_number_representations() {
        // Cursors in commitInfo, replies of the HTTP ingest: plain JSON numbers.
        let cursor = Cursor {
            position: Position::new(12),
            cursor: "4965".into(),
        };
        let json = serde_json::to_string(&cursor).unwrap();
        assert_eq!(json, r#"{"position":12,"cursor":"4965"}"#);
        assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), cursor);
        assert_eq!(serde_json::to_string(&Offset::new(7)).unwrap(), "7");
        // Quarantine rows: `<partition>@<offset>`.
        let record = RawRecord {
            stream: None,
            payload: Bytes::from_static(b"{\"a\":[1]}\xff"),
            partition: "kafka:abc.pin/3".into(),
            offset: Offset::new(41),
            arrival: 0,
        };
        assert_eq!(record.origin(), "kafka:abc.pin/3@41");
        assert_eq!(Position::new(42).to_string(), "42");
        // A payload reads back as the bytes it was, whatever they are.
        let back: RawRecord =
            serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
        assert_eq!(back.payload, record.payload);
    }
}
