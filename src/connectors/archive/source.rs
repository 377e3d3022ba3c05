//! The archive source: the objects under a bucket prefix, one JSON object per line, streamed
//! (never loaded whole), gunzipped when named `.gz`.
//!
//! **Partitions and positions.** A Kafka Connect object's name carries its topic, partition
//! and start offset ([`ObjectName`]), so its line `i` is offset `start + i` of that
//! topic-partition. All objects of a topic-partition make ONE partition, `kafka:<topic>/<p>`,
//! positioned by the next Kafka offset: the Kafka source's own `txn` appId and version. So a
//! job that reads the archive and then the live topic goes on at exactly the next offset
//! (nothing read twice, nothing skipped), and a job that read Kafka first skips the archived
//! offsets it already holds. A plain object (no offsets in its name) is a partition of its
//! own, `s3:<key>`, positioned by lines consumed, as the file source positions files.
//!
//! **Seek.** A topic-partition at stored position `P` (the next offset) skips the objects
//! whose end (the next object's start) is at most `P`, and in the object holding `P` the
//! lines before it.
//!
//! **Workers.** A partition is read by one worker (a stable hash of its id, the Kafka source's
//! [`owner`]), its objects in offset order, so every worker count reads the same lines and a
//! topic-partition has the same owner whether read from the archive or the broker.
//!
//! **Follow mode** (a run without `--until-done`): once everything listed is read, the prefix
//! is listed again every `interval` (one listing per process, shared by its workers: a
//! [`Listing`]); new objects of a topic-partition are read in offset order. An object that appears behind what a topic-partition has already read cannot be
//! read in order and is reported like a bad object. Partitions first seen while following
//! start at their beginning (their positions are looked up in the tables only at start).
//!
//! **Handover to the live topic.** In a job that also reads the topic live (a Kafka source,
//! see [`Handover`]), each topic-partition is read from the archive first: the Kafka source
//! waits, and once the archive has read every object of it (at open, and in follow mode as
//! listed until then) it is handed over at the position the archive ended at, and the
//! archive reads no further object of it (nor partitions first seen while following: the
//! live source reads those from their start). So no offset is read from both. Both sources
//! read a topic-partition on the same worker ([`owner`]), so this is local to a worker.
//!
//! **Bad objects never stop the job.** A name that looks like Connect's but does not parse,
//! or a gzip stream that cannot be read, is logged once with its key and counted in
//! `pinstream_source_bad_objects_total`; the lines read from it before the error are kept,
//! the rest of it is skipped. A line that is not JSON is a record like any other and goes to
//! quarantine (`source` = `kafka:<topic>/<p>@<offset>`). A failing request to the store (after
//! the client's retries) is not the object's fault: the object is opened again at the same
//! line on the next poll.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::ArchiveSettings;
use super::name::ObjectName;
use crate::connectors::kafka::{owner, partition_id};
use crate::connectors::{
    Handover, Offset, PartitionId, PollStatus, Position, Positions, RawRecord, Source, SourceError,
};
use crate::stats::Stats;
use crate::stream::Stream;

/// One object to read.
#[derive(Clone, Debug)]
struct ArchiveObject {
    path: ObjectPath,
    /// The offset of its first line (0 for a plain object).
    start: Offset,
    gzip: bool,
}

/// One partition: a topic-partition's objects in offset order, or one plain object.
#[derive(Debug)]
struct Part {
    id: PartitionId,
    stream: Stream,
    objects: Vec<ArchiveObject>,
    /// Objects before this index are read (or skipped).
    read: usize,
    /// The next offset to read; `None` until something is read or a position is stored.
    next: Option<Position>,
    /// A topic-partition a live source of the job reads after the archive.
    live: bool,
    /// Handed over to the live source: no further object of it is read.
    handed_over: bool,
}

impl Part {
    fn pending(&self) -> bool {
        self.read < self.objects.len()
    }
}

/// Worker `worker`'s share (of `peers`) of an archive.
pub struct ArchiveSource {
    store: Arc<dyn ObjectStore>,
    runtime: Arc<tokio::runtime::Runtime>,
    listing: Arc<Listing>,
    stats: Arc<Stats>,
    handover: Handover,
    url: String,
    worker: usize,
    peers: usize,
    follow: bool,
    interval: Duration,
    listed_at: Instant,
    parts: Vec<Part>,
    index: HashMap<PartitionId, usize>,
    /// Every key already considered (read, skipped or reported).
    seen: HashSet<String>,
    /// The first listing (at open) is done: partitions found later are followed ones.
    listed: bool,
    /// The part being read, its open object and the offset of that object's next line.
    current: usize,
    reader: Option<Box<dyn BufRead + Send>>,
    line_offset: Offset,
    line: Vec<u8>,
}

