//! The HTTP layer: JSON API over the live aggregates and the engine's counters, Prometheus
//! `/metrics`, server-sent events for live updates and the dashboard at `/`.
//!
//! Everything reads shared state at request time ([`AggregateStore`] snapshots, [`Stats`]
//! atomics): the server never blocks the dataflow, and a slow client never holds a lock.

mod api;
mod dashboard;
mod error;
pub mod ingest;
mod metrics;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::analytics::AggregateStore;
use crate::stats::Stats;

pub use error::ApiError;

/// How long open connections (dashboards, scrapes) get to finish once the server is asked to
/// stop; past it they are dropped so the engine's exit never waits on a browser tab.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What every handler reads. Cheap to clone: a few `Arc`s.
#[derive(Clone)]
pub struct AppState {
    pub aggregates: AggregateStore,
    pub stats: Arc<Stats>,
    pub started: Instant,
    /// Recent `records_in` samples, for records/s over the last few seconds.
    pub throughput: Arc<Throughput>,
    /// Turns true when the server stops: ends the event streams, which would otherwise keep
    /// graceful shutdown waiting forever.
    pub closing: Arc<watch::Sender<bool>>,
    /// This process's index in its cluster (`None`: not a cluster); labels `/metrics`.
    pub process: Option<usize>,
    /// Where ingested messages go, when the job has an `http` source.
    pub ingest: Option<crate::connectors::http::IngestQueue>,
}

impl AppState {
    pub fn new(aggregates: AggregateStore, stats: Arc<Stats>) -> Self {
        AppState {
            aggregates,
            stats,
            started: Instant::now(),
            throughput: Arc::new(Throughput::default()),
            closing: Arc::new(watch::channel(false).0),
            process: None,
            ingest: None,
        }
    }

    /// Labels `/metrics` with this process's index in its cluster.
    pub fn with_process(mut self, process: Option<usize>) -> Self {
        self.process = process;
        self
    }

    /// Accepts HTTP ingest into `queue`.
    pub fn with_ingest(mut self, queue: Option<crate::connectors::http::IngestQueue>) -> Self {
        self.ingest = queue;
        self
    }
}

/// The router: every endpoint, JSON 404 for the rest.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(metrics::scrape))
        .route("/api/v1/aggregates", get(api::aggregates))
        .route("/api/v1/aggregates/{name}", get(api::aggregate))
        .route("/api/v1/stats", get(api::stats))
        .route("/api/v1/events", get(api::events))
        .route("/topics/{topic}", axum::routing::post(ingest::post_topic))
        .route(
            "/streams/{stream}/record",
            axum::routing::put(ingest::put_record),
        )
        .route(
            "/streams/{stream}/records",
            axum::routing::put(ingest::put_records),
        )
        .fallback(api::no_route)
        .with_state(state)
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {}", bind_reason(source))]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Io(#[source] std::io::Error),
}

/// The usual bind failures in plain words; others as the system says them.
fn bind_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => "address in use".into(),
        std::io::ErrorKind::AddrNotAvailable => "no such local address".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => error.to_string(),
    }
}

/// Binds `addr`, so that a taken port fails the command before any work starts.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves [`app`] on a listener already bound ([`bind`], early in `run`, so that a taken port
/// fails before any work starts) until `shutdown` completes, then gives open connections
/// [`SHUTDOWN_GRACE`] to finish.
pub async fn serve_on(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("HTTP API and dashboard on http://{addr}/");
    }
    let closing = state.closing.clone();
    let mut stopped = closing.subscribe();
    let signal = async move {
        shutdown.await;
        closing.send_replace(true);
    };
    let server = axum::serve(listener, app(state))
        .with_graceful_shutdown(signal)
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(ServeError::Io),
        _ = stopped.wait_for(|closing| *closing) => {}
    }
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(result) => result.map_err(ServeError::Io),
        Err(_) => {
            tracing::warn!("HTTP connections still open after {SHUTDOWN_GRACE:?}: dropped");
            Ok(())
        }
    }
}

