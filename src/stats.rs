//! Counters the engine keeps while it runs: read by the progress line, `/metrics`, the
//! dashboard and `--summary`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::stream::Stream;

/// Freshness samples kept for quantiles (a sliding window of the most recent ones).
const FRESHNESS_SAMPLES: usize = 10_000;

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
    pub clean_by_stream: [AtomicU64; 3],
    /// Quarantined messages per stream (pin, geo, user, unknown).
    pub quarantined_by_stream: [AtomicU64; 4],
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
    /// How long the last batch's commits (all tables) took, micros.
    pub last_batch_latency_micros: AtomicU64,
    /// Time from a record's arrival to the aggregates including it being published.
    pub freshness: Mutex<VecDeque<u64>>,
    /// Retries of transient source errors (connection refused or reset, timeouts, 5xx,
    /// throttling) per source kind, in the order of [`SOURCE_KINDS`].
    pub source_retries: [AtomicU64; SOURCE_KINDS.len()],
    /// The Kafka brokers' reachability, as every Kafka client of the job sees it.
    pub kafka_outage: Outage,
}

/// A service being unreachable: since when, and how many outages began since start. Each
/// outage is logged once when it begins and once when it ends, by its source.
#[derive(Debug, Default)]
pub struct Outage {
    down_since: Mutex<Option<Instant>>,
    count: AtomicU64,
}

impl Outage {
    /// Marks the service down; `true` when this begins an outage (it was up).
    pub fn down(&self) -> bool {
        let mut since = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        if since.is_some() {
            return false;
        }
        *since = Some(Instant::now());
        self.count.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Marks the service up; how long it was down, when this ends an outage.
    pub fn up(&self) -> Option<Duration> {
        let mut since = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        since.take().map(|at| at.elapsed())
    }

    /// `(down now, outages since start)`, for `/metrics`.
    pub fn state(&self) -> (bool, u64) {
        let down = self
            .down_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        (down, self.count.load(Ordering::Relaxed))
    }
}

/// Source kinds, as labelled in metrics (`kind` in `kind:...` partition ids).
pub const SOURCE_KINDS: [&str; 6] = ["file", "emulator", "kafka", "kinesis", "http", "other"];

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// The slot of a stream in the `*_by_stream` arrays (`None`: unknown stream).
    pub fn stream_slot(stream: Option<Stream>) -> usize {
        match stream {
            Some(Stream::Pin) => 0,
            Some(Stream::Geo) => 1,
            Some(Stream::User) => 2,
            None => 3,
        }
    }

    /// The slot of a partition id's source kind in `records_by_source`.
    pub fn source_slot(partition: &str) -> usize {
        let kind = partition.split(':').next().unwrap_or_default();
        SOURCE_KINDS
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(SOURCE_KINDS.len() - 1)
    }

    /// Counts one retry of a transient error of source kind `kind` (`kinesis`, `kafka`, ...).
    pub fn count_retry(&self, kind: &str) {
        Stats::add(&self.source_retries[Stats::source_slot(kind)], 1);
    }

    pub fn record_freshness(&self, micros: u64) {
        let mut samples = self.freshness.lock().unwrap_or_else(|p| p.into_inner());
        if samples.len() == FRESHNESS_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(micros);
    }

    /// Quantiles `qs` (0..=1) of the recent freshness samples, micros; `None` before any.
    pub fn freshness_quantiles(&self, qs: &[f64]) -> Option<Vec<u64>> {
        let mut samples: Vec<u64> = self
            .freshness
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
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
