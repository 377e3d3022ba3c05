//! The HTTP ingest source: messages POSTed or PUT to the engine's HTTP server (the bodies the
//! original emulators send to the REST proxy and the API Gateway, see `serve::ingest`).
//!
//! A request is acknowledged only once the tables hold its messages: the handler queues the
//! messages with a one-shot reply; a worker's source takes them from the queue at the next
//! offsets of its partition (`http:w<worker>/<peers>`), and answers the request when the
//! committed positions (`Source::committed`) reach past its last message. A crash before the
//! commit answers nothing; the client sends again, and deduplication keeps the rows once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::HttpSettings;
use crate::connectors::{
    JobContext, Offset, PartitionId, PollStatus, Position, Positions, RawRecord, Source,
    SourceError,
};
use crate::stats::Stats;
use crate::stream::Stream;

/// The `(partition, offset)` each message of a request got.
pub type Offsets = Vec<(String, Offset)>;

/// Messages of one request, and where to answer: the offsets they got, once committed.
struct Submission {
    stream: Stream,
    payloads: Vec<Vec<u8>>,
    reply: oneshot::Sender<Offsets>,
    /// When the request was accepted (micros, UTC): its records' arrival, so the time they
    /// wait for a worker counts in the freshness.
    received: i64,
    /// The request's share of `queue_bytes`, given back when a worker takes the messages.
    _bytes: Option<OwnedSemaphorePermit>,
}

/// The queue between the HTTP handlers and the workers' sources, and the admission of
/// requests into it ([`IngestQueue::admit`]). Cheap to clone.
#[derive(Clone)]
pub struct IngestQueue {
    shared: Arc<Shared>,
}

struct Shared {
    limits: HttpSettings,
    queued: Mutex<Queued>,
    /// One permit per admitted request, held until it is answered.
    in_flight: Arc<Semaphore>,
    /// One permit per byte of body read or message queued.
    bytes: Arc<Semaphore>,
    stats: Arc<Stats>,
    /// Set on SIGTERM: the workers stop reading, so nothing new is admitted.
    shutdown: Arc<AtomicBool>,
    /// Requests refused since the current overload began (for its closing log line).
    refused_in_episode: AtomicU64,
    /// When the last request was refused for capacity (micros since the epoch).
    last_overload: AtomicU64,
}

/// An overload ends when no request was refused for capacity for this long: under a
/// sustained flood, admissions and refusals alternate by the millisecond, and one log line
/// per flip would be a line per request again.
const OVERLOAD_QUIET: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Queued {
    submissions: VecDeque<Submission>,
    messages: usize,
    /// The engine has stopped reading ([`IngestQueue::close`]).
    closed: bool,
}

/// Why a request was refused. Nothing of a refused request is stored.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The body is larger than `max_body_bytes` (413, not retried: it will never fit).
    #[error("the body is over {limit} bytes")]
    TooLarge { limit: u64 },
    /// More messages than `max_records` in one request (413).
    #[error("{count} records in one request; at most {limit}")]
    TooManyRecords { count: usize, limit: usize },
    /// `max_in_flight` requests are admitted already (429, retry later).
    #[error("{limit} requests are in flight already; retry later")]
    Busy { limit: usize },
    /// `queue_bytes` or `queue_messages` reached: the tables are slower than the clients
    /// (503, retry later).
    #[error(
        "the ingest queue is full (too many bytes or messages wait for the tables); retry later"
    )]
    QueueFull,
    /// The engine is stopping and reads no more (503, retry against the next run).
    #[error("the engine is stopping; retry later")]
    Stopping,
}

impl Refused {
    /// Its label in `pinstream_ingest_refused_total` (one of [`crate::stats::INGEST_REFUSALS`]).
    pub fn label(&self) -> &'static str {
        match self {
            Refused::TooLarge { .. } => "too_large",
            Refused::TooManyRecords { .. } => "too_many_records",
            Refused::Busy { .. } => "busy",
            Refused::QueueFull => "queue_full",
            Refused::Stopping => "stopping",
        }
    }

    /// Whether it says the engine is over capacity (rather than the request being wrong).
    pub fn is_overload(&self) -> bool {
        matches!(self, Refused::Busy { .. } | Refused::QueueFull)
    }
}

impl Default for IngestQueue {
    fn default() -> Self {
        IngestQueue::new(HttpSettings::default(), &JobContext::default())
    }
}