/// A request to the store failed (after the client's retries), as opposed to the object's
/// bytes being unreadable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct StoreFailure(String);

/// An object's body as a blocking reader: chunks are pulled from the store's stream as they
/// are needed, so an object of any size takes one chunk of memory.
struct Body<S, B> {
    runtime: tokio::runtime::Handle,
    chunks: S,
    chunk: Option<B>,
    used: usize,
}

impl<S, B> Read for Body<S, B>
where
    S: futures::Stream<Item = object_store::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(chunk) = &self.chunk {
                let rest = &chunk.as_ref()[self.used..];
                if !rest.is_empty() {
                    let n = rest.len().min(buffer.len());
                    buffer[..n].copy_from_slice(&rest[..n]);
                    self.used += n;
                    return Ok(n);
                }
            }
            match self.runtime.block_on(self.chunks.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => {
                    self.chunk = Some(chunk);
                    self.used = 0;
                }
                Some(Err(error)) => {
                    return Err(std::io::Error::other(StoreFailure(error.to_string())));
                }
            }
        }
    }
}

/// The prefix's listing, shared by a process's workers: a large archive is listed once per
/// interval, not once per worker.
pub struct Listing {
    store: Arc<dyn ObjectStore>,
    runtime: Arc<tokio::runtime::Runtime>,
    last: parking_lot::Mutex<Option<(Instant, Arc<Vec<String>>)>>,
}

impl Listing {
    pub fn new(store: Arc<dyn ObjectStore>, runtime: Arc<tokio::runtime::Runtime>) -> Listing {
        Listing {
            store,
            runtime,
            last: parking_lot::Mutex::new(None),
        }
    }

    /// Every key under the prefix (paged by the client), from a listing younger than
    /// `fresh` when there is one. Workers asking meanwhile wait for it and share it.
    fn keys(&self, fresh: Duration) -> Result<Arc<Vec<String>>, object_store::Error> {
        let mut last = self.last.lock();
        if let Some((at, keys)) = &*last
            && at.elapsed() < fresh
        {
            return Ok(keys.clone());
        }
        let keys: Vec<String> = self
            .runtime
            .block_on(self.store.list(None).try_collect::<Vec<_>>())?
            .into_iter()
            .map(|meta| meta.location.to_string())
            .collect();
        let keys = Arc::new(keys);
        *last = Some((Instant::now(), keys.clone()));
        Ok(keys)
    }
}

impl ArchiveSource {
    /// Lists the archive (with paging; a clear error when the store cannot be reached) and
    /// keeps this worker's partitions.
    pub(super) fn open(
        settings: &ArchiveSettings,
        listing: Arc<Listing>,
        stats: Arc<Stats>,
        handover: Handover,
        worker: usize,
        peers: usize,
    ) -> Result<ArchiveSource, SourceError> {
        let mut source = ArchiveSource {
            store: listing.store.clone(),
            runtime: listing.runtime.clone(),
            listing,
            stats,
            handover,
            url: settings.url.to_string(),
            worker,
            peers,
            follow: settings.follow,
            interval: settings.interval,
            listed_at: Instant::now(),
            parts: Vec::new(),
            index: HashMap::new(),
            seen: HashSet::new(),
            listed: false,
            current: 0,
            reader: None,
            line_offset: Offset::new(0),
            line: Vec::new(),
        };
        source.list().map_err(SourceError::Unavailable)?;
        source.listed = true;
        Ok(source)
    }

