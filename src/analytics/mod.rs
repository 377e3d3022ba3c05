//! Live analytics (SPEC §3): every query maintained incrementally in the timely dataflow
//! over the deduplicated clean rows, published to an [`AggregateStore`] that the HTTP API,
//! the dashboard and the aggregate Delta tables read.
//!
//! One file per query, each behind the small [`Query`] trait, and one registry,
//! [`AGGREGATES`], that everything else reads: the dataflow builds every entry, the publisher
//! keeps one [`View`] per entry, and the store, the API, the dashboard and the aggregate tables
//! take names and columns from it. A new query is a new file and a line in [`AGGREGATES`].

pub mod cell;
pub mod facts;
pub mod inputs;
pub mod median;
pub mod names;
pub mod operators;
pub mod publish;
pub mod queries;
pub mod store;
pub mod tables;
pub mod update;
pub mod view;

pub mod profile_popularity;
pub mod q1_popular_category_by_country;
pub mod q2_popular_category_by_year;
pub mod q3_top_user_by_country;
pub mod q4_popular_category_by_age_group;
pub mod q5_median_followers_by_age_group;
pub mod q6_users_joined_by_year;
pub mod q7_median_followers_by_join_year;
pub mod q8_median_followers_by_age_group_and_join_year;
pub mod trending_categories;

pub use cell::{AggregateRow, Cell, CellType, Column};
pub use inputs::Inputs;
pub use store::{AggregateStore, Snapshot};
pub use update::{Change, Field, Update};
pub use view::View;

/// The differential collections the queries are built from and produce.
pub type Collection<'scope, D> = differential_dataflow::VecCollection<'scope, u64, D, isize>;

/// One SPEC §3 query: how its results are computed in the dataflow and kept by the publisher.
/// Its name and columns are data, in its [`Aggregate`] entry.
pub trait Query: Sync {
    /// The query's changes, tagged with `id`, from the inputs every query shares; `None` for a
    /// query the publisher keeps from signals alone (`trending_categories`).
    fn build<'scope>(
        &self,
        id: AggregateId,
        inputs: &Inputs<'scope>,
    ) -> Option<Collection<'scope, Update>>;

    /// A fresh publisher-side view that turns this query's changes into rows.
    fn view(&self, settings: &view::Settings) -> Box<dyn View>;
}

/// A registry entry: an aggregate's SPEC §3 name and columns (in order), and its query.
pub struct Aggregate {
    pub name: &'static str,
    pub columns: &'static [Column],
    pub query: &'static dyn Query,
}

impl std::fmt::Debug for Aggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregate")
            .field("name", &self.name)
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

/// Every aggregate of SPEC §3, in SPEC order: the one registry.
pub const AGGREGATES: &[Aggregate] = &[
    q1_popular_category_by_country::AGGREGATE,
    q2_popular_category_by_year::AGGREGATE,
    q3_top_user_by_country::AGGREGATE,
    q3_top_user_by_country::TOP_COUNTRY,
    q4_popular_category_by_age_group::AGGREGATE,
    q5_median_followers_by_age_group::AGGREGATE,
    q6_users_joined_by_year::AGGREGATE,
    q7_median_followers_by_join_year::AGGREGATE,
    q8_median_followers_by_age_group_and_join_year::AGGREGATE,
    profile_popularity::AGGREGATE,
    trending_categories::AGGREGATE,
];

/// An aggregate's place in [`AGGREGATES`]: how changes say which aggregate they belong to
/// (one byte, not a name to look up), handed to each query by [`queries::aggregates`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct AggregateId(u8);

impl AggregateId {
    /// Every aggregate's id with its entry, in registry order.
    pub fn all() -> impl Iterator<Item = (AggregateId, &'static Aggregate)> {
        const { assert!(AGGREGATES.len() <= u8::MAX as usize) };
        AGGREGATES
            .iter()
            .enumerate()
            .map(|(index, aggregate)| (AggregateId(index as u8), aggregate))
    }

    /// The registry entry (ids only come from [`AggregateId::all`], so it exists).
    pub fn aggregate(self) -> &'static Aggregate {
        &AGGREGATES[self.index()]
    }

    pub fn index(self) -> usize {
        self.0.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_in_spec_order() {
        let names: Vec<&str> = AGGREGATES.iter().map(|a| a.name).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert_eq!(names[0], "q1_popular_category_by_country");
        assert_eq!(names[10], "trending_categories");
        for (id, aggregate) in AggregateId::all() {
            assert_eq!(id.aggregate().name, aggregate.name);
        }
    }
}
