//! Where a viewer request goes, decided in one place: the authority picks the distribution,
//! the canonical path the behavior, then the behavior's viewer protocol policy and allowed
//! methods. A pure function of the request head and the config, so the whole decision reads
//! (and is tested) as one table; the viewer gates that need the outside world (GeoIP, the
//! clock for signatures) run after it, in `gate`.

use std::collections::HashMap;

use http::header::{self, HeaderMap};
use http::{Method, StatusCode, Uri};

use crate::cdn::realtime_log::Verdict;
use crate::cdn::request_path::RequestPath;
use crate::config::cdn::{Distribution, ViewerProtocol};

/// The request head facts routing reads.
pub(super) struct Head<'a> {
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub method: &'a Method,
    /// Arrived over TLS.
    pub https: bool,
}

/// Where the request goes.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// Served by `behavior` of `distribution`.
    Serve(Routed),
    /// Plain HTTP to a redirect-to-https behavior: 301 to the same host and target.
    Redirect {
        host: String,
        /// Distribution and behavior (for the real-time log).
        route: (usize, usize),
    },
    /// Answered by the edge itself with `status`.
    Refuse {
        status: StatusCode,
        message: String,
        verdict: Verdict,
        /// Distribution and behavior, when routing got that far (for the real-time log).
        route: Option<(usize, usize)>,
    },
}

/// A routed request's place in the config.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Routed {
    pub distribution: usize,
    pub behavior: usize,
    /// Lower case, no port, no trailing dot.
    pub host: String,
    /// The authority as the viewer sent it (signed URLs cover it, port included).
    pub authority: String,
    pub path: RequestPath,
}

fn refuse(status: StatusCode, message: impl Into<String>, verdict: Verdict) -> Route {
    Route::Refuse {
        status,
        message: message.into(),
        verdict,
        route: None,
    }
}

/// Decides where `head` goes among `distributions`, found by host in `hosts`.
pub(super) fn route(
    hosts: &HashMap<String, usize>,
    distributions: &[Distribution],
    head: &Head<'_>,
) -> Route {
    let authority = match authority_of(head.uri, head.headers) {
        Ok(authority) => authority,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message, Verdict::Unroutable),
    };
    let Some(host) = host_of(authority) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the request has no Host",
            Verdict::Unroutable,
        );
    };
    let Some(&distribution) = hosts.get(&host) else {
        // Over TLS the certificate may have been chosen for another name: 421 tells the
        // client to retry on a fresh connection (RFC 9110 §15.5.20).
        let status = if head.https {
            StatusCode::MISDIRECTED_REQUEST
        } else {
            StatusCode::NOT_FOUND
        };
        return refuse(
            status,
            format!("no distribution serves host {host:?}"),
            Verdict::Unroutable,
        );
    };
    let path = match RequestPath::parse(head.uri.path()) {
        Ok(path) => path,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string(), Verdict::Unroutable),
    };
    let dist = &distributions[distribution];
    let Some(behavior) = dist
        .behaviors
        .iter()
        .position(|b| b.pattern.matches(path.as_str()))
    else {
        return refuse(
            StatusCode::NOT_FOUND,
            "no behavior matches this path",
            Verdict::Unroutable,
        );
    };
    let refused_here = |status, message: &str, verdict| Route::Refuse {
        status,
        message: message.to_string(),
        verdict,
        route: Some((distribution, behavior)),
    };
    let rules = &dist.behaviors[behavior];
    if !head.https {
        match rules.viewer_protocol {
            ViewerProtocol::AllowAll => {}
            ViewerProtocol::RedirectToHttps => {
                return Route::Redirect {
                    host,
                    route: (distribution, behavior),
                };
            }
            ViewerProtocol::HttpsOnly => {
                return refused_here(
                    StatusCode::FORBIDDEN,
                    "this distribution is HTTPS only",
                    Verdict::Denied,
                );
            }
        }
    }
    if !rules.allowed_methods.contains(head.method) {
        return refused_here(
            StatusCode::FORBIDDEN,
            "this method is not allowed here",
            Verdict::Method,
        );
    }
    Route::Serve(Routed {
        distribution,
        behavior,
        host,
        authority: authority.to_string(),
        path,
    })
}

/// The authority a request names. The URI's own (HTTP/2 `:authority`, or an HTTP/1.1
/// absolute-form target) wins over `Host`, as RFC 9113 §8.3.1 and RFC 9112 §3.2.2 require;
/// otherwise exactly one `Host` header (RFC 9112 §3.2: two are a 400). Empty when there is none.
fn authority_of<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Result<&'a str, &'static str> {
    if let Some(authority) = uri.authority() {
        return Ok(authority.as_str());
    }
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) => Ok(""),
        (Some(_), Some(_)) => Err("the request has more than one Host header"),
        (Some(host), None) => host.to_str().map_err(|_| "the Host header is not ASCII"),
    }
}

/// The host a request names (lower case, no port), if it names one well.
pub(super) fn host_named(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    host_of(authority_of(uri, headers).ok()?)
}

