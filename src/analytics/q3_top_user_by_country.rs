//! `q3_top_user_by_country`: per country, the poster with the highest follower_count (pin ⋈
//! geo, null poster_name rows left out), ties kept; and `q3b_top_country`, derived from it: the
//! country(ies) of the overall highest follower_count among q3's rows.

use std::collections::BTreeMap;

use super::names::{Dictionary, Name};
use super::operators::top_with_ties;
use super::view::{Rows, Settings, View};
use super::{
    Aggregate, AggregateId, AggregateRow, Cell, Change, Collection, Column, Inputs, Query, Update,
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
        let tops =
            inputs
                .top_users_by_country
                .clone()
                .map(move |(country, (follower_count, _))| Update {
                    aggregate: id,
                    change: Change::CountryTop {
                        country,
                        follower_count,
                    },
                });
        Some(tops)
    }

    fn view(&self, _settings: &Settings) -> Box<dyn View> {
        Box::<TopCountries>::default()
    }
}

/// Every country's top follower_count, with how many of q3's rows (tied posters) carry it,
/// ordered so the highest are last.
#[derive(Default)]
pub struct TopCountries {
    tops: BTreeMap<(i64, Name), isize>,
    changed: bool,
}

impl View for TopCountries {
    fn apply(&mut self, change: Change, diff: isize) -> bool {
        let Change::CountryTop {
            country,
            follower_count,
        } = change
        else {
            return false;
        };
        let key = (follower_count, country);
        let count = self.tops.get(&key).map_or(diff, |count| count + diff);
        match count {
            ..0 => return false,
            0 => self.tops.remove(&key),
            _ => self.tops.insert(key, count),
        };
        self.changed = true;
        true
    }

    fn rows(&mut self, names: &Dictionary, _now: i64) -> Option<Vec<AggregateRow>> {
        if !std::mem::take(&mut self.changed) {
            return None;
        }
        let top = self.tops.last_key_value().map(|((top, _), _)| *top);
        let rows = self
            .tops
            .keys()
            .rev()
            .take_while(|(follower_count, _)| Some(*follower_count) == top)
            .map(|&(follower_count, country)| {
                AggregateRow::from([Cell::Text(names.text(country)), Cell::Long(follower_count)])
            })
            .collect();
        Some(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(country: Name, follower_count: i64) -> Change {
        Change::CountryTop {
            country,
            follower_count,
        }
    }

    #[test]
    fn the_top_countries_follow_their_tops_with_ties() {
        let mut names = Dictionary::default();
        let [fiji, peru, chad] = ["Fiji", "Peru", "Chad"].map(|text| {
            let name = Name::of(Some(text));
            names.insert(name, text.to_owned());
            name
        });
        let row =
            |text: &str, n| AggregateRow::from([Cell::Text(Some(text.into())), Cell::Long(n)]);
        let mut view = TopCountries::default();
        assert_eq!(view.rows(&names, 0), None);
        assert!(view.apply(top(fiji, 10), 2)); // two posters tied at Fiji's top
        assert!(view.apply(top(peru, 10), 1));
        assert!(view.apply(top(chad, 7), 1));
        let mut rows = view.rows(&names, 0).unwrap();
        rows.sort();
        assert_eq!(rows, vec![row("Fiji", 10), row("Peru", 10)]);
        assert_eq!(view.rows(&names, 0), None);

        // One of Fiji's posters goes: Fiji still has a top poster at 10.
        assert!(view.apply(top(fiji, 10), -1));
        assert_eq!(view.rows(&names, 0).map(|rows| rows.len()), Some(2));
        // Peru's top poster is replaced by one with fewer followers; then Chad's rises.
        assert!(view.apply(top(peru, 10), -1));
        assert!(view.apply(top(peru, 8), 1));
        assert_eq!(view.rows(&names, 0), Some(vec![row("Fiji", 10)]));
        assert!(view.apply(top(chad, 7), -1));
        assert!(view.apply(top(chad, 12), 1));
        assert_eq!(view.rows(&names, 0), Some(vec![row("Chad", 12)]));

        assert!(!view.apply(top(peru, 3), -1), "never added");
        assert!(!view.apply(top(chad, 12), -2), "more than was added");
        assert_eq!(view.rows(&names, 0), None, "left as it was");
        assert!(!view.apply(Change::Row(Vec::new()), 1));
    }
}
