//! `GET /metrics`: Prometheus text exposition of [`Stats`] and the aggregate sizes.
//!
//! The values live in `Stats` atomics and the `AggregateStore`, so each scrape copies them
//! into a fresh `metrics-exporter-prometheus` recorder used as a *local* recorder
//! (`metrics::with_local_recorder`) and renders it. No global recorder is installed: tests
//! and several servers in one process cannot step on each other, and a scrape always shows
//! the current values (nothing stale from an earlier scrape).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics::{Unit, counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::PrometheusBuilder;

use super::AppState;
use crate::dataflow::BATCHES_IN_FLIGHT;
use crate::stats::{INGEST_REFUSALS, SOURCE_KINDS, STREAMS, Stats};

/// The content type Prometheus expects for the text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&state))
}

/// The exposition text for the state as it is now.
pub fn render(state: &AppState) -> String {
    // In a cluster every series carries the process index: a scrape of all of them sums.
    let builder = match state.process {
        Some(process) => PrometheusBuilder::new().add_global_label("process", process.to_string()),
        None => PrometheusBuilder::new(),
    };
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || record(state));
    handle.render()
}

fn record(state: &AppState) {
    let stats = &state.stats;
    describe_counter!(
        "pinstream_records_total",
        "Messages read, by stream and cleaning outcome (clean or quarantined)"
    );
    for (slot, stream) in Stats::stream_labels().take(STREAMS).enumerate() {
        counter!("pinstream_records_total", "stream" => stream, "outcome" => "clean")
            .absolute(Stats::get(&stats.clean_by_stream[slot]));
    }
    for (slot, stream) in Stats::stream_labels().enumerate() {
        counter!("pinstream_records_total", "stream" => stream, "outcome" => "quarantined")
            .absolute(Stats::get(&stats.quarantined_by_stream[slot]));
    }
    describe_counter!(
        "pinstream_source_records_total",
        "Raw messages read, by source kind"
    );
    for (kind, count) in SOURCE_KINDS.iter().zip(&stats.records_by_source) {
        counter!("pinstream_source_records_total", "kind" => *kind).absolute(Stats::get(count));
    }
    describe_counter!(
        "pinstream_source_retries_total",
        "Transient source errors retried with backoff (connection refused or reset, timeouts, 5xx, throttling), by source kind"
    );
    for (kind, count) in SOURCE_KINDS.iter().zip(&stats.source_retries) {
        counter!("pinstream_source_retries_total", "kind" => *kind).absolute(Stats::get(count));
    }
    describe_counter!(
        "pinstream_source_bad_objects_total",
        "Archive objects skipped (unreadable gzip, unparsable Kafka Connect name, older than what was read), each logged"
    );
    counter!("pinstream_source_bad_objects_total").absolute(Stats::get(&stats.bad_objects));
    describe_counter!(
        "pinstream_kafka_messages_total",
        "Messages read from the Kafka brokers (an archive's Kafka offsets are not counted here)"
    );
    counter!("pinstream_kafka_messages_total").absolute(Stats::get(&stats.kafka_messages));
    let totals = [
        (
            "pinstream_duplicates_total",
            "Clean rows dropped because the table already holds them",
            &stats.duplicates,
        ),
        (
            "pinstream_rows_committed_total",
            "Rows in committed data files, all tables",
            &stats.rows_committed,
        ),
        (
            "pinstream_commits_total",
            "Delta commits (one per table per micro-batch)",
            &stats.commits,
        ),
        (
            "pinstream_batches_total",
            "Micro-batches committed",
            &stats.batches,
        ),
        (
            "pinstream_commits_fenced_total",
            "Commits refused because another process committed the same source partitions meanwhile (a rebalance)",
            &stats.fenced,
        ),
        (
            "pinstream_cluster_bytes_sent_total",
            "Bytes this process sent to the other processes of its cluster (timely's messages and headers)",
            &stats.cluster_bytes_sent,
        ),
        (
            "pinstream_aggregate_table_failures_total",
            "Attempts to write the aggregate tables that failed (retried at the next interval; a second failure in a row is logged)",
            &stats.aggregate_table_failures,
        ),
        (
            "pinstream_dataflow_restarts_total",
            "Times the dataflow started again from the tables (consumer-group rebalances, fenced commits)",
            &stats.restarts,
        ),
    ];
    for (name, help, value) in totals {
        describe_counter!(name, help);
        counter!(name).absolute(Stats::get(value));
    }
    describe_gauge!(
        "pinstream_batch_commit_latency_seconds",
        Unit::Seconds,
        "Time from the last batch's close to its last table commit"
    );
    gauge!("pinstream_batch_commit_latency_seconds")
        .set(Stats::get(&stats.last_batch_latency_micros) as f64 / 1e6);
    describe_gauge!(
        "pinstream_backpressure_seconds",
        Unit::Seconds,
        format!(
            "Time since start that reading was held because the commits were {BATCHES_IN_FLIGHT} batches behind (the sink or the machine not keeping up), a hold in progress included"
        )
    );
    gauge!("pinstream_backpressure_seconds")
        .set(Stats::get(&stats.backpressure_micros) as f64 / 1e6);
    if let Some(quantiles) = stats.freshness_quantiles(&[0.5, 0.99]) {
        describe_gauge!(
            "pinstream_freshness_seconds",
            Unit::Seconds,
            "Time from a record's arrival to the aggregates including it being published (recent records)"
        );
        for (quantile, micros) in ["0.5", "0.99"].into_iter().zip(quantiles) {
            gauge!("pinstream_freshness_seconds", "quantile" => quantile).set(micros as f64 / 1e6);
        }
    }
    // The last RECENT_WINDOW only: what a scrape every 10 s (a soak) reads as "now".
    let recent = [
        (
            "pinstream_freshness_recent_seconds",
            "Time from a record's arrival to the aggregates including it being published, records published in the last 10 s",
            &stats.recent_freshness,
        ),
        (
            "pinstream_batch_commit_latency_recent_seconds",
            "Time from a batch's close to its last table commit, batches committed in the last 10 s",
            &stats.recent_commit_latency,
        ),
    ];
    for (name, help, samples) in recent {
        if let Some(quantiles) = samples.quantiles(&[0.5, 0.99, 1.0]) {
            describe_gauge!(name, Unit::Seconds, help);
            for (quantile, micros) in ["0.5", "0.99", "1"].into_iter().zip(quantiles) {
                gauge!(name, "quantile" => quantile).set(micros as f64 / 1e6);
            }
        }
    }
    describe_gauge!(
        "pinstream_source_positions_committed",
        "Sum of the source positions (Kafka offsets, lines, events) this process has committed; pinstream_source_records_total minus this is how far reading runs ahead of the commits for a job started from offset 0"
    );
    gauge!("pinstream_source_positions_committed")
        .set(Stats::get(&stats.positions_committed) as f64);
    let (down, outages) = stats.kafka_outage.state();
    describe_gauge!(
        "pinstream_kafka_brokers_down",
        "1 while the Kafka brokers cannot be reached (the engine retries until they return)"
    );
    gauge!("pinstream_kafka_brokers_down").set(if down { 1.0 } else { 0.0 });
    describe_counter!(
        "pinstream_kafka_broker_outages_total",
        "Kafka broker outages since start (each logged when it starts and when it ends)"
    );
    counter!("pinstream_kafka_broker_outages_total").absolute(outages);
    describe_counter!(
        "pinstream_ingest_refused_total",
        "HTTP ingest requests refused, by reason: too_large and too_many_records (413), busy (429), queue_full and stopping (503), timeout (504); nothing of a refused request is stored"
    );
    for (reason, count) in INGEST_REFUSALS.iter().zip(&stats.ingest_refused) {
        counter!("pinstream_ingest_refused_total", "reason" => *reason).absolute(Stats::get(count));
    }
    let (overloaded, overloads) = stats.ingest_overload.state();
    describe_gauge!(
        "pinstream_ingest_overloaded",
        "1 while HTTP ingest refuses requests for capacity (429/503 with Retry-After)"
    );
    gauge!("pinstream_ingest_overloaded").set(if overloaded { 1.0 } else { 0.0 });
    describe_counter!(
        "pinstream_ingest_overloads_total",
        "HTTP ingest overload episodes since start (each logged when it starts and when it ends)"
    );
    counter!("pinstream_ingest_overloads_total").absolute(overloads);
    let (down, outages) = crate::stats::lake_outage().state();
    describe_gauge!(
        "pinstream_lake_up",
        "0 while the lake (S3) does not answer: batches are held, reading pauses at the in-flight limit, requests are retried until it answers; 1 otherwise"
    );
    gauge!("pinstream_lake_up").set(if down { 0.0 } else { 1.0 });
    describe_counter!(
        "pinstream_lake_outages_total",
        "Lake outages since start (each logged when it starts and when it ends)"
    );
    counter!("pinstream_lake_outages_total").absolute(outages);
    describe_gauge!(
        "pinstream_last_commit_timestamp_seconds",
        Unit::Seconds,
        "When the last batch was committed to every table (Unix time; 0 before the first)"
    );
    gauge!("pinstream_last_commit_timestamp_seconds")
        .set(Stats::get(&stats.last_commit_micros) as f64 / 1e6);
    describe_gauge!("pinstream_aggregate_rows", "Rows in each live aggregate");
    for snapshot in state.aggregates.all() {
        gauge!("pinstream_aggregate_rows", "name" => snapshot.spec.name)
            .set(snapshot.rows.len() as f64);
    }
    describe_gauge!(
        "pinstream_uptime_seconds",
        Unit::Seconds,
        "Seconds since the server started"
    );
    gauge!("pinstream_uptime_seconds").set(state.started.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::serve::{app, test_state};

    #[tokio::test]
    async fn metrics_are_prometheus_text_of_the_current_values() {
        let state = test_state();
        let request = Request::get("/metrics").body(Body::empty()).unwrap();
        let response = app(state.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let value = |series: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
                .unwrap_or_else(|| panic!("no {series} in\n{text}"));
            line[series.len()..].trim().parse().unwrap()
        };
        assert_eq!(
            value(r#"pinstream_records_total{stream="pin",outcome="clean"}"#),
            400.0
        );
        assert_eq!(
            value(r#"pinstream_records_total{stream="geo",outcome="quarantined"}"#),
            0.0
        );
        assert_eq!(
            value(r#"pinstream_records_total{stream="unknown",outcome="quarantined"}"#),
            20.0
        );
        assert_eq!(
            value(r#"pinstream_source_records_total{kind="emulator"}"#),
            1200.0
        );
        assert_eq!(value("pinstream_duplicates_total"), 100.0);
        assert_eq!(value("pinstream_rows_committed_total"), 1050.0);
        assert_eq!(value("pinstream_commits_total"), 12.0);
        assert_eq!(value("pinstream_batches_total"), 3.0);
        assert_eq!(value("pinstream_batch_commit_latency_seconds"), 0.25);
        assert_eq!(value("pinstream_backpressure_seconds"), 1.5);
        assert_eq!(
            value(r#"pinstream_freshness_seconds{quantile="0.5"}"#),
            0.02
        );
        assert_eq!(
            value(r#"pinstream_freshness_seconds{quantile="0.99"}"#),
            0.03
        );
        assert_eq!(
            value(r#"pinstream_freshness_recent_seconds{quantile="0.99"}"#),
            0.03
        );
        assert_eq!(
            value(r#"pinstream_batch_commit_latency_recent_seconds{quantile="1"}"#),
            0.25
        );
        assert_eq!(
            value(r#"pinstream_aggregate_rows{name="trending_categories"}"#),
            2.0
        );
        assert_eq!(
            value(r#"pinstream_aggregate_rows{name="q1_popular_category_by_country"}"#),
            0.0
        );
        assert!(value("pinstream_uptime_seconds") >= 0.0);
        assert!(
            text.contains("# TYPE pinstream_records_total counter"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE pinstream_freshness_seconds gauge"),
            "{text}"
        );

        // A later scrape shows later values (nothing is cached between scrapes).
        crate::stats::Stats::add(&state.stats.commits, 1);
        assert!(super::render(&state).contains("\npinstream_commits_total 13\n"));
    }
}
