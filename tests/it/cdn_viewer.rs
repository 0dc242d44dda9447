//! Who the viewer is, end to end: geo restriction (deny and allow lists, unknown countries,
//! IPv6 viewers, GeoIP from `[[geo.networks]]` or a MaxMind file), the CloudFront-* viewer
//! headers the origin gets only when a behavior asks for them, and X-Forwarded-For believed
//! only from trusted proxies.

use crate::cdn_harness::*;
use crate::mmdb::{Place, city_db};

const PAGE: &str = "the page";
const ERROR_PAGE: &str = "<h1>Not in your country</h1>";
const DESKTOP_UA: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
const MOBILE_UA: &str =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148";

const VIEWER_HEADERS: [&str; 8] = [
    "cloudfront-viewer-country",
    "cloudfront-viewer-country-region",
    "cloudfront-viewer-address",
    "cloudfront-forwarded-proto",
    "cloudfront-is-mobile-viewer",
    "cloudfront-is-tablet-viewer",
    "cloudfront-is-desktop-viewer",
    "cloudfront-is-smarttv-viewer",
];

/// Loopback is in Germany (Hesse), TEST-NET-3 in the US, TEST-NET-2 in France; TEST-NET-1
/// (192.0.2.0/24) is nowhere.
const NETWORKS: &str = r#"
[[geo.networks]]
cidr = "127.0.0.0/8"
country = "DE"
continent = "EU"
subdivision = "HE"

[[geo.networks]]
cidr = "203.0.113.0/24"
country = "US"
continent = "NA"
subdivision = "CA"

[[geo.networks]]
cidr = "198.51.100.0/24"
country = "FR"
continent = "EU"
"#;

