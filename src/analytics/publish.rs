//! From the deduplicated rows to the [`AggregateStore`]: `route` splits rows for the sink from
//! facts for the analytics, and `publish` (on worker 0) applies the aggregates' changes once
//! the frontier has passed them, so every published snapshot is consistent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::{Operator, OutputBuilder};

use super::facts::Fact;
use super::names::{Dictionary, Name, NameSender};
use super::operators::take_done;
use super::trending_categories::bucket_start;
use super::view::{Settings, View};
use super::{AggregateId, AggregateStore, Update};
use crate::stats::Stats;
use crate::table::{DistinctRow, Novelty, TableRow};

/// What the analytics learn besides the facts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Signal {
    /// The earliest arrival among the new rows of a time (for freshness).
    Arrival(i64),
    /// How many distinct pin rows of a category were first seen in the trending bucket that
    /// starts at a time (for `trending_categories`): one signal per category and bucket of a
    /// batch, not one per pin.
    Trend {
        category: Name,
        first_seen: i64,
        posts: i64,
    },
    /// The text of a name, sent by each worker the first time it sees the name (see
    /// [`super::names`]).
    Name(Name, String),
}

/// A deduplicated row, routed: the three streams [`route`] makes.
pub struct Routes<'scope> {
    /// New rows, for the tables.
    pub writes: Stream<'scope, u64, Vec<TableRow>>,
    /// A small [`Fact`] of every clean row (held or new), as differential updates at the
    /// row's time: the analytics' input collection. Empty without analytics.
    pub facts: Stream<'scope, u64, Vec<(Fact, u64, isize)>>,
    /// What the publisher learns besides the facts.
    pub signals: Stream<'scope, u64, Vec<Signal>>,
}

/// Splits each deduplicated row into what is written (new rows) and what the analytics need
/// (a small [`Fact`] of every clean row, held or new, and the text of names not sent before).
///
/// One operator with three outputs: each row is moved once, into the output it goes to
/// (a `partition` and a `flat_map` per part moved every row three times more).
pub fn route<'scope>(
    rows: Stream<'scope, u64, Vec<DistinctRow>>,
    analytics: bool,
) -> Routes<'scope> {
    let mut builder = OperatorBuilder::new("route".to_owned(), rows.scope());
    let mut input = builder.new_input(rows, Pipeline);
    let (writes_out, writes) = builder.new_output::<Vec<TableRow>>();
    let (facts_out, facts) = builder.new_output::<Vec<(Fact, u64, isize)>>();
    let (signals_out, signals) = builder.new_output::<Vec<Signal>>();
    let mut writes_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<TableRow>>>::from(writes_out);
    let mut facts_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<(Fact, u64, isize)>>>::from(facts_out);
    let mut signals_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<Signal>>>::from(signals_out);
    builder.build(move |_initial_capabilities| {
        let mut names = NameSender::default();
        // Distinct pins by category and trending bucket, per time.
        let mut trends: FxHashMap<(Name, i64), i64> = FxHashMap::default();
        move |_frontiers| {
            let (mut writes_out, mut facts_out, mut signals_out) = (
                writes_out.activate(),
                facts_out.activate(),
                signals_out.activate(),
            );
            input.for_each_stamp(|capability, batches| {
                let Some(&time) = capability.least() else {
                    return;
                };
                let mut writes = writes_out.session(&capability);
                let mut facts = facts_out.session(&capability);
                let mut signals = signals_out.session(&capability);
                let mut earliest: Option<i64> = None;
                trends.clear();
                for DistinctRow {
                    row,
                    arrival,
                    novelty,
                } in batches.flat_map(|b| b.drain(..))
                {
                    if analytics && let TableRow::Clean(clean) = &row {
                        let fact = Fact::of(clean, &mut names);
                        if let Fact::Pin { category, .. } = &fact {
                            *trends
                                .entry((*category, bucket_start(arrival)))
                                .or_default() += 1;
                        }
                        facts.give((fact, time, 1));
                    }
                    if novelty == Novelty::New {
                        earliest = Some(earliest.map_or(arrival, |e| e.min(arrival)));
                        writes.give(row);
                    }
                }
                for (&(category, first_seen), &posts) in &trends {
                    signals.give(Signal::Trend {
                        category,
                        first_seen,
                        posts,
                    });
                }
                // At this time: the publisher learns the texts before it publishes the time.
                for (name, text) in names.take_new() {
                    signals.give(Signal::Name(name, text));
                }
                if analytics && let Some(arrival) = earliest {
                    signals.give(Signal::Arrival(arrival));
                }
            });
        }
    });
    Routes {
        writes,
        facts,
        signals,
    }
}

