//! The `control` stage: what every process of a job must hear from any of them. A stop
//! request (a signal reached one process: the whole cluster stops reading and commits what it
//! holds, instead of the signalled process waiting for the others forever), each process's
//! totals (so the API of any process shows the job's), and partitions that reached their end
//! (a drained Kinesis parent shard: its children may be read by a worker of another
//! process).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;
use timely::dataflow::operators::Inspect;

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
}

/// What the control messages act on, in one process.
pub struct Controlled {
    pub process: usize,
    pub stop: Arc<AtomicBool>,
    pub stats: Arc<Stats>,
    pub finished: FinishedPartitions,
}

/// Applies the control messages that reach this process (fanned out to each process once):
/// a stop sets `stop`, another process's totals go to `stats.peers`, a finished partition to
/// `finished`.
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
    })
}
