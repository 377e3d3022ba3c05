//! The sink stages: `write` (every worker writes the data files of its rows when a batch is
//! complete) and `commit` (one committer, worker 0, commits each table once per batch with
//! the files of all workers and the positions the batch covers).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;
use timely::scheduling::SyncActivator;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::time;
use crate::connectors::{Cursor, Cursors, PartitionId, Position, Positions};
use crate::sink::delta::BackgroundFile;
use crate::sink::{AddAction, Lake, SinkError, WrittenFile};
use crate::stats::Stats;
use crate::table::{Table, TableRow};

/// The first reason given, kept for every thread to see (later ones are dropped).
#[derive(Clone, Default)]
struct FirstReason(Arc<Mutex<Option<String>>>);

impl FirstReason {
    /// Keeps `reason` unless one is kept already; true when it was kept.
    fn set(&self, reason: &dyn std::fmt::Display) -> bool {
        let mut slot = self.0.lock();
        if slot.is_some() {
            return false;
        }
        *slot = Some(reason.to_string());
        true
    }
    fn get(&self) -> Option<String> {
        self.0.lock().clone()
    }
}

/// The first fatal error of any stage; the workers stop when they see one.
#[derive(Clone, Default)]
pub struct Fatal(FirstReason);

impl Fatal {
    pub fn set(&self, error: impl std::fmt::Display) {
        // Not logged as an error: the run ends with it as its last line (`pinstream: ...`),
        // and saying it twice made a full disk or a failed commit look like two failures.
        if self.0.set(&error) {
            tracing::debug!("stopping: {error}");
        }
    }
    pub fn get(&self) -> Option<String> {
        self.0.get()
    }
}

/// Set when the dataflow must start again from the tables (a consumer-group rebalance, or
/// a commit fenced off by another process): the workers stop without committing what they
/// hold, and the engine rebuilds the dataflow (positions and deduplication state read again).
#[derive(Clone, Default)]
pub struct Restart(FirstReason);

impl Restart {
    pub fn set(&self, reason: impl std::fmt::Display) {
        if self.0.set(&reason) {
            tracing::info!("restarting the dataflow from the tables: {reason}");
        }
    }
    pub fn get(&self) -> Option<String> {
        self.0.get()
    }
}

/// What the committer tells the rest of the engine: a fatal error, a restart, the positions
/// committed, and whether its task still runs (`active`: the next dataflow must not start
/// while a commit of the previous one may still land).
#[derive(Clone, Default)]
pub struct CommitSignals {
    pub fatal: Fatal,
    pub restart: Restart,
    pub committed: Committed,
    pub active: Arc<std::sync::atomic::AtomicUsize>,
}

