//! The process's place in the job's consumer group: which partitions this process reads
//! (see the assignment and rebalance notes in `source.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::KafkaSpec;
use super::client::{Context, OPEN_ATTEMPTS, OPEN_TIMEOUT, brokers_down, config_error, is_outage};
use crate::connectors::{JobContext, SourceError};

/// A topic-partition: topic name and partition number.
pub(super) type TopicPartition = (String, i32);

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
    /// The group was seen shared with another process (warned once).
    shared: AtomicBool,
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
        let mut assignment = self.assignment.lock();
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
                // A later assignment means the group changed: other processes read some of
                // the partitions, and each process deduplicates only what it reads.
                if assignment.generation > 1 && !self.shared.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "kafka: this consumer group is shared with other processes; each deduplicates and aggregates only what it reads, which is exact only when every re-send of a message goes to the same partition (keyed by post). For one job over several processes, run them as a cluster (--hosts)"
                    );
                }
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

/// How long a dataflow (re)start waits for the group to assign partitions before saying so
/// (it keeps waiting).
const ASSIGNMENT_WARN: Duration = Duration::from_secs(30);

impl Membership {
    /// Joins the group of `spec` (checking first that the brokers answer: an unreachable
    /// cluster is a clear error at start) and keeps polling it on a thread of its own.
    pub fn join(spec: &KafkaSpec, job: &JobContext) -> Result<Membership, SourceError> {
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
            .create_with_context(GroupContext {
                log: Context::new(&job.stats),
                ..GroupContext::default()
            })
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
            .map_err(|source| SourceError::Thread {
                purpose: "kafka group",
                source,
            })?;
        tracing::info!(
            group = spec.group(),
            brokers = spec.brokers,
            "kafka group joining"
        );
        Ok(Membership {
            consumer,
            _stop: Arc::new(StopOnDrop(stop)),
            shutdown: job.shutdown.clone(),
        })
    }

    /// The generation now (changes with every rebalance).
    pub(super) fn generation(&self) -> u64 {
        self.consumer.context().assignment.lock().generation
    }

    /// Waits until the group has assigned this process its partitions (between a revoke and
    /// the next assign there are none to read); returns them with their generation. Returns
    /// none at once when the engine is shutting down.
    pub(super) fn assigned(&self) -> (u64, BTreeSet<TopicPartition>) {
        let context = self.consumer.context();
        let mut assignment = context.assignment.lock();
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
            context
                .changed
                .wait_for(&mut assignment, Duration::from_millis(500));
        }
    }

    /// Queues `list` for the group (monitoring only); the poll thread commits it, so a slow or
    /// absent broker never stalls a worker.
    pub(super) fn commit(&self, list: &TopicPartitionList) {
        let context = self.consumer.context();
        let mut queued = context.to_commit.lock();
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
            let idle =
                context.to_commit.lock().is_empty() && !context.committing.load(Ordering::Acquire);
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
    let queued = std::mem::take(&mut *context.to_commit.lock());
    let assigned = context
        .assignment
        .lock()
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
            Some(Err(error)) if is_outage(&error) => {
                brokers_down(&consumer.context().log.stats, &error.to_string())
            }
            Some(Err(KafkaError::PartitionEOF(_))) | Some(Ok(_)) | None => {}
            Some(Err(error)) => consumer.context().log.warn(&error.to_string()),
        }
        commit_queued(&consumer);
    }
    if let Some(consumer) = consumer.upgrade() {
        consumer.unsubscribe();
    }
}
