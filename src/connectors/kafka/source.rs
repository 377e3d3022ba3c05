//! The Kafka source (SPEC §1, §5): topics `<prefix>.pin`, `<prefix>.geo`, `<prefix>.user`
//! (or a list of topics, each named with its stream token), one JSON record per message value.
//!
//! Exactly once comes from the positions in the Delta tables, not from the consumer group.
//!
//! **Assignment.** By default (`assign = "job"`) the job assigns the partitions itself: every
//! partition of the topics is read by one worker of the process (or of the cluster), dealt by
//! [`owner`], with a manually assigned consumer of its own, starting at the position the
//! tables hold (the next offset to read), or at the configured start (earliest, latest or a
//! timestamp) when there is none. No group is joined: a join costs about half of
//! `session.timeout.ms` on every start, and nothing can move partitions behind the dataflow.
//! With `assign = "group"` each process is one member of the consumer group (`group.id`, by
//! default `pinstream-<job>`): a [`Membership`], a consumer subscribed to the topics that
//! never reads a message (its partitions are paused), only learns which partitions the group
//! gives this process, and the process's workers split those among themselves the same way.
//! The stored position always wins over the group's committed offset. Why one member per
//! process and not one per worker: a rebalance restarts the dataflow in-process (see below);
//! per-worker members would leave and rejoin the group on every restart, and each rejoin
//! would rebalance the other processes again.
//!
//! **Rebalances** (`assign = "group"`). The deduplication state is loaded from the tables
//! when the dataflow starts, so a process that gains a partition lacks the rows another
//! process committed for it since.
//! So any change of the assignment ([`Source::reassigned`]) restarts the dataflow in the
//! process: in-flight batches are dropped, the tables are read again (positions and rows), and
//! reading resumes from the stored positions. A process that lost a partition may still be
//! committing a batch of it when the new owner starts: the Delta commit itself is the fence
//! (a commit whose `txn` appIds were written by anyone since the snapshot the batch started
//! from fails: the sink reports it as fenced), and the fenced process restarts too. The fence
//! covers only the appIds a commit writes, so every commit writes the position of every
//! partition the process reads, moved or not ([`Source::may_be_shared`], from the first commit
//! after a start): whichever of two processes reading a partition commits second is refused,
//! even when it has not read from it yet, or has committed other partitions since its
//! snapshot took in the other's commit. The same holds for two processes started apart with
//! the same job (`assign = "job"`), which both read every partition.
//! Two processes can therefore never both commit the same offsets.
//!
//! Partitions and topics created later are found by a metadata refresh every
//! [`METADATA_REFRESH`] (in a group: through librdkafka's metadata refresh, a rebalance).
//! `--until-done`: the high watermark of each assigned partition when the dataflow
//! (re)starts is the end; the source is exhausted once every partition reached it.
//!
//! **Brokers down.** librdkafka reconnects by itself (with backoff); this module logs the
//! outage once when it starts and once when it ends (the job's `Stats::kafka_outage` feeds
//! `/metrics`), and
//! a dataflow restart during an outage waits for the brokers instead of failing.
//!
//! After each Delta commit the positions are committed to the consumer group too, so lag
//! tools see progress; resuming never reads them.
//!
//! **After an archive.** In a job that also reads a Kafka Connect archive of the topics, a
//! topic-partition the archive holds is not assigned until the archive has read it to its
//! end (a [`Handover`]: both read it on the same worker); it then starts where the archive
//! ended (or at the stored position if that is further), so no offset is read from both.
//!
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, Timestamp};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::client::{
    Context, OPEN_ATTEMPTS, OPEN_TIMEOUT, brokers_down, brokers_up, config_error, is_outage,
};
use super::commit::GroupCommits;
use super::fetch::Fetcher;
use super::group::{Membership, TopicPartition};
use super::{KafkaSpec, StartFrom};
use crate::connectors::payloads::Payloads;
use crate::connectors::{
    Backfill, Handover, Offset as RecordOffset, PartitionId, PollStatus, Position, Positions,
    RawRecord, Source, SourceError,
};
use crate::stats::Stats;
use crate::stream::Stream;

/// How often the partitions of the topics are looked up again.
const METADATA_REFRESH: Duration = Duration::from_secs(10);

/// The most a fetch answer holds by default (`fetch.max.bytes`; see [`fetch_max_bytes`]).
const FETCH_MAX_BYTES: u64 = 1 << 20;

