//! pinstream: pin/geo/user posting events -> cleaned, deduplicated, exactly-once Delta tables,
//! on timely dataflow.

// The layers, bottom up: each imports only from the ones above it in this list.
// Shared vocabulary: the streams, the engine's counters.
pub mod stats;
pub mod stream;
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
// Delta Lake tables: appends with positions, aggregate snapshots, maintenance.
pub mod sink;
// SPEC §3 queries, one file per query, maintained incrementally.
pub mod analytics;
// The timely graph: clean -> dedup -> write -> commit, analytics beside it.
pub mod dataflow;
// HTTP: API, dashboard, metrics, ingest.
pub mod serve;
// Job files and flags -> one checked Config; the subcommands.
pub mod commands;
pub mod config;

/// Now, in microseconds since the Unix epoch (UTC).
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as i64)
        .unwrap_or(0)
}
