//! A message stream in which about one message in ten is arbitrary bytes and the rest are
//! emulated events, some with a few bytes changed, sent to a real engine over HTTP ingest
//! (Kinesis `Data` as base64, so any bytes are one message): read back from the lake, every
//! message is exactly one row, clean in its table or in quarantine with its exact bytes, and
//! nothing else is there. Clean rows that are equal are one row by design (SPEC §2
//! "Duplicates"), so the expected clean tables are the distinct rows.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use pinstream::clean::{self, Row};
use pinstream::emulator::{Emulator, Parameters};
use pinstream::stream::Stream;
use proptest::prelude::*;

use crate::ingest::{start, stop};
use crate::support::*;

/// One message of the stream: its stream and bytes.
#[derive(Clone, Debug)]
struct Message {
    stream: Stream,
    bytes: Vec<u8>,
}

/// A message: arbitrary bytes (weight 1), or the message of emulated post `post` (distinct
/// per message, so that distinct posts give distinct rows), with up to three bytes changed
/// (weight 9).
fn message(post: u64) -> impl Strategy<Value = Message> {
    let stream = prop::sample::select(Stream::ALL.to_vec());
    let arbitrary = (stream.clone(), prop::collection::vec(any::<u8>(), 0..120))
        .prop_map(|(stream, bytes)| Message { stream, bytes });
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4);
    let emulated = (stream, any::<u64>(), prop::bool::weighted(0.3), edits).prop_map(
        move |(stream, seed, edit, edits)| {
            let emulator = Emulator::new(Parameters {
                seed: seed % 4,
                universe: 10_000,
            });
            let mut bytes = emulator.post(post).message(stream).to_vec();
            for (at, byte) in edits.iter().filter(|_| edit) {
                let i = at.index(bytes.len());
                bytes[i] = *byte;
            }
            Message { stream, bytes }
        },
    );
    prop_oneof![1 => arbitrary, 9 => emulated]
}

fn messages() -> impl Strategy<Value = Vec<Message>> {
    (20..60usize).prop_flat_map(|n| (0..n as u64).map(message).collect::<Vec<_>>())
}

/// The lake's rows: clean rows per table (their `ind`s, one per row) and quarantine rows as
/// `(stream, source, raw, reason)`, read with Python `deltalake`.
fn read_lake(lake: &std::path::Path) -> serde_json::Value {
    let script = r#"
import json, os, sys
sys.path.insert(0, sys.argv[1])
from spec_reference import open_table
def table(name):
    return open_table(os.path.join(sys.argv[2], name)).to_pyarrow_table()
out = {name: table(name).column("ind").to_pylist() for name in ("pin", "geo", "user")}
quarantine = table("quarantine")
out["quarantine"] = [list(r) for r in zip(*(quarantine.column(c).to_pylist()
                                          for c in ("stream", "source", "raw", "reason")))]
print(json.dumps(out), flush=True)
os._exit(0)
"#;
    python_json(script, lake)
}

/// Sends the messages, one `PUT /streams/../records` per stream (at once: they share a
/// commit), and returns where each landed: `<ShardId>@<SequenceNumber>`, the `source` its
/// quarantine row names.
fn send(port: u16, messages: &[Message]) -> Vec<String> {
    let put = |stream: Stream| {
        let of_stream: Vec<usize> = (0..messages.len())
            .filter(|&i| messages[i].stream == stream)
            .collect();
        if of_stream.is_empty() {
            return Vec::new();
        }
        let records: Vec<serde_json::Value> = of_stream
            .iter()
            .map(|&i| {
                let data = base64::engine::general_purpose::STANDARD.encode(&messages[i].bytes);
                serde_json::json!({"Data": data, "PartitionKey": "k"})
            })
            .collect();
        let body = serde_json::json!({ "Records": records }).to_string();
        let path = format!("/streams/streaming-fuzz-{stream}/records");
        let (status, answer) = http_send(port, "PUT", &path, &body).unwrap();
        assert_eq!(status, 200, "{answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        let landed = answer["Records"].as_array().unwrap().clone();
        assert_eq!(landed.len(), of_stream.len(), "{answer}");
        of_stream
            .into_iter()
            .zip(landed)
            .map(|(i, record)| {
                let origin = format!(
                    "{}@{}",
                    record["ShardId"].as_str().unwrap(),
                    record["SequenceNumber"].as_str().unwrap()
                );
                (i, origin)
            })
            .collect::<Vec<_>>()
    };
    let mut origins = vec![String::new(); messages.len()];
    std::thread::scope(|scope| {
        let puts: Vec<_> = Stream::ALL
            .map(|stream| scope.spawn(move || put(stream)))
            .into();
        for landed in puts {
            for (i, origin) in landed.join().unwrap() {
                origins[i] = origin;
            }
        }
    });
    origins
}

proptest! {
    // A real engine and a Python read per case: a few cases keep it to seconds.
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

    #[test]
    fn every_message_of_a_stream_with_arbitrary_bytes_is_one_clean_or_quarantine_row(
        messages in messages()
    ) {
        let lake = tempfile::tempdir().unwrap();
        let port = free_port();
        let engine = start(lake.path(), port, "100ms");
        let origins = send(port, &messages);
        stop(engine);
        let found = read_lake(lake.path());

        // What each message must be: a clean row of its stream (distinct rows once), or a
        // quarantine row naming it.
        let mut clean_rows: BTreeMap<Stream, BTreeSet<Row>> = BTreeMap::new();
        let mut bad: BTreeMap<String, &Message> = BTreeMap::new();
        for (message, origin) in messages.iter().zip(&origins) {
            match clean::clean(message.stream, &message.bytes) {
                Ok(row) => {
                    clean_rows.entry(message.stream).or_default().insert(row);
                }
                Err(_) => prop_assert!(bad.insert(origin.clone(), message).is_none()),
            }
        }
        for stream in Stream::ALL {
            let mut expected: Vec<i64> = clean_rows
                .get(&stream)
                .map(|rows| rows.iter().map(Row::ind).collect())
                .unwrap_or_default();
            expected.sort();
            let mut got: Vec<i64> = serde_json::from_value(found[stream.name()].clone()).unwrap();
            got.sort();
            prop_assert_eq!(got, expected, "{} rows", stream);
        }
        let quarantine = found["quarantine"].as_array().unwrap();
        prop_assert_eq!(quarantine.len(), bad.len(), "quarantine rows");
        for row in quarantine {
            let source = row[1].as_str().unwrap();
            let message = bad.remove(source);
            prop_assert!(message.is_some(), "a quarantine row for no bad message: {}", row);
            let message = message.unwrap();
            prop_assert_eq!(row[0].as_str(), Some(message.stream.name()));
            let raw = pinstream::table::QuarantineRow::raw_bytes(row[2].as_str().unwrap());
            prop_assert_eq!(&raw, &message.bytes, "raw of {}", source);
            prop_assert!(row[3].as_str().is_some_and(|reason| !reason.is_empty()));
        }
    }
}
