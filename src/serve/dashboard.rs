//! `GET /`: the dashboard, one self-contained page (inline CSS, JS and SVG charts; nothing
//! fetched from elsewhere, the machine may have no internet). It loads the JSON API once,
//! then follows `/api/v1/events`: `stats` events redraw the counters and charts, and
//! `aggregates` events refetch the aggregates whose version moved.
//!
//! The page has a card for every aggregate of the registry ([`AGGREGATES`]): their names are
//! written into it when it is served, so a new query shows up without editing the
//! page (which only adds a title and a chart for the ones it knows).

use axum::http::header;
use axum::response::{Html, IntoResponse};
use serde_json::json;

use crate::analytics::AGGREGATES;

/// The page, compiled in: no files to find at run time.
const PAGE: &str = include_str!("dashboard.html");

/// Where the page takes the registry's entries.
const REGISTRY_SLOT: &str = "/* REGISTRY */";

pub async fn page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], Html(with_registry()))
}

/// The page with the registry's aggregates in order, as JavaScript objects `{ name: "..." }`.
fn with_registry() -> String {
    let entries: Vec<String> = AGGREGATES
        .iter()
        .map(|aggregate| format!("{{ name: {} }}", json!(aggregate.name)))
        .collect();
    PAGE.replacen(REGISTRY_SLOT, &entries.join(", "), 1)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::serve::{app, test_state};

    #[tokio::test]
    async fn dashboard_is_one_self_contained_page() {
        let request = Request::get("/").body(Body::empty()).unwrap();
        let response = app(test_state()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let page = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(page.contains("new EventSource(\"/api/v1/events\")"));
        // Nothing loaded from elsewhere: the machine may have no network.
        for outside in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "@import",
            "src=\"//",
        ] {
            assert!(!page.contains(outside), "external resource: {outside}");
        }
        // Every aggregate has a card.
        for spec in crate::analytics::AGGREGATES {
            assert!(
                page.contains(&format!("name: \"{}\"", spec.name)),
                "{}",
                spec.name
            );
        }
    }
}
