//! The HTTPS client instant-acme talks to the CA with: hyper over rustls (ring), trusting
//! the Mozilla roots plus `ca_roots` (a private CA, Pebble), every exchange bounded in time.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Longest a request to the CA may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// An HTTPS-only client for the CA's endpoints.
pub struct CaClient(Client<Https, BodyWrapper<Bytes>>);

impl CaClient {
    /// A client trusting the Mozilla roots and the certificates in `ca_roots`.
    ///
    /// # Errors
    /// `ca_roots` cannot be read or holds no usable certificate.
    pub fn new(ca_roots: Option<&Path>) -> Result<CaClient, String> {
        let extra = match ca_roots {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
                    .filter_map(Result::ok)
                    .collect();
                if certs.is_empty() {
                    return Err(format!("{}: no PEM certificate in it", path.display()));
                }
                certs
            }
            None => Vec::new(),
        };
        let tls = crate::net::tls::client_config_trusting(extra)
            .map_err(|e| format!("the CA roots are not usable trust anchors: {e}"))?;
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(REQUEST_TIMEOUT));
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        Ok(CaClient(
            Client::builder(TokioExecutor::new()).build(connector),
        ))
    }
}

impl HttpClient for CaClient {
    fn request(
        &self,
        request: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let pending = self.0.request(request);
        Box::pin(async move {
            match tokio::time::timeout(REQUEST_TIMEOUT, pending).await {
                Ok(Ok(response)) => Ok(BytesResponse::from(response)),
                Ok(Err(e)) => Err(instant_acme::Error::Other(Box::new(e))),
                Err(_) => Err(instant_acme::Error::Str(
                    "the CA did not answer within 30 s",
                )),
            }
        })
    }
}
