//! Counters the engine keeps while it runs: read by the progress line, `/metrics`, the
//! dashboard and `--summary`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::stream::Stream;

/// Freshness samples kept for quantiles (a sliding window of the most recent ones).
const FRESHNESS_SAMPLES: usize = 10_000;

/// The span of the [`Recent`] figures: `/metrics`' `*_recent_*` gauges describe the last
/// this-long, so a scrape every 10 s sees each sample once (a soak's samples).
pub const RECENT_WINDOW: Duration = Duration::from_secs(10);
/// The most samples a [`Recent`] keeps (memory stays bounded whatever the sample rate).
const RECENT_SAMPLES: usize = 100_000;

/// Totals since start. Relaxed atomics: each is an independent count.
#[derive(Debug, Default)]
pub struct Stats {
    /// Raw messages read from all sources.
    pub records_in: AtomicU64,
    /// Messages that cleaned to a row (before deduplication).
    pub clean: AtomicU64,
    /// Messages that went to quarantine.
    pub quarantined: AtomicU64,
    /// Clean messages per stream (pin, geo, user).
    pub clean_by_stream: [AtomicU64; STREAMS],
    /// Quarantined messages per stream (pin, geo, user, unknown).
    pub quarantined_by_stream: [AtomicU64; STREAMS + 1],
    /// Raw messages per source kind, in the order of [`SOURCE_KINDS`].
    pub records_by_source: [AtomicU64; SOURCE_KINDS.len()],
    /// Rows dropped because the table already holds them.
    pub duplicates: AtomicU64,
    /// Rows in committed data files, all tables.
    pub rows_committed: AtomicU64,
    /// Delta commits made (one per table per micro-batch).
    pub commits: AtomicU64,
    /// Commits refused because another process committed the same partitions meanwhile.
    pub fenced: AtomicU64,
    /// Times the dataflow started again from the tables (rebalances, fenced commits).
    pub restarts: AtomicU64,
    /// The sum of the source positions this process has committed (for a job reading every
    /// Kafka partition from offset 0: the messages the tables cover). `records_in` minus this
    /// is how far reading runs ahead of the commits.
    pub positions_committed: AtomicU64,
    /// Micro-batches committed.
    pub batches: AtomicU64,
    /// Time reading was held because the commits were behind (backpressure), micros, a hold
    /// in progress included: the first worker of the process times it.
    pub backpressure_micros: AtomicU64,
    /// How long the last batch's commits (all tables) took, micros.
    pub last_batch_latency_micros: AtomicU64,
    /// Time from a record's arrival to the aggregates including it being published.
    pub freshness: Mutex<VecDeque<u64>>,
    /// The same freshness samples, micros, of the last [`RECENT_WINDOW`] only: a change
    /// shows within seconds, where `freshness` (the last 10,000 samples) may span minutes.
    pub recent_freshness: Recent,
    /// How long each batch's commits (all tables) took, micros, over the last
    /// [`RECENT_WINDOW`] (`last_batch_latency_micros` is the last batch only).
    pub recent_commit_latency: Recent,
    /// Bytes this process sent to the other processes of its cluster (timely's messages with
    /// their headers).
    pub cluster_bytes_sent: Arc<AtomicU64>,
    /// In a cluster: the latest [`Counters`] each other process sent, by process index (the
    /// HTTP API shows the cluster's totals on every process).
    pub peers: Mutex<BTreeMap<usize, Counters>>,
    /// Retries of transient source errors (connection refused or reset, timeouts, 5xx,
    /// throttling) per source kind, in the order of [`SOURCE_KINDS`].
    pub source_retries: [AtomicU64; SOURCE_KINDS.len()],
    /// Archive objects (or parts of them) that could not be read and were skipped: an
    /// unreadable gzip stream, a Kafka Connect name that does not parse, an object older
    /// than what was already read. Each is also logged once.
    pub bad_objects: AtomicU64,
    /// Attempts to write the aggregate tables that failed (each is retried at the next
    /// interval; a second failure in a row is logged).
    pub aggregate_table_failures: AtomicU64,
    /// The Kafka brokers' reachability, as every Kafka client of the job sees it.
    pub kafka_outage: Outage,
    /// HTTP ingest requests refused, by reason, in the order of [`INGEST_REFUSALS`].
    pub ingest_refused: [AtomicU64; INGEST_REFUSALS.len()],
    /// HTTP ingest over capacity (refusing with 429/503): logged when it begins and ends.
    pub ingest_overload: Outage,
    /// When the last batch was committed (every table), micros since the Unix epoch; 0
    /// before the first.
    pub last_commit_micros: AtomicU64,
    /// Messages read from the Kafka brokers (tombstones included). `records_by_source` counts
    /// a Kafka Connect archive's lines under `kafka` too: this tells the two apart.
    pub kafka_messages: AtomicU64,
}

