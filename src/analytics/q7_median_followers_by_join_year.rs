//! `q7_median_followers_by_join_year`: per year of `date_joined`, 2015..2020 only, the exact
//! median follower_count of the pin ⋈ user pairs.

use super::facts::JOIN_YEARS;
use super::median::{self, MedianKey};
use super::view::{Rows, Settings, View};
use super::{Aggregate, AggregateId, Collection, Column, Inputs, Query, Update};

pub const AGGREGATE: Aggregate = Aggregate {
    name: "q7_median_followers_by_join_year",
    columns: &[
        Column::long("post_year"),
        Column::double("median_follower_count"),
    ],
    query: &MedianFollowersByJoinYear,
};

pub struct MedianFollowersByJoinYear;

impl Query for MedianFollowersByJoinYear {
    fn build<'scope>(
        &self,
        id: AggregateId,
        inputs: &Inputs<'scope>,
    ) -> Option<Collection<'scope, Update>> {
        Some(median::medians(
            id,
            inputs,
            |pair| {
                JOIN_YEARS.contains(&pair.join_year).then_some(MedianKey {
                    group: 0,
                    join_year: pair.join_year,
                })
            },
            |key| vec![key.join_year.into()],
        ))
    }

    fn view(&self, _settings: &Settings) -> Box<dyn View> {
        Box::<Rows>::default()
    }
}
