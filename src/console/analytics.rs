//! The console's SQL editor's requests: `/console/api/analytics/<rest>` is the analytics API's
//! `/analytics/<rest>` (tables, discover, one-shot queries, applications), answered by the
//! same handlers, behind the admin listener's rule instead of SigV4.
//!
//! From loopback the page needs no token, as for its GETs; its writes must say
//! `Content-Type: application/json`, which a page of another origin cannot send without a
//! CORS preflight that this listener never grants, so no other site can act through a
//! viewer's browser.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::analytics::{Analytics, api};
use crate::cdn::body::Body;

/// Where the console's analytics requests go.
pub const PREFIX: &str = "/console/api/analytics/";

/// The largest request body taken (SQL text and application definitions).
const MAX_BODY: usize = 256 << 10;

/// Whether `request` is an analytics write the page makes (JSON, under [`PREFIX`]), which
/// loopback peers may make without a token.
pub fn is_open_write(request: &Request<Incoming>) -> bool {
    let json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim() == "application/json");
    request.uri().path().starts_with(PREFIX)
        && json
        && matches!(
            *request.method(),
            Method::POST | Method::PUT | Method::DELETE
        )
}

/// Answers a console analytics request (already allowed by the listener's rule).
pub async fn answer(analytics: Option<&Analytics>, request: Request<Incoming>) -> Response<Body> {
    let Some(analytics) = analytics else {
        return api::error(
            StatusCode::NOT_FOUND,
            "analytics is off: this process has no [analytics] section",
        );
    };
    let method = request.method().clone();
    let path = format!(
        "/analytics/{}",
        request.uri().path().trim_start_matches(PREFIX)
    );
    let body: Bytes = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return api::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the request body: {e} (at most {MAX_BODY} bytes)"),
            );
        }
    };
    api::handle(analytics, &method, &path, body).await
}
