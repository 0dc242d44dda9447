//! Who the viewer is: the address (X-Forwarded-For believed only from trusted proxies), the
//! country, the device class from the User-Agent, and the CloudFront-* headers that carry all
//! of it to cache keys and origins. Also the geo restriction decision.

use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

use crate::geo::{Code, Location};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static VIEWER_COUNTRY: HeaderName = HeaderName::from_static("cloudfront-viewer-country");
pub static VIEWER_COUNTRY_REGION: HeaderName =
    HeaderName::from_static("cloudfront-viewer-country-region");
pub static VIEWER_ADDRESS: HeaderName = HeaderName::from_static("cloudfront-viewer-address");
pub static FORWARDED_PROTO: HeaderName = HeaderName::from_static("cloudfront-forwarded-proto");
pub static IS_MOBILE: HeaderName = HeaderName::from_static("cloudfront-is-mobile-viewer");
pub static IS_TABLET: HeaderName = HeaderName::from_static("cloudfront-is-tablet-viewer");
pub static IS_DESKTOP: HeaderName = HeaderName::from_static("cloudfront-is-desktop-viewer");
pub static IS_SMARTTV: HeaderName = HeaderName::from_static("cloudfront-is-smarttv-viewer");

/// The viewer's address: the peer, unless the peer is a trusted proxy; then the right-most
/// X-Forwarded-For entry that is not a trusted proxy. Entries left of an untrusted hop are
/// the client's own words and never believed.
pub fn address(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> SocketAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer.ip()) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return peer;
        };
        if !is_trusted(&ip) {
            return SocketAddr::new(ip, 0);
        }
    }
    peer
}

/// An X-Forwarded-For entry: an address, possibly with a port or brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .ok()
        })
}

/// CloudFront's device classes; several may be true at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Device {
    pub mobile: bool,
    pub tablet: bool,
    pub desktop: bool,
    pub smarttv: bool,
}

/// Classifies a User-Agent the way CloudFront's headers do: smart TVs and consoles first,
/// then tablets (iPad, Android without "Mobile", Kindle), then phones; the rest is desktop.
pub fn classify(user_agent: Option<&str>) -> Device {
    let ua = user_agent.unwrap_or("").to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| ua.contains(n));
    if has(&[
        "smart-tv", "smarttv", "googletv", "appletv", "hbbtv", "netcast", "roku", "crkey",
        "bravia", "tizen", "webos", "aft",
    ]) && !has(&["mobile"])
    {
        return Device {
            smarttv: true,
            ..Device::default()
        };
    }
    let tablet = has(&["ipad", "tablet", "kindle", "silk/", "playbook"])
        || (ua.contains("android") && !ua.contains("mobile"));
    let mobile = !tablet
        && has(&[
            "mobile",
            "iphone",
            "ipod",
            "android",
            "windows phone",
            "blackberry",
            "opera mini",
        ]);
    Device {
        mobile,
        tablet,
        desktop: !tablet && !mobile,
        smarttv: false,
    }
}

/// A distribution's geo restriction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoRestriction {
    /// true: only these countries; false: all but these.
    pub allow: bool,
    pub countries: Vec<Code>,
    /// Refuse viewers whose country is unknown (CloudFront serves them).
    pub block_unknown: bool,
}

impl GeoRestriction {
    /// Whether a viewer from `country` may be served.
    pub fn allows(&self, country: Option<Code>) -> bool {
        match country {
            None => !self.block_unknown,
            Some(code) => self.countries.contains(&code) == self.allow,
        }
    }
}

/// Removes client-sent CloudFront-* viewer headers: only ours may exist.
pub fn remove_headers(headers: &mut HeaderMap) {
    // Almost no request carries one: a scan of the few names it has is cheaper than eight
    // hashed removals.
    if !headers
        .keys()
        .any(|name| name.as_str().starts_with(CLOUDFRONT_PREFIX))
    {
        return;
    }
    for name in VIEWER_HEADERS {
        headers.remove(name);
    }
}

/// What every header in [`VIEWER_HEADERS`] starts with.
const CLOUDFRONT_PREFIX: &str = "cloudfront-";

/// The viewer headers only the edge may set.
static VIEWER_HEADERS: [&HeaderName; 8] = [
    &VIEWER_COUNTRY,
    &VIEWER_COUNTRY_REGION,
    &VIEWER_ADDRESS,
    &FORWARDED_PROTO,
    &IS_MOBILE,
    &IS_TABLET,
    &IS_DESKTOP,
    &IS_SMARTTV,
];

