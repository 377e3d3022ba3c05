//! Sources: where raw messages come from. Every source implements [`Source`]; the dataflow
//! drives them all the same way, so adding Kafka, Kinesis or HTTP touches nothing else.
//!
//! A source never decides what is committed. It reports positions (one per partition, named
//! by a stable [`PartitionId`]); the sink writes them as Delta `txn` actions in the same commit
//! as the rows they cover, and on start the source is [`Source::seek`]ed to what the tables hold.

pub mod emulator;
pub mod file;
pub mod http;
pub mod kafka;
pub mod kinesis;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::stream::Stream;

/// Stable name of one partition of one source (a file, an emulator partition, a Kafka
/// topic-partition, a Kinesis shard). It is the Delta `txn` appId, so it must not change
/// between runs of the same job: `file:pin.jsonl`, `emulator:seed=7:p0/4`, `kafka:abc.pin/3`.
pub type PartitionId = Arc<str>;

/// Position per partition: the offset of the next message to read (lines consumed for a
/// file, events emitted for an emulator partition, next offset for Kafka). Stored as the `txn`
/// version, so it only grows.
pub type Positions = BTreeMap<PartitionId, i64>;

/// The exact place in a partition a position stands for, in the source's own terms, for
/// sources whose positions do not fit the `txn` version (an i64): a Kinesis sequence number
/// has up to 56 digits, so the version is a count of records and the sequence number of the
/// last one rides along as a cursor. The sink stores each cursor in the same commit as its
/// position (commit metadata); a cursor is only valid for exactly that position.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// The position (the `txn` version) this cursor belongs to.
    pub position: i64,
    /// Where to resume: the source resumes *after* it (Kinesis: AFTER_SEQUENCE_NUMBER).
    pub cursor: String,
}

/// Exact cursors per partition.
pub type Cursors = BTreeMap<PartitionId, Cursor>;

/// One raw message as read, before any parsing.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RawRecord {
    /// The stream, when the source knows it (a topic suffix, a file name token).
    pub stream: Option<Stream>,
    /// The message bytes exactly as received.
    pub payload: Vec<u8>,
    /// Which partition it came from and its offset there: quarantine rows name it
    /// (`<partition>@<offset>`).
    pub partition: PartitionId,
    pub offset: i64,
    /// When the message arrived (source timestamp where the source has one), micros UTC.
    pub arrival: i64,
}