/// The host of an authority, lower case, without port or trailing dot.
fn host_of(raw: &str) -> Option<String> {
    let host = match raw.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => raw.split(':').next().unwrap_or(""),
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase()).filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use http::HeaderValue;

    use super::*;
    use crate::config::Config;

    /// Two distributions: "site" (`/secure/*` redirects plain HTTP, `/tls/*` is HTTPS only,
    /// `/api/*` allows POST, `*` GET/HEAD) and "other" (only `/only/*`).
    fn config() -> Vec<Distribution> {
        let toml = r#"
[cdn]
http_listen = ["127.0.0.1:0"]
[[cdn.distributions]]
id = "site"
hosts = ["site.test", "localhost"]
[[cdn.distributions.origins]]
id = "app"
url = "http://127.0.0.1:9"
[[cdn.distributions.behaviors]]
path = "/secure/*"
origin = "app"
viewer_protocol = "redirect-to-https"
[[cdn.distributions.behaviors]]
path = "/tls/*"
origin = "app"
viewer_protocol = "https-only"
[[cdn.distributions.behaviors]]
path = "/api/*"
origin = "app"
allowed_methods = ["GET", "HEAD", "POST"]
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
[[cdn.distributions]]
id = "other"
hosts = ["other.test"]
[[cdn.distributions.origins]]
id = "app"
url = "http://127.0.0.1:9"
[[cdn.distributions.behaviors]]
path = "/only/*"
origin = "app"
"#;
        let config =
            Config::from_str(toml, Path::new("route-test.toml")).unwrap_or_else(|e| panic!("{e}"));
        config.cdn.expect("a [cdn] section").distributions
    }

    /// What a request gets, in short: `serve D/B`, `redirect`, or the status and verdict.
    fn decide(target: &str, hosts_sent: &[&str], method: Method, https: bool) -> String {
        let distributions = config();
        let mut hosts = HashMap::new();
        for (index, d) in distributions.iter().enumerate() {
            for host in &d.hosts {
                hosts.insert(host.clone(), index);
            }
        }
        let uri: Uri = target.parse().unwrap();
        let mut headers = HeaderMap::new();
        for host in hosts_sent {
            headers.append(header::HOST, HeaderValue::from_str(host).unwrap());
        }
        let head = Head {
            uri: &uri,
            headers: &headers,
            method: &method,
            https,
        };
        match route(&hosts, &distributions, &head) {
            Route::Serve(r) => format!(
                "serve {}/{} {} {}",
                r.distribution, r.behavior, r.host, r.path
            ),
            Route::Redirect { host, .. } => format!("redirect {host}"),
            Route::Refuse {
                status, verdict, ..
            } => format!("{} {verdict:?}", status.as_u16()),
        }
    }

    #[test]
    fn the_decision_table() {
        use Method as M;
        let table: &[(&str, &[&str], Method, bool, &str)] = &[
            ("/a", &["site.test"], M::GET, true, "serve 0/3 site.test /a"),
            (
                "/a",
                &["SITE.test.:8443"],
                M::GET,
                true,
                "serve 0/3 site.test /a",
            ),
            (
                "/a",
                &["localhost"],
                M::HEAD,
                false,
                "serve 0/3 localhost /a",
            ),
            (
                "/only/x",
                &["other.test"],
                M::GET,
                true,
                "serve 1/0 other.test /only/x",
            ),
            ("/x", &["other.test"], M::GET, true, "404 Unroutable"),
            ("/a", &["nobody.test"], M::GET, true, "421 Unroutable"),
            ("/a", &["nobody.test"], M::GET, false, "404 Unroutable"),
            ("/a", &[], M::GET, true, "400 Unroutable"),
            (
                "/a",
                &["site.test", "other.test"],
                M::GET,
                true,
                "400 Unroutable",
            ),
            (
                "/a",
                &["site.test", "site.test"],
                M::GET,
                true,
                "400 Unroutable",
            ),
            // The URI's authority (HTTP/2, absolute-form) wins over Host.
            (
                "https://other.test/only/x",
                &["site.test"],
                M::GET,
                true,
                "serve 1/0 other.test /only/x",
            ),
            (
                "https://site.test:8443/a",
                &[],
                M::GET,
                true,
                "serve 0/3 site.test /a",
            ),
            // Behaviors are chosen on the canonical path.
            (
                "//secure/%61",
                &["site.test"],
                M::GET,
                true,
                "serve 0/0 site.test /secure/a",
            ),
            (
                "/x/../tls/a",
                &["site.test"],
                M::GET,
                true,
                "serve 0/1 site.test /tls/a",
            ),
            (
                "/%2fsecure/a",
                &["site.test"],
                M::GET,
                true,
                "400 Unroutable",
            ),
            // Viewer protocol policy, then methods.
            (
                "/secure/a",
                &["site.test"],
                M::GET,
                false,
                "redirect site.test",
            ),
            (
                "/secure/a",
                &["site.test"],
                M::GET,
                true,
                "serve 0/0 site.test /secure/a",
            ),
            ("/tls/a", &["site.test"], M::GET, false, "403 Denied"),
            (
                "/api/a",
                &["site.test"],
                M::POST,
                true,
                "serve 0/2 site.test /api/a",
            ),
            ("/a", &["site.test"], M::POST, true, "403 Method"),
            (
                "/secure/a",
                &["site.test"],
                M::POST,
                false,
                "redirect site.test",
            ),
        ];
        for (target, hosts, method, https, want) in table {
            assert_eq!(
                decide(target, hosts, method.clone(), *https),
                *want,
                "{method} {target} Host {hosts:?} https={https}"
            );
        }
    }
}
