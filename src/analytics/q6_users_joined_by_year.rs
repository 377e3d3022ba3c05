//! `q6_users_joined_by_year`: rows of `user` per year of `date_joined`, 2015..2020 only.

use super::facts::{Fact, JOIN_YEARS};
use super::operators::{accumulate, combined};
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
        let years = combined(inputs.facts.clone(), "q6_years", |fact| match fact {
            Fact::User { join_year, .. } if JOIN_YEARS.contains(&join_year) => {
                Some((join_year, ()))
            }
            _ => None,
        });
        let rows = accumulate(
            years,
            "users_joined",
            |users: &mut isize, (), diff| *users += diff,
            |&users, rows| rows.extend((users > 0).then_some(users as i64)),
            move |&year, users| Update {
                aggregate: id,
                change: Change::Row(vec![year.into(), users.into()]),
            },
        );
        Some(rows)
    }

    fn view(&self, _settings: &Settings) -> Box<dyn View> {
        Box::<Rows>::default()
    }
}
