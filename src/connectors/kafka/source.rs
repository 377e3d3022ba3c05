//! The Kafka source (SPEC §1, §5): topics `<prefix>.pin`, `<prefix>.geo`, `<prefix>.user`
//! (or a list of topics, each named with its stream token), one JSON record per message value.
//!
//! Exactly once comes from the positions in the Delta tables, not from the consumer group.
//!
//! **Assignment.** Each process is one member of the consumer group (`group.id`, by default
//! `pinstream-<job>`): a [`Membership`], a consumer subscribed to the topics that never reads
//! a message (its partitions are paused), only learns which partitions the group gives this
//! process. The process's timely workers split those partitions among themselves by a stable
//! hash of the partition id (`kafka:<topic>/<partition>`, the Delta `txn` appId) and read them
//! with manually assigned consumers of their own, starting each at the position the tables
//! hold (the next offset to read), or at the configured start (earliest, latest or a
//! timestamp) when there is none: the stored position always wins over the group's committed
//! offset. Why one member per process and not one per worker: a rebalance restarts the
//! dataflow in-process (see below); per-worker members would leave and rejoin the group on
//! every restart, and each rejoin would rebalance the other processes again.
//!
//! **Rebalances.** The deduplication state is loaded from the tables when the dataflow starts,
//! so a process that gains a partition lacks the rows another process committed for it since.
//! So any change of the assignment ([`Source::reassigned`]) restarts the dataflow in the
//! process: in-flight batches are dropped, the tables are read again (positions and rows), and
//! reading resumes from the stored positions. A process that lost a partition may still be
//! committing a batch of it when the new owner starts: the Delta commit itself is the fence
//! (a commit whose `txn` appIds were written by anyone since the snapshot the batch started
//! from fails, see `crate::sink::SinkError::Fenced`), and the fenced process restarts too.
//! Two processes can therefore never both commit the same offsets.
//!
//! Partitions and topics created later reach the group through librdkafka's metadata refresh
//! (a rebalance). `--until-done`: the high watermark of each assigned partition when the
//! dataflow (re)starts is the end; the source is exhausted once every partition reached it.
//!
//! **Brokers down.** librdkafka reconnects by itself (with backoff); this module logs the
//! outage once when it starts and once when it ends ([`broker_outage`] feeds `/metrics`), and
//! a dataflow restart during an outage waits for the brokers instead of failing.
//!
//! After each Delta commit the positions are committed to the consumer group too, so lag
//! tools see progress; resuming never reads them.
//!
//! [`produce_events`] is `pinstream emulate --to kafka://...`: it creates the three topics and
//! produces the emulator's events, keyed by post index.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::connectors::emulator::{Emulator, EmulatorSpec};
use crate::connectors::{PartitionId, PollStatus, Positions, RawRecord, Source, SourceError};
use crate::stream::Stream;

/// How often the partitions of the topics are looked up again.
const METADATA_REFRESH: Duration = Duration::from_secs(10);
/// Timeout of one metadata or watermark request at open.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts of the first metadata request before the brokers count as unreachable.
const OPEN_ATTEMPTS: u32 = 3;
/// At most one warning about the brokers per this interval (the rest are counted).
const WARN_INTERVAL: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// Which topics to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topics {
    /// `<prefix>.pin`, `<prefix>.geo`, `<prefix>.user`.
    Prefix(String),
    /// Named topics; each carries its stream as a name token (`abc.pin`, `events-geo`).
    List(Vec<String>),
}

impl Topics {
    /// The topics with their streams.
    pub fn resolve(&self) -> Result<Vec<(String, Stream)>, SourceError> {
        match self {
            Topics::Prefix(prefix) => Ok(Stream::ALL
                .iter()
                .map(|s| (format!("{prefix}.{s}"), *s))
                .collect()),
            Topics::List(topics) => topics
                .iter()
                .map(|topic| match Stream::from_name_token(topic) {
                    Some(stream) => Ok((topic.clone(), stream)),
                    None => Err(SourceError::Config(format!(
                        "kafka topic `{topic}`: its name must carry the stream (pin, geo or user) as a token, e.g. abc.pin"
                    ))),
                })
                .collect(),
        }
    }
}

/// Where a partition with no stored position starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartFrom {
    /// The oldest message the broker holds.
    #[default]
    Earliest,
    /// Only messages produced after the job first opened the partition.
    Latest,
    /// The first message with a timestamp at or after this one (milliseconds since the epoch).
    Timestamp(i64),
}