impl IngestQueue {
    pub fn new(limits: HttpSettings, job: &JobContext) -> Self {
        let bytes = usize::try_from(limits.queue_bytes)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        IngestQueue {
            shared: Arc::new(Shared {
                in_flight: Arc::new(Semaphore::new(
                    limits.max_in_flight.min(Semaphore::MAX_PERMITS),
                )),
                bytes: Arc::new(Semaphore::new(bytes)),
                limits,
                queued: Mutex::new(Queued::default()),
                stats: job.stats.clone(),
                shutdown: job.shutdown.clone(),
                refused_in_episode: AtomicU64::new(0),
                last_overload: AtomicU64::new(0),
            }),
        }
    }

    pub fn limits(&self) -> &HttpSettings {
        &self.shared.limits
    }

    /// Admits a request whose body is `content_length` bytes (`None`: chunked, reserved as
    /// it streams in, [`Admission::reserve`]) before a byte of it is read: a body over the
    /// limit, one request too many or a body that would pass `queue_bytes` is refused here.
    pub fn admit(&self, content_length: Option<u64>) -> Result<Admission, Refused> {
        let limits = &self.shared.limits;
        if self.shared.shutdown.load(Ordering::Relaxed) || self.shared.queued.lock().closed {
            return Err(self.refused(Refused::Stopping));
        }
        if let Some(length) = content_length
            && length > limits.max_body_bytes
        {
            return Err(self.refused(Refused::TooLarge {
                limit: limits.max_body_bytes,
            }));
        }
        let Ok(in_flight) = self.shared.in_flight.clone().try_acquire_owned() else {
            return Err(self.refused(Refused::Busy {
                limit: limits.max_in_flight,
            }));
        };
        let mut admission = Admission {
            queue: self.clone(),
            _in_flight: in_flight,
            bytes: None,
            reserved: 0,
        };
        admission.reserve(content_length.unwrap_or(0))?;
        Ok(admission)
    }

    /// Counts a refusal and logs the start of an overload (once per episode, not per
    /// request: a flood refuses thousands).
    pub fn refused(&self, refused: Refused) -> Refused {
        self.shared.stats.ingest_refused(refused.label());
        if refused.is_overload() {
            self.overloaded(&refused.to_string());
        }
        refused
    }

    /// Marks an overload (a refusal, or a commit slower than the handlers wait for): logged
    /// when it begins; [`IngestQueue::accepted`] logs its end.
    pub fn overloaded(&self, why: &str) {
        let stats = &self.shared.stats;
        self.shared
            .last_overload
            .store(crate::now_micros().max(0) as u64, Ordering::Relaxed);
        if stats.ingest_overload.down() {
            self.shared.refused_in_episode.store(0, Ordering::Relaxed);
            tracing::warn!(
                "HTTP ingest overloaded ({why}): requests get 429/503 with Retry-After until it drains"
            );
        }
        self.shared
            .refused_in_episode
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A request was queued: ends an overload, if one was on and quiet for
    /// [`OVERLOAD_QUIET`].
    fn accepted(&self) {
        let last = self.shared.last_overload.load(Ordering::Relaxed);
        let quiet = (crate::now_micros().max(0) as u64).saturating_sub(last);
        if quiet < OVERLOAD_QUIET.as_micros() as u64 {
            return;
        }
        if let Some(lasted) = self.shared.stats.ingest_overload.up() {
            let refused = self.shared.refused_in_episode.load(Ordering::Relaxed);
            tracing::info!(
                "HTTP ingest accepting again: {refused} requests refused over {:.1} s of overload",
                lasted.saturating_sub(OVERLOAD_QUIET).as_secs_f64()
            );
        }
    }

    /// The engine has stopped reading: new requests are refused, and the queued ones are
    /// answered "not stored" (their reply is dropped), so no client waits for a commit that
    /// will not come.
    pub fn close(&self) {
        let mut queued = self.shared.queued.lock();
        queued.closed = true;
        queued.messages = 0;
        queued.submissions.clear();
    }

    fn take(&self, max: usize) -> Vec<Submission> {
        let mut queued = self.shared.queued.lock();
        let mut taken = Vec::new();
        let mut count = 0;
        while let Some(next) = queued.submissions.front() {
            if count > 0 && count + next.payloads.len() > max {
                break;
            }
            count += next.payloads.len();
            taken.push(queued.submissions.pop_front().expect("front exists"));
        }
        queued.messages -= count;
        taken
    }
}

/// An admitted request: its place among `max_in_flight` (held until it is answered) and
/// the bytes of `queue_bytes` it reserved.
pub struct Admission {
    queue: IngestQueue,
    _in_flight: OwnedSemaphorePermit,
    bytes: Option<OwnedSemaphorePermit>,
    reserved: u64,
}

impl Admission {
    /// Makes the reservation cover `total` bytes of body, as a body without a
    /// `Content-Length` streams in: past `max_body_bytes` or `queue_bytes` the request is
    /// refused and reading stops.
    pub fn reserve(&mut self, total: u64) -> Result<(), Refused> {
        let limits = self.queue.limits();
        if total > limits.max_body_bytes {
            return Err(self.queue.refused(Refused::TooLarge {
                limit: limits.max_body_bytes,
            }));
        }
        if total <= self.reserved {
            return Ok(());
        }
        let more = u32::try_from(total - self.reserved).map_err(|_| {
            self.queue.refused(Refused::TooLarge {
                limit: limits.max_body_bytes,
            })
        })?;
        let Ok(permit) = self.queue.shared.bytes.clone().try_acquire_many_owned(more) else {
            return Err(self.queue.refused(Refused::QueueFull));
        };
        match &mut self.bytes {
            Some(held) => held.merge(permit),
            None => self.bytes = Some(permit),
        }
        self.reserved = total;
        Ok(())
    }

