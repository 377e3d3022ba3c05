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
//! and nothing is stored; a full queue gets 503.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::AppState;
use crate::connectors::Offset;
use crate::connectors::http::{Offsets, Refused};
use crate::stream::Stream;

/// Messages one request may carry.
pub const MAX_RECORDS: usize = 10_000;
/// Bodies larger than this are refused (413) before they are read.
pub const MAX_BODY_BYTES: usize = 16 << 20;
/// How long a request waits for its commit before the client is told to retry (504).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("HTTP ingest is not enabled: run with --from http (or a [[source]] type = \"http\")")]
    Disabled,
    #[error("`{0}` names no stream: its name must end in pin, geo or user")]
    UnknownStream(String),
    #[error("bad body: {0}")]
    BadBody(String),
    #[error("{0} records in one request; at most {MAX_RECORDS}")]
    TooMany(usize),
    #[error("overloaded: too many messages wait for the tables; retry later")]
    Overloaded,
    #[error("not stored: the engine stopped before committing; retry")]
    NotStored,
    #[error("not committed within {} s; retry (duplicates are dropped)", COMMIT_TIMEOUT.as_secs())]
    Timeout,
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = match self {
            IngestError::Disabled | IngestError::Overloaded | IngestError::NotStored => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            IngestError::UnknownStream(_) => StatusCode::NOT_FOUND,
            IngestError::BadBody(_) => StatusCode::UNPROCESSABLE_ENTITY,
            IngestError::TooMany(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        };
        // `error_code`/`message` as the REST proxy answers; `error` as the rest of the API.
        let message = self.to_string();
        let body = json!({"error_code": status.as_u16(), "message": message, "error": message});
        (status, Json(body)).into_response()
    }
}

fn stream_of(name: &str) -> Result<Stream, IngestError> {
    Stream::from_name_token(name).ok_or_else(|| IngestError::UnknownStream(name.to_owned()))
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, IngestError> {
    serde_json::from_slice(body).map_err(|e| IngestError::BadBody(e.to_string()))
}

/// Queues the messages and waits for their commit; the offsets they were given.
async fn store(
    state: &AppState,
    stream: Stream,
    payloads: Vec<Vec<u8>>,
) -> Result<Offsets, IngestError> {
    if payloads.len() > MAX_RECORDS {
        return Err(IngestError::TooMany(payloads.len()));
    }
    let queue = state.ingest.as_ref().ok_or(IngestError::Disabled)?;
    let answer = queue
        .submit(stream, payloads)
        .map_err(|Refused::Overloaded| IngestError::Overloaded)?;
    match tokio::time::timeout(COMMIT_TIMEOUT, answer).await {
        Ok(Ok(offsets)) => Ok(offsets),
        Ok(Err(_)) => Err(IngestError::NotStored),
        Err(_) => Err(IngestError::Timeout),
    }
}

/// The messages of a REST Proxy v2 body (`POST /topics/{topic}`): each record's `value`, its
/// JSON text exactly as sent.
pub fn proxy_messages(body: &[u8]) -> Result<Vec<Vec<u8>>, IngestError> {
    let parsed: ProxyBody = parse(body)?;
    Ok(parsed
        .records
        .iter()
        .map(|r| r.value.get().as_bytes().to_vec())
        .collect())
}

/// The message of an API Gateway `PUT /streams/{stream}/record` body: its `Data`.
pub fn kinesis_record_message(body: &[u8]) -> Result<Vec<u8>, IngestError> {
    let record: KinesisRecord = parse(body)?;
    data_bytes(record.data)
}

/// The messages of a `PUT /streams/{stream}/records` body (`records`/`data` or
/// `Records`/`Data`).
pub fn kinesis_records_messages(body: &[u8]) -> Result<Vec<Vec<u8>>, IngestError> {
    let batch: KinesisRecords = parse(body)?;
    batch.records.iter().map(|r| data_bytes(r.data)).collect()
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
    body: axum::body::Bytes,
) -> Result<Response, IngestError> {
    let stream = stream_of(&topic)?;
    let offsets = store(&state, stream, proxy_messages(&body)?).await?;
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
    body: axum::body::Bytes,
) -> Result<Json<Value>, IngestError> {
    let stream = stream_of(&name)?;
    let offsets = store(&state, stream, vec![kinesis_record_message(&body)?]).await?;
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
    body: axum::body::Bytes,
) -> Result<Json<Value>, IngestError> {
    let stream = stream_of(&name)?;
    let offsets = store(&state, stream, kinesis_records_messages(&body)?).await?;
    Ok(Json(
        json!({"FailedRecordCount": 0, "Records": sequence_numbers(&offsets)}),
    ))
}
