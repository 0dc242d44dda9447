//! The ACME certificates in force, shared by every HTTPS listener (CDN and stream API) and
//! the renewal task: each slot swaps whole certificates lock-free, so a renewal reaches the
//! next handshake and never touches a connection already open. The challenge answers of
//! orders in progress (tls-alpn-01 certificates, http-01 key authorizations) live here too,
//! for the listeners to present.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::{ArcSwap, ArcSwapOption};
use rustls::sign::CertifiedKey;

use crate::config::acme::AcmeCert;

/// What a slot serves at start: a stored certificate with its validity (`notBefore`,
/// `notAfter` in Unix seconds), or a stand-in (no validity) until the first is issued.
pub type Initial = (Arc<CertifiedKey>, Option<(i64, i64)>);

/// What one `[[cdn.certs]]` ACME entry serves now, and how its renewals went.
#[derive(Debug)]
pub struct Slot {
    /// Sorted, lower-case; wildcards as `*.example.org`.
    pub names: Vec<String>,
    current: ArcSwap<CertifiedKey>,
    status: ArcSwap<SlotStatus>,
}

/// A slot's state for metrics and the console.
#[derive(Debug, Clone, Default)]
pub struct SlotStatus {
    /// Unix seconds of the served certificate's `notBefore` and `notAfter`; `None` while a
    /// stand-in is served (no certificate issued yet).
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    /// When the next renewal is due (or retried).
    pub next_attempt: Option<SystemTime>,
    pub issued: u64,
    pub failures: u64,
    /// The last failed order's error, cleared by a success.
    pub last_error: Option<String>,
}

impl Slot {
    /// The certificate handshakes get now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }

    pub fn status(&self) -> Arc<SlotStatus> {
        self.status.load_full()
    }

    pub(super) fn install(&self, key: Arc<CertifiedKey>) {
        self.current.store(key);
    }

    pub(super) fn update_status(&self, change: impl FnOnce(&mut SlotStatus)) {
        let mut status = SlotStatus::clone(&self.status.load());
        change(&mut status);
        self.status.store(Arc::new(status));
    }

    /// Whether this slot's certificate covers `name` (any case): exactly, or by a wildcard
    /// one label deep.
    fn covers(&self, name: &str) -> bool {
        self.names.iter().any(|n| match n.strip_prefix("*.") {
            Some(base) => name
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest.eq_ignore_ascii_case(base)),
            None => n.eq_ignore_ascii_case(name),
        })
    }
}

/// Every ACME slot and the answers to challenges in progress.
#[derive(Debug)]
pub struct AcmeCerts {
    slots: Vec<Arc<Slot>>,
    /// tls-alpn-01: the challenge certificate by the name being proved.
    alpn: ArcSwapOption<HashMap<String, Arc<CertifiedKey>>>,
    /// http-01: the key authorization by token.
    http: ArcSwapOption<HashMap<String, String>>,
    /// HTTPS listeners offer ALPN `acme-tls/1` (the challenge is tls-alpn-01).
    pub answers_alpn: bool,
}

impl AcmeCerts {
    /// Slots for `certs`, each serving `initial` of its entry: a stored certificate with its
    /// validity (Unix seconds), or a stand-in until the first is issued.
    pub fn new(certs: &[AcmeCert], initial: Vec<Initial>, answers_alpn: bool) -> AcmeCerts {
        let slots = certs
            .iter()
            .zip(initial)
            .map(|(cert, (key, validity))| {
                Arc::new(Slot {
                    names: cert.names.clone(),
                    current: ArcSwap::new(key),
                    status: ArcSwap::from_pointee(SlotStatus {
                        not_before: validity.map(|(from, _)| from),
                        not_after: validity.map(|(_, until)| until),
                        ..SlotStatus::default()
                    }),
                })
            })
            .collect();
        AcmeCerts {
            slots,
            alpn: ArcSwapOption::empty(),
            http: ArcSwapOption::empty(),
            answers_alpn,
        }
    }

    pub fn slots(&self) -> &[Arc<Slot>] {
        &self.slots
    }

    /// The certificate of the first slot covering `name`.
    pub fn for_name(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        self.slots
            .iter()
            .find(|slot| slot.covers(name))
            .map(|slot| slot.current())
    }

    /// The tls-alpn-01 certificate for `name`, while its challenge is open.
    pub fn alpn_challenge(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        self.alpn
            .load()
            .as_ref()?
            .get(&name.to_ascii_lowercase())
            .cloned()
    }

    /// The http-01 key authorization for `token`, while its challenge is open.
    pub fn http_challenge(&self, token: &str) -> Option<String> {
        self.http.load().as_ref()?.get(token).cloned()
    }

    pub(super) fn open_alpn(&self, name: &str, key: Arc<CertifiedKey>) {
        edit(&self.alpn, |map| {
            map.insert(name.to_string(), key.clone());
        });
    }

    pub(super) fn close_alpn(&self, name: &str) {
        edit(&self.alpn, |map| {
            map.remove(name);
        });
    }

    pub(super) fn open_http(&self, token: &str, key_authorization: &str) {
        edit(&self.http, |map| {
            map.insert(token.to_string(), key_authorization.to_string());
        });
    }

    pub(super) fn close_http(&self, token: &str) {
        edit(&self.http, |map| {
            map.remove(token);
        });
    }
}

/// Swaps in a copy of `map` changed by `change` (none when it ends up empty, so the
/// listeners' check is one load).
fn edit<V: Clone>(
    map: &ArcSwapOption<HashMap<String, V>>,
    change: impl Fn(&mut HashMap<String, V>),
) {
    map.rcu(|current| {
        let mut next = current.as_deref().cloned().unwrap_or_default();
        change(&mut next);
        (!next.is_empty()).then(|| Arc::new(next))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_covers_one_label_only() {
        let cert = AcmeCert {
            names: vec!["*.home.test".into(), "home.test".into()],
        };
        let key = crate::acme::store::stand_in(&cert.names).unwrap();
        let certs = AcmeCerts::new(&[cert], vec![(key, None)], false);
        assert!(certs.for_name("Media.Home.Test").is_some());
        assert!(certs.for_name("home.test").is_some());
        assert!(certs.for_name("media.home.test").is_some());
        assert!(certs.for_name("a.media.home.test").is_none());
        assert!(certs.for_name("otherhome.test").is_none());
    }
}
