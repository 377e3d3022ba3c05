//! The `dedup` stage (SPEC §2 "Duplicates"): every distinct row passes once, however often it
//! was sent, across restarts too.
//!
//! Rows are exchanged by their 128-bit identity, so each worker owns a disjoint set of
//! identities and the result does not depend on the worker count. The state is the set of
//! identities seen (16 bytes per distinct row), seeded at start from the rows the tables
//! already hold (`history`, sent at time 0): memory grows with distinct data only.

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::grow::GrowingSet;
use crate::stats::Stats;
use crate::table::{DistinctRow, Identity, KeyedRow, Novelty};

/// Identities are already uniform hashes: use their low bits as the table hash.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u128(&mut self, identity: u128) {
        self.0 = identity as u64;
    }
}

/// Grows without a pause (see [`crate::grow`]): it holds every distinct row's identity.
type IdentitySet = GrowingSet<Identity, BuildHasherDefault<IdentityHasher>>;

/// Passes the rows of `rows` not seen before (in `history` or earlier in `rows`) as new, and
/// every row of `history` as held; `held_rows`, the rows `history` will bring this worker, sizes
/// the set once.
pub fn dedup<'scope>(
    rows: Stream<'scope, u64, Vec<KeyedRow>>,
    history: Stream<'scope, u64, Vec<KeyedRow>>,
    held_rows: usize,
    stats: Arc<Stats>,
) -> Stream<'scope, u64, Vec<DistinctRow>> {
    let route = |keyed: &KeyedRow| keyed.identity.route();
    rows.binary_frontier(
        history,
        Exchange::new(route),
        Exchange::new(route),
        "dedup",
        move |_capability, _info| {
            let mut seen = IdentitySet::with_capacity_and_hasher(held_rows, Default::default());
            // New rows that arrived before the history was complete.
            let mut waiting: Vec<(Capability<u64>, Vec<KeyedRow>)> = Vec::new();
            move |(rows, _), (history, history_frontier), output| {
                history.for_each_stamp(|capability, batches| {
                    let mut session = output.session(&capability);
                    for keyed in batches.flat_map(|b| b.drain(..)) {
                        if seen.insert(keyed.identity) {
                            session.give(distinct(keyed, Novelty::Held));
                        }
                    }
                });
                if !history_frontier.is_empty() {
                    // Hold new rows until every held row is known.
                    rows.for_each_stamp(|capability, batches| {
                        if let Some(capability) = capability.retain_least(output.output_index()) {
                            waiting.push((capability, batches.flat_map(|b| b.drain(..)).collect()));
                        }
                    });
                    return;
                }
                let mut duplicates = 0;
                for (capability, batch) in waiting.drain(..) {
                    let mut session = output.session(&capability);
                    for keyed in batch {
                        if seen.insert(keyed.identity) {
                            session.give(distinct(keyed, Novelty::New));
                        } else {
                            duplicates += 1;
                        }
                    }
                }
                rows.for_each_stamp(|capability, batches| {
                    let mut session = output.session(&capability);
                    for keyed in batches.flat_map(|b| b.drain(..)) {
                        if seen.insert(keyed.identity) {
                            session.give(distinct(keyed, Novelty::New));
                        } else {
                            duplicates += 1;
                        }
                    }
                });
                Stats::add(&stats.duplicates, duplicates);
            }
        },
    )
}

fn distinct(keyed: KeyedRow, novelty: Novelty) -> DistinctRow {
    DistinctRow {
        row: keyed.row,
        arrival: keyed.arrival,
        novelty,
    }
}