impl CommitSignals {
    /// Waits (at most `limit`) until no committer task of this dataflow runs.
    pub fn wait_idle(&self, limit: std::time::Duration) {
        let started = std::time::Instant::now();
        while self.active.load(std::sync::atomic::Ordering::Acquire) > 0
            && started.elapsed() < limit
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Counts a running committer task in [`CommitSignals::active`] until dropped.
struct Active(Arc<std::sync::atomic::AtomicUsize>);

impl Active {
    fn new(counter: &Arc<std::sync::atomic::AtomicUsize>) -> Active {
        counter.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Active(counter.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A source position reached by the end of a batch, reported by the worker that reads the
/// partition to the committer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReportedPosition {
    pub partition: PartitionId,
    pub position: Position,
    /// The exact cursor at that position, when the source has one ([`Cursor`]).
    pub cursor: Option<String>,
    /// Which commits store it.
    pub stored: Stored,
}

/// Which commits store a reported position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stored {
    /// The commit of its batch: it moved in that batch.
    InBatch,
    /// The commit of its batch and every later one: it moved, and another process may read
    /// the partition too ([`crate::connectors::Source::may_be_shared`]).
    FromBatch,
    /// Every commit from its batch's on, though it did not move: where such a partition
    /// stood when the dataflow started. It makes no commit by itself.
    Held,
    /// Not stored again (it did not move): only its cursor, which the tables may not hold (the
    /// source found it at start, or counted its way to the position), is carried by every
    /// commit from its batch's on. It makes no commit by itself.
    Cursor,
}

/// What the committer holds of one batch until both its inputs have passed it.
#[derive(Default)]
struct PendingBatch {
    files: Vec<WrittenFile>,
    /// The greatest position reported per partition that moved.
    reached: Positions,
    /// The cursors reported at those positions.
    exact: Cursors,
    /// The positions reported that every later commit stores too ([`Stored::FromBatch`],
    /// [`Stored::Held`]).
    carried: Positions,
}

/// The positions the tables hold, as last committed, with a count of commits: the drivers
/// pass them on to their sources ([`crate::connectors::Source::committed`]).
#[derive(Clone, Default)]
pub struct Committed(Arc<Mutex<CommittedState>>);

#[derive(Default)]
struct CommittedState {
    /// Batches learned to be committed.
    commits: u64,
    /// The newest of them.
    last_batch: Option<u64>,
    /// The newest committed position of every partition.
    positions: Positions,
}

impl Committed {
    /// Learns that `batch` is committed; false when it was known already.
    fn record(&self, batch: &CommittedBatch) -> bool {
        let mut committed = self.0.lock();
        if committed.last_batch.is_some_and(|last| last >= batch.batch) {
            return false;
        }
        committed.last_batch = Some(batch.batch);
        committed.commits += 1;
        for (partition, position) in &batch.positions {
            committed.positions.insert(partition.clone(), *position);
        }
        true
    }

    /// The sum of every position committed so far.
    fn total(&self) -> u64 {
        let committed = self.0.lock();
        committed
            .positions
            .values()
            .map(|&p| p.value().max(0) as u64)
            .sum()
    }

    /// The positions, if they changed since commit count `seen` (which is updated).
    pub fn since(&self, seen: &mut u64) -> Option<Positions> {
        let committed = self.0.lock();
        (committed.commits != *seen).then(|| {
            *seen = committed.commits;
            committed.positions.clone()
        })
    }
}

/// A micro-batch committed (every table), with the positions it covered.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommittedBatch {
    pub batch: u64,
    pub positions: Positions,
}

/// Records each committed batch in `committed` (this process's view of what the tables hold,
/// which its sources acknowledge upstream from), once per process: send it the committer's
/// output fanned out to every process ([`super::fan_out`]).
pub fn learn_commits<'scope>(
    commits: Stream<'scope, u64, Vec<CommittedBatch>>,
    committed: Committed,
    stats: Arc<Stats>,
) -> Stream<'scope, u64, Vec<CommittedBatch>> {
    use timely::dataflow::operators::Inspect;
    commits.inspect(move |batch| {
        if committed.record(batch) {
            stats
                .positions_committed
                .store(committed.total(), std::sync::atomic::Ordering::Relaxed);
        }
    })
}

