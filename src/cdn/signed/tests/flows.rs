use super::*;

#[test]
fn canned_policy_matches_openssl_byte_for_byte() {
    let expected_policy = r#"{"Statement":[{"Resource":"https://d111111abcdef8.cloudfront.net/images/photo.jpg?size=large","Condition":{"DateLessThan":{"AWS:EpochTime":1767225600}}}]}"#;
    assert_eq!(canned_statement(URL, T), expected_policy);
    // printf '%s' "$POLICY" | openssl sha1 -sign key1_pkcs1.pem | openssl base64 -A | tr '+=/' '-_~'
    let openssl_sha1 = "oSjMz5EZMRVVs1C~k18S2TMd6A0gBSA0vy8shmHt9mly8bMwTgn7BKGihU1D7cuRw65CvZl3UNPcrU2yk3Ci~v0wDFVDeTYjU7P-yXf2yOwxu~6bCTfAX1EMukF1noNQedDkmHLdnLaaHDg5A7MNaixvz4OVuTfsVipCMfHTJrXEQ9mI4Df4iotkLeAfM~962yH9e3PWCxXy24Wm10zn595bMus4sntw48yu-9R3SJTZwQHR0Me9TYQHM-pGehqiTARRtkqsK1rXH~P1b5smaQ0MgQNxYWi-qkOeGoPmgC1DjphG1f22h6RWabvFVI7qa3PjKBdrXpcmUlm5saExUg__";
    let signed = sign_url(URL, "K1", &KEY1, &SignPolicy::Canned { expires: T }).unwrap();
    assert_eq!(
        signed,
        format!("{URL}&Expires={T}&Signature={openssl_sha1}&Key-Pair-Id=K1")
    );
    assert_eq!(check(&signed, "192.0.2.1", T - 1), Ok(()));
    // ... | openssl dgst -sha256 -sign key1_pkcs1.pem | ...
    let openssl_sha256 = "kf2dDa2UCVH0dWRzcIwuPPlf~9JYZJMZ57Qgb8BMFP3Gh0JzFLUJYu-Q4W~cHN3kaLmDthI8oyGnDGDksVfUz82eXMUNZJgkL4Nck7EpVyclO3svM4LPq~~utd5m4aN9wv6gGbPp68mpot27-K01JvS3MLeyyZUwzN3kiAZ4HbfwexoPePllaTDQajpHw~NMRoCYXces4sHZ1idHcpGXqb9TOmZdoQ5lNyYnfXSCT2SGHOId3b0ZEUXdf-1Mp-sbf9GqGRyD5MLn~ZBvMsifZossjvyz3dslLFGzO2pIkUSoc6t7QS-tHPCbDLDWRLMm0zdYhT-8lFPpUCcaHP~p~A__";
    let signed = sign_url_with(
        URL,
        "K1",
        &KEY1,
        &SignPolicy::Canned { expires: T },
        HashAlgorithm::Sha256,
    )
    .unwrap();
    assert_eq!(
        signed,
        format!(
            "{URL}&Expires={T}&Signature={openssl_sha256}&Key-Pair-Id=K1&Hash-Algorithm=SHA256"
        )
    );
    assert_eq!(check(&signed, "192.0.2.1", T - 1), Ok(()));
}

#[test]
fn canned_round_trip() {
    for url in [
        "https://cdn.example.com/a/b.txt",
        "http://localhost:8080/x?b=2&a=1",
        "https://h/",
    ] {
        let signed = sign_url(url, "K1", &KEY1, &SignPolicy::Canned { expires: T }).unwrap();
        assert_eq!(check(&signed, "2001:db8::1", T - 3600), Ok(()), "{signed}");
        assert_eq!(check(&signed, "2001:db8::1", T), Err(Denial::Expired));
    }
    // A canned URL names one resource: another path or query breaks the rebuilt statement.
    let signed = sign_url(
        "https://h/a?x=1",
        "K1",
        &KEY1,
        &SignPolicy::Canned { expires: T },
    )
    .unwrap();
    let other = signed.replace("/a?x=1", "/b?x=1");
    assert_eq!(check(&other, "192.0.2.1", 0), Err(Denial::BadSignature));
    let other = signed.replace("x=1", "x=2");
    assert_eq!(check(&other, "192.0.2.1", 0), Err(Denial::BadSignature));
    // Signing parameters may sit anywhere among the others.
    let moved = format!(
        "https://h/a?Expires={T}&x=1&{}",
        signed
            .split_once("&Signature=")
            .map(|(_, s)| format!("Signature={s}"))
            .unwrap()
    );
    assert_eq!(check(&moved, "192.0.2.1", 0), Ok(()));
}