/// `fetch.max.bytes` for a consumer: 1 MiB, or the job's `message.max.bytes` when larger.
///
/// librdkafka parses a fetch's whole answer before it hands out any of its records, and by
/// default asks for up to 50 MiB (1 MiB per partition): the first records of a worker's 9
/// partitions came 50-74 ms after the assignment; with answers of 1 MiB, 15-35 ms. A record
/// batch larger than this still comes whole (KIP-74), but librdkafka refuses a value under
/// `message.max.bytes`, so a job that raises that raises this. A job's own `fetch.max.bytes`
/// overrides it (properties are set last).
fn fetch_max_bytes(properties: &BTreeMap<String, String>) -> String {
    properties
        .get("message.max.bytes")
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map_or(FETCH_MAX_BYTES, |at_least| at_least.max(FETCH_MAX_BYTES))
        .to_string()
}

/// One topic-partition this worker reads.
#[derive(Debug)]
struct Part {
    id: PartitionId,
    topic: String,
    partition: i32,
    stream: Stream,
    /// The next offset to read; `None` for a partition found after open until its first
    /// message (it is read from its beginning).
    next: Option<Position>,
    /// The high watermark at open, for `--until-done`; `None` for partitions found later
    /// (not waited for).
    end: Option<Position>,
    /// The low watermark at open (where `earliest` starts).
    low: Position,
    /// `end` has been raised to the high watermark of the first fetch response. Some brokers
    /// (tansu 0.6) answer ListOffsets with the start of the last batch + 1, not the end, so
    /// the watermark queried at open is only a lower bound.
    end_seen: bool,
    /// `next` is the position the tables hold (not the configured start).
    stored: bool,
    /// Not read (not assigned) while an archive of the job reads it ([`Handover`]).
    held: bool,
}

impl Part {
    fn done(&self) -> bool {
        if self.held {
            return false;
        }
        match self.end {
            None => true,
            Some(end) => self.end_seen && self.next.is_some_and(|next| next >= end),
        }
    }
}

type KafkaConsumer = BaseConsumer<Context>;

/// Worker `worker`'s share (of `peers`) of the topic-partitions.
pub struct KafkaSource {
    spec: KafkaSpec,
    worker: usize,
    peers: usize,
    topics: Vec<(String, Stream)>,
    /// The client and its fetch queues: closed on a thread of their own when the source is
    /// dropped ([`close_in_background`]), hence `ManuallyDrop`.
    consumer: ManuallyDrop<Arc<KafkaConsumer>>,
    /// The fetched messages of `parts`, taken a chunk at a time.
    fetcher: ManuallyDrop<Fetcher>,
    /// The positions committed to the consumer group, and their replies: the source waits
    /// for the last ones before it closes.
    commits: ManuallyDrop<GroupCommits>,
    parts: Vec<Part>,
    /// topic -> partition number -> index into `parts`.
    index: HashMap<String, HashMap<i32, usize>>,
    /// Partition counts per topic from the background metadata refresh.
    discovered: Receiver<Vec<(String, i32)>>,
    stop_refresh: Arc<AtomicBool>,
    /// `seek` has run (the positions are known).
    sought: bool,
    /// The partitions are assigned to the consumer (at the first poll: every source of the
    /// worker has opened by then, so an archive holding some of them has said so).
    assigned: bool,
    /// Topic-partitions an archive of the job reads first.
    handover: Handover,
    /// The job's counters (messages read from the brokers).
    stats: Arc<Stats>,
    /// In a group: the membership and the generation whose partitions this instance reads.
    group: Option<(Membership, u64, BTreeSet<TopicPartition>)>,
    /// For the debug log of where a run's time goes: when the source was opened, whether a
    /// record was read yet, and the polls that found nothing while not done.
    opened: Instant,
    first_read: bool,
    idle_polls: u64,
    /// The records' copies of the message values (librdkafka owns the messages).
    payloads: Payloads,
}

/// The worker a partition belongs to (shared with the archive and file sources, so a
/// topic-partition's archived and live offsets have one owner). A topic-partition
/// `kafka:<topic>/<p>` goes to worker `(hash(topic) + p) % peers`: a topic's partitions are
/// dealt round the workers, so 6 partitions over 2 workers are 3 and 3 (a hash of each id
/// gave one worker 13 of 18 partitions, and that worker set the pace). Any other id: a
/// stable hash of it.
pub fn owner(id: &str, peers: usize) -> usize {
    let hash = |text: &str| xxhash_rust::xxh3::xxh3_64(text.as_bytes());
    let spread = match topic_partition(id) {
        Some((topic, partition)) => hash(topic).wrapping_add(partition as u64),
        None => hash(id),
    };
    (spread % peers as u64) as usize
}

/// The topic and partition of `kafka:<topic>/<partition>`.
fn topic_partition(id: &str) -> Option<(&str, u32)> {
    let (topic, partition) = id.strip_prefix("kafka:")?.rsplit_once('/')?;
    Some((topic, partition.parse().ok()?))
}

/// `kafka:<topic>/<partition>`: the `txn` appId of a topic-partition, whether its offsets
/// are read from the broker or from a Kafka Connect archive.
pub fn partition_id(topic: &str, partition: i32) -> PartitionId {
    format!("kafka:{topic}/{partition}").into()
}

