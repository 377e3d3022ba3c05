//! The `dedup` stage (SPEC §2 "Duplicates"): every distinct row passes once, however often it
//! was sent, across restarts too.
//!
//! Rows are exchanged by their 128-bit identity, so each worker owns a disjoint set of
//! identities and the result does not depend on the worker count. The state is the set of
//! identities seen (16 bytes per distinct row), seeded at start from the rows the tables
//! already hold (`history`, sent at time 0): memory grows with distinct data only.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::stats::Stats;
use crate::table::TableRow;

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

type IdentitySet = HashSet<u128, BuildHasherDefault<IdentityHasher>>;

/// A row with its identity ([`TableRow::identity`], computed once where the row is made) and
/// its arrival time (micros UTC).
pub type Keyed = (u128, TableRow, i64);

/// A row past deduplication: the row, its arrival time, and whether it is new (`false`: the
/// tables held it at start; it is passed on for the analytics, not written again).
pub type Deduped = (TableRow, i64, bool);

/// Passes the rows of `rows` not seen before (in `history` or earlier in `rows`) as new, and
/// every row of `history` as held.
pub fn dedup<'scope>(
    rows: Stream<'scope, u64, Vec<Keyed>>,
    history: Stream<'scope, u64, Vec<Keyed>>,
    stats: Arc<Stats>,
) -> Stream<'scope, u64, Vec<Deduped>> {
    let route = |(identity, _, _): &Keyed| *identity as u64;
    rows.binary_frontier(
        history,
        Exchange::new(route),
        Exchange::new(route),
        "dedup",
        move |_capability, _info| {
            let mut seen = IdentitySet::default();
            // New rows that arrived before the history was complete.
            let mut waiting: Vec<(Capability<u64>, Vec<Keyed>)> = Vec::new();
            move |(rows, _), (history, history_frontier), output| {
                history.for_each_stamp(|capability, batches| {
                    let mut session = output.session(&capability);
                    for (identity, row, arrival) in batches.flat_map(|b| b.drain(..)) {
                        if seen.insert(identity) {
                            session.give((row, arrival, false));
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
                    for (identity, row, arrival) in batch {
                        if seen.insert(identity) {
                            session.give((row, arrival, true));
                        } else {
                            duplicates += 1;
                        }
                    }
                }
                rows.for_each_stamp(|capability, batches| {
                    let mut session = output.session(&capability);
                    for (identity, row, arrival) in batches.flat_map(|b| b.drain(..)) {
                        if seen.insert(identity) {
                            session.give((row, arrival, true));
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
