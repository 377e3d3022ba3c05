//! The positions the tables hold, committed to the consumer group for monitoring
//! (`kafka-consumer-groups`, lag exporters), with their replies.
//!
//! rdkafka's asynchronous `commit` asks librdkafka for no reply at all: a failed commit was
//! silent, and a source closing could not know whether its last commit had landed. Here each
//! commit names a queue of its own ([`rd::rd_kafka_commit_queue`]); the replies are read from
//! it without waiting at each commit, and waited for (bounded) when the source closes, so a
//! client can be closed in the background without losing the last offsets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::topic_partition_list::TopicPartitionList;

use super::client::Context;
use super::fetch::Queue;

/// The consumer-group commits of one source and their replies.
pub(super) struct GroupCommits {
    /// Destroyed before the client (fields drop in order).
    replies: Queue,
    consumer: Arc<BaseConsumer<Context>>,
    sent: u64,
    answered: u64,
}

// SAFETY: a librdkafka queue handle may be used from any thread.
unsafe impl Send for GroupCommits {}

impl GroupCommits {
    pub(super) fn new(consumer: &Arc<BaseConsumer<Context>>) -> GroupCommits {
        GroupCommits {
            replies: Queue::new(consumer),
            consumer: consumer.clone(),
            sent: 0,
            answered: 0,
        }
    }

    /// Sends `offsets` to the group (no waiting); the replies that came since the last call
    /// are read, and their errors returned.
    pub(super) fn send(&mut self, offsets: &TopicPartitionList) -> Vec<RDKafkaErrorCode> {
        let mut failed = self.replies(Duration::ZERO);
        // SAFETY: a live client, a live list (copied by librdkafka) and a live queue of the
        // same client; no callback.
        let error = unsafe {
            rd::rd_kafka_commit_queue(
                self.consumer.client().native_ptr(),
                offsets.ptr(),
                self.replies.as_ptr(),
                None,
                std::ptr::null_mut(),
            )
        };
        match error {
            rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => self.sent += 1,
            error => failed.push(error.into()),
        }
        failed
    }

    /// Commits sent whose reply has not been read.
    pub(super) fn unanswered(&self) -> u64 {
        self.sent - self.answered
    }

    /// Waits up to `within` for the replies to every commit sent; returns the errors of the
    /// replies read (the caller sees from [`GroupCommits::unanswered`] whether all came).
    pub(super) fn settle(&mut self, within: Duration) -> Vec<RDKafkaErrorCode> {
        let until = Instant::now() + within;
        let mut failed = Vec::new();
        while self.unanswered() > 0 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            failed.extend(self.replies(left.min(Duration::from_millis(10))));
        }
        failed
    }

    /// Reads the replies that are there, waiting up to `wait` for the first.
    fn replies(&mut self, wait: Duration) -> Vec<RDKafkaErrorCode> {
        let mut failed = Vec::new();
        let mut wait_ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        while self.unanswered() > 0 {
            // SAFETY: a live queue; the event is destroyed once, below.
            let event = unsafe { rd::rd_kafka_queue_poll(self.replies.as_ptr(), wait_ms) };
            if event.is_null() {
                break;
            }
            wait_ms = 0;
            // SAFETY: a live event handed out by the poll above.
            unsafe {
                if rd::rd_kafka_event_type(event) == rd::RD_KAFKA_EVENT_OFFSET_COMMIT {
                    self.answered += 1;
                    let error = rd::rd_kafka_event_error(event);
                    if error != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                        failed.push(error.into());
                    }
                }
                rd::rd_kafka_event_destroy(event);
            }
        }
        failed
    }
}