impl KafkaSource {
    /// Connects, reads the topics' partitions (retrying; a clear error when the brokers
    /// cannot be reached) and the watermarks of this worker's share.
    pub fn new(
        spec: &KafkaSpec,
        membership: Option<&Membership>,
        stats: &Arc<Stats>,
        handover: &Handover,
        worker: usize,
        peers: usize,
    ) -> Result<KafkaSource, SourceError> {
        let opened = Instant::now();
        let topics = spec.topics.resolve()?;
        let group = spec.group();
        // In a group, read only what the group gave this process (waiting for it).
        let membership = membership.map(|m| {
            let (generation, partitions) = m.assigned();
            (m.clone(), generation, partitions)
        });
        let fetch_max = fetch_max_bytes(&spec.properties);
        let config = spec.client_config(&[
            ("group.id", &group),
            ("fetch.max.bytes", &fetch_max),
            ("client.id", &format!("pinstream-{worker}")),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "false"),
            ("allow.auto.create.topics", "false"),
            // Larger fetches: the engine reads in chunks of thousands.
            ("fetch.wait.max.ms", "100"),
            ("queued.min.messages", "100000"),
            // When the prefetch queue is full librdkafka stops fetching for this long
            // (default 1 s): the dataflow empties 16 MiB in well under that, then waited on
            // an empty queue for the rest of the second.
            ("fetch.queue.backoff.ms", "10"),
            // librdkafka's prefetch buffer is the only buffer ahead of the dataflow (which
            // itself reads at most BATCHES_IN_FLIGHT batches ahead of the last commit): bound it
            // to 16 MiB per worker (librdkafka's default is 64 MiB), whatever the backlog.
            ("queued.max.messages.kbytes", "16384"),
            // With sparse connections (the default) librdkafka connects to a broker only when
            // it needs it, and to any broker no sooner than max(11 ms, reconnect.backoff.ms /
            // 2) after its last connection: it drops the bootstrap connection as soon as the
            // first metadata answer names the brokers, failing the open's own metadata
            // request in flight, whose retry then waited that interval before connecting to
            // the leader (the open took 17 ms, 6 ms without; ~50 ms with the default 100 ms
            // backoff). A consumer of topics spread over the cluster connects to most brokers
            // anyway; a job can set it back to true.
            ("enable.sparse.connections", "false"),
        ]);
        let consumer: KafkaConsumer = config
            .create_with_context(Context::new(stats))
            .map_err(|e| config_error(spec, e))?;
        let counts = open_metadata(&consumer, spec, &topics)?;
        let consumer = Arc::new(consumer);
        let mut source = KafkaSource {
            spec: spec.clone(),
            worker,
            peers,
            topics: topics.clone(),
            fetcher: ManuallyDrop::new(Fetcher::new(&consumer)),
            commits: ManuallyDrop::new(GroupCommits::new(&consumer)),
            consumer: ManuallyDrop::new(consumer),
            parts: Vec::new(),
            index: HashMap::new(),
            discovered: channel().1,
            stop_refresh: Arc::new(AtomicBool::new(false)),
            sought: false,
            assigned: false,
            handover: handover.clone(),
            stats: stats.clone(),
            group: membership,
            opened,
            first_read: false,
            idle_polls: 0,
            payloads: Payloads::default(),
        };
        let mut owned = Vec::new();
        for (topic, count) in counts {
            for partition in 0..count {
                if source.owns(&topic, partition, &partition_id(&topic, partition)) {
                    owned.push((topic.clone(), partition));
                }
            }
        }
        let mut watermarks = watermarks(&source.consumer, &owned);
        for (topic, partition) in owned {
            let stream = topics.iter().find(|(t, _)| *t == topic).expect("asked").1;
            let id = partition_id(&topic, partition);
            let (low, high) = match watermarks.remove(&(topic.clone(), partition)) {
                Some(found) => found,
                // Not in the batched answer: asked alone (with its own error).
                None => source
                    .consumer
                    .fetch_watermarks(&topic, partition, OPEN_TIMEOUT)
                    .map_err(|e| {
                        SourceError::Unavailable(format!(
                            "kafka {}: watermarks of {topic}/{partition}: {e}",
                            spec.brokers
                        ))
                    })?,
            };
            tracing::debug!(partition = %id, low, high, "kafka watermarks at open");
            source.add(Part {
                id,
                topic,
                partition,
                stream,
                next: None,
                end: Some(Position::new(high)),
                low: Position::new(low),
                end_seen: false,
                stored: false,
                held: false,
            });
        }
        let (sender, receiver) = channel();
        source.discovered = receiver;
        spawn_refresh(
            Arc::downgrade(&source.consumer),
            topics.into_iter().map(|(t, _)| t).collect(),
            sender,
            source.stop_refresh.clone(),
        );
        tracing::debug!(
            worker,
            partitions = source.parts.len(),
            brokers = spec.brokers,
            elapsed = ?opened.elapsed(),
            "kafka source open"
        );
        Ok(source)
    }

    /// Whether this worker reads `topic`/`partition`: its hash share of what the process
    /// reads (in a group, what the group assigned to the process).
    fn owns(&self, topic: &str, partition: i32, id: &str) -> bool {
        let in_process = match &self.group {
            Some((_, _, assigned)) => assigned.contains(&(topic.to_owned(), partition)),
            None => true,
        };
        in_process && owner(id, self.peers) == self.worker
    }

    fn add(&mut self, part: Part) {
        // Before the partition is first assigned: none of its messages go elsewhere.
        self.fetcher.add(&part.topic, part.partition);
        self.index
            .entry(part.topic.clone())
            .or_default()
            .insert(part.partition, self.parts.len());
        self.parts.push(part);
    }

    /// (Re-)assigns every partition not held by an archive at its next offset (or its
    /// beginning when unknown).
    fn assign(&self) -> Result<(), SourceError> {
        let mut list = TopicPartitionList::with_capacity(self.parts.len());
        for part in self.parts.iter().filter(|p| !p.held) {
            let offset = part
                .next
                .map_or(Offset::Beginning, |next| Offset::Offset(next.value()));
            list.add_partition_offset(&part.topic, part.partition, offset)
                .map_err(|e| SourceError::Seek {
                    partition: part.id.clone(),
                    position: part.next.unwrap_or(Position::START),
                    source: Box::new(e),
                })?;
        }
        self.consumer
            .assign(&list)
            .map_err(|e| config_error(&self.spec, e))
    }

    /// Takes the partitions the background refresh found; assigns the new ones of this
    /// worker.
    fn discover(&mut self) -> Result<(), SourceError> {
        let mut added = 0;
        while let Ok(counts) = self.discovered.try_recv() {
            for (topic, count) in counts {
                let Some(&(_, stream)) = self.topics.iter().find(|(t, _)| *t == topic) else {
                    continue;
                };
                for partition in 0..count {
                    let known = self
                        .index
                        .get(&topic)
                        .is_some_and(|m| m.contains_key(&partition));
                    let id = partition_id(&topic, partition);
                    if known || !self.owns(&topic, partition, &id) {
                        continue;
                    }
                    tracing::info!(partition = %id, worker = self.worker, "new kafka partition");
                    self.add(Part {
                        id,
                        topic: topic.clone(),
                        partition,
                        stream,
                        next: None,
                        end: None,
                        low: Position::START,
                        end_seen: true,
                        stored: false,
                        held: false,
                    });
                    added += 1;
                }
            }
        }
        if added > 0 && self.assigned {
            self.assign()?;
        }
        Ok(())
    }

    /// Holds the partitions an archive of the job is reading, and releases those it has read
    /// to its end at the position it ended at (a stored position further on wins). Looked at
    /// for every partition before the first assignment, then for the held ones only; returns
    /// whether the assignment must change.
    fn take_over(&mut self) -> bool {
        let mut changed = !self.assigned;
        for part in &mut self.parts {
            if self.assigned && !part.held {
                continue;
            }
            match self.handover.state(&part.id) {
                Backfill::None => {}
                Backfill::Reading => part.held = true,
                Backfill::Drained(at) => {
                    let next = match part.next {
                        Some(stored) if part.stored => stored.max(at),
                        _ => at,
                    };
                    if next < part.low {
                        tracing::warn!(
                            partition = %part.id,
                            "offsets from {at} up to {} are neither in the archive nor on the brokers any more (retention): not read",
                            part.low
                        );
                    }
                    tracing::debug!(partition = %part.id, %next, "taken over from the archive");
                    part.next = Some(next);
                    part.held = false;
                    changed = true;
                }
            }
        }
        changed
    }

    /// Raises the end of partitions found at open to the high watermark of their first fetch
    /// response (cached by librdkafka; no request).
    fn confirm_ends(&mut self) {
        for part in self.parts.iter_mut().filter(|p| !p.end_seen) {
            let Ok(topic) = std::ffi::CString::new(part.topic.as_str()) else {
                continue;
            };
            let (mut low, mut high) = (-1i64, -1i64);
            // SAFETY: a live client handle, a NUL-terminated topic and two valid out pointers;
            // librdkafka only reads its local cache.
            let code = unsafe {
                rdkafka::bindings::rd_kafka_get_watermark_offsets(
                    self.consumer.client().native_ptr(),
                    topic.as_ptr(),
                    part.partition,
                    &mut low,
                    &mut high,
                )
            };
            if code == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                && high >= 0
            {
                part.end = part.end.map(|end| end.max(Position::new(high)));
                part.end_seen = true;
            }
        }
    }

    /// Reports failed group commits as any consumer error ([`report`]).
    fn report_commits(&self, failed: Vec<RDKafkaErrorCode>) {
        for code in failed {
            report(self.consumer.context(), &KafkaError::ConsumerCommit(code));
        }
    }

    /// Waits (at most [`COMMIT_REPLY_WAIT`]) for the replies to the group commits sent, so
    /// the group's last offsets are not lost with the client.
    fn settle_commits(&mut self) {
        let failed = self.commits.settle(COMMIT_REPLY_WAIT);
        self.report_commits(failed);
        let unanswered = self.commits.unanswered();
        if unanswered > 0 {
            tracing::warn!(
                worker = self.worker,
                unanswered,
                "kafka: closing without the replies to the last consumer-group commits"
            );
        }
    }

    /// Moves positions over gaps the consumer skipped without delivering a message
    /// (transaction markers, compacted offsets), so `--until-done` ends.
    fn catch_up_positions(&mut self) {
        let Ok(list) = self.consumer.position() else {
            return;
        };
        for element in list.elements() {
            if let Offset::Offset(at) = element.offset()
                && let Some(&i) = self
                    .index
                    .get(element.topic())
                    .and_then(|m| m.get(&element.partition()))
            {
                let part = &mut self.parts[i];
                let at = Position::new(at);
                if part.next.is_some_and(|next| at > next) {
                    part.next = Some(at);
                }
            }
        }
    }
}