impl StartFrom {
    /// `earliest`, `latest`, an RFC 3339 / `YYYY-MM-DD HH:MM:SS` (UTC) timestamp, or
    /// milliseconds since the epoch.
    pub fn parse(text: &str) -> Result<StartFrom, SourceError> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "earliest" | "beginning" => return Ok(StartFrom::Earliest),
            "latest" | "end" => return Ok(StartFrom::Latest),
            _ => {}
        }
        if let Ok(ms) = text.parse::<i64>()
            && ms >= 0
        {
            return Ok(StartFrom::Timestamp(ms));
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
            return Ok(StartFrom::Timestamp(t.timestamp_millis()));
        }
        for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
                return Ok(StartFrom::Timestamp(t.and_utc().timestamp_millis()));
            }
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            let t = d.and_hms_opt(0, 0, 0).expect("midnight exists");
            return Ok(StartFrom::Timestamp(t.and_utc().timestamp_millis()));
        }
        Err(SourceError::Config(format!(
            "kafka start `{text}`: expected earliest, latest, a timestamp (2024-05-01T00:00:00Z) or epoch milliseconds"
        )))
    }
}

impl fmt::Display for StartFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartFrom::Earliest => f.write_str("earliest"),
            StartFrom::Latest => f.write_str("latest"),
            StartFrom::Timestamp(ms) => write!(f, "{ms}"),
        }
    }
}

/// A Kafka source as configured (`--from kafka://...` or a job file's `[[source]]`).
#[derive(Clone, Debug, PartialEq)]
pub struct KafkaSpec {
    /// `bootstrap.servers`: `host:port[,host:port...]`.
    pub brokers: String,
    pub topics: Topics,
    /// `group.id`; `None` until the job's name is known (`pinstream-<job>`).
    pub group_id: Option<String>,
    pub start: StartFrom,
    /// Any librdkafka property, set on the client as is (TLS, SASL, timeouts...).
    pub properties: BTreeMap<String, String>,
    /// Report `Exhausted` once the end offsets seen at open are reached (`--until-done`).
    pub stop_at_end: bool,
    /// This process's place in the consumer group, once joined ([`Membership::join`], by the
    /// engine before the dataflow starts). `None`: every worker reads its hash share of all
    /// partitions (a single process; tools and tests).
    pub membership: Option<Membership>,
}

impl KafkaSpec {
    /// Parses `kafka://host:port[,host:port...]/<prefix>[?start=latest&group_id=g]` (the
    /// `kafka://` prefix included).
    pub fn parse(text: &str) -> Result<KafkaSpec, SourceError> {
        let err = |msg: &str| {
            SourceError::Config(format!(
                "kafka source `{text}`: {msg} (expected kafka://host:port/<topic-prefix>)"
            ))
        };
        let rest = text
            .strip_prefix("kafka://")
            .ok_or_else(|| err("must start with kafka://"))?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (brokers, prefix) = rest.split_once('/').ok_or_else(|| err("no topic prefix"))?;
        if brokers.is_empty() || brokers.split(',').any(|b| b.trim().is_empty()) {
            return Err(err("no broker address"));
        }
        check_topic_name(prefix).map_err(|msg| err(&msg))?;
        let mut spec = KafkaSpec {
            brokers: brokers.to_owned(),
            topics: Topics::Prefix(prefix.to_owned()),
            group_id: None,
            start: StartFrom::Earliest,
            properties: BTreeMap::new(),
            stop_at_end: false,
            membership: None,
        };
        for item in query.into_iter().flat_map(|q| q.split('&')) {
            match item.split_once('=') {
                Some(("start", value)) => spec.start = StartFrom::parse(value)?,
                Some(("group_id" | "group", value)) if !value.is_empty() => {
                    spec.group_id = Some(value.to_owned())
                }
                _ => return Err(err(&format!("unknown option `{item}` (start, group_id)"))),
            }
        }
        Ok(spec)
    }

    /// The consumer group id: the configured one, or `pinstream`.
    pub fn group(&self) -> String {
        self.group_id
            .clone()
            .unwrap_or_else(|| "pinstream".to_owned())
    }

    /// The client configuration shared by the consumer and the producer: brokers, then the
    /// job's properties over everything else.
    fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// A topic name or prefix Kafka accepts: 1..249 of `[A-Za-z0-9._-]`.
fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty topic prefix".into());
    }
    if name.len() > 240
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "topic prefix `{name}` may only hold letters, digits, `.`, `_` and `-`"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Client context: librdkafka's logs and errors through tracing, rate limited
// ---------------------------------------------------------------------------------------------

