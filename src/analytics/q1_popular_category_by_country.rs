//! `q1_popular_category_by_country`: per country, the category with most posts (pin ⋈ geo),
//! ties kept.

use super::operators::{combined, most_frequent};
use super::view::{Rows, Settings, View};
use super::{Aggregate, AggregateId, Change, Collection, Column, Inputs, Query, Update};

pub const AGGREGATE: Aggregate = Aggregate {
    name: "q1_popular_category_by_country",
    columns: &[
        Column::text("country"),
        Column::text("category"),
        Column::long("category_count"),
    ],
    query: &PopularCategoryByCountry,
};

pub struct PopularCategoryByCountry;

impl Query for PopularCategoryByCountry {
    fn build<'scope>(
        &self,
        id: AggregateId,
        inputs: &Inputs<'scope>,
    ) -> Option<Collection<'scope, Update>> {
        let pairs = combined(inputs.pin_geo.clone(), "q1_pairs", |pair| {
            Some((pair.country, pair.category))
        });
        let rows = most_frequent(pairs, move |&country, (category, count)| Update {
            aggregate: id,
            change: Change::Row(vec![country.into(), category.into(), (count as i64).into()]),
        });
        Some(rows)
    }

    fn view(&self, _settings: &Settings) -> Box<dyn View> {
        Box::<Rows>::default()
    }
}
