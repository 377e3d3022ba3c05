//! `profile_popularity`: the top 100 posters by follower_count (their highest), with their
//! number of distinct posts, ties on the 100th place kept.
//!
//! The dataflow keeps each poster's total on the worker that owns the poster, and each worker
//! ranks its own posters in an ordered index ([`TopPosters`], [`local_top`]): only its top
//! (ties kept) can hold a poster of the job's top, so only changes to it go to the publisher,
//! which ranks the union of the workers' tops the same way.

use std::collections::BTreeMap;

use differential_dataflow::consolidation::consolidate;
use differential_dataflow::{AsCollection, Data};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use super::facts::Fact;
use super::names::{Dictionary, Name};
use super::operators::{Held, accumulate, changes, hold, take_done};
use super::view::{Settings, View};
use super::{
    Aggregate, AggregateId, AggregateRow, Cell, Change, Collection, Column, Inputs, Query, Update,
};

pub const AGGREGATE: Aggregate = Aggregate {
    name: "profile_popularity",
    columns: &[
        Column::text("poster_name"),
        Column::long("follower_count"),
        Column::long("posts"),
    ],
    query: &ProfilePopularity,
};

/// How many posters are ranked (ties at the last place kept).
const TOP: usize = 100;

pub struct ProfilePopularity;

impl Query for ProfilePopularity {
    fn build<'scope>(
        &self,
        id: AggregateId,
        inputs: &Inputs<'scope>,
    ) -> Option<Collection<'scope, Update>> {
        // Per poster: their highest follower_count and number of distinct posts.
        // Mostly distinct pairs: not combined (see `combined`).
        let pins = inputs.facts.clone().flat_map(|fact| match fact {
            Fact::Pin {
                poster_name,
                follower_count,
                ..
            } if !poster_name.is_null() => Some((poster_name, follower_count)),
            _ => None,
        });
        let totals = accumulate(
            pins,
            "poster_totals",
            |total: &mut Option<(i64, isize)>, followers, diff| {
                let (highest, posts) = total.get_or_insert((followers, 0));
                *highest = (*highest).max(followers);
                *posts += diff;
            },
            |total, rows| rows.extend(total.map(|(highest, posts)| (highest, posts as i64))),
            |&poster, total| (poster, total),
        );
        let top = local_top(totals, move |(poster, (follower_count, posts))| Update {
            aggregate: id,
            change: Change::PosterTotal {
                poster,
                follower_count,
                posts,
            },
        });
        Some(top)
    }

    fn view(&self, _settings: &Settings) -> Box<dyn View> {
        Box::<TopPosters>::default()
    }
}

/// Every poster's (follower_count, poster) -> posts, ordered for the top [`TOP`].
#[derive(Default)]
pub struct TopPosters {
    posters: BTreeMap<(i64, Name), i64>,
    changed: bool,
}

impl View for TopPosters {
    fn apply(&mut self, change: Change, diff: isize) -> bool {
        let Change::PosterTotal {
            poster,
            follower_count,
            posts,
        } = change
        else {
            return false;
        };
        self.changed = true;
        let key = (follower_count, poster);
        if diff > 0 {
            self.posters.insert(key, posts);
        } else if self.posters.get(&key) == Some(&posts) {
            // Otherwise the poster's new total with the same follower_count came first and
            // replaced this one.
            self.posters.remove(&key);
        }
        true
    }

    fn rows(&mut self, names: &Dictionary, _now: i64) -> Option<Vec<AggregateRow>> {
        std::mem::take(&mut self.changed).then(|| self.top(names))
    }
}

impl TopPosters {
    /// The [`TOP`] posters with the highest follower_count, ties at the last place kept:
    /// (poster, follower_count, posts), highest first.
    fn ranked(&self) -> impl Iterator<Item = (Name, i64, i64)> + '_ {
        let mut cutoff = None;
        self.posters
            .iter()
            .rev()
            .enumerate()
            .take_while(move |(rank, ((follower_count, _), _))| {
                let kept = *rank < TOP || cutoff == Some(*follower_count);
                cutoff = Some(*follower_count);
                kept
            })
            .map(|(_, (&(follower_count, poster), &posts))| (poster, follower_count, posts))
    }

    /// Forgets the posters below the top ([`TopPosters::ranked`]) and returns the top's last
    /// follower_count once the top is full. On an insert-only input those posters cannot come
    /// back by themselves: a poster's highest follower_count only grows, so the top's last
    /// follower_count does too, and a poster whose total grows arrives again with its whole
    /// total. The index stays the size of the top, and a total below the cut can be passed
    /// over at once.
    fn forget_below_top(&mut self) -> Option<i64> {
        if self.posters.len() < TOP {
            return None;
        }
        let (_, cut, _) = self.ranked().last()?;
        self.posters = self.posters.split_off(&(cut, Name::NULL));
        Some(cut)
    }

    fn top(&self, names: &Dictionary) -> Vec<AggregateRow> {
        self.ranked()
            .map(|(poster, follower_count, posts)| {
                AggregateRow::from([
                    Cell::Text(names.text(poster)),
                    Cell::Long(follower_count),
                    Cell::Long(posts),
                ])
            })
            .collect()
    }
}

