//! `q5_median_followers_by_age_group`: per age group, the exact median follower_count of the
//! pin ⋈ user pairs.

use super::median::{self, MedianKey};
use super::view::{Rows, Settings, View};
use super::{Aggregate, AggregateId, Collection, Column, Field, Inputs, Query, Update};

pub const AGGREGATE: Aggregate = Aggregate {
    name: "q5_median_followers_by_age_group",
    columns: &[
        Column::text("age_group"),
        Column::double("median_follower_count"),
    ],
    query: &MedianFollowersByAgeGroup,
};

pub struct MedianFollowersByAgeGroup;

impl Query for MedianFollowersByAgeGroup {
    fn build<'scope>(
        &self,
        id: AggregateId,
        inputs: &Inputs<'scope>,
    ) -> Option<Collection<'scope, Update>> {
        Some(median::medians(
            id,
            inputs,
            |pair| {
                pair.age_group.map(|group| MedianKey {
                    group,
                    join_year: 0,
                })
            },
            |key| vec![Field::AgeGroup(key.group)],
        ))
    }

    fn view(&self, _settings: &Settings) -> Box<dyn View> {
        Box::<Rows>::default()
    }
}
