//! Certificates that renew themselves (ACME, RFC 8555), as CloudFront's come from ACM: the
//! `[[cdn.certs]]` entries with `acme = true` are ordered from `[cdn.acme]`'s CA at start
//! and renewed in the background, each new certificate swapped into the HTTPS listeners
//! for the next handshake. The protocol is instant-acme's; here are the parts that are
//! Edgewise's own.
//!
//! - `certs`: the certificates in force and the open challenge answers, read lock-free by
//!   the TLS resolver and the HTTP listener
//! - `store`: the account and certificates under `[cdn] data_dir`
//! - `client`: the HTTPS client for the CA (extra trust roots for private CAs)
//! - `order`: registering, ordering, proving names, finalizing
//! - `dns01`: publishing dns-01 TXT records by RFC 2136 updates with TSIG
//! - `renew`: when to order, and retries with backoff
//! - `metrics`: expiry and order counts on `/metrics`

mod certs;
mod client;
mod dns01;
mod metrics;
mod order;
mod renew;
mod store;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use certs::{AcmeCerts, Slot, SlotStatus};
pub use metrics::AcmeCollector;
pub use store::StoreError;

use crate::config::CdnConfig;
use crate::config::acme::{AcmeConfig, Challenge};
use store::Store;

/// The ACME prefix of HTTP paths that answer http-01 challenges (RFC 8555 §8.3).
pub const HTTP_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";
/// The ALPN protocol of tls-alpn-01 validation handshakes (RFC 8737 §6.2).
pub const ALPN_CHALLENGE: &[u8] = b"acme-tls/1";

/// The ACME side of one edgewise-cdn: its certificates, and the task keeping them current.
pub struct Acme {
    config: AcmeConfig,
    store: Store,
    certs: Arc<AcmeCerts>,
}

impl Acme {
    /// The ACME certificates of `cdn`, serving what `data_dir` holds (a stand-in where
    /// nothing was issued yet or the stored files are unusable); `None` without any.
    ///
    /// # Errors
    /// A stand-in certificate could not be made.
    pub fn prepare(cdn: &CdnConfig) -> Result<Option<Acme>, StoreError> {
        let (Some(config), Some(data_dir)) = (&cdn.acme, &cdn.data_dir) else {
            return Ok(None);
        };
        if cdn.acme_certs.is_empty() {
            return Ok(None);
        }
        let store = Store::new(data_dir);
        let mut initial = Vec::new();
        for cert in &cdn.acme_certs {
            let stored = store.load_cert(&cert.names).unwrap_or_else(|e| {
                warn!(names = ?cert.names, "the stored certificate is not used: {e}");
                None
            });
            initial.push(match stored {
                Some(stored) => {
                    info!(names = ?cert.names, not_after = stored.not_after, "serving the stored ACME certificate");
                    (stored.key, Some((stored.not_before, stored.not_after)))
                }
                None => (store::stand_in(&cert.names)?, None),
            });
        }
        Ok(Some(Acme {
            config: config.clone(),
            store,
            certs: Arc::new(AcmeCerts::new(
                &cdn.acme_certs,
                initial,
                config.challenge == Challenge::TlsAlpn01,
            )),
        }))
    }

    pub fn certs(&self) -> &Arc<AcmeCerts> {
        &self.certs
    }

    /// Orders and renews until `shutdown`; the listeners must be serving (the CA connects
    /// back to them for tls-alpn-01 and http-01).
    pub async fn run(self, shutdown: CancellationToken) {
        renew::run(self.config, self.store, self.certs, shutdown).await;
    }
}
