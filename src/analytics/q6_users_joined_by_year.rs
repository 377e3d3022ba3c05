//! `q6_users_joined_by_year`: rows of `user` per year of `date_joined`, 2015..2020 only.

use super::facts::JOIN_YEARS;
use super::view::{Rows, Settings, View};
use super::{Aggregate, AggregateId, Change, Collection, Column, Inputs, Query, Update};

pub const AGGREGATE: Aggregate = Aggregate {
    name: "q6_users_joined_by_year",
    columns: &[
        Column::long("post_year"),
        Column::long("number_users_joined"),
    ],
    query: &UsersJoinedByYear,
};

pub struct UsersJoinedByYear;

impl Query for UsersJoinedByYear {
    fn build<'scope>(
        &self,
        id: AggregateId,
        inputs: &Inputs<'scope>,
    ) -> Option<Collection<'scope, Update>> {
        let rows = inputs
            .users
            .clone()
            .flat_map(|(_, user)| {
                JOIN_YEARS
                    .contains(&user.join_year)
                    .then_some(user.join_year)
            })
            .count()
            .map(move |(year, count)| Update {
                aggregate: id,
                change: Change::Row(vec![year.into(), (count as i64).into()]),
            });
        Some(rows)
    }

    fn view(&self, _settings: &Settings) -> Box<dyn View> {
        Box::<Rows>::default()
    }
}
