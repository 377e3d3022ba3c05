//! `pinstream emulate --to http://<host:port>[/<prefix>]`: the original posting emulators'
//! HTTP bodies, to a `pinstream run --from http`.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::HttpFormat;
use crate::connectors::emulator::Emulator;
use crate::connectors::{Produce, SourceError};
use crate::stream::Stream;

/// Sends the events as the original posting emulators do over HTTP: one message per request,
/// REST-proxy or API-Gateway bodies, `--concurrency` requests in flight (each is answered
/// only after its commit), paced to `--rate` events/s.
pub fn send_events(target: &Produce<'_>) -> Result<u64, SourceError> {
    let rest = target.to.trim_start_matches("http://");
    let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = if prefix.is_empty() {
        "pinterest"
    } else {
        prefix.trim_end_matches('/')
    };
    let base = format!("http://{authority}");
    let events = target.events.events.unwrap_or(0);
    let emulator = Emulator::new(target.events);
    let next = AtomicU64::new(0);
    let sent = AtomicU64::new(0);
    let failed: Mutex<Option<String>> = Mutex::new(None);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..target.concurrency.max(1) {
            scope.spawn(|| {
                let agent = ureq::Agent::new_with_defaults();
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= events || failed.lock().is_some() {
                        return;
                    }
                    if let Some(rate) = target.rate {
                        let due = Duration::from_secs_f64(seq as f64 / rate);
                        if let Some(wait) = due.checked_sub(started.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let event = emulator.event(seq);
                    for stream in Stream::ALL {
                        let message = String::from_utf8_lossy(event.message(stream)).into_owned();
                        let result = match target.http_format {
                            HttpFormat::Proxy => agent
                                .post(&format!("{base}/topics/{prefix}.{stream}"))
                                .header("Content-Type", "application/vnd.kafka.json.v2+json")
                                .send(format!(r#"{{"records": [{{"value": {message}}}]}}"#)),
                            HttpFormat::Kinesis => {
                                let name = format!("streaming-{prefix}-{stream}");
                                agent.put(&format!("{base}/streams/{name}/record")).send(format!(
                                    r#"{{"StreamName": "{name}", "Data": {message}, "PartitionKey": "{}"}}"#,
                                    event.index
                                ))
                            }
                        };
                        if let Err(error) = result {
                            let mut failed = failed.lock();
                            failed.get_or_insert_with(|| format!("event {seq} ({stream}): {error}"));
                            return;
                        }
                    }
                    (target.progress)(sent.fetch_add(1, Ordering::Relaxed) + 1);
                }
            });
        }
    });
    if let Some(reason) = failed.into_inner() {
        return Err(SourceError::Send {
            target: base,
            reason,
        });
    }
    Ok(events)
}
