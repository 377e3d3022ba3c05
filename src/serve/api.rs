//! JSON handlers and the server-sent event stream.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, SecondsFormat};
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

use super::{ApiError, AppState};
use crate::analytics::Snapshot;
use crate::stats::{SOURCE_KINDS, Stats};

/// At most one `aggregates` event per this long: the dataflow may publish many times a
/// second, and a browser refetching on each would spend its time on requests.
const AGGREGATE_EVENTS_GAP: Duration = Duration::from_millis(100);
/// One `stats` event per this long.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// `GET /healthz`: the process is up and serving.
pub async fn healthz(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
    }))
}

/// `GET /api/v1/aggregates`: each aggregate's name, row count, version and last change.
pub async fn aggregates(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "aggregates": aggregate_list(&state) }))
}

/// `GET /api/v1/aggregates/{name}`: one aggregate's rows, keyed by the SPEC's column names.
pub async fn aggregate(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let snapshot = state
        .aggregates
        .get(&name)
        .ok_or(ApiError::UnknownAggregate(name))?;
    let columns: Vec<&str> = snapshot.spec.columns.iter().map(|c| c.name).collect();
    Ok(Json(json!({
        "name": snapshot.spec.name,
        "as_of": rfc3339(snapshot.as_of),
        "version": snapshot.version,
        "columns": columns,
        "rows": snapshot.rows_json(),
    })))
}

/// `GET /api/v1/stats`: the engine's counters, recent throughput and freshness.
pub async fn stats(State(state): State<AppState>) -> Json<Value> {
    Json(stats_json(&state))
}

/// Anything else: a JSON 404 naming what was asked for.
pub async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

