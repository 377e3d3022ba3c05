//! The `control` stage: what every process of a job must hear from any of them. A stop
//! request (a signal reached one process: the whole cluster stops reading and commits what it
//! holds, instead of the signalled process waiting for the others forever) and each process's
//! totals (so the API of any process shows the job's).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;
use timely::dataflow::operators::Inspect;

use crate::stats::{Counters, Stats};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Control {
    /// Stop reading, commit what is held, end.
    Stop,
    /// A process's totals at the end of a batch.
    Counters { process: usize, counters: Counters },
}

/// Applies the control messages that reach this process (fanned out to each process once):
/// a stop sets `stop`, another process's totals go to `stats.peers`.
pub fn control<'scope>(
    messages: StreamVec<'scope, u64, Control>,
    process: usize,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
) -> StreamVec<'scope, u64, Control> {
    messages.inspect(move |message| match message {
        Control::Stop => {
            if !stop.swap(true, Ordering::Relaxed) {
                tracing::info!("stop requested by another process of the cluster");
            }
        }
        Control::Counters {
            process: from,
            counters,
        } => {
            if *from != process {
                stats.peers.lock().insert(*from, counters.clone());
            }
        }
    })
}
