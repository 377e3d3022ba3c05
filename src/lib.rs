//! pinstream: pin/geo/user posting events -> cleaned, deduplicated, exactly-once Delta tables,
//! on timely dataflow.

// The layers, bottom up: each module imports only from the ones above it in this list.

// State that grows with the distinct data without stopping a worker to copy it.
pub mod grow;

// The three input streams.
pub mod stream;

// The engine's counters: every layer reports into them.
pub mod stats;

// One job over several processes: the hosts, the rendezvous, a lost peer.
pub mod cluster;

// SPEC §2 cleaning rules, one file per stream, and the clean rows.
pub mod clean;

// The output tables and the rows bound for them (clean or quarantined, keyed, distinct).
pub mod table;

// The built-in event generator (data for `emulate`, the emulator source, benchmarks).
pub mod emulator;

// Where raw messages come from: one folder per connector behind one trait.
pub mod connectors;

// Delta Lake tables: appends with positions, maintenance.
pub mod sink;

// SPEC §3 queries, one file per query, maintained incrementally; their snapshot tables.
pub mod analytics;

// Job files and flags -> one checked Config.
pub mod config;

// The timely graph: clean -> dedup -> write -> commit, analytics beside it.
pub mod dataflow;

// HTTP: API, dashboard, metrics, ingest.
pub mod serve;

// The subcommands.
pub mod commands;

// The fuzz targets' bodies (fuzz/), also replayed on the kept corpus by the tests.
#[doc(hidden)]
pub mod fuzzing;

/// Now, in microseconds since the Unix epoch (UTC).
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as i64)
        .unwrap_or(0)
}