/// An aggregate's new snapshot, as published on worker 0, for the stores of the other
/// processes of a cluster (each serves the job's aggregates itself).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Published {
    pub aggregate: AggregateId,
    pub rows: Vec<super::AggregateRow>,
}

/// Applies aggregate changes on worker 0 once the frontier passed them, publishes the changed
/// aggregates and records freshness. With `replicate` (a cluster), every changed snapshot is
/// also given on the output, for [`keep_replica`] on the other processes.
pub fn publish<'scope>(
    updates: Stream<'scope, u64, Vec<(Update, u64, isize)>>,
    signals: Stream<'scope, u64, Vec<Signal>>,
    store: AggregateStore,
    stats: Arc<Stats>,
    window: Duration,
    replicate: bool,
) -> Stream<'scope, u64, Vec<Published>> {
    // Everything is exchanged to worker 0; the other workers' instances only drain nothing.
    let is_publisher = updates.scope().index() == 0;
    let settings = Settings {
        trending_window: window,
    };
    updates.binary_frontier::<_, CapacityContainerBuilder<Vec<Published>>, _, _, _, _>(
        signals,
        Exchange::new(|_: &(Update, u64, isize)| 0),
        Exchange::new(|_: &Signal| 0),
        "publish",
        move |capability, _info| {
            let mut publisher = Publisher::new(store, stats, &settings);
            // Held (at the inputs' frontier) only while snapshots may still be given.
            let mut output_at = (replicate && is_publisher).then_some(capability);
            move |(updates, updates_frontier), (signals, signals_frontier), output| {
                updates.for_each_stamp(|_, batches| {
                    for (update, time, diff) in batches.flat_map(|b| b.drain(..)) {
                        publisher.hold_update(time, update, diff);
                    }
                });
                signals.for_each_stamp(|capability, batches| {
                    let Some(&time) = capability.least() else {
                        return;
                    };
                    for signal in batches.flat_map(|b| b.drain(..)) {
                        publisher.hold_signal(time, signal);
                    }
                });
                if !is_publisher {
                    return;
                }
                let changed = publisher.publish_done(
                    |time| !updates_frontier.less_equal(time) && !signals_frontier.less_equal(time),
                    output_at.is_some(),
                );
                if let Some(capability) = &mut output_at {
                    if !changed.is_empty() {
                        output
                            .session(capability)
                            .give_iterator(changed.into_iter());
                    }
                    let frontier = updates_frontier
                        .frontier()
                        .iter()
                        .chain(signals_frontier.frontier().iter())
                        .min()
                        .copied();
                    match frontier {
                        Some(time) => capability.downgrade(&time),
                        None => output_at = None,
                    }
                }
            }
        },
    )
}

/// The publishing worker's state: what it holds until the frontier passes it, one [`View`] per
/// registered aggregate, and the names' texts.
struct Publisher {
    store: AggregateStore,
    stats: Arc<Stats>,
    /// Indexed by [`AggregateId`].
    views: Vec<Box<dyn View>>,
    names: Dictionary,
    /// Held per time until the frontier passes it (taken in order, never rescanned).
    updates: BTreeMap<u64, Vec<(Update, isize)>>,
    arrivals: BTreeMap<u64, i64>,
    /// Category, bucket start and distinct pins, per time.
    trends: BTreeMap<u64, Vec<(Name, i64, i64)>>,
}

