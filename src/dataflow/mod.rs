//! The dataflow: sources -> clean -> dedup -> write -> commit, on timely workers.
//!
//! [`build`] lays out the graph top to bottom; [`run`] starts the workers (this process's, or
//! every process's of a cluster: one dataflow over all of them) and the driver of each
//! ([`driver`]) polls its share of the partitions, feeds the records in at the current
//! micro-batch (a timely time), and closes the batch after the interval, or at once for every
//! worker when one has read the record count ([`time::Shift`]). A batch's commit happens once
//! every worker of the job has closed it.

pub mod clean;
pub mod control;
pub mod dedup;
mod driver;
pub use driver::BATCHES_IN_FLIGHT;
pub mod fan_out;
mod profile;
pub mod sink;

pub mod time;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use differential_dataflow::AsCollection;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::Probe;
use timely::dataflow::operators::core::Input as _;
use timely::dataflow::{InputHandle, ProbeHandle, Scope};
use tokio::runtime::Handle;

use crate::analytics::publish;
use crate::analytics::{AggregateStore, queries};
use crate::config::Config;
use crate::connectors::{FinishedPartitions, JobContext, RawRecord, SourceError, StartedSource};
use crate::sink::{Lake, SinkError};
use crate::stats::Stats;
use crate::table::{KeyedRow, Table};
use sink::{Fatal, ReportedPosition, Restart};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("starting the timely workers: {0}")]
    Start(String),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("a worker thread panicked: {0}")]
    WorkerPanicked(String),
    /// A stage failed (a commit, writing data files): its message says which and where.
    #[error("{0}")]
    Stopped(String),
}

type Input<D> = InputHandle<u64, CapacityContainerBuilder<Vec<D>>>;

/// The handles the driver needs from the graph.
struct Handles {
    raw: Input<RawRecord>,
    /// Rows the tables hold: sent at time 0 and closed before any record is read.
    history: Option<Input<KeyedRow>>,
    positions: Input<ReportedPosition>,
    control: Input<control::Control>,
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
    /// The data file encoders' runtime ([`crate::sink::delta::encoder_runtime`]).
    encoder: Handle,
    stats: Arc<Stats>,
    /// Set by a signal to this process.
    shutdown: Arc<AtomicBool>,
    /// Set when another process of the cluster asked every process to stop.
    stop: Arc<AtomicBool>,
    /// Partitions that reached their end anywhere in the job ([`JobContext::finished`]).
    finished: FinishedPartitions,
    /// This process's index and the number of processes (0 and 1 without a cluster).
    process: usize,
    processes: usize,
    fatal: Fatal,
    restart: Restart,
    /// Committer tasks still running (see [`sink::CommitSignals`]).
    committing: Arc<std::sync::atomic::AtomicUsize>,
    /// Batches closed early, agreed by the workers (and processes) of this dataflow.
    shift: time::Shift,
    /// What the tables hold, per worker.
    held: Held,
}

/// What the tables hold, per worker of the job, by their files' statistics: the size of the
/// state seeded from them, made at once (growing it through every doubling cost a restart
/// more than the seeding itself).
#[derive(Clone, Copy, Debug, Default)]
struct Held {
    /// Rows of every table (the deduplication's identities).
    rows: usize,
    /// Pin rows (the joins' posts).
    pins: usize,
}

impl Held {
    fn of(lake: &Lake, peers: usize) -> Held {
        let mut held = Held::default();
        for table in Table::ALL {
            let rows = lake.held_rows(table).unwrap_or_else(|error| {
                tracing::warn!(%error, "rows held unknown: the seeded state grows as it fills");
                0
            }) / peers;
            held.rows += rows;
            if table == Table::Pin {
                held.pins = rows;
            }
        }
        held
    }
}

