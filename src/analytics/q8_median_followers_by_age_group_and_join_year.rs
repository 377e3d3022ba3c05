//! `q8_median_followers_by_age_group_and_join_year`: per age group and year of `date_joined`
//! (2015..2020 only), the exact median follower_count of the pin ⋈ user pairs.

use super::facts::JOIN_YEARS;
use super::median::{self, MedianKey};
use super::view::{Rows, Settings, View};
use super::{Aggregate, AggregateId, Collection, Column, Field, Inputs, Query, Update};

pub const AGGREGATE: Aggregate = Aggregate {
    name: "q8_median_followers_by_age_group_and_join_year",
    columns: &[
        Column::text("age_group"),
        Column::long("post_year"),
        Column::double("median_follower_count"),
    ],
    query: &MedianFollowersByAgeGroupAndJoinYear,
};

pub struct MedianFollowersByAgeGroupAndJoinYear;

impl Query for MedianFollowersByAgeGroupAndJoinYear {
    fn build<'scope>(
        &self,
        id: AggregateId,
        inputs: &Inputs<'scope>,
    ) -> Option<Collection<'scope, Update>> {
        Some(median::medians(
            id,
            inputs,
            |pair| {
                let group = pair.age_group?;
                JOIN_YEARS.contains(&pair.join_year).then_some(MedianKey {
                    group,
                    join_year: pair.join_year,
                })
            },
            |key| vec![Field::AgeGroup(key.group), key.join_year.into()],
        ))
    }

    fn view(&self, _settings: &Settings) -> Box<dyn View> {
        Box::<Rows>::default()
    }
}
