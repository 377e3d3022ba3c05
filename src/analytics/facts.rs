//! What the analytics need of a clean row, and the SPEC §3 groupings of its fields.

use std::ops::RangeInclusive;

use chrono::{DateTime, Datelike};
use serde::{Deserialize, Serialize};

use super::names::{Name, NameSender};
use crate::clean::{PinRow, PinText, Row, UserRow};
use crate::table::{QuarantineRow, TableRow};

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

impl Fact {
    /// The fact of `row`; its names go through `names`, which notes the texts to send.
    pub fn of(row: &Row, names: &mut NameSender) -> Fact {
        match row {
            Row::Pin(pin) => Fact::Pin {
                ind: pin.ind,
                category: names.name(pin.category()),
                poster_name: names.name(pin.poster_name()),
                follower_count: pin.follower_count,
            },
            Row::Geo(geo) => Fact::Geo {
                ind: geo.ind,
                country: names.name(geo.country.as_deref()),
                year: year_of(geo.timestamp),
            },
            Row::User(user) => Fact::User {
                ind: user.ind,
                age: user.age,
                join_year: year_of(user.date_joined),
            },
        }
    }

    /// The post the fact is of.
    pub fn ind(&self) -> i64 {
        match self {
            Fact::Pin { ind, .. } | Fact::Geo { ind, .. } | Fact::User { ind, .. } => *ind,
        }
    }
}

/// A copy of `row` with only the parts [`Fact::of`] reads (the others empty). For the rows
/// the tables already hold, read back at start: they are never written again, only
/// deduplicated (by identity, taken from the whole row) and counted by the analytics, so
/// their long texts are left where they were read instead of travelling through the
/// dataflow.
pub fn fact_fields(row: &TableRow) -> TableRow {
    match row {
        TableRow::Clean(Row::Pin(pin)) => {
            let mut texts = [None; PinText::COUNT];
            texts[PinText::PosterName as usize] = pin.poster_name();
            texts[PinText::Category as usize] = pin.category();
            TableRow::from(PinRow::new(pin.ind, pin.follower_count, texts))
        }
        TableRow::Clean(Row::Geo(geo)) => TableRow::from(geo.clone()),
        TableRow::Clean(Row::User(user)) => TableRow::from(UserRow {
            ind: user.ind,
            user_name: String::new(),
            age: user.age,
            date_joined: user.date_joined,
        }),
        TableRow::Quarantine(quarantine) => TableRow::from(QuarantineRow {
            stream: quarantine.stream,
            source: String::new(),
            received_at: quarantine.received_at,
            raw: String::new(),
            reason: String::new(),
        }),
    }
}

/// The UTC calendar year of a micros timestamp.
pub fn year_of(micros: i64) -> i32 {
    DateTime::from_timestamp_micros(micros).map_or(1970, |t| t.year())
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

/// The join years q6, q7 and q8 report (SPEC §3); users who joined in others are left out.
pub const JOIN_YEARS: RangeInclusive<i32> = 2015..=2020;

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