/// Replaces any client-sent CloudFront-* viewer headers with ours.
pub fn set_headers(
    headers: &mut HeaderMap,
    viewer: SocketAddr,
    location: Option<&Location>,
    https: bool,
) {
    remove_headers(headers);
    if let Some(country) = location.and_then(|l| l.country)
        && let Ok(value) = HeaderValue::from_str(country.as_str())
    {
        headers.insert(VIEWER_COUNTRY.clone(), value);
    }
    if let Some(region) = location.and_then(|l| l.subdivision)
        && let Ok(value) = HeaderValue::from_str(region.as_str())
    {
        headers.insert(VIEWER_COUNTRY_REGION.clone(), value);
    }
    let address = match viewer.ip() {
        IpAddr::V4(v4) => format!("{v4}:{}", viewer.port()),
        IpAddr::V6(v6) => format!("{v6}:{}", viewer.port()),
    };
    if let Ok(value) = HeaderValue::from_str(&address) {
        headers.insert(VIEWER_ADDRESS.clone(), value);
    }
    headers.insert(
        FORWARDED_PROTO.clone(),
        HeaderValue::from_static(if https { "https" } else { "http" }),
    );
    let device = classify(
        headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    );
    for (name, on) in [
        (&IS_MOBILE, device.mobile),
        (&IS_TABLET, device.tablet),
        (&IS_DESKTOP, device.desktop),
        (&IS_SMARTTV, device.smarttv),
    ] {
        headers.insert(
            name.clone(),
            HeaderValue::from_static(if on { "true" } else { "false" }),
        );
    }
}

/// Viewer headers reach the origin only when a behavior keys or forwards them.
pub fn is_viewer_header(name: &HeaderName) -> bool {
    VIEWER_HEADERS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_viewer_header_has_the_prefix_the_fast_path_looks_for() {
        for name in VIEWER_HEADERS {
            assert!(name.as_str().starts_with(CLOUDFRONT_PREFIX), "{name}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(&IS_SMARTTV, HeaderValue::from_static("true"));
        headers.insert("x-other", HeaderValue::from_static("kept"));
        remove_headers(&mut headers);
        assert!(headers.get(&IS_SMARTTV).is_none());
        assert_eq!(headers.len(), 1);
    }

    fn xff(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            X_FORWARDED_FOR.clone(),
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.7:5000".parse().unwrap();
        assert_eq!(
            address(stranger, &xff("203.0.113.9"), &trusted),
            stranger,
            "an untrusted peer's header is ignored"
        );
        assert_eq!(
            address(proxy, &xff("203.0.113.9").clone(), &trusted).ip(),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            address(proxy, &xff("1.1.1.1, 203.0.113.9, 10.0.0.5"), &trusted).ip(),
            "203.0.113.9".parse::<IpAddr>().unwrap(),
            "right-most untrusted hop"
        );
        assert_eq!(
            address(proxy, &xff("garbage"), &trusted),
            proxy,
            "unparseable hop: the peer"
        );
        assert_eq!(address(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(
            address(proxy, &xff("[2001:db8::1]:443"), &trusted).ip(),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn user_agents_are_classified_like_cloudfront() {
        let cases = [
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
                "mobile",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36",
                "mobile",
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
                "tablet",
            ),
            (
                "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
                "tablet",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
                "desktop",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15",
                "desktop",
            ),
            (
                "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 SamsungBrowser/4.0 TV Safari/537.36",
                "smarttv",
            ),
            (
                "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 Chrome/79.0 Safari/537.36 WebAppManager",
                "smarttv",
            ),
            ("Roku/DVP-12.0 (12.0.0.4182-88)", "smarttv"),
            ("curl/8.5.0", "desktop"),
        ];
        for (ua, want) in cases {
            let d = classify(Some(ua));
            let got = if d.smarttv {
                "smarttv"
            } else if d.tablet {
                "tablet"
            } else if d.mobile {
                "mobile"
            } else {
                "desktop"
            };
            assert_eq!(got, want, "{ua}");
        }
        assert!(classify(None).desktop);
    }

    #[test]
    fn geo_restriction_allows_and_denies_by_country() {
        let code = |c: &str| Code::new(c);
        let deny = GeoRestriction {
            allow: false,
            countries: vec![code("KP").unwrap()],
            block_unknown: false,
        };
        assert!(!deny.allows(code("KP")));
        assert!(deny.allows(code("DE")));
        assert!(
            deny.allows(None),
            "unknown countries are served, as CloudFront"
        );
        let allow = GeoRestriction {
            allow: true,
            countries: vec![code("DE").unwrap()],
            block_unknown: true,
        };
        assert!(allow.allows(code("DE")));
        assert!(!allow.allows(code("FR")));
        assert!(
            !allow.allows(None),
            "block_unknown refuses unknown countries"
        );
    }

    #[test]
    fn client_sent_viewer_headers_are_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(VIEWER_COUNTRY.clone(), HeaderValue::from_static("US"));
        let location = Location {
            country: Code::new("DE"),
            ..Location::default()
        };
        set_headers(
            &mut headers,
            "203.0.113.9:4444".parse().unwrap(),
            Some(&location),
            true,
        );
        assert_eq!(headers.get(&VIEWER_COUNTRY).unwrap(), "DE");
        assert_eq!(headers.get(&VIEWER_ADDRESS).unwrap(), "203.0.113.9:4444");
        assert_eq!(headers.get(&FORWARDED_PROTO).unwrap(), "https");
        assert_eq!(headers.get(&IS_DESKTOP).unwrap(), "true");
        let mut forged = HeaderMap::new();
        forged.insert(VIEWER_COUNTRY.clone(), HeaderValue::from_static("US"));
        set_headers(&mut forged, "203.0.113.9:1".parse().unwrap(), None, false);
        assert!(
            forged.get(&VIEWER_COUNTRY).is_none(),
            "a forged country never survives"
        );
    }
}
