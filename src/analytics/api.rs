//! The analytics HTTP API, on the stream API's listeners and behind the same authentication
//! (SigV4 with the configured keys, or loopback only):
//! - `POST /analytics/query` `{"sql": "SELECT ...", "format": "json" | "csv"}`: a one-shot
//!   query, its rows streamed as they are computed;
//! - `POST /analytics/discover` `{"stream": "..."}`: columns and types proposed from the
//!   stream's most recent records (`discover_records`), with a ready `[[analytics.inputs]]`;
//! - `GET /analytics/tables`: every stream as a table, with its columns;
//! - `GET /analytics/applications`: the applications, their definitions and status;
//!   `PUT /analytics/applications/<name>` `{"inputs", "sql", "outputs"}` creates or replaces
//!   one (checked first: a mistake changes nothing), `DELETE` removes it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::BodyExt;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::Analytics;
use super::app::registry::{AppDefinition, RegistryError};
use super::decode::Decoder;
use super::discover;
use super::query::{OutputFormat, QueryError};
use crate::cdn::body::{self, Body, BodyError};

/// `POST /analytics/query`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryRequest {
    sql: String,
    #[serde(default)]
    format: Option<String>,
}

/// The longest SQL text taken.
const MAX_SQL: usize = 64 << 10;

/// Answers one analytics request (`path` under `/analytics/`, `body` read and authenticated).
pub async fn handle(
    analytics: &Analytics,
    method: &Method,
    path: &str,
    body: Bytes,
) -> Response<Body> {
    if let Some(rest) = path.strip_prefix("/analytics/applications") {
        return applications(analytics, method, rest, &body).await;
    }
    match (method, path) {
        (&Method::POST, "/analytics/query") => query(analytics, &body).await,
        (&Method::GET, "/analytics/tables") => tables(analytics),
        (&Method::POST, "/analytics/discover") => discover(analytics, &body),
        (_, "/analytics/query") => error(StatusCode::METHOD_NOT_ALLOWED, "use POST"),
        (_, "/analytics/tables") => error(StatusCode::METHOD_NOT_ALLOWED, "use GET"),
        (_, "/analytics/discover") => error(StatusCode::METHOD_NOT_ALLOWED, "use POST"),
        _ => error(
            StatusCode::NOT_FOUND,
            "no such analytics resource: POST /analytics/query, POST /analytics/discover, \
             GET /analytics/tables, GET /analytics/applications, PUT or DELETE \
             /analytics/applications/<name>",
        ),
    }
}

async fn query(analytics: &Analytics, body: &[u8]) -> Response<Body> {
    let request: QueryRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "expected {{\"sql\": \"SELECT ...\", \"format\": \"json\" | \"csv\"}}: {e}"
                ),
            );
        }
    };
    if request.sql.len() > MAX_SQL {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the SQL is longer than {MAX_SQL} bytes"),
        );
    }
    let format = match request.format.as_deref() {
        None => OutputFormat::Json,
        Some(name) => match OutputFormat::parse(name) {
            Some(format) => format,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("format {name:?}: expected \"json\" or \"csv\""),
                );
            }
        },
    };
    match analytics.queries().start(request.sql, format).await {
        Ok(chunks) => {
            let mut response = Response::new(ChunkBody(chunks).boxed());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static(format.content_type()),
            );
            response
        }
        Err(QueryError::Sql(why)) => error(StatusCode::BAD_REQUEST, &why),
        Err(e @ QueryError::Stopped) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// `POST /analytics/discover`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscoverRequest {
    stream: String,
}