/// Buffers each batch's rows into data files (one per table and worker), completed once the
/// batch is.
///
/// Encoding and completing a file run on `encoder` ([`crate::sink::delta::encoder_runtime`],
/// below the workers' priority): the worker only hands rows over and holds the batch's
/// capability until its files are done, so it keeps stepping the rest of the dataflow (the
/// live aggregates) meanwhile.
pub fn write<'scope>(
    rows: Stream<'scope, u64, Vec<TableRow>>,
    lake: Lake,
    encoder: Handle,
    fatal: Fatal,
) -> Stream<'scope, u64, Vec<WrittenFile>> {
    let worker = rows.scope().worker();
    rows.unary_frontier(Pipeline, "write", move |_capability, info| {
        let activator = worker.sync_activator_for(info.address.to_vec());
        // Per batch: a capability for its least time seen, and a file per table.
        let mut pending: BTreeMap<u64, (Capability<u64>, BTreeMap<Table, BackgroundFile>)> =
            BTreeMap::new();
        // Batches whose files are being completed, in batch order.
        let mut finishing: VecDeque<(Capability<u64>, oneshot::Receiver<Vec<FinishedFile>>)> =
            VecDeque::new();
        move |(input, frontier), output| {
            input.for_each_stamp(|capability, batches| {
                let Some(capability) = capability.retain_least(output.output_index()) else {
                    return;
                };
                let files = hold(&mut pending, capability);
                for row in batches.flat_map(|batch| batch.drain(..)) {
                    let table = row.table();
                    let file = match files.entry(table) {
                        Entry::Occupied(entry) => entry.into_mut(),
                        Entry::Vacant(entry) => match BackgroundFile::start(&lake, table, &encoder)
                        {
                            Ok(file) => entry.insert(file),
                            Err(error) => return fatal.set(error),
                        },
                    };
                    file.push(row, &encoder);
                }
            });
            while let Some(entry) = pending.first_entry() {
                if frontier.less_than(&time::batch_start(entry.key() + 1)) {
                    break; // the batch may still grow
                }
                let (capability, files) = entry.remove();
                let activator = activator.clone();
                let (send, receive) = oneshot::channel();
                encoder.spawn(async move {
                    let mut finished = Vec::with_capacity(files.len());
                    for (table, file) in files {
                        finished.push((table, file.finish().await));
                    }
                    // The files first, then the wake-up that passes them on (a stopped worker
                    // no longer cares about either).
                    let _ = send.send(finished);
                    let _ = activator.activate();
                });
                finishing.push_back((capability, receive));
            }
            while let Some((_, receive)) = finishing.front_mut() {
                let finished = match receive.try_recv() {
                    Ok(finished) => finished,
                    Err(oneshot::error::TryRecvError::Empty) => break,
                    Err(oneshot::error::TryRecvError::Closed) => {
                        fatal.set("writing data files: the encoder task stopped");
                        finishing.pop_front();
                        continue;
                    }
                };
                let (capability, _) = finishing.pop_front().expect("checked");
                let mut session = output.session(&capability);
                for (table, result) in finished {
                    match result {
                        Ok((adds, rows)) => {
                            // One flush writes one file per table; its row count rides along.
                            let mut count = rows;
                            for add in adds {
                                session.give(WrittenFile {
                                    table,
                                    add: AddAction(add),
                                    rows: std::mem::take(&mut count),
                                });
                            }
                        }
                        Err(error) => fatal.set(format!("writing data files: {error}")),
                    }
                }
            }
        }
    })
}

/// A completed data file of a table: its `Add` actions and row count.
type FinishedFile = (Table, Result<(Vec<deltalake::kernel::Add>, u64), SinkError>);

/// The entry of `capability`'s batch, holding the least capability seen for it.
fn hold<T: Default>(
    pending: &mut BTreeMap<u64, (Capability<u64>, T)>,
    capability: Capability<u64>,
) -> &mut T {
    let entry = pending
        .entry(time::batch_of(*capability.time()))
        .or_insert_with(|| (capability.clone(), T::default()));
    if capability.time() < entry.0.time() {
        entry.0 = capability;
    }
    &mut entry.1
}

/// Keeps the greater of `position` and the one held for `partition`.
fn keep_greatest(positions: &mut Positions, partition: PartitionId, position: Position) {
    let slot = positions.entry(partition).or_insert(position);
    *slot = (*slot).max(position);
}

/// Keeps the cursor of the greater position.
fn keep_latest(cursors: &mut Cursors, partition: PartitionId, cursor: Cursor) {
    match cursors.get(&partition) {
        Some(held) if held.position >= cursor.position => {}
        _ => {
            cursors.insert(partition, cursor);
        }
    }
}

