//! Policies: CloudFront's base64 variant, the canned statement, custom policy parsing and
//! evaluation, and Resource wildcard matching.

use std::net::IpAddr;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use super::Denial;

static STANDARD_INDIFFERENT: LazyLock<GeneralPurpose> = LazyLock::new(|| {
    GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
});

/// Base64 with CloudFront's substitutions: `+`→`-`, `=`→`_`, `/`→`~`.
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '+' => '-',
            '=' => '_',
            '/' => '~',
            c => c,
        })
        .collect()
}

/// Decodes CloudFront's base64 variant, or standard base64 (padding optional). `None` when the
/// text is not base64.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '=',
            '~' => '/',
            c => c,
        })
        .collect();
    STANDARD_INDIFFERENT.decode(standard.as_bytes()).ok()
}

/// The statement of a canned policy exactly as CloudFront rebuilds it (no escaping, no spaces).
pub fn canned_statement(url: &str, expires: u64) -> String {
    format!(
        r#"{{"Statement":[{{"Resource":"{url}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}"#
    )
}

/// A parsed policy: one statement's Resource and conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The Resource pattern (`*` and `?` wildcards); `None` allows any URL.
    pub resource: Option<String>,
    /// `DateLessThan`: access is allowed strictly before this epoch second.
    pub date_less_than: u64,
    /// `DateGreaterThan`: access is allowed from this epoch second on.
    pub date_greater_than: Option<u64>,
    /// `IpAddress` / `AWS:SourceIp`; a bare address is a /32 or /128.
    pub source_ip: Option<IpNet>,
}

impl Policy {
    /// A policy allowing any resource until `date_less_than`.
    pub fn until(date_less_than: u64) -> Policy {
        Policy {
            resource: None,
            date_less_than,
            date_greater_than: None,
            source_ip: None,
        }
    }

    /// Parses a custom policy document. Exactly one statement; unknown keys, condition
    /// operators and repeated keys at any level are errors: a document that two JSON readers
    /// could understand differently (first-wins against last-wins) is never trusted.
    pub fn parse(bytes: &[u8]) -> Result<Policy, String> {
        let document: Document =
            serde_json::from_slice(bytes).map_err(|e| format!("not a valid policy: {e}"))?;
        let [statement] = <[Statement; 1]>::try_from(document.statement)
            .map_err(|all| format!("expected exactly one statement, found {}", all.len()))?;
        let condition = statement.condition;
        let source_ip = condition
            .ip_address
            .map(|ip| {
                parse_cidr(&ip.source_ip).ok_or_else(|| {
                    format!("AWS:SourceIp {:?} is not an address or CIDR", ip.source_ip)
                })
            })
            .transpose()?;
        Ok(Policy {
            resource: statement.resource,
            date_less_than: condition.date_less_than.epoch_time,
            date_greater_than: condition.date_greater_than.map(|d| d.epoch_time),
            source_ip,
        })
    }

    /// The policy as CloudFront-style compact JSON (keys in the documented order).
    pub fn to_json(&self) -> String {
        let mut out = String::from(r#"{"Statement":[{"#);
        if let Some(resource) = &self.resource {
            out.push_str(r#""Resource":"#);
            out.push_str(&Value::String(resource.clone()).to_string());
            out.push(',');
        }
        out.push_str(r#""Condition":{"DateLessThan":{"AWS:EpochTime":"#);
        out.push_str(&self.date_less_than.to_string());
        out.push('}');
        if let Some(start) = self.date_greater_than {
            out.push_str(&format!(
                r#","DateGreaterThan":{{"AWS:EpochTime":{start}}}"#
            ));
        }
        if let Some(net) = &self.source_ip {
            out.push_str(&format!(r#","IpAddress":{{"AWS:SourceIp":"{net}"}}"#));
        }
        out.push_str("}}]}");
        out
    }

    /// Judges a request for `url` from `viewer` at `now` (epoch seconds).
    pub fn evaluate(&self, url: &str, viewer: IpAddr, now: u64) -> Result<(), Denial> {
        if now >= self.date_less_than {
            return Err(Denial::Expired);
        }
        if self.date_greater_than.is_some_and(|start| now < start) {
            return Err(Denial::NotYetValid);
        }
        if let Some(net) = &self.source_ip
            && !net.contains(&viewer.to_canonical())
        {
            return Err(Denial::WrongIp);
        }
        if let Some(pattern) = &self.resource
            && !resource_matches(pattern, url)
        {
            return Err(Denial::WrongResource);
        }
        Ok(())
    }
}

// The policy's JSON shape. Serde's derive refuses unknown and repeated keys, which is the
// point: CloudFront's own reader and ours must never disagree on what a policy says.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(rename = "Statement")]
    statement: Vec<Statement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Statement {
    #[serde(rename = "Resource")]
    resource: Option<String>,
    #[serde(rename = "Condition")]
    condition: Condition,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Condition {
    #[serde(rename = "DateLessThan")]
    date_less_than: EpochTime,
    #[serde(rename = "DateGreaterThan")]
    date_greater_than: Option<EpochTime>,
    #[serde(rename = "IpAddress")]
    ip_address: Option<SourceIp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EpochTime {
    #[serde(rename = "AWS:EpochTime")]
    epoch_time: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceIp {
    #[serde(rename = "AWS:SourceIp")]
    source_ip: String,
}

/// `1.2.3.0/24`, `2001:db8::/32`, or a bare address (a /32 or /128).
pub(super) fn parse_cidr(text: &str) -> Option<IpNet> {
    if text.contains('/') {
        text.parse::<IpNet>().ok()
    } else {
        text.parse::<IpAddr>().ok().map(IpNet::from)
    }
}

/// Matches a Resource pattern against a URL: `*` is any run of characters (including none), `?`
/// exactly one; everything else is compared case-sensitively.
pub fn resource_matches(pattern: &str, url: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = url.chars().collect();
    let (mut pi, mut si) = (0, 0);
    // The last `*` seen and the position in `s` it is currently taken to end at.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == s[si])) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((star_pi, star_si)) = star {
            pi = star_pi + 1;
            si = star_si + 1;
            star = Some((star_pi, star_si + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}
