//! `pinstream run`: the engine until its sources end or a signal asks it to stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Error, io_runtime};
use crate::analytics::AggregateStore;
use crate::analytics::tables as aggregate_tables;
use crate::config::{Config, RunArgs};
use crate::connectors::{self, JobContext};
use crate::dataflow;
use crate::serve::{self, AppState};
use crate::stats::Stats;

/// Seconds between progress lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

pub fn run(args: &RunArgs) -> Result<(), Error> {
    let config = Config::resolve(args)?;
    let runtime = io_runtime()?;
    let stats = Arc::new(Stats::default());
    let shutdown = Arc::new(AtomicBool::new(false));
    runtime.spawn(stop_on_signal(shutdown.clone()));
    tracing::info!(
        job = %config.name,
        sources = config.sources.len(),
        compression = %config.compression,
        "starting"
    );

    // The live aggregates: the dataflow publishes into them, the HTTP API reads them.
    let aggregates = AggregateStore::new();
    // Bound before any work starts: a taken port fails the run at once, with one line.
    let listener = runtime
        .block_on(serve::bind(config.http))
        .map_err(|error| Error::Io {
            context: "starting the HTTP server".into(),
            source: std::io::Error::other(error),
        })?;
    // The sources' live objects (a Kafka group membership, the HTTP ingest queue), for the
    // whole run: the dataflow's restarts reuse them.
    let job = JobContext {
        stats: stats.clone(),
        shutdown: shutdown.clone(),
        cluster: config.cluster.is_some(),
        finished: Default::default(),
        handover: Default::default(),
    };
    // A source that cannot start fails the run like a dataflow error (summary included).
    let sources = connectors::start_all(&config.sources, &job);
    let ingest = sources
        .iter()
        .flatten()
        .find_map(|source| source.ingest().cloned());
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = runtime.spawn(serve::serve_on(
        listener,
        AppState::new(aggregates.clone(), stats.clone())
            .with_ingest(ingest.clone())
            .with_process(config.cluster.as_ref().map(|cluster| cluster.process)),
        async move {
            // A send or a drop (an early return) both stop it.
            let _ = http_stopped.await;
        },
    ));

    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let progress = {
        let (stats, done) = (stats.clone(), done.clone());
        std::thread::spawn(move || report_progress(&stats, &done))
    };
    // In a cluster, process 0 alone writes the aggregate tables and compacts (every process
    // serves the same aggregates; two writers would only race).
    let leads = config
        .cluster
        .as_ref()
        .is_none_or(|cluster| cluster.process == 0);
    // Changed aggregates to <lake>/aggregates/<name> every interval and at the end.
    let (stop_tables, stopped) = tokio::sync::watch::channel(false);
    let tables = (leads && config.analytics.enabled).then(|| {
        let lake = crate::sink::delta::lake_url(&config.lake);
        let (store, interval) = (aggregates.clone(), config.analytics.table_interval);
        let (codec, stats) = (config.compression, stats.clone());
        runtime.spawn(async move {
            aggregate_tables::keep_written(lake?, codec, store, interval, stats, stopped).await
        })
    });
    // Online compaction on handles of its own; it commits only dataChange=false rewrites,
    // which the stream's appends never conflict with (see sink::maintain).
    let compaction = config
        .maintenance
        .compact_every
        .filter(|_| leads)
        .map(|every| {
            let lake = crate::sink::delta::lake_url(&config.lake);
            let (policy, stopped) = (
                config.maintenance.compaction.clone(),
                stop_tables.subscribe(),
            );
            runtime.spawn(async move {
                if let Ok(lake) = lake {
                    crate::sink::maintain::keep_compacted(lake, policy, every, stopped).await;
                }
            })
        });
    let result = sources
        .map_err(dataflow::EngineError::from)
        .and_then(|sources| {
            dataflow::run_started(config, sources, &job, runtime.handle().clone(), aggregates)
        });
    // Nothing reads the ingest queue any more: its waiting requests get 503, not silence.
    if let Some(queue) = &ingest {
        queue.close();
    }
    let _ = stop_tables.send(true);
    if let Some(task) = compaction {
        // A pass in progress finishes its table (commits are atomic either way).
        let _ = runtime.block_on(task);
    }
    let tables = match tables {
        Some(task) => runtime.block_on(task).unwrap_or_else(|e| {
            Err(crate::sink::SinkError::Task {
                task: "the aggregate tables writer",
                reason: e.to_string(),
            })
        }),
        None => Ok(()),
    };
    done.store(true, Ordering::Relaxed);
    progress.thread().unpark();
    let _ = progress.join();
    // The engine is done: let open requests finish (bounded), then close the port.
    let _ = stop_http.send(());
    match runtime.block_on(http) {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!("{error}"),
        Err(error) => tracing::warn!("HTTP server task: {error}"),
    }
    let elapsed = started.elapsed();
    print_totals(&stats, elapsed);
    if let Some(path) = &args.summary {
        let summary = serde_json::json!({
            "records_in": Stats::get(&stats.records_in),
            "clean": Stats::get(&stats.clean),
            "quarantined": Stats::get(&stats.quarantined),
            "duplicates": Stats::get(&stats.duplicates),
            "rows_committed": Stats::get(&stats.rows_committed),
            "commits": Stats::get(&stats.commits),
            "cluster_bytes_sent": Stats::get(&stats.cluster_bytes_sent),
            "kafka_messages": Stats::get(&stats.kafka_messages),
            "seconds": elapsed.as_secs_f64(),
            "peak_rss_bytes": peak_rss_bytes(),
            "cpu_seconds": super::cpu_seconds(),
            "backpressure_seconds": Stats::get(&stats.backpressure_micros) as f64 / 1e6,
            "freshness_ms": stats.freshness_quantiles(&[0.5, 0.99, 1.0]).map(|q| {
                serde_json::json!({"p50": q[0] as f64 / 1e3, "p99": q[1] as f64 / 1e3, "max": q[2] as f64 / 1e3})
            }),
            "ok": result.is_ok(),
        });
        std::fs::write(path, summary.to_string()).map_err(|source| Error::Io {
            context: format!("writing {}", path.display()),
            source,
        })?;
    }
    result?;
    tables.map_err(|e| Error::Engine(e.into()))
}

