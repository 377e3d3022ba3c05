//! `pinstream emulate --to kafka://<host:port>/<prefix>`: creates the three topics and
//! produces the emulator's events, keyed by post index.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::client::{Context, config_error};
use super::{KafkaSpec, Topics};
use crate::connectors::emulator::Emulator;
use crate::connectors::{MessageKey, Produce, SourceError};
use crate::stream::Stream;

/// Creates `<prefix>.pin/.geo/.user` with `partitions` partitions when missing (an existing
/// topic is left as it is), then produces events `0..spec.events` of the emulator: each
/// event's three messages keyed by the post index, so a post's records land in the same
/// partition number of each topic. Paced at `rate` events per second when given; `progress`
/// is called with the number of events sent so far. Returns the events delivered.
pub fn produce_events(to: &Produce<'_>) -> Result<u64, SourceError> {
    let (spec, partitions, rate, progress) = (to.events, to.partitions, to.rate, to.progress);
    let mut target = KafkaSpec::parse(to.to)?;
    if partitions < 1 {
        return Err(SourceError::Config(format!(
            "--partitions must be at least 1, not {partitions}"
        )));
    }
    for property in to.properties {
        let Some((key, value)) = property.split_once('=') else {
            return Err(SourceError::Config(format!(
                "--property `{property}`: expected key=value"
            )));
        };
        target.properties.insert(key.to_owned(), value.to_owned());
    }
    let target = &target;
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
            let mut record = BaseRecord::to(topic).payload(event.message(stream));
            if to.key == MessageKey::Post {
                record = record.key(key.as_str());
            }
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
        let first = context.first_failure.lock().clone().unwrap_or_default();
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
        .map_err(|source| SourceError::Runtime {
            purpose: "creating kafka topics",
            source,
        })?;
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
