//! The dataflow side of the registry: every query of [`AGGREGATES`](super::AGGREGATES) built
//! over the shared [`Inputs`], their changes in one collection for the publisher.

use super::facts::Fact;
use super::{AggregateId, Collection, Inputs, Update};

/// Builds every differential query of the registry from the collection of facts; `held_posts`
/// (the pin rows the tables hold, per worker) sizes the join's state once.
pub fn aggregates<'scope>(
    facts: Collection<'scope, Fact>,
    held_posts: usize,
) -> Collection<'scope, Update> {
    let scope = facts.scope();
    let inputs = Inputs::new(facts, held_posts);
    let changes: Vec<_> = AggregateId::all()
        .filter_map(|(id, aggregate)| aggregate.query.build(id, &inputs))
        .collect();
    differential_dataflow::collection::concatenate(scope, changes)
}