/// `GET /api/v1/events`: server-sent events. `aggregates` (the list of
/// [`aggregate_list`]) on connect and whenever the store changes, at most every
/// [`AGGREGATE_EVENTS_GAP`]; `stats` ([`stats_json`]) on connect and every [`STATS_EVERY`].
pub async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut tick = tokio::time::interval(STATS_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let events = EventStream {
        changes: state.aggregates.subscribe(),
        closing: state.closing.subscribe(),
        changes_open: true,
        greeted: false,
        last_aggregates: None,
        tick,
        state,
    };
    let stream = futures::stream::unfold(events, |mut events| async move {
        let event = events.next().await?;
        Some((Ok(event), events))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

struct EventStream {
    state: AppState,
    changes: watch::Receiver<u64>,
    closing: watch::Receiver<bool>,
    /// False once the store's sender is gone (then only stats events follow).
    changes_open: bool,
    /// Whether the first `aggregates` event went out.
    greeted: bool,
    last_aggregates: Option<Instant>,
    tick: Interval,
}

impl EventStream {
    /// The next event; `None` ends the stream (the server is stopping).
    async fn next(&mut self) -> Option<Event> {
        if !self.greeted {
            self.greeted = true;
            self.changes.borrow_and_update();
            return Some(self.aggregates_event());
        }
        loop {
            let closing = &mut self.closing;
            tokio::select! {
                _ = async { let _ = closing.wait_for(|closing| *closing).await; } => return None,
                _ = self.tick.tick() => {
                    let data = stats_json(&self.state).to_string();
                    return Some(Event::default().event("stats").data(data));
                }
                changed = self.changes.changed(), if self.changes_open => {
                    if changed.is_err() {
                        self.changes_open = false;
                        continue;
                    }
                    if let Some(last) = self.last_aggregates {
                        tokio::time::sleep_until((last + AGGREGATE_EVENTS_GAP).into()).await;
                    }
                    // Everything published while waiting is in this one event.
                    self.changes.borrow_and_update();
                    return Some(self.aggregates_event());
                }
            }
        }
    }

    fn aggregates_event(&mut self) -> Event {
        self.last_aggregates = Some(Instant::now());
        let data = Value::Array(aggregate_list(&self.state)).to_string();
        Event::default().event("aggregates").data(data)
    }
}

/// `{name, rows, version, as_of}` of every aggregate, in SPEC order.
fn aggregate_list(state: &AppState) -> Vec<Value> {
    state
        .aggregates
        .all()
        .iter()
        .map(|snapshot: &std::sync::Arc<Snapshot>| {
            json!({
                "name": snapshot.spec.name,
                "rows": snapshot.rows.len(),
                "version": snapshot.version,
                "as_of": rfc3339(snapshot.as_of),
            })
        })
        .collect()
}

/// The counters as one JSON object (the stats endpoint and `stats` events).
/// The job's counters: this process's, plus the latest of every other process of a cluster,
/// so any process of a cluster shows the same totals.
pub(super) fn stats_json(state: &AppState) -> Value {
    let totals = state.stats.job_counters();
    let processes = 1 + state.stats.peers.lock().len();
    let now = Instant::now();
    let uptime = now.saturating_duration_since(state.started).as_secs_f64();
    let records_in = totals.records_in;
    // Before two samples exist, the average since start stands in.
    let records_per_second = state
        .throughput
        .rate(now, records_in)
        .unwrap_or_else(|| records_in as f64 / uptime.max(1e-3));
    let streams: serde_json::Map<String, Value> = Stats::stream_labels()
        .enumerate()
        .map(|(slot, stream)| {
            let clean = totals.clean_by_stream.get(slot).copied().unwrap_or(0);
            let quarantined = totals.quarantined_by_stream[slot];
            (
                stream.to_owned(),
                json!({ "clean": clean, "quarantined": quarantined }),
            )
        })
        .collect();
    let sources: serde_json::Map<String, Value> = SOURCE_KINDS
        .iter()
        .zip(&totals.records_by_source)
        .map(|(kind, count)| ((*kind).to_owned(), json!(count)))
        .collect();
    let millis = |micros: u64| micros as f64 / 1000.0;
    json!({
        "records_in": records_in,
        "clean": totals.clean,
        "quarantined": totals.quarantined,
        "duplicates": totals.duplicates,
        "rows_committed": totals.rows_committed,
        "commits": totals.commits,
        "batches": totals.batches,
        "streams": streams,
        "sources": sources,
        "records_per_second": records_per_second,
        "batch_commit_latency_ms": millis(totals.last_batch_latency_micros),
        "freshness_ms": {
            "p50": totals.freshness.map(|q| millis(q[0])),
            "p99": totals.freshness.map(|q| millis(q[1])),
        },
        "processes": processes,
        "uptime_seconds": uptime,
        "as_of": rfc3339(crate::now_micros()),
    })
}

/// Micros since the epoch as an RFC 3339 UTC string with milliseconds.
pub(super) fn rfc3339(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::serve::{app, test_state};

    async fn get(state: &AppState, path: &str) -> (StatusCode, String, Value) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = app(state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    fn assert_rfc3339_utc(value: &Value) {
        let text = value
            .as_str()
            .unwrap_or_else(|| panic!("not a string: {value}"));
        assert!(text.ends_with('Z'), "{text}");
        DateTime::parse_from_rfc3339(text).unwrap();
    }

    #[tokio::test]
    async fn healthz_answers_ok() {
        let (status, content_type, body) = get(&test_state(), "/healthz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "application/json");
        assert_eq!(body["status"], "ok");
    }

    #[tokio::test]
    async fn aggregates_lists_every_aggregate_with_counts_and_times() {
        let (status, _, body) = get(&test_state(), "/api/v1/aggregates").await;
        assert_eq!(status, StatusCode::OK);
        let list = body["aggregates"].as_array().unwrap();
        let names: Vec<&str> = list.iter().map(|a| a["name"].as_str().unwrap()).collect();
        let expected: Vec<&str> = crate::analytics::AGGREGATES
            .iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, expected);
        let trending = list
            .iter()
            .find(|a| a["name"] == "trending_categories")
            .unwrap();
        assert_eq!(trending["rows"], 2);
        assert_eq!(trending["version"], 1);
        let q1 = &list[0];
        assert_eq!(
            (q1["rows"].as_u64(), q1["version"].as_u64()),
            (Some(0), Some(0))
        );
        list.iter().for_each(|a| assert_rfc3339_utc(&a["as_of"]));
    }

    #[tokio::test]
    async fn one_aggregate_has_spec_column_names() {
        let state = test_state();
        let (status, _, body) = get(
            &state,
            "/api/v1/aggregates/q5_median_followers_by_age_group",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["name"], "q5_median_followers_by_age_group");
        assert_eq!(
            body["columns"],
            json!(["age_group", "median_follower_count"])
        );
        assert_eq!(
            body["rows"],
            json!([
                {"age_group": "+50", "median_follower_count": 800.0},
                {"age_group": "18-24", "median_follower_count": 1500.5},
            ])
        );
        assert_rfc3339_utc(&body["as_of"]);
        let as_of = state
            .aggregates
            .get("q5_median_followers_by_age_group")
            .unwrap()
            .as_of;
        assert_eq!(body["as_of"], rfc3339(as_of));
    }

    #[tokio::test]
    async fn unknown_aggregate_is_a_json_404_listing_the_names() {
        let (status, content_type, body) = get(&test_state(), "/api/v1/aggregates/x").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(content_type, "application/json");
        assert_eq!(body["error"], "no aggregate named x");
        let names = body["aggregates"].as_array().unwrap();
        assert_eq!(names.len(), 11);
        assert_eq!(names[0], "q1_popular_category_by_country");
    }

    #[tokio::test]
    async fn unknown_route_is_a_json_404() {
        let (status, _, body) = get(&test_state(), "/api/v2/nothing").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "no route GET /api/v2/nothing");
    }

    #[tokio::test]
    async fn stats_has_counters_streams_rates_and_freshness() {
        let (status, _, body) = get(&test_state(), "/api/v1/stats").await;
        assert_eq!(status, StatusCode::OK);
        for (key, value) in [
            ("records_in", 1200),
            ("clean", 1150),
            ("quarantined", 50),
            ("duplicates", 100),
            ("rows_committed", 1050),
            ("commits", 12),
            ("batches", 3),
        ] {
            assert_eq!(body[key], value, "{key}");
        }
        assert_eq!(
            body["streams"]["pin"],
            json!({"clean": 400, "quarantined": 30})
        );
        assert_eq!(
            body["streams"]["unknown"],
            json!({"clean": 0, "quarantined": 20})
        );
        assert_eq!(body["sources"]["emulator"], 1200);
        assert_eq!(body["sources"]["file"], 0);
        assert!(body["records_per_second"].as_f64().unwrap() > 0.0);
        assert_eq!(body["batch_commit_latency_ms"], 250.0);
        assert_eq!(body["freshness_ms"], json!({"p50": 20.0, "p99": 30.0}));
        assert!(body["uptime_seconds"].as_f64().unwrap() >= 0.0);
        assert_rfc3339_utc(&body["as_of"]);
    }

    /// The next SSE frame's text, within `wait`.
    async fn next_frame(body: &mut Body, wait: Duration) -> String {
        let frame = tokio::time::timeout(wait, body.frame())
            .await
            .expect("an event in time")
            .expect("stream open")
            .unwrap();
        String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn events_stream_aggregates_on_change_and_stats_every_second() {
        let state = test_state();
        let request = Request::get("/api/v1/events").body(Body::empty()).unwrap();
        let response = app(state.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
        let mut body = response.into_body();

        let greeting = next_frame(&mut body, Duration::from_secs(2)).await;
        assert!(
            greeting.starts_with("event: aggregates\ndata: "),
            "{greeting}"
        );
        let data = greeting
            .lines()
            .nth(1)
            .unwrap()
            .trim_start_matches("data: ");
        let list: Value = serde_json::from_str(data).unwrap();
        assert_eq!(list.as_array().unwrap().len(), 11);
        let stats = next_frame(&mut body, Duration::from_secs(2)).await;
        assert!(stats.starts_with("event: stats\ndata: {"), "{stats}");

        // Many publications in a burst arrive as one event with the latest versions.
        for n in 0..5 {
            let rows = vec![crate::analytics::AggregateRow::from([
                crate::analytics::Cell::Text(Some("art".into())),
                crate::analytics::Cell::Long(100 + n),
            ])];
            assert!(state.aggregates.publish("trending_categories", rows));
        }
        let frame = loop {
            let frame = next_frame(&mut body, Duration::from_secs(3)).await;
            if frame.starts_with("event: aggregates") {
                break frame;
            }
        };
        let data = frame.lines().nth(1).unwrap().trim_start_matches("data: ");
        let list: Value = serde_json::from_str(data).unwrap();
        let trending = list
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "trending_categories")
            .unwrap();
        assert_eq!(trending["version"], 6);
        assert_eq!(trending["rows"], 1);

        // Stopping the server ends the stream.
        state.closing.send_replace(true);
        let end = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(frame) = body.frame().await {
                frame.unwrap();
            }
        })
        .await;
        assert!(end.is_ok(), "the event stream did not end on close");
    }
}