/// A message of `part` read: its position moves past it, and a record is made of its value
/// (a tombstone is consumed but makes none). `timestamp_ms`: the message's create or
/// log-append time; without one, the time it was read.
fn accept(
    part: &mut Part,
    offset: i64,
    payload: Option<&[u8]>,
    timestamp_ms: Option<i64>,
    now: &mut Option<i64>,
    payloads: &mut Payloads,
    out: &mut Vec<RawRecord>,
) {
    let offset = RecordOffset::new(offset);
    part.next = Some(offset.next());
    let Some(payload) = payload else {
        return;
    };
    let arrival = match timestamp_ms {
        Some(ms) => ms.saturating_mul(1000),
        None => *now.get_or_insert_with(crate::now_micros),
    };
    out.push(RawRecord {
        stream: Some(part.stream),
        payload: payloads.copy(payload),
        partition: part.id.clone(),
        offset,
        arrival,
    });
}

/// A consumer error: logged (rate limited), and an outage when the brokers cannot be reached.
fn report(context: &Context, error: &KafkaError) {
    if is_outage(error) {
        brokers_down(&context.stats, &error.to_string());
    }
    context.warn(&error.to_string());
}

/// How long a closing source waits for the replies to its last group commits.
const COMMIT_REPLY_WAIT: Duration = Duration::from_secs(2);

