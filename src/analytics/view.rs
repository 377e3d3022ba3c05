//! The publisher's side of a query: a [`View`] takes the query's changes, once the frontier has
//! passed them, and says what rows to publish.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use super::names::{Dictionary, Name};
use super::{Cell, Change, Field};

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
    fn rows(&mut self, names: &Dictionary, now: i64) -> Option<Vec<Vec<Cell>>>;
}

/// Rows the dataflow computes in full (q1-q8 but profile_popularity), with their
/// multiplicities.
#[derive(Default)]
pub struct Rows {
    rows: BTreeMap<Vec<Field>, isize>,
    changed: bool,
}

impl View for Rows {
    fn apply(&mut self, change: Change, diff: isize) -> bool {
        let Change::Row(row) = change else {
            return false;
        };
        self.changed = true;
        match self.rows.entry(row) {
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
        true
    }

    fn rows(&mut self, names: &Dictionary, _now: i64) -> Option<Vec<Vec<Cell>>> {
        if !std::mem::take(&mut self.changed) {
            return None;
        }
        let rows = self
            .rows
            .iter()
            .filter(|(_, count)| **count > 0)
            .map(|(row, _)| row.iter().map(|field| field.cell(names)).collect())
            .collect();
        Some(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::names::NameSender;

    #[test]
    fn rows_publish_only_on_change_and_drop_retracted_rows() {
        let mut sender = NameSender::default();
        let art = Field::Name(sender.name(Some("art")));
        let mut names = Dictionary::default();
        for (name, text) in sender.take_new() {
            names.insert(name, text);
        }
        let mut rows = Rows::default();
        assert_eq!(rows.rows(&names, 0), None);
        assert!(rows.apply(Change::Row(vec![art, Field::Long(3)]), 1));
        assert!(rows.apply(Change::Row(vec![Field::AgeGroup(3), Field::Long(1)]), 1));
        assert!(rows.apply(
            Change::Row(vec![Field::Long(2019), Field::Midpoint(3, 8)]),
            1
        ));
        assert_eq!(
            rows.rows(&names, 0),
            Some(vec![
                vec![Cell::Text(Some("art".into())), Cell::Long(3)],
                vec![Cell::Long(2019), Cell::Double(5.5)],
                vec![Cell::Text(Some("+50".into())), Cell::Long(1)],
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
}