    /// Lists the prefix and adds the objects not seen before to this worker's partitions.
    fn list(&mut self) -> Result<(), String> {
        let mut found: Vec<String> = self
            .listing
            .keys(self.interval / 2)
            .map_err(|e| format!("s3 archive {}: listing: {e}", self.url))?
            .iter()
            .filter(|key| !self.seen.contains(*key))
            .cloned()
            .collect();
        self.listed_at = Instant::now();
        found.sort();
        // Objects in offset order, whatever their names' padding.
        let mut named: Vec<(String, ObjectName)> = found
            .into_iter()
            .map(|key| {
                let name = ObjectName::parse(&key);
                (key, name)
            })
            .collect();
        named.sort_by_key(|(key, name)| match name {
            ObjectName::Connect { start, .. } => (start.value(), key.clone()),
            _ => (-1, key.clone()),
        });
        for (key, name) in named {
            self.seen.insert(key.clone());
            let (id, stream, start, gzip, live) = match name {
                ObjectName::Connect {
                    topic,
                    partition,
                    start,
                    stream,
                    gzip,
                } => {
                    let live = self.handover.is_live(&topic);
                    (partition_id(&topic, partition), stream, start, gzip, live)
                }
                ObjectName::Plain { stream, gzip } => (
                    format!("s3:{key}").into(),
                    stream,
                    Offset::new(0),
                    gzip,
                    false,
                ),
                ObjectName::Other => {
                    tracing::debug!(object = %key, "no pin/geo/user token in the name; skipped");
                    continue;
                }
                ObjectName::Bad(reason) => {
                    if owner(&key, self.peers) == self.worker {
                        self.bad_object(&reason);
                    }
                    continue;
                }
            };
            if owner(&id, self.peers) != self.worker {
                continue;
            }
            let object = ArchiveObject {
                path: ObjectPath::from(key.as_str()),
                start,
                gzip,
            };
            match self.index.get(&id) {
                Some(&i) if self.parts[i].handed_over => {
                    tracing::debug!(object = %key, "read live from here on; not read from the archive");
                }
                None if live && self.listed => {
                    tracing::debug!(object = %key, "a partition read live from its start; not read from the archive");
                }
                Some(&i) => {
                    let part = &mut self.parts[i];
                    let at = part.objects.partition_point(|o| o.start <= start);
                    if at < part.read {
                        let reason = format!(
                            "{key}: appeared after later offsets of {} were read; not read",
                            part.id
                        );
                        self.bad_object(&reason);
                        continue;
                    }
                    part.objects.insert(at, object);
                }
                None => {
                    self.index.insert(id.clone(), self.parts.len());
                    self.parts.push(Part {
                        id,
                        stream,
                        objects: vec![object],
                        read: 0,
                        next: None,
                        live,
                        handed_over: false,
                    });
                }
            }
        }
        Ok(())
    }

    fn bad_object(&self, reason: &str) {
        tracing::warn!("s3 archive {}: bad object skipped: {reason}", self.url);
        Stats::add(&self.stats.bad_objects, 1);
    }

    /// Opens the next object of the first part (from `current` on) that has one.
    fn open_next(&mut self) -> Result<bool, StoreFailure> {
        let count = self.parts.len();
        let Some(i) = (0..count)
            .map(|k| (self.current + k) % count)
            .find(|&i| self.parts[i].pending())
        else {
            return Ok(false);
        };
        self.current = i;
        let part = &self.parts[i];
        let object = part.objects[part.read].clone();
        let store = self.store.clone();
        let got = self
            .runtime
            .block_on(store.get(&object.path))
            .map_err(|e| StoreFailure(format!("{}: {e}", object.path)))?;
        let body = Body {
            runtime: self.runtime.handle().clone(),
            chunks: got.into_stream(),
            chunk: None,
            used: 0,
        };
        self.reader = Some(if object.gzip {
            Box::new(BufReader::with_capacity(
                1 << 20,
                flate2::read::MultiGzDecoder::new(body),
            ))
        } else {
            Box::new(BufReader::with_capacity(1 << 20, body))
        });
        self.line_offset = object.start;
        Ok(true)
    }

    /// The object being read is done (read to its end, or skipped).
    fn close_object(&mut self) {
        self.reader = None;
        self.parts[self.current].read += 1;
    }

    /// Hands the live topic-partitions read to their end over to the live source, at the
    /// position after the last offset read (or the stored one, or the first object's start).
    fn hand_over(&mut self) {
        for part in &mut self.parts {
            if !part.live || part.handed_over || part.pending() {
                continue;
            }
            let at = part.next.unwrap_or_else(|| {
                Position::new(part.objects.first().map_or(0, |o| o.start.value()))
            });
            tracing::debug!(partition = %part.id, %at, "archive read; handed over to the live source");
            self.handover.drained(&part.id, at);
            part.handed_over = true;
        }
    }
}

impl Source for ArchiveSource {
    fn partitions(&self) -> Vec<PartitionId> {
        self.parts.iter().map(|p| p.id.clone()).collect()
    }

