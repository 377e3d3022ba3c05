//! `profile_popularity`: the top 100 posters by follower_count (their highest), with their
//! number of distinct posts, ties on the 100th place kept.
//!
//! The dataflow keeps each poster's total; the publisher ranks them in an ordered index
//! ([`TopPosters`]): ranking inside the dataflow would re-read every poster on each change.

use std::collections::BTreeMap;

use super::names::{Dictionary, Name};
use super::operators::accumulate;
use super::view::{Settings, View};
use super::{Aggregate, AggregateId, Cell, Change, Collection, Column, Inputs, Query, Update};

pub const AGGREGATE: Aggregate = Aggregate {
    name: "profile_popularity",
    columns: &[
        Column::text("poster_name"),
        Column::long("follower_count"),
        Column::long("posts"),
    ],
    query: &ProfilePopularity,
};

/// How many posters are ranked (ties at the last place kept).
const TOP: usize = 100;

pub struct ProfilePopularity;

impl Query for ProfilePopularity {
    fn build<'scope>(
        &self,
        id: AggregateId,
        inputs: &Inputs<'scope>,
    ) -> Option<Collection<'scope, Update>> {
        // Per poster: their highest follower_count and number of distinct posts.
        let pins = inputs.pins.clone().flat_map(|(_, pin)| {
            (!pin.poster_name.is_null()).then_some((pin.poster_name, pin.follower_count))
        });
        let totals = accumulate(
            pins,
            "poster_totals",
            |total: &mut Option<(i64, isize)>, followers, diff| {
                let (highest, posts) = total.get_or_insert((followers, 0));
                *highest = (*highest).max(followers);
                *posts += diff;
            },
            |total, rows| rows.extend(*total),
        )
        .map(move |(poster, (follower_count, posts))| Update {
            aggregate: id,
            change: Change::PosterTotal {
                poster,
                follower_count,
                posts: posts as i64,
            },
        });
        Some(totals)
    }

    fn view(&self, _settings: &Settings) -> Box<dyn View> {
        Box::<TopPosters>::default()
    }
}

/// Every poster's (follower_count, poster) -> posts, ordered for the top [`TOP`].
#[derive(Default)]
pub struct TopPosters {
    posters: BTreeMap<(i64, Name), i64>,
    changed: bool,
}

impl View for TopPosters {
    fn apply(&mut self, change: Change, diff: isize) -> bool {
        let Change::PosterTotal {
            poster,
            follower_count,
            posts,
        } = change
        else {
            return false;
        };
        self.changed = true;
        let key = (follower_count, poster);
        if diff > 0 {
            self.posters.insert(key, posts);
        } else if self.posters.get(&key) == Some(&posts) {
            // Otherwise the poster's new total with the same follower_count came first and
            // replaced this one.
            self.posters.remove(&key);
        }
        true
    }

    fn rows(&mut self, names: &Dictionary, _now: i64) -> Option<Vec<Vec<Cell>>> {
        std::mem::take(&mut self.changed).then(|| self.top(names))
    }
}

impl TopPosters {
    /// The [`TOP`] posters with the highest follower_count, ties at the last place kept.
    fn top(&self, names: &Dictionary) -> Vec<Vec<Cell>> {
        let mut rows = Vec::new();
        let mut cutoff = None;
        for ((follower_count, poster), posts) in self.posters.iter().rev() {
            if rows.len() >= TOP && cutoff != Some(*follower_count) {
                break;
            }
            cutoff = Some(*follower_count);
            rows.push(vec![
                Cell::Text(names.text(*poster)),
                Cell::Long(*follower_count),
                Cell::Long(*posts),
            ]);
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(poster: Name, follower_count: i64, posts: i64) -> Change {
        Change::PosterTotal {
            poster,
            follower_count,
            posts,
        }
    }

    #[test]
    fn the_top_keeps_ties_at_the_last_place_and_follows_replaced_totals() {
        let names = Dictionary::default();
        let mut top = TopPosters::default();
        assert_eq!(top.rows(&names, 0), None);
        for n in 0..TOP as i64 {
            assert!(top.apply(total(Name::of(Some(&n.to_string())), 1000 + n, 1), 1));
        }
        // Two more with the 100th place's count, one below it.
        assert!(top.apply(total(Name::of(Some("tie a")), 1000, 2), 1));
        assert!(top.apply(total(Name::of(Some("tie b")), 1000, 3), 1));
        assert!(top.apply(total(Name::of(Some("below")), 999, 1), 1));
        assert_eq!(top.rows(&names, 0).map(|rows| rows.len()), Some(TOP + 2));
        assert_eq!(top.rows(&names, 0), None);

        // A poster's new total with the same follower_count: the stale retraction, applied after
        // the addition, leaves the new total.
        let poster = Name::of(Some("99"));
        assert!(top.apply(total(poster, 1099, 2), 1));
        assert!(top.apply(total(poster, 1099, 1), -1));
        let rows = top.rows(&names, 0).unwrap();
        assert_eq!(rows[0][1..], [Cell::Long(1099), Cell::Long(2)]);
    }
}