/// Logs librdkafka's warnings and errors at most once per [`WARN_INTERVAL`]: a broker that is
/// down makes librdkafka retry (and complain) many times a second.
#[derive(Default)]
pub struct Context {
    last_warning: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
    /// Delivery failures (producer only).
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl Context {
    fn warn(&self, what: &str) {
        let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < WARN_INTERVAL) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(Instant::now());
        let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
        tracing::warn!(suppressed, "kafka: {what}");
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => self.warn(&format!("{facility}: {message}")),
            _ => tracing::debug!(target: "librdkafka", "{facility}: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if is_outage(&error) {
            OUTAGE.down(reason);
        }
        self.warn(&format!("{error}: {reason}"));
    }
}

impl ConsumerContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            let mut first = self.first_failure.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert_with(|| error.to_string());
        }
    }
}

/// A client could not be made: a bad property is a configuration error.
fn config_error(spec: &KafkaSpec, error: KafkaError) -> SourceError {
    SourceError::Config(format!("kafka {}: {error}", spec.brokers))
}

// ---------------------------------------------------------------------------------------------
// Broker outages
// ---------------------------------------------------------------------------------------------

/// Whether the brokers are unreachable now, and how many outages began since start
/// (process-wide: every client of every Kafka source reports here).
struct Outage {
    down_since: Mutex<Option<Instant>>,
    count: AtomicU64,
}

static OUTAGE: Outage = Outage {
    down_since: Mutex::new(None),
    count: AtomicU64::new(0),
};

impl Outage {
    fn down(&self, what: &str) {
        let mut since = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        if since.is_none() {
            *since = Some(Instant::now());
            self.count.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "kafka brokers unreachable ({what}): retrying with backoff until they return"
            );
        }
    }

    fn up(&self) {
        let mut since = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = since.take() {
            tracing::warn!(
                seconds = at.elapsed().as_secs_f64(),
                "kafka brokers reachable again: resuming"
            );
        }
    }
}

/// `(down now, outages since start)`, for `/metrics`.
pub fn broker_outage() -> (bool, u64) {
    let down = OUTAGE
        .down_since
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_some();
    (down, OUTAGE.count.load(Ordering::Relaxed))
}

/// Errors meaning the brokers cannot be reached (as opposed to a bad request).
fn is_outage(error: &KafkaError) -> bool {
    let code = match error {
        KafkaError::Global(code)
        | KafkaError::MessageConsumption(code)
        | KafkaError::MetadataFetch(code) => *code,
        _ => return false,
    };
    matches!(
        code,
        RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::NetworkException
    )
}

// ---------------------------------------------------------------------------------------------
// Group membership: which partitions this process reads
// ---------------------------------------------------------------------------------------------

/// A topic-partition: topic name and partition number.
type TopicPartition = (String, i32);

/// What the group gave this process.
#[derive(Debug, Default)]
struct Assignment {
    /// Counts every change (assign or revoke); a dataflow that started at another generation
    /// is stale.
    generation: u64,
    /// The partitions, or `None` between a revoke and the next assign (and before the first).
    partitions: Option<BTreeSet<TopicPartition>>,
}

/// The consumer context of a [`Membership`]: records the assignment on every rebalance and
/// pauses the assigned partitions (the membership consumer never reads; the workers do).
#[derive(Default)]
struct GroupContext {
    log: Context,
    assignment: Mutex<Assignment>,
    changed: Condvar,
    /// Offsets to commit to the group (the latest per partition), taken by the poll thread.
    to_commit: Mutex<BTreeMap<TopicPartition, i64>>,
    /// The poll thread is committing.
    committing: AtomicBool,
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.log.log(level, facility, message)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason)
    }
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut assignment = self.assignment.lock().unwrap_or_else(|p| p.into_inner());
        assignment.generation += 1;
        match rebalance {
            Rebalance::Assign(list) => {
                if let Err(error) = consumer.pause(list) {
                    tracing::warn!(%error, "kafka: pausing the membership consumer");
                }
                // The whole assignment (a cooperative rebalance hands over only the change).
                let partitions = current_assignment(consumer)
                    .unwrap_or_else(|| list.elements().iter().map(topic_partition).collect());
                tracing::info!(
                    partitions = partitions.len(),
                    generation = assignment.generation,
                    "kafka group assigned partitions to this process"
                );
                assignment.partitions = Some(partitions);
            }
            Rebalance::Revoke(_) => {
                tracing::info!(
                    generation = assignment.generation,
                    "kafka group revoked this process's partitions"
                );
                // What is left (a cooperative rebalance revokes only some); none: wait for
                // the next assignment.
                assignment.partitions = current_assignment(consumer).filter(|p| !p.is_empty());
            }
            Rebalance::Error(error) => {
                tracing::warn!(%error, "kafka group rebalance failed");
                assignment.partitions = None;
            }
        }
        self.changed.notify_all();
    }
}

type GroupConsumer = BaseConsumer<GroupContext>;

