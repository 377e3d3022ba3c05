//! `q3_top_user_by_country`: per country, the poster with the highest follower_count (pin ⋈
//! geo, null poster_name rows left out), ties kept; and `q3b_top_country`, derived from it: the
//! country(ies) of the overall highest follower_count among q3's rows.

use super::names::Name;
use super::operators::top_with_ties;
use super::view::{Rows, Settings, View};
use super::{Aggregate, AggregateId, Change, Collection, Column, Inputs, Query, Update};

pub const AGGREGATE: Aggregate = Aggregate {
    name: "q3_top_user_by_country",
    columns: &[
        Column::text("country"),
        Column::text("poster_name"),
        Column::long("follower_count"),
    ],
    query: &TopUserByCountry,
};

pub const TOP_COUNTRY: Aggregate = Aggregate {
    name: "q3b_top_country",
    columns: &[Column::text("country"), Column::long("follower_count")],
    query: &TopCountry,
};

/// Per country, `(follower_count, poster)` of the posters with the highest follower_count.
/// Built once, in [`Inputs`], for both queries of this file.
pub fn top_users_by_country<'scope>(
    pin_geo: Collection<'scope, super::inputs::PinGeo>,
) -> Collection<'scope, (Name, (i64, Name))> {
    let posters = pin_geo.flat_map(|pair| {
        (!pair.poster_name.is_null())
            .then_some((pair.country, (pair.follower_count, pair.poster_name)))
    });
    top_with_ties(
        posters,
        |(followers, _)| *followers,
        |&country, top| (country, top),
    )
}

pub struct TopUserByCountry;

impl Query for TopUserByCountry {
    fn build<'scope>(
        &self,
        id: AggregateId,
        inputs: &Inputs<'scope>,
    ) -> Option<Collection<'scope, Update>> {
        let rows =
            inputs
                .top_users_by_country
                .clone()
                .map(move |(country, (followers, poster))| Update {
                    aggregate: id,
                    change: Change::Row(vec![country.into(), poster.into(), followers.into()]),
                });
        Some(rows)
    }

    fn view(&self, _settings: &Settings) -> Box<dyn View> {
        Box::<Rows>::default()
    }
}

pub struct TopCountry;

impl Query for TopCountry {
    fn build<'scope>(
        &self,
        id: AggregateId,
        inputs: &Inputs<'scope>,
    ) -> Option<Collection<'scope, Update>> {
        let rows = inputs
            .top_users_by_country
            .clone()
            .map(|(country, (followers, _))| ((), (followers, country)))
            .reduce_named("top_country", |_, input, output| {
                // Sorted by (followers, country): the highest are last.
                let top = input.last().map(|((followers, _), _)| *followers);
                for ((followers, country), _) in
                    input.iter().rev().take_while(|((f, _), _)| Some(*f) == top)
                {
                    output.push(((*followers, *country), 1));
                }
            })
            .map(move |((), (followers, country))| Update {
                aggregate: id,
                change: Change::Row(vec![country.into(), followers.into()]),
            });
        Some(rows)
    }

    fn view(&self, _settings: &Settings) -> Box<dyn View> {
        Box::<Rows>::default()
    }
}
