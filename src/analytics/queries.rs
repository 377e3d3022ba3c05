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

use super::names::{self, Name};
use super::{AGGREGATES, Cell};
use crate::clean::Row;

type Collection<'scope, D> = VecCollection<'scope, u64, D, isize>;

/// What the analytics need of a clean row (the rest is dropped as early as possible).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Fact {
    Pin {
        ind: i64,
        category: Name,
        poster_name: Name,
        follower_count: i64,
    },
    Geo {
        ind: i64,
        country: Name,
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
                category: names::intern(pin.category.as_deref()),
                poster_name: names::intern(pin.poster_name.as_deref()),
                follower_count: pin.follower_count,
            },
            Row::Geo(geo) => Fact::Geo {
                ind: geo.ind,
                country: names::intern(geo.country.as_deref()),
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

/// A change the publisher applies.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Update {
    /// A row of an aggregate: its index in [`AGGREGATES`] and its cells.
    Row(usize, Vec<Cell>),
    /// A poster's highest follower_count and number of distinct posts. The top 100 of these
    /// (`profile_popularity`) are ranked by the publisher in an ordered index: ranking inside
    /// the dataflow would re-read every poster on each change.
    PosterTotal {
        poster: Name,
        follower_count: i64,
        posts: i64,
    },
    /// A follower_count entering (diff > 0) or leaving the multiset whose median aggregate
    /// `index` (q5, q7 or q8) reports for key `(age group, join year)` (the parts the query
    /// does not key by are 0). The publisher keeps the medians in order-statistic halves
    /// ([`super::median::Median`]): a reduce would re-read every value of a key per change.
    MedianValue {
        index: usize,
        group: u8,
        year: i32,
        value: i64,
    },
}

/// The leading cells (the key) of a median aggregate's row.
pub fn median_key(index: usize, group: u8, year: i32) -> Vec<Cell> {
    let year = || Cell::Long(year.into());
    match AGGREGATES[index].name {
        "q5_median_followers_by_age_group" => vec![self::group(group)],
        "q7_median_followers_by_join_year" => vec![year()],
        _ => vec![self::group(group), year()],
    }
}

/// A row of an aggregate: its index in [`AGGREGATES`] and its cells.
pub type AggregateRow = (usize, Vec<Cell>);

fn text(name: &Name) -> Cell {
    Cell::Text(names::text(*name))
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

/// For every key, the values among the `k` highest by `rank`, ties at the `k`th place kept.
///
/// Computed as a tree of reductions over hash buckets of the values (4096, then 64, then 1
/// per key): the top-k-with-ties of a union is the top-k-with-ties of its parts' survivors, so
/// a change re-reads one bucket per level (at most 64·k values) instead of the whole key.
fn top_with_ties<'scope, K, V>(
    input: Collection<'scope, (K, V)>,
    k: usize,
    rank: fn(&V) -> i64,
) -> Collection<'scope, (K, V)>
where
    K: differential_dataflow::ExchangeData + std::hash::Hash,
    V: differential_dataflow::ExchangeData + std::hash::Hash,
{
    use differential_dataflow::Hashable;
    let keep = move |input: &[(&V, isize)], output: &mut Vec<(V, isize)>| {
        // Sorted ascending by value; rank is the value's leading field, so also by rank.
        let mut ranks: Vec<i64> = input.iter().map(|(value, _)| rank(value)).collect();
        ranks.sort_unstable();
        let cutoff = ranks.len().checked_sub(k).map_or(i64::MIN, |i| ranks[i]);
        for (value, _) in input.iter().filter(|(value, _)| rank(value) >= cutoff) {
            output.push(((*value).clone(), 1));
        }
    };
    let mut level = input.map(|(key, value)| {
        let bucket = (value.hashed() & 0xFFF) as u16;
        ((key, bucket), value)
    });
    for shift in [6, 12] {
        level = level
            .reduce_named("top_with_ties_bucket", move |_, input, output| {
                keep(input, output)
            })
            .map(move |((key, bucket), value)| ((key, bucket >> shift << shift >> 6), value));
    }
    level
        .map(|((key, _), value)| (key, value))
        .reduce_named("top_with_ties", move |_, input, output| keep(input, output))
}