impl RawRecord {
    /// Where the record came from, for the `source` column of quarantine rows.
    pub fn origin(&self) -> String {
        format!("{}@{}", self.partition, self.offset)
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
    #[error("{0}")]
    Config(String),
    /// A required service (a Kafka broker) could not be reached after retries.
    #[error("{0}")]
    Unavailable(String),
}

/// A reader of raw messages. Each timely worker opens its own instance (see
/// [`SourceSpec::open`]) holding its share of the partitions.
pub trait Source: Send {
    /// The partitions this instance reads. Their positions are looked up in the tables
    /// before the first poll.
    fn partitions(&self) -> Vec<PartitionId>;
    /// Resume after `from`, the positions stored in the last Delta commit (a partition
    /// absent from `from` starts at its beginning).
    fn seek(&mut self, from: &Positions) -> Result<(), SourceError>;
    /// Whether positions come with exact cursors ([`Source::cursors`]); only then are they
    /// looked up in the tables at start.
    fn uses_cursors(&self) -> bool {
        false
    }
    /// Resume after `from`, using `cursors` (each valid only where its position equals the
    /// stored one) where the source has them.
    fn seek_exact(&mut self, from: &Positions, _cursors: &Cursors) -> Result<(), SourceError> {
        self.seek(from)
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
    /// Whether the partitions this instance should read changed since it was opened (a Kafka
    /// group rebalance). The engine then restarts the dataflow from the tables: the
    /// deduplication state of a gained partition must include what its previous owner
    /// committed.
    fn reassigned(&self) -> bool {
        false
    }
}

/// Retries of transient source errors (connection refused or reset, timeouts, 5xx,
/// throttling), per source kind in the order of [`crate::stats::SOURCE_KINDS`]:
/// `/metrics` shows them as `pinstream_source_retries_total`. Process-wide, because a
/// source is opened per worker and knows nothing of the engine's `Stats`.
pub static RETRIES: [AtomicU64; crate::stats::SOURCE_KINDS.len()] =
    [const { AtomicU64::new(0) }; crate::stats::SOURCE_KINDS.len()];

/// Counts one retry of source kind `kind` (`kinesis`, `kafka`, ...).
pub fn count_retry(kind: &str) {
    let slot = crate::stats::Stats::source_slot(kind);
    RETRIES[slot].fetch_add(1, Ordering::Relaxed);
}

/// A source as configured (`--from` or a job file's `[[source]]`), before it is opened.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSpec {
    /// `file:<dir>`
    File { dir: std::path::PathBuf },
    /// `emulator:events=<n>,seed=<s>,rate=<per-second>`
    Emulator(emulator::EmulatorSpec),
    /// `kafka://<host:port>/<topic-prefix>`
    Kafka(kafka::KafkaSpec),
    /// `kinesis://<prefix>[?endpoint=..&region=..&start=..]`
    Kinesis(kinesis::KinesisSpec),
    /// `http`: messages sent to the engine's HTTP server (REST-proxy and API-Gateway bodies).
    Http(http::IngestQueue),
}

impl SourceSpec {
    /// Parses a `--from` value.
    pub fn parse(text: &str) -> Result<SourceSpec, SourceError> {
        if let Some(dir) = text.strip_prefix("file:") {
            if dir.is_empty() {
                return Err(SourceError::Config(
                    "file source needs a directory: file:<dir>".into(),
                ));
            }
            Ok(SourceSpec::File { dir: dir.into() })
        } else if text == "emulator" {
            Ok(SourceSpec::Emulator(emulator::EmulatorSpec::default()))
        } else if let Some(settings) = text.strip_prefix("emulator:") {
            Ok(SourceSpec::Emulator(emulator::EmulatorSpec::parse(
                settings,
            )?))
        } else if text == "http" {
            Ok(SourceSpec::Http(http::IngestQueue::default()))
        } else if text.starts_with("kafka://") {
            Ok(SourceSpec::Kafka(kafka::KafkaSpec::parse(text)?))
        } else if text.starts_with("kinesis://") {
            Ok(SourceSpec::Kinesis(kinesis::KinesisSpec::parse(text)?))
        } else {
            Err(SourceError::Config(format!(
                "unknown source `{text}`: expected file:<dir>, kafka://<host:port>/<topic-prefix>, kinesis://<prefix>, http or emulator:events=<n>,seed=<s>,rate=<per-second>"
            )))
        }
    }

    /// Opens worker `worker`'s share (of `peers` workers) of this source.
    pub fn open(&self, worker: usize, peers: usize) -> Result<Box<dyn Source>, SourceError> {
        Ok(match self {
            SourceSpec::File { dir } => Box::new(file::FileSource::new(dir, worker, peers)?),
            SourceSpec::Emulator(spec) => {
                Box::new(emulator::EmulatorSource::new(spec, worker, peers))
            }
            SourceSpec::Kafka(spec) => Box::new(kafka::KafkaSource::new(spec, worker, peers)?),
            SourceSpec::Kinesis(spec) => {
                Box::new(kinesis::KinesisSource::new(spec, worker, peers)?)
            }
            SourceSpec::Http(queue) => Box::new(http::HttpSource::new(queue, worker, peers)),
        })
    }

    /// Whether the source can end (files, a bounded emulator, Kafka caught up with the end
    /// offsets it had at open); `--until-done` waits for those.
    pub fn is_bounded(&self) -> bool {
        match self {
            SourceSpec::File { .. } => true,
            SourceSpec::Emulator(spec) => spec.events.is_some(),
            SourceSpec::Kafka(_) => true,
            SourceSpec::Kinesis(_) => true,
            SourceSpec::Http(_) => false,
        }
    }
}
