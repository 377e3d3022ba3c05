//! Reductions more than one query uses.
//!
//! The analytics' inputs only grow: each distinct row reaches them once and is never taken
//! back (`dedup` passes a row once per job, and a restart builds the aggregates again from the
//! tables). So the per-key reductions here fold each new value into a small state
//! ([`accumulate`]) instead of keeping every value arranged to re-read on each change, as a
//! differential `reduce` must to take retractions back.

use std::collections::BTreeMap;
use std::hash::Hash;

use differential_dataflow::{AsCollection, Data, ExchangeData, Hashable};
use rustc_hash::FxHashMap as HashMap;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Capability, InputCapability};

use super::Collection;

/// The `(key, value)` pairs a per-key reduction reads: projected from `input` (`None`: left
/// out) and combined in each batch, where equal pairs of a time become one with their
/// multiplicities summed, before they are exchanged to the worker that owns the key.
///
/// For pairs from small domains (a country and a category, an age group and a
/// follower_count), a batch of thousands of rows becomes tens or hundreds of updates, which
/// the reductions fold as cheaply as one ([`accumulate`] takes a value with its
/// multiplicity). Across processes, this is what crosses the network. Pairs that are mostly
/// distinct (a poster and its follower_count) are projected with a plain `flat_map`:
/// combining them would cost a hash a row and save nothing.
pub fn combined<'scope, D, K, V>(
    input: Collection<'scope, D>,
    name: &str,
    project: impl Fn(D) -> Option<(K, V)> + 'static,
) -> Collection<'scope, (K, V)>
where
    D: Data,
    K: ExchangeData + Hash + Eq,
    V: ExchangeData + Hash + Eq,
{
    input
        .inner
        .unary(Pipeline, name, move |_capability, _info| {
            let mut combined: HashMap<((K, V), u64), isize> = HashMap::default();
            move |input, output| {
                input.for_each_stamp(|capability, batches| {
                    for (record, time, diff) in batches.flat_map(|b| b.drain(..)) {
                        if let Some(pair) = project(record) {
                            *combined.entry((pair, time)).or_default() += diff;
                        }
                    }
                    let mut session = output.session(&capability);
                    for ((pair, time), diff) in combined.drain() {
                        if diff != 0 {
                            session.give((pair, time, diff));
                        }
                    }
                });
            }
        })
        .as_collection()
}

/// Per key, a state folded from the values of an insert-only collection, and the rows the
/// state gives: a differential collection whose rows for a key are, at every time, `rows` of
/// the state folded from all the key's values up to that time, each given as `emit(key, row)`
/// (the query's own row, so no operator of its own turns them into it).
///
/// Each time is applied once the input frontier has passed it, in time order; for every key
/// that changed, the rows it gave before are retracted and the ones it gives now added (rows
/// in both are left alone). Work is O(1) per value plus the changed keys' rows; memory is a
/// state per key. `fold` gets each value with its multiplicity, which is positive on an
/// insert-only input; a retraction cannot be folded out, so one is logged as the broken
/// invariant it is and left out.
pub fn accumulate<'scope, K, V, S, R, O>(
    input: Collection<'scope, (K, V)>,
    name: &str,
    mut fold: impl FnMut(&mut S, V, isize) + 'static,
    rows: impl Fn(&S, &mut Vec<R>) + 'static,
    emit: impl Fn(&K, R) -> O + 'static,
) -> Collection<'scope, O>
where
    K: ExchangeData + Hash + Eq,
    V: ExchangeData,
    S: Default + 'static,
    R: ExchangeData + Ord,
    O: Data,
{
    let operator = name.to_owned();
    let exchange = Exchange::new(|((key, _), _, _): &((K, V), u64, isize)| key.hashed());
    input
        .inner
        .unary_frontier(exchange, name, move |_capability, _info| {
            let mut states: HashMap<K, S> = HashMap::default();
            // Values held until the frontier passes their time, by time.
            let mut pending: BTreeMap<u64, Held<(K, V, isize)>> = BTreeMap::new();
            let (mut before, mut after) = (Vec::new(), Vec::new());
            move |(input, frontier), output| {
                input.for_each_stamp(|capability, batches| {
                    for ((key, value), time, diff) in batches.flat_map(|b| b.drain(..)) {
                        if !insert_only(&operator, diff) {
                            continue;
                        }
                        hold(&mut pending, &capability, time).push((key, value, diff));
                    }
                });
                for (capability, mut values) in
                    take_done(&mut pending, |time| !frontier.less_equal(time))
                {
                    // A key's values together: its old rows are read once per time.
                    values.sort_unstable_by_key(|(key, _, _)| key.hashed());
                    let mut session = output.session(&capability);
                    let time = *capability.time();
                    let mut values = values.into_iter().peekable();
                    while let Some((key, value, diff)) = values.next() {
                        let state = states.entry(key.clone()).or_default();
                        rows(state, &mut before);
                        fold(state, value, diff);
                        while let Some((_, value, diff)) =
                            values.next_if(|(next, _, _)| *next == key)
                        {
                            fold(state, value, diff);
                        }
                        rows(state, &mut after);
                        changes(&mut before, &mut after, |row, diff| {
                            session.give((emit(&key, row), time, diff));
                        });
                    }
                }
            }
        })
        .as_collection()
}