impl Drop for KafkaSource {
    fn drop(&mut self) {
        self.stop_refresh.store(true, Ordering::Relaxed);
        self.settle_commits();
        // SAFETY: each field is taken once, here, and `self` is not used after `drop`.
        let client = unsafe {
            (
                ManuallyDrop::take(&mut self.fetcher),
                ManuallyDrop::take(&mut self.commits),
                ManuallyDrop::take(&mut self.consumer),
            )
        };
        close_in_background(client);
    }
}

/// Closes a source's client off the worker's thread. rdkafka's drop of a consumer with a
/// `group.id` closes it and then polls in 100 ms steps until librdkafka says it is closed:
/// that was 100 ms at the end of every `--until-done` run (and of every dataflow restart),
/// with nothing left to do (the group commits are answered:
/// [`KafkaSource::settle_commits`]). A tuple drops its fields in order: the queues first,
/// then the client, on the thread or (when it cannot start) here, with the closure.
fn close_in_background(client: (Fetcher, GroupCommits, Arc<KafkaConsumer>)) {
    let spawned = std::thread::Builder::new()
        .name("pinstream-kafka-close".into())
        .spawn(move || drop(client));
    if let Err(error) = spawned {
        tracing::debug!(%error, "kafka client closed on the worker's thread");
    }
}

