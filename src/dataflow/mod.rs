//! The dataflow: sources -> clean -> dedup -> write -> commit, on timely workers.
//!
//! [`build`] lays out the graph top to bottom; [`run`] starts the workers and drives the
//! sources: each worker polls its share of the partitions, feeds the records in at the current
//! micro-batch (a timely time), and closes the batch after the interval or the record count.
//! A batch's commit happens once every worker has closed it.

pub mod clean;
pub mod dedup;
pub mod sink;

pub mod time;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use differential_dataflow::AsCollection;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Probe;
use timely::dataflow::operators::core::Input as _;
use timely::dataflow::operators::core::{Map, Partition};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::{InputHandle, ProbeHandle, Scope};
use tokio::runtime::Handle;

use crate::analytics::publish::{self, Routed};
use crate::analytics::{AggregateStore, queries};
use crate::config::Config;
use crate::connectors::{
    JobContext, PollStatus, Positions, RawRecord, Source, SourceError, StartedSource,
};
use crate::sink::{Lake, SinkError};
use crate::stats::Stats;
use crate::table::Table;
use dedup::Keyed;
use sink::{Fatal, Reported, Restart};

/// Records taken from one source per poll (a multiple of 3: an emulator event is 3 records).
const POLL_CHUNK: usize = 4095;
/// Batches read ahead of the last commit before the sources pause (backpressure: a slow
/// sink slows reading, and memory stays bounded).
const BATCHES_IN_FLIGHT: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{0}")]
    Failed(String),
}

type Input<D> = InputHandle<u64, CapacityContainerBuilder<Vec<D>>>;

/// The handles the driver needs from the graph.
struct Handles {
    raw: Input<RawRecord>,
    history: Input<Keyed>,
    positions: Input<Reported>,
    committed: ProbeHandle<u64>,
    published: ProbeHandle<u64>,
}

/// Shared by every worker of the process.
struct Context {
    config: Config,
    /// The job's sources, started once for the run.
    sources: Arc<[Arc<dyn StartedSource>]>,
    committed: sink::Committed,
    lake: Lake,
    aggregates: AggregateStore,
    runtime: Handle,
    stats: Arc<Stats>,
    shutdown: Arc<AtomicBool>,
    fatal: Fatal,
    restart: Restart,
    /// Committer tasks still running (see [`sink::CommitSignals`]).
    committing: Arc<std::sync::atomic::AtomicUsize>,
}