#[test]
fn custom_round_trip() {
    let policy = custom(
        Some("https://cdn.example.com/videos/*"),
        Some(T - 1000),
        Some("198.51.100.0/24"),
    );
    let signed = sign_url("https://cdn.example.com/videos/a.mp4", "K2", &KEY2, &policy).unwrap();
    assert!(signed.contains("?Policy=") && !signed.contains("Expires="));
    assert_eq!(check(&signed, "198.51.100.7", T - 10), Ok(()));
    // The same signature works for any URL the Resource matches (extra query included).
    let elsewhere = signed.replace("/videos/a.mp4?", "/videos/b/c.mp4?quality=hd&");
    assert_eq!(check(&elsewhere, "198.51.100.7", T - 10), Ok(()));
    // No Resource: any URL.
    let any = sign_url("https://h/x", "K1", &KEY1, &custom(None, None, None)).unwrap();
    assert_eq!(
        check(&any.replace("https://h/x", "http://other:81/y"), "::1", 0),
        Ok(())
    );
    // A bare IP is a /32.
    let one = sign_url(
        "https://h/x",
        "K1",
        &KEY1,
        &custom(None, None, Some("203.0.113.9")),
    )
    .unwrap();
    assert_eq!(check(&one, "203.0.113.9", 0), Ok(()));
    assert_eq!(check(&one, "203.0.113.10", 0), Err(Denial::WrongIp));
    // An IPv4-mapped IPv6 viewer counts as its IPv4 address.
    assert_eq!(check(&one, "::ffff:203.0.113.9", 0), Ok(()));
}

#[test]
fn cookies_round_trip() {
    let page = "https://cdn.example.com/private/index.html";
    let canned = sign_cookies(page, "K1", &KEY1, &SignPolicy::Canned { expires: T }).unwrap();
    let names: Vec<&str> = canned.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "CloudFront-Expires",
            "CloudFront-Signature",
            "CloudFront-Key-Pair-Id"
        ]
    );
    let header = format!("session=abc; {}; theme=dark", cookie_header(&canned));
    assert_eq!(check_cookies(page, &[&header], T - 1), Ok(()));
    assert_eq!(check_cookies(page, &[&header], T), Err(Denial::Expired));
    // Canned cookies name one URL.
    let other = "https://cdn.example.com/private/other.html";
    assert_eq!(
        check_cookies(other, &[&header], 0),
        Err(Denial::BadSignature)
    );
    // Custom cookies, spread over several Cookie headers.
    let policy = custom(Some("https://cdn.example.com/private/*"), None, None);
    let custom = sign_cookies(page, "K2", &KEY2, &policy).unwrap();
    assert_eq!(custom[0].0, "CloudFront-Policy");
    let split: Vec<String> = custom.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let split: Vec<&str> = split.iter().map(String::as_str).collect();
    assert_eq!(check_cookies(other, &split, 0), Ok(()));
    assert_eq!(
        check_cookies("https://cdn.example.com/public/x", &split, 0),
        Err(Denial::WrongResource)
    );
    // Canned cookies over a wildcard could never verify: refused with a pointer to custom.
    let error = sign_cookies(
        "https://cdn.example.com/private/*",
        "K1",
        &KEY1,
        &SignPolicy::Canned { expires: T },
    )
    .unwrap_err();
    assert!(error.to_string().contains("custom policy"), "{error}");
    // A signing cookie sent twice is refused, in one header or across several, whatever the
    // copies hold: neither the first nor the last is chosen.
    for name in [
        "CloudFront-Policy",
        "CloudFront-Signature",
        "CloudFront-Key-Pair-Id",
    ] {
        let (_, value) = custom.iter().find(|(n, _)| *n == name).unwrap();
        let again = format!("{name}={value}");
        let mut repeated = split.clone();
        repeated.push(&again);
        assert_eq!(
            check_cookies(other, &repeated, 0),
            Err(Denial::Malformed),
            "{name}"
        );
        let one_header = format!("{}; {again}", cookie_header(&custom));
        assert_eq!(
            check_cookies(other, &[&one_header], 0),
            Err(Denial::Malformed),
            "{name}"
        );
    }
    // A URL with any signing parameter is judged alone: the valid cookies are ignored.
    assert_eq!(
        check_cookies(&format!("{page}?Signature=AAAA"), &split, 0),
        Err(Denial::Missing)
    );
    assert_eq!(
        check_cookies(&format!("{page}?Hash-Algorithm=SHA1"), &split, 0),
        Err(Denial::Missing)
    );
    // Unrelated query parameters leave the cookies in charge.
    assert_eq!(check_cookies(&format!("{other}?v=2"), &split, 0), Ok(()));
    // SHA-256 cookies.
    let sha256 = sign_cookies_with(page, "K1", &KEY1, &policy, HashAlgorithm::Sha256).unwrap();
    assert_eq!(
        sha256.last().unwrap(),
        &("CloudFront-Hash-Algorithm", "SHA256".to_string())
    );
    assert_eq!(check_cookies(page, &[&cookie_header(&sha256)], 0), Ok(()));
    let without = cookie_header(&sha256[..3]);
    assert_eq!(
        check_cookies(page, &[&without], 0),
        Err(Denial::BadSignature)
    );
}

