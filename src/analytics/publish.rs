//! From the deduplicated rows to the [`AggregateStore`]: `route` splits rows for the sink from
//! facts for the analytics, and `publish` (on worker 0) applies the aggregates' changes once
//! the frontier has passed them, so every published snapshot is consistent, and keeps the
//! time-windowed `trending_categories`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;

use super::median::Median;
use super::names::{self, Name};
use super::queries::{Fact, Update, index_of, median_key};
use super::{AGGREGATES, AggregateStore, Cell};
use crate::stats::Stats;
use crate::table::{DistinctRow, Novelty, TableRow};

/// What the analytics learn besides the facts: when records arrived (for freshness) and which
/// pin rows were first seen when (for `trending_categories`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Signal {
    /// The earliest arrival among the new rows of a time.
    Arrival(i64),
    /// A distinct pin row's category and first-seen time.
    Trend(Name, i64),
}

/// A deduplicated row, routed: to the tables, to the analytics, or a signal.
#[derive(Clone, Debug)]
pub enum Routed {
    Write(TableRow),
    Fact(Fact),
    Signal(Signal),
}

/// Splits each deduplicated row into what is written (new rows) and what the analytics need
/// (a small [`Fact`] of every clean row, held or new), without copying rows.
pub fn route<'scope>(
    rows: Stream<'scope, u64, Vec<DistinctRow>>,
    analytics: bool,
) -> Stream<'scope, u64, Vec<Routed>> {
    rows.unary(Pipeline, "route", move |_, _| {
        move |input, output| {
            input.for_each_stamp(|capability, batches| {
                let mut session = output.session(&capability);
                let mut earliest: Option<i64> = None;
                for DistinctRow {
                    row,
                    arrival,
                    novelty,
                } in batches.flat_map(|b| b.drain(..))
                {
                    if analytics && let TableRow::Clean(clean) = &row {
                        let fact = Fact::of(clean);
                        if let Fact::Pin { category, .. } = &fact {
                            session.give(Routed::Signal(Signal::Trend(*category, arrival)));
                        }
                        session.give(Routed::Fact(fact));
                    }
                    if novelty == Novelty::New {
                        earliest = Some(earliest.map_or(arrival, |e| e.min(arrival)));
                        session.give(Routed::Write(row));
                    }
                }
                if analytics && let Some(arrival) = earliest {
                    session.give(Routed::Signal(Signal::Arrival(arrival)));
                }
            });
        }
    })
}

/// Arrival-time buckets for the trending window (the window moves in steps of this).
const TREND_BUCKET_MICROS: i64 = 100_000;

/// Distinct pin rows per category over a sliding window of first-seen time: per-bucket counts
/// plus running totals, so moving the window costs the buckets that leave it.
struct Trending {
    window_micros: i64,
    buckets: BTreeMap<i64, HashMap<Name, i64>>,
    totals: HashMap<Name, i64>,
}

impl Trending {
    fn new(window: Duration) -> Self {
        Trending {
            window_micros: window.as_micros() as i64,
            buckets: BTreeMap::new(),
            totals: HashMap::new(),
        }
    }

    fn add(&mut self, category: Name, first_seen: i64) {
        let bucket = first_seen.div_euclid(TREND_BUCKET_MICROS);
        *self
            .buckets
            .entry(bucket)
            .or_default()
            .entry(category)
            .or_default() += 1;
        *self.totals.entry(category).or_default() += 1;
    }

    /// The counts of the rows first seen after `now - window`; older buckets leave.
    fn rows(&mut self, now: i64) -> Vec<Vec<Cell>> {
        let oldest = (now - self.window_micros).div_euclid(TREND_BUCKET_MICROS) + 1;
        let kept = self.buckets.split_off(&oldest);
        for (_, bucket) in std::mem::replace(&mut self.buckets, kept) {
            for (category, count) in bucket {
                if let Some(total) = self.totals.get_mut(&category) {
                    *total -= count;
                    if *total <= 0 {
                        self.totals.remove(&category);
                    }
                }
            }
        }
        let mut rows: Vec<Vec<Cell>> = self
            .totals
            .iter()
            .map(|(category, posts)| vec![Cell::Text(names::text(*category)), Cell::Long(*posts)])
            .collect();
        rows.sort();
        rows
    }
}

