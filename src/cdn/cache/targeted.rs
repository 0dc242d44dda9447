//! RFC 9213 targeted cache control: `CDN-Cache-Control` (and a field named for this CDN)
//! tells CDNs how to cache a response apart from what `Cache-Control` tells browsers. The
//! field is a Structured Field Dictionary (RFC 9651), parsed strictly with `sfv`: a field
//! that does not parse, or whose known directives have the wrong type, is ignored whole,
//! and `Cache-Control` and `Expires` apply as if it were absent (RFC 9213 §2.1).

use std::time::Duration;

use http::{HeaderMap, HeaderName};
use sfv::{BareItem, Dictionary, ListEntry, Parser};

use super::freshness::{CacheControl, MAX_DELTA_SECS};

/// The field every CDN honours.
pub const CDN_CACHE_CONTROL: &str = "cdn-cache-control";

/// The directives of the first field of `targeted` (in the order given) that is present,
/// valid and not empty; None when there is none, and the cache then follows
/// `Cache-Control` and `Expires`.
pub fn targeted_cache_control(
    headers: &HeaderMap,
    targeted: &[HeaderName],
) -> Option<CacheControl> {
    targeted.iter().find_map(|name| directives(headers, name))
}

/// One field's directives, its field lines joined as one list (RFC 9110 §5.3).
fn directives(headers: &HeaderMap, name: &HeaderName) -> Option<CacheControl> {
    let mut lines = headers.get_all(name).iter().peekable();
    lines.peek()?;
    let mut text = Vec::new();
    for (i, line) in lines.enumerate() {
        if i > 0 {
            text.extend_from_slice(b", ");
        }
        text.extend_from_slice(line.as_bytes());
    }
    let dictionary: Dictionary = Parser::new(&text).parse().ok()?;
    if dictionary.is_empty() {
        return None;
    }
    let mut cc = CacheControl::default();
    for (key, entry) in &dictionary {
        // Parameters on a directive are ignored (RFC 9213 §2.2); an inner list is no
        // directive's type.
        let value = match entry {
            ListEntry::Item(item) => &item.bare_item,
            ListEntry::InnerList(_) if is_known(key.as_str()) => return None,
            ListEntry::InnerList(_) => continue,
        };
        match key.as_str() {
            "max-age" => cc.max_age = Some(seconds(value)?),
            "s-maxage" => cc.s_maxage = Some(seconds(value)?),
            "stale-while-revalidate" => cc.stale_while_revalidate = Some(seconds(value)?),
            "stale-if-error" => cc.stale_if_error = Some(seconds(value)?),
            "no-store" => cc.no_store = flag(value)?,
            "no-cache" => cc.no_cache = qualified_flag(value)?,
            "private" => cc.private = qualified_flag(value)?,
            "public" => cc.public = flag(value)?,
            "must-revalidate" => cc.must_revalidate = flag(value)?,
            "proxy-revalidate" => cc.proxy_revalidate = flag(value)?,
            "no-transform" => cc.no_transform = flag(value)?,
            "immutable" => cc.immutable = flag(value)?,
            "must-understand" => cc.must_understand = flag(value)?,
            _ => {}
        }
    }
    Some(cc)
}

fn is_known(key: &str) -> bool {
    matches!(
        key,
        "max-age"
            | "s-maxage"
            | "stale-while-revalidate"
            | "stale-if-error"
            | "no-store"
            | "no-cache"
            | "private"
            | "public"
            | "must-revalidate"
            | "proxy-revalidate"
            | "no-transform"
            | "immutable"
            | "must-understand"
    )
}

/// A delta-seconds directive: a non-negative Integer, capped as `Cache-Control`'s are.
fn seconds(value: &BareItem) -> Option<Duration> {
    let BareItem::Integer(n) = value else {
        return None;
    };
    let n = u64::try_from(i64::from(*n)).ok()?;
    Some(Duration::from_secs(n.min(MAX_DELTA_SECS)))
}

/// A flag directive: a bare key is `?1`.
fn flag(value: &BareItem) -> Option<bool> {
    match value {
        BareItem::Boolean(set) => Some(*set),
        _ => None,
    }
}

/// `private` and `no-cache` may list field names (a String, or a Token for one name), and
/// are then taken as set, as for `Cache-Control` (RFC 9111 §5.2.2.4, §5.2.2.7).
fn qualified_flag(value: &BareItem) -> Option<bool> {
    match value {
        BareItem::String(_) | BareItem::Token(_) => Some(true),
        other => flag(other),
    }
}

#[cfg(test)]
mod tests;