/// Builds every differential aggregate of SPEC §3 (all but `trending_categories`, which is
/// time-windowed and kept by the publisher) from the collection of facts.
pub fn aggregates<'scope>(facts: Collection<'scope, Fact>) -> Collection<'scope, Update> {
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

    // Each side arranged by ind once, shared by the joins.
    let pins_by_ind = pins.clone().arrange_by_key_named("pins_by_ind");
    // pin ⋈ geo on ind: (category, poster_name, follower_count, country, year) per pair.
    let pin_geo = pins_by_ind.clone().join_core(
        geos.arrange_by_key_named("geos_by_ind"),
        |_ind, (category, poster, followers), (country, year)| {
            Some((*category, *poster, *followers, *country, *year))
        },
    );
    // pin ⋈ user on ind: (category, follower_count, age group, join year) per pair.
    let pin_user = pins_by_ind.join_core(
        users.clone().arrange_by_key_named("users_by_ind"),
        |_ind, (category, _, followers), (age, year)| {
            Some((*category, *followers, age_group(*age), *year))
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
    let q3 = top_with_ties(
        pin_geo
            .clone()
            .flat_map(|(_, poster, followers, country, _)| {
                (!poster.is_null()).then_some((country, (followers, poster)))
            }),
        1,
        |(followers, _)| *followers,
    );
    let q3b = q3
        .clone()
        .map(|(country, (followers, _))| ((), (followers, country)))
        .reduce_named("top_country", |_, input, output| {
            let top = input.last().map(|((followers, _), _)| *followers);
            for ((followers, country), _) in
                input.iter().rev().take_while(|((f, _), _)| Some(*f) == top)
            {
                output.push(((*followers, *country), 1));
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
            vec![text(&country), text(&poster), Cell::Long(followers)],
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
    // The medians' values, each to the publisher's order statistics (see `Update::MedianValue`).
    let (q5, q7, q8) = (
        index_of("q5_median_followers_by_age_group"),
        index_of("q7_median_followers_by_join_year"),
        index_of("q8_median_followers_by_age_group_and_join_year"),
    );
    let joined_in_range = |year: i32| (2015..=2020).contains(&year);
    let median_values = pin_user.flat_map(move |(_, value, group, year)| {
        let by_group = group.map(|group| Update::MedianValue {
            index: q5,
            group,
            year: 0,
            value,
        });
        let in_range = joined_in_range(year);
        let by_year = in_range.then_some(Update::MedianValue {
            index: q7,
            group: 0,
            year,
            value,
        });
        let by_both = group.filter(|_| in_range).map(|group| Update::MedianValue {
            index: q8,
            group,
            year,
            value,
        });
        [by_group, by_year, by_both].into_iter().flatten()
    });
    let q6 = users
        .flat_map(move |(_, (_, year))| joined_in_range(year).then_some(year))
        .count()
        .map(|(year, count)| {
            (
                index_of("q6_users_joined_by_year"),
                vec![Cell::Long(year.into()), Cell::Long(count as i64)],
            )
        });
    // Per poster: their highest follower_count and number of distinct posts; then the top 100
    // posters by that count, ties at the 100th place kept.
    let poster_totals = pins
        .flat_map(|(_, (_, poster, followers))| (!poster.is_null()).then_some((poster, followers)))
        .reduce_named("poster_totals", |_poster, input, output| {
            let posts: isize = input.iter().map(|(_, count)| *count).sum();
            if let Some((followers, _)) = input.last() {
                output.push(((**followers, posts), 1));
            }
        })
        .map(|(poster, (follower_count, posts))| Update::PosterTotal {
            poster,
            follower_count,
            posts: posts as i64,
        });
    q1.concat(q2)
        .concat(q3)
        .concat(q3b)
        .concat(q4)
        .concat(q6)
        .map(|(index, cells)| Update::Row(index, cells))
        .concat(poster_totals)
        .concat(median_values)
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