/// `profile_popularity`: the `k` posters with the highest follower_count, ties at the `k`th
/// place kept.
fn top_posters(posters: &BTreeMap<(i64, Name), i64>, k: usize) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    let mut cutoff = None;
    for ((follower_count, poster), posts) in posters.iter().rev() {
        if rows.len() >= k && cutoff != Some(*follower_count) {
            break;
        }
        cutoff = Some(*follower_count);
        rows.push(vec![
            Cell::Text(names::text(*poster)),
            Cell::Long(*follower_count),
            Cell::Long(*posts),
        ]);
    }
    rows
}

/// Whether aggregate `index` is a median (q5, q7, q8: kept in [`Median`]s).
fn is_median(index: usize) -> bool {
    AGGREGATES[index].name.contains("_median_")
}

/// Applies aggregate changes on worker 0 once the frontier passed them, publishes the changed
/// aggregates, records freshness, and keeps `trending_categories`.
pub fn publish<'scope>(
    updates: Stream<'scope, u64, Vec<(Update, u64, isize)>>,
    signals: Stream<'scope, u64, Vec<Signal>>,
    store: AggregateStore,
    stats: Arc<Stats>,
    window: Duration,
) -> Stream<'scope, u64, Vec<()>> {
    // Everything is exchanged to worker 0; the other workers' instances only drain nothing.
    let publisher = updates.scope().index() == 0;
    updates.binary_frontier::<_, CapacityContainerBuilder<Vec<()>>, _, _, _, _>(
        signals,
        Exchange::new(|_: &(Update, u64, isize)| 0),
        Exchange::new(|_: &Signal| 0),
        "publish",
        move |_capability, _info| {
            let trending_index = index_of("trending_categories");
            let mut contents: Vec<BTreeMap<Vec<Cell>, isize>> =
                vec![BTreeMap::new(); AGGREGATES.len()];
            // Held per time until the frontier passes it (taken in order, never rescanned).
            let mut pending: BTreeMap<u64, Vec<(Update, isize)>> = BTreeMap::new();
            let profile_index = index_of("profile_popularity");
            // Every poster's (follower_count, poster) -> posts, ordered for the top 100.
            let mut posters: BTreeMap<(i64, Name), i64> = BTreeMap::new();
            // The medians' multisets per (aggregate, age group, join year).
            let mut medians: BTreeMap<(usize, u8, i32), Median> = BTreeMap::new();
            let mut arrivals: BTreeMap<u64, i64> = BTreeMap::new();
            let mut trends: BTreeMap<u64, Vec<(Name, i64)>> = BTreeMap::new();
            let mut trending = Trending::new(window);
            move |(updates, updates_frontier), (signals, signals_frontier), _output| {
                updates.for_each_stamp(|_, batches| {
                    for (update, time, diff) in batches.flat_map(|b| b.drain(..)) {
                        pending.entry(time).or_default().push((update, diff));
                    }
                });
                signals.for_each_stamp(|capability, batches| {
                    let Some(&time) = capability.least() else {
                        return;
                    };
                    for signal in batches.flat_map(|b| b.drain(..)) {
                        match signal {
                            Signal::Arrival(arrival) => {
                                let earliest = arrivals.entry(time).or_insert(arrival);
                                *earliest = (*earliest).min(arrival);
                            }
                            Signal::Trend(category, first_seen) => {
                                trends.entry(time).or_default().push((category, first_seen))
                            }
                        }
                    }
                });
                let done = |time: &u64| {
                    !updates_frontier.less_equal(time) && !signals_frontier.less_equal(time)
                };
                // Everything before the first time not done.
                fn take_done<V>(map: &mut BTreeMap<u64, V>, done: impl Fn(&u64) -> bool) -> Vec<V> {
                    let mut taken = Vec::new();
                    while let Some(entry) = map.first_entry() {
                        if !done(entry.key()) {
                            break;
                        }
                        taken.push(entry.remove());
                    }
                    taken
                }
                let mut dirty = vec![false; AGGREGATES.len()];
                // A time's median values, netted first: within a time a value's retraction may
                // come before its addition.
                let mut values: BTreeMap<(usize, u8, i32, i64), isize> = BTreeMap::new();
                for (update, diff) in take_done(&mut pending, done).into_iter().flatten() {
                    let diff = &diff;
                    match &update {
                        Update::Row(index, row) => {
                            let count = contents[*index].entry(row.clone()).or_default();
                            *count += diff;
                            if *count == 0 {
                                contents[*index].remove(row);
                            }
                            dirty[*index] = true;
                        }
                        Update::PosterTotal {
                            poster,
                            follower_count,
                            posts,
                        } => {
                            if *diff > 0 {
                                posters.insert((*follower_count, *poster), *posts);
                            } else if posters.get(&(*follower_count, *poster)) == Some(posts) {
                                posters.remove(&(*follower_count, *poster));
                            }
                            dirty[profile_index] = true;
                        }
                        Update::MedianValue {
                            index,
                            group,
                            year,
                            value,
                        } => *values.entry((*index, *group, *year, *value)).or_default() += diff,
                    }
                }
                for ((index, group, year, value), diff) in values {
                    let median = medians.entry((index, group, year)).or_default();
                    if !median.update(value, diff) {
                        tracing::warn!(
                            aggregate = AGGREGATES[index].name,
                            value,
                            "a median value was retracted that was never added"
                        );
                    }
                    if median.is_empty() {
                        medians.remove(&(index, group, year));
                    }
                    dirty[index] = true;
                }
                for (index, changed) in dirty.iter_mut().enumerate() {
                    if !is_median(index) || !std::mem::take(changed) {
                        continue;
                    }
                    let rows = medians
                        .range((index, 0, i32::MIN)..=(index, u8::MAX, i32::MAX))
                        .filter_map(|(&(_, group, year), median)| {
                            let mut row = median_key(index, group, year);
                            row.push(Cell::Double(median.twice()? as f64 / 2.0));
                            Some(row)
                        })
                        .collect();
                    store.publish(AGGREGATES[index].name, rows);
                }
                for (category, first_seen) in take_done(&mut trends, done).into_iter().flatten() {
                    trending.add(category, first_seen);
                }
                if dirty[profile_index] {
                    dirty[profile_index] = false;
                    store.publish(AGGREGATES[profile_index].name, top_posters(&posters, 100));
                }
                for (index, changed) in dirty.into_iter().enumerate() {
                    if changed {
                        let rows = contents[index]
                            .iter()
                            .filter(|(_, count)| **count > 0)
                            .map(|(row, _)| row.clone())
                            .collect();
                        store.publish(AGGREGATES[index].name, rows);
                    }
                }
                let now = crate::now_micros();
                if publisher {
                    store.publish(AGGREGATES[trending_index].name, trending.rows(now));
                }
                for arrival in take_done(&mut arrivals, done) {
                    stats.record_freshness((now - arrival).max(0) as u64);
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trending_rows_leave_the_window_on_time() {
        let mut trending = Trending::new(Duration::from_secs(5));
        trending.add(names::intern(Some("art")), 1_000_000);
        trending.add(names::intern(Some("art")), 3_000_000);
        trending.add(Name::NULL, 3_000_000);
        let art = |n| vec![Cell::Text(Some("art".into())), Cell::Long(n)];
        assert_eq!(
            trending.rows(4_000_000),
            vec![vec![Cell::Text(None), Cell::Long(1)], art(2)]
        );
        assert_eq!(
            trending.rows(6_500_000),
            vec![vec![Cell::Text(None), Cell::Long(1)], art(1)]
        );
        assert_eq!(trending.rows(8_500_000), Vec::<Vec<Cell>>::new());
        trending.add(names::intern(Some("art")), 1_000_000); // older than the window: leaves at once
        assert_eq!(trending.rows(8_600_000), Vec::<Vec<Cell>>::new());
    }
}
