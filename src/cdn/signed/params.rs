//! Finding the signing material in a query or in Cookie headers.

use percent_encoding::percent_decode_str;

use super::Denial;

/// The query parameters that carry a signature.
pub(super) const SIGNING_PARAMS: [&str; 5] = [
    "Expires",
    "Policy",
    "Signature",
    "Key-Pair-Id",
    "Hash-Algorithm",
];

/// The cookies that carry a signature, in the order of [`SIGNING_PARAMS`].
pub(super) const SIGNING_COOKIES: [&str; 5] = [
    "CloudFront-Expires",
    "CloudFront-Policy",
    "CloudFront-Signature",
    "CloudFront-Key-Pair-Id",
    "CloudFront-Hash-Algorithm",
];

/// The signing values of one request (percent-decoded).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Material {
    pub expires: Option<String>,
    pub policy: Option<String>,
    pub signature: Option<String>,
    pub key_pair_id: Option<String>,
    pub hash_algorithm: Option<String>,
}

impl Material {
    fn slot(&mut self, index: usize) -> &mut Option<String> {
        match index {
            0 => &mut self.expires,
            1 => &mut self.policy,
            2 => &mut self.signature,
            3 => &mut self.key_pair_id,
            _ => &mut self.hash_algorithm,
        }
    }
}

fn split_pair(segment: &str) -> (&str, &str) {
    segment.split_once('=').unwrap_or((segment, ""))
}

fn is_signing_param(segment: &str) -> bool {
    SIGNING_PARAMS.contains(&split_pair(segment).0)
}

fn decode(value: &str) -> Result<String, Denial> {
    percent_decode_str(value)
        .decode_utf8()
        .map(|v| v.into_owned())
        .map_err(|_| Denial::Malformed)
}

/// The query without Expires, Policy, Signature, Key-Pair-Id and Hash-Algorithm (the order of the
/// rest kept, empty segments dropped); `None` when nothing remains.
pub fn strip_signing_params(query: &str) -> Option<String> {
    let rest: Vec<&str> = query
        .split('&')
        .filter(|segment| !segment.is_empty() && !is_signing_param(segment))
        .collect();
    if rest.is_empty() {
        None
    } else {
        Some(rest.join("&"))
    }
}

/// The signing material of a query: `None` when it carries no signing parameter, `Malformed` when
/// one is repeated or its percent-encoding is not UTF-8.
pub(super) fn from_query(query: &str) -> Option<Result<Material, Denial>> {
    let mut material = Material::default();
    let mut found = false;
    let mut result = Ok(());
    for segment in query.split('&') {
        let (name, value) = split_pair(segment);
        let Some(index) = SIGNING_PARAMS.iter().position(|p| *p == name) else {
            continue;
        };
        found = true;
        if result.is_err() {
            continue;
        }
        let slot = material.slot(index);
        result = if slot.is_some() {
            Err(Denial::Malformed)
        } else {
            decode(value).map(|v| *slot = Some(v))
        };
    }
    found.then(|| result.map(|()| material))
}

/// The signing material of the `CloudFront-*` cookies across all Cookie headers: `None` when there
/// is none. A cookie sent twice (in one header or across several) is `Malformed`: picking the
/// first or the last would let a viewer pair one cookie's policy with another's signature.
pub(super) fn from_cookies(headers: &http::HeaderMap) -> Option<Result<Material, Denial>> {
    let mut material = Material::default();
    let mut found = false;
    for header in headers.get_all(http::header::COOKIE) {
        let Ok(header) = header.to_str() else {
            continue;
        };
        for pair in header.split(';') {
            let (name, value) = split_pair(pair.trim());
            let Some(index) = SIGNING_COOKIES.iter().position(|c| *c == name.trim()) else {
                continue;
            };
            found = true;
            let slot = material.slot(index);
            if slot.is_some() {
                return Some(Err(Denial::Malformed));
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            match decode(value) {
                Ok(v) => *slot = Some(v),
                Err(denial) => return Some(Err(denial)),
            }
        }
    }
    found.then_some(Ok(material))
}
