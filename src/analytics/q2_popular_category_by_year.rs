//! `q2_popular_category_by_year`: per year of `geo.timestamp`, 2018..2022 only, the category
//! with most posts (pin ⋈ geo), ties kept.

use std::ops::RangeInclusive;

use super::operators::{combined, most_frequent};
use super::view::{Rows, Settings, View};
use super::{Aggregate, AggregateId, Change, Collection, Column, Inputs, Query, Update};

pub const AGGREGATE: Aggregate = Aggregate {
    name: "q2_popular_category_by_year",
    columns: &[
        Column::long("post_year"),
        Column::text("category"),
        Column::long("category_count"),
    ],
    query: &PopularCategoryByYear,
};

/// The years q2 reports (SPEC §3).
const YEARS: RangeInclusive<i32> = 2018..=2022;

pub struct PopularCategoryByYear;

impl Query for PopularCategoryByYear {
    fn build<'scope>(
        &self,
        id: AggregateId,
        inputs: &Inputs<'scope>,
    ) -> Option<Collection<'scope, Update>> {
        let pairs = combined(inputs.pin_geo.clone(), "q2_pairs", |pair| {
            YEARS
                .contains(&pair.year)
                .then_some((pair.year, pair.category))
        });
        let rows = most_frequent(pairs, move |&year, (category, count)| Update {
            aggregate: id,
            change: Change::Row(vec![year.into(), category.into(), (count as i64).into()]),
        });
        Some(rows)
    }

    fn view(&self, _settings: &Settings) -> Box<dyn View> {
        Box::<Rows>::default()
    }
}
