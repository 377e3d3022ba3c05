//! `q4_popular_category_by_age_group`: per age group, the category with most posts (pin ⋈
//! user), ties kept.

use super::operators::{combined, most_frequent};
use super::view::{Rows, Settings, View};
use super::{Aggregate, AggregateId, Change, Collection, Column, Field, Inputs, Query, Update};

pub const AGGREGATE: Aggregate = Aggregate {
    name: "q4_popular_category_by_age_group",
    columns: &[
        Column::text("age_group"),
        Column::text("category"),
        Column::long("category_count"),
    ],
    query: &PopularCategoryByAgeGroup,
};

pub struct PopularCategoryByAgeGroup;

impl Query for PopularCategoryByAgeGroup {
    fn build<'scope>(
        &self,
        id: AggregateId,
        inputs: &Inputs<'scope>,
    ) -> Option<Collection<'scope, Update>> {
        let pairs = combined(inputs.pin_user.clone(), "q4_pairs", |pair| {
            pair.age_group.map(|group| (group, pair.category))
        });
        let rows = most_frequent(pairs, move |&group, (category, count)| Update {
            aggregate: id,
            change: Change::Row(vec![
                Field::AgeGroup(group),
                category.into(),
                (count as i64).into(),
            ]),
        });
        Some(rows)
    }

    fn view(&self, _settings: &Settings) -> Box<dyn View> {
        Box::<Rows>::default()
    }
}
