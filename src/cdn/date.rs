//! The `Date` field of responses the CDN's own HTTP/2 and HTTP/3 servers send (hyper's
//! HTTP/1.1 server adds its own): RFC 9110 §6.6.1 has a recipient with a clock add one to a
//! response it forwards without. Formatted once a second per thread, not per response.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, header};

thread_local! {
    /// The second last formatted on this thread, and its text.
    static CACHED: RefCell<(u64, HeaderValue)> =
        const { RefCell::new((u64::MAX, HeaderValue::from_static(""))) };
}

/// Adds `Date: <now>` unless `headers` has a Date already (the origin's, or a stored one).
pub fn add_if_missing(headers: &mut HeaderMap) {
    if !headers.contains_key(header::DATE) {
        headers.insert(header::DATE, now());
    }
}

/// The current time as an IMF-fixdate.
fn now() -> HeaderValue {
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    CACHED.with_borrow_mut(|(cached_second, text)| {
        if *cached_second != second {
            *text = HeaderValue::from_str(&httpdate::fmt_http_date(now))
                .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
            *cached_second = second;
        }
        text.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_date_is_now_and_a_present_one_is_kept() {
        let mut headers = HeaderMap::new();
        add_if_missing(&mut headers);
        let added = httpdate::parse_http_date(headers[header::DATE].to_str().unwrap()).unwrap();
        let age = SystemTime::now().duration_since(added).unwrap();
        assert!(age.as_secs() <= 1, "{age:?}");
        let origin = "Tue, 15 Nov 1994 08:12:31 GMT";
        headers.insert(header::DATE, HeaderValue::from_static(origin));
        add_if_missing(&mut headers);
        assert_eq!(headers[header::DATE], origin);
    }
}