    fn seek(&mut self, from: &Positions) -> Result<(), SourceError> {
        for part in &mut self.parts {
            part.next = None;
            part.read = 0;
            if part.live {
                // The live source waits for it (again, after a dataflow restart).
                self.handover.backfill(&part.id);
                part.handed_over = false;
            }
            if let Some(&stored) = from.get(&part.id) {
                if stored < Position::START {
                    return Err(SourceError::NegativePosition {
                        partition: part.id.clone(),
                        position: stored,
                    });
                }
                part.next = Some(stored);
                // The object holding offset `stored` is the last one starting at or before
                // it; those before it end at or before `stored`.
                let holding = part
                    .objects
                    .partition_point(|o| o.start.value() <= stored.value());
                part.read = holding.saturating_sub(1);
            }
        }
        self.current = 0;
        self.reader = None;
        Ok(())
    }

    fn poll(&mut self, max: usize, out: &mut Vec<RawRecord>) -> Result<PollStatus, SourceError> {
        let arrival = crate::now_micros();
        let mut taken = 0;
        while taken < max {
            if self.reader.is_none() {
                match self.open_next() {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(failure) => {
                        tracing::warn!("s3 archive {}: {failure}; retrying", self.url);
                        self.stats.count_retry("s3");
                        return Ok(PollStatus::Idle);
                    }
                }
            }
            let reader = self.reader.as_mut().expect("opened above");
            self.line.clear();
            let read = match reader.read_until(b'\n', &mut self.line) {
                Ok(read) => read,
                Err(error) => {
                    let part = &self.parts[self.current];
                    let key = part.objects[part.read].path.to_string();
                    if error.get_ref().is_some_and(|e| e.is::<StoreFailure>()) {
                        // Opened again at the same line on the next poll.
                        tracing::warn!("s3 archive {}: reading {key}: {error}; retrying", self.url);
                        self.stats.count_retry("s3");
                        self.reader = None;
                        return Ok(if taken > 0 {
                            PollStatus::Ready
                        } else {
                            PollStatus::Idle
                        });
                    }
                    self.bad_object(&format!(
                        "{key}: unreadable after offset {}: {error}",
                        self.line_offset
                    ));
                    self.close_object();
                    continue;
                }
            };
            if read == 0 {
                self.close_object();
                continue;
            }
            let offset = self.line_offset;
            self.line_offset = offset.next().next_offset();
            let part = &mut self.parts[self.current];
            if part.next.is_some_and(|next| next.covers(offset)) {
                continue; // before the stored position
            }
            part.next = Some(offset.next());
            if let Some(record) =
                RawRecord::from_line(&self.line, part.stream, &part.id, offset, arrival)
            {
                out.push(record);
                taken += 1;
            }
        }
        self.hand_over();
        if taken > 0 {
            return Ok(PollStatus::Ready);
        }
        if !self.follow {
            return Ok(PollStatus::Exhausted);
        }
        if self.listed_at.elapsed() >= self.interval
            && let Err(error) = self.list()
        {
            tracing::warn!("{error}; listing again in {:?}", self.interval);
        }
        Ok(PollStatus::Idle)
    }

