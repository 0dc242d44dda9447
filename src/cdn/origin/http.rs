//! HTTP(S) origins: pooled connections (hyper-util's client, rustls with ring), connect and
//! read timeouts, and errors classified for the viewer (502 vs 504).

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::ServerName;

use super::OriginError;
use crate::cdn::body::Body;
use crate::config::cdn::HttpOrigin;

/// Idle pooled connections are closed after this.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for one origin: its own pool and timeouts.
pub struct HttpOriginClient {
    pub origin: HttpOrigin,
    /// `id (scheme://address)`: what a failure names, in the 502 body and the log.
    name: String,
    client: Client<HttpsConnector<HttpConnector>, Body>,
}

impl HttpOriginClient {
    /// A client for `origin`, the distribution's origin `id`. With `tls_name`, HTTPS
    /// connections send and verify that name instead of the URL's host (a parent tier is
    /// reached by its address but answers for the distribution's host).
    pub fn new(
        id: &str,
        origin: HttpOrigin,
        tls: Arc<rustls::ClientConfig>,
        tls_name: Option<ServerName<'static>>,
    ) -> HttpOriginClient {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(origin.connect_timeout));
        http.set_nodelay(true);
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http();
        let builder = match tls_name {
            Some(name) => builder.with_server_name_resolver(FixedServerNameResolver::new(name)),
            None => builder,
        };
        let connector = builder.enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        let name = format!("{id} ({})", origin.base);
        HttpOriginClient {
            origin,
            name,
            client,
        }
    }

    /// Sends `request` (its URI already pointing at the origin); the response headers must
    /// arrive within the read timeout.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Body>, OriginError> {
        let response = tokio::time::timeout(self.origin.read_timeout, self.client.request(request))
            .await
            .map_err(|_| OriginError::Timeout)?
            .map_err(|e| {
                let why = format!("{}: {}", self.name, causes(&e));
                if e.is_connect() {
                    OriginError::Connect(why)
                } else {
                    OriginError::Protocol(why)
                }
            })?;
        Ok(response.map(|body| body.map_err(Into::into).boxed()))
    }
}

/// An error and its sources in one line ("client error (Connect): tcp connect error:
/// Connection refused"): the outermost message alone says nothing useful.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
