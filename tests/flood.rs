//! The ingest flood (issue 13, item 5): hundreds of clients posting above the engine's
//! capacity are refused with `Retry-After` (no unbounded queue), the engine's memory stays
//! bounded, and the tables hold every acknowledged message exactly once and none whose every
//! attempt was refused. The load is `bench --flood`'s, against a real `pinstream run`.

use std::path::Path;
use std::time::Duration;

use pinstream::commands::bench::flood::{FloodSettings, flood};

#[test]
fn a_flood_of_clients_gets_retry_after_and_every_acknowledged_record_lands_once() {
    let dir = tempfile::tempdir().unwrap();
    // Small limits, so that 250 connections overload the engine at once: 64 requests in
    // flight (429 past them), 1 MiB of bodies being read and messages queued (503 past it),
    // bodies of at most 64 KiB (413; the flood's bodies of 10 records are ~1-7 KiB).
    let settings = FloodSettings {
        connections: 250,
        duration: Duration::from_secs(6),
        records_per_request: 10,
        source: "http:max_in_flight=64,queue_bytes=1048576,max_body_bytes=65536".into(),
        batch_interval: "200ms".into(),
        workers: 1,
        // Plus 8 connections offering 64 MiB bodies, half chunked: 512 MiB at a time.
        oversized: 8,
        lake: dir.path().join("lake"),
    };
    let report = flood(Path::new(env!("CARGO_BIN_EXE_pinstream")), &settings).unwrap();
    eprintln!("{report:#?}");
    assert!(report.problems().is_empty(), "{:?}", report.problems());
    // Overload is answered 429 (in flight; 503 should the queue's bytes run out first) with
    // Retry-After, and nothing else goes wrong.
    assert!(
        report
            .refusals
            .keys()
            .all(|status| [429, 503].contains(status)),
        "{report:?}"
    );
    assert!(
        report.refusals.get(&429).copied().unwrap_or(0) > 100,
        "{report:?}"
    );
    assert!(report.refusals_without_retry_after.is_empty(), "{report:?}");
    assert_eq!(
        (report.transport_errors, report.connect_errors),
        (0, 0),
        "{report:?}"
    );
    assert_eq!(report.records_unknown, 0, "{report:?}");
    // Both sides of the check hold something: acknowledged records, and refused ones (the
    // clients waiting out a Retry-After when the flood ends).
    assert!(report.records_acknowledged > 200, "{report:?}");
    assert!(report.records_refused > 0, "{report:?}");
    // Every oversized body is refused: 413 from its Content-Length before a byte of it is
    // sent, or once 64 KiB of chunks arrived (reading stops there, and the client still
    // writing may see the connection closed before it reads the answer: 0); 429/503 when
    // the engine is full before its size is known.
    let answers = &report.oversized_answers;
    assert!(
        answers
            .keys()
            .all(|status| [0, 413, 429, 503].contains(status)),
        "{report:?}"
    );
    assert!(answers.get(&413).copied().unwrap_or(0) > 10, "{report:?}");
    // Memory: the ingest holds at most queue_bytes of bodies and queued messages (plus their
    // copies while one is parsed), the oversized bodies never more than 64 KiB each before
    // their refusal, and 258 connections' buffers a few MiB; the rest is the engine's own
    // working set for a few thousand rows (Parquet writers, Delta snapshots, dedup state:
    // ~40 MiB in a debug build). Buffering the oversized bodies whole would add 512 MiB.
    let growth = report
        .peak_rss_bytes
        .saturating_sub(report.rss_before_bytes);
    assert!(
        growth < 128 << 20,
        "RSS grew {} MiB during the flood",
        growth >> 20
    );
}