/// Builds the graph in `scope`: one named stage per line.
fn build(scope: Scope<'_, u64>, context: &Context) -> Handles {
    let mut raw = InputHandle::new();
    let mut history = InputHandle::new();
    let mut positions = InputHandle::new();
    let mut control = InputHandle::new();
    let committed = ProbeHandle::new();
    let (processes, workers) = (context.processes, context.config.workers);
    // Raw messages as read, at the batch they were read in.
    let records = scope.input_from(&mut raw);
    // Rows the tables already hold (at time 0): seed the deduplication.
    let held = scope.input_from(&mut history);
    // Source positions reached by the end of each batch.
    let reached = scope.input_from(&mut positions);
    // Stop requests, totals, finished partitions and early closes, to every process.
    control::control(
        fan_out::to_each_process(scope.input_from(&mut control), processes, workers),
        control::Controlled {
            process: context.process,
            stop: context.stop.clone(),
            stats: context.stats.clone(),
            finished: context.finished.clone(),
            shift: context.shift.clone(),
        },
    );
    // Parse and clean; bad messages become quarantine rows.
    let rows = clean::clean(records, workers, context.stats.clone());
    // Drop rows the tables hold or this run already passed.
    let passed = dedup::dedup(rows, held, context.held.rows, context.stats.clone());
    // New rows to the tables; a small fact of every clean row to the analytics.
    let analytics = context.config.analytics.enabled;
    let routes = publish::route(passed, analytics);
    // Each worker writes its rows' data files when a batch is complete.
    let files = sink::write(
        routes.writes,
        context.lake.clone(),
        context.encoder.clone(),
        context.fatal.clone(),
    );
    // One committer: each table once per batch, with the positions the batch covers.
    let commits = sink::commit(
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
    );
    // Every process learns what the tables now hold (its sources acknowledge from it).
    sink::learn_commits(
        fan_out::to_each_process(commits, processes, workers),
        context.committed.clone(),
        context.stats.clone(),
    )
    .probe_with(&committed);
    let published = ProbeHandle::new();
    if analytics {
        // The facts as a differential collection (each clean row once, at its time).
        let facts = routes.facts.as_collection();
        let signals = routes.signals;
        // SPEC §3 incrementally; each consistent result published, trending kept.
        let snapshots = publish::publish(
            queries::aggregates(facts, context.held.pins).inner,
            signals,
            context.aggregates.clone(),
            context.stats.clone(),
            context.config.analytics.trending_window,
            processes > 1,
        );
        // The other processes of a cluster keep a replica to serve.
        publish::keep_replica(
            fan_out::to_each_process(snapshots, processes, workers),
            context.aggregates.clone(),
        )
        .probe_with(&published);
    }
    Handles {
        raw,
        history: Some(history),
        positions,
        control,
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
        stats,
        shutdown,
        cluster: config.cluster.is_some(),
        finished: Default::default(),
        handover: Default::default(),
    };
    let sources = crate::connectors::start_all(&config.sources, &job)?;
    run_started(config, sources, &job, runtime, aggregates)
}

