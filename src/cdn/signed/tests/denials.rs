use super::*;

#[test]
fn every_denial() {
    let canned = sign_url(
        "https://h/a",
        "K1",
        &KEY1,
        &SignPolicy::Canned { expires: T },
    )
    .unwrap();
    let sig = param(&canned, "Signature").to_string();
    let v4 = "192.0.2.1";
    assert_eq!(check("https://h/a", v4, 0), Err(Denial::Missing));
    assert_eq!(check("https://h/a?x=1", v4, 0), Err(Denial::Missing));
    assert_eq!(
        check(&canned.replace("&Key-Pair-Id=K1", ""), v4, 0),
        Err(Denial::Missing)
    );
    assert_eq!(
        check(&canned.replace(&format!("&Signature={sig}"), ""), v4, 0),
        Err(Denial::Missing)
    );
    assert_eq!(
        check(
            &format!("https://h/a?Signature={sig}&Key-Pair-Id=K1"),
            v4,
            0
        ),
        Err(Denial::Missing)
    );
    // Malformed values.
    assert_eq!(
        check(&replace_param(&canned, "Signature", "@@@!"), v4, 0),
        Err(Denial::Malformed)
    );
    assert_eq!(
        check(&replace_param(&canned, "Signature", ""), v4, 0),
        Err(Denial::Malformed)
    );
    assert_eq!(
        check(
            &replace_param(&canned, "Signature", &"A".repeat(1028)),
            v4,
            0
        ),
        Err(Denial::Malformed)
    );
    assert_eq!(
        check(&replace_param(&canned, "Expires", "soon"), v4, 0),
        Err(Denial::Malformed)
    );
    assert_eq!(
        check(&replace_param(&canned, "Expires", "-5"), v4, 0),
        Err(Denial::Malformed)
    );
    assert_eq!(
        check(&format!("{canned}&Key-Pair-Id=K1"), v4, 0),
        Err(Denial::Malformed)
    );
    assert_eq!(
        check(&format!("{canned}&Policy=e30_"), v4, 0),
        Err(Denial::Malformed)
    );
    assert_eq!(
        check(&replace_param(&canned, "Signature", "%FF%FE"), v4, 0),
        Err(Denial::Malformed)
    );
    let big = encode_base64(&vec![b' '; MAX_POLICY_BYTES + 1]);
    assert_eq!(
        check(
            &format!("https://h/a?Policy={big}&Signature={sig}&Key-Pair-Id=K1"),
            v4,
            0
        ),
        Err(Denial::Malformed)
    );
    assert_eq!(
        check(
            &format!("https://h/a?Policy=***&Signature={sig}&Key-Pair-Id=K1"),
            v4,
            0
        ),
        Err(Denial::Malformed)
    );
    // A correctly signed document that is not an acceptable policy.
    for doc in [
        "not json".to_string(),
        format!(
            r#"{{"Statement":[{{"Condition":{{"DateLessThan":{{"AWS:EpochTime":{T}}}}}}},{{"Condition":{{"DateLessThan":{{"AWS:EpochTime":{T}}}}}}}]}}"#
        ),
        format!(
            r#"{{"Statement":[{{"Condition":{{"DateLessThan":{{"AWS:EpochTime":{T}}},"StringLike":{{"a":"b"}}}}}}]}}"#
        ),
    ] {
        let s = sign::signature(&KEY1, HashAlgorithm::Sha1, doc.as_bytes()).unwrap();
        let url = format!(
            "https://h/a?Policy={}&Signature={s}&Key-Pair-Id=K1",
            encode_base64(doc.as_bytes())
        );
        assert_eq!(check(&url, v4, 0), Err(Denial::Malformed), "{doc}");
    }
    // Tampering.
    let mut tampered: Vec<char> = sig.chars().collect();
    tampered[10] = if tampered[10] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    assert_eq!(
        check(&replace_param(&canned, "Signature", &tampered), v4, 0),
        Err(Denial::BadSignature)
    );
    assert_eq!(
        check(
            &replace_param(&canned, "Expires", &(T + 1).to_string()),
            v4,
            0
        ),
        Err(Denial::BadSignature)
    );
    let custom_url = sign_url("https://h/a", "K1", &KEY1, &custom(None, None, None)).unwrap();
    let forged = encode_base64(Policy::until(T + 1).to_json().as_bytes());
    assert_eq!(
        check(&replace_param(&custom_url, "Policy", &forged), v4, 0),
        Err(Denial::BadSignature)
    );
    // Signed by key 2 but named as key 1.
    let wrong = sign_url(
        "https://h/a",
        "K1",
        &KEY2,
        &SignPolicy::Canned { expires: T },
    )
    .unwrap();
    assert_eq!(check(&wrong, v4, 0), Err(Denial::BadSignature));
    assert_eq!(
        check(&replace_param(&canned, "Key-Pair-Id", "K9"), v4, 0),
        Err(Denial::UnknownKey)
    );
    assert_eq!(
        check(&replace_param(&canned, "Key-Pair-Id", "k1"), v4, 0),
        Err(Denial::UnknownKey)
    );
    // Time.
    assert_eq!(check(&canned, v4, T), Err(Denial::Expired));
    assert_eq!(check(&canned, v4, T + 86_400), Err(Denial::Expired));
    let later = sign_url(
        "https://h/a",
        "K1",
        &KEY1,
        &custom(None, Some(T - 100), None),
    )
    .unwrap();
    assert_eq!(check(&later, v4, T - 101), Err(Denial::NotYetValid));
    assert_eq!(check(&later, v4, T - 100), Ok(()));
    // Source IP, v4 and v6.
    let net4 = sign_url(
        "https://h/a",
        "K1",
        &KEY1,
        &custom(None, None, Some("198.51.100.0/24")),
    )
    .unwrap();
    assert_eq!(check(&net4, "198.51.100.255", 0), Ok(()));
    assert_eq!(check(&net4, "198.51.101.1", 0), Err(Denial::WrongIp));
    assert_eq!(check(&net4, "2001:db8::1", 0), Err(Denial::WrongIp));
    let net6 = sign_url(
        "https://h/a",
        "K1",
        &KEY1,
        &custom(None, None, Some("2001:db8:1::/48")),
    )
    .unwrap();
    assert_eq!(check(&net6, "2001:db8:1:ffff::9", 0), Ok(()));
    assert_eq!(check(&net6, "2001:db8:2::1", 0), Err(Denial::WrongIp));
    assert_eq!(check(&net6, "198.51.100.1", 0), Err(Denial::WrongIp));
    // Resource.
    let res = sign_url(
        "https://h/a",
        "K1",
        &KEY1,
        &custom(Some("https://h/a"), None, None),
    )
    .unwrap();
    assert_eq!(check(&res, v4, 0), Ok(()));
    assert_eq!(
        check(&res.replace("https://h/a?", "https://h/b?"), v4, 0),
        Err(Denial::WrongResource)
    );
    assert_eq!(
        check(&res.replace("https://h/a?", "https://h/a?x=1&"), v4, 0),
        Err(Denial::WrongResource)
    );
    assert_eq!(
        check(&res.replace("https://", "http://"), v4, 0),
        Err(Denial::WrongResource)
    );
}

