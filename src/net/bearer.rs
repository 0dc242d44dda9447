//! `Authorization: Bearer <token>` for control endpoints (the DNS status listener's
//! `POST /reload`).

use http::HeaderMap;
use http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

/// True when `headers` hold exactly one `Authorization: Bearer <token>` with this token,
/// compared in constant time. A second Authorization header is refused whatever it holds:
/// proxies and servers disagree on which copy counts.
pub fn matches(headers: &HeaderMap, token: &str) -> bool {
    let mut given = headers.get_all(AUTHORIZATION).iter();
    let (Some(header), None) = (given.next(), given.next()) else {
        return false;
    };
    let Some(given) = header.as_bytes().strip_prefix(b"Bearer ") else {
        return false;
    };
    given.ct_eq(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn only_one_exact_bearer_header_matches() {
        let cases: [(&[&str], bool); 7] = [
            (&["Bearer s3cret-token"], true),
            (&[], false),
            (&["Bearer wrong-token"], false),
            (&["Bearer s3cret-tok"], false),
            (&["Basic s3cret-token"], false),
            (&["Bearer s3cret-token", "Bearer s3cret-token"], false),
            (&["Bearer wrong", "Bearer s3cret-token"], false),
        ];
        for (values, want) in cases {
            assert_eq!(
                matches(&headers(values), "s3cret-token"),
                want,
                "{values:?}"
            );
        }
    }
}
