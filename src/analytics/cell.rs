//! The values of published aggregate rows and the types of their columns.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The type of an aggregate column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellType {
    /// Arrow/Delta `string`, nullable.
    Text,
    /// `long`.
    Long,
    /// `double`.
    Double,
}

/// One column of an aggregate: its SPEC §3 name and type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: CellType,
}

impl Column {
    pub const fn text(name: &'static str) -> Column {
        Column {
            name,
            kind: CellType::Text,
        }
    }

    pub const fn long(name: &'static str) -> Column {
        Column {
            name,
            kind: CellType::Long,
        }
    }

    pub const fn double(name: &'static str) -> Column {
        Column {
            name,
            kind: CellType::Double,
        }
    }
}

/// A published row of an aggregate: its cells in column order, shared by the view that keeps
/// it and every snapshot that holds it. A publish of the views that keep their rows
/// ([`super::view::Rows`], q1-q8 but q3b) copies a pointer per row, not its cells: every
/// publish (up to one a tick per changed aggregate) used to copy every row, an allocation per
/// row and a count per text, and the previous snapshot's were freed again.
pub type AggregateRow = Arc<[Cell]>;

/// One value of an aggregate row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Cell {
    /// Shared: a published row's names are the publisher's own texts, not copies of them.
    Text(Option<Arc<str>>),
    Long(i64),
    Double(f64),
}

impl PartialEq for Cell {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Cell {}
impl PartialOrd for Cell {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
/// Total order (doubles by `total_cmp`) so snapshots sort the same way every time.
impl Ord for Cell {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use Cell::*;
        match (self, other) {
            (Text(a), Text(b)) => a.cmp(b),
            (Long(a), Long(b)) => a.cmp(b),
            (Double(a), Double(b)) => a.total_cmp(b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

impl Cell {
    /// The value as plain JSON (a string or null, a number).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Cell::Text(text) => text.as_deref().map_or(serde_json::Value::Null, Into::into),
            Cell::Long(n) => (*n).into(),
            Cell::Double(x) => {
                serde_json::Number::from_f64(*x).map_or(serde_json::Value::Null, Into::into)
            }
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Cell::Text(_) => 0,
            Cell::Long(_) => 1,
            Cell::Double(_) => 2,
        }
    }
}