/// Builds the graph in `scope`: one named stage per line.
fn build(scope: Scope<'_, u64>, context: &Context) -> Handles {
    let mut raw = InputHandle::new();
    let mut history = InputHandle::new();
    let mut positions = InputHandle::new();
    let committed = ProbeHandle::new();
    // Raw messages as read, at the batch they were read in.
    let records = scope.input_from(&mut raw);
    // Rows the tables already hold (at time 0): seed the deduplication.
    let held = scope.input_from(&mut history);
    // Source positions reached by the end of each batch.
    let reached = scope.input_from(&mut positions);
    // Parse and clean; bad messages become quarantine rows.
    let rows = clean::clean(records, context.stats.clone());
    // Drop rows the tables hold or this run already passed.
    let passed = dedup::dedup(rows, held, context.stats.clone());
    // New rows to the tables; a small fact of every clean row to the analytics.
    let analytics = context.config.analytics.enabled;
    let mut routed = publish::route(passed, analytics)
        .partition::<CapacityContainerBuilder<Vec<Routed>>, _, _>(3, |routed| match routed {
            Routed::Write(_) => (0, routed),
            Routed::Fact(_) => (1, routed),
            Routed::Signal(_) => (2, routed),
        })
        .into_iter();
    let (writes, facts, signals) = (routed.next(), routed.next(), routed.next());
    let writes = writes.expect("3 parts").flat_map(|routed| match routed {
        Routed::Write(row) => Some(row),
        _ => None,
    });
    // Each worker writes its rows' data files when a batch is complete.
    let files = sink::write(
        writes,
        context.lake.clone(),
        context.runtime.clone(),
        context.fatal.clone(),
    );
    // One committer: each table once per batch, with the positions the batch covers.
    sink::commit(
        files,
        reached,
        context.lake.clone(),
        context.runtime.clone(),
        context.stats.clone(),
        sink::CommitSignals {
            fatal: context.fatal.clone(),
            restart: context.restart.clone(),
            committed: context.committed.clone(),
            active: context.committing.clone(),
        },
    )
    .probe_with(&committed);
    let published = ProbeHandle::new();
    if analytics {
        // The facts as a differential collection (each clean row once, at its time).
        let facts = facts
            .expect("3 parts")
            .unary(Pipeline, "facts", |_, _| {
                move |input, output| {
                    input.for_each_stamp(|capability, batches| {
                        let Some(&time) = capability.least() else {
                            return;
                        };
                        let mut session = output.session(&capability);
                        for routed in batches.flat_map(|b| b.drain(..)) {
                            if let Routed::Fact(fact) = routed {
                                session.give((fact, time, 1isize));
                            }
                        }
                    });
                }
            })
            .as_collection();
        let signals = signals.expect("3 parts").flat_map(|routed| match routed {
            Routed::Signal(signal) => Some(signal),
            _ => None,
        });
        // SPEC §3 incrementally; each consistent result published, trending kept.
        publish::publish(
            queries::aggregates(facts).inner,
            signals,
            context.aggregates.clone(),
            context.stats.clone(),
            context.config.analytics.trending_window,
        )
        .probe_with(&published);
    }
    Handles {
        raw,
        history,
        positions,
        committed,
        published,
    }
}

/// Runs the job until its sources end (`until_done`) or `shutdown` is set, then commits
/// what is held. Returns once everything read has been committed.
///
/// The sources are started first (once per run: a Kafka source joins its consumer group).
/// The dataflow then runs in *epochs*: each opens the tables, resumes the sources from the positions they hold and
/// seeds the deduplication with their rows. A rebalance or a fenced commit ends the epoch
/// without committing what it holds, and the next one starts from the tables again (seconds,
/// not correctness). An epoch after the first that cannot reach a source's brokers waits for
/// them with backoff instead of failing: they were there when the job started.
pub fn run(
    config: Config,
    runtime: Handle,
    stats: Arc<Stats>,
    aggregates: AggregateStore,
    shutdown: Arc<AtomicBool>,
) -> Result<(), EngineError> {
    let job = JobContext {
        stats: stats.clone(),
        shutdown: shutdown.clone(),
    };
    let sources = crate::connectors::start_all(&config.sources, &job)?;
    run_started(config, sources, runtime, stats, aggregates, shutdown)
}

