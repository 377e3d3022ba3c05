//! The output tables of SPEC §4 and the row that flows to each of them.

use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::clean::{GeoRow, Micros, PinRow, Row, UserRow};
use crate::stream::Stream;

/// A Delta table the engine appends to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Table {
    Pin,
    Geo,
    User,
    Quarantine,
}

impl Table {
    pub const ALL: [Table; 4] = [Table::Pin, Table::Geo, Table::User, Table::Quarantine];

    /// The table's directory under the lake root.
    pub fn name(self) -> &'static str {
        match self {
            Table::Pin => "pin",
            Table::Geo => "geo",
            Table::User => "user",
            Table::Quarantine => "quarantine",
        }
    }

    pub fn of_stream(stream: Stream) -> Table {
        match stream {
            Stream::Pin => Table::Pin,
            Stream::Geo => Table::Geo,
            Stream::User => Table::User,
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A row of table `quarantine`: one per bad message, with its bytes and the reason.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QuarantineRow {
    /// Null when the source could not tell the stream.
    pub stream: Option<Stream>,
    /// Where the message came from: `<partition>@<offset>` (`file:pin.jsonl@17`).
    pub source: String,
    pub received_at: Micros,
    /// The message bytes; invalid UTF-8 as base64 with a `base64:` prefix (see
    /// [`QuarantineRow::raw_text`]).
    pub raw: String,
    pub reason: String,
}

/// A message is identified by where it came from and what it held; `received_at` is not part
/// of its identity, so a message replayed after a restart is recognised as the same message
/// and lands once.
impl Hash for QuarantineRow {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.stream.hash(state);
        self.source.hash(state);
        self.raw.hash(state);
        self.reason.hash(state);
    }
}

impl QuarantineRow {
    /// The `raw` column text for message bytes: the message itself when it is UTF-8, otherwise
    /// `base64:` and the base64 of its bytes. A UTF-8 message that itself starts with
    /// `base64:` is encoded too: kept as it is, a reader could not tell it from an encoded one
    /// (`base64:AA7A` would read back as the bytes 00 0E C0). So a `raw` value that starts
    /// with `base64:` is always an encoding, and every value reads back to its exact bytes.
    pub fn raw_text(payload: &[u8]) -> String {
        match std::str::from_utf8(payload) {
            Ok(text) if !text.starts_with(RAW_BASE64_PREFIX) => text.to_owned(),
            _ => {
                use base64::Engine;
                format!(
                    "{RAW_BASE64_PREFIX}{}",
                    base64::engine::general_purpose::STANDARD.encode(payload)
                )
            }
        }
    }

    /// The message bytes a `raw` column value stands for (the inverse of
    /// [`QuarantineRow::raw_text`]).
    pub fn raw_bytes(raw: &str) -> Vec<u8> {
        use base64::Engine;
        raw.strip_prefix(RAW_BASE64_PREFIX)
            .and_then(|encoded| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
            })
            .unwrap_or_else(|| raw.as_bytes().to_vec())
    }
}

/// What starts a `raw` value that is the base64 of the message bytes.
pub const RAW_BASE64_PREFIX: &str = "base64:";

/// A row bound for one of the four tables.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TableRow {
    Clean(Row),
    /// Boxed (rare, and larger than any clean row): see [`Row::Pin`].
    Quarantine(Box<QuarantineRow>),
}

impl TableRow {
    pub fn table(&self) -> Table {
        match self {
            TableRow::Clean(row) => Table::of_stream(row.stream()),
            TableRow::Quarantine(_) => Table::Quarantine,
        }
    }

    /// The row's [`Identity`]: the 128-bit XXH3 of the bytes its `Hash` writes.
    ///
    /// The bytes are gathered in a buffer kept per thread and hashed in one call: fed field by
    /// field, the streaming hasher cost a call and a copy per field (a row writes ~25 pieces),
    /// more than the hashing itself. One-shot and streaming XXH3 give the same digest.
    pub fn identity(&self) -> Identity {
        thread_local! {
            static BYTES: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BYTES.with_borrow_mut(|bytes| {
            bytes.clear();
            self.hash(&mut ByteWriter(bytes));
            Identity(xxhash_rust::xxh3::xxh3_128(bytes))
        })
    }

    /// The row with its identity and arrival time, ready for deduplication.
    pub fn keyed(self, arrival: Micros) -> KeyedRow {
        KeyedRow {
            identity: self.identity(),
            row: self,
            arrival,
        }
    }
}

/// A [`Hasher`] that only collects the bytes written to it (for [`TableRow::identity`]).
struct ByteWriter<'a>(&'a mut Vec<u8>);

