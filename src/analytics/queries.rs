//! SPEC §3's queries as differential dataflow over the deduplicated clean rows.
//!
//! Every query is incremental: joins on `ind`, counts, argmax with ties and exact medians are
//! `reduce`s over arranged data, so a new row costs work in proportion to the keys it touches,
//! not to the tables. Results depend only on the set of rows, never on arrival order,
//! batching or the worker count. Arrangements compact as the frontier advances: memory grows
//! with distinct data, not with the number of batches.

use chrono::{DateTime, Datelike};
use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

use super::{AGGREGATES, Cell};
use crate::clean::Row;

type Collection<'scope, D> = VecCollection<'scope, u64, D, isize>;

/// What the analytics need of a clean row (the rest is dropped as early as possible).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Fact {
    Pin {
        ind: i64,
        category: Option<String>,
        poster_name: Option<String>,
        follower_count: i64,
    },
    Geo {
        ind: i64,
        country: Option<String>,
        year: i32,
    },
    User {
        ind: i64,
        age: i32,
        join_year: i32,
    },
}

/// The UTC calendar year of a micros timestamp.
pub fn year_of(micros: i64) -> i32 {
    DateTime::from_timestamp_micros(micros).map_or(1970, |t| t.year())
}

impl Fact {
    pub fn of(row: &Row) -> Fact {
        match row {
            Row::Pin(pin) => Fact::Pin {
                ind: pin.ind,
                category: pin.category.clone(),
                poster_name: pin.poster_name.clone(),
                follower_count: pin.follower_count,
            },
            Row::Geo(geo) => Fact::Geo {
                ind: geo.ind,
                country: geo.country.clone(),
                year: year_of(geo.timestamp),
            },
            Row::User(user) => Fact::User {
                ind: user.ind,
                age: user.age,
                join_year: year_of(user.date_joined),
            },
        }
    }
}

/// Age groups of SPEC §3, by index.
pub const AGE_GROUPS: [&str; 4] = ["18-24", "25-35", "36-50", "+50"];

/// The age group of an age (`None` under 18: the row is left out).
pub fn age_group(age: i32) -> Option<u8> {
    match age {
        ..18 => None,
        18..=24 => Some(0),
        25..=35 => Some(1),
        36..=50 => Some(2),
        _ => Some(3),
    }
}

/// Index of aggregate `name` in [`AGGREGATES`].
pub fn index_of(name: &str) -> usize {
    AGGREGATES
        .iter()
        .position(|spec| spec.name == name)
        .expect("a SPEC aggregate")
}

/// A row of an aggregate: its index in [`AGGREGATES`] and its cells.
pub type AggregateRow = (usize, Vec<Cell>);

fn text(value: &Option<String>) -> Cell {
    Cell::Text(value.clone())
}

fn group(index: u8) -> Cell {
    Cell::Text(Some(AGE_GROUPS[index as usize].to_owned()))
}

/// For every key, the values with the highest count, all ties kept, with that count.
fn most_frequent<'scope, K, V>(
    pairs: Collection<'scope, (K, V)>,
) -> Collection<'scope, (K, (V, isize))>
where
    K: differential_dataflow::ExchangeData + std::hash::Hash,
    V: differential_dataflow::ExchangeData + std::hash::Hash,
{
    pairs
        .count()
        .map(|((key, value), count)| (key, (count, value)))
        .reduce_named("most_frequent", |_key, input, output| {
            // Sorted by (count, value): the highest counts are last.
            let top = input.last().map(|((count, _), _)| *count);
            for ((count, value), _) in input.iter().rev().take_while(|((c, _), _)| Some(*c) == top)
            {
                output.push(((value.clone(), *count), 1));
            }
        })
}