/// Proposes columns for a stream from its most recent records, shared out over its shards.
fn discover(analytics: &Analytics, body: &[u8]) -> Response<Body> {
    let request: DiscoverRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"stream\": \"name\"}}: {e}"),
            );
        }
    };
    let Some(stream) = analytics.log().get(&request.stream) else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("no stream {:?}", request.stream),
        );
    };
    let wanted = analytics.config().discover_records;
    let per_shard = wanted.div_ceil(stream.shards().len().max(1)) as u64;
    let mut records = Vec::with_capacity(wanted);
    for shard in stream.shards() {
        let from = shard
            .next_offset()
            .saturating_sub(per_shard)
            .max(shard.first_offset());
        match shard.read(from, per_shard as usize, 8 << 20) {
            Ok(read) => records.extend(read.records.into_iter().map(|r| r.data)),
            Err(e) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("reading {}: {e}", shard.id()),
                );
            }
        }
    }
    match discover::discover(&records) {
        Ok(found) => {
            let toml = found.to_toml(&request.stream);
            let mut value = serde_json::to_value(&found).unwrap_or_default();
            value["stream"] = request.stream.into();
            value["toml"] = toml.into();
            json(StatusCode::OK, &value)
        }
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// Every stream as a table: name, whether an input schema reads it, and its columns.
fn tables(analytics: &Analytics) -> Response<Body> {
    let tables: Vec<serde_json::Value> = analytics
        .log()
        .streams()
        .iter()
        .map(|stream| {
            let input = analytics.config().input(stream.name());
            let schema = Decoder::new(input).schema().clone();
            let columns: Vec<serde_json::Value> = schema
                .fields()
                .iter()
                .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
                .collect();
            serde_json::json!({
                "name": stream.name(),
                "format": input.map_or("text", |i| i.format.name()),
                "columns": columns,
            })
        })
        .collect();
    json(StatusCode::OK, &serde_json::json!({ "tables": tables }))
}

/// `GET /analytics/applications`, `PUT` and `DELETE /analytics/applications/<name>`
/// (`rest` is what follows `/analytics/applications`).
async fn applications(
    analytics: &Analytics,
    method: &Method,
    rest: &str,
    body: &[u8],
) -> Response<Body> {
    let registry = analytics.applications();
    let name = rest
        .strip_prefix('/')
        .filter(|n| !n.is_empty() && !n.contains('/'));
    match (method, rest, name) {
        (&Method::GET, "" | "/", _) => {
            let list = registry.list().await;
            json(StatusCode::OK, &serde_json::json!({ "applications": list }))
        }
        (_, "" | "/", _) => error(StatusCode::METHOD_NOT_ALLOWED, "use GET"),
        (&Method::PUT, _, Some(name)) => {
            let definition: AppDefinition = match serde_json::from_slice(body) {
                Ok(definition) => definition,
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!(
                            "expected {{\"inputs\": [...], \"sql\": \"...\", \"outputs\": \
                             [{{\"sql_stream\": ..., \"stream\": ...}}]}}: {e}"
                        ),
                    );
                }
            };
            match registry.put(name, definition).await {
                Ok(()) => json(StatusCode::OK, &serde_json::json!({ "name": name })),
                Err(e) => registry_error(&e),
            }
        }
        (&Method::DELETE, _, Some(name)) => match registry.delete(name).await {
            Ok(()) => json(StatusCode::OK, &serde_json::json!({ "deleted": name })),
            Err(e) => registry_error(&e),
        },
        (_, _, Some(_)) => error(StatusCode::METHOD_NOT_ALLOWED, "use PUT or DELETE"),
        _ => error(
            StatusCode::NOT_FOUND,
            "expected /analytics/applications/<name>",
        ),
    }
}

fn registry_error(e: &RegistryError) -> Response<Body> {
    let status = match e {
        RegistryError::Invalid(_) => StatusCode::BAD_REQUEST,
        RegistryError::FromConfig(_) => StatusCode::CONFLICT,
        RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
        RegistryError::NotStarted => StatusCode::SERVICE_UNAVAILABLE,
        RegistryError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, &e.to_string())
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(body::full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// `{"error": why}` with `status`.
pub fn error(status: StatusCode, why: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": why }))
}

/// A response body of the chunks a query writes, ending when it is done.
struct ChunkBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChunkBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| Ok(Frame::data(chunk))))
    }
}
