//! Which objects of an archive are read, and what their names say (SPEC §1, §5).
//!
//! - The Kafka Connect S3 sink layout (`DefaultPartitioner`, `JsonFormat`):
//!   `topics/<topic>/partition=<p>/<topic>+<p>+<start offset>.json`, optionally `.gz`. The
//!   name carries the topic-partition and the Kafka offset of the object's first line.
//! - Plain JSON Lines objects whose name or folders carry a stream token (`pin.jsonl`), as
//!   the file source takes them from a directory.
//!
//! An object that looks like a Connect object (a `+` in its file name, or a
//! `partition=<p>` folder) but does not parse as one is bad: reading it by line would key
//! its positions wrongly, so it is reported and skipped.

use crate::connectors::Offset;
use crate::stream::Stream;

/// What an object's key (relative to the archive's prefix) says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectName {
    /// A Kafka Connect object: line `i` is offset `start + i` of `topic`/`partition`.
    Connect {
        topic: String,
        partition: i32,
        start: Offset,
        stream: Stream,
        gzip: bool,
    },
    /// JSON Lines of `stream` without offsets: positioned per object, by line.
    Plain { stream: Stream, gzip: bool },
    /// Not part of any stream (a `README`, a `_SUCCESS` marker, a topic without a token).
    Other,
    /// Looks like a Connect object but does not parse: why.
    Bad(String),
}

/// The file name the Connect S3 sink gives an object: `<topic>+<p>+<start, 10 digits>.json`.
pub fn connect_file_name(topic: &str, partition: i32, start: Offset) -> String {
    format!("{topic}+{partition}+{:010}.json", start.value())
}

/// The key of a Connect object under the archive root:
/// `topics/<topic>/partition=<p>/<topic>+<p>+<start>.json`.
pub fn connect_key(topic: &str, partition: i32, start: Offset) -> String {
    format!(
        "topics/{topic}/partition={partition}/{}",
        connect_file_name(topic, partition, start)
    )
}

impl ObjectName {
    /// Parses a key relative to the archive's prefix.
    pub fn parse(key: &str) -> ObjectName {
        let mut segments = key.rsplit('/');
        let file = segments.next().unwrap_or_default();
        let folder_partition = segments
            .next()
            .and_then(|folder| folder.strip_prefix("partition="));
        let (stem, gzip) = match file.strip_suffix(".gz") {
            Some(stem) => (stem, true),
            None => (file, false),
        };
        if !file.contains('+') && folder_partition.is_none() {
            return match Stream::from_name_token(key) {
                Some(stream) => ObjectName::Plain { stream, gzip },
                None => ObjectName::Other,
            };
        }
        let Some(stem) = stem
            .strip_suffix(".json")
            .or_else(|| stem.strip_suffix(".jsonl"))
        else {
            return ObjectName::Bad(format!("{key}: not a .json or .json.gz Connect object"));
        };
        let mut parts = stem.rsplitn(3, '+');
        let (Some(start), Some(partition), Some(topic)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return ObjectName::Bad(format!(
                "{key}: expected <topic>+<partition>+<start offset>.json"
            ));
        };
        let (Ok(partition), Ok(start)) = (partition.parse::<i32>(), start.parse::<i64>()) else {
            return ObjectName::Bad(format!("{key}: partition or start offset is not a number"));
        };
        if partition < 0 || start < 0 || topic.is_empty() {
            return ObjectName::Bad(format!("{key}: negative partition or offset, or no topic"));
        }
        if let Some(folder) = folder_partition
            && folder.parse::<i32>() != Ok(partition)
        {
            return ObjectName::Bad(format!(
                "{key}: folder partition={folder} but the name says partition {partition}"
            ));
        }
        match Stream::from_name_token(topic) {
            Some(stream) => ObjectName::Connect {
                topic: topic.to_owned(),
                partition,
                start: Offset::new(start),
                stream,
                gzip,
            },
            None => ObjectName::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_names_carry_topic_partition_and_start_offset() {
        let key = connect_key("abc.geo", 3, Offset::new(42));
        assert_eq!(key, "topics/abc.geo/partition=3/abc.geo+3+0000000042.json");
        let connect = |gzip| ObjectName::Connect {
            topic: "abc.geo".into(),
            partition: 3,
            start: Offset::new(42),
            stream: Stream::Geo,
            gzip,
        };
        assert_eq!(ObjectName::parse(&key), connect(false));
        assert_eq!(ObjectName::parse(&format!("{key}.gz")), connect(true));
        // Without folders (a prefix pointing into the partition folder).
        assert_eq!(
            ObjectName::parse("abc.geo+3+0000000042.json"),
            connect(false)
        );
    }

    #[test]
    fn plain_objects_other_objects_and_bad_names() {
        assert_eq!(
            ObjectName::parse("2026/pin.jsonl.gz"),
            ObjectName::Plain {
                stream: Stream::Pin,
                gzip: true
            }
        );
        assert_eq!(ObjectName::parse("README.md"), ObjectName::Other);
        assert_eq!(
            ObjectName::parse("topics/other/partition=0/other+0+0000000000.json"),
            ObjectName::Other
        );
        for bad in [
            "topics/a.pin/partition=0/a.pin+0+x.json",
            "topics/a.pin/partition=0/a.pin+0.json",
            "topics/a.pin/partition=0/a.pin+1+0000000000.json",
            "topics/a.pin/partition=0/a.pin.json",
            "a.pin+0+5.avro",
            "a.pin+-1+5.json",
        ] {
            assert!(
                matches!(ObjectName::parse(bad), ObjectName::Bad(_)),
                "{bad}: {:?}",
                ObjectName::parse(bad)
            );
        }
    }
}
