//! The API's one error type: every failure a client can cause is a JSON body with a reason.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::analytics::AGGREGATES;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A name that is not a SPEC §3 aggregate; the body lists the ones there are.
    #[error("no aggregate named {0}")]
    UnknownAggregate(String),
    /// A path (or method) the API does not have.
    #[error("no route {method} {path}")]
    NoRoute { method: String, path: String },
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.to_string();
        let body = match &self {
            ApiError::UnknownAggregate(_) => {
                let names: Vec<&str> = AGGREGATES.iter().map(|spec| spec.name).collect();
                json!({ "error": error, "aggregates": names })
            }
            ApiError::NoRoute { .. } => json!({ "error": error }),
        };
        (StatusCode::NOT_FOUND, Json(body)).into_response()
    }
}