/// The lake's reachability, as every S3 request of this process sees it
/// ([`crate::sink::store`]): one per process, because the object stores under the tables are
/// built by delta-rs's process-wide factory, which knows no run.
pub fn lake_outage() -> &'static Outage {
    static LAKE: Outage = Outage::new();
    &LAKE
}

/// Why HTTP ingest requests are refused, as labelled in metrics: a body or a batch over the
/// limits (413), too many requests in flight (429), a full queue (503), the engine stopping
/// (503), a commit slower than the request waits (504).
pub const INGEST_REFUSALS: [&str; 6] = [
    "too_large",
    "too_many_records",
    "busy",
    "queue_full",
    "stopping",
    "timeout",
];

/// A service being unreachable: since when, and how many outages began since start. Each
/// outage is logged once when it begins and once when it ends, by its source.
#[derive(Debug, Default)]
pub struct Outage {
    down_since: Mutex<Option<Instant>>,
    count: AtomicU64,
}

impl Outage {
    pub const fn new() -> Outage {
        Outage {
            down_since: parking_lot::const_mutex(None),
            count: AtomicU64::new(0),
        }
    }

    /// Marks the service down; `true` when this begins an outage (it was up).
    pub fn down(&self) -> bool {
        let mut since = self.down_since.lock();
        if since.is_some() {
            return false;
        }
        *since = Some(Instant::now());
        self.count.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Marks the service up; how long it was down, when this ends an outage.
    pub fn up(&self) -> Option<Duration> {
        let mut since = self.down_since.lock();
        since.take().map(|at| at.elapsed())
    }

    /// `(down now, outages since start)`, for `/metrics`.
    pub fn state(&self) -> (bool, u64) {
        let down = self.down_since.lock().is_some();
        (down, self.count.load(Ordering::Relaxed))
    }
}

/// Samples of the last [`RECENT_WINDOW`], each stamped with when it was taken.
#[derive(Debug, Default)]
pub struct Recent {
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl Recent {
    pub fn record(&self, value: u64) {
        let now = Instant::now();
        let mut samples = self.samples.lock();
        while samples.front().is_some_and(|(at, _)| {
            now.duration_since(*at) > RECENT_WINDOW || samples.len() >= RECENT_SAMPLES
        }) {
            samples.pop_front();
        }
        samples.push_back((now, value));
    }

    /// Quantiles `qs` (0..=1) of the samples of the last [`RECENT_WINDOW`]; `None` when
    /// there was none.
    pub fn quantiles(&self, qs: &[f64]) -> Option<Vec<u64>> {
        let now = Instant::now();
        let samples = self
            .samples
            .lock()
            .iter()
            .filter(|(at, _)| now.duration_since(*at) <= RECENT_WINDOW)
            .map(|(_, value)| *value)
            .collect();
        quantiles(samples, qs)
    }
}

/// Quantiles `qs` (0..=1) of `samples` (nearest rank); `None` when empty.
fn quantiles(mut samples: Vec<u64>, qs: &[f64]) -> Option<Vec<u64>> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let last = samples.len() - 1;
    Some(
        qs.iter()
            .map(|q| samples[((q.clamp(0.0, 1.0) * last as f64).round() as usize).min(last)])
            .collect(),
    )
}

/// A process's totals at one moment, as sent to the other processes of a cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub records_in: u64,
    pub clean: u64,
    pub quarantined: u64,
    pub duplicates: u64,
    pub rows_committed: u64,
    pub commits: u64,
    pub batches: u64,
    pub clean_by_stream: [u64; STREAMS],
    pub quarantined_by_stream: [u64; STREAMS + 1],
    pub records_by_source: [u64; SOURCE_KINDS.len()],
    pub last_batch_latency_micros: u64,
    /// Freshness p50 and p99 (micros), on the process that publishes the aggregates.
    pub freshness: Option<[u64; 2]>,
}

