use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{CDN_CACHE_CONTROL, targeted_cache_control};
use crate::cdn::cache::freshness::CacheControl;

const S: fn(u64) -> Duration = Duration::from_secs;

fn parsed(lines: &[(&str, &str)], targeted: &[&str]) -> Option<CacheControl> {
    let mut headers = HeaderMap::new();
    for (name, value) in lines {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let targeted: Vec<HeaderName> = (targeted.iter())
        .map(|name| HeaderName::from_bytes(name.as_bytes()).unwrap())
        .collect();
    targeted_cache_control(&headers, &targeted)
}

fn cdn(value: &str) -> Option<CacheControl> {
    parsed(&[(CDN_CACHE_CONTROL, value)], &[CDN_CACHE_CONTROL])
}

#[test]
fn directives_map_to_cache_control_fields() {
    let cc =
        cdn("max-age=60, stale-while-revalidate=5, stale-if-error=30, must-revalidate, public")
            .unwrap();
    assert_eq!(cc.max_age, Some(S(60)));
    assert_eq!(cc.stale_while_revalidate, Some(S(5)));
    assert_eq!(cc.stale_if_error, Some(S(30)));
    assert!(cc.must_revalidate && cc.public);
    assert!(!cc.no_store && !cc.private && !cc.no_cache);
    assert!(cdn("no-store").unwrap().no_store);
    assert!(!cdn("no-store=?0").unwrap().no_store);
    assert!(cdn("private=\"set-cookie\"").unwrap().private);
    assert!(cdn("no-cache=x-user").unwrap().no_cache);
}

#[test]
fn large_lifetimes_are_capped_and_unknown_directives_ignored() {
    assert_eq!(
        cdn("max-age=99999999999").unwrap().max_age,
        Some(S(1 << 31))
    );
    assert_eq!(cdn("foobar, max-age=3600").unwrap().max_age, Some(S(3600)));
    assert_eq!(cdn("max-age=60;foo=bar").unwrap().max_age, Some(S(60)));
    assert_eq!(cdn("foo=(a b), max-age=1").unwrap().max_age, Some(S(1)));
}

#[test]
fn invalid_empty_or_mistyped_fields_are_ignored_whole() {
    for value in [
        "",
        "max-age=10000, &&&&&",
        "max-age=\"10000\"",
        "max-age =100",
        "max-age= 100",
        "MaX-aGe=3600",
        "max-age=-1",
        "max-age=1.5",
        "no-store=1",
        "max-age=(1 2)",
    ] {
        assert_eq!(cdn(value), None, "{value:?}");
    }
}

#[test]
fn field_lines_join_and_the_first_valid_targeted_field_wins() {
    let joined = parsed(
        &[
            (CDN_CACHE_CONTROL, "max-age=60"),
            (CDN_CACHE_CONTROL, "no-transform"),
        ],
        &[CDN_CACHE_CONTROL],
    )
    .unwrap();
    assert_eq!(joined.max_age, Some(S(60)));
    assert!(joined.no_transform);

    let lines = [
        ("edgewise-cache-control", "max-age=5"),
        (CDN_CACHE_CONTROL, "max-age=60"),
    ];
    let ours = ["edgewise-cache-control", CDN_CACHE_CONTROL];
    assert_eq!(parsed(&lines, &ours).unwrap().max_age, Some(S(5)));
    // An invalid field of our own falls back to CDN-Cache-Control, then to nothing.
    let broken = [
        ("edgewise-cache-control", "&&"),
        (CDN_CACHE_CONTROL, "max-age=60"),
    ];
    assert_eq!(parsed(&broken, &ours).unwrap().max_age, Some(S(60)));
    assert_eq!(parsed(&[("cache-control", "max-age=1")], &ours), None);
}