/// For every key, twice the exact median of its values (an integer, so it can be compared and
/// arranged; halved when published).
fn median_twice<'scope, K>(values: Collection<'scope, (K, i64)>) -> Collection<'scope, (K, i128)>
where
    K: differential_dataflow::ExchangeData + differential_dataflow::Hashable,
{
    values.reduce_named("median", |_key, input, output| {
        let total: isize = input.iter().map(|(_, count)| *count).sum();
        if total <= 0 {
            return;
        }
        // The values at 0-based positions (total-1)/2 and total/2 of the sorted multiset.
        let (low, high) = ((total - 1) / 2, total / 2);
        let (mut seen, mut low_value, mut high_value) = (0isize, None, None);
        for (value, count) in input {
            let next = seen + count;
            if low_value.is_none() && low < next {
                low_value = Some(**value);
            }
            if high < next {
                high_value = Some(**value);
                break;
            }
            seen = next;
        }
        if let (Some(low), Some(high)) = (low_value, high_value) {
            output.push((i128::from(low) + i128::from(high), 1));
        }
    })
}

/// Builds every differential aggregate of SPEC §3 (all but `trending_categories`, which is
/// time-windowed and kept by the publisher) from the collection of facts.
pub fn aggregates<'scope>(facts: Collection<'scope, Fact>) -> Collection<'scope, AggregateRow> {
    // pin: (ind, (category, poster_name, follower_count)); geo: (ind, (country, year));
    // user: (ind, (age group, join year)) and ages/years for q6.
    let pins = facts.clone().flat_map(|fact| match fact {
        Fact::Pin {
            ind,
            category,
            poster_name,
            follower_count,
        } => Some((ind, (category, poster_name, follower_count))),
        _ => None,
    });
    let geos = facts.clone().flat_map(|fact| match fact {
        Fact::Geo { ind, country, year } => Some((ind, (country, year))),
        _ => None,
    });
    let users = facts.flat_map(|fact| match fact {
        Fact::User {
            ind,
            age,
            join_year,
        } => Some((ind, (age, join_year))),
        _ => None,
    });

    // pin ⋈ geo on ind: (category, poster_name, follower_count, country, year) per pair.
    let pin_geo = pins.clone().join_map(
        geos,
        |_ind, (category, poster, followers), (country, year)| {
            (
                category.clone(),
                poster.clone(),
                *followers,
                country.clone(),
                *year,
            )
        },
    );
    // pin ⋈ user on ind: (category, follower_count, age group, join year) per pair.
    let pin_user = pins.clone().join_map(
        users.clone(),
        |_ind, (category, _, followers), (age, year)| {
            (category.clone(), *followers, age_group(*age), *year)
        },
    );

    let q1 = most_frequent(
        pin_geo
            .clone()
            .map(|(category, _, _, country, _)| (country, category)),
    )
    .map(|(country, (category, count))| {
        (
            index_of("q1_popular_category_by_country"),
            vec![text(&country), text(&category), Cell::Long(count as i64)],
        )
    });
    let q2 = most_frequent(pin_geo.clone().flat_map(|(category, _, _, _, year)| {
        (2018..=2022).contains(&year).then_some((year, category))
    }))
    .map(|(year, (category, count))| {
        (
            index_of("q2_popular_category_by_year"),
            vec![
                Cell::Long(year.into()),
                text(&category),
                Cell::Long(count as i64),
            ],
        )
    });
    // Per country, the posters with the highest follower_count.
    let q3 = pin_geo
        .flat_map(|(_, poster, followers, country, _)| {
            poster.map(|poster| (country, (followers, poster)))
        })
        .reduce_named("top_user_by_country", |_country, input, output| {
            let top = input.last().map(|((followers, _), _)| *followers);
            for ((followers, poster), _) in
                input.iter().rev().take_while(|((f, _), _)| Some(*f) == top)
            {
                output.push(((*followers, poster.clone()), 1));
            }
        });
    let q3b = q3
        .clone()
        .map(|(country, (followers, _))| ((), (followers, country)))
        .reduce_named("top_country", |_, input, output| {
            let top = input.last().map(|((followers, _), _)| *followers);
            for ((followers, country), _) in
                input.iter().rev().take_while(|((f, _), _)| Some(*f) == top)
            {
                output.push(((*followers, country.clone()), 1));
            }
        })
        .map(|((), (followers, country))| {
            (
                index_of("q3b_top_country"),
                vec![text(&country), Cell::Long(followers)],
            )
        });
    let q3 = q3.map(|(country, (followers, poster))| {
        (
            index_of("q3_top_user_by_country"),
            vec![
                text(&country),
                Cell::Text(Some(poster)),
                Cell::Long(followers),
            ],
        )
    });
    let q4 = most_frequent(
        pin_user
            .clone()
            .flat_map(|(category, _, group, _)| group.map(|group| (group, category))),
    )
    .map(|(group_index, (category, count))| {
        (
            index_of("q4_popular_category_by_age_group"),
            vec![
                group(group_index),
                text(&category),
                Cell::Long(count as i64),
            ],
        )
    });
    let median = |twice: i128| Cell::Double(twice as f64 / 2.0);
    let q5 = median_twice(
        pin_user
            .clone()
            .flat_map(|(_, followers, group, _)| group.map(|group| (group, followers))),
    )
    .map(move |(group_index, twice)| {
        (
            index_of("q5_median_followers_by_age_group"),
            vec![group(group_index), median(twice)],
        )
    });
    let joined_in_range = |year: i32| (2015..=2020).contains(&year);
    let q6 = users
        .flat_map(move |(_, (_, year))| joined_in_range(year).then_some(year))
        .count()
        .map(|(year, count)| {
            (
                index_of("q6_users_joined_by_year"),
                vec![Cell::Long(year.into()), Cell::Long(count as i64)],
            )
        });
    let q7 = median_twice(pin_user.clone().flat_map(move |(_, followers, _, year)| {
        joined_in_range(year).then_some((year, followers))
    }))
    .map(move |(year, twice)| {
        (
            index_of("q7_median_followers_by_join_year"),
            vec![Cell::Long(year.into()), median(twice)],
        )
    });
    let q8 = median_twice(pin_user.flat_map(move |(_, followers, group, year)| {
        group
            .filter(|_| joined_in_range(year))
            .map(|group| ((group, year), followers))
    }))
    .map(move |((group_index, year), twice)| {
        (
            index_of("q8_median_followers_by_age_group_and_join_year"),
            vec![group(group_index), Cell::Long(year.into()), median(twice)],
        )
    });
    // Per poster: their highest follower_count and number of distinct posts; then the top 100
    // posters by that count, ties at the 100th place kept.
    let profile_popularity = pins
        .flat_map(|(_, (_, poster, followers))| poster.map(|poster| (poster, followers)))
        .reduce_named("poster_totals", |_poster, input, output| {
            let posts: isize = input.iter().map(|(_, count)| *count).sum();
            if let Some((followers, _)) = input.last() {
                output.push(((**followers, posts), 1));
            }
        })
        .map(|(poster, (followers, posts))| ((), (followers, poster, posts)))
        .reduce_named("top_posters", |_, input, output| {
            let cutoff = input
                .len()
                .checked_sub(100)
                .map_or(i64::MIN, |i| (input[i].0).0);
            for (value, _) in input.iter().rev().take_while(|((f, _, _), _)| *f >= cutoff) {
                output.push(((*value).clone(), 1));
            }
        })
        .map(|((), (followers, poster, posts))| {
            (
                index_of("profile_popularity"),
                vec![
                    Cell::Text(Some(poster)),
                    Cell::Long(followers),
                    Cell::Long(posts as i64),
                ],
            )
        });
    q1.concat(q2)
        .concat(q3)
        .concat(q3b)
        .concat(q4)
        .concat(q5)
        .concat(q6)
        .concat(q7)
        .concat(q8)
        .concat(profile_popularity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_groups_follow_the_spec() {
        let cases = [
            (17, None),
            (18, Some(0)),
            (24, Some(0)),
            (25, Some(1)),
            (35, Some(1)),
            (36, Some(2)),
            (50, Some(2)),
            (51, Some(3)),
        ];
        for (age, expected) in cases {
            assert_eq!(age_group(age), expected, "{age}");
        }
    }

    #[test]
    fn years_are_utc() {
        assert_eq!(year_of(1_577_836_799_000_000), 2019); // 2019-12-31T23:59:59Z
        assert_eq!(year_of(1_577_836_800_000_000), 2020);
    }
}