fn topic_partition(
    element: &rdkafka::topic_partition_list::TopicPartitionListElem<'_>,
) -> TopicPartition {
    (element.topic().to_owned(), element.partition())
}

/// The membership consumer's assignment now.
fn current_assignment(consumer: &GroupConsumer) -> Option<BTreeSet<TopicPartition>> {
    let list = consumer.assignment().ok()?;
    Some(list.elements().iter().map(topic_partition).collect())
}

/// This process's membership in the job's consumer group. Shared by every worker and every
/// dataflow restart of the process (cloning shares it), so restarting the dataflow does not
/// make the process leave and rejoin the group.
#[derive(Clone)]
pub struct Membership {
    consumer: Arc<GroupConsumer>,
    _stop: Arc<StopOnDrop>,
    /// The engine's shutdown flag: waiting for an assignment ends when it is set.
    shutdown: Arc<AtomicBool>,
}

/// Stops the membership's poll thread when the last clone is dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl fmt::Debug for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Membership")
    }
}

impl PartialEq for Membership {
    fn eq(&self, other: &Membership) -> bool {
        Arc::ptr_eq(&self.consumer, &other.consumer)
    }
}

/// How long a dataflow (re)start waits for the group to assign partitions before saying so
/// (it keeps waiting).
const ASSIGNMENT_WARN: Duration = Duration::from_secs(30);

impl Membership {
    /// Joins the group of `spec` (checking first that the brokers answer: an unreachable
    /// cluster is a clear error at start) and keeps polling it on a thread of its own.
    pub fn join(spec: &KafkaSpec, shutdown: Arc<AtomicBool>) -> Result<Membership, SourceError> {
        let topics = spec.topics.resolve()?;
        let config = spec.client_config(&[
            ("group.id", &spec.group()),
            ("client.id", "pinstream-group"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("allow.auto.create.topics", "false"),
            // A dead process's partitions move on after this long (and a join waits about
            // half of it on some brokers); librdkafka's 45 s would stall a restart.
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "1000"),
            // It never reads: buffer as little as possible before the pause takes effect.
            ("queued.max.messages.kbytes", "64"),
            ("topic.metadata.refresh.interval.ms", "10000"),
        ]);
        let consumer: GroupConsumer = config
            .create_with_context(GroupContext::default())
            .map_err(|e| config_error(spec, e))?;
        let names: Vec<&str> = topics.iter().map(|(t, _)| t.as_str()).collect();
        let mut last = None;
        let mut reachable = false;
        for attempt in 1..=OPEN_ATTEMPTS {
            match consumer.fetch_metadata(None, OPEN_TIMEOUT) {
                Ok(_) => {
                    reachable = true;
                    break;
                }
                Err(error) => {
                    tracing::warn!(attempt, brokers = spec.brokers, %error, "kafka metadata");
                    last = Some(error);
                }
            }
        }
        if !reachable {
            return Err(SourceError::Unavailable(format!(
                "kafka brokers {} unreachable after {OPEN_ATTEMPTS} attempts of {}s: {}",
                spec.brokers,
                OPEN_TIMEOUT.as_secs(),
                last.map(|e| e.to_string()).unwrap_or_default()
            )));
        }
        consumer
            .subscribe(&names)
            .map_err(|e| config_error(spec, e))?;
        let consumer = Arc::new(consumer);
        let stop = Arc::new(AtomicBool::new(false));
        let weak = Arc::downgrade(&consumer);
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("pinstream-kafka-group".into())
            .spawn(move || poll_membership(weak, stopped))
            .map_err(|e| SourceError::Config(format!("starting the kafka group thread: {e}")))?;
        tracing::info!(
            group = spec.group(),
            brokers = spec.brokers,
            "kafka group joining"
        );
        Ok(Membership {
            consumer,
            _stop: Arc::new(StopOnDrop(stop)),
            shutdown,
        })
    }

    /// The generation now (changes with every rebalance).
    fn generation(&self) -> u64 {
        self.consumer
            .context()
            .assignment
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .generation
    }