#[test]
fn denial_names() {
    let all = [
        (Denial::Missing, "missing"),
        (Denial::Malformed, "malformed"),
        (Denial::BadSignature, "bad-signature"),
        (Denial::UnknownKey, "unknown-key"),
        (Denial::Expired, "expired"),
        (Denial::NotYetValid, "not-yet-valid"),
        (Denial::WrongIp, "wrong-ip"),
        (Denial::WrongResource, "wrong-resource"),
    ];
    for (denial, name) in all {
        assert_eq!(denial.as_str(), name);
        assert_eq!(denial.to_string(), name);
    }
}

#[test]
fn encodings_tolerated() {
    let signed = sign_url("https://h/a", "K1", &KEY1, &custom(None, None, None)).unwrap();
    let (policy, sig) = (param(&signed, "Policy"), param(&signed, "Signature"));
    // Percent-encoded CloudFront alphabet.
    let escaped = |s: &str| {
        s.replace('~', "%7E")
            .replace('-', "%2D")
            .replace('_', "%5f")
    };
    let url = replace_param(
        &replace_param(&signed, "Signature", &escaped(sig)),
        "Policy",
        &escaped(policy),
    );
    assert_eq!(check(&url, "192.0.2.1", 0), Ok(()));
    // Standard base64, raw and percent-encoded, with and without padding.
    let standard = |s: &str| s.replace('-', "+").replace('_', "=").replace('~', "/");
    let url = replace_param(
        &replace_param(&signed, "Signature", &standard(sig)),
        "Policy",
        &standard(policy),
    );
    assert_eq!(check(&url, "192.0.2.1", 0), Ok(()));
    let pct = standard(sig)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "");
    assert_eq!(
        check(&replace_param(&signed, "Signature", &pct), "192.0.2.1", 0),
        Ok(())
    );
    assert_eq!(decode_base64("aGk_"), Some(b"hi".to_vec()));
    assert_eq!(decode_base64("aGk="), Some(b"hi".to_vec()));
    assert_eq!(decode_base64("aGk"), Some(b"hi".to_vec()));
    assert_eq!(encode_base64(&[0xfb, 0xff, 0xfe]), "-~~-");
    assert_eq!(encode_base64(b"hi"), "aGk_");
    assert_eq!(decode_base64("a b"), None);
}
