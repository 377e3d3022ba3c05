//! `pinstream emulate --to s3://bucket/prefix[?topic_prefix=<t>&flush_size=<n>]`: the
//! emulator's events as the Kafka Connect S3 sink archives them (`JsonFormat`,
//! `DefaultPartitioner`): `topics/<t>.<stream>/partition=<p>/<t>.<stream>+<p>+<start>.json`,
//! `flush_size` messages per object (default 1000), `--partitions` partitions, messages keyed
//! by post (`--key post`: by post index) or spread round robin (`--key none`).

use std::io::Write as _;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use super::name::connect_key;
use crate::connectors::emulator::Emulator;
use crate::connectors::{MessageKey, Offset, Produce, SourceError};
use crate::stream::Stream;

/// Writes objects under an archive prefix (emulate, tests, demos).
pub struct ConnectWriter {
    url: Url,
    store: Arc<dyn ObjectStore>,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl ConnectWriter {
    /// A writer for `s3://bucket/prefix` (query options ignored).
    pub fn new(url: &str) -> Result<ConnectWriter, SourceError> {
        let url = super::ArchiveSettings::parse(url.split('?').next().unwrap_or(url))?.url;
        let (store, runtime) = super::open_store(&url)?;
        Ok(ConnectWriter {
            url,
            store,
            runtime,
        })
    }

    /// Writes `messages` (one per line) as the Connect object of `topic`/`partition`
    /// starting at offset `start`, gzip-compressed (`.json.gz`) when asked; returns its key.
    pub fn put_messages<M: AsRef<[u8]>>(
        &self,
        topic: &str,
        partition: i32,
        start: i64,
        messages: &[M],
        gzip: bool,
    ) -> Result<String, SourceError> {
        let mut body = Vec::new();
        for message in messages {
            body.extend_from_slice(message.as_ref());
            body.push(b'\n');
        }
        let mut key = connect_key(topic, partition, Offset::new(start));
        if gzip {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&body).and_then(|()| encoder.flush()).ok();
            body = encoder.finish().map_err(|source| SourceError::Write {
                target: key.clone(),
                source,
            })?;
            key.push_str(".gz");
        }
        self.put(&key, body)?;
        Ok(key)
    }

    /// Writes `body` at `key` (relative to the prefix) as it is.
    pub fn put(&self, key: &str, body: Vec<u8>) -> Result<(), SourceError> {
        let path = ObjectPath::from(key);
        self.runtime
            .block_on(self.store.put(&path, PutPayload::from(body)))
            .map(|_| ())
            .map_err(|e| SourceError::Send {
                target: format!("{}{key}", self.url),
                reason: e.to_string(),
            })
    }
}

/// `emulate --to s3://...`: returns the events written.
pub fn produce(target: &Produce<'_>) -> Result<u64, SourceError> {
    let error =
        |reason: String| SourceError::Config(format!("emulate --to {}: {reason}", target.to));
    let mut topic_prefix = "archive".to_owned();
    let mut flush_size = 1000usize;
    if let Some((_, query)) = target.to.split_once('?') {
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "topic_prefix" if !value.is_empty() => topic_prefix = value.into_owned(),
                "flush_size" => {
                    flush_size = value
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| error(format!("flush_size `{value}`")))?
                }
                other => return Err(error(format!("unknown option `{other}`"))),
            }
        }
    }
    if target.partitions < 1 {
        return Err(error("--partitions must be at least 1".into()));
    }
    let events = target
        .events
        .events
        .ok_or_else(|| error("emulate needs a number of events (--events)".into()))?;
    let writer = ConnectWriter::new(target.to)?;
    let partitions = target.partitions as usize;
    let topics = Stream::ALL.map(|s| format!("{topic_prefix}.{s}"));
    // Per stream and partition: the messages not yet flushed and the next offset.
    let mut pending = vec![vec![Vec::<Vec<u8>>::new(); partitions]; Stream::ALL.len()];
    let mut next = vec![vec![0i64; partitions]; Stream::ALL.len()];
    let mut flush = |s: usize, p: usize, pending: &mut Vec<Vec<u8>>| {
        if pending.is_empty() {
            return Ok(());
        }
        writer.put_messages(&topics[s], p as i32, next[s][p], pending, false)?;
        next[s][p] += pending.len() as i64;
        pending.clear();
        Ok::<(), SourceError>(())
    };
    let emulator = Emulator::new(target.events);
    for seq in 0..events {
        let event = emulator.event(seq);
        let p = match target.key {
            MessageKey::Post => {
                (xxhash_rust::xxh3::xxh3_64(&event.index.to_le_bytes()) % partitions as u64)
                    as usize
            }
            MessageKey::None => (seq % partitions as u64) as usize,
        };
        for (s, stream) in Stream::ALL.into_iter().enumerate() {
            pending[s][p].push(event.message(stream).to_vec());
            if pending[s][p].len() >= flush_size {
                flush(s, p, &mut pending[s][p])?;
            }
        }
        if seq % 1024 == 0 {
            (target.progress)(seq);
        }
    }
    for (s, by_partition) in pending.iter_mut().enumerate() {
        for (p, messages) in by_partition.iter_mut().enumerate() {
            flush(s, p, messages)?;
        }
    }
    (target.progress)(events);
    Ok(events)
}
