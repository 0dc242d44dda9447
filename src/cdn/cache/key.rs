//! Cache keys: distribution + method class + path + the behavior's query string, header and
//! cookie allowlists (normalised: sorted, so order does not split the cache), plus the
//! Accept-Encoding class when the behavior compresses, plus Vary values for variants.

use std::fmt::Write;
use std::sync::Arc;

use http::HeaderMap;
use http::header::{ACCEPT_ENCODING, COOKIE};

use crate::cdn::compress;
use crate::config::cdn::Behavior;
use crate::config::cdn::Selection;

/// A cache key. `path` is kept apart for invalidations by path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The distribution's configured id, not its position: positions shift when a reload
    /// adds or removes distributions, ids do not.
    pub distribution: Arc<str>,
    pub path: Arc<str>,
    /// Everything else that selects the object, already normalised.
    pub variant: Arc<str>,
}

/// The primary key of a GET/HEAD request (HEAD shares GET's objects).
pub fn primary(
    distribution: &Arc<str>,
    behavior: &Behavior,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> CacheKey {
    let mut variant = String::with_capacity(64);
    variant.push_str("GET");
    variant.push('?');
    variant.push_str(&origin_query(behavior, query).unwrap_or_default());
    for name in &behavior.cache_key.headers {
        let _ = write!(variant, "\n{name}:");
        for value in headers.get_all(name) {
            variant.push_str(&String::from_utf8_lossy(value.as_bytes()));
            variant.push(',');
        }
    }
    if let Some(cookies) = selected_cookies(&behavior.cache_key.cookies, headers) {
        let _ = write!(variant, "\ncookie:{cookies}");
    }
    if behavior.compress {
        let _ = write!(
            variant,
            "\nae:{}",
            compress::cache_key_value(headers.get(ACCEPT_ENCODING))
        );
    }
    CacheKey {
        distribution: distribution.clone(),
        path: Arc::from(path),
        variant: Arc::from(variant),
    }
}

/// The key of one variant: the primary key plus the request's values of the Vary headers.
pub fn secondary(primary: &CacheKey, vary: &[http::HeaderName], headers: &HeaderMap) -> CacheKey {
    let mut variant = String::from(&*primary.variant);
    for name in vary {
        let _ = write!(variant, "\nvary:{name}=");
        for value in headers.get_all(name) {
            variant.push_str(&String::from_utf8_lossy(value.as_bytes()));
            variant.push(',');
        }
    }
    CacheKey {
        distribution: primary.distribution.clone(),
        path: primary.path.clone(),
        variant: Arc::from(variant),
    }
}

/// The query string the origin gets and the key holds: only the selected parameters, sorted
/// (by name, then value), so `?b=2&a=1` and `?a=1&b=2` share an object.
pub fn origin_query(behavior: &Behavior, query: Option<&str>) -> Option<String> {
    let query = query.filter(|q| !q.is_empty())?;
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            match &behavior.cache_key.query_strings {
                Selection::All => true,
                Selection::None => false,
                Selection::Only(names) => names.iter().any(|n| n == name),
            }
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    pairs.sort_unstable();
    Some(pairs.join("&"))
}

/// The Cookie header the origin gets and the key holds: only the selected cookies, sorted.
pub fn selected_cookies(selection: &Selection, headers: &HeaderMap) -> Option<String> {
    if *selection == Selection::None {
        return None;
    }
    let mut cookies: Vec<&str> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .filter(|c| match selection {
            Selection::All => true,
            Selection::None => false,
            Selection::Only(names) => names
                .iter()
                .any(|n| c.split('=').next() == Some(n.as_str())),
        })
        .collect();
    if cookies.is_empty() {
        return None;
    }
    cookies.sort_unstable();
    Some(cookies.join("; "))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderValue;

    use super::*;
    use crate::cdn::cache::freshness::TtlPolicy;
    use crate::cdn::pattern::PathPattern;
    use crate::config::cdn::{CacheKeyPolicy, ViewerProtocol};

    fn behavior(
        query_strings: Selection,
        headers: Vec<&'static str>,
        cookies: Selection,
        compress: bool,
    ) -> Behavior {
        Behavior {
            pattern: PathPattern::new("*").unwrap(),
            origin: 0,
            allowed_methods: vec![http::Method::GET, http::Method::HEAD],
            ttl: TtlPolicy {
                min: Duration::ZERO,
                default: Duration::from_secs(60),
                max: Duration::from_secs(3600),
            },
            compress,
            cache_key: CacheKeyPolicy {
                query_strings,
                headers: headers
                    .into_iter()
                    .map(http::HeaderName::from_static)
                    .collect(),
                cookies,
            },
            forward_headers: Vec::new(),
            viewer_protocol: ViewerProtocol::AllowAll,
            trusted_key_groups: Vec::new(),
        }
    }

    #[test]
    fn query_strings_are_filtered_and_sorted() {
        let all = behavior(Selection::All, vec![], Selection::None, false);
        assert_eq!(
            origin_query(&all, Some("b=2&a=1&a=0")),
            Some("a=0&a=1&b=2".to_string())
        );
        let some = behavior(
            Selection::Only(vec!["w".into(), "h".into()]),
            vec![],
            Selection::None,
            false,
        );
        assert_eq!(
            origin_query(&some, Some("x=9&w=10&h=20")),
            Some("h=20&w=10".to_string())
        );
        assert_eq!(origin_query(&some, Some("x=9")), None);
        let none = behavior(Selection::None, vec![], Selection::None, false);
        assert_eq!(origin_query(&none, Some("a=1")), None);
    }

    #[test]
    fn only_selected_cookies_are_kept_sorted() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("theme=dark; session=abc"));
        headers.append(COOKIE, HeaderValue::from_static("tracking=1"));
        assert_eq!(
            selected_cookies(&Selection::Only(vec!["session".into()]), &headers),
            Some("session=abc".to_string())
        );
        assert_eq!(
            selected_cookies(&Selection::All, &headers),
            Some("session=abc; theme=dark; tracking=1".to_string())
        );
        assert_eq!(selected_cookies(&Selection::None, &headers), None);
    }

    #[test]
    fn keys_split_on_keyed_headers_and_encoding_class_only() {
        let keyed = behavior(Selection::None, vec!["x-device"], Selection::None, true);
        let request = |device: &'static str, encoding: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-device", HeaderValue::from_static(device));
            headers.insert(ACCEPT_ENCODING, HeaderValue::from_static(encoding));
            headers.insert("x-other", HeaderValue::from_static("ignored"));
            primary(&Arc::from("d"), &keyed, "/a", None, &headers)
        };
        assert_eq!(
            request("mobile", "gzip, br"),
            request("mobile", "br;q=1, gzip")
        );
        assert_ne!(request("mobile", "gzip"), request("desktop", "gzip"));
        assert_ne!(request("mobile", "gzip"), request("mobile", "br"));
        let secondary_key = secondary(
            &request("mobile", "gzip"),
            &[http::HeaderName::from_static("x-other")],
            &HeaderMap::new(),
        );
        assert_ne!(secondary_key, request("mobile", "gzip"));
        assert_eq!(secondary_key.path, request("mobile", "gzip").path);
    }
}
