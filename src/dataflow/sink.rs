//! The sink stages: `write` (every worker writes the data files of its rows when a batch is
//! complete) and `commit` (one committer, worker 0, commits each table once per batch with
//! the files of all workers and the positions the batch covers).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::{Arc, Mutex};

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;
use tokio::runtime::Handle;

use super::stats::Stats;
use super::time;
use crate::sink::Lake;
use crate::sink::delta::BackgroundFile;
use crate::source::Positions;
use crate::table::{Table, TableRow};

/// The first fatal error of any stage; the workers stop when they see one.
#[derive(Clone, Default)]
pub struct Fatal(Arc<Mutex<Option<String>>>);

impl Fatal {
    pub fn set(&self, error: impl std::fmt::Display) {
        let mut slot = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        if slot.is_none() {
            tracing::error!("{error}");
            *slot = Some(error.to_string());
        }
    }
    pub fn get(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }
}

/// Set when the dataflow must start again from the tables (a consumer-group rebalance, or
/// a commit fenced off by another process): the workers stop without committing what they
/// hold, and the engine rebuilds the dataflow (positions and deduplication state read again).
#[derive(Clone, Default)]
pub struct Restart(Arc<Mutex<Option<String>>>);

impl Restart {
    pub fn set(&self, reason: impl std::fmt::Display) {
        let mut slot = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        if slot.is_none() {
            tracing::info!("restarting the dataflow from the tables: {reason}");
            *slot = Some(reason.to_string());
        }
    }
    pub fn get(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }
}

/// What the committer tells the rest of the engine: a fatal error, a restart, the positions
/// committed.
pub struct CommitSignals {
    pub fatal: Fatal,
    pub restart: Restart,
    pub committed: Committed,
}

/// A data file written for a table: its `Add` action as JSON (plain text crosses process
/// boundaries safely) and its row count.
pub type WrittenFile = (Table, String, u64);

/// A source position reported for a batch: partition id and position.
pub type Reported = (String, i64);

/// The positions the tables hold, as last committed, with a count of commits: the drivers
/// pass them on to their sources ([`crate::source::Source::committed`]).
#[derive(Clone, Default)]
pub struct Committed(Arc<Mutex<(u64, Positions)>>);

impl Committed {
    fn record(&self, positions: &Positions) {
        let mut committed = self.0.lock().unwrap_or_else(|p| p.into_inner());
        committed.0 += 1;
        for (partition, position) in positions {
            committed.1.insert(partition.clone(), *position);
        }
    }

    /// The sum of every position committed so far.
    fn total(&self) -> u64 {
        let committed = self.0.lock().unwrap_or_else(|p| p.into_inner());
        committed.1.values().map(|&p| p.max(0) as u64).sum()
    }

    /// The positions, if they changed since commit count `seen` (which is updated).
    pub fn since(&self, seen: &mut u64) -> Option<Positions> {
        let committed = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (committed.0 != *seen).then(|| {
            *seen = committed.0;
            committed.1.clone()
        })
    }
}

/// Buffers each batch's rows into data files (one per table and worker), completed once the
/// batch is.
pub fn write<'scope>(
    rows: Stream<'scope, u64, Vec<TableRow>>,
    lake: Lake,
    runtime: Handle,
    fatal: Fatal,
) -> Stream<'scope, u64, Vec<WrittenFile>> {
    rows.unary_frontier(Pipeline, "write", move |_capability, _info| {
        // Per batch: a capability for its least time seen, and a file per table.
        let mut pending: BTreeMap<u64, (Capability<u64>, BTreeMap<Table, BackgroundFile>)> =
            BTreeMap::new();
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
                        Entry::Vacant(entry) => match BackgroundFile::start(&lake, table, &runtime)
                        {
                            Ok(file) => entry.insert(file),
                            Err(error) => return fatal.set(error),
                        },
                    };
                    file.push(row, &runtime);
                }
            });
            while let Some(entry) = pending.first_entry() {
                if frontier.less_than(&time::batch_start(entry.key() + 1)) {
                    break; // the batch may still grow
                }
                let (capability, files) = entry.remove();
                let mut session = output.session(&capability);
                for (table, file) in files {
                    match file.finish(&runtime) {
                        Ok((adds, rows)) => {
                            // One flush writes one file per table; its row count rides along.
                            let mut count = rows;
                            for add in adds {
                                match serde_json::to_string(&add) {
                                    Ok(json) => {
                                        session.give((table, json, std::mem::take(&mut count)))
                                    }
                                    Err(e) => fatal.set(format!("table {table}: {e}")),
                                }
                            }
                        }
                        Err(error) => fatal.set(format!("writing data files: {error}")),
                    }
                }
            }
        }
    })
}

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

