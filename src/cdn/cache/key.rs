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
    pub distribution: usize,
    pub path: Arc<str>,
    /// Everything else that selects the object, already normalised.
    pub variant: Arc<str>,
}

/// The primary key of a GET/HEAD request (HEAD shares GET's objects).
pub fn primary(
    distribution: usize,
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
        distribution,
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
        distribution: primary.distribution,
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