    /// Queues the request's messages (its byte reservation goes with them, given back when
    /// a worker takes them); the receiver yields `(partition, offset)` per message once they
    /// are committed, or fails (sender dropped) if they never will be.
    pub fn submit(
        &mut self,
        stream: Stream,
        payloads: Vec<Vec<u8>>,
    ) -> Result<oneshot::Receiver<Offsets>, Refused> {
        let limits = self.queue.limits();
        if payloads.len() > limits.max_records {
            return Err(self.queue.refused(Refused::TooManyRecords {
                count: payloads.len(),
                limit: limits.max_records,
            }));
        }
        let (reply, answer) = oneshot::channel();
        let mut queued = self.queue.shared.queued.lock();
        if queued.closed {
            drop(queued);
            return Err(self.queue.refused(Refused::Stopping));
        }
        if queued.messages + payloads.len() > limits.queue_messages {
            drop(queued);
            return Err(self.queue.refused(Refused::QueueFull));
        }
        queued.messages += payloads.len();
        queued.submissions.push_back(Submission {
            stream,
            payloads,
            reply,
            received: crate::now_micros(),
            _bytes: self.bytes.take(),
        });
        drop(queued);
        self.reserved = 0;
        self.queue.accepted();
        Ok(answer)
    }
}

/// One worker's share of the ingest: its own partition and offsets.
pub struct HttpSource {
    queue: IngestQueue,
    partition: PartitionId,
    next: Position,
    /// Requests read but not yet committed: (position after the last message, offsets, reply).
    waiting: VecDeque<(Position, Offsets, oneshot::Sender<Offsets>)>,
}

impl HttpSource {
    pub fn new(queue: &IngestQueue, worker: usize, peers: usize) -> Self {
        HttpSource {
            queue: queue.clone(),
            partition: format!("http:w{worker}/{peers}").into(),
            next: Position::START,
            waiting: VecDeque::new(),
        }
    }
}

impl Source for HttpSource {
    fn partitions(&self) -> Vec<PartitionId> {
        vec![self.partition.clone()]
    }

    fn seek(&mut self, from: &Positions) -> Result<(), SourceError> {
        self.next = from
            .get(&self.partition)
            .copied()
            .unwrap_or(Position::START);
        Ok(())
    }

    fn poll(&mut self, max: usize, out: &mut Vec<RawRecord>) -> Result<PollStatus, SourceError> {
        let submissions = self.queue.take(max);
        if submissions.is_empty() {
            return Ok(PollStatus::Idle);
        }
        for Submission {
            stream,
            payloads,
            reply,
            received: arrival,
            ..
        } in submissions
        {
            let mut offsets = Vec::with_capacity(payloads.len());
            for payload in payloads {
                let offset = self.next.next_offset();
                offsets.push((self.partition.to_string(), offset));
                out.push(RawRecord {
                    stream: Some(stream),
                    payload: payload.into(),
                    partition: self.partition.clone(),
                    offset,
                    arrival,
                });
                self.next = offset.next();
            }
            self.waiting.push_back((self.next, offsets, reply));
        }
        Ok(PollStatus::Ready)
    }

    fn positions(&self) -> Positions {
        Positions::from([(self.partition.clone(), self.next)])
    }