/// Whether an update of an insert-only operator is one (a positive multiplicity); a
/// retraction is logged as the broken invariant it is, and left out by the caller.
pub(super) fn insert_only(operator: &str, diff: isize) -> bool {
    if diff <= 0 {
        tracing::error!(
            operator,
            diff,
            "a retraction reached an insert-only operator: left out"
        );
    }
    diff > 0
}

/// The values of every time before the first one not `done`, in time order: what an
/// operator that holds its input by time may apply once the frontier has passed it.
pub(super) fn take_done<V>(map: &mut BTreeMap<u64, V>, done: impl Fn(&u64) -> bool) -> Vec<V> {
    let mut taken = Vec::new();
    while let Some(entry) = map.first_entry() {
        if !done(entry.key()) {
            break;
        }
        taken.push(entry.remove());
    }
    taken
}

/// The values of one time, held with a capability for it until the frontier passes it.
pub(super) type Held<D> = (Capability<u64>, Vec<D>);

/// The values held for `time` (a capability for it taken from `capability` when the time is
/// new), to push a value onto: the input side of [`take_done`].
pub(super) fn hold<'a, D>(
    pending: &'a mut BTreeMap<u64, Held<D>>,
    capability: &InputCapability<u64>,
    time: u64,
) -> &'a mut Vec<D> {
    &mut pending
        .entry(time)
        .or_insert_with(|| (capability.delayed(&time, 0), Vec::new()))
        .1
}

/// Gives `-1` for each row of `before` not in `after` and `+1` for each row of `after` not in
/// `before` (as multisets), emptying both.
pub(super) fn changes<R: Ord>(
    before: &mut Vec<R>,
    after: &mut Vec<R>,
    mut give: impl FnMut(R, isize),
) {
    if before == after {
        before.clear();
        after.clear();
        return;
    }
    before.sort_unstable();
    after.sort_unstable();
    let (mut old, mut new) = (before.drain(..).peekable(), after.drain(..).peekable());
    loop {
        match (old.peek(), new.peek()) {
            (Some(o), Some(n)) if o == n => {
                old.next();
                new.next();
            }
            (Some(o), Some(n)) if o < n => give(old.next().expect("peeked"), -1),
            (Some(_), Some(_)) | (None, Some(_)) => give(new.next().expect("peeked"), 1),
            (Some(_), None) => give(old.next().expect("peeked"), -1),
            (None, None) => break,
        }
    }
}

/// For every key, the values with the highest count, all ties kept, each given as
/// `emit(key, (value, count))`.
pub fn most_frequent<'scope, K, V, O>(
    pairs: Collection<'scope, (K, V)>,
    emit: impl Fn(&K, (V, isize)) -> O + 'static,
) -> Collection<'scope, O>
where
    K: ExchangeData + Hash + Eq,
    V: ExchangeData + Hash + Eq + Ord,
    O: Data,
{
    /// Every value's count, and the highest.
    struct Counts<V> {
        counts: HashMap<V, isize>,
        top: isize,
    }
    impl<V> Default for Counts<V> {
        fn default() -> Self {
            Counts {
                counts: HashMap::default(),
                top: 0,
            }
        }
    }
    accumulate(
        pairs,
        "most_frequent",
        |state: &mut Counts<V>, value, diff| {
            let count = state.counts.entry(value).or_default();
            *count += diff;
            state.top = state.top.max(*count);
        },
        |state, rows| {
            let top = state.top;
            rows.extend(
                state
                    .counts
                    .iter()
                    .filter(|(_, count)| **count == top)
                    .map(|(value, count)| (value.clone(), *count)),
            );
        },
        emit,
    )
}

/// For every key, the values of the highest `rank`, all ties kept, each given as
/// `emit(key, value)`.
pub fn top_with_ties<'scope, K, V, O>(
    input: Collection<'scope, (K, V)>,
    rank: fn(&V) -> i64,
    emit: impl Fn(&K, V) -> O + 'static,
) -> Collection<'scope, O>
where
    K: ExchangeData + Hash + Eq,
    V: ExchangeData + Ord,
    O: Data,
{
    /// The highest rank seen and the distinct values of that rank, each with its count.
    struct Top<V> {
        rank: i64,
        values: BTreeMap<V, isize>,
    }
    impl<V> Default for Top<V> {
        fn default() -> Self {
            Top {
                rank: i64::MIN,
                values: BTreeMap::new(),
            }
        }
    }
    accumulate(
        input,
        "top_with_ties",
        move |state: &mut Top<V>, value, diff| {
            let value_rank = rank(&value);
            if value_rank > state.rank {
                state.rank = value_rank;
                state.values.clear();
            }
            if value_rank == state.rank {
                *state.values.entry(value).or_default() += diff;
            }
        },
        |state, rows| rows.extend(state.values.keys().cloned()),
        emit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_retract_what_went_and_add_what_came() {
        let mut given = Vec::new();
        changes(&mut vec![1, 2, 2, 5], &mut vec![2, 3, 5, 5], |row, diff| {
            given.push((row, diff))
        });
        assert_eq!(given, vec![(1, -1), (2, -1), (3, 1), (5, 1)]);
        let (mut before, mut after) = (vec![4], vec![4]);
        changes(&mut before, &mut after, |_, _| panic!("nothing changed"));
        assert!(before.is_empty() && after.is_empty());
    }
}