    /// Waits until the group has assigned this process its partitions (between a revoke and
    /// the next assign there are none to read); returns them with their generation. Returns
    /// none at once when the engine is shutting down.
    fn assigned(&self) -> (u64, BTreeSet<TopicPartition>) {
        let context = self.consumer.context();
        let mut assignment = context.assignment.lock().unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        let mut warned = false;
        loop {
            if let Some(partitions) = &assignment.partitions {
                return (assignment.generation, partitions.clone());
            }
            if self.shutdown.load(Ordering::Relaxed) {
                return (assignment.generation, BTreeSet::new());
            }
            if !warned && started.elapsed() > ASSIGNMENT_WARN {
                warned = true;
                tracing::warn!(
                    waited = ?started.elapsed(),
                    "kafka group has not assigned partitions yet: still waiting"
                );
            }
            assignment = context
                .changed
                .wait_timeout(assignment, Duration::from_millis(500))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Queues `list` for the group (monitoring only); the poll thread commits it, so a slow or
    /// absent broker never stalls a worker.
    fn commit(&self, list: &TopicPartitionList) {
        let context = self.consumer.context();
        let mut queued = context.to_commit.lock().unwrap_or_else(|p| p.into_inner());
        for element in list.elements() {
            if let Offset::Offset(offset) = element.offset() {
                queued.insert((element.topic().to_owned(), element.partition()), offset);
            }
        }
    }

    /// Waits (up to `timeout`) for the queued offsets to reach the group: the last batch's
    /// offsets are not lost when the run ends.
    pub fn flush(&self, timeout: Duration) {
        let context = self.consumer.context();
        let started = Instant::now();
        while started.elapsed() < timeout {
            let idle = context
                .to_commit
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
                && !context.committing.load(Ordering::Acquire);
            if idle {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Commits the queued offsets of the partitions the process still holds (a revoked
/// partition's offsets belong to its new owner now).
fn commit_queued(consumer: &GroupConsumer) {
    let context = consumer.context();
    context.committing.store(true, Ordering::Release);
    let queued = std::mem::take(&mut *context.to_commit.lock().unwrap_or_else(|p| p.into_inner()));
    let assigned = context
        .assignment
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .partitions
        .clone()
        .unwrap_or_default();
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in queued {
        if assigned.contains(&(topic.clone(), partition)) {
            let _ = list.add_partition_offset(&topic, partition, Offset::Offset(offset));
        }
    }
    if list.count() > 0
        && let Err(error) = consumer.commit(&list, rdkafka::consumer::CommitMode::Sync)
    {
        tracing::debug!("committing offsets to the consumer group: {error}");
    }
    context.committing.store(false, Ordering::Release);
}

/// Serves the membership consumer's callbacks (rebalances, errors) until `stop`; it never
/// gets messages (its partitions are paused), and drops any fetched before the pause.
fn poll_membership(consumer: Weak<GroupConsumer>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let Some(consumer) = consumer.upgrade() else {
            return;
        };
        match consumer.poll(Duration::from_millis(100)) {
            Some(Err(error)) if is_outage(&error) => OUTAGE.down(&error.to_string()),
            Some(Err(KafkaError::PartitionEOF(_))) | Some(Ok(_)) | None => {}
            Some(Err(error)) => consumer.context().log.warn(&error.to_string()),
        }
        commit_queued(&consumer);
    }
    if let Some(consumer) = consumer.upgrade() {
        consumer.unsubscribe();
    }
}

// ---------------------------------------------------------------------------------------------
// The source
// ---------------------------------------------------------------------------------------------

/// One topic-partition this worker reads.
#[derive(Debug)]
struct Part {
    id: PartitionId,
    topic: String,
    partition: i32,
    stream: Stream,
    /// The next offset to read; `None` for a partition found after open until its first
    /// message (it is read from its beginning).
    next: Option<i64>,
    /// The high watermark at open, for `--until-done`; `None` for partitions found later
    /// (not waited for).
    end: Option<i64>,
    /// The low watermark at open (where `earliest` starts).
    low: i64,
    /// `end` has been raised to the high watermark of the first fetch response. Some brokers
    /// (tansu 0.6) answer ListOffsets with the start of the last batch + 1, not the end, so
    /// the watermark queried at open is only a lower bound.
    end_seen: bool,
}

impl Part {
    fn done(&self) -> bool {
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
    consumer: Arc<KafkaConsumer>,
    parts: Vec<Part>,
    /// topic -> partition number -> index into `parts`.
    index: HashMap<String, HashMap<i32, usize>>,
    /// Partition counts per topic from the background metadata refresh.
    discovered: Receiver<Vec<(String, i32)>>,
    stop_refresh: Arc<AtomicBool>,
    /// `seek` has run (partitions are assigned).
    assigned: bool,
    /// In a group: the membership and the generation whose partitions this instance reads.
    group: Option<(Membership, u64, BTreeSet<TopicPartition>)>,
}

/// The worker a partition belongs to: a stable hash of its id.
fn owner(id: &str, peers: usize) -> usize {
    (xxhash_rust::xxh3::xxh3_64(id.as_bytes()) % peers as u64) as usize
}

fn partition_id(topic: &str, partition: i32) -> PartitionId {
    format!("kafka:{topic}/{partition}").into()
}

impl KafkaSource {
    /// Connects, reads the topics' partitions (retrying; a clear error when the brokers
    /// cannot be reached) and the watermarks of this worker's share.
    pub fn new(spec: &KafkaSpec, worker: usize, peers: usize) -> Result<KafkaSource, SourceError> {
        let topics = spec.topics.resolve()?;
        let group = spec.group();
        // In a group, read only what the group gave this process (waiting for it).
        let membership = spec.membership.as_ref().map(|m| {
            let (generation, partitions) = m.assigned();
            (m.clone(), generation, partitions)
        });
        let config = spec.client_config(&[
            ("group.id", &group),
            ("client.id", &format!("pinstream-{worker}")),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "false"),
            ("allow.auto.create.topics", "false"),
            // Larger fetches: the engine reads in chunks of thousands.
            ("fetch.wait.max.ms", "100"),
            ("queued.min.messages", "100000"),
            // librdkafka's prefetch buffer is the only buffer ahead of the dataflow (which
            // itself reads at most BATCHES_IN_FLIGHT batches ahead of the last commit): bound it
            // to 16 MiB per worker (librdkafka's default is 64 MiB), whatever the backlog.
            ("queued.max.messages.kbytes", "16384"),
        ]);
        let consumer: KafkaConsumer = config
            .create_with_context(Context::default())
            .map_err(|e| config_error(spec, e))?;
        let counts = open_metadata(&consumer, spec, &topics)?;
        let mut source = KafkaSource {
            spec: spec.clone(),
            worker,
            peers,
            topics: topics.clone(),
            consumer: Arc::new(consumer),
            parts: Vec::new(),
            index: HashMap::new(),
            discovered: channel().1,
            stop_refresh: Arc::new(AtomicBool::new(false)),
            assigned: false,
            group: membership,
        };
        for (topic, count) in counts {
            let stream = topics.iter().find(|(t, _)| *t == topic).expect("asked").1;
            for partition in 0..count {
                let id = partition_id(&topic, partition);
                if !source.owns(&topic, partition, &id) {
                    continue;
                }
                let (low, high) = source
                    .consumer
                    .fetch_watermarks(&topic, partition, OPEN_TIMEOUT)
                    .map_err(|e| {
                        SourceError::Unavailable(format!(
                            "kafka {}: watermarks of {topic}/{partition}: {e}",
                            spec.brokers
                        ))
                    })?;
                tracing::debug!(partition = %id, low, high, "kafka watermarks at open");
                source.add(Part {
                    id,
                    topic: topic.clone(),
                    partition,
                    stream,
                    next: None,
                    end: Some(high),
                    low,
                    end_seen: false,
                });
            }
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
        self.index
            .entry(part.topic.clone())
            .or_default()
            .insert(part.partition, self.parts.len());
        self.parts.push(part);
    }

    /// (Re-)assigns every partition at its next offset (or its beginning when unknown).
    fn assign(&self) -> Result<(), SourceError> {
        let mut list = TopicPartitionList::with_capacity(self.parts.len());
        for part in &self.parts {
            let offset = part.next.map_or(Offset::Beginning, Offset::Offset);
            list.add_partition_offset(&part.topic, part.partition, offset)
                .map_err(|e| config_error(&self.spec, e))?;
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
                        low: 0,
                        end_seen: true,
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
                part.end = part.end.map(|end| end.max(high));
                part.end_seen = true;
            }
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
                if part.next.is_some_and(|next| at > next) {
                    part.next = Some(at);
                }
            }
        }
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        self.stop_refresh.store(true, Ordering::Relaxed);
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
                        OUTAGE.up();
                        if found.send(counts).is_err() {
                            return;
                        }
                    }
                    Err(error) => {
                        if is_outage(&error) {
                            OUTAGE.down(&format!("metadata: {error}"));
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
            part.next = match (from.get(&part.id), part.end) {
                (Some(&stored), _) if stored < 0 => {
                    return Err(SourceError::Config(format!(
                        "{}: stored position {stored} is negative",
                        part.id
                    )));
                }
                (Some(&stored), _) => Some(stored),
                (None, None) => None,
                (None, Some(high)) => match self.spec.start {
                    StartFrom::Earliest => Some(part.low),
                    StartFrom::Latest => Some(high),
                    StartFrom::Timestamp(ms) => {
                        by_time
                            .add_partition_offset(&part.topic, part.partition, Offset::Offset(ms))
                            .map_err(|e| config_error(&self.spec, e))?;
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
                    self.parts[i].next = Some(at);
                }
            }
        }
        self.assign()?;
        self.assigned = true;
        Ok(())
    }

    fn poll(&mut self, max: usize, out: &mut Vec<RawRecord>) -> Result<PollStatus, SourceError> {
        if !self.assigned {
            self.seek(&Positions::new())?;
        }
        self.discover()?;
        let before = out.len();
        let mut now = None;
        for _ in 0..max {
            let message = match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(message)) => message,
                Some(Err(KafkaError::PartitionEOF(_))) => continue,
                Some(Err(error)) => {
                    if is_outage(&error) {
                        OUTAGE.down(&error.to_string());
                    }
                    self.consumer.context().warn(&error.to_string());
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
            let part = &mut self.parts[i];
            let offset = message.offset();
            part.next = Some(offset + 1);
            let Some(payload) = message.payload() else {
                // A tombstone: nothing to clean, but consumed.
                continue;
            };
            let arrival = match message.timestamp() {
                Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) if ms >= 0 => {
                    ms.saturating_mul(1000)
                }
                _ => *now.get_or_insert_with(crate::now_micros),
            };
            out.push(RawRecord {
                stream: Some(part.stream),
                payload: payload.to_vec(),
                partition: part.id.clone(),
                offset,
                arrival,
            });
        }
        if out.len() > before {
            OUTAGE.up();
            return Ok(PollStatus::Ready);
        }
        self.catch_up_positions();
        if self.spec.stop_at_end {
            self.confirm_ends();
        }
        if self.spec.stop_at_end && self.parts.iter().all(Part::done) {
            return Ok(PollStatus::Exhausted);
        }
        Ok(PollStatus::Idle)
    }

    fn positions(&self) -> Positions {
        self.parts
            .iter()
            .filter_map(|p| Some((p.id.clone(), p.next?)))
            .collect()
    }

    /// Commits the committed positions of this worker's partitions to the consumer group, so
    /// `kafka-consumer-groups` and lag exporters see progress (once per batch: a synchronous
    /// round trip, so the last one is not lost when the run ends).
    fn committed(&mut self, positions: &Positions) {
        let mut list = TopicPartitionList::new();
        for part in &self.parts {
            if let Some(&position) = positions.get(&part.id) {
                let _ = list.add_partition_offset(
                    &part.topic,
                    part.partition,
                    Offset::Offset(position),
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
                if let Err(error) = self
                    .consumer
                    .commit(&list, rdkafka::consumer::CommitMode::Async)
                {
                    tracing::warn!("committing offsets to the consumer group: {error}");
                }
            }
        }
    }

    fn reassigned(&self) -> bool {
        self.group
            .as_ref()
            .is_some_and(|(membership, generation, _)| membership.generation() != *generation)
    }
}

// ---------------------------------------------------------------------------------------------
// Producing the emulator's events (`pinstream emulate --to kafka://...`)
// ---------------------------------------------------------------------------------------------

/// Creates `<prefix>.pin/.geo/.user` with `partitions` partitions when missing (an existing
/// topic is left as it is), then produces events `0..spec.events` of the emulator: each
/// event's three messages keyed by the post index, so a post's records land in the same
/// partition number of each topic. Paced at `rate` events per second when given; `progress`
/// is called with the number of events sent so far. Returns the events delivered.
pub fn produce_events(
    target: &KafkaSpec,
    spec: &EmulatorSpec,
    partitions: i32,
    rate: Option<f64>,
    mut progress: impl FnMut(u64),
) -> Result<u64, SourceError> {
    let Topics::Prefix(prefix) = &target.topics else {
        return Err(SourceError::Config(
            "emulate --to kafka:// needs a topic prefix".into(),
        ));
    };
    let events = spec
        .events
        .ok_or_else(|| SourceError::Config("emulate needs a number of events (--events)".into()))?;
    create_topics(target, prefix, partitions)?;

    let producer: BaseProducer<Context> = target
        .client_config(&[
            ("enable.idempotence", "true"),
            ("linger.ms", "20"),
            ("batch.num.messages", "10000"),
            ("queue.buffering.max.messages", "1000000"),
            ("compression.type", "lz4"),
            ("message.timeout.ms", "120000"),
        ])
        .create_with_context(Context::default())
        .map_err(|e| config_error(target, e))?;
    let topics = Stream::ALL.map(|s| format!("{prefix}.{s}"));
    let emulator = Emulator::new(spec);
    let started = Instant::now();
    let mut key = String::new();
    for seq in 0..events {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(seq as f64 / rate);
            let now = Instant::now();
            if due > now {
                producer.poll(Duration::ZERO);
                std::thread::sleep(due - now);
            }
        }
        let event = emulator.event(seq);
        key.clear();
        use std::fmt::Write as _;
        let _ = write!(key, "{}", event.index);
        for (topic, stream) in topics.iter().zip(Stream::ALL) {
            let mut record = BaseRecord::to(topic)
                .key(key.as_str())
                .payload(event.message(stream));
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(10));
                    }
                    Err((error, _)) => {
                        return Err(SourceError::Unavailable(format!(
                            "kafka {}: producing to {topic}: {error}",
                            target.brokers
                        )));
                    }
                }
            }
        }
        if seq % 1024 == 0 {
            producer.poll(Duration::ZERO);
            progress(seq);
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(|e| SourceError::Unavailable(format!("kafka {}: flush: {e}", target.brokers)))?;
    progress(events);
    let context = producer.context();
    let failed = context.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = context
            .first_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        return Err(SourceError::Unavailable(format!(
            "kafka {}: {failed} messages not delivered (first: {first})",
            target.brokers
        )));
    }
    Ok(events)
}

/// Creates the three topics of `prefix` when missing.
fn create_topics(target: &KafkaSpec, prefix: &str, partitions: i32) -> Result<(), SourceError> {
    let admin: AdminClient<DefaultClientContext> = target
        .client_config(&[])
        .create()
        .map_err(|e| config_error(target, e))?;
    let names = Stream::ALL.map(|s| format!("{prefix}.{s}"));
    let new: Vec<NewTopic> = names
        .iter()
        .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(1)))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SourceError::Config(format!("starting a runtime: {e}")))?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = runtime
        .block_on(admin.create_topics(&new, &options))
        .map_err(|e| {
            SourceError::Unavailable(format!("kafka {}: create topics: {e}", target.brokers))
        })?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(topic, partitions, "kafka topic created"),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::info!(topic, "kafka topic exists")
            }
            Err((topic, code)) => {
                return Err(SourceError::Unavailable(format!(
                    "kafka {}: create topic {topic}: {code}",
                    target.brokers
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_url_parsing() {
        let spec = KafkaSpec::parse("kafka://127.0.0.1:9092/abc").unwrap();
        assert_eq!(spec.brokers, "127.0.0.1:9092");
        assert_eq!(spec.topics, Topics::Prefix("abc".into()));
        assert_eq!(spec.start, StartFrom::Earliest);
        assert_eq!(spec.group_id, None);
        let topics = spec.topics.resolve().unwrap();
        assert_eq!(
            topics,
            [
                ("abc.pin".to_owned(), Stream::Pin),
                ("abc.geo".to_owned(), Stream::Geo),
                ("abc.user".to_owned(), Stream::User)
            ]
        );
        let spec =
            KafkaSpec::parse("kafka://b1:9092,b2:9092/x-y.z?start=latest&group_id=g").unwrap();
        assert_eq!(spec.brokers, "b1:9092,b2:9092");
        assert_eq!(spec.start, StartFrom::Latest);
        assert_eq!(spec.group_id.as_deref(), Some("g"));
        for bad in [
            "kafka://",
            "kafka://host:9092",
            "kafka://host:9092/",
            "kafka:///abc",
            "kafka://host:9092/a/b",
            "kafka://host:9092/abc?speed=3",
            "kafka://host:9092/abc?start=soon",
        ] {
            match KafkaSpec::parse(bad) {
                Err(SourceError::Config(msg)) => assert!(msg.contains("kafka"), "{bad}: {msg}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn kafka_start_parsing() {
        assert_eq!(StartFrom::parse("earliest").unwrap(), StartFrom::Earliest);
        assert_eq!(StartFrom::parse("LATEST").unwrap(), StartFrom::Latest);
        let t = StartFrom::Timestamp(1_714_521_600_000);
        assert_eq!(StartFrom::parse("2024-05-01T00:00:00Z").unwrap(), t);
        assert_eq!(StartFrom::parse("2024-05-01T02:00:00+02:00").unwrap(), t);
        assert_eq!(StartFrom::parse("2024-05-01 00:00:00").unwrap(), t);
        assert_eq!(StartFrom::parse("2024-05-01").unwrap(), t);
        assert_eq!(StartFrom::parse("1714521600000").unwrap(), t);
        assert!(StartFrom::parse("-5").is_err());
        assert!(StartFrom::parse("yesterday").is_err());
    }

    #[test]
    fn kafka_topic_lists_need_a_stream_token() {
        let topics = Topics::List(vec!["events-pin".into(), "raw.user".into()]);
        assert_eq!(
            topics.resolve().unwrap(),
            [
                ("events-pin".to_owned(), Stream::Pin),
                ("raw.user".to_owned(), Stream::User)
            ]
        );
        assert!(Topics::List(vec!["pinterest".into()]).resolve().is_err());
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
        match KafkaSource::new(&spec, 0, 1) {
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
            KafkaSource::new(&spec, 0, 1),
            Err(SourceError::Config(_))
        ));
    }
}