impl Publisher {
    fn new(store: AggregateStore, stats: Arc<Stats>, settings: &Settings) -> Self {
        Publisher {
            store,
            stats,
            views: AggregateId::all()
                .map(|(_, aggregate)| aggregate.query.view(settings))
                .collect(),
            names: Dictionary::default(),
            updates: BTreeMap::new(),
            arrivals: BTreeMap::new(),
            trends: BTreeMap::new(),
        }
    }

    fn hold_update(&mut self, time: u64, update: Update, diff: isize) {
        self.updates.entry(time).or_default().push((update, diff));
    }

    /// Holds a signal until its time is done; a name's text is kept at once (it is the same
    /// whenever it is learned).
    fn hold_signal(&mut self, time: u64, signal: Signal) {
        match signal {
            Signal::Arrival(arrival) => {
                let earliest = self.arrivals.entry(time).or_insert(arrival);
                *earliest = (*earliest).min(arrival);
            }
            Signal::Trend {
                category,
                first_seen,
                posts,
            } => self
                .trends
                .entry(time)
                .or_default()
                .push((category, first_seen, posts)),
            Signal::Name(name, text) => self.names.insert(name, text),
        }
    }

    /// Applies everything of the times `done` says the frontier has passed, publishes what
    /// changed (returned too, with `replicate`), then records the freshness of those times.
    fn publish_done(&mut self, done: impl Fn(&u64) -> bool, replicate: bool) -> Vec<Published> {
        self.apply_updates(&done);
        for (category, first_seen, posts) in
            take_done(&mut self.trends, &done).into_iter().flatten()
        {
            for view in &mut self.views {
                view.pins_first_seen(category, first_seen, posts);
            }
        }
        let now = crate::now_micros();
        let changed = self.publish_views(now, replicate);
        for arrival in take_done(&mut self.arrivals, &done) {
            self.stats.record_freshness((now - arrival).max(0) as u64);
        }
        changed
    }

    /// The done times' updates, netted first (within a time a retraction may come before its
    /// addition), each to its aggregate's view.
    fn apply_updates(&mut self, done: impl Fn(&u64) -> bool) {
        let mut updates: Vec<(Update, isize)> = take_done(&mut self.updates, done)
            .into_iter()
            .flatten()
            .collect();
        differential_dataflow::consolidation::consolidate(&mut updates);
        for (update, diff) in updates {
            let id = update.aggregate;
            if !self.views[id.index()].apply(update.change, diff) {
                tracing::warn!(
                    aggregate = id.aggregate().name,
                    diff,
                    "a change its aggregate does not hold was retracted, or does not fit it"
                );
            }
        }
    }

    /// Publishes every view with rows to publish (the store ignores unchanged ones); with
    /// `replicate`, returns the snapshots that changed.
    fn publish_views(&mut self, now: i64, replicate: bool) -> Vec<Published> {
        let mut changed = Vec::new();
        for ((id, aggregate), view) in AggregateId::all().zip(&mut self.views) {
            if let Some(rows) = view.rows(&self.names, now) {
                let copy = replicate.then(|| rows.clone());
                if self.store.publish(aggregate.name, rows)
                    && let Some(rows) = copy
                {
                    changed.push(Published {
                        aggregate: id,
                        rows,
                    });
                }
            }
        }
        changed
    }
}

/// Keeps this process's store equal to the publisher's: send it the [`publish`] output fanned
/// out to the other processes of a cluster.
pub fn keep_replica<'scope>(
    published: Stream<'scope, u64, Vec<Published>>,
    store: AggregateStore,
) -> Stream<'scope, u64, Vec<Published>> {
    use timely::dataflow::operators::Inspect;
    published.inspect(move |snapshot| {
        store.publish(snapshot.aggregate.aggregate().name, snapshot.rows.clone());
    })
}
