//! Taking fetched messages from librdkafka in chunks.
//!
//! rdkafka's `BaseConsumer::poll` hands out one message per call, and each call locks the
//! consumer queue, reads the clock twice, wraps the message in an event and allocates an
//! `Arc` for it: a few hundred nanoseconds per message, on the worker that then cleans it.
//! Here every partition a source reads has its fetch queue forwarded to one queue of the
//! source's own, and `rd_kafka_consume_batch_queue` takes up to a chunk of messages from it in
//! one call.
//!
//! Why a queue of our own and not the consumer queue: the consumer queue also carries
//! librdkafka's events (errors, offset commit replies, logs), which only rdkafka's `poll`
//! knows how to serve (`rd_kafka_consume_batch_queue` aborts on a commit reply when events
//! are enabled, as rdkafka enables them). Those still go to the consumer queue, polled as
//! before.
//!
//! Why one queue and not one per partition: librdkafka bounds its prefetch by the length of
//! the queue a partition's fetch queue forwards to (`queued.min.messages`,
//! `queued.max.messages.kbytes`), so with one queue the bound stays per worker as configured;
//! with a queue per partition it would be per partition.
//!
//! Order: a partition's messages are in order in its fetch queue, and forwarding moves what
//! the fetch queue holds to the end of ours, so they stay in order. librdkafka clears a fetch
//! queue's forwarding when it stops fetching the partition (on every `assign`, which replaces
//! the assignment, asynchronously); the partition's messages then wait in its own fetch
//! queue (the forwarding is the application's, so librdkafka does not send them to the
//! consumer queue either) until [`Fetcher::forward`] forwards it again, which
//! [`super::KafkaSource`] does before every take.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;
use std::sync::Arc;

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::client::Context;

/// A message as the source needs it, borrowed from librdkafka until [`Fetcher::take`]'s
/// callback returns.
pub(super) struct Fetched<'a> {
    /// `Err` for a consumer error (the librdkafka error code).
    pub(super) result: Result<(), rd::rd_kafka_resp_err_t>,
    pub(super) topic: &'a [u8],
    pub(super) partition: i32,
    pub(super) offset: i64,
    /// `None` for a tombstone (null value).
    pub(super) payload: Option<&'a [u8]>,
    /// Create or log-append time in milliseconds, when the message has one (>= 0).
    pub(super) timestamp_ms: Option<i64>,
}

/// One librdkafka queue handle, destroyed on drop.
pub(super) struct Queue(NonNull<rd::rd_kafka_queue_t>);

impl Queue {
    /// A new queue of `consumer`'s client (which must outlive it).
    pub(super) fn new(consumer: &BaseConsumer<Context>) -> Queue {
        // SAFETY: a live client handle.
        let queue = unsafe { rd::rd_kafka_queue_new(consumer.client().native_ptr()) };
        Queue(NonNull::new(queue).expect("rd_kafka_queue_new never returns null"))
    }

    pub(super) fn as_ptr(&self) -> *mut rd::rd_kafka_queue_t {
        self.0.as_ptr()
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: a handle from rd_kafka_queue_new/get_partition, destroyed once; the client
        // outlives it (`Fetcher::consumer`).
        unsafe { rd::rd_kafka_queue_destroy(self.0.as_ptr()) }
    }
}

/// The source's queue of fetched messages and the fetch queues of its partitions.
pub(super) struct Fetcher {
    /// Destroyed after the queues (fields drop in order, and this is the client's last
    /// owner only once the source is gone).
    queues: Vec<Queue>,
    own: Queue,
    messages: Vec<*mut rd::rd_kafka_message_t>,
    consumer: Arc<BaseConsumer<Context>>,
}

// SAFETY: librdkafka queues and messages may be used from any thread; the message pointers
// held between calls are none (`messages` is emptied before `take` returns).
unsafe impl Send for Fetcher {}

impl Fetcher {
    pub(super) fn new(consumer: &Arc<BaseConsumer<Context>>) -> Fetcher {
        Fetcher {
            queues: Vec::new(),
            own: Queue::new(consumer),
            messages: Vec::new(),
            consumer: consumer.clone(),
        }
    }

