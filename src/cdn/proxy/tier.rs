//! Tiered caching: a distribution with a `parent` fetches its misses from that other
//! edgewise-cdn instead of its origins, so the parent's cache (and its request collapsing)
//! fills once from the origin for many edges. The parent is reached at its own address but
//! asked for the distribution's host, so it routes and presents the certificate of the same
//! distribution; its `X-Cache` tells when it answered from its cache ("Hit from parent").

use std::io;
use std::sync::Arc;

use http::HeaderValue;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::forward::OriginHandle;
use crate::cdn::origin::http::HttpOriginClient;
use crate::config::cdn::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, Distribution, HttpOrigin, OriginTarget,
};
use crate::config::parent_tier::ParentTier;

/// The origin handles of `distribution`, which has `parent`: each origin becomes the parent
/// (with that origin's timeouts), and origin groups stay as they are over those.
///
/// # Errors
/// A `parent_ca` that cannot be read or used.
pub fn parent_handles(
    distribution: &Distribution,
    parent: &ParentTier,
) -> io::Result<Vec<OriginHandle>> {
    let tls = parent_tls(parent)?;
    let host = distribution
        .hosts
        .first()
        .ok_or_else(|| io::Error::other("a distribution without hosts has no parent to ask"))?;
    let name = ServerName::try_from(host.clone())
        .map_err(|e| io::Error::other(format!("host {host}: {e}")))?;
    let host_header =
        HeaderValue::from_str(host).map_err(|e| io::Error::other(format!("host {host}: {e}")))?;
    let handles = (distribution.origins.iter())
        .map(|origin| {
            let (connect_timeout, read_timeout) = match &origin.target {
                OriginTarget::Group {
                    members,
                    failover_status,
                } => {
                    return OriginHandle::Group {
                        members: members.clone(),
                        failover_status: failover_status.clone(),
                    };
                }
                OriginTarget::Http(http) => (http.connect_timeout, http.read_timeout),
                OriginTarget::Dir(_) => (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT),
            };
            let target = HttpOrigin {
                base: parent.base.clone(),
                path_prefix: String::new(),
                host: host_header.clone(),
                connect_timeout,
                read_timeout,
                // The origin's own headers (a shared secret) are the parent's to add.
                headers: Vec::new(),
            };
            let id = format!("{} via parent", origin.id);
            OriginHandle::Http(Box::new(HttpOriginClient::new(
                &id,
                target,
                tls.clone(),
                Some(name.clone()),
            )))
        })
        .collect();
    Ok(handles)
}

/// The TLS client config for `parent`: the Mozilla roots, and its `parent_ca` if any.
fn parent_tls(parent: &ParentTier) -> io::Result<Arc<rustls::ClientConfig>> {
    let mut extra = Vec::new();
    if let Some(path) = &parent.ca {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| io::Error::other(format!("parent_ca {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(io::Error::other(format!(
                "parent_ca {}: no certificate in it",
                path.display()
            )));
        }
        extra = certs;
    }
    crate::net::tls::client_config_trusting(extra)
        .map_err(|e| io::Error::other(format!("parent_ca: not a usable trust anchor: {e}")))
}