/// A poster's total: (poster, (its highest follower_count, its distinct posts)).
type Total = (Name, (i64, i64));

/// The top posters ([`TopPosters::ranked`]) of the totals this worker holds, as a collection:
/// each time the frontier has passed, its totals' changes are applied and the posters that
/// left, entered or changed in the top are retracted and added.
///
/// A poster of the job's top has fewer than [`TOP`] posters above it (ties aside) anywhere,
/// so also on its own worker: the union of the workers' tops holds the job's top, and the
/// publisher ranks that union. Each worker keeps only its top
/// ([`TopPosters::forget_below_top`]): its index stays the size of the top. Before, every
/// poster's every total went to the publisher (worker 0), which kept them all in one index:
/// a third of its time on distinct-heavy data.
///
/// Each row is given as `emit(total)`.
fn local_top<'scope, O: Data>(
    totals: Collection<'scope, Total>,
    emit: impl Fn(Total) -> O + 'static,
) -> Collection<'scope, O> {
    totals
        .inner
        .unary_frontier(Pipeline, "local_top", |_capability, _info| {
            let mut posters = TopPosters::default();
            // The top's last follower_count: totals below it cannot enter (or be in) the top.
            let mut cut = None;
            let mut pending: BTreeMap<u64, Held<(Total, isize)>> = BTreeMap::new();
            // The top as given so far.
            let mut given: Vec<Total> = Vec::new();
            move |(input, frontier), output| {
                input.for_each_stamp(|capability, batches| {
                    for (total, time, diff) in batches.flat_map(|b| b.drain(..)) {
                        let (_, (follower_count, _)) = total;
                        if cut.is_some_and(|cut| follower_count < cut) {
                            continue;
                        }
                        hold(&mut pending, &capability, time).push((total, diff));
                    }
                });
                for (capability, mut updates) in
                    take_done(&mut pending, |time| !frontier.less_equal(time))
                {
                    consolidate(&mut updates);
                    // Retractions first: a poster's new total may keep its follower_count.
                    updates.sort_by_key(|(_, diff)| *diff > 0);
                    for ((poster, (follower_count, posts)), diff) in updates {
                        let change = Change::PosterTotal {
                            poster,
                            follower_count,
                            posts,
                        };
                        posters.apply(change, diff);
                    }
                    if !std::mem::take(&mut posters.changed) {
                        continue;
                    }
                    cut = posters.forget_below_top();
                    let mut now: Vec<_> = posters
                        .ranked()
                        .map(|(poster, follower_count, posts)| (poster, (follower_count, posts)))
                        .collect();
                    let mut before = std::mem::replace(&mut given, now.clone());
                    let time = *capability.time();
                    let mut session = output.session(&capability);
                    changes(&mut before, &mut now, |row, diff| {
                        session.give((emit(row), time, diff));
                    });
                }
            }
        })
        .as_collection()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(poster: Name, follower_count: i64, posts: i64) -> Change {
        Change::PosterTotal {
            poster,
            follower_count,
            posts,
        }
    }

    #[test]
    fn the_top_keeps_ties_at_the_last_place_and_follows_replaced_totals() {
        let names = Dictionary::default();
        let mut top = TopPosters::default();
        assert_eq!(top.rows(&names, 0), None);
        for n in 0..TOP as i64 {
            assert!(top.apply(total(Name::of(Some(&n.to_string())), 1000 + n, 1), 1));
        }
        // Two more with the 100th place's count, one below it.
        assert!(top.apply(total(Name::of(Some("tie a")), 1000, 2), 1));
        assert!(top.apply(total(Name::of(Some("tie b")), 1000, 3), 1));
        assert!(top.apply(total(Name::of(Some("below")), 999, 1), 1));
        assert_eq!(top.rows(&names, 0).map(|rows| rows.len()), Some(TOP + 2));
        assert_eq!(top.rows(&names, 0), None);

        // A poster's new total with the same follower_count: the stale retraction, applied after
        // the addition, leaves the new total.
        let poster = Name::of(Some("99"));
        assert!(top.apply(total(poster, 1099, 2), 1));
        assert!(top.apply(total(poster, 1099, 1), -1));
        let rows = top.rows(&names, 0).unwrap();
        assert_eq!(rows[0][1..], [Cell::Long(1099), Cell::Long(2)]);
    }

    /// The workers' tops, unioned and ranked as the publisher does, equal the ranking of all
    /// posters' totals at every time: with more posters than [`TOP`], many ties at the cut,
    /// and totals that move posters in and out of the top.
    #[test]
    fn the_union_of_the_workers_tops_ranks_as_all_the_totals_do() {
        use differential_dataflow::Hashable;
        use differential_dataflow::input::Input;
        use std::sync::{Arc, Mutex};
        use timely::dataflow::operators::{Inspect, Probe};

        const TIMES: u64 = 6;
        // Per time, every poster's (follower_count, posts), drawn by a small LCG. As on the
        // engine's insert-only input, totals only grow: a third of the posters grow each
        // time, and new posters come. Counts in a narrow range, so the cut has ties.
        let mut seed = 7u64;
        let mut draw = move |bound: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % bound) as i64
        };
        let mut current: Vec<Total> = Vec::new();
        let mut totals: Vec<Vec<Total>> = Vec::new();
        for time in 0..TIMES {
            for (_, (follower_count, posts)) in &mut current {
                if draw(3) == 0 {
                    *follower_count += draw(2);
                    *posts += 1;
                }
            }
            for p in current.len() as u64..400 + 50 * time {
                let name = Name::of(Some(&format!("poster {p}")));
                current.push((name, (draw(12), 1 + draw(5))));
            }
            totals.push(current.clone());
        }
        for workers in [1, 3] {
            let given = Arc::new(Mutex::new(Vec::new()));
            let (sink, all) = (given.clone(), totals.clone());
            timely::execute(timely::Config::process(workers), move |worker| {
                let (index, peers) = (worker.index(), worker.peers());
                let sink = sink.clone();
                let probe = timely::dataflow::ProbeHandle::new();
                let mut input = worker.dataflow::<u64, _, _>(|scope| {
                    let (input, totals) = scope.new_collection();
                    local_top(totals, |total| total)
                        .inner
                        .inspect(move |row| sink.lock().unwrap().push(*row))
                        .probe_with(&probe);
                    input
                });
                // Each poster's totals on one worker, as `accumulate` leaves them.
                let mine = |name: &Name| (name.hashed() % peers as u64) as usize == index;
                let mut before: Vec<Total> = Vec::new();
                for (time, now) in all.iter().enumerate() {
                    input.advance_to(time as u64);
                    for row in before.iter().filter(|(name, _)| mine(name)) {
                        input.remove(*row);
                    }
                    for row in now.iter().filter(|(name, _)| mine(name)) {
                        input.insert(*row);
                    }
                    before = now.clone();
                    // Each time done before the next arrives, as in the engine's ticks.
                    input.advance_to(time as u64 + 1);
                    input.flush();
                    worker.step_while(|| probe.less_than(input.time()));
                }
                input.close();
            })
            .unwrap();
            let given = given.lock().unwrap();
            for (time, now) in totals.iter().enumerate() {
                let mut union: Vec<_> = given
                    .iter()
                    .filter(|(_, at, _)| *at <= time as u64)
                    .map(|(row, _, diff)| (*row, *diff))
                    .collect();
                consolidate(&mut union);
                let rank = |rows: &mut dyn Iterator<Item = Total>| {
                    let mut top = TopPosters::default();
                    for (poster, (follower_count, posts)) in rows {
                        top.apply(total(poster, follower_count, posts), 1);
                    }
                    top.ranked().collect::<Vec<_>>()
                };
                let published = rank(&mut union.iter().map(|(row, diff)| {
                    assert_eq!(*diff, 1, "a row given twice or retracted twice");
                    *row
                }));
                let expected = rank(&mut now.iter().copied());
                assert!(expected.len() > TOP, "ties at the cut");
                assert_eq!(published, expected, "time {time}, {workers} workers");
            }
        }
    }
}
