//! The `to_each_process` stage: a copy of every record to the first worker of every process.
//!
//! State that a process keeps once for all its workers (what the tables hold, the live
//! aggregates the HTTP API serves, the other processes' totals, a stop request) must be
//! learned by every process of a cluster, once: broadcasting to every worker would update it
//! `workers` times. In a single process this is the identity on worker 0.

use timely::ExchangeData;
use timely::dataflow::StreamVec;
use timely::dataflow::operators::Exchange;
use timely::dataflow::operators::vec::Map;

/// Sends each record of `stream` to worker `p * workers` of every process `p` (timely numbers
/// the workers of process `p` from `p * workers`).
pub fn to_each_process<'scope, D: ExchangeData + Clone>(
    stream: StreamVec<'scope, u64, D>,
    processes: usize,
    workers: usize,
) -> StreamVec<'scope, u64, D> {
    let firsts: Vec<u64> = (0..processes).map(|p| (p * workers) as u64).collect();
    stream
        .flat_map(move |record| {
            firsts
                .clone()
                .into_iter()
                .map(move |first| (first, record.clone()))
        })
        .exchange(|(first, _)| *first)
        .map(|(_, record)| record)
}