    /// Sends `topic`/`partition`'s fetched messages to this queue (call before the partition
    /// is first assigned, so none of its messages go to the consumer queue).
    pub(super) fn add(&mut self, topic: &str, partition: i32) {
        let Ok(name) = CString::new(topic) else {
            return;
        };
        // SAFETY: a live client handle and a NUL-terminated topic name.
        let queue = unsafe {
            rd::rd_kafka_queue_get_partition(
                self.consumer.client().native_ptr(),
                name.as_ptr(),
                partition,
            )
        };
        if let Some(queue) = NonNull::new(queue) {
            let queue = Queue(queue);
            // SAFETY: two live queue handles of the same client.
            unsafe { rd::rd_kafka_queue_forward(queue.0.as_ptr(), self.own.0.as_ptr()) };
            self.queues.push(queue);
        }
    }

    /// Forwards every partition's fetch queue here again (librdkafka clears the forwarding
    /// when it stops fetching a partition; what waited in the fetch queue meanwhile moves
    /// here, behind what is here already).
    pub(super) fn forward(&self) {
        for queue in &self.queues {
            // SAFETY: two live queue handles of the same client.
            unsafe { rd::rd_kafka_queue_forward(queue.0.as_ptr(), self.own.0.as_ptr()) };
        }
    }

    /// Takes up to `max` messages that are fetched already (no waiting) and hands each to
    /// `each`, in order; returns how many.
    pub(super) fn take(&mut self, max: usize, mut each: impl FnMut(Fetched<'_>)) -> usize {
        if max == 0 {
            return 0;
        }
        self.messages.clear();
        self.messages.reserve(max);
        // SAFETY: `messages` has room for `max` pointers; librdkafka writes at most that many
        // and returns how many (or -1).
        let taken = unsafe {
            rd::rd_kafka_consume_batch_queue(
                self.own.0.as_ptr(),
                0,
                self.messages.as_mut_ptr(),
                max,
            )
        };
        let taken = usize::try_from(taken).unwrap_or(0).min(max);
        // SAFETY: the first `taken` slots were written by librdkafka.
        unsafe { self.messages.set_len(taken) };
        for &message in &self.messages {
            // SAFETY: a message librdkafka handed out, alive until destroyed below; its topic
            // name and payload live as long as it does.
            let fetched = unsafe { describe(&*message) };
            each(fetched);
        }
        for message in self.messages.drain(..) {
            // SAFETY: each message is destroyed once, after its last use.
            unsafe { rd::rd_kafka_message_destroy(message) };
        }
        taken
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        // Stop forwarding to the queue about to go (fetch queues live as long as their
        // partitions in the client).
        for queue in &self.queues {
            // SAFETY: a live queue handle; null clears the forwarding.
            unsafe { rd::rd_kafka_queue_forward(queue.0.as_ptr(), std::ptr::null_mut()) };
        }
        // SAFETY: each message is destroyed once (none is held between calls; this is for
        // a panic inside `take`'s callback).
        for message in self.messages.drain(..) {
            unsafe { rd::rd_kafka_message_destroy(message) };
        }
    }
}

/// Reads the fields of a message.
///
/// # Safety
/// `message` must be a live message from librdkafka; the result borrows from it.
unsafe fn describe(message: &rd::rd_kafka_message_t) -> Fetched<'_> {
    let topic = if message.rkt.is_null() {
        &[][..]
    } else {
        // SAFETY: a live topic handle; its name is NUL-terminated and lives as long.
        unsafe { CStr::from_ptr(rd::rd_kafka_topic_name(message.rkt)) }.to_bytes()
    };
    if message.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        return Fetched {
            result: Err(message.err),
            topic,
            partition: message.partition,
            offset: message.offset,
            payload: None,
            timestamp_ms: None,
        };
    }
    let payload = (!message.payload.is_null()).then(|| {
        // SAFETY: `len` bytes at `payload`, owned by the message.
        unsafe { std::slice::from_raw_parts(message.payload as *const u8, message.len) }
    });
    let mut kind = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    // SAFETY: a live message and a valid out pointer.
    let ms = unsafe { rd::rd_kafka_message_timestamp(message as *const _, &mut kind) };
    let timestamp_ms = (kind != rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        && ms >= 0)
        .then_some(ms);
    Fetched {
        result: Ok(()),
        topic,
        partition: message.partition,
        offset: message.offset,
        payload,
        timestamp_ms,
    }
}
