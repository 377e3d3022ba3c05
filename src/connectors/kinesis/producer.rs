//! `pinstream emulate --to kinesis://<prefix>`: creates the three streams and puts the
//! emulator's events with PutRecords.

use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamStatus};

use super::source::{error_text, runtime};
use super::{KinesisSpec, Streams, stream_name};
use crate::connectors::emulator::Emulator;
use crate::connectors::{Produce, SourceError};
use crate::stream::Stream;

/// Shards of each stream created.
const SHARDS: i32 = 2;
/// Records per PutRecords (the API's maximum).
const PUT_BATCH: usize = 500;
/// Timeout of one PutRecords.
const PUT_TIMEOUT: Duration = Duration::from_secs(60);

/// Creates `streaming-<prefix>-pin/-geo/-user` with `shards` shards when missing, waits until
/// they are active, then puts events `0..spec.events` with PutRecords in batches of up to 500
/// per stream, each record keyed by the post index (a post's records land in one shard, in
/// order). Paced at `rate` events per second when given. Returns the events put.
pub fn put_events(to: &Produce<'_>) -> Result<u64, SourceError> {
    let target = &KinesisSpec::parse(to.to)?;
    let (spec, shards, rate, progress) = (to.events, SHARDS, to.rate, to.progress);
    let Streams::Prefix(prefix) = &target.streams else {
        return Err(SourceError::Config(
            "emulate --to kinesis:// needs a stream prefix".into(),
        ));
    };
    let events = spec
        .events
        .ok_or_else(|| SourceError::Config("emulate needs a number of events (--events)".into()))?;
    let runtime = runtime()?;
    let client = runtime.block_on(target.client());
    let names = Stream::ALL.map(|s| stream_name(prefix, s));
    let unavailable = |what: String| SourceError::Unavailable(format!("kinesis: {what}"));
    runtime.block_on(async {
        for name in &names {
            match client
                .create_stream()
                .stream_name(name)
                .shard_count(shards)
                .send()
                .await
            {
                Ok(_) => tracing::info!(stream = name, shards, "kinesis stream created"),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_in_use_exception()) =>
                {
                    tracing::info!(stream = name, "kinesis stream exists")
                }
                Err(e) => {
                    return Err(unavailable(format!(
                        "create stream {name}: {}",
                        error_text(&e)
                    )));
                }
            }
        }
        for name in &names {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let summary = client
                    .describe_stream_summary()
                    .stream_name(name)
                    .send()
                    .await
                    .map_err(|e| unavailable(format!("describe {name}: {}", error_text(&e))))?;
                if summary
                    .stream_description_summary()
                    .is_some_and(|s| *s.stream_status() == StreamStatus::Active)
                {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(unavailable(format!("stream {name} did not become active")));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    })?;

    let emulator = Emulator::new(spec);
    let started = Instant::now();
    // Events per round: a full PutRecords per stream, or about 5 rounds a second when paced.
    let chunk = match rate {
        Some(rate) => ((rate / 5.0) as u64).clamp(1, PUT_BATCH as u64),
        None => PUT_BATCH as u64,
    };
    let mut seq = 0;
    while seq < events {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(seq as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let end = (seq + chunk).min(events);
        let mut batches: [Vec<PutRecordsRequestEntry>; 3] = Default::default();
        for n in seq..end {
            let event = emulator.event(n);
            let key = event.index.to_string();
            for (s, stream) in Stream::ALL.into_iter().enumerate() {
                let entry = PutRecordsRequestEntry::builder()
                    .data(Blob::new(event.message(stream)))
                    .partition_key(&key)
                    .build()
                    .map_err(|e| SourceError::Config(format!("kinesis record: {e}")))?;
                batches[s].push(entry);
            }
        }
        // The three streams at once (one request in flight per stream keeps each key's
        // records in order).
        let puts = batches
            .into_iter()
            .zip(&names)
            .map(|(batch, name)| put_batch(&client, name, batch));
        runtime
            .block_on(futures::future::join_all(puts))
            .into_iter()
            .collect::<Result<(), SourceError>>()?;
        seq = end;
        progress(seq);
    }
    Ok(events)
}

/// One PutRecords, retrying the records that failed (throttling) with backoff.
async fn put_batch(
    client: &Client,
    stream: &str,
    mut batch: Vec<PutRecordsRequestEntry>,
) -> Result<(), SourceError> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut attempt = 0u32;
    loop {
        let send = client
            .put_records()
            .stream_name(stream)
            .set_records(Some(batch.clone()))
            .send();
        // A hung endpoint is an error too (a retry may put a batch twice: the emulator's
        // rows repeat anyway and the engine deduplicates).
        let output = match tokio::time::timeout(PUT_TIMEOUT, send).await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(e)) => Err(error_text(&e)),
            Err(_) => Err(format!("no answer within {PUT_TIMEOUT:?}")),
        };
        let output = match output {
            Ok(output) => output,
            Err(message) if attempt < 8 => {
                tracing::warn!("kinesis: PutRecords {stream}: {message}");
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
                continue;
            }
            Err(message) => {
                return Err(SourceError::Unavailable(format!(
                    "kinesis: PutRecords {stream}: {message}"
                )));
            }
        };
        if output.failed_record_count().unwrap_or(0) == 0 {
            return Ok(());
        }
        // Keep only the failed ones, in order.
        let results = output.records();
        let first_error = results
            .iter()
            .find_map(|r| r.error_message().or(r.error_code()))
            .unwrap_or_default()
            .to_owned();
        batch = batch
            .into_iter()
            .zip(results)
            .filter(|(_, r)| r.error_code().is_some())
            .map(|(entry, _)| entry)
            .collect();
        attempt += 1;
        if attempt > 8 {
            return Err(SourceError::Unavailable(format!(
                "kinesis: PutRecords {stream}: {} records not put ({first_error})",
                batch.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
    }
}
