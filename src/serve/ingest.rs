//! HTTP ingest: the bodies the original posting emulators send, byte for byte (SPEC §1).
//!
//! - `POST /topics/{topic}`, Confluent REST Proxy v2: `{"records": [{"value": {...}}, ...]}`,
//!   answered like the proxy: `{"offsets": [{"partition", "offset"}, ...]}`.
//! - `PUT /streams/{stream}/record`, API Gateway Kinesis proxy: `{"StreamName", "Data",
//!   "PartitionKey"}` (`Data` an object, or a base64 string of the JSON), answered
//!   `{"SequenceNumber", "ShardId"}`; `PUT /streams/{stream}/records` with `{"records":
//!   [{"data", "partition-key"}]}` or `{"Records": [{"Data", "PartitionKey"}]}`, answered
//!   `{"FailedRecordCount": 0, "Records": [...]}`.
//!
//! The stream (pin/geo/user) is the topic's or stream's suffix. A request is answered 2xx
//! only after its messages are committed to the tables; a body that cannot be read gets a 4xx
//! and nothing is stored.
//!
//! A flood of clients cannot grow the engine's memory: a request is admitted (the http
//! source's limits, [`HttpSettings`](crate::connectors::http::HttpSettings)) before its body is read, the body is read in chunks
//! against its reservation and never past `max_body_bytes`, and every overload answer
//! (429 too many in flight, 503 queue full or stopping, 504 commit too slow) carries
//! `Retry-After`. Retrying is always safe: rows are deduplicated by content (SPEC §2).

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::AppState;
use crate::connectors::Offset;
use crate::connectors::http::{Admission, Offsets, Refused};
use crate::stream::Stream;

/// How long a request waits for its commit before the client is told to retry (504).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a client may take to send its body (408): a slow client holds a place in flight.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// A refused request's body up to this size is read and dropped before the answer, so the
/// client's connection stays open for its retry; a larger one closes the connection.
const DRAIN_LIMIT: u64 = 64 << 10;
/// The `Retry-After` of overload answers, seconds.
const RETRY_AFTER_SECONDS: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("HTTP ingest is not enabled: run with --from http (or a [[source]] type = \"http\")")]
    Disabled,
    #[error("`{0}` names no stream: its name must end in pin, geo or user")]
    UnknownStream(String),
    #[error("bad body: {0}")]
    BadBody(String),
    #[error("the body did not arrive within {} s", BODY_TIMEOUT.as_secs())]
    BodyTimeout,
    #[error("refused: {0}")]
    Refused(#[from] Refused),
    #[error("not stored: the engine stopped before committing; retry")]
    NotStored,
    #[error("not committed within {} s; retry (duplicates are dropped)", COMMIT_TIMEOUT.as_secs())]
    Timeout,
}