/// The partition counts of `topics`, retried while the brokers cannot be reached. A topic
/// that does not exist (yet) has 0 partitions.
fn open_metadata(
    consumer: &KafkaConsumer,
    spec: &KafkaSpec,
    topics: &[(String, Stream)],
) -> Result<Vec<(String, i32)>, SourceError> {
    let mut last = None;
    for attempt in 1..=OPEN_ATTEMPTS {
        match partition_counts(consumer, topics.iter().map(|(t, _)| t.as_str())) {
            Ok(counts) => {
                for (topic, count) in &counts {
                    if *count == 0 {
                        tracing::warn!(topic, "kafka topic not found (yet): read once it appears");
                    }
                }
                return Ok(counts);
            }
            Err(error) => {
                tracing::warn!(attempt, brokers = spec.brokers, %error, "kafka metadata");
                last = Some(error);
            }
        }
    }
    Err(SourceError::Unavailable(format!(
        "kafka brokers {} unreachable after {OPEN_ATTEMPTS} attempts of {}s: {}",
        spec.brokers,
        OPEN_TIMEOUT.as_secs(),
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}

fn partition_counts<'a>(
    consumer: &KafkaConsumer,
    topics: impl Iterator<Item = &'a str>,
) -> Result<Vec<(String, i32)>, KafkaError> {
    let mut counts = Vec::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), OPEN_TIMEOUT)?;
        let count = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map_or(0, |t| t.partitions().len() as i32);
        counts.push((topic.to_owned(), count));
    }
    Ok(counts)
}

/// The low and high watermarks of `partitions`, in two requests per broker (the earliest
/// and the latest offsets of all of them) instead of two per partition: at open, with a few
/// partitions per worker, the round trips one by one were most of the time to the first
/// record. A partition missing from the answer (an error for it, or for the whole request)
/// is left out: the caller asks for it alone.
fn watermarks(
    consumer: &KafkaConsumer,
    partitions: &[(String, i32)],
) -> HashMap<(String, i32), (i64, i64)> {
    let ask = |at: Offset| -> HashMap<(String, i32), i64> {
        let mut list = TopicPartitionList::with_capacity(partitions.len());
        for (topic, partition) in partitions {
            if list.add_partition_offset(topic, *partition, at).is_err() {
                return HashMap::new();
            }
        }
        // ListOffsets with the special times -2 (earliest) and -1 (latest), as librdkafka's
        // own watermark query sends.
        match consumer.offsets_for_times(list, OPEN_TIMEOUT) {
            Ok(found) => found
                .elements()
                .iter()
                .filter(|e| e.error().is_ok())
                .filter_map(|e| match e.offset() {
                    Offset::Offset(offset) if offset >= 0 => {
                        Some(((e.topic().to_owned(), e.partition()), offset))
                    }
                    _ => None,
                })
                .collect(),
            Err(error) => {
                tracing::debug!(%error, "kafka offsets at open: asked per partition instead");
                HashMap::new()
            }
        }
    };
    if partitions.is_empty() {
        return HashMap::new();
    }
    let low = ask(Offset::Beginning);
    let mut high = ask(Offset::End);
    low.into_iter()
        .filter_map(|(key, low)| {
            let high = high.remove(&key)?;
            Some((key, (low, high)))
        })
        .collect()
}

