//! Live analytics (SPEC §3): every query maintained incrementally with differential dataflow
//! over the deduplicated clean rows, published to an [`AggregateStore`] that the HTTP API,
//! the dashboard and the aggregate Delta tables read.

pub mod store;

pub mod median;
pub mod names;
pub mod publish;
pub mod queries;

use serde::{Deserialize, Serialize};

pub use store::{AggregateStore, Snapshot};

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

/// One value of an aggregate row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Cell {
    Text(Option<String>),
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
            Cell::Text(text) => text.clone().map_or(serde_json::Value::Null, Into::into),
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

/// An aggregate's name and columns (SPEC §3 names, in order).
#[derive(Debug)]
pub struct AggregateSpec {
    pub name: &'static str,
    pub columns: &'static [(&'static str, CellType)],
}

use CellType::{Double, Long, Text};

/// Every aggregate of SPEC §3, in SPEC order.
pub const AGGREGATES: &[AggregateSpec] = &[
    AggregateSpec {
        name: "q1_popular_category_by_country",
        columns: &[
            ("country", Text),
            ("category", Text),
            ("category_count", Long),
        ],
    },
    AggregateSpec {
        name: "q2_popular_category_by_year",
        columns: &[
            ("post_year", Long),
            ("category", Text),
            ("category_count", Long),
        ],
    },
    AggregateSpec {
        name: "q3_top_user_by_country",
        columns: &[
            ("country", Text),
            ("poster_name", Text),
            ("follower_count", Long),
        ],
    },
    AggregateSpec {
        name: "q3b_top_country",
        columns: &[("country", Text), ("follower_count", Long)],
    },
    AggregateSpec {
        name: "q4_popular_category_by_age_group",
        columns: &[
            ("age_group", Text),
            ("category", Text),
            ("category_count", Long),
        ],
    },
    AggregateSpec {
        name: "q5_median_followers_by_age_group",
        columns: &[("age_group", Text), ("median_follower_count", Double)],
    },
    AggregateSpec {
        name: "q6_users_joined_by_year",
        columns: &[("post_year", Long), ("number_users_joined", Long)],
    },
    AggregateSpec {
        name: "q7_median_followers_by_join_year",
        columns: &[("post_year", Long), ("median_follower_count", Double)],
    },
    AggregateSpec {
        name: "q8_median_followers_by_age_group_and_join_year",
        columns: &[
            ("age_group", Text),
            ("post_year", Long),
            ("median_follower_count", Double),
        ],
    },
    AggregateSpec {
        name: "profile_popularity",
        columns: &[
            ("poster_name", Text),
            ("follower_count", Long),
            ("posts", Long),
        ],
    },
    AggregateSpec {
        name: "trending_categories",
        columns: &[("category", Text), ("posts", Long)],
    },
];

/// The spec of aggregate `name`.
pub fn spec(name: &str) -> Option<&'static AggregateSpec> {
    AGGREGATES.iter().find(|spec| spec.name == name)
}
