//! What every Kafka client of a job shares: librdkafka's logs and errors through tracing
//! (rate limited), and the brokers' outages reported to the job's `Stats`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryResult, ProducerContext};

use super::KafkaSpec;
use crate::connectors::SourceError;
use crate::stats::Stats;

/// Timeout of one metadata or watermark request at open.
pub(super) const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts of the first metadata request before the brokers count as unreachable.
pub(super) const OPEN_ATTEMPTS: u32 = 3;
/// At most one warning about the brokers per this interval (the rest are counted).
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Logs librdkafka's warnings and errors at most once per [`WARN_INTERVAL`]: a broker that is
/// down makes librdkafka retry (and complain) many times a second.
#[derive(Default)]
pub struct Context {
    /// The job's counters: broker outages are reported there.
    pub(super) stats: Arc<Stats>,
    last_warning: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
    /// Delivery failures (producer only).
    pub(super) failed: AtomicU64,
    pub(super) first_failure: Mutex<Option<String>>,
}

impl Context {
    pub(super) fn new(stats: &Arc<Stats>) -> Context {
        Context {
            stats: stats.clone(),
            ..Context::default()
        }
    }

    pub(super) fn warn(&self, what: &str) {
        let mut last = self.last_warning.lock();
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
            brokers_down(&self.stats, reason);
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
            let mut first = self.first_failure.lock();
            first.get_or_insert_with(|| error.to_string());
        }
    }
}

/// A client could not be made: a bad property is a configuration error.
pub(super) fn config_error(spec: &KafkaSpec, error: KafkaError) -> SourceError {
    SourceError::Client {
        connector: "kafka",
        at: spec.brokers.clone(),
        source: Box::new(error),
    }
}

/// The brokers cannot be reached: logged once, when the outage begins (every client of the
/// job reports to the job's [`Stats::kafka_outage`]).
pub(super) fn brokers_down(stats: &Stats, what: &str) {
    if stats.kafka_outage.down() {
        tracing::warn!(
            "kafka brokers unreachable ({what}): retrying with backoff until they return"
        );
    }
}

/// The brokers answered: logged once, when an outage ends.
pub(super) fn brokers_up(stats: &Stats) {
    if let Some(down) = stats.kafka_outage.up() {
        tracing::warn!(
            seconds = down.as_secs_f64(),
            "kafka brokers reachable again: resuming"
        );
    }
}

/// Errors meaning the brokers cannot be reached (as opposed to a bad request). One broker's
/// lost connection (`BrokerTransportFailure`) is not one, however it arrives (librdkafka's
/// error event reaches both the client context and the consumer's poll): the others may still
/// serve every partition, and a consumer keeps connections to brokers that lead none of its
/// partitions (no sparse connections). When none is left librdkafka says `AllBrokersDown`.
pub(super) fn is_outage(error: &KafkaError) -> bool {
    let code = match error {
        KafkaError::Global(code)
        | KafkaError::MessageConsumption(code)
        | KafkaError::MetadataFetch(code) => *code,
        _ => return false,
    };
    matches!(
        code,
        RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::NetworkException
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_broker_lost_is_logged_and_no_broker_left_is_an_outage() {
        let stats = Arc::new(Stats::default());
        let context = Context::new(&stats);
        context.error(
            KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure),
            "127.0.0.1:9092/2: Connect to ipv4#127.0.0.1:9092 failed: Connection refused",
        );
        assert_eq!(stats.kafka_outage.state(), (false, 0), "one broker");
        context.error(
            KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "3/3 brokers are down",
        );
        assert_eq!(stats.kafka_outage.state(), (true, 1), "every broker");
    }

    /// The same on every path an error event takes: the consumer's poll hands it over as a
    /// consumption error.
    #[test]
    fn one_broker_lost_is_no_outage_on_any_path() {
        use RDKafkaErrorCode::{AllBrokersDown, BrokerTransportFailure};
        for wrap in [KafkaError::Global, KafkaError::MessageConsumption] {
            assert!(!is_outage(&wrap(BrokerTransportFailure)));
            assert!(is_outage(&wrap(AllBrokersDown)));
        }
    }
}
