//! What else a successful unsafe request invalidates (RFC 9111 §4.4): the URIs in the
//! response's `Location` and `Content-Location`, resolved against the target URI, when they
//! have the target's origin (scheme aside: the edge serves one distribution on both). Other
//! origins are never touched, so a response cannot empty another site's objects.

use http::{HeaderMap, Uri, header};

use crate::cdn::request_path::RequestPath;

/// The canonical paths of `Location` and `Content-Location` in `headers` that are on
/// `host` (the request's, port ignored), for a request to `target`.
pub fn related_paths(headers: &HeaderMap, host: &str, target: &RequestPath) -> Vec<RequestPath> {
    [header::LOCATION, header::CONTENT_LOCATION]
        .iter()
        .filter_map(|name| headers.get(name)?.to_str().ok())
        .filter_map(|reference| resolve(reference.trim(), host, target))
        .filter(|path| path != target)
        .collect()
}

/// `reference` as a path on `host`, or None when it names another host, is not a URI
/// reference we resolve, or would be a wildcard to the store.
fn resolve(reference: &str, host: &str, target: &RequestPath) -> Option<RequestPath> {
    let scheme = (reference.split('/').next())
        .and_then(|first| first.split_once(':'))
        .map(|(scheme, _)| scheme);
    let path = if scheme.is_some() || reference.starts_with("//") {
        if !matches!(scheme, None | Some("http" | "https")) {
            return None;
        }
        let uri: Uri = reference.parse().ok()?;
        let authority = uri.authority()?;
        if !authority.host().eq_ignore_ascii_case(host_only(host)) {
            return None;
        }
        uri.path().to_string()
    } else if reference.starts_with('/') {
        reference.to_string()
    } else {
        // Relative to the target's folder (RFC 3986 §5.2.3).
        let folder = &target.as_str()[..=target.as_str().rfind('/')?];
        format!("{folder}{reference}")
    };
    let path = path.split(['?', '#']).next()?;
    if path.is_empty() || path.contains('*') {
        return None;
    }
    RequestPath::parse(path).ok()
}

/// `host` without a port (`[::1]:8443` → `[::1]`, `a.example:80` → `a.example`).
fn host_only(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(pairs: &[(&str, &str)], host: &str, target: &str) -> Vec<String> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let target = RequestPath::parse(target).unwrap();
        (related_paths(&headers, host, &target).iter())
            .map(|p| p.as_str().to_string())
            .collect()
    }

    #[test]
    fn location_and_content_location_on_the_same_host_are_invalidated() {
        assert_eq!(
            paths(
                &[
                    ("location", "/items/7"),
                    ("content-location", "https://site.test/items/7?x=1")
                ],
                "site.test:8443",
                "/items"
            ),
            ["/items/7", "/items/7"]
        );
        assert_eq!(
            paths(&[("location", "7/edit")], "site.test", "/items/3"),
            ["/items/7/edit"]
        );
        assert_eq!(
            paths(&[("location", "../up")], "site.test", "/a/b/c"),
            ["/a/up"]
        );
    }

    #[test]
    fn other_hosts_wildcards_and_the_target_itself_are_left_alone() {
        let host = "site.test";
        assert!(paths(&[("location", "https://other.test/items/7")], host, "/i").is_empty());
        assert!(paths(&[("location", "//other.test/items/7")], host, "/i").is_empty());
        assert!(paths(&[("location", "/items/*")], host, "/i").is_empty());
        assert!(paths(&[("content-location", "/i")], host, "/i").is_empty());
        assert!(paths(&[("location", "mailto:a@b")], host, "/i").is_empty());
        assert!(paths(&[("location", "urn:x:y")], host, "/i").is_empty());
    }
}