/// Samples of `records_in` taken when someone asks for a rate (each stats request and the
/// event streams' once-a-second tick), kept for [`Throughput::WINDOW`].
#[derive(Debug, Default)]
pub struct Throughput {
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl Throughput {
    /// The rate is measured over at most this much of the recent past.
    pub const WINDOW: Duration = Duration::from_secs(5);

    /// Records this sample and returns the rate since the oldest sample in the window;
    /// `None` when there is no earlier sample to compare with.
    pub fn rate(&self, now: Instant, records: u64) -> Option<f64> {
        let mut samples = self.samples.lock();
        while samples
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > Self::WINDOW)
        {
            samples.pop_front();
        }
        let rate = samples.front().and_then(|(at, before)| {
            let seconds = now.saturating_duration_since(*at).as_secs_f64();
            (seconds >= 0.2).then(|| records.saturating_sub(*before) as f64 / seconds)
        });
        // One sample per 100 ms is plenty; more only grows the queue.
        if samples
            .back()
            .is_none_or(|(at, _)| now.saturating_duration_since(*at) >= Duration::from_millis(100))
        {
            samples.push_back((now, records));
        }
        rate
    }
}

/// A state with some of everything: counters, freshness samples and two published aggregates.
#[cfg(test)]
pub(crate) fn test_state() -> AppState {
    use crate::analytics::Cell;
    let stats = Arc::new(Stats::default());
    Stats::add(&stats.records_in, 1200);
    Stats::add(&stats.clean, 1150);
    Stats::add(&stats.quarantined, 50);
    Stats::add(&stats.clean_by_stream[0], 400);
    Stats::add(&stats.clean_by_stream[1], 380);
    Stats::add(&stats.clean_by_stream[2], 370);
    Stats::add(&stats.quarantined_by_stream[0], 30);
    Stats::add(&stats.quarantined_by_stream[3], 20);
    Stats::add(&stats.records_by_source[1], 1200);
    Stats::add(&stats.duplicates, 100);
    Stats::add(&stats.rows_committed, 1050);
    Stats::add(&stats.commits, 12);
    Stats::add(&stats.batches, 3);
    Stats::add(&stats.last_batch_latency_micros, 250_000);
    Stats::add(&stats.backpressure_micros, 1_500_000);
    stats.recent_commit_latency.record(250_000);
    for micros in [10_000, 20_000, 30_000] {
        stats.record_freshness(micros);
    }
    let aggregates = AggregateStore::new();
    let text = |s: &str| Cell::Text(Some(s.into()));
    aggregates.publish(
        "trending_categories",
        vec![
            [text("travel"), Cell::Long(7)].into(),
            [text("art"), Cell::Long(12)].into(),
        ],
    );
    aggregates.publish(
        "q5_median_followers_by_age_group",
        vec![
            [text("18-24"), Cell::Double(1500.5)].into(),
            [text("+50"), Cell::Double(800.0)].into(),
        ],
    );
    AppState::new(aggregates, stats)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// One raw HTTP/1.1 request over a real socket; the whole response as text.
    fn http_get(addr: SocketAddr, path: &str) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn real_socket_round_trip_and_shutdown_with_an_open_event_stream() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_on(listener, test_state(), async move {
            let _ = stopped.await;
        }));

        let response = tokio::task::spawn_blocking(move || {
            http_get(addr, "/api/v1/aggregates/trending_categories")
        })
        .await
        .unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        let body = response.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            json["rows"][0],
            serde_json::json!({"category": "art", "posts": 12})
        );

        // A dashboard left open must not hold the server past its stop.
        let mut events = std::net::TcpStream::connect(addr).unwrap();
        write!(
            events,
            "GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\n\r\n"
        )
        .unwrap();
        let mut first = [0u8; 64];
        let read = tokio::task::spawn_blocking(move || {
            let n = events.read(&mut first).unwrap();
            (events, String::from_utf8_lossy(&first[..n]).into_owned())
        });
        let (_events, head) = read.await.unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");

        let asked = Instant::now();
        stop.send(()).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(4), server)
            .await
            .expect("server stops before the grace period ends")
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
        assert!(asked.elapsed() < SHUTDOWN_GRACE);
    }

    #[test]
    fn throughput_is_measured_over_the_recent_window() {
        let throughput = Throughput::default();
        let start = Instant::now();
        assert_eq!(throughput.rate(start, 0), None);
        let rate = throughput
            .rate(start + Duration::from_secs(2), 2000)
            .unwrap();
        assert!((rate - 1000.0).abs() < 1e-6, "{rate}");
        // Ten seconds later the early samples have left the window.
        let later = start + Duration::from_secs(12);
        assert_eq!(throughput.rate(later, 50_000), None);
        let rate = throughput
            .rate(later + Duration::from_secs(1), 50_500)
            .unwrap();
        assert!((rate - 500.0).abs() < 1e-6, "{rate}");
    }

    #[tokio::test]
    async fn bind_failure_names_the_address() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let error = bind(addr).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("cannot listen on {addr}: address in use")
        );
    }
}
