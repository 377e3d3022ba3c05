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
//! [`Listing`]) and the objects the connector added are read, in offset order per
//! topic-partition. The first listing is a full one; after it only what changed is listed
//! (see [`Listing`]): a few requests per partition folder, not the whole archive.
//!
//! - A topic-partition first seen while following (its first object appears after the
//!   start) is held until the driver has looked up its position in the tables
//!   ([`Source::take_new_partitions`]): an earlier run may have read part of it. (One of a
//!   topic read live is left to the live source instead: see the handover below.)
//! - **Gaps.** Objects normally appear in offset order (the sink uploads a partition's
//!   objects one after the other), so when the next object of a topic-partition starts
//!   after its next offset, the object holding that offset is most likely still being
//!   uploaded or copied: the partition waits for it, listing every `interval`, up to
//!   `gap_wait`; then one warning names the missing offsets, `bad_objects` counts them, and
//!   it reads on. With `--until-done` nothing more will be listed, so it reads on at once
//!   (with the same warning). A partition listed at the start with no stored position
//!   starts at its first object, whatever its offset (the topic's retention may have
//!   dropped the earlier ones before the sink began); one first listed while following
//!   expects offset 0 first.
//! - An object that appears behind what a topic-partition has already read cannot be read
//!   in order. Named before the last object read, it is not even listed again (see
//!   [`Listing`]): the offsets it holds were read, or reported missing when the partition
//!   read on, or lie before the first object of a partition listed at the start without a
//!   stored position (where it begins, see above). Found in the same listing as later ones,
//!   it is skipped quietly when the stored position covers all of it, and otherwise
//!   reported like a bad object.
//!
//! **Handover to the live topic.** In a job that also reads the topic live (a Kafka source,
//! see [`Handover`]), each topic-partition listed at the start is read from the archive
//! first: [`Source::seek`] registers it (again after a dataflow restart) and the Kafka
//! source waits; once the archive has read every object of it listed until then (a gap
//! waited out first, in follow mode) it is handed over at the position the archive ended
//! at, and the archive reads no further object of it. A topic-partition of a live topic
//! first listed while following is not the archive's at all: it is not held for a lookup
//! in the tables (it is not among [`Source::take_new_partitions`]), and the live source,
//! which no backfill holds back for it, reads it from its stored position or its start.
//! So no offset is read from both. Both sources read a topic-partition on the same worker
//! ([`owner`]), so this is local to a worker.
//!
//! **Bad objects never stop the job.** A name that looks like Connect's but does not parse,
//! or a gzip stream that cannot be read, is logged once with its key and counted in
//! `pinstream_source_bad_objects_total`; the lines read from it before the error are kept,
//! the rest of it is skipped. A line that is not JSON is a record like any other and goes to
//! quarantine (`source` = `kafka:<topic>/<p>@<offset>`). A failing request to the store (after
//! the client's retries) is not the object's fault: the object is opened again at the same
//! line on the next poll.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::ArchiveSettings;
use super::name::ObjectName;
use crate::connectors::kafka::{owner, partition_id};
use crate::connectors::lines::Lines;
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
    /// Where it stands is known: found at open (positioned by [`Source::seek`]) or looked up
    /// since ([`Source::seek_new`]). Until then nothing of it is read.
    resumed: bool,
    /// Handed to the driver by [`Source::take_new_partitions`].
    asked: bool,
    /// The position the tables held when it was resumed.
    stored: Option<Position>,
    /// The offset the next object starts at when nothing is missing: the stored position,
    /// then the end of the last object read; `None` when unknown (nothing read and nothing
    /// stored, or the last object was unreadable and is reported already).
    expected: Option<Offset>,
    /// Since when its next object has been waiting for the offsets before it.
    gap_since: Option<Instant>,
    /// A topic-partition a live source of the job reads after the archive.
    live: bool,
    /// Handed over to the live source: no further object of it is read.
    handed_over: bool,
}

impl Part {
    fn new(id: PartitionId, stream: Stream, live: bool) -> Part {
        Part {
            id,
            stream,
            objects: Vec::new(),
            read: 0,
            next: None,
            resumed: false,
            asked: false,
            stored: None,
            expected: None,
            gap_since: None,
            live,
            handed_over: false,
        }
    }

    fn pending(&self) -> bool {
        self.resumed && self.read < self.objects.len()
    }

