//! The `control` stage: what every process of a job must hear from any of them. A stop
//! request (a signal reached one process: the whole cluster stops reading and commits what it
//! holds, instead of the signalled process waiting for the others forever), each process's
//! totals (so the API of any process shows the job's), partitions that reached their end
//! (a drained Kinesis parent shard: its children may be read by a worker of another
//! process), and batches closed early (every worker moves to the next batch at once).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;
use timely::dataflow::operators::Inspect;

use super::time::Shift;
use crate::connectors::{FinishedPartitions, PartitionId};
use crate::stats::{Counters, Stats};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Control {
    /// Stop reading, commit what is held, end.
    Stop,
    /// A process's totals at the end of a batch.
    Counters { process: usize, counters: Counters },
    /// A partition reached its end (see [`crate::connectors::Source::take_finished`]).
    Finished(PartitionId),
    /// A worker's batch filled and closed: the job's [`Shift`] is now at least this. Until a
    /// process hears it, its workers stay in the closed batch and hold its commit back.
    Shift(u64),
}

/// What the control messages act on, in one process.
pub struct Controlled {
    pub process: usize,
    pub stop: Arc<AtomicBool>,
    pub stats: Arc<Stats>,
    pub finished: FinishedPartitions,
    pub shift: Shift,
}

/// Applies the control messages that reach this process (fanned out to each process once):
/// a stop sets `stop`, another process's totals go to `stats.peers`, a finished partition to
/// `finished`, a shift raises `shift`.
pub fn control<'scope>(
    messages: StreamVec<'scope, u64, Control>,
    on: Controlled,
) -> StreamVec<'scope, u64, Control> {
    messages.inspect(move |message| match message {
        Control::Stop => {
            if !on.stop.swap(true, Ordering::Relaxed) {
                tracing::info!("stop requested by another process of the cluster");
            }
        }
        Control::Counters { process, counters } => {
            if *process != on.process {
                on.stats.peers.lock().insert(*process, counters.clone());
            }
        }
        Control::Finished(partition) => {
            on.finished.lock().insert(partition.clone());
        }
        Control::Shift(shift) => {
            on.shift.raise(*shift);
        }
    })
}
