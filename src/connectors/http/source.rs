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

use parking_lot::Mutex;

use tokio::sync::oneshot;

use crate::connectors::{
    Offset, PartitionId, PollStatus, Position, Positions, RawRecord, Source, SourceError,
};
use crate::stream::Stream;

/// Messages waiting in the queue before new requests are refused (503): memory stays bounded
/// when the sink is slower than the clients.
pub const QUEUE_LIMIT: usize = 100_000;

/// The `(partition, offset)` each message of a request got.
pub type Offsets = Vec<(String, Offset)>;

/// Messages of one request, and where to answer: the offsets they got, once committed.
struct Submission {
    stream: Stream,
    payloads: Vec<Vec<u8>>,
    reply: oneshot::Sender<Offsets>,
}

/// The queue between the HTTP handlers and the workers' sources. Cheap to clone.
#[derive(Clone, Default)]
pub struct IngestQueue {
    inner: Arc<Mutex<(VecDeque<Submission>, usize)>>,
}

/// Why a request could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue is full: try again later (503).
    Overloaded,
}

impl IngestQueue {
    /// Queues the messages of one request; the receiver yields `(partition, offset)` per
    /// message once they are committed, or fails (sender dropped) if they never will be.
    pub fn submit(
        &self,
        stream: Stream,
        payloads: Vec<Vec<u8>>,
    ) -> Result<oneshot::Receiver<Offsets>, Refused> {
        let (reply, answer) = oneshot::channel();
        let mut queue = self.inner.lock();
        if queue.1 + payloads.len() > QUEUE_LIMIT {
            return Err(Refused::Overloaded);
        }
        queue.1 += payloads.len();
        queue.0.push_back(Submission {
            stream,
            payloads,
            reply,
        });
        Ok(answer)
    }

    fn take(&self, max: usize) -> Vec<Submission> {
        let mut queue = self.inner.lock();
        let mut taken = Vec::new();
        let mut count = 0;
        while let Some(next) = queue.0.front() {
            if count > 0 && count + next.payloads.len() > max {
                break;
            }
            count += next.payloads.len();
            taken.push(queue.0.pop_front().expect("front exists"));
        }
        queue.1 -= count;
        taken
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
        let arrival = crate::now_micros();
        for Submission {
            stream,
            payloads,
            reply,
        } in submissions
        {
            let mut offsets = Vec::with_capacity(payloads.len());
            for payload in payloads {
                let offset = self.next.next_offset();
                offsets.push((self.partition.to_string(), offset));
                out.push(RawRecord {
                    stream: Some(stream),
                    payload,
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
        let mut answer = queue
            .submit(Stream::Pin, vec![b"{}".to_vec(), b"{}".to_vec()])
            .unwrap();
        let mut source = HttpSource::new(&queue, 0, 1);
        source
            .seek(&Positions::from([("http:w0/1".into(), Position::new(5))]))
            .unwrap();
        let mut out = Vec::new();
        assert_eq!(source.poll(10, &mut out).unwrap(), PollStatus::Ready);
        assert_eq!(
            out.iter().map(|r| r.offset.value()).collect::<Vec<_>>(),
            vec![5, 6]
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

    #[test]
    fn a_full_queue_refuses() {
        let queue = IngestQueue::default();
        assert!(
            queue
                .submit(Stream::Geo, vec![Vec::new(); QUEUE_LIMIT])
                .is_ok()
        );
        assert_eq!(
            queue.submit(Stream::Geo, vec![Vec::new()]).unwrap_err(),
            Refused::Overloaded
        );
    }
}