    /// Positions it at `stored` (the tables' position; `None`: its beginning).
    fn resume(&mut self, stored: Option<Position>) -> Result<(), SourceError> {
        self.next = None;
        self.read = 0;
        self.resumed = true;
        self.asked = true;
        self.stored = stored;
        self.expected = None;
        self.gap_since = None;
        if let Some(stored) = stored {
            if stored < Position::START {
                return Err(SourceError::NegativePosition {
                    partition: self.id.clone(),
                    position: stored,
                });
            }
            self.next = Some(stored);
            self.expected = Some(stored.next_offset());
            // The object holding offset `stored` is the last one starting at or before it;
            // those before it end at or before `stored`.
            let holding = self
                .objects
                .partition_point(|o| o.start.value() <= stored.value());
            self.read = holding.saturating_sub(1);
        }
        Ok(())
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
    gap_wait: Duration,
    listed_at: Instant,
    parts: Vec<Part>,
    index: HashMap<PartitionId, usize>,
    /// How many of the listing's keys ([`Listing::found_since`]) this worker has taken in.
    taken: usize,
    /// The first listing (at open) is taken in: partitions found later are followed ones.
    listed: bool,
    /// The part being read, its open object and the offset of that object's next line.
    current: usize,
    reader: Option<Lines<Box<dyn Read + Send>>>,
    line_offset: Offset,
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

/// The prefix's listing, shared by a process's workers: listed once per interval, not once
/// per worker. Every key found goes once into an append-only log ([`Listing::found_since`])
/// from which each worker takes its share.
///
/// **Incremental.** The first listing lists every key (paged). Later ones list only what can
/// have changed, so a followed archive of millions of objects costs a few requests per
/// interval, not thousands:
/// - the folders above the partition folders (the prefix, `topics/`, `topics/<topic>/`) with
///   the delimiter `/`: new topics and partitions appear there as folders;
/// - each partition folder (`…/partition=<p>/`) after a start key (S3 `StartAfter`): the
///   last object a worker opened there. The Connect sink pads start offsets with zeros (10
///   digits by default), so names sort as offsets do and every later object comes after it.
///   Past the padding (offsets of more digits than the last name: at 10^10 by default, or
///   at once in an archive written without padding) a longer name sorts *before* shorter
///   ones (`…+10000000000.json` < `…+9999999999.json`), so while the last name has no
///   leading zero, the first page after `…+1000000000.` (the first longer names) is read
///   too. A folder nobody here reads (another topic, another process's partition) is
///   listed after its greatest key, or not at all when another process of a cluster reads
///   it.
///
/// An object whose name sorts before the start key of its folder is not seen: one written
/// behind offsets already read, which could not be read in order anyway.
pub struct Listing {
    store: Arc<dyn ObjectStore>,
    runtime: Arc<tokio::runtime::Runtime>,
    url: String,
    /// The prefix is itself a partition folder (`s3://bucket/topics/t/partition=3/`).
    root_is_partition: bool,
    state: parking_lot::Mutex<ListingState>,
    /// The last key opened by a worker of this process in each partition folder. Apart from
    /// `state`, so that a worker opening an object never waits for a listing.
    opened: parking_lot::Mutex<HashMap<String, String>>,
}

#[derive(Default)]
struct ListingState {
    listed_at: Option<Instant>,
    /// Every key found, in the order found.
    found: Vec<Arc<str>>,
    known: HashSet<Arc<str>>,
    /// Every partition folder found (`""` for the prefix itself), with what it is listed after.
    folders: BTreeMap<String, Folder>,
    /// The workers of this process reading the archive, and of how many in the job.
    workers: BTreeSet<usize>,
    peers: usize,
    counts: ListCounts,
}

/// What the listings sent and got back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListCounts {
    /// Listings made (the first, full one included).
    pub listings: u64,
    /// LIST requests (pages of up to 1,000 keys).
    pub requests: u64,
    /// Keys (and folders) the requests returned.
    pub keys: u64,
}

/// One partition folder.
#[derive(Default)]
struct Folder {
    /// The topic-partition its Connect objects belong to, once one is found.
    partition: Option<PartitionId>,
    /// The greatest key found there.
    greatest: Option<String>,
}

/// S3 answers a LIST with up to 1,000 keys.
const LIST_PAGE: u64 = 1_000;

/// Requests a listing that returned `keys` took.
fn pages(keys: usize) -> u64 {
    (keys as u64).div_ceil(LIST_PAGE).max(1)
}

/// The folder of a key (`""` at the prefix).
fn folder_of(key: &str) -> &str {
    key.rsplit_once('/').map_or("", |(folder, _)| folder)
}

/// Whether a folder is a Connect partition folder (`…/partition=<p>`).
fn is_partition_folder(folder: &str) -> bool {
    let name = folder.rsplit('/').next().unwrap_or_default();
    name.strip_prefix("partition=")
        .is_some_and(|p| p.parse::<i32>().is_ok())
}

/// Where names of more digits than `key`'s start offset begin, when they sort before it: the
/// start key for the first of them (`<topic>+<p>+1000000000.` for a 10-digit offset without
/// a leading zero); `None` when the offset has a leading zero (longer names sort after it).
fn longer_offsets_after(key: &str) -> Option<String> {
    let (head, tail) = key.rsplit_once('+')?;
    let digits = tail.split('.').next()?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!("{head}+1{}.", "0".repeat(digits.len() - 1)))
}