impl Counters {
    /// Adds `other`'s counts (a cluster's totals are the sums of its processes'; the commit
    /// latency and freshness come from the one process that commits and publishes).
    pub fn add(&mut self, other: &Counters) {
        let sum = |a: &mut [u64], b: &[u64]| a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        self.records_in += other.records_in;
        self.clean += other.clean;
        self.quarantined += other.quarantined;
        self.duplicates += other.duplicates;
        self.rows_committed += other.rows_committed;
        self.commits += other.commits;
        self.batches += other.batches;
        sum(&mut self.clean_by_stream, &other.clean_by_stream);
        sum(
            &mut self.quarantined_by_stream,
            &other.quarantined_by_stream,
        );
        sum(&mut self.records_by_source, &other.records_by_source);
        self.last_batch_latency_micros = self
            .last_batch_latency_micros
            .max(other.last_batch_latency_micros);
        self.freshness = self.freshness.or(other.freshness);
    }
}

/// Slots of the `*_by_stream` counters: one per stream (in [`Stream::ALL`] order), and one
/// more for messages of no known stream in the quarantine counters.
pub const STREAMS: usize = Stream::ALL.len();

/// Source kinds, as labelled in metrics (`kind` in `kind:...` partition ids).
pub const SOURCE_KINDS: [&str; 6] = ["file", "emulator", "kafka", "kinesis", "http", "other"];

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts an HTTP ingest refusal of `reason` (one of [`INGEST_REFUSALS`]).
    pub fn ingest_refused(&self, reason: &str) {
        if let Some(slot) = INGEST_REFUSALS.iter().position(|r| *r == reason) {
            Stats::add(&self.ingest_refused[slot], 1);
        }
    }

    /// HTTP ingest refusals of `reason` so far.
    pub fn ingest_refusals(&self, reason: &str) -> u64 {
        INGEST_REFUSALS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |slot| Stats::get(&self.ingest_refused[slot]))
    }

    /// The slot of a stream in the `*_by_stream` arrays (`None`: unknown stream).
    /// The label of every `*_by_stream` slot, in slot order: the streams, then `unknown`.
    pub fn stream_labels() -> impl Iterator<Item = &'static str> {
        Stream::ALL.into_iter().map(Stream::name).chain(["unknown"])
    }

    pub fn stream_slot(stream: Option<Stream>) -> usize {
        stream.map_or(STREAMS, |stream| {
            Stream::ALL
                .iter()
                .position(|s| *s == stream)
                .unwrap_or(STREAMS)
        })
    }

    /// The slot of a partition id's source kind in `records_by_source`.
    pub fn source_slot(partition: &str) -> usize {
        let kind = partition.split(':').next().unwrap_or_default();
        SOURCE_KINDS
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(SOURCE_KINDS.len() - 1)
    }

    /// This process's totals now.
    pub fn counters(&self) -> Counters {
        let all = |counters: &[AtomicU64]| counters.iter().map(Stats::get).collect::<Vec<_>>();
        let mut totals = Counters {
            records_in: Stats::get(&self.records_in),
            clean: Stats::get(&self.clean),
            quarantined: Stats::get(&self.quarantined),
            duplicates: Stats::get(&self.duplicates),
            rows_committed: Stats::get(&self.rows_committed),
            commits: Stats::get(&self.commits),
            batches: Stats::get(&self.batches),
            last_batch_latency_micros: Stats::get(&self.last_batch_latency_micros),
            freshness: self.freshness_quantiles(&[0.5, 0.99]).map(|q| [q[0], q[1]]),
            ..Counters::default()
        };
        totals
            .clean_by_stream
            .copy_from_slice(&all(&self.clean_by_stream));
        totals
            .quarantined_by_stream
            .copy_from_slice(&all(&self.quarantined_by_stream));
        totals
            .records_by_source
            .copy_from_slice(&all(&self.records_by_source));
        totals
    }

    /// The totals of the whole job: this process's, plus the latest of every other process
    /// of a cluster.
    pub fn job_counters(&self) -> Counters {
        let mut totals = self.counters();
        for peer in self.peers.lock().values() {
            totals.add(peer);
        }
        totals
    }

    /// Counts one retry of a transient error of source kind `kind` (`kinesis`, `kafka`, ...).
    pub fn count_retry(&self, kind: &str) {
        Stats::add(&self.source_retries[Stats::source_slot(kind)], 1);
    }

    pub fn record_freshness(&self, micros: u64) {
        let mut samples = self.freshness.lock();
        if samples.len() == FRESHNESS_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(micros);
        drop(samples);
        self.recent_freshness.record(micros);
    }

    /// Quantiles `qs` (0..=1) of the recent freshness samples, micros; `None` before any.
    pub fn freshness_quantiles(&self, qs: &[f64]) -> Option<Vec<u64>> {
        quantiles(self.freshness.lock().iter().copied().collect(), qs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_quantiles_over_recent_samples() {
        let stats = Stats::default();
        assert_eq!(stats.freshness_quantiles(&[0.5]), None);
        for micros in 1..=100 {
            stats.record_freshness(micros);
        }
        assert_eq!(
            stats.freshness_quantiles(&[0.0, 0.5, 0.99, 1.0]),
            Some(vec![1, 51, 99, 100])
        );
    }

    #[test]
    fn recent_quantiles_cover_the_window_only() {
        let recent = Recent::default();
        assert_eq!(recent.quantiles(&[0.99]), None);
        // A sample older than the window is not counted, and is dropped by the next record.
        recent
            .samples
            .lock()
            .push_back((Instant::now() - RECENT_WINDOW * 2, 1_000_000));
        for micros in 1..=100 {
            recent.record(micros);
        }
        assert_eq!(recent.quantiles(&[0.5, 0.99, 1.0]), Some(vec![51, 99, 100]));
        assert_eq!(recent.samples.lock().len(), 100);
    }

    #[test]
    fn job_counters_add_the_peers() {
        let stats = Stats::default();
        Stats::add(&stats.records_in, 5);
        Stats::add(&stats.clean_by_stream[1], 2);
        let peer = Counters {
            records_in: 7,
            clean_by_stream: [0, 3, 0],
            freshness: Some([1, 2]),
            ..Counters::default()
        };
        stats.peers.lock().insert(1, peer);
        let job = stats.job_counters();
        assert_eq!(job.records_in, 12);
        assert_eq!(job.clean_by_stream, [0, 5, 0]);
        assert_eq!(job.freshness, Some([1, 2]));
    }

    #[test]
    fn slots() {
        assert_eq!(Stats::source_slot("file:pin.jsonl"), 0);
        assert_eq!(Stats::source_slot("kafka:abc.pin/3"), 2);
        assert_eq!(Stats::source_slot("weird"), 5);
        assert_eq!(Stats::stream_slot(None), 3);
    }

    #[test]
    fn outages_begin_and_end_once() {
        let outage = Outage::default();
        assert!(outage.down());
        assert!(!outage.down());
        assert_eq!(outage.state(), (true, 1));
        assert!(outage.up().is_some());
        assert!(outage.up().is_none());
        assert_eq!(outage.state(), (false, 1));
    }
}