/// Re-reads the partition counts every [`METADATA_REFRESH`] on a thread of its own (a
/// metadata request waits on the brokers, which `poll` must not).
fn spawn_refresh(
    consumer: Weak<KafkaConsumer>,
    topics: Vec<String>,
    found: Sender<Vec<(String, i32)>>,
    stop: Arc<AtomicBool>,
) {
    let spawned = std::thread::Builder::new()
        .name("pinstream-kafka-metadata".into())
        .spawn(move || {
            loop {
                let started = Instant::now();
                while started.elapsed() < METADATA_REFRESH {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                let Some(consumer) = consumer.upgrade() else {
                    return;
                };
                match partition_counts(&consumer, topics.iter().map(String::as_str)) {
                    Ok(counts) => {
                        brokers_up(&consumer.context().stats);
                        if found.send(counts).is_err() {
                            return;
                        }
                    }
                    Err(error) => {
                        if is_outage(&error) {
                            brokers_down(&consumer.context().stats, &format!("metadata: {error}"));
                        }
                        consumer.context().warn(&format!("metadata: {error}"))
                    }
                }
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "kafka metadata refresh not started: new partitions need a restart");
    }
}

impl Source for KafkaSource {
    fn partitions(&self) -> Vec<PartitionId> {
        self.parts.iter().map(|p| p.id.clone()).collect()
    }

    fn seek(&mut self, from: &Positions) -> Result<(), SourceError> {
        let mut by_time = TopicPartitionList::new();
        for part in &mut self.parts {
            part.stored = from.contains_key(&part.id);
            part.next = match (from.get(&part.id), part.end) {
                (Some(&stored), _) if stored < Position::START => {
                    return Err(SourceError::NegativePosition {
                        partition: part.id.clone(),
                        position: stored,
                    });
                }
                (Some(&stored), _) => Some(stored),
                (None, None) => None,
                (None, Some(high)) => match self.spec.start {
                    StartFrom::Earliest => Some(part.low),
                    StartFrom::Latest => Some(high),
                    StartFrom::Timestamp(ms) => {
                        by_time
                            .add_partition_offset(&part.topic, part.partition, Offset::Offset(ms))
                            .map_err(|e| SourceError::Seek {
                                partition: part.id.clone(),
                                position: Position::new(ms),
                                source: Box::new(e),
                            })?;
                        Some(high)
                    }
                },
            };
        }
        if by_time.count() > 0 {
            let found = self
                .consumer
                .offsets_for_times(by_time, OPEN_TIMEOUT)
                .map_err(|e| {
                    SourceError::Unavailable(format!(
                        "kafka {}: offsets for {}: {e}",
                        self.spec.brokers, self.spec.start
                    ))
                })?;
            for element in found.elements() {
                // No message at or after the time: the end (already set).
                if let Offset::Offset(at) = element.offset()
                    && let Some(&i) = self
                        .index
                        .get(element.topic())
                        .and_then(|m| m.get(&element.partition()))
                {
                    self.parts[i].next = Some(Position::new(at));
                }
            }
        }
        self.sought = true;
        self.assigned = false;
        Ok(())
    }

    fn poll(&mut self, max: usize, out: &mut Vec<RawRecord>) -> Result<PollStatus, SourceError> {
        if !self.sought {
            self.seek(&Positions::new())?;
        }
        if (!self.assigned || self.parts.iter().any(|p| p.held)) && self.take_over() {
            self.assign()?;
            self.assigned = true;
            tracing::debug!(worker = self.worker, elapsed = ?self.opened.elapsed(), "kafka partitions assigned");
        }
        self.discover()?;
        let before = out.len();
        let mut now = None;
        let mut consumed = 0;
        // What librdkafka fetched, a chunk at a time (see `fetch.rs`).
        self.fetcher.forward();
        let context = self.consumer.context();
        let (parts, index, payloads) = (&mut self.parts, &self.index, &mut self.payloads);
        // The part of the last message: messages come in runs of one partition.
        let mut last: Option<(*const u8, usize, i32, usize)> = None;
        let taken = self.fetcher.take(max, |message| {
            if let Err(code) = message.result {
                if code != rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF
                {
                    report(context, &KafkaError::MessageConsumption(code.into()));
                }
                return;
            }
            let key = (
                message.topic.as_ptr(),
                message.topic.len(),
                message.partition,
            );
            let i = match last {
                Some((ptr, len, partition, i)) if (ptr, len, partition) == key => i,
                _ => {
                    let Some(&i) = std::str::from_utf8(message.topic)
                        .ok()
                        .and_then(|topic| index.get(topic))
                        .and_then(|m| m.get(&message.partition))
                    else {
                        return;
                    };
                    last = Some((key.0, key.1, key.2, i));
                    i
                }
            };
            consumed += 1;
            accept(
                &mut parts[i],
                message.offset,
                message.payload,
                message.timestamp_ms,
                &mut now,
                payloads,
                out,
            );
        });
        // The consumer queue: librdkafka's events (errors), and messages fetched before their
        // partition's queue was forwarded (none, normally).
        for _ in taken..max {
            let message = match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(message)) => message,
                Some(Err(KafkaError::PartitionEOF(_))) => continue,
                Some(Err(error)) => {
                    report(self.consumer.context(), &error);
                    break;
                }
            };
            let Some(&i) = self
                .index
                .get(message.topic())
                .and_then(|m| m.get(&message.partition()))
            else {
                continue;
            };
            consumed += 1;
            let timestamp_ms = match message.timestamp() {
                Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) if ms >= 0 => Some(ms),
                _ => None,
            };
            accept(
                &mut self.parts[i],
                message.offset(),
                message.payload(),
                timestamp_ms,
                &mut now,
                &mut self.payloads,
                out,
            );
        }
        Stats::add(&self.stats.kafka_messages, consumed);
        if out.len() > before {
            brokers_up(&self.consumer.context().stats);
            if !self.first_read {
                self.first_read = true;
                tracing::debug!(worker = self.worker, elapsed = ?self.opened.elapsed(), idle_polls = self.idle_polls, "kafka first records");
            }
            return Ok(PollStatus::Ready);
        }
        self.catch_up_positions();
        if self.spec.stop_at_end {
            self.confirm_ends();
        }
        if self.spec.stop_at_end && self.parts.iter().all(Part::done) {
            tracing::debug!(worker = self.worker, elapsed = ?self.opened.elapsed(), idle_polls = self.idle_polls, "kafka source at its end");
            return Ok(PollStatus::Exhausted);
        }
        self.idle_polls += 1;
        Ok(PollStatus::Idle)
    }

    /// Positions of the partitions read (none for one an archive still holds: the archive
    /// reports it).
    fn positions(&self) -> Positions {
        self.parts
            .iter()
            .filter(|p| !p.held)
            .filter_map(|p| Some((p.id.clone(), p.next?)))
            .collect()
    }

    /// Commits the committed positions of this worker's partitions to the consumer group, so
    /// `kafka-consumer-groups` and lag exporters see progress (once per batch, without waiting;
    /// the replies are read at the next commit and waited for when the source closes).
    fn committed(&mut self, positions: &Positions) {
        let mut list = TopicPartitionList::new();
        for part in &self.parts {
            if let Some(&position) = positions.get(&part.id) {
                let _ = list.add_partition_offset(
                    &part.topic,
                    part.partition,
                    Offset::Offset(position.value()),
                );
            }
        }
        if list.count() == 0 {
            return;
        }
        match &self.group {
            // The group's member commits (a non-member's commit to an active group is
            // refused by Kafka).
            Some((membership, _, _)) => membership.commit(&list),
            None => {
                let failed = self.commits.send(&list);
                self.report_commits(failed);
            }
        }
    }

    fn reassigned(&self) -> bool {
        self.group
            .as_ref()
            .is_some_and(|(membership, generation, _)| membership.generation() != *generation)
    }

    fn may_be_shared(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::ClientConfig;

    /// The default librdkafka accepts, with and without a raised `message.max.bytes` (a
    /// consumer is created without reaching any broker: creation checks the configuration).
    #[test]
    fn fetches_hold_1_mib_or_the_largest_message_a_job_allows() {
        let consumer = |properties: &[(&str, &str)]| {
            let properties: BTreeMap<String, String> = properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let fetch_max = fetch_max_bytes(&properties);
            let mut config = ClientConfig::new();
            config.set("bootstrap.servers", "127.0.0.1:1");
            config.set("group.id", "test");
            config.set("fetch.max.bytes", &fetch_max);
            for (key, value) in &properties {
                config.set(key, value);
            }
            (fetch_max, config.create::<BaseConsumer>().map(|_| ()))
        };
        let (default, created) = consumer(&[]);
        assert_eq!(default, "1048576");
        created.expect("librdkafka accepts the default");
        let (raised, created) = consumer(&[("message.max.bytes", "10000000")]);
        assert_eq!(raised, "10000000");
        created.expect("librdkafka accepts a raised message.max.bytes");
        // The same raise with a fixed 1 MiB is what librdkafka refuses.
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", "127.0.0.1:1");
        config.set("fetch.max.bytes", "1048576");
        config.set("message.max.bytes", "10000000");
        assert!(config.create::<BaseConsumer>().is_err());
    }

    #[test]
    fn kafka_partitions_of_a_topic_are_dealt_round_the_workers() {
        for peers in 1..=4 {
            for topic in ["a.pin", "a.geo", "bench-17.user"] {
                let mut per_worker = vec![0; peers];
                for partition in 0..6 * peers as i32 {
                    per_worker[owner(&partition_id(topic, partition), peers)] += 1;
                }
                assert!(
                    per_worker.iter().all(|&n| n == 6),
                    "{topic}: {per_worker:?}"
                );
            }
        }
        // Other ids (files, plain archive objects) are hashed whole.
        assert_eq!(topic_partition("kafka:a.b/c/7"), Some(("a.b/c", 7)));
        assert_eq!(topic_partition("file:pin.jsonl"), None);
        assert_eq!(topic_partition("kafka:a.pin/x"), None);
    }

    #[test]
    fn kafka_partitions_spread_over_workers() {
        // Every partition has exactly one owner, and the spread is not lopsided.
        let ids: Vec<PartitionId> = (0..3)
            .flat_map(|t| (0..32).map(move |p| partition_id(&format!("t{t}.pin"), p)))
            .collect();
        for peers in 1..=4 {
            let mut per_worker = vec![0; peers];
            for id in &ids {
                per_worker[owner(id, peers)] += 1;
            }
            assert_eq!(per_worker.iter().sum::<usize>(), ids.len());
            assert!(
                per_worker.iter().all(|&n| n >= ids.len() / peers / 2),
                "{per_worker:?}"
            );
        }
        assert_eq!(&*partition_id("abc.pin", 3), "kafka:abc.pin/3");
    }

    #[test]
    fn kafka_unreachable_brokers_are_a_clear_error() {
        let mut spec = KafkaSpec::parse("kafka://127.0.0.1:1/nothing").unwrap();
        spec.properties
            .insert("socket.connection.setup.timeout.ms".into(), "1000".into());
        let started = Instant::now();
        match KafkaSource::new(&spec, None, &Default::default(), &Handover::default(), 0, 1) {
            Err(SourceError::Unavailable(msg)) => {
                assert!(
                    msg.contains("127.0.0.1:1") && msg.contains("unreachable"),
                    "{msg}"
                )
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("opened a source on a closed port"),
        }
        assert!(started.elapsed() < Duration::from_secs(60));
        // A bad property is a configuration error.
        spec.properties
            .insert("no.such.property".into(), "1".into());
        assert!(matches!(
            KafkaSource::new(&spec, None, &Default::default(), &Handover::default(), 0, 1),
            Err(SourceError::Client { .. })
        ));
    }
}