impl Listing {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        runtime: Arc<tokio::runtime::Runtime>,
        url: &url::Url,
    ) -> Listing {
        Listing {
            store,
            runtime,
            url: url.to_string(),
            root_is_partition: is_partition_folder(url.path().trim_end_matches('/')),
            state: parking_lot::Mutex::default(),
            opened: parking_lot::Mutex::default(),
        }
    }

    /// What the listings cost so far.
    pub fn counts(&self) -> ListCounts {
        self.state.lock().counts
    }

    /// Worker `worker` (of `peers`) reads the archive in this process.
    fn join(&self, worker: usize, peers: usize) {
        let mut state = self.state.lock();
        state.workers.insert(worker);
        state.peers = peers;
    }

    /// Keys found from the `taken`-th on. Without `wait`, none while another worker is
    /// listing (they come with a later call: an idle worker's driver keeps its batches
    /// going meanwhile); with it, all of them (a worker opening must see the first listing).
    fn found_since(&self, taken: usize, wait: bool) -> Vec<Arc<str>> {
        let state = match self.state.try_lock() {
            Some(state) => state,
            None if wait => self.state.lock(),
            None => return Vec::new(),
        };
        state.found[taken..].to_vec()
    }

    /// A worker opened `key`: its folder is listed after it from now on.
    fn opened(&self, key: &str) {
        let folder = folder_of(key);
        if is_partition_folder(folder) || (self.root_is_partition && folder.is_empty()) {
            self.opened.lock().insert(folder.to_owned(), key.to_owned());
        }
    }

    /// Lists what changed, unless a listing younger than `fresh` exists. With `wait`,
    /// workers asking meanwhile wait for it and share it; without, they go on at once
    /// (another worker is listing).
    fn refresh(&self, fresh: Duration, wait: bool) -> Result<(), object_store::Error> {
        let mut state = match self.state.try_lock() {
            Some(state) => state,
            None if wait => self.state.lock(),
            None => return Ok(()),
        };
        if state.listed_at.is_some_and(|at| at.elapsed() < fresh) {
            return Ok(());
        }
        let before = state.counts;
        if state.listed_at.is_none() {
            let keys = self.collect(self.store.list(None))?;
            state.counts.requests += pages(keys.len());
            state.counts.keys += keys.len() as u64;
            keys.into_iter().for_each(|key| self.add(&mut state, key));
        } else {
            self.list_changes(&mut state)?;
        }
        state.listed_at = Some(Instant::now());
        state.counts.listings += 1;
        tracing::debug!(
            requests = state.counts.requests - before.requests,
            keys = state.counts.keys - before.keys,
            found = state.found.len(),
            "s3 archive {} listed",
            self.url
        );
        Ok(())
    }

    fn collect(
        &self,
        listing: futures::stream::BoxStream<
            'static,
            object_store::Result<object_store::ObjectMeta>,
        >,
    ) -> Result<Vec<String>, object_store::Error> {
        Ok(self
            .runtime
            .block_on(listing.try_collect::<Vec<_>>())?
            .into_iter()
            .map(|meta| meta.location.to_string())
            .collect())
    }

    /// The folders above the partition folders with the delimiter, then each partition
    /// folder after its start key.
    fn list_changes(&self, state: &mut ListingState) -> Result<(), object_store::Error> {
        let mut folders: Vec<Option<ObjectPath>> = if self.root_is_partition {
            state.folders.entry(String::new()).or_default();
            Vec::new()
        } else {
            vec![None]
        };
        while let Some(folder) = folders.pop() {
            let listed = self
                .runtime
                .block_on(self.store.list_with_delimiter(folder.as_ref()))?;
            let returned = listed.objects.len() + listed.common_prefixes.len();
            state.counts.requests += pages(returned);
            state.counts.keys += returned as u64;
            for object in listed.objects {
                self.add(state, object.location.to_string());
            }
            for prefix in listed.common_prefixes {
                let name = prefix.to_string();
                if is_partition_folder(&name) {
                    state.folders.entry(name).or_default();
                } else {
                    folders.push(Some(prefix));
                }
            }
        }
        let opened = self.opened.lock().clone();
        let folders: Vec<(String, Option<String>)> = state
            .folders
            .iter()
            .filter_map(|(name, folder)| {
                let after = match &folder.partition {
                    Some(id) if state.peers > 0 => {
                        if !state.workers.contains(&owner(id, state.peers)) {
                            return None; // read by another process of the cluster
                        }
                        opened.get(name).cloned()
                    }
                    _ => folder.greatest.clone(),
                };
                Some((name.clone(), after))
            })
            .collect();
        for (name, after) in folders {
            let prefix = (!name.is_empty()).then(|| ObjectPath::from(name.as_str()));
            let keys = match &after {
                Some(after) => self.collect(
                    self.store
                        .list_with_offset(prefix.as_ref(), &ObjectPath::from(after.as_str())),
                )?,
                None => self.collect(self.store.list(prefix.as_ref()))?,
            };
            state.counts.requests += pages(keys.len());
            state.counts.keys += keys.len() as u64;
            keys.into_iter().for_each(|key| self.add(state, key));
            if let Some(longer) = after.as_deref().and_then(longer_offsets_after) {
                // The first page only: the first longer names, enough to go on from.
                let keys: Vec<String> = self
                    .runtime
                    .block_on(
                        self.store
                            .list_with_offset(prefix.as_ref(), &ObjectPath::from(longer.as_str()))
                            .take(LIST_PAGE as usize)
                            .try_collect::<Vec<_>>(),
                    )?
                    .into_iter()
                    .map(|meta| meta.location.to_string())
                    .collect();
                state.counts.requests += 1;
                state.counts.keys += keys.len() as u64;
                keys.into_iter().for_each(|key| self.add(state, key));
            }
        }
        Ok(())
    }

    /// Records a key: into the log when new, and into its partition folder.
    fn add(&self, state: &mut ListingState, key: String) {
        let folder = folder_of(&key);
        if is_partition_folder(folder) || (self.root_is_partition && folder.is_empty()) {
            let entry = state.folders.entry(folder.to_owned()).or_default();
            if entry.partition.is_none()
                && let ObjectName::Connect {
                    topic, partition, ..
                } = ObjectName::parse(&key)
            {
                entry.partition = Some(partition_id(&topic, partition));
            }
            if entry
                .greatest
                .as_ref()
                .is_none_or(|greatest| *greatest < key)
            {
                entry.greatest = Some(key.clone());
            }
        }
        let key: Arc<str> = key.into();
        if state.known.insert(key.clone()) {
            state.found.push(key);
        }
    }
}