/// Commits, on worker 0, every batch whose files and positions are all in: one commit per
/// table, in table order, each carrying the batch's positions. Batches that complete together
/// (the committer fell behind) are committed as one.
///
/// The commits run in order on a task of the I/O runtime ([`Committer`]); the operator holds
/// each batch's capability until its commits are done, so worker 0 keeps stepping the live
/// aggregates while the Delta log is written (and checkpointed).
pub fn commit<'scope>(
    files: Stream<'scope, u64, Vec<WrittenFile>>,
    positions: Stream<'scope, u64, Vec<ReportedPosition>>,
    lake: Lake,
    runtime: Handle,
    stats: Arc<Stats>,
    signals: CommitSignals,
) -> Stream<'scope, u64, Vec<CommittedBatch>> {
    let worker = files.scope().worker();
    files.binary_frontier(
        positions,
        Exchange::new(|_: &WrittenFile| 0),
        Exchange::new(|_: &ReportedPosition| 0),
        "commit",
        move |_capability, info| {
            let mut pending: BTreeMap<u64, (Capability<u64>, PendingBatch)> = BTreeMap::new();
            // Every cursor committed by this process: each commit carries them all, so the
            // newest commit of a table names the cursor of every partition it moved.
            let mut cursors = Cursors::new();
            // The positions every commit stores, moved or not ([`Stored`]), as of the last
            // batch handed to the committer.
            let mut carried = Positions::new();
            let activator = worker.sync_activator_for(info.address.to_vec());
            // Started with the first batch (only worker 0 receives any).
            let mut committer: Option<Committer> = None;
            // Batches handed to the committer, in order, with their capabilities.
            let mut committing: VecDeque<(Capability<u64>, Positions)> = VecDeque::new();
            move |(files, files_frontier), (positions, positions_frontier), output| {
                if signals.restart.get().is_some() || signals.fatal.get().is_some() {
                    // Nothing more is committed (the committer task has stopped or stops
                    // before its next table): let go of every batch so the dataflow can end.
                    files.for_each_stamp(|_, _| {});
                    positions.for_each_stamp(|_, _| {});
                    pending.clear();
                    committing.clear();
                    return;
                }
                if let Some(committer) = &committer {
                    for batch in committer.done() {
                        let (capability, positions) = committing.pop_front().expect("one per job");
                        output
                            .session(&capability)
                            .give(CommittedBatch { batch, positions });
                    }
                }
                files.for_each_stamp(|capability, batches| {
                    if let Some(capability) = capability.retain_least(output.output_index()) {
                        let held = hold(&mut pending, capability);
                        for batch in batches {
                            held.files.append(batch);
                        }
                    }
                });
                positions.for_each_stamp(|capability, batches| {
                    if let Some(capability) = capability.retain_least(output.output_index()) {
                        let held = hold(&mut pending, capability);
                        for ReportedPosition {
                            partition,
                            position,
                            cursor,
                            stored,
                        } in batches.flat_map(|b| b.drain(..))
                        {
                            if let Some(cursor) = cursor {
                                let cursor = Cursor { position, cursor };
                                keep_latest(&mut held.exact, partition.clone(), cursor);
                            }
                            if matches!(stored, Stored::FromBatch | Stored::Held) {
                                keep_greatest(&mut held.carried, partition.clone(), position);
                            }
                            if matches!(stored, Stored::InBatch | Stored::FromBatch) {
                                keep_greatest(&mut held.reached, partition, position);
                            }
                        }
                    }
                });
                // Every batch both inputs have passed is complete.
                let mut ready: Vec<(Capability<u64>, PendingBatch)> = Vec::new();
                while let Some(entry) = pending.first_entry() {
                    let next = time::batch_start(entry.key() + 1);
                    if files_frontier.less_than(&next) || positions_frontier.less_than(&next) {
                        break;
                    }
                    ready.push(entry.remove());
                }
                let (Some((first, _)), Some((last, _))) = (ready.first(), ready.last()) else {
                    return;
                };
                // Held until the commit is done: the least time of what it covers.
                let (batch, held) = (time::batch_of(*last.time()), first.clone());
                let mut by_table: BTreeMap<Table, Vec<deltalake::kernel::Add>> = BTreeMap::new();
                let mut covered = Positions::new();
                let mut rows = 0;
                for (_, batch) in ready {
                    for file in batch.files {
                        by_table.entry(file.table).or_default().push(file.add.0);
                        rows += file.rows;
                    }
                    for (partition, position) in batch.carried {
                        keep_greatest(&mut carried, partition, position);
                    }
                    for (partition, position) in batch.reached {
                        keep_greatest(&mut covered, partition, position);
                    }
                    for (partition, cursor) in batch.exact {
                        keep_latest(&mut cursors, partition, cursor);
                    }
                }
                // What the commit stores: the positions these batches reached, and every
                // carried one (unchanged since it was last stored, but fenced again).
                let mut stored = covered.clone();
                for (partition, &position) in &carried {
                    stored.entry(partition.clone()).or_insert(position);
                }
                // A cursor stands only for its own position.
                cursors.retain(|partition, cursor| {
                    stored
                        .get(partition)
                        .is_none_or(|&position| position == cursor.position)
                });
                if by_table.is_empty() && covered.is_empty() {
                    output.session(&held).give(CommittedBatch {
                        batch,
                        positions: Positions::new(),
                    });
                    return;
                }
                let committer = committer.get_or_insert_with(|| {
                    Committer::start(
                        lake.clone(),
                        &runtime,
                        activator.clone(),
                        stats.clone(),
                        signals.clone(),
                    )
                });
                committing.push_back((held, covered));
                committer.send(CommitJob {
                    batch,
                    adds: by_table,
                    positions: stored,
                    cursors: cursors.clone(),
                    rows,
                });
            }
        },
    )
}

