//! The floor the cleaning is measured against (`pinstream bench`, the throughput test):
//! serde_json parsing each message into plain typed records, owned strings and numbers, with
//! no rule applied. Cleaning cannot be cheaper than reading the fields; the gap is its cost.

use serde::Deserialize;

use crate::stream::Stream;

#[derive(Deserialize)]
#[allow(dead_code)] // parsed, never read: this is the cost being measured
struct PinRecord {
    index: i64,
    unique_id: String,
    title: String,
    description: String,
    poster_name: String,
    follower_count: String,
    tag_list: String,
    is_image_or_video: String,
    image_src: String,
    downloaded: i64,
    save_location: String,
    category: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct GeoRecord {
    ind: i64,
    timestamp: String,
    latitude: f64,
    longitude: f64,
    country: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct UserRecord {
    ind: i64,
    first_name: String,
    last_name: String,
    age: i64,
    date_joined: String,
}

/// The baseline: serde_json parsing one message into its typed record (true when it parsed).
pub fn parse_typed(stream: Stream, line: &[u8]) -> bool {
    match stream {
        Stream::Pin => serde_json::from_slice::<PinRecord>(line).is_ok(),
        Stream::Geo => serde_json::from_slice::<GeoRecord>(line).is_ok(),
        Stream::User => serde_json::from_slice::<UserRecord>(line).is_ok(),
    }
}