impl Hasher for ByteWriter<'_> {
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
    fn finish(&self) -> u64 {
        unreachable!("only the bytes are used")
    }
}

/// A 128-bit digest of a row's identity (every column for clean rows; see [`QuarantineRow`]'s
/// `Hash`). Two rows are duplicates exactly when their identities are equal, up to a 2^-128
/// collision chance. Digests live only in memory and are recomputed from the tables at start,
/// so they need not be stable across versions; they must be the same on every worker and
/// process of a job, which a pure function of the row's content is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identity(pub u128);

impl Identity {
    /// The low 64 bits: already uniform, so they route rows to workers and key hash tables
    /// as they are.
    pub fn route(self) -> u64 {
        self.0 as u64
    }
}

// Rows are moved between stages several times: the large variants are boxed to keep them
// small (a `KeyedRow` was 256 bytes with the pin row inline).
const _: () = assert!(std::mem::size_of::<KeyedRow>() <= 80);

/// A row on its way to deduplication: its identity (computed once, where the row is made, and
/// used to route it to the worker that owns it) and when it arrived.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyedRow {
    pub identity: Identity,
    pub row: TableRow,
    pub arrival: Micros,
}

/// Whether a row past deduplication is new or was already in the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Novelty {
    /// First seen by this job: written to its table.
    New,
    /// Held by the tables at start: not written again, but the analytics count it.
    Held,
}

/// A row past deduplication: every distinct row exactly once per job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DistinctRow {
    pub row: TableRow,
    pub arrival: Micros,
    pub novelty: Novelty,
}

impl From<PinRow> for TableRow {
    fn from(row: PinRow) -> Self {
        TableRow::Clean(Row::Pin(Box::new(row)))
    }
}
impl From<GeoRow> for TableRow {
    fn from(row: GeoRow) -> Self {
        TableRow::Clean(Row::Geo(row))
    }
}
impl From<UserRow> for TableRow {
    fn from(row: UserRow) -> Self {
        TableRow::Clean(Row::User(row))
    }
}
impl From<QuarantineRow> for TableRow {
    fn from(row: QuarantineRow) -> Self {
        TableRow::Quarantine(Box::new(row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quarantine(received_at: Micros, source: &str) -> QuarantineRow {
        QuarantineRow {
            stream: Some(Stream::Pin),
            source: source.into(),
            received_at,
            raw: "{}".into(),
            reason: "missing field `index`".into(),
        }
    }

    #[test]
    fn quarantine_identity_ignores_arrival_time() {
        let a = TableRow::from(quarantine(1, "file:pin.jsonl@3"));
        let b = TableRow::from(quarantine(2, "file:pin.jsonl@3"));
        let c = TableRow::from(quarantine(1, "file:pin.jsonl@4"));
        assert_eq!(a.identity(), b.identity());
        assert_ne!(a.identity(), c.identity());
    }

    #[test]
    fn identity_is_the_streaming_xxh3_of_the_hash_bytes() {
        let row = TableRow::from(quarantine(1, "file:pin.jsonl@3"));
        let mut streaming = xxhash_rust::xxh3::Xxh3Default::new();
        row.hash(&mut streaming);
        assert_eq!(row.identity(), Identity(streaming.digest128()));
    }

    #[test]
    fn raw_text_keeps_utf8_and_encodes_the_rest() {
        assert_eq!(QuarantineRow::raw_text(b"{\"a\":1}"), "{\"a\":1}");
        assert_eq!(QuarantineRow::raw_text(&[0xff, 0x00]), "base64:/wA=");
        for payload in [
            &b"{\"a\":1}"[..],
            b"",
            &[0xff, 0x00],
            b"base64",
            b" base64:/wA=",
        ] {
            let raw = QuarantineRow::raw_text(payload);
            assert_eq!(QuarantineRow::raw_bytes(&raw), payload, "{raw}");
        }
    }

    /// Found by the `clean_record` fuzz target (fuzz/corpus/clean_record/
    /// crash-298e4c008efd46676e93f33908366292d432e8e7): the UTF-8 message `base64:AA7A` was kept
    /// as it is, and read back as the bytes it seems to encode (00 0E C0), not as itself.
    #[test]
    fn fuzz_crash_298e4c00_a_text_message_starting_with_base64_reads_back_as_itself() {
        let raw = QuarantineRow::raw_text(b"base64:AA7A");
        assert_eq!(raw, "base64:YmFzZTY0OkFBN0E=");
        assert_eq!(QuarantineRow::raw_bytes(&raw), b"base64:AA7A");
    }
}