#[test]
fn sha256_urls() {
    let policy = custom(Some("https://h/*"), None, None);
    let signed = sign_url_with("https://h/a", "K2", &KEY2, &policy, HashAlgorithm::Sha256).unwrap();
    assert!(signed.ends_with("&Hash-Algorithm=SHA256"));
    assert_eq!(check(&signed, "192.0.2.1", 0), Ok(()));
    // The algorithm is part of what is checked: dropping or changing it breaks the signature.
    let sha1 = signed.trim_end_matches("&Hash-Algorithm=SHA256");
    assert_eq!(check(sha1, "192.0.2.1", 0), Err(Denial::BadSignature));
    assert_eq!(
        check(
            &replace_param(&signed, "Hash-Algorithm", "SHA1"),
            "192.0.2.1",
            0
        ),
        Err(Denial::BadSignature)
    );
    assert_eq!(
        check(
            &replace_param(&signed, "Hash-Algorithm", "sha256"),
            "192.0.2.1",
            0
        ),
        Ok(())
    );
    assert_eq!(
        check(
            &replace_param(&signed, "Hash-Algorithm", "MD5"),
            "192.0.2.1",
            0
        ),
        Err(Denial::Malformed)
    );
}

#[test]
fn key_rotation() {
    for (id, key) in [("K1", &*KEY1), ("K2", &*KEY2)] {
        let signed = sign_url("https://h/a", id, key, &SignPolicy::Canned { expires: T }).unwrap();
        assert_eq!(check(&signed, "192.0.2.1", 0), Ok(()), "{id}");
    }
    // Keys may come from different groups; a verifier trusting only the new key refuses the old.
    let split = Verifier::new(vec![
        KeyGroup::from_pems("old", [("K1", KEY1_PUBLIC)]).unwrap(),
        KeyGroup::from_pems("new", [("K2", KEY2_PUBLIC)]).unwrap(),
    ]);
    let only_new = Verifier::new(vec![
        KeyGroup::from_pems("new", [("K2", KEY2_PUBLIC)]).unwrap(),
    ]);
    let old = sign_url(
        "https://h/a",
        "K1",
        &KEY1,
        &SignPolicy::Canned { expires: T },
    )
    .unwrap();
    let none = HeaderMap::new();
    assert_eq!(check_with(&split, &old, &none, "192.0.2.1", 0), Ok(()));
    assert_eq!(
        check_with(&only_new, &old, &none, "192.0.2.1", 0),
        Err(Denial::UnknownKey)
    );
    assert!(split.knows_key("K1") && !only_new.knows_key("K1"));
}

#[test]
fn verified_signatures_are_cached() {
    let v = Verifier::new(vec![
        KeyGroup::from_pems("g", [("K1", KEY1_PUBLIC)]).unwrap(),
    ]);
    let none = HeaderMap::new();
    let signed = sign_url(
        "https://h/c",
        "K1",
        &KEY1,
        &custom(None, None, Some("192.0.2.0/24")),
    )
    .unwrap();
    assert_eq!(v.cached_signatures(), 0);
    assert_eq!(check_with(&v, &signed, &none, "192.0.2.1", 0), Ok(()));
    assert_eq!(v.cached_signatures(), 1);
    // A hit still evaluates the policy.
    assert_eq!(check_with(&v, &signed, &none, "192.0.2.1", 0), Ok(()));
    assert_eq!(
        check_with(&v, &signed, &none, "203.0.113.1", 0),
        Err(Denial::WrongIp)
    );
    assert_eq!(
        check_with(&v, &signed, &none, "192.0.2.1", T),
        Err(Denial::Expired)
    );
    assert_eq!(v.cached_signatures(), 1);
    // Failures are not cached.
    let tampered = replace_param(&signed, "Signature", &encode_base64(&[7; 256]));
    assert_eq!(
        check_with(&v, &tampered, &none, "192.0.2.1", 0),
        Err(Denial::BadSignature)
    );
    assert_eq!(v.cached_signatures(), 1);
}