impl IngestError {
    fn status(&self) -> StatusCode {
        match self {
            IngestError::Disabled | IngestError::NotStored => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::UnknownStream(_) => StatusCode::NOT_FOUND,
            IngestError::BadBody(_) => StatusCode::UNPROCESSABLE_ENTITY,
            IngestError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            IngestError::Refused(refused) => match refused {
                Refused::TooLarge { .. } | Refused::TooManyRecords { .. } => {
                    StatusCode::PAYLOAD_TOO_LARGE
                }
                Refused::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
                Refused::QueueFull | Refused::Stopping => StatusCode::SERVICE_UNAVAILABLE,
            },
            IngestError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Whether the same request may succeed later: the answer then says when to retry.
    fn retry_later(&self) -> bool {
        match self {
            IngestError::NotStored | IngestError::Timeout => true,
            IngestError::Refused(refused) => {
                refused.is_overload() || matches!(refused, Refused::Stopping)
            }
            _ => false,
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry = self.retry_later();
        // `error_code`/`message` as the REST proxy answers; `error` as the rest of the API.
        let message = self.to_string();
        let body = json!({"error_code": status.as_u16(), "message": message, "error": message});
        let mut response = (status, Json(body)).into_response();
        if retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}

fn stream_of(name: &str) -> Result<Stream, IngestError> {
    Stream::from_name_token(name).ok_or_else(|| IngestError::UnknownStream(name.to_owned()))
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, IngestError> {
    serde_json::from_slice(body).map_err(|e| IngestError::BadBody(e.to_string()))
}

/// Admits the request and reads its body within the admission: chunk by chunk, each chunk
/// reserved before it is kept, so a body over the limits is never buffered whole.
async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Admission, Vec<u8>), IngestError> {
    let queue = state.ingest.as_ref().ok_or(IngestError::Disabled)?;
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let mut admission = match queue.admit(length) {
        Ok(admission) => admission,
        Err(refused) => {
            if length.is_some_and(|length| length <= DRAIN_LIMIT) {
                drain(body).await;
            }
            return Err(refused.into());
        }
    };
    // The length is within max_body_bytes and reserved already.
    let mut bytes = Vec::with_capacity(length.unwrap_or(0) as usize);
    let mut chunks = body.into_data_stream();
    let read = async {
        while let Some(chunk) = chunks.next().await {
            let chunk =
                chunk.map_err(|e| IngestError::BadBody(format!("reading the body: {e}")))?;
            admission.reserve((bytes.len() + chunk.len()) as u64)?;
            bytes.extend_from_slice(&chunk);
        }
        Ok::<_, IngestError>(())
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| IngestError::BodyTimeout)??;
    Ok((admission, bytes))
}

/// Reads and drops a small refused body (bounded in time), so that the connection can carry
/// the client's retry.
async fn drain(body: Body) {
    let mut chunks = body.into_data_stream();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(_)) = chunks.next().await {}
    })
    .await;
}

/// Queues the messages and waits for their commit; the offsets they were given.
async fn store(
    state: &AppState,
    mut admission: Admission,
    stream: Stream,
    payloads: Vec<Vec<u8>>,
) -> Result<Offsets, IngestError> {
    let answer = admission.submit(stream, payloads)?;
    match tokio::time::timeout(COMMIT_TIMEOUT, answer).await {
        Ok(Ok(offsets)) => Ok(offsets),
        Ok(Err(_)) => {
            state.stats.ingest_refused("stopping");
            Err(IngestError::NotStored)
        }
        Err(_) => {
            state.stats.ingest_refused("timeout");
            if let Some(queue) = &state.ingest {
                queue.overloaded("commits slower than the requests wait for");
            }
            Err(IngestError::Timeout)
        }
    }
}

#[derive(Deserialize)]
struct ProxyBody<'a> {
    #[serde(borrow)]
    records: Vec<ProxyRecord<'a>>,
}

#[derive(Deserialize)]
struct ProxyRecord<'a> {
    #[serde(borrow)]
    value: &'a RawValue,
}

/// `POST /topics/{topic}` (REST Proxy v2 JSON embedded format).
pub async fn post_topic(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    let stream = stream_of(&topic)?;
    let (admission, body) = receive(&state, &headers, body).await?;
    let parsed: ProxyBody = parse(&body)?;
    let payloads = parsed
        .records
        .iter()
        .map(|r| r.value.get().as_bytes().to_vec())
        .collect();
    drop(body); // its bytes stay reserved until a worker takes the messages
    let offsets = store(&state, admission, stream, payloads).await?;
    let offsets: Vec<Value> = offsets
        .iter()
        .map(|(_, offset)| json!({"partition": 0, "offset": offset, "error_code": null, "error": null}))
        .collect();
    let body = json!({"offsets": offsets, "key_schema_id": null, "value_schema_id": null});
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/vnd.kafka.v2+json",
        )],
        Json(body),
    )
        .into_response())
}

/// A Kinesis `Data` field: the record's JSON as an object, or a base64 string of it.
fn data_bytes(data: &RawValue) -> Result<Vec<u8>, IngestError> {
    let text = data.get();
    if text.starts_with('"') {
        let encoded: String =
            serde_json::from_str(text).map_err(|e| IngestError::BadBody(e.to_string()))?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| IngestError::BadBody(format!("Data is a string but not base64: {e}")))
    } else {
        Ok(text.as_bytes().to_vec())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KinesisRecord<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Deserialize)]
struct KinesisRecords<'a> {
    #[serde(borrow, alias = "Records")]
    records: Vec<KinesisEntry<'a>>,
}

#[derive(Deserialize)]
struct KinesisEntry<'a> {
    #[serde(borrow, alias = "Data")]
    data: &'a RawValue,
}

fn sequence_numbers(offsets: &[(String, Offset)]) -> Vec<Value> {
    offsets
        .iter()
        .map(|(partition, offset)| json!({"SequenceNumber": offset.to_string(), "ShardId": partition}))
        .collect()
}