/// [`run`] with the sources already started (the caller needed one of their live objects,
/// such as the HTTP ingest queue).
pub fn run_started(
    config: Config,
    sources: Vec<Arc<dyn StartedSource>>,
    runtime: Handle,
    stats: Arc<Stats>,
    aggregates: AggregateStore,
    shutdown: Arc<AtomicBool>,
) -> Result<(), EngineError> {
    let sources: Arc<[Arc<dyn StartedSource>]> = sources.into();
    let mut backoff = Duration::from_millis(500);
    for epoch in 0u64.. {
        match run_epoch(&config, &sources, &runtime, &stats, &aggregates, &shutdown) {
            Ok(None) => {
                for source in sources.iter() {
                    source.finish(Duration::from_secs(10));
                }
                return Ok(());
            }
            Ok(Some(reason)) => {
                Stats::add(&stats.restarts, 1);
                tracing::info!(epoch, %reason, "dataflow stopped; starting again from the tables");
                backoff = Duration::from_millis(500);
            }
            Err(EngineError::Source(SourceError::Unavailable(reason))) if epoch > 0 => {
                tracing::warn!(
                    %reason,
                    retry_in = ?backoff,
                    "a source's service is unreachable: waiting for it"
                );
                let until = Instant::now() + backoff;
                while Instant::now() < until {
                    if shutdown.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(error) => return Err(error),
        }
        if shutdown.load(Ordering::Relaxed) && !config.until_done {
            return Ok(());
        }
    }
    unreachable!("the epochs end by returning")
}

/// One epoch of the dataflow: `Ok(None)` when the job is done, `Ok(Some(reason))` when it
/// must start again from the tables.
fn run_epoch(
    config: &Config,
    sources: &Arc<[Arc<dyn StartedSource>]>,
    runtime: &Handle,
    stats: &Arc<Stats>,
    aggregates: &AggregateStore,
    shutdown: &Arc<AtomicBool>,
) -> Result<Option<String>, EngineError> {
    let lake = runtime.block_on(Lake::open(&config.lake))?;
    tracing::info!(lake = %lake.root(), workers = config.workers, "tables open");
    let fatal = Fatal::default();
    let restart = Restart::default();
    let committing = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let context = Arc::new(Context {
        committing: committing.clone(),
        committed: sink::Committed::default(),
        lake,
        aggregates: aggregates.clone(),
        runtime: runtime.clone(),
        stats: stats.clone(),
        shutdown: shutdown.clone(),
        fatal: fatal.clone(),
        restart: restart.clone(),
        config: config.clone(),
        sources: sources.clone(),
    });
    let guards = timely::execute(timely::Config::process(config.workers), move |worker| {
        let context = context.clone();
        let result = drive(worker, &context);
        if let Err(error) = &result {
            // Stop the other workers too.
            context.fatal.set(error);
        }
        result
    })
    .map_err(EngineError::Failed)?;
    let joined = guards.join();
    // A commit of this dataflow must not land after the next one has read the tables.
    let idle = sink::CommitSignals {
        active: committing,
        ..Default::default()
    };
    idle.wait_idle(Duration::from_secs(120));
    let mut first_error = None;
    for result in joined {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                first_error.get_or_insert(error);
            }
            Err(panic) => {
                first_error.get_or_insert(EngineError::Failed(format!("a worker failed: {panic}")));
            }
        }
    }
    match (first_error, fatal.get()) {
        (Some(error), _) => Err(error),
        (None, Some(error)) => Err(EngineError::Failed(error)),
        (None, None) => Ok(restart.get()),
    }
}

