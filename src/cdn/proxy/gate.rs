//! The checks before the cache: where the viewer is (trusted proxies, GeoIP), whether their
//! country may be served, whether the request is signed when the behavior wants it; and the
//! CloudFront-* viewer headers the rest of the pipeline keys and forwards.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::header::HeaderMap;

use super::Edge;
use crate::cdn::realtime_log::{Seen, Verdict};
use crate::cdn::signed::{Denial, SignedRequest, Verifier};
use crate::cdn::viewer;
use crate::config::cdn::{Behavior, Distribution};

/// Why a request was refused before the cache.
pub(super) enum Refusal {
    Geo,
    Signature(Denial),
}

impl Refusal {
    pub(super) fn verdict(&self) -> Verdict {
        match self {
            Refusal::Geo => Verdict::Geo,
            Refusal::Signature(_) => Verdict::Denied,
        }
    }

    pub(super) fn message(&self) -> String {
        match self {
            Refusal::Geo => "this content is not available in your country".to_string(),
            Refusal::Signature(denial) => format!(
                "a valid signed URL or signed cookies are required ({})",
                denial.as_str()
            ),
        }
    }
}

/// The request after the gate: its query without signing parameters.
pub(super) struct Admitted {
    pub(super) query: Option<String>,
}

/// A request's facts the gate reads.
pub(super) struct GateInput<'a> {
    pub(super) distribution: &'a Distribution,
    /// The behavior keys or forwards some CloudFront-* viewer header.
    pub(super) uses_viewer_headers: bool,
    pub(super) verifier: Option<&'a Arc<Verifier>>,
    pub(super) peer: SocketAddr,
    pub(super) https: bool,
    /// Host as the viewer sent it (Host header, or the HTTP/2 authority), port included:
    /// signed URLs cover it.
    pub(super) authority: &'a str,
    pub(super) path: &'a str,
    pub(super) query: Option<&'a str>,
}

impl Edge {
    /// Sets the viewer headers on `headers` and decides whether the request may go on;
    /// notes the viewer's country in `seen`.
    pub(super) fn admit(
        &self,
        input: &GateInput<'_>,
        headers: &mut HeaderMap,
        seen: &mut Seen,
    ) -> Result<Admitted, Refusal> {
        let viewer_addr = viewer::address(input.peer, headers, &self.config.trusted_proxies);
        let location = self
            .geo
            .locate(viewer_addr.ip())
            .map(|located| located.location);
        seen.country = Some(location.and_then(|l| l.country));
        // Computing the headers costs a few allocations: only when the behavior uses them.
        if input.uses_viewer_headers {
            viewer::set_headers(headers, viewer_addr, location.as_ref(), input.https);
        } else {
            viewer::remove_headers(headers);
        }
        if let Some(restriction) = &input.distribution.geo_restriction
            && !restriction.allows(location.and_then(|l| l.country))
        {
            return Err(Refusal::Geo);
        }
        let Some(verifier) = input.verifier else {
            return Ok(Admitted {
                query: input.query.map(str::to_string),
            });
        };
        let request = SignedRequest {
            scheme: if input.https { "https" } else { "http" },
            host: input.authority,
            path: input.path,
            query: input.query,
            headers,
            viewer: viewer_addr.ip(),
            now: SystemTime::now(),
        };
        verifier.check(&request).map_err(Refusal::Signature)?;
        Ok(Admitted {
            query: input
                .query
                .and_then(crate::cdn::signed::strip_signing_params),
        })
    }
}

/// Viewer headers go to the origin only when the behavior keys or forwards them, as
/// CloudFront's cache and origin request policies decide.
pub(super) fn drop_unlisted_viewer_headers(headers: &mut HeaderMap, behavior: &Behavior) {
    let unlisted: Vec<_> = headers
        .keys()
        .filter(|name| viewer::is_viewer_header(name))
        .filter(|name| {
            !behavior.cache_key.headers.contains(name) && !behavior.forward_headers.contains(name)
        })
        .cloned()
        .collect();
    for name in unlisted {
        headers.remove(name);
    }
}