/// `PUT /streams/{stream}/record`.
pub async fn put_record(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, IngestError> {
    let stream = stream_of(&name)?;
    let (admission, body) = receive(&state, &headers, body).await?;
    let record: KinesisRecord = parse(&body)?;
    let payload = data_bytes(record.data)?;
    drop(body);
    let offsets = store(&state, admission, stream, vec![payload]).await?;
    Ok(Json(
        sequence_numbers(&offsets)
            .into_iter()
            .next()
            .unwrap_or(Value::Null),
    ))
}

/// `PUT /streams/{stream}/records`.
pub async fn put_records(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, IngestError> {
    let stream = stream_of(&name)?;
    let (admission, body) = receive(&state, &headers, body).await?;
    let batch: KinesisRecords = parse(&body)?;
    let payloads = batch
        .records
        .iter()
        .map(|r| data_bytes(r.data))
        .collect::<Result<Vec<_>, _>>()?;
    drop(body);
    let offsets = store(&state, admission, stream, payloads).await?;
    Ok(Json(
        json!({"FailedRecordCount": 0, "Records": sequence_numbers(&offsets)}),
    ))
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use futures::stream;
    use tower::ServiceExt;

    use super::*;
    use crate::connectors::JobContext;
    use crate::connectors::http::{HttpSettings, IngestQueue};
    use crate::serve::{app, test_state};

    fn state(limits: HttpSettings) -> AppState {
        let state = test_state();
        let job = JobContext {
            stats: state.stats.clone(),
            ..JobContext::default()
        };
        state.with_ingest(Some(IngestQueue::new(limits, &job)))
    }

    async fn send(state: &AppState, request: Request<Body>) -> (StatusCode, Option<String>) {
        let response = app(state.clone()).oneshot(request).await.unwrap();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|value| value.to_str().unwrap().to_owned());
        (response.status(), retry_after)
    }

    const BODY: &str = r#"{"records": [{"value": {"index": 1}}]}"#;

    #[tokio::test]
    async fn overload_answers_say_when_to_retry_and_size_refusals_do_not() {
        // No place in flight: 429 with Retry-After.
        let busy = state(HttpSettings {
            max_in_flight: 0,
            ..HttpSettings::default()
        });
        let request = Request::post("/topics/a.pin")
            .body(Body::from(BODY))
            .unwrap();
        assert_eq!(
            send(&busy, request).await,
            (StatusCode::TOO_MANY_REQUESTS, Some("1".to_owned()))
        );
        assert_eq!(busy.stats.ingest_refusals("busy"), 1);
        // No bytes left for the body: 503 with Retry-After.
        let full = state(HttpSettings {
            queue_bytes: 8,
            ..HttpSettings::default()
        });
        let request = Request::put("/streams/s-user/records")
            .body(Body::from(BODY))
            .unwrap();
        assert_eq!(
            send(&full, request).await,
            (StatusCode::SERVICE_UNAVAILABLE, Some("1".to_owned()))
        );
        // Over max_body_bytes, declared or streamed: 413, and no retry hint (it never fits).
        let small = state(HttpSettings {
            max_body_bytes: 16,
            ..HttpSettings::default()
        });
        let request = Request::post("/topics/a.pin")
            .header(header::CONTENT_LENGTH, BODY.len())
            .body(Body::from(BODY))
            .unwrap();
        assert_eq!(
            send(&small, request).await,
            (StatusCode::PAYLOAD_TOO_LARGE, None)
        );
        let chunks = stream::iter(
            BODY.as_bytes()
                .chunks(4)
                .map(|chunk| Ok::<_, std::io::Error>(chunk.to_vec())),
        );
        let request = Request::put("/streams/s-geo/record")
            .body(Body::from_stream(chunks))
            .unwrap();
        assert_eq!(
            send(&small, request).await,
            (StatusCode::PAYLOAD_TOO_LARGE, None)
        );
        assert_eq!(small.stats.ingest_refusals("too_large"), 2);
    }

    #[test]
    fn every_retryable_answer_is_a_refusal_or_an_unknown_outcome_never_a_2xx() {
        for error in [
            IngestError::NotStored,
            IngestError::Timeout,
            IngestError::Refused(Refused::Stopping),
            IngestError::Refused(Refused::QueueFull),
            IngestError::Refused(Refused::Busy { limit: 1 }),
        ] {
            let response = error.into_response();
            assert!(!response.status().is_success());
            assert!(response.headers().contains_key(header::RETRY_AFTER));
        }
    }
}
