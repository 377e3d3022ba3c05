//! The publisher's side of a query: a [`View`] takes the query's changes, once the frontier has
//! passed them, and says what rows to publish.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use super::names::{Dictionary, Name};
use super::{AggregateRow, Change, Field};

/// What views may need of the job's settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `trending_categories`' window of arrival time.
    pub trending_window: std::time::Duration,
}

/// One aggregate as the publisher keeps it.
pub trait View {
    /// Applies a change of this aggregate (netted over the times being published). False when
    /// it does not fit: a retraction of what was never added, or another kind of change.
    fn apply(&mut self, change: Change, diff: isize) -> bool;

    /// `posts` distinct pin rows of `category`, first seen at `first_seen` (micros, arrival
    /// time). Only views over arrival time keep these.
    fn pins_first_seen(&mut self, _category: Name, _first_seen: i64, _posts: i64) {}

    /// The rows to publish now, `None` when nothing changed since the last call; `now` (micros)
    /// for views over arrival time.
    fn rows(&mut self, names: &Dictionary, now: i64) -> Option<Vec<AggregateRow>>;
}

/// Rows the dataflow computes in full (q1-q8 but q3b, which the publisher ranks), with their
/// multiplicities, kept in the order they are published.
///
/// A row's cells (names as text) are made when its multiplicity changes, and the rows
/// present are kept sorted by them: a publish copies the rows as they stand, a pointer each
/// ([`AggregateRow`]). Every publish (every tick that changed the aggregate) used to make every
/// row's cells again, each name looked up, and the store sorted them: 60% of the publisher's
/// samples at 100k events/s, on the worker that publishes (its busy time fell by a quarter).
/// A name's text is known when a row carrying it appears: the publisher has the text before
/// it applies any change of the name's time ([`super::names`]).
#[derive(Default)]
pub struct Rows {
    /// Each row's multiplicity, by its fields as the dataflow sends them (none at 0).
    counts: BTreeMap<Vec<Field>, isize>,
    /// The rows whose multiplicity changed since the last publish.
    touched: Vec<Vec<Field>>,
    /// The rows present (multiplicity above 0) in published order: by their cells, then their
    /// fields (rows whose cells are equal stay apart, as the dataflow has them).
    present: BTreeSet<(AggregateRow, Vec<Field>)>,
}

impl Rows {
    /// Brings `present` up to date with the touched rows' multiplicities. A row's cells are
    /// the same whenever they are made (the dictionary keeps every text), so a row that left is
    /// found by making them again.
    fn settle(&mut self, names: &Dictionary) {
        self.touched.sort_unstable();
        self.touched.dedup();
        for fields in self.touched.drain(..) {
            let present = self.counts.get(&fields).is_some_and(|count| *count > 0);
            let row = (
                fields.iter().map(|field| field.cell(names)).collect(),
                fields,
            );
            if present {
                self.present.insert(row);
            } else {
                self.present.remove(&row);
            }
        }
    }
}

impl View for Rows {
    fn apply(&mut self, change: Change, diff: isize) -> bool {
        let Change::Row(row) = change else {
            return false;
        };
        match self.counts.entry(row.clone()) {
            Entry::Vacant(entry) => {
                entry.insert(diff);
            }
            Entry::Occupied(mut entry) => {
                *entry.get_mut() += diff;
                if *entry.get() == 0 {
                    entry.remove();
                }
            }
        }
        self.touched.push(row);
        true
    }

    fn rows(&mut self, names: &Dictionary, _now: i64) -> Option<Vec<AggregateRow>> {
        if self.touched.is_empty() {
            return None;
        }
        self.settle(names);
        Some(
            self.present
                .iter()
                .map(|(cells, _)| cells.clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::Cell;
    use crate::analytics::names::NameSender;

    /// A dictionary that knows `texts`, and their names as fields.
    fn named(texts: &[&str]) -> (Dictionary, Vec<Field>) {
        let mut sender = NameSender::default();
        let fields = texts
            .iter()
            .map(|text| Field::Name(sender.name(Some(text))))
            .collect();
        let mut names = Dictionary::default();
        for (name, text) in sender.take_new() {
            names.insert(name, text);
        }
        (names, fields)
    }

    #[test]
    fn rows_publish_only_on_change_and_drop_retracted_rows() {
        let (names, fields) = named(&["art"]);
        let art = fields[0];
        let mut rows = Rows::default();
        assert_eq!(rows.rows(&names, 0), None);
        assert!(rows.apply(Change::Row(vec![art, Field::Long(3)]), 1));
        assert!(rows.apply(Change::Row(vec![Field::AgeGroup(3), Field::Long(1)]), 1));
        assert!(rows.apply(
            Change::Row(vec![Field::Long(2019), Field::Midpoint(3, 8)]),
            1
        ));
        // In published order: by the cells, texts first ("+50" before "art").
        assert_eq!(
            rows.rows(&names, 0),
            Some(vec![
                AggregateRow::from([Cell::Text(Some("+50".into())), Cell::Long(1)]),
                AggregateRow::from([Cell::Text(Some("art".into())), Cell::Long(3)]),
                AggregateRow::from([Cell::Long(2019), Cell::Double(5.5)]),
            ])
        );
        assert_eq!(rows.rows(&names, 0), None);
        assert!(rows.apply(Change::Row(vec![art, Field::Long(3)]), -1));
        assert_eq!(rows.rows(&names, 0).map(|rows| rows.len()), Some(2));
        assert!(!rows.apply(
            Change::PosterTotal {
                poster: Name::NULL,
                follower_count: 1,
                posts: 1
            },
            1
        ));
    }

    /// The rows kept between publishes are the rows made afresh from the multiplicities, in
    /// the store's order (what every publish made before the rows were kept): over additions,
    /// retractions, rows that leave and come back between two publishes, multiplicities
    /// above 1, and two rows whose cells are equal.
    #[test]
    fn kept_rows_equal_rows_made_afresh_at_every_publish() {
        let (names, fields) = named(&["travel", "art", "beauty", "diy"]);
        let row = |i: usize, n: i64| vec![fields[i % fields.len()], Field::Long(n)];
        // Midpoints (1, 4) and (2, 3) are both 2.5: equal cells, different rows.
        let same = |lower: i64, upper: i64| vec![Field::Long(7), Field::Midpoint(lower, upper)];
        let mut rows = Rows::default();
        let mut counts: BTreeMap<Vec<Field>, isize> = BTreeMap::new();
        let mut state = 7u64;
        for step in 0..400 {
            let changes: Vec<(Vec<Field>, isize)> = (0..1 + step % 5)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let pick = (state >> 33) as usize;
                    let fields = match pick % 7 {
                        0 => same(1, 4),
                        1 => same(2, 3),
                        _ => row(pick, (pick % 3) as i64),
                    };
                    let present = counts.get(&fields).copied().unwrap_or(0);
                    let diff = if present > 0 && pick.is_multiple_of(2) {
                        -1
                    } else {
                        1
                    };
                    (fields, diff)
                })
                .collect();
            for (fields, diff) in changes {
                *counts.entry(fields.clone()).or_default() += diff;
                assert!(rows.apply(Change::Row(fields), diff));
            }
            let mut afresh: Vec<AggregateRow> = counts
                .iter()
                .filter(|(_, count)| **count > 0)
                .map(|(fields, _)| fields.iter().map(|field| field.cell(&names)).collect())
                .collect();
            afresh.sort();
            assert_eq!(rows.rows(&names, 0), Some(afresh), "step {step}");
        }
        assert!(counts.values().any(|count| *count > 1));
        assert_eq!(rows.rows(&names, 0), None);
    }
}