/// Distribution "site" in front of `origin`: `dist` keys (geo_restriction, custom_errors),
/// a `/errors/*` behavior on a folder origin (`pages/`), and `*` with `behavior` keys.
fn distribution(origin: &Origin, dist: &str, behavior: &str) -> String {
    format!(
        r#"[[cdn.distributions]]
id = "site"
hosts = ["{SITE}", "localhost"]
{dist}

[[cdn.distributions.origins]]
id = "app"
url = "{url}"

[[cdn.distributions.origins]]
id = "pages"
dir = "pages"

[[cdn.distributions.behaviors]]
path = "/errors/*"
origin = "pages"

[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
{behavior}
"#,
        url = origin.url()
    )
}

async fn origin() -> Origin {
    let origin = Origin::start().await;
    origin.route("*", Reply::ok(PAGE).cc("max-age=300"));
    origin
}

/// The CDN with `settings` in `[cdn]`, the distribution, and `geo` appended (top-level tables).
async fn start(settings: &str, distribution: &str, geo: &str) -> Cdn {
    Cdn::start_with(
        &format!("{}\n{geo}", config(settings, distribution)),
        &[("pages/errors/403.html", ERROR_PAGE.as_bytes())],
    )
    .await
}

// ------------------------------------------------------------------ geo restriction

#[tokio::test]
async fn a_deny_list_refuses_viewers_from_a_listed_country_without_asking_the_origin() {
    let origin = origin().await;
    let cdn = start(
        "",
        &distribution(
            &origin,
            r#"geo_restriction = { mode = "deny", countries = ["DE"] }"#,
            "",
        ),
        NETWORKS,
    )
    .await;
    for proto in [Proto::H1, Proto::H2, Proto::Plain] {
        let response = assert_refused(
            &origin,
            cdn.get("/page").proto(proto),
            &format!("{proto:?}"),
        )
        .await;
        assert_ne!(response.text(), PAGE);
    }
    assert_eq!(origin.total(), 0);
}

#[tokio::test]
async fn a_geo_refusal_serves_the_custom_error_page_when_one_is_configured() {
    let origin = origin().await;
    let cdn = start(
        "",
        &distribution(
            &origin,
            r#"geo_restriction = { mode = "deny", countries = ["DE"] }
custom_errors = [{ status = 403, path = "/errors/403.html" }]"#,
            "",
        ),
        NETWORKS,
    )
    .await;
    for _ in 0..2 {
        let response = assert_refused(&origin, cdn.get("/page"), "DE viewer, error page").await;
        assert_eq!(response.text(), ERROR_PAGE, "the custom error page");
    }
    assert_eq!(origin.total(), 0, "the app origin is never asked");
}

#[tokio::test]
async fn a_deny_list_serves_viewers_from_other_countries() {
    let origin = origin().await;
    let cdn = start(
        "",
        &distribution(
            &origin,
            r#"geo_restriction = { mode = "deny", countries = ["KP", "FR"] }"#,
            "",
        ),
        NETWORKS,
    )
    .await;
    assert_served(cdn.get("/page"), PAGE, "DE viewer, KP and FR denied").await;
    assert_eq!(origin.hits("/page"), 1);
}

#[tokio::test]
async fn an_allow_list_serves_only_the_listed_countries() {
    let origin = origin().await;
    // the viewer's country comes from X-Forwarded-For through the trusted loopback proxy
    let cdn = start(
        r#"trusted_proxies = ["127.0.0.1/32"]"#,
        &distribution(
            &origin,
            r#"geo_restriction = { mode = "allow", countries = ["DE", "FR"] }"#,
            "",
        ),
        NETWORKS,
    )
    .await;
    assert_served(cdn.get("/page"), PAGE, "DE (the peer itself)").await;
    assert_served(
        cdn.get("/other").header("x-forwarded-for", "198.51.100.7"),
        PAGE,
        "FR viewer",
    )
    .await;
    assert_refused(
        &origin,
        cdn.get("/third").header("x-forwarded-for", "203.0.113.9"),
        "US viewer, not listed",
    )
    .await;
    assert_eq!(origin.total(), 2);
}

#[tokio::test]
async fn an_allow_list_without_the_viewers_country_refuses_it() {
    let origin = origin().await;
    let cdn = start(
        "",
        &distribution(
            &origin,
            r#"geo_restriction = { mode = "allow", countries = ["FR"] }"#,
            "",
        ),
        NETWORKS,
    )
    .await;
    assert_refused(&origin, cdn.get("/page"), "DE viewer, only FR allowed").await;
}

/// Only TEST-NET-3 is known: loopback viewers have no country.
const ONLY_US: &str = r#"
[[geo.networks]]
cidr = "203.0.113.0/24"
country = "US"
continent = "NA"
"#;

#[tokio::test]
async fn a_viewer_of_unknown_country_is_served_by_default() {
    let origin = origin().await;
    for mode in ["deny", "allow"] {
        let cdn = start(
            "",
            &distribution(
                &origin,
                &format!(r#"geo_restriction = {{ mode = "{mode}", countries = ["US"] }}"#),
                "",
            ),
            ONLY_US,
        )
        .await;
        assert_served(
            cdn.get(&format!("/{mode}")),
            PAGE,
            &format!("unknown country, {mode} list"),
        )
        .await;
    }
    assert_eq!(origin.total(), 2);
}

#[tokio::test]
async fn a_viewer_of_unknown_country_is_refused_with_block_unknown() {
    let origin = origin().await;
    let cdn = start(
        "",
        &distribution(
            &origin,
            r#"geo_restriction = { mode = "deny", countries = ["KP"], block_unknown = true }"#,
            "",
        ),
        ONLY_US,
    )
    .await;
    assert_refused(&origin, cdn.get("/page"), "unknown country, block_unknown").await;
    // no geo data at all is unknown too
    let cdn = start(
        "",
        &distribution(
            &origin,
            r#"geo_restriction = { mode = "allow", countries = ["DE"], block_unknown = true }"#,
            "",
        ),
        "",
    )
    .await;
    assert_refused(&origin, cdn.get("/page"), "no geo source, block_unknown").await;
}

#[tokio::test]
async fn the_country_can_come_from_a_maxmind_database() {
    let origin = origin().await;
    let db = city_db(&[
        ("127.0.0.0/8", Place::country("EU", "FR")),
        ("::1/128", Place::country("EU", "FR")),
    ]);
    let toml = format!(
        "{}\n[geo]\ncity_db = \"geo/city.mmdb\"\n",
        config(
            "",
            &distribution(
                &origin,
                r#"geo_restriction = { mode = "deny", countries = ["FR"] }"#,
                "",
            )
        )
    );
    let cdn = Cdn::start_with(
        &toml,
        &[
            ("geo/city.mmdb", &db),
            ("pages/errors/403.html", ERROR_PAGE.as_bytes()),
        ],
    )
    .await;
    assert_refused(&origin, cdn.get("/page"), "FR by the database").await;
}

// ------------------------------------------------------------------ IPv6 viewers

/// The whole config with every listener on [::1]:0.
fn ipv6_config(distribution: &str) -> String {
    format!(
        r#"[cdn]
https_listen = ["[::1]:0"]
http_listen = ["[::1]:0"]

[[cdn.certs]]
cert = "certs/cert.pem"
key = "certs/key.pem"

{distribution}

[[geo.networks]]
cidr = "::1/128"
country = "FR"
continent = "EU"
subdivision = "IDF"

[[geo.networks]]
cidr = "127.0.0.0/8"
country = "DE"
continent = "EU"
"#
    )
}

#[tokio::test]
async fn an_ipv6_viewer_is_located_and_refused_by_a_deny_list() {
    let origin = origin().await;
    let cdn = Cdn::start_with(
        &ipv6_config(&distribution(
            &origin,
            r#"geo_restriction = { mode = "deny", countries = ["FR"] }"#,
            "",
        )),
        &[("pages/errors/403.html", ERROR_PAGE.as_bytes())],
    )
    .await;
    assert!(cdn.http.unwrap().is_ipv6());
    assert_refused(&origin, cdn.get("/page").plain(), "::1 in FR, HTTP").await;
    assert_refused(&origin, cdn.get("/page"), "::1 in FR, HTTPS").await;
}

#[tokio::test]
async fn an_ipv6_viewer_gets_its_country_and_address_forwarded() {
    let origin = origin().await;
    let cdn = Cdn::start_with(
        &ipv6_config(&distribution(
            &origin,
            r#"geo_restriction = { mode = "allow", countries = ["FR"] }"#,
            r#"forward_headers = ["CloudFront-Viewer-Country", "CloudFront-Viewer-Country-Region", "CloudFront-Viewer-Address"]"#,
        )),
        &[("pages/errors/403.html", ERROR_PAGE.as_bytes())],
    )
    .await;
    assert_served(cdn.get("/page").plain(), PAGE, "::1 in FR").await;
    let seen = origin.last("/page");
    assert_eq!(seen.header("cloudfront-viewer-country"), Some("FR"));
    assert_eq!(seen.header("cloudfront-viewer-country-region"), Some("IDF"));
    let address = seen.header("cloudfront-viewer-address").unwrap_or("");
    assert!(
        address.starts_with("::1:") && address["::1:".len()..].parse::<u16>().is_ok(),
        "CloudFront-Viewer-Address {address:?}, expected ::1:<port>"
    );
}

// ------------------------------------------------------------------ viewer headers

#[tokio::test]
async fn the_origin_gets_no_viewer_headers_when_the_behavior_lists_none() {
    let origin = origin().await;
    let cdn = start("", &distribution(&origin, "", ""), NETWORKS).await;
    // client-sent copies are not passed through either
    assert_served(
        cdn.get("/page")
            .header("CloudFront-Viewer-Country", "US")
            .header("CloudFront-Viewer-Address", "203.0.113.9:1234")
            .header("CloudFront-Is-Mobile-Viewer", "true")
            .header("CloudFront-Forwarded-Proto", "http"),
        PAGE,
        "no lists",
    )
    .await;
    let seen = origin.last("/page");
    for name in VIEWER_HEADERS {
        assert_eq!(seen.header(name), None, "{name} reached the origin");
    }
}

#[tokio::test]
async fn the_origin_gets_exactly_the_viewer_headers_the_behavior_forwards_with_our_values() {
    let origin = origin().await;
    let cdn = start(
        "",
        &distribution(
            &origin,
            "",
            r#"forward_headers = ["CloudFront-Viewer-Country", "CloudFront-Viewer-Address", "CloudFront-Forwarded-Proto", "CloudFront-Is-Mobile-Viewer", "CloudFront-Is-Desktop-Viewer"]"#,
        ),
        NETWORKS,
    )
    .await;
    assert_served(
        cdn.get("/https")
            .header("user-agent", DESKTOP_UA)
            .header("CloudFront-Viewer-Country", "US")
            .header("CloudFront-Viewer-Address", "203.0.113.9:1234")
            .header("CloudFront-Forwarded-Proto", "http")
            .header("CloudFront-Is-Mobile-Viewer", "true")
            .header("CloudFront-Is-Tablet-Viewer", "true"),
        PAGE,
        "forged viewer headers",
    )
    .await;
    let seen = origin.last("/https");
    assert_eq!(
        seen.header("cloudfront-viewer-country"),
        Some("DE"),
        "client-sent US replaced"
    );
    let address = seen.header("cloudfront-viewer-address").unwrap_or("");
    assert!(
        address.starts_with("127.0.0.1:") && address != "127.0.0.1:0",
        "CloudFront-Viewer-Address {address:?}, expected 127.0.0.1:<client port>"
    );
    assert_eq!(seen.header("cloudfront-forwarded-proto"), Some("https"));
    assert_eq!(seen.header("cloudfront-is-mobile-viewer"), Some("false"));
    assert_eq!(seen.header("cloudfront-is-desktop-viewer"), Some("true"));
    // not listed: absent, even the forged one
    assert_eq!(seen.header("cloudfront-is-tablet-viewer"), None);
    assert_eq!(seen.header("cloudfront-viewer-country-region"), None);
    assert_eq!(seen.header("cloudfront-is-smarttv-viewer"), None);
    for name in ["cloudfront-viewer-country", "cloudfront-is-mobile-viewer"] {
        assert_eq!(seen.headers.get_all(name).iter().count(), 1, "one {name}");
    }

    assert_served(
        cdn.get("/plain").plain().header("user-agent", MOBILE_UA),
        PAGE,
        "plain HTTP, mobile",
    )
    .await;
    let seen = origin.last("/plain");
    assert_eq!(seen.header("cloudfront-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("cloudfront-is-mobile-viewer"), Some("true"));
    assert_eq!(seen.header("cloudfront-is-desktop-viewer"), Some("false"));
}

#[tokio::test]
async fn a_viewer_header_in_the_cache_key_reaches_the_origin_and_splits_the_cache() {
    let origin = origin().await;
    let cdn = start(
        "",
        &distribution(
            &origin,
            "",
            r#"cache_key = { headers = ["CloudFront-Is-Mobile-Viewer"] }"#,
        ),
        NETWORKS,
    )
    .await;
    let mobile = cdn
        .get("/page")
        .header("user-agent", MOBILE_UA)
        .send()
        .await;
    assert_eq!(
        (mobile.status, mobile.x_cache()),
        (200, MISS),
        "mobile, first"
    );
    assert_eq!(
        origin.last("/page").header("cloudfront-is-mobile-viewer"),
        Some("true")
    );
    let desktop = cdn
        .get("/page")
        .header("user-agent", DESKTOP_UA)
        .send()
        .await;
    assert_eq!(
        (desktop.status, desktop.x_cache()),
        (200, MISS),
        "desktop, first"
    );
    assert_eq!(
        origin.last("/page").header("cloudfront-is-mobile-viewer"),
        Some("false")
    );
    // only the listed header goes along
    assert_eq!(
        origin.last("/page").header("cloudfront-viewer-country"),
        None
    );
    assert_eq!(
        origin.hits("/page"),
        2,
        "mobile and desktop are two entries"
    );

    let mobile_again = cdn
        .get("/page")
        .header("user-agent", MOBILE_UA)
        .send()
        .await;
    assert_eq!(mobile_again.x_cache(), HIT, "mobile again");
    let desktop_again = cdn
        .get("/page")
        .header("user-agent", DESKTOP_UA)
        .send()
        .await;
    assert_eq!(desktop_again.x_cache(), HIT, "desktop again");
    // a forged device header cannot pick (or create) another entry
    let forged = cdn
        .get("/page")
        .header("user-agent", DESKTOP_UA)
        .header("CloudFront-Is-Mobile-Viewer", "maybe")
        .send()
        .await;
    assert_eq!(forged.x_cache(), HIT, "desktop UA with a forged header");
    assert_eq!(origin.hits("/page"), 2);
}

#[tokio::test]
async fn the_viewer_country_in_the_cache_key_cannot_be_forged_by_the_client() {
    let origin = origin().await;
    let cdn = start(
        "",
        &distribution(
            &origin,
            "",
            r#"cache_key = { headers = ["CloudFront-Viewer-Country"] }"#,
        ),
        NETWORKS,
    )
    .await;
    let first = cdn.get("/page").send().await;
    assert_eq!(first.x_cache(), MISS);
    assert_eq!(
        origin.last("/page").header("cloudfront-viewer-country"),
        Some("DE")
    );
    for forged in ["US", "FR", "DE"] {
        let response = cdn
            .get("/page")
            .header("CloudFront-Viewer-Country", forged)
            .send()
            .await;
        assert_eq!(response.x_cache(), HIT, "client-sent country {forged}");
    }
    assert_eq!(origin.hits("/page"), 1);
}

// ------------------------------------------------------------------ trusted proxies

const FORWARD_ALL: &str =
    r#"forward_headers = ["CloudFront-Viewer-Country", "CloudFront-Viewer-Address"]"#;

#[tokio::test]
async fn x_forwarded_for_from_a_trusted_proxy_sets_the_viewer() {
    let origin = origin().await;
    let cdn = start(
        r#"trusted_proxies = ["127.0.0.1/32"]"#,
        &distribution(&origin, "", FORWARD_ALL),
        NETWORKS,
    )
    .await;
    assert_served(
        cdn.get("/one").header("x-forwarded-for", "203.0.113.9"),
        PAGE,
        "through the trusted proxy",
    )
    .await;
    let seen = origin.last("/one");
    assert_eq!(seen.header("cloudfront-viewer-country"), Some("US"));
    let address = seen.header("cloudfront-viewer-address").unwrap_or("");
    assert!(
        address.starts_with("203.0.113.9:"),
        "CloudFront-Viewer-Address {address:?}"
    );
    // the right-most hop that is not a trusted proxy
    assert_served(
        cdn.get("/two")
            .header("x-forwarded-for", "198.51.100.7, 203.0.113.9, 127.0.0.1"),
        PAGE,
        "a chain",
    )
    .await;
    assert_eq!(
        origin.last("/two").header("cloudfront-viewer-country"),
        Some("US")
    );
    // no header: the peer
    assert_served(cdn.get("/three"), PAGE, "no X-Forwarded-For").await;
    assert_eq!(
        origin.last("/three").header("cloudfront-viewer-country"),
        Some("DE")
    );
}

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let origin = origin().await;
    // the same request as above, but no trusted proxies (or other ones)
    for settings in ["", r#"trusted_proxies = ["10.0.0.0/8"]"#] {
        let cdn = start(settings, &distribution(&origin, "", FORWARD_ALL), NETWORKS).await;
        let path = format!("/untrusted{}", settings.len());
        assert_served(
            cdn.get(&path).header("x-forwarded-for", "203.0.113.9"),
            PAGE,
            "spoofed X-Forwarded-For",
        )
        .await;
        let seen = origin.last(&path);
        assert_eq!(
            seen.header("cloudfront-viewer-country"),
            Some("DE"),
            "{settings:?}"
        );
        let address = seen.header("cloudfront-viewer-address").unwrap_or("");
        assert!(
            address.starts_with("127.0.0.1:"),
            "{settings:?}: CloudFront-Viewer-Address {address:?}"
        );
    }
}

#[tokio::test]
async fn a_spoofed_x_forwarded_for_does_not_escape_a_geo_restriction() {
    let origin = origin().await;
    let cdn = start(
        "",
        &distribution(
            &origin,
            r#"geo_restriction = { mode = "deny", countries = ["DE"] }"#,
            "",
        ),
        NETWORKS,
    )
    .await;
    assert_refused(
        &origin,
        cdn.get("/page").header("x-forwarded-for", "203.0.113.9"),
        "DE peer claiming to forward a US viewer",
    )
    .await;
    // while a trusted proxy's word counts both ways
    let cdn = start(
        r#"trusted_proxies = ["127.0.0.1/32"]"#,
        &distribution(
            &origin,
            r#"geo_restriction = { mode = "deny", countries = ["US"] }"#,
            "",
        ),
        NETWORKS,
    )
    .await;
    assert_refused(
        &origin,
        cdn.get("/page").header("x-forwarded-for", "203.0.113.9"),
        "US viewer through the trusted proxy",
    )
    .await;
    assert_served(cdn.get("/page"), PAGE, "the DE proxy itself").await;
}
