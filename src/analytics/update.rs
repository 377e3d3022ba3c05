//! What the dataflow sends the publisher: changes to the aggregates, with names still digests.

use serde::{Deserialize, Serialize};

use super::facts::AGE_GROUPS;
use super::names::{Dictionary, Name};
use super::{AggregateId, Cell};

/// A change to one aggregate, which the publisher hands to that aggregate's [`View`](super::View).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Update {
    pub aggregate: AggregateId,
    pub change: Change,
}

/// The kinds of change the views keep.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Change {
    /// A row of an aggregate computed in full by the dataflow.
    Row(Vec<Field>),
    /// A poster's highest follower_count and number of distinct posts. The top 100 of these
    /// (`profile_popularity`) are ranked by the publisher in an ordered index: ranking inside
    /// the dataflow would re-read every poster on each change.
    PosterTotal {
        poster: Name,
        follower_count: i64,
        posts: i64,
    },
    /// A country's top follower_count among q3's rows, once per top poster of the country
    /// (`q3b_top_country`, ranked by the publisher: one key for the whole job would be one
    /// worker's reduction re-reading every country on each change).
    CountryTop { country: Name, follower_count: i64 },
}

/// A value of a row as the dataflow computes it: names stay digests (compared as integers,
/// and their text is only known to the publisher, see [`super::names`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Field {
    Name(Name),
    Long(i64),
    /// An index into [`AGE_GROUPS`].
    AgeGroup(u8),
    /// A median: the mean of the two middle values (the same value twice for an odd count),
    /// kept as the two so that rows stay exact and ordered.
    Midpoint(i64, i64),
}

impl Field {
    /// The published cell: names as their text.
    pub fn cell(self, names: &Dictionary) -> Cell {
        match self {
            Field::Name(name) => Cell::Text(names.text(name)),
            Field::Long(n) => Cell::Long(n),
            Field::AgeGroup(group) => Cell::Text(Some(AGE_GROUPS[usize::from(group)].into())),
            Field::Midpoint(lower, upper) => {
                Cell::Double((i128::from(lower) + i128::from(upper)) as f64 / 2.0)
            }
        }
    }
}

impl From<Name> for Field {
    fn from(name: Name) -> Field {
        Field::Name(name)
    }
}

impl From<i64> for Field {
    fn from(n: i64) -> Field {
        Field::Long(n)
    }
}

impl From<i32> for Field {
    fn from(n: i32) -> Field {
        Field::Long(n.into())
    }
}
