//! The three input streams of SPEC §1 and the tables they land in (SPEC §4).

use serde::{Deserialize, Serialize};
use std::fmt;

/// One of the three posting-event streams. Everything that depends on "which stream" takes
/// this type, never a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Pin,
    Geo,
    User,
}

impl Stream {
    pub const ALL: [Stream; 3] = [Stream::Pin, Stream::Geo, Stream::User];

    /// The name used in topic and stream suffixes, file names and the `stream` column.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Pin => "pin",
            Stream::Geo => "geo",
            Stream::User => "user",
        }
    }

    /// The stream a topic, Kinesis stream or file path belongs to: the last `pin`, `geo` or
    /// `user` token, where tokens are separated by anything that is not a letter
    /// (`abc.pin`, `streaming-abc-geo`, `topics/abc.user/partition=0/abc.user+0+00042.json`).
    pub fn from_name_token(name: &str) -> Option<Stream> {
        name.split(|c: char| !c.is_ascii_alphabetic())
            .rev()
            .find_map(|token| match token {
                "pin" => Some(Stream::Pin),
                "geo" => Some(Stream::Geo),
                "user" => Some(Stream::User),
                _ => None,
            })
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_from_name_token() {
        let cases = [
            ("pin.jsonl", Some(Stream::Pin)),
            ("abc.geo", Some(Stream::Geo)),
            ("streaming-0a1b-user", Some(Stream::User)),
            (
                "topics/abc.user/partition=0/abc.user+0+0000000042.json",
                Some(Stream::User),
            ),
            ("pinterest.json", None),
            ("users.jsonl", None),
            ("", None),
        ];
        for (name, expected) in cases {
            assert_eq!(Stream::from_name_token(name), expected, "{name}");
        }
    }
}