/// Commits, on worker 0, every batch whose files and positions are all in: one commit per
/// table, in table order, each carrying the batch's positions. Batches that complete together
/// (the committer fell behind) are committed as one.
pub fn commit<'scope>(
    files: Stream<'scope, u64, Vec<WrittenFile>>,
    positions: Stream<'scope, u64, Vec<Reported>>,
    mut lake: Lake,
    runtime: Handle,
    stats: Arc<Stats>,
    signals: CommitSignals,
) -> Stream<'scope, u64, Vec<u64>> {
    let CommitSignals {
        fatal,
        restart,
        committed,
    } = signals;
    files.binary_frontier(
        positions,
        Exchange::new(|_: &WrittenFile| 0),
        Exchange::new(|_: &Reported| 0),
        "commit",
        move |_capability, _info| {
            type Batch = (Vec<WrittenFile>, Positions);
            let mut pending: BTreeMap<u64, (Capability<u64>, Batch)> = BTreeMap::new();
            move |(files, files_frontier), (positions, positions_frontier), output| {
                files.for_each_stamp(|capability, batches| {
                    if let Some(capability) = capability.retain_least(output.output_index()) {
                        let (files, _) = hold(&mut pending, capability);
                        for batch in batches {
                            files.append(batch);
                        }
                    }
                });
                positions.for_each_stamp(|capability, batches| {
                    if let Some(capability) = capability.retain_least(output.output_index()) {
                        let (_, reached) = hold(&mut pending, capability);
                        for (partition, position) in batches.flat_map(|b| b.drain(..)) {
                            let slot = reached.entry(partition.into()).or_insert(position);
                            *slot = (*slot).max(position);
                        }
                    }
                });
                // Every batch both inputs have passed is complete.
                let mut ready: Vec<(Capability<u64>, Batch)> = Vec::new();
                while let Some(entry) = pending.first_entry() {
                    let next = time::batch_start(entry.key() + 1);
                    if files_frontier.less_than(&next) || positions_frontier.less_than(&next) {
                        break;
                    }
                    ready.push(entry.remove());
                }
                let Some((last, _)) = ready.last() else {
                    return;
                };
                let (batch, last) = (time::batch_of(*last.time()), last.clone());
                let mut by_table: BTreeMap<Table, Vec<deltalake::kernel::Add>> = BTreeMap::new();
                let mut covered = Positions::new();
                let mut rows = 0;
                for (_, (files, positions)) in ready {
                    for (table, json, count) in files {
                        match serde_json::from_str(&json) {
                            Ok(add) => by_table.entry(table).or_default().push(add),
                            Err(e) => fatal.set(format!("table {table}: bad Add action: {e}")),
                        }
                        rows += count;
                    }
                    for (partition, position) in positions {
                        let slot = covered.entry(partition).or_insert(position);
                        *slot = (*slot).max(position);
                    }
                }
                if by_table.is_empty() && covered.is_empty() {
                    output.session(&last).give(batch);
                    return;
                }
                let started = std::time::Instant::now();
                for table in Table::ALL {
                    if restart.get().is_some() {
                        // The batch may cover partitions this process no longer owns.
                        return;
                    }
                    let adds = by_table.remove(&table).unwrap_or_default();
                    match runtime.block_on(lake.commit(table, adds, &covered, batch)) {
                        Ok(version) => {
                            Stats::add(&stats.commits, 1);
                            tracing::debug!(%table, version, batch, "committed");
                        }
                        Err(error @ crate::sink::SinkError::Fenced { .. }) => {
                            Stats::add(&stats.fenced, 1);
                            restart.set(format!("commit of batch {batch} fenced: {error}"));
                            return;
                        }
                        Err(error) => {
                            fatal.set(format!("commit of batch {batch} failed: {error}"));
                            return;
                        }
                    }
                }
                committed.record(&covered);
                stats
                    .positions_committed
                    .store(committed.total(), std::sync::atomic::Ordering::Relaxed);
                Stats::add(&stats.rows_committed, rows);
                Stats::add(&stats.batches, 1);
                stats.last_batch_latency_micros.store(
                    started.elapsed().as_micros() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                output.session(&last).give(batch);
            }
        },
    )
}