/// The process's peak resident memory (VmHWM), where the system tells it.
fn peak_rss_bytes() -> u64 {
    super::status_bytes("self", "VmHWM").unwrap_or(0)
}

/// First SIGINT/SIGTERM: stop reading, commit what is held, exit 0. Second: exit at once.
async fn stop_on_signal(shutdown: Arc<AtomicBool>) {
    // One listener per signal, made once: a fresh `ctrl_c()` per wait would see the first
    // signal again and take it for a second one.
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    for _ in 0..2 {
        #[cfg(unix)]
        {
            async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = next(&mut interrupt) => {}
                _ = next(&mut terminate) => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        if shutdown.swap(true, Ordering::Relaxed) {
            tracing::warn!("second signal: exiting without committing");
            std::process::exit(130);
        }
        tracing::info!("stopping: committing what is held (signal again to exit at once)");
    }
}

fn report_progress(stats: &Stats, done: &AtomicBool) {
    let mut last = Instant::now();
    let mut last_in = 0;
    while !done.load(Ordering::Relaxed) {
        std::thread::park_timeout(PROGRESS_EVERY.saturating_sub(last.elapsed()));
        if last.elapsed() >= PROGRESS_EVERY && !done.load(Ordering::Relaxed) {
            let records_in = Stats::get(&stats.records_in);
            let rate = (records_in - last_in) as f64 / last.elapsed().as_secs_f64();
            tracing::info!(
                "records in {records_in}, clean {}, quarantined {}, duplicates {}, rows committed {}, {:.0} records/s",
                Stats::get(&stats.clean),
                Stats::get(&stats.quarantined),
                Stats::get(&stats.duplicates),
                Stats::get(&stats.rows_committed),
                rate,
            );
            last = Instant::now();
            last_in = records_in;
        }
    }
}

fn print_totals(stats: &Stats, elapsed: Duration) {
    let records_in = Stats::get(&stats.records_in);
    tracing::info!(
        "done: records in {records_in}, clean {}, quarantined {}, duplicates {}, rows committed {}, commits {}, {:.1} s, {:.0} records/s, peak memory {} MiB, CPU {:.1} s",
        Stats::get(&stats.clean),
        Stats::get(&stats.quarantined),
        Stats::get(&stats.duplicates),
        Stats::get(&stats.rows_committed),
        Stats::get(&stats.commits),
        elapsed.as_secs_f64(),
        records_in as f64 / elapsed.as_secs_f64().max(1e-9),
        peak_rss_bytes() >> 20,
        super::cpu_seconds().unwrap_or(0.0),
    );
}