    fn positions(&self) -> Positions {
        self.parts
            .iter()
            .filter_map(|p| Some((p.id.clone(), p.next?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::archive::name::connect_key;

    fn put(
        store: &Arc<dyn ObjectStore>,
        runtime: &tokio::runtime::Runtime,
        key: &str,
        body: &[u8],
    ) {
        let payload = object_store::PutPayload::from(body.to_vec());
        runtime
            .block_on(store.put(&ObjectPath::from(key), payload))
            .unwrap();
    }

    fn gzip(body: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(body).unwrap();
        encoder.finish().unwrap()
    }

    struct Archive {
        store: Arc<dyn ObjectStore>,
        runtime: Arc<tokio::runtime::Runtime>,
        stats: Arc<Stats>,
        handover: Handover,
    }

    impl Archive {
        fn new() -> Archive {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            Archive {
                store: Arc::new(object_store::memory::InMemory::new()),
                runtime: Arc::new(runtime),
                stats: Arc::default(),
                handover: Handover::default(),
            }
        }

        fn put(&self, key: &str, body: &[u8]) {
            put(&self.store, &self.runtime, key, body);
        }

        fn open(&self, follow: bool, worker: usize, peers: usize) -> ArchiveSource {
            let settings = ArchiveSettings {
                url: "s3://bucket/".parse().unwrap(),
                interval: Duration::from_millis(1),
                follow,
            };
            ArchiveSource::open(
                &settings,
                Arc::new(Listing::new(self.store.clone(), self.runtime.clone())),
                self.stats.clone(),
                self.handover.clone(),
                worker,
                peers,
            )
            .unwrap()
        }
    }

    fn drain(source: &mut ArchiveSource) -> Vec<(String, i64, String)> {
        let mut out = Vec::new();
        while source.poll(2, &mut out).unwrap() == PollStatus::Ready {}
        out.into_iter()
            .map(|r| {
                (
                    r.partition.to_string(),
                    r.offset.value(),
                    String::from_utf8(r.payload).unwrap(),
                )
            })
            .collect()
    }

    fn record(id: &str, offset: i64, payload: &str) -> (String, i64, String) {
        (id.to_owned(), offset, payload.to_owned())
    }

    #[test]
    fn connect_lines_are_kafka_offsets_and_resume_inside_an_object() {
        let archive = Archive::new();
        // Written out of order; the second object is gzip-compressed.
        archive.put(
            &format!("{}.gz", connect_key("a.pin", 0, Offset::new(3))),
            &gzip(b"d\ne\n"),
        );
        archive.put(&connect_key("a.pin", 0, Offset::new(0)), b"a\nb\nc\n");
        archive.put(&connect_key("a.pin", 1, Offset::new(10)), b"x\n");
        archive.put("other/user.jsonl", b"u\n\nv\n");
        archive.put("_SUCCESS", b"");
        let mut source = archive.open(false, 0, 1);
        let mut all = drain(&mut source);
        all.sort(); // partitions in any order, each in offset order
        assert_eq!(
            all,
            vec![
                record("kafka:a.pin/0", 0, "a"),
                record("kafka:a.pin/0", 1, "b"),
                record("kafka:a.pin/0", 2, "c"),
                record("kafka:a.pin/0", 3, "d"),
                record("kafka:a.pin/0", 4, "e"),
                record("kafka:a.pin/1", 10, "x"),
                record("s3:other/user.jsonl", 0, "u"),
                record("s3:other/user.jsonl", 2, "v"),
            ]
        );
        let positions = source.positions();
        assert_eq!(positions["kafka:a.pin/0"], Position::new(5));
        assert_eq!(positions["kafka:a.pin/1"], Position::new(11));
        assert_eq!(positions["s3:other/user.jsonl"], Position::new(3));

        // Stored positions: inside the gzip object, past the end, and a plain object.
        let mut resumed = archive.open(false, 0, 1);
        let from: Positions = [
            ("kafka:a.pin/0".into(), Position::new(4)),
            ("kafka:a.pin/1".into(), Position::new(11)),
            ("s3:other/user.jsonl".into(), Position::new(1)),
        ]
        .into();
        resumed.seek(&from).unwrap();
        let mut rest = drain(&mut resumed);
        rest.sort();
        assert_eq!(
            rest,
            vec![
                record("kafka:a.pin/0", 4, "e"),
                record("s3:other/user.jsonl", 2, "v")
            ]
        );
        assert_eq!(
            resumed.poll(10, &mut Vec::new()).unwrap(),
            PollStatus::Exhausted
        );
        assert_eq!(Stats::get(&archive.stats.bad_objects), 0);
    }

    #[test]
    fn a_live_topic_partition_is_handed_over_where_the_archive_ends_and_not_followed() {
        use crate::connectors::Backfill;
        let archive = Archive::new();
        archive.handover.live("a.pin");
        archive.put(&connect_key("a.pin", 0, Offset::new(0)), b"a\nb\n");
        archive.put(&connect_key("a.pin", 0, Offset::new(2)), b"c\n");
        archive.put(&connect_key("b.pin", 0, Offset::new(0)), b"x\n");
        let mut source = archive.open(true, 0, 1);
        source.seek(&Positions::new()).unwrap();
        let live: PartitionId = "kafka:a.pin/0".into();
        assert_eq!(archive.handover.state(&live), Backfill::Reading);
        let mut out = Vec::new();
        source.poll(2, &mut out).unwrap();
        // Two of its three offsets read (its first object): the live source still waits.
        let offsets = |records: &[RawRecord]| -> Vec<i64> {
            records
                .iter()
                .filter(|r| r.partition == live)
                .map(|r| r.offset.value())
                .collect()
        };
        assert_eq!(offsets(&out), [0, 1]);
        assert_eq!(archive.handover.state(&live), Backfill::Reading);
        let mut rest = Vec::new();
        while source.poll(10, &mut rest).unwrap() == PollStatus::Ready {}
        assert_eq!(offsets(&rest), [2]);
        assert_eq!(
            archive.handover.state(&live),
            Backfill::Drained(Position::new(3))
        );
        // A topic no live source reads is not handed over.
        assert_eq!(
            archive.handover.state(&"kafka:b.pin/0".into()),
            Backfill::None
        );
        // Following: the live source reads on from offset 3 (and a partition first seen now
        // from its start), so the archive reads neither; the other topic is followed.
        archive.put(&connect_key("a.pin", 0, Offset::new(3)), b"d\n");
        archive.put(&connect_key("a.pin", 1, Offset::new(0)), b"y\n");
        archive.put(&connect_key("b.pin", 0, Offset::new(1)), b"z\n");
        std::thread::sleep(Duration::from_millis(5));
        let mut later = Vec::new();
        for _ in 0..3 {
            source.poll(10, &mut later).unwrap();
        }
        let later: Vec<_> = later
            .iter()
            .map(|r| (r.partition.to_string(), r.offset.value()))
            .collect();
        assert_eq!(later, vec![("kafka:b.pin/0".to_owned(), 1)]);
    }

    #[test]
    fn a_topic_partition_has_one_worker_and_the_kafka_sources_owner() {
        let archive = Archive::new();
        for p in 0..4 {
            for start in [0, 2] {
                archive.put(&connect_key("a.geo", p, Offset::new(start)), b"1\n2\n");
            }
        }
        let mut seen = Vec::new();
        for worker in 0..3 {
            let mut source = archive.open(false, worker, 3);
            for id in source.partitions() {
                assert_eq!(owner(&id, 3), worker);
            }
            seen.extend(drain(&mut source));
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 16);
    }

    #[test]
    fn bad_objects_are_counted_and_skipped_without_stopping() {
        let archive = Archive::new();
        let mut broken = gzip(b"a\nb\n");
        broken.truncate(broken.len() - 6); // no trailer
        archive.put(
            &format!("{}.gz", connect_key("a.pin", 0, Offset::new(0))),
            &broken,
        );
        archive.put(
            &format!("{}.gz", connect_key("a.pin", 0, Offset::new(2))),
            b"not gzip",
        );
        archive.put(&connect_key("a.pin", 0, Offset::new(4)), b"e\nnot json\n");
        archive.put("topics/a.pin/partition=0/a.pin+0+x.json", b"lost\n");
        let mut source = archive.open(false, 0, 1);
        let read = drain(&mut source);
        // What the broken stream yields before its error is kept; the rest of the archive
        // is read.
        assert!(
            read.ends_with(&[
                record("kafka:a.pin/0", 4, "e"),
                record("kafka:a.pin/0", 5, "not json")
            ]),
            "{read:?}"
        );
        assert_eq!(source.positions()["kafka:a.pin/0"], Position::new(6));
        assert_eq!(Stats::get(&archive.stats.bad_objects), 3);
    }

    #[test]
    fn following_reads_objects_added_later_in_offset_order() {
        let archive = Archive::new();
        archive.put(&connect_key("a.user", 0, Offset::new(0)), b"a\n");
        let mut source = archive.open(true, 0, 1);
        source.seek(&Positions::new()).unwrap();
        assert_eq!(drain(&mut source), vec![record("kafka:a.user/0", 0, "a")]);
        archive.put(&connect_key("a.user", 0, Offset::new(1)), b"b\n");
        archive.put(&connect_key("a.user", 1, Offset::new(0)), b"c\n");
        std::thread::sleep(Duration::from_millis(5));
        let mut out = Vec::new();
        assert_eq!(source.poll(10, &mut out).unwrap(), PollStatus::Idle); // lists
        assert_eq!(
            drain(&mut source),
            vec![
                record("kafka:a.user/0", 1, "b"),
                record("kafka:a.user/1", 0, "c")
            ]
        );
        // An object behind what was read cannot be read in order: reported.
        archive.put(
            &connect_key("a.user", 0, Offset::new(0)).replace(".json", ".json.gz"),
            &gzip(b"z\n"),
        );
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(source.poll(10, &mut out).unwrap(), PollStatus::Idle);
        assert!(drain(&mut source).is_empty());
        assert_eq!(Stats::get(&archive.stats.bad_objects), 1);
    }
}