impl ArchiveSource {
    /// Lists the archive (with paging; a clear error when the store cannot be reached) and
    /// keeps this worker's partitions, positioned at their beginning until
    /// [`Source::seek`].
    pub(super) fn open(
        settings: &ArchiveSettings,
        listing: Arc<Listing>,
        stats: Arc<Stats>,
        handover: Handover,
        worker: usize,
        peers: usize,
    ) -> Result<ArchiveSource, SourceError> {
        listing.join(worker, peers);
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
            gap_wait: settings.gap_wait,
            listed_at: Instant::now(),
            parts: Vec::new(),
            index: HashMap::new(),
            taken: 0,
            listed: false,
            current: 0,
            reader: None,
            line_offset: Offset::new(0),
        };
        source.list(true).map_err(SourceError::Unavailable)?;
        source.listed = true;
        for part in &mut source.parts {
            part.resume(None)?;
        }
        Ok(source)
    }

    /// Lists the prefix (or takes a listing another worker just made) and adds the objects
    /// not seen before to this worker's partitions. With `wait`, waits for a listing
    /// another worker is making.
    fn list(&mut self, wait: bool) -> Result<(), String> {
        let listed = self
            .listing
            .refresh(self.interval / 2, wait)
            .map_err(|e| format!("s3 archive {}: listing: {e}", self.url));
        self.listed_at = Instant::now();
        self.take_found(wait);
        listed
    }

    /// Adds the keys the listing found since the last call to this worker's partitions
    /// (with `wait`, even while another worker is listing).
    fn take_found(&mut self, wait: bool) {
        let found = self.listing.found_since(self.taken, wait);
        self.taken += found.len();
        // Objects in offset order, whatever their names' padding.
        let mut named: Vec<(Arc<str>, ObjectName)> = found
            .into_iter()
            .map(|key| {
                let name = ObjectName::parse(&key);
                (key, name)
            })
            .collect();
        named.sort_by(|(a, a_name), (b, b_name)| {
            let start = |name: &ObjectName| match name {
                ObjectName::Connect { start, .. } => start.value(),
                _ => -1,
            };
            (start(a_name), a).cmp(&(start(b_name), b))
        });
        for (key, name) in named {
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
                path: ObjectPath::from(key.as_ref()),
                start,
                gzip,
            };
            match self.index.get(&id) {
                Some(&i) if self.parts[i].handed_over => {
                    tracing::debug!(object = %key, "read live from here on; not read from the archive");
                    continue;
                }
                None if live && self.listed => {
                    // Not held for a lookup in the tables either: the live source resumes
                    // it from its stored position (or its start) by itself.
                    tracing::debug!(object = %key, "a partition first listed while following is read live; not read from the archive");
                    continue;
                }
                _ => {}
            }
            let i = *self.index.entry(id.clone()).or_insert_with(|| {
                self.parts.push(Part::new(id, stream, live));
                self.parts.len() - 1
            });
            let part = &mut self.parts[i];
            let at = part.objects.partition_point(|o| o.start <= start);
            // Objects before `read` were read (or skipped), and so is the one open.
            let behind = part.read + usize::from(self.reader.is_some() && self.current == i);
            if part.resumed && at < behind {
                // It ends where the next object starts: all of it before the stored
                // position is nothing lost.
                let end = part.objects[at].start;
                if part
                    .stored
                    .is_some_and(|stored| stored.value() >= end.value())
                {
                    tracing::debug!(object = %key, "behind the stored position; skipped");
                } else {
                    let reason = format!(
                        "{key}: appeared after later offsets of {} were read; not read",
                        part.id
                    );
                    self.bad_object(&reason);
                }
                continue;
            }
            part.objects.insert(at, object);
        }
    }

    fn bad_object(&self, reason: &str) {
        tracing::warn!("s3 archive {}: bad object skipped: {reason}", self.url);
        Stats::add(&self.stats.bad_objects, 1);
    }

    /// Whether part `i`'s next object may be read now: not while offsets before it are
    /// missing (waiting up to `gap_wait` for them while following).
    fn may_read(&mut self, i: usize) -> bool {
        let part = &mut self.parts[i];
        if !part.pending() {
            return false;
        }
        // Objects that end where the position already stands (listed after the partition
        // was resumed) are skipped without being opened, as at the seek.
        while let Some(next) = part.next
            && part
                .objects
                .get(part.read + 1)
                .is_some_and(|after| after.start.value() <= next.value())
        {
            part.read += 1;
        }
        let start = part.objects[part.read].start;
        let Some(expected) = part.expected.filter(|&expected| start > expected) else {
            return true;
        };
        if self.follow {
            let since = *part.gap_since.get_or_insert_with(Instant::now);
            if since.elapsed() < self.gap_wait {
                return false;
            }
        }
        let waited = part.gap_since.take().map(|since| since.elapsed());
        part.expected = Some(start);
        tracing::warn!(
            "s3 archive {}: offsets {expected} to {} of {} are in no object{}; reading on at {start}",
            self.url,
            start.value() - 1,
            part.id,
            waited.map_or(String::new(), |waited| format!(
                " (waited {})",
                humantime::format_duration(Duration::from_secs(waited.as_secs()))
            )),
        );
        Stats::add(&self.stats.bad_objects, 1);
        true
    }

    /// Opens the next object of the first part (from `current` on) that may be read.
    fn open_next(&mut self) -> Result<bool, StoreFailure> {
        let (count, current) = (self.parts.len(), self.current);
        let Some(i) = (0..count)
            .map(|k| (current + k) % count)
            .find(|&i| self.may_read(i))
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
        self.listing.opened(object.path.as_ref());
        let body = Body {
            runtime: self.runtime.handle().clone(),
            chunks: got.into_stream(),
            chunk: None,
            used: 0,
        };
        self.reader = Some(Lines::new(if object.gzip {
            Box::new(flate2::read::MultiGzDecoder::new(body))
        } else {
            Box::new(body)
        }));
        self.line_offset = object.start;
        Ok(true)
    }

    /// The object being read is done: read to its end (the next one should start at
    /// `end`), or unreadable from some line on (`None`: reported already).
    fn close_object(&mut self, end: Option<Offset>) {
        self.reader = None;
        let part = &mut self.parts[self.current];
        part.read += 1;
        part.expected = end;
    }

    /// Hands the live topic-partitions read to their end over to the live source, at the
    /// position after the last offset read (or the stored one, or the first object's start).
    /// A part waiting for missing offsets (a gap, see [`ArchiveSource::may_read`]) is still
    /// pending: it is handed over only once it has read on.
    fn hand_over(&mut self) {
        for part in &mut self.parts {
            if !part.live || !part.resumed || part.handed_over || part.pending() {
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
            if part.live {
                // The live source waits for it (again, after a dataflow restart).
                self.handover.backfill(&part.id);
                part.handed_over = false;
            }
            part.resume(from.get(&part.id).copied())?;
        }
        self.current = 0;
        self.reader = None;
        Ok(())
    }

    fn take_new_partitions(&mut self) -> Vec<PartitionId> {
        self.parts
            .iter_mut()
            .filter(|part| !part.asked)
            .map(|part| {
                part.asked = true;
                part.id.clone()
            })
            .collect()
    }

    fn seek_new(&mut self, from: &Positions) -> Result<(), SourceError> {
        for part in self.parts.iter_mut().filter(|part| !part.resumed) {
            if part.asked {
                tracing::debug!(partition = %part.id, stored = ?from.get(&part.id), "new partition");
                part.resume(from.get(&part.id).copied())?;
                // New since the start: its first offsets are still to come, not dropped by
                // a retention before the archive began.
                part.expected.get_or_insert(Offset::new(0));
            }
        }
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
            let line = match reader.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => {
                    self.close_object(Some(self.line_offset));
                    continue;
                }
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
                    self.close_object(None);
                    continue;
                }
            };
            let offset = self.line_offset;
            self.line_offset = offset.next().next_offset();
            let part = &mut self.parts[self.current];
            if part.next.is_some_and(|next| next.covers(offset)) {
                continue; // before the stored position
            }
            part.next = Some(offset.next());
            if let Some(record) = RawRecord::from_line(line, part.stream, &part.id, offset, arrival)
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
        // What another worker's listing found for this one, then a listing of its own
        // when the interval has passed.
        self.take_found(false);
        if self.listed_at.elapsed() >= self.interval
            && let Err(error) = self.list(false)
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
            self.open_waiting(follow, worker, peers, Duration::ZERO)
        }

        fn open_waiting(
            &self,
            follow: bool,
            worker: usize,
            peers: usize,
            gap_wait: Duration,
        ) -> ArchiveSource {
            let settings = ArchiveSettings {
                url: "s3://bucket/".parse().unwrap(),
                interval: Duration::from_millis(1),
                gap_wait,
                follow,
            };
            let listing = Listing::new(self.store.clone(), self.runtime.clone(), &settings.url);
            self.open_on(&settings, Arc::new(listing), worker, peers)
        }

        fn open_on(
            &self,
            settings: &ArchiveSettings,
            listing: Arc<Listing>,
            worker: usize,
            peers: usize,
        ) -> ArchiveSource {
            ArchiveSource::open(
                settings,
                listing,
                self.stats.clone(),
                self.handover.clone(),
                worker,
                peers,
            )
            .unwrap()
        }
    }

    /// Polls as the driver does (new partitions resumed at `stored`) until nothing is ready,
    /// after letting a listing interval pass.
    fn follow(source: &mut ArchiveSource, stored: &Positions) -> Vec<(String, i64, String)> {
        std::thread::sleep(Duration::from_millis(3));
        let mut out = Vec::new();
        for _ in 0..3 {
            source.take_new_partitions();
            source.seek_new(stored).unwrap();
            while source.poll(2, &mut out).unwrap() == PollStatus::Ready {}
        }
        crate::connectors::testing::described(out)
    }

    fn drain(source: &mut ArchiveSource) -> Vec<(String, i64, String)> {
        let mut out = Vec::new();
        while source.poll(2, &mut out).unwrap() == PollStatus::Ready {}
        crate::connectors::testing::described(out)
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
        // from its stored position or its start), so the archive reads neither, and does
        // not hold the new one for a lookup in the tables; the other topic is followed, its
        // new partition looked up as the driver does.
        archive.put(&connect_key("a.pin", 0, Offset::new(3)), b"d\n");
        archive.put(&connect_key("a.pin", 1, Offset::new(0)), b"y\n");
        archive.put(&connect_key("b.pin", 0, Offset::new(1)), b"z\n");
        archive.put(&connect_key("b.pin", 1, Offset::new(0)), b"w\n");
        std::thread::sleep(Duration::from_millis(5));
        let mut later = Vec::new();
        let mut new = Vec::new();
        for _ in 0..3 {
            new.extend(source.take_new_partitions());
            source.seek_new(&Positions::new()).unwrap();
            source.poll(10, &mut later).unwrap();
        }
        assert_eq!(new, vec![PartitionId::from("kafka:b.pin/1")]);
        let mut later: Vec<_> = later
            .iter()
            .map(|r| (r.partition.to_string(), r.offset.value()))
            .collect();
        later.sort();
        assert_eq!(
            later,
            vec![
                ("kafka:b.pin/0".to_owned(), 1),
                ("kafka:b.pin/1".to_owned(), 0)
            ]
        );
        assert_eq!(
            archive.handover.state(&"kafka:a.pin/1".into()),
            Backfill::None
        );
        // A dataflow restart registers the backfill again; read on from the stored position,
        // it is handed over there (the objects listed after the handover are the live
        // source's).
        let stored: Positions = [(live.clone(), Position::new(3))].into_iter().collect();
        source.seek(&stored).unwrap();
        assert_eq!(archive.handover.state(&live), Backfill::Reading);
        let mut again = Vec::new();
        while source.poll(10, &mut again).unwrap() == PollStatus::Ready {}
        source.poll(10, &mut again).unwrap();
        assert_eq!(offsets(&again), Vec::<i64>::new());
        assert_eq!(
            archive.handover.state(&live),
            Backfill::Drained(Position::new(3))
        );
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
        let mut read = follow(&mut source, &Positions::new());
        read.sort();
        assert_eq!(
            read,
            vec![
                record("kafka:a.user/0", 1, "b"),
                record("kafka:a.user/1", 0, "c")
            ]
        );
        // An object named before the last one read is not listed again (it could not be
        // read in order): a copy of offset 0, nothing lost.
        archive.put(
            &connect_key("a.user", 0, Offset::new(0)).replace(".json", ".json.gz"),
            &gzip(b"z\n"),
        );
        assert!(follow(&mut source, &Positions::new()).is_empty());
        assert_eq!(Stats::get(&archive.stats.bad_objects), 0);
    }

    #[test]
    fn a_partition_first_listed_while_following_resumes_at_its_stored_position() {
        let archive = Archive::new();
        archive.put(&connect_key("a.pin", 0, Offset::new(0)), b"a\n");
        let mut source = archive.open(true, 0, 1);
        source.seek(&Positions::new()).unwrap();
        assert_eq!(drain(&mut source), vec![record("kafka:a.pin/0", 0, "a")]);
        // Partition 1 was read up to offset 3 by an earlier run; its objects come back now.
        archive.put(&connect_key("a.pin", 1, Offset::new(0)), b"w\nx\n");
        archive.put(&connect_key("a.pin", 1, Offset::new(2)), b"y\nz\n");
        std::thread::sleep(Duration::from_millis(3));
        crate::connectors::testing::resumes_new_partition_at(&mut source, "kafka:a.pin/1", 3);
        assert_eq!(drain(&mut source), vec![record("kafka:a.pin/1", 3, "z")]);
        assert_eq!(source.positions()["kafka:a.pin/1"], Position::new(4));
        assert_eq!(Stats::get(&archive.stats.bad_objects), 0);
    }

    #[test]
    fn a_gap_in_offsets_is_waited_for_then_reported_and_read_past() {
        let archive = Archive::new();
        archive.put(&connect_key("a.geo", 0, Offset::new(0)), b"a\n");
        let mut source = archive.open_waiting(true, 0, 1, Duration::from_millis(100));
        source.seek(&Positions::new()).unwrap();
        assert_eq!(drain(&mut source), vec![record("kafka:a.geo/0", 0, "a")]);
        // Offset 3's object is there before offsets 1 and 2's: it waits for them.
        archive.put(&connect_key("a.geo", 0, Offset::new(3)), b"d\n");
        assert!(follow(&mut source, &Positions::new()).is_empty());
        archive.put(&connect_key("a.geo", 0, Offset::new(1)), b"b\nc\n");
        assert_eq!(
            follow(&mut source, &Positions::new()),
            vec![
                record("kafka:a.geo/0", 1, "b"),
                record("kafka:a.geo/0", 2, "c"),
                record("kafka:a.geo/0", 3, "d")
            ]
        );
        assert_eq!(Stats::get(&archive.stats.bad_objects), 0);
        // Offsets 4 and 5 never come: after the wait one report, and it reads on.
        archive.put(&connect_key("a.geo", 0, Offset::new(6)), b"g\n");
        assert!(follow(&mut source, &Positions::new()).is_empty());
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(
            follow(&mut source, &Positions::new()),
            vec![record("kafka:a.geo/0", 6, "g")]
        );
        assert_eq!(Stats::get(&archive.stats.bad_objects), 1);
        // They come too late to be read in order (named before the last object read, they
        // are not even listed): the report above is what says they are missing.
        archive.put(&connect_key("a.geo", 0, Offset::new(4)), b"e\nf\n");
        assert!(follow(&mut source, &Positions::new()).is_empty());
        assert_eq!(Stats::get(&archive.stats.bad_objects), 1);
        // A partition first listed while following starts at offset 0: a later object
        // waits for the earlier ones (still being copied in) too.
        archive.put(&connect_key("a.geo", 1, Offset::new(2)), b"3\n");
        assert!(follow(&mut source, &Positions::new()).is_empty());
        archive.put(&connect_key("a.geo", 1, Offset::new(0)), b"1\n2\n");
        assert_eq!(
            follow(&mut source, &Positions::new()),
            vec![
                record("kafka:a.geo/1", 0, "1"),
                record("kafka:a.geo/1", 1, "2"),
                record("kafka:a.geo/1", 2, "3")
            ]
        );
        assert_eq!(Stats::get(&archive.stats.bad_objects), 1);
    }

    #[test]
    fn an_object_behind_the_stored_position_is_skipped_quietly() {
        let archive = Archive::new();
        archive.put(&connect_key("a.pin", 0, Offset::new(2)), b"c\nd\n");
        let mut source = archive.open(true, 0, 1);
        source
            .seek(&[("kafka:a.pin/0".into(), Position::new(3))].into())
            .unwrap();
        assert_eq!(drain(&mut source), vec![record("kafka:a.pin/0", 3, "d")]);
        // Copied in late, but all of it was committed before.
        archive.put(&connect_key("a.pin", 0, Offset::new(0)), b"a\nb\n");
        assert!(follow(&mut source, &Positions::new()).is_empty());
        assert_eq!(Stats::get(&archive.stats.bad_objects), 0);
    }

    #[test]
    fn following_lists_only_what_changed() {
        let archive = Archive::new();
        for p in 0..3 {
            for k in 0..50 {
                archive.put(&connect_key("a.user", p, Offset::new(k * 2)), b"1\n2\n");
            }
        }
        archive.put("pin.jsonl", b"p\n");
        let settings = ArchiveSettings {
            url: "s3://bucket/".parse().unwrap(),
            interval: Duration::from_millis(1),
            gap_wait: Duration::ZERO,
            follow: true,
        };
        let listing = Arc::new(Listing::new(
            archive.store.clone(),
            archive.runtime.clone(),
            &settings.url,
        ));
        let mut sources = vec![archive.open_on(&settings, listing.clone(), 0, 2)];
        let full = listing.counts();
        assert_eq!(
            full,
            ListCounts {
                listings: 1,
                requests: 1,
                keys: 151
            }
        );
        sources.push(archive.open_on(&settings, listing.clone(), 1, 2));
        let mut read = 0;
        for source in &mut sources {
            source.seek(&Positions::new()).unwrap();
            read += drain(source).len();
        }
        assert_eq!(read, 301);
        // Until its owner opens an object there, a partition folder is listed whole.
        for source in &mut sources {
            assert!(follow(source, &Positions::new()).is_empty());
        }
        let full = listing.counts();
        for source in &mut sources {
            assert!(follow(source, &Positions::new()).is_empty());
        }
        // Each later listing: the prefix, `topics/`, `topics/a.user/` with the delimiter
        // (1 object + 1 + 1 + 3 folders), then each partition folder after its last object
        // (nothing).
        let again = listing.counts();
        let listings = again.listings - full.listings;
        assert!(listings >= 1);
        assert_eq!(again.keys - full.keys, 6 * listings);
        assert_eq!(again.requests - full.requests, 6 * listings);
        // New objects, a new partition and a new topic are all found.
        archive.put(&connect_key("a.user", 1, Offset::new(100)), b"n\n");
        archive.put(&connect_key("a.user", 3, Offset::new(0)), b"q\n");
        archive.put(&connect_key("b.geo", 0, Offset::new(7)), b"t\n");
        let mut found = Vec::new();
        for source in &mut sources {
            found.extend(follow(source, &Positions::new()));
        }
        found.sort();
        assert_eq!(
            found,
            vec![
                record("kafka:a.user/1", 100, "n"),
                record("kafka:a.user/3", 0, "q"),
                record("kafka:b.geo/0", 7, "t"),
            ]
        );
    }

    #[test]
    fn names_without_padding_are_followed_past_a_new_digit() {
        let archive = Archive::new();
        let key = |start: i64| format!("topics/a.pin/partition=0/a.pin+0+{start}.json");
        archive.put(&key(8), b"i\n");
        archive.put(&key(9), b"j\n");
        let mut source = archive.open(true, 0, 1);
        source.seek(&Positions::new()).unwrap();
        assert_eq!(drain(&mut source).len(), 2);
        // `…+10.json` sorts before `…+9.json`, the last object read.
        archive.put(&key(10), b"k\n");
        assert_eq!(
            follow(&mut source, &Positions::new()),
            vec![record("kafka:a.pin/0", 10, "k")]
        );
        archive.put(&key(11), b"l\n");
        assert_eq!(
            follow(&mut source, &Positions::new()),
            vec![record("kafka:a.pin/0", 11, "l")]
        );
    }

    #[test]
    fn longer_offsets_start_after_the_shorter_ones_of_the_same_first_digits() {
        assert_eq!(longer_offsets_after("t/a+0+0000000042.json"), None);
        assert_eq!(
            longer_offsets_after("t/a+0+9999999999.json.gz").as_deref(),
            Some("t/a+0+1000000000.")
        );
        assert_eq!(
            longer_offsets_after("a+0+9.json").as_deref(),
            Some("a+0+1.")
        );
        let after = longer_offsets_after("a+0+99.json").unwrap();
        assert!("a+0+100.json" > after.as_str() && "a+0+10.json" > after.as_str());
        assert!("a+0+099.json" < after.as_str());
    }
}