/// [`run`] with the sources already started (the caller needed one of their live objects,
/// such as the HTTP ingest queue).
pub fn run_started(
    config: Config,
    sources: Vec<Arc<dyn StartedSource>>,
    job: &JobContext,
    runtime: Handle,
    aggregates: AggregateStore,
) -> Result<(), EngineError> {
    let (stats, shutdown) = (&job.stats, &job.shutdown);
    let sources: Arc<[Arc<dyn StartedSource>]> = sources.into();
    // In a cluster: what ties this process to the others, for the whole run.
    let mut peers = crate::cluster::Peers::default();
    if let Some(cluster) = &config.cluster {
        peers.losses = crate::cluster::exit_on_lost_peer(cluster.hosts.clone());
    }
    let encoder = crate::sink::delta::encoder_runtime()
        .map_err(|e| EngineError::Start(format!("the data file encoders: {e}")))?;
    let mut backoff = Duration::from_millis(500);
    for epoch in 0u64.. {
        match run_epoch(
            &config,
            &sources,
            job,
            &runtime,
            encoder.handle(),
            &aggregates,
            &mut peers,
        ) {
            Ok(None) => {
                for source in sources.iter() {
                    source.finish(Duration::from_secs(10));
                }
                // This process's part is done: its end is no loss to the others.
                if let Some(heartbeats) = &peers.heartbeats {
                    heartbeats.goodbye();
                }
                return Ok(());
            }
            Ok(Some(reason)) if config.cluster.is_some() => {
                // The other processes cannot rebuild with this one: stop, and let the
                // supervisor restart the cluster from the tables.
                return Err(EngineError::Stopped(format!(
                    "{reason}; a cluster does not restart in place: exiting so that it is restarted from the tables"
                )));
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

/// How long an idle worker polls its channels before it parks: not at all. Timely's default
/// (10 us) saves the cost of parking for workers that wake each other often, but a worker
/// here wakes ~1,400 times a second (the other's progress, every 5 ms tick) and shares the
/// cores with the encoders, the I/O runtime and the sources: each spin is CPU they lose. At
/// 1k events/s, 2 workers: 2.00-2.25 CPU-s per 10 s without the spin against 2.38-2.60 with
/// it (3 alternated pairs), the same p99.
const IDLE_SPIN: Duration = Duration::ZERO;

/// One epoch of the dataflow: `Ok(None)` when the job is done, `Ok(Some(reason))` when it
/// must start again from the tables.
fn run_epoch(
    config: &Config,
    sources: &Arc<[Arc<dyn StartedSource>]>,
    job: &JobContext,
    runtime: &Handle,
    encoder: &Handle,
    aggregates: &AggregateStore,
    peers: &mut crate::cluster::Peers,
) -> Result<Option<String>, EngineError> {
    let open = || runtime.block_on(Lake::open(&config.lake, config.compression));
    let losses = peers.losses.clone();
    let meet =
        |cluster| crate::cluster::rendezvous(cluster, config.workers, &job_digest(config), &losses);
    let lake = match &config.cluster {
        None => open()?,
        // Process 0 creates missing tables before the others open them (two creators of one
        // table race, and the loser's commit is refused), and the others open theirs after
        // the rendezvous, so process 0 is listening by the time they connect.
        Some(cluster) if cluster.process == 0 => {
            let lake = open()?;
            peers.heartbeats = Some(meet(cluster)?);
            lake
        }
        Some(cluster) => {
            peers.heartbeats = Some(meet(cluster)?);
            open()?
        }
    };
    tracing::info!(lake = %lake.root(), workers = config.workers, "tables open");
    let fatal = Fatal::default();
    let restart = Restart::default();
    let committing = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (process, processes) = config
        .cluster
        .as_ref()
        .map_or((0, 1), |cluster| (cluster.process, cluster.processes()));
    let context = Arc::new(Context {
        stop: Arc::new(AtomicBool::new(false)),
        process,
        processes,
        committing: committing.clone(),
        // New with each dataflow: its times only need to be monotone within it.
        shift: time::Shift::default(),
        held: Held::of(&lake, processes * config.workers),
        committed: sink::Committed::default(),
        lake,
        aggregates: aggregates.clone(),
        runtime: runtime.clone(),
        encoder: encoder.clone(),
        stats: job.stats.clone(),
        finished: job.finished.clone(),
        shutdown: job.shutdown.clone(),
        fatal: fatal.clone(),
        restart: restart.clone(),
        config: config.clone(),
        sources: sources.clone(),
    });
    let work = move |worker: &mut timely::worker::Worker| {
        let context = context.clone();
        let result = driver::drive(worker, &context);
        if let Err(error) = &result {
            // Stop the other workers too.
            context.fatal.set(error);
        }
        result
    };
    let worker_config = timely::WorkerConfig::default().idle_spin(IDLE_SPIN);
    let guards = match &config.cluster {
        Some(cluster) => {
            let (allocators, others) = cluster
                .connect(config.workers, job.stats.cluster_bytes_sent.clone())
                .map_err(EngineError::Start)?;
            timely::execute::execute_from(allocators, others, worker_config, work)
        }
        None => timely::execute(
            timely::Config {
                worker: worker_config,
                ..timely::Config::process(config.workers)
            },
            work,
        ),
    }
    .map_err(EngineError::Start)?;
    let joined = guards.join();
    tracing::debug!("workers joined");
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
                first_error.get_or_insert(EngineError::WorkerPanicked(panic.to_string()));
            }
        }
    }
    match (first_error, fatal.get()) {
        (Some(error), _) => Err(error),
        (None, Some(error)) => Err(EngineError::Stopped(error)),
        (None, None) => Ok(restart.get()),
    }
}

/// What must be the same on every process of a cluster for them to run one job: the lake,
/// the sources, the batch and analytics settings (the HTTP address and the process index may
/// differ). A digest, compared at the rendezvous.
fn job_digest(config: &Config) -> String {
    let job = format!(
        "{:?}",
        (
            &config.lake,
            &config.sources,
            &config.batch,
            &config.analytics,
            config.until_done,
        )
    );
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(job.as_bytes()))
}
