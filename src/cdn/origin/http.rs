//! HTTP(S) origins: pooled connections (hyper-util's client, rustls with ring), connect and
//! read timeouts, and errors classified for the viewer (502 vs 504).

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::OriginError;
use crate::cdn::body::Body;
use crate::config::cdn::HttpOrigin;

/// Idle pooled connections are closed after this.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for one origin: its own pool and timeouts.
pub struct HttpOriginClient {
    pub origin: HttpOrigin,
    client: Client<HttpsConnector<HttpConnector>, Body>,
}

impl HttpOriginClient {
    pub fn new(origin: HttpOrigin, tls: Arc<rustls::ClientConfig>) -> HttpOriginClient {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(origin.connect_timeout));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        HttpOriginClient { origin, client }
    }

    /// Sends `request` (its URI already pointing at the origin); the response headers must
    /// arrive within the read timeout.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Body>, OriginError> {
        let response = tokio::time::timeout(self.origin.read_timeout, self.client.request(request))
            .await
            .map_err(|_| OriginError::Timeout)?
            .map_err(|e| {
                if e.is_connect() {
                    OriginError::Connect(e.to_string())
                } else {
                    OriginError::Protocol(e.to_string())
                }
            })?;
        Ok(response.map(|body| body.map_err(Into::into).boxed()))
    }
}