    fn committed(&mut self, positions: &Positions) {
        let Some(&committed) = positions.get(&self.partition) else {
            return;
        };
        while self
            .waiting
            .front()
            .is_some_and(|(end, _, _)| *end <= committed)
        {
            let (_, offsets, reply) = self.waiting.pop_front().expect("front exists");
            let _ = reply.send(offsets); // the client may have gone
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_answered_only_once_committed() {
        let queue = IngestQueue::default();
        let before = crate::now_micros();
        let mut answer = queue
            .admit(Some(4))
            .unwrap()
            .submit(Stream::Pin, vec![b"{}".to_vec(), b"{}".to_vec()])
            .unwrap();
        let mut source = HttpSource::new(&queue, 0, 1);
        source
            .seek(&Positions::from([("http:w0/1".into(), Position::new(5))]))
            .unwrap();
        let accepted = crate::now_micros();
        // The records arrive when the request was accepted, not when a worker took them.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut out = Vec::new();
        assert_eq!(source.poll(10, &mut out).unwrap(), PollStatus::Ready);
        assert_eq!(
            out.iter().map(|r| r.offset.value()).collect::<Vec<_>>(),
            vec![5, 6]
        );
        assert!(
            out.iter().all(|r| (before..=accepted).contains(&r.arrival)),
            "arrivals {:?} not within {before}..={accepted}",
            out.iter().map(|r| r.arrival).collect::<Vec<_>>()
        );
        source.committed(&Positions::from([("http:w0/1".into(), Position::new(6))]));
        assert!(answer.try_recv().is_err(), "not all committed yet");
        source.committed(&Positions::from([("http:w0/1".into(), Position::new(7))]));
        assert_eq!(
            answer.try_recv().unwrap(),
            vec![
                ("http:w0/1".to_owned(), Offset::new(5)),
                ("http:w0/1".to_owned(), Offset::new(6))
            ]
        );
        assert_eq!(source.poll(10, &mut out).unwrap(), PollStatus::Idle);
    }

    fn limits(max_in_flight: usize, queue_bytes: u64, queue_messages: usize) -> IngestQueue {
        IngestQueue::new(
            HttpSettings {
                max_in_flight,
                queue_bytes,
                queue_messages,
                max_body_bytes: 1000,
                max_records: 10,
            },
            &JobContext::default(),
        )
    }

    #[test]
    fn a_full_queue_refuses_until_a_worker_takes_the_messages() {
        let queue = limits(100, 1_000_000, 5);
        let mut first = queue.admit(Some(10)).unwrap();
        let _answer = first.submit(Stream::Geo, vec![Vec::new(); 5]).unwrap();
        let mut second = queue.admit(Some(10)).unwrap();
        assert_eq!(
            second.submit(Stream::Geo, vec![Vec::new()]).unwrap_err(),
            Refused::QueueFull
        );
        let mut source = HttpSource::new(&queue, 0, 1);
        source.poll(100, &mut Vec::new()).unwrap();
        assert!(second.submit(Stream::Geo, vec![Vec::new()]).is_ok());
        assert_eq!(queue.shared.stats.ingest_refusals("queue_full"), 1);
    }

    #[test]
    fn bodies_are_refused_before_they_are_read_and_bytes_come_back_when_taken() {
        let queue = limits(2, 1500, 100);
        // Over max_body_bytes from the Content-Length, or while a chunked body streams in.
        assert_eq!(
            queue.admit(Some(1001)).err(),
            Some(Refused::TooLarge { limit: 1000 })
        );
        let mut chunked = queue.admit(None).unwrap();
        chunked.reserve(600).unwrap();
        assert_eq!(
            chunked.reserve(1001).unwrap_err(),
            Refused::TooLarge { limit: 1000 }
        );
        drop(chunked);
        // queue_bytes: 1000 + 600 > 1500.
        let mut big = queue.admit(Some(1000)).unwrap();
        assert_eq!(queue.admit(Some(600)).err(), Some(Refused::QueueFull));
        // max_in_flight: the refused ones above gave their place back; two are allowed.
        let _small = queue.admit(Some(10)).unwrap();
        assert_eq!(
            queue.admit(Some(10)).err(),
            Some(Refused::Busy { limit: 2 })
        );
        assert_eq!(
            big.submit(Stream::Pin, vec![Vec::new(); 11]).unwrap_err(),
            Refused::TooManyRecords {
                count: 11,
                limit: 10
            }
        );
        let _answer = big.submit(Stream::Pin, vec![Vec::new()]).unwrap();
        drop(big); // answered: its place in flight is free, its bytes still queued
        assert_eq!(queue.admit(Some(600)).err(), Some(Refused::QueueFull));
        HttpSource::new(&queue, 0, 1)
            .poll(100, &mut Vec::new())
            .unwrap();
        assert!(
            queue.admit(Some(600)).is_ok(),
            "taken: the bytes are free again"
        );
        assert!(queue.shared.stats.ingest_overload.state().1 >= 1);
    }

    #[test]
    fn closing_answers_the_queued_requests_not_stored_and_refuses_new_ones() {
        let queue = IngestQueue::default();
        let mut answer = queue
            .admit(Some(2))
            .unwrap()
            .submit(Stream::User, vec![b"{}".to_vec()])
            .unwrap();
        queue.close();
        assert!(matches!(
            answer.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
        assert_eq!(queue.admit(Some(2)).err(), Some(Refused::Stopping));
    }
}
