//! The latest snapshot of every aggregate, shared by the dataflow (which publishes) and the
//! HTTP API, dashboard and aggregate tables (which read).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

use serde_json::{Map, Value};
use tokio::sync::watch;

use super::{AGGREGATES, Aggregate, AggregateRow};

/// One aggregate as of one moment: a consistent result (the dataflow frontier had passed
/// every input it reflects).
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub spec: &'static Aggregate,
    /// When this result was published, micros UTC.
    pub as_of: i64,
    /// Bumped on every change of this aggregate.
    pub version: u64,
    /// Rows in column order, sorted.
    pub rows: Vec<AggregateRow>,
}

impl Snapshot {
    /// Rows as JSON objects keyed by the SPEC's column names.
    pub fn rows_json(&self) -> Vec<Value> {
        self.rows
            .iter()
            .map(|row| {
                let object: Map<String, Value> = self
                    .spec
                    .columns
                    .iter()
                    .zip(row.iter())
                    .map(|(column, cell)| (column.name.to_owned(), cell.to_json()))
                    .collect();
                Value::Object(object)
            })
            .collect()
    }
}

/// The shared store. Cheap to clone. Its lock is `parking_lot`'s, which has no poisoning: a
/// panic while publishing leaves the previous or the new snapshot, both whole.
#[derive(Clone)]
pub struct AggregateStore {
    snapshots: Arc<RwLock<BTreeMap<&'static str, Arc<Snapshot>>>>,
    /// Counts publications; subscribers wake on every change.
    changes: Arc<watch::Sender<u64>>,
}

impl Default for AggregateStore {
    fn default() -> Self {
        Self::new()
    }
}

impl AggregateStore {
    /// A store holding every aggregate, empty.
    pub fn new() -> Self {
        let snapshots = AGGREGATES
            .iter()
            .map(|spec| {
                let empty = Snapshot {
                    spec,
                    as_of: crate::now_micros(),
                    version: 0,
                    rows: Vec::new(),
                };
                (spec.name, Arc::new(empty))
            })
            .collect();
        AggregateStore {
            snapshots: Arc::new(RwLock::new(snapshots)),
            changes: Arc::new(watch::channel(0).0),
        }
    }

    /// Replaces aggregate `name`'s rows (sorted here) if they changed; returns whether they did.
    pub fn publish(&self, name: &str, mut rows: Vec<AggregateRow>) -> bool {
        rows.sort();
        let mut snapshots = self.snapshots.write();
        let Some(current) = snapshots.get_mut(name) else {
            return false;
        };
        if current.rows == rows {
            return false;
        }
        *current = Arc::new(Snapshot {
            spec: current.spec,
            as_of: crate::now_micros(),
            version: current.version + 1,
            rows,
        });
        drop(snapshots);
        self.changes.send_modify(|count| *count += 1);
        true
    }

    pub fn get(&self, name: &str) -> Option<Arc<Snapshot>> {
        self.snapshots.read().get(name).cloned()
    }

    /// Every aggregate, in SPEC order.
    pub fn all(&self) -> Vec<Arc<Snapshot>> {
        let snapshots = self.snapshots.read();
        AGGREGATES
            .iter()
            .filter_map(|spec| snapshots.get(spec.name).cloned())
            .collect()
    }

    /// Wakes on every publication (the value counts them).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::Cell;

    #[test]
    fn publish_sorts_versions_and_notifies_only_on_change() {
        let store = AggregateStore::new();
        let mut changes = store.subscribe();
        let rows: Vec<AggregateRow> = vec![
            [Cell::Text(Some("travel".into())), Cell::Long(2)].into(),
            [Cell::Text(Some("art".into())), Cell::Long(5)].into(),
        ];
        assert!(store.publish("trending_categories", rows.clone()));
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        let snapshot = store.get("trending_categories").unwrap();
        assert_eq!(snapshot.version, 1);
        assert_eq!(snapshot.rows[0][0], Cell::Text(Some("art".into())));
        assert_eq!(
            snapshot.rows_json()[0],
            serde_json::json!({"category": "art", "posts": 5})
        );
        assert!(!store.publish("trending_categories", rows));
        assert!(!changes.has_changed().unwrap());
        assert!(!store.publish("no_such_aggregate", vec![]));
        assert_eq!(store.all().len(), 11);
    }
}
