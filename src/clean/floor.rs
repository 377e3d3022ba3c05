//! The floor the cleaning is measured against (`pinstream bench`, the throughput test):
//! serde_json parsing each message into plain typed records, owned strings and numbers, with
//! no rule applied. Cleaning cannot be cheaper than reading the fields; the gap is its cost.
//! The bench also writes these records as Parquet, for the floor that counts the tables'
//! format too.

use serde::Deserialize;

use crate::stream::Stream;

#[derive(Deserialize)]
pub struct PinRecord {
    pub index: i64,
    pub unique_id: String,
    pub title: String,
    pub description: String,
    pub poster_name: String,
    pub follower_count: String,
    pub tag_list: String,
    pub is_image_or_video: String,
    pub image_src: String,
    pub downloaded: i64,
    pub save_location: String,
    pub category: String,
}

#[derive(Deserialize)]
pub struct GeoRecord {
    pub ind: i64,
    pub timestamp: String,
    pub latitude: f64,
    pub longitude: f64,
    pub country: String,
}

#[derive(Deserialize)]
pub struct UserRecord {
    pub ind: i64,
    pub first_name: String,
    pub last_name: String,
    pub age: i64,
    pub date_joined: String,
}

/// A message parsed into its stream's typed record.
pub enum Record {
    Pin(PinRecord),
    Geo(GeoRecord),
    User(UserRecord),
}

/// serde_json parsing one message into its typed record; `None` when it does not parse.
pub fn parse_record(stream: Stream, line: &[u8]) -> Option<Record> {
    match stream {
        Stream::Pin => serde_json::from_slice(line).ok().map(Record::Pin),
        Stream::Geo => serde_json::from_slice(line).ok().map(Record::Geo),
        Stream::User => serde_json::from_slice(line).ok().map(Record::User),
    }
}

/// The baseline: serde_json parsing one message into its typed record (true when it parsed).
pub fn parse_typed(stream: Stream, line: &[u8]) -> bool {
    parse_record(stream, line).is_some()
}
