//! Counters the engine keeps while it runs: read by the progress line (and served as metrics).

use std::sync::atomic::{AtomicU64, Ordering};

/// Totals since start. Relaxed atomics: each is an independent count.
#[derive(Debug, Default)]
pub struct Stats {
    /// Raw messages read from all sources.
    pub records_in: AtomicU64,
    /// Messages that cleaned to a row (before deduplication).
    pub clean: AtomicU64,
    /// Messages that went to quarantine.
    pub quarantined: AtomicU64,
    /// Rows dropped because the table already holds them.
    pub duplicates: AtomicU64,
    /// Rows in committed data files, all tables.
    pub rows_committed: AtomicU64,
    /// Delta commits made (one per table per micro-batch).
    pub commits: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