/// One micro-batch to commit: the data files per table, the positions it covers and the
/// exact cursors known for them.
struct CommitJob {
    batch: u64,
    adds: BTreeMap<Table, Vec<deltalake::kernel::Add>>,
    positions: Positions,
    cursors: Cursors,
    rows: u64,
}

/// The task that commits batches in the order it is given them; the commit operator collects
/// the batches done.
struct Committer {
    jobs: tokio::sync::mpsc::UnboundedSender<CommitJob>,
    done: Arc<Mutex<VecDeque<u64>>>,
}

impl Committer {
    fn start(
        mut lake: Lake,
        runtime: &Handle,
        activator: SyncActivator,
        stats: Arc<Stats>,
        signals: CommitSignals,
    ) -> Committer {
        let CommitSignals {
            fatal,
            restart,
            committed: _,
            active,
        } = signals;
        let active = Active::new(&active);
        // Unbounded as a channel (a timely operator cannot wait on it), bounded by the
        // driver: the sources read at most BATCHES_IN_FLIGHT batches ahead of the last
        // commit, also while a lake outage holds the commits (driver.rs).
        let (jobs, mut receive) = tokio::sync::mpsc::unbounded_channel::<CommitJob>();
        let done = Arc::new(Mutex::new(VecDeque::new()));
        let finished = done.clone();
        runtime.spawn(async move {
            let _active = active;
            while let Some(job) = receive.recv().await {
                let started = std::time::Instant::now();
                let CommitJob {
                    batch,
                    mut adds,
                    positions,
                    cursors,
                    rows,
                } = job;
                for table in Table::ALL {
                    if restart.get().is_some() {
                        // The batch may cover partitions this process no longer owns: the
                        // next dataflow reads it again from the tables' positions.
                        let _ = activator.activate();
                        return;
                    }
                    let adds = adds.remove(&table).unwrap_or_default();
                    match lake.commit(table, adds, &positions, &cursors, batch).await {
                        Ok(version) => {
                            Stats::add(&stats.commits, 1);
                            tracing::debug!(%table, version, batch, "committed");
                        }
                        Err(error @ crate::sink::SinkError::Fenced { .. }) => {
                            Stats::add(&stats.fenced, 1);
                            restart.set(format!("commit of batch {batch} fenced: {error}"));
                            let _ = activator.activate();
                            return;
                        }
                        Err(error) => {
                            // The batch stays uncommitted: the workers stop on the error.
                            fatal.set(format!("commit of batch {batch} failed: {error}"));
                            let _ = activator.activate();
                            return;
                        }
                    }
                }
                Stats::add(&stats.rows_committed, rows);
                Stats::add(&stats.batches, 1);
                let latency = started.elapsed().as_micros() as u64;
                stats
                    .last_batch_latency_micros
                    .store(latency, std::sync::atomic::Ordering::Relaxed);
                stats.recent_commit_latency.record(latency);
                stats.last_commit_micros.store(
                    crate::now_micros().max(0) as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                finished.lock().push_back(batch);
                let _ = activator.activate();
            }
        });
        Committer { jobs, done }
    }

    fn send(&self, job: CommitJob) {
        // The task ends only after a failed commit, which has already set the fatal error.
        let _ = self.jobs.send(job);
    }

    /// The batches committed since the last call, in order.
    fn done(&self) -> Vec<u64> {
        self.done.lock().drain(..).collect()
    }
}