/// One worker: resume its sources, seed the deduplication, then read, batch and step.
fn drive(worker: &mut timely::worker::Worker, context: &Context) -> Result<(), EngineError> {
    let (index, peers) = (worker.index(), worker.peers());
    let Context {
        config,
        lake,
        runtime,
        stats,
        shutdown,
        fatal,
        restart,
        ..
    } = context;

    let mut sources: Vec<Box<dyn Source>> = Vec::new();
    // Positions already in the tables: only those that move are committed again.
    let mut reported = Positions::new();
    for started in context.sources.iter() {
        let mut source = started.open(index, peers)?;
        let from = runtime.block_on(lake.positions(&source.partitions()))?;
        if source.uses_cursors() {
            let cursors = runtime.block_on(lake.cursors(&from))?;
            source.seek_exact(&from, &cursors)?;
            context.committed.seed_cursors(&cursors);
        } else {
            source.seek(&from)?;
        }
        reported.extend(from);
        sources.push(source);
    }
    let mut handles = worker.dataflow::<u64, _, _>(|scope| build(scope, context));
    // Seed the deduplication and the analytics with the rows the tables hold, a batch at a
    // time, letting each flow before the next is read.
    let started = Instant::now();
    let mut held = 0;
    for table in Table::ALL {
        for (path, modified) in lake.data_files(table, index, peers)? {
            runtime.block_on(lake.read_file(table, &path, |rows| {
                held += rows.len();
                for row in rows {
                    handles.history.send((row.identity(), row, modified));
                }
            }))?;
            worker.step();
        }
    }
    tracing::debug!(worker = index, rows = held, elapsed = ?started.elapsed(), "rows the tables hold, read back");
    handles.history.close();

    // Times come from the wall clock (see `time`), so all workers agree on them and a record
    // is never held back by a worker whose loop was busy.
    let mut now = time::Clock::new(config.batch.interval);
    let mut current = now.time();
    handles.raw.advance_to(current);
    handles.positions.advance_to(current);
    let mut batch_records = 0;
    let mut exhausted = vec![false; sources.len()];
    let mut commits_seen = 0;
    let mut buffer = Vec::with_capacity(POLL_CHUNK);
    loop {
        if let Some(error) = fatal.get() {
            return Err(EngineError::Failed(error));
        }
        if restart.get().is_some() {
            // Drop what is in flight: the next epoch reads it again from the stored positions.
            return Ok(());
        }
        let all_read = exhausted.iter().all(|done| *done);
        let stopping = shutdown.load(Ordering::Relaxed) || (config.until_done && all_read);
        let mut busy = false;
        let batch = time::batch_of(current);
        let caught_up = !handles
            .committed
            .less_than(&time::batch_start(batch.saturating_sub(BATCHES_IN_FLIGHT)));
        if !stopping && caught_up {
            for (source, exhausted) in sources.iter_mut().zip(exhausted.iter_mut()) {
                if *exhausted {
                    continue;
                }
                let room = config
                    .batch
                    .max_records
                    .saturating_sub(batch_records)
                    .max(1);
                match source.poll(POLL_CHUNK.min(room), &mut buffer)? {
                    PollStatus::Ready => busy = true,
                    PollStatus::Idle => {}
                    PollStatus::Exhausted => *exhausted = true,
                }
                batch_records += buffer.len();
                Stats::add(&stats.records_in, buffer.len() as u64);
                if let Some(first) = buffer.first() {
                    let slot = Stats::source_slot(&first.partition);
                    Stats::add(&stats.records_by_source[slot], buffer.len() as u64);
                }
                for record in buffer.drain(..) {
                    handles.raw.send(record);
                }
            }
        }
        // The next time: the clock's, or the next batch's start when this one is full.
        let mut next = now.time().max(current);
        if stopping || batch_records >= config.batch.max_records {
            next = next.max(time::batch_start(batch + 1));
        }
        if next > current {
            if time::batch_of(next) > batch {
                // Leaving the batch: it covers the sources' positions as of now.
                for source in &sources {
                    let mut cursors = source.cursors();
                    for (partition, position) in source.positions() {
                        if reported.get(&partition) != Some(&position) {
                            // The cursor rides with its position (same moment, same commit).
                            let cursor = cursors
                                .remove(&partition)
                                .filter(|c| c.position == position)
                                .map(|c| c.cursor);
                            handles
                                .positions
                                .send((partition.to_string(), position, cursor));
                            reported.insert(partition, position);
                        }
                    }
                }
                batch_records = 0;
            }
            current = next;
            handles.raw.advance_to(current);
            handles.positions.advance_to(current);
        }
        if let Some(positions) = context.committed.since(&mut commits_seen) {
            for source in &mut sources {
                source.committed(&positions);
            }
        }
        if sources.iter().any(|source| source.reassigned()) {
            restart.set("the consumer group changed this process's partitions");
            continue;
        }
        if stopping {
            break;
        }
        if busy {
            worker.step();
        } else {
            worker.step_or_park(Some(Duration::from_millis(1)));
        }
    }
    // Close the inputs and let everything read reach the tables.
    drop(handles.raw);
    drop(handles.positions);
    while !handles.committed.done() || !handles.published.done() {
        if let Some(error) = fatal.get() {
            return Err(EngineError::Failed(error));
        }
        if restart.get().is_some() {
            return Ok(());
        }
        worker.step_or_park(Some(Duration::from_millis(5)));
    }
    if let Some(positions) = context.committed.since(&mut commits_seen) {
        for source in &mut sources {
            source.committed(&positions);
        }
    }
    Ok(())
}
