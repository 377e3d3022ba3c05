//! Cleaning (SPEC §2): raw message bytes of one stream -> one typed clean row, or a reason why
//! the message goes to quarantine. A bad message is data, not an error: `clean` never panics
//! and never returns anything but a row or a [`Reason`].

mod field;
mod text;
mod time;

use serde::{Deserialize, Serialize};

use crate::stream::Stream;

/// Why a message went to quarantine. `Display` gives the `reason` column text (short, lower
/// case, names the field).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// The payload does not parse as JSON (serde_json's message), or holds a key twice.
    #[error("not valid JSON: {0}")]
    NotJson(String),
    /// Valid JSON, but not an object.
    #[error("not a JSON object")]
    NotObject,
    /// The payload bytes are not UTF-8.
    #[error("not valid UTF-8")]
    InvalidUtf8,
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// `"seven"` for an integer, an object, array or boolean where a scalar is expected.
    #[error("wrong type for {field}: expected {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    /// Null (or a null marker in a required text field) where a value is required.
    #[error("null {0}")]
    NullField(&'static str),
    /// An integer field whose value does not fit a 64-bit signed integer.
    #[error("{field} does not fit a 64-bit integer")]
    IntegerOverflow { field: &'static str },
    #[error("invalid unique_id: not a 36-character UUID")]
    InvalidUuid,
    /// The value (first 40 characters) does not match `^[0-9]+[kM]?$`.
    #[error("invalid follower_count {0:?}")]
    InvalidFollowerCount(String),
    #[error("follower_count does not fit a 64-bit integer")]
    FollowerCountOverflow,
    #[error("latitude out of range [-90, 90]")]
    LatitudeOutOfRange,
    #[error("longitude out of range [-180, 180]")]
    LongitudeOutOfRange,
    #[error("invalid timestamp in {field}")]
    InvalidTimestamp { field: &'static str },
    #[error("age {0} out of range [0, 150]")]
    AgeOutOfRange(i64),
}

/// Microseconds since the Unix epoch, UTC (Delta `timestamp`).
pub type Micros = i64;

/// A latitude or longitude. Ordered and hashed by its bits so that rows can be compared,
/// deduplicated and arranged (f64 alone is neither `Ord` nor `Hash`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Degrees(pub f64);

impl PartialEq for Degrees {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for Degrees {}
impl PartialOrd for Degrees {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Degrees {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}
impl std::hash::Hash for Degrees {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state)
    }
}

/// A row of table `pin` (SPEC §2, columns in table order).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PinRow {
    pub ind: i64,
    pub unique_id: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub follower_count: i64,
    pub poster_name: Option<String>,
    pub tag_list: Option<String>,
    pub is_image_or_video: Option<String>,
    pub image_src: Option<String>,
    pub save_location: Option<String>,
    pub category: Option<String>,
}

/// A row of table `geo`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GeoRow {
    pub ind: i64,
    pub country: Option<String>,
    /// `[latitude, longitude]`.
    pub coordinates: [Degrees; 2],
    pub timestamp: Micros,
}

/// A row of table `user`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserRow {
    pub ind: i64,
    pub user_name: String,
    pub age: i32,
    pub date_joined: Micros,
}

/// A clean row of one of the three tables.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Row {
    Pin(PinRow),
    Geo(GeoRow),
    User(UserRow),
}

impl Row {
    pub fn stream(&self) -> Stream {
        match self {
            Row::Pin(_) => Stream::Pin,
            Row::Geo(_) => Stream::Geo,
            Row::User(_) => Stream::User,
        }
    }

    pub fn ind(&self) -> i64 {
        match self {
            Row::Pin(row) => row.ind,
            Row::Geo(row) => row.ind,
            Row::User(row) => row.ind,
        }
    }
}
