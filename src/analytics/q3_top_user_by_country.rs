//! `q3_top_user_by_country`: per country, the poster with the highest follower_count (pin ⋈
//! geo, null poster_name rows left out), ties kept; and `q3b_top_country`, derived from it: the
//! country(ies) of the overall highest follower_count among q3's rows.
//!
//! The dataflow sends each pin ⋈ geo pair's (country, follower_count, poster); the publisher
//! keeps them per country in order ([`CountryTops`]), so a new pair costs O(log n) there. A
//! differential top-k (a tree of `reduce`s over hash buckets) re-read a bucket per level for
//! every pair, and was the most expensive part of the analytics on distinct-heavy data.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use super::names::{Dictionary, Name};
use super::view::{Settings, View};
use super::{
    Aggregate, AggregateId, Cell, Change, Collection, Column, Field, Inputs, Query, Update,
};

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

/// Every pin ⋈ geo pair with a poster, as changes of aggregate `id`.
fn country_posters<'scope>(id: AggregateId, inputs: &Inputs<'scope>) -> Collection<'scope, Update> {
    inputs.pin_geo.clone().flat_map(move |pair| {
        (!pair.poster_name.is_null()).then_some(Update {
            aggregate: id,
            change: Change::CountryPoster {
                country: pair.country,
                follower_count: pair.follower_count,
                poster: pair.poster_name,
            },
        })
    })
}

pub struct TopUserByCountry;

impl Query for TopUserByCountry {
    fn build<'scope>(
        &self,
        id: AggregateId,
        inputs: &Inputs<'scope>,
    ) -> Option<Collection<'scope, Update>> {
        Some(country_posters(id, inputs))
    }

    fn view(&self, _settings: &Settings) -> Box<dyn View> {
        Box::new(CountryTops::new(Report::UsersByCountry))
    }
}

pub struct TopCountry;

impl Query for TopCountry {
    fn build<'scope>(
        &self,
        id: AggregateId,
        inputs: &Inputs<'scope>,
    ) -> Option<Collection<'scope, Update>> {
        Some(country_posters(id, inputs))
    }

    fn view(&self, _settings: &Settings) -> Box<dyn View> {
        Box::new(CountryTops::new(Report::TopCountries))
    }
}

/// Which of the two aggregates a [`CountryTops`] publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// q3: per country, its posters with the highest follower_count.
    UsersByCountry,
    /// q3b: the countries whose highest follower_count is the highest of all.
    TopCountries,
}

/// Per country, the multiset of (follower_count, poster) of its pin ⋈ geo pairs, in order.
pub struct CountryTops {
    countries: BTreeMap<Name, BTreeMap<(i64, Name), isize>>,
    report: Report,
    changed: bool,
}

impl CountryTops {
    pub fn new(report: Report) -> CountryTops {
        CountryTops {
            countries: BTreeMap::new(),
            report,
            changed: false,
        }
    }

    /// Each country's highest follower_count with the posters that have it.
    fn tops(&self) -> impl Iterator<Item = (Name, i64, Vec<Name>)> + '_ {
        self.countries.iter().filter_map(|(country, posters)| {
            let (&(top, _), _) = posters.last_key_value()?;
            let with_top = posters
                .range((top, Name::NULL)..)
                .map(|(&(_, poster), _)| poster)
                .collect();
            Some((*country, top, with_top))
        })
    }
}

impl View for CountryTops {
    fn apply(&mut self, change: Change, diff: isize) -> bool {
        let Change::CountryPoster {
            country,
            follower_count,
            poster,
        } = change
        else {
            return false;
        };
        self.changed = true;
        let posters = self.countries.entry(country).or_default();
        let consistent = match posters.entry((follower_count, poster)) {
            Entry::Vacant(entry) => {
                entry.insert(diff);
                diff > 0
            }
            Entry::Occupied(mut entry) => {
                *entry.get_mut() += diff;
                let left = *entry.get();
                if left == 0 {
                    entry.remove();
                }
                left >= 0
            }
        };
        if posters.is_empty() {
            self.countries.remove(&country);
        }
        consistent
    }

    fn rows(&mut self, names: &Dictionary, _now: i64) -> Option<Vec<Vec<Cell>>> {
        if !std::mem::take(&mut self.changed) {
            return None;
        }
        // Rows in the order of their fields, as every other aggregate publishes them.
        let mut rows: Vec<Vec<Field>> = match self.report {
            Report::UsersByCountry => self
                .tops()
                .flat_map(|(country, top, posters)| {
                    posters
                        .into_iter()
                        .map(move |poster| vec![country.into(), poster.into(), top.into()])
                })
                .collect(),
            Report::TopCountries => {
                let tops: Vec<(Name, i64)> =
                    self.tops().map(|(country, top, _)| (country, top)).collect();
                let highest = tops.iter().map(|(_, top)| *top).max();
                tops.into_iter()
                    .filter(|(_, top)| Some(*top) == highest)
                    .map(|(country, top)| vec![country.into(), top.into()])
                    .collect()
            }
        };
        rows.sort();
        Some(
            rows.into_iter()
                .map(|row| row.into_iter().map(|field| field.cell(names)).collect())
                .collect(),
        )
    }
}
