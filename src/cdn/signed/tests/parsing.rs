use super::*;

#[test]
fn policy_parse_and_json_round_trip() {
    let policy = Policy {
        resource: Some("https://h/\"q\"*".into()),
        date_less_than: T,
        date_greater_than: Some(5),
        source_ip: Some("2001:db8::/32".parse().unwrap()),
    };
    let json = policy.to_json();
    assert_eq!(
        json,
        r#"{"Statement":[{"Resource":"https://h/\"q\"*","Condition":{"DateLessThan":{"AWS:EpochTime":1767225600},"DateGreaterThan":{"AWS:EpochTime":5},"IpAddress":{"AWS:SourceIp":"2001:db8::/32"}}}]}"#
    );
    assert_eq!(Policy::parse(json.as_bytes()), Ok(policy));
    // Whitespace from other signers is fine.
    let spaced =
        "{ \"Statement\": [ { \"Condition\": { \"DateLessThan\": { \"AWS:EpochTime\": 10 } } } ] }";
    assert_eq!(Policy::parse(spaced.as_bytes()), Ok(Policy::until(10)));
    for bad in [
        r#"{"Statement":[]}"#,
        r#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":1}}},{"Condition":{"DateLessThan":{"AWS:EpochTime":1}}}]}"#,
        r#"{"Statement":[{"Condition":{"DateGreaterThan":{"AWS:EpochTime":1}}}]}"#,
        r#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":1},"NotIpAddress":{"AWS:SourceIp":"1.2.3.4"}}}]}"#,
        r#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":"1"}}}]}"#,
        r#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":-1}}}]}"#,
        r#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":1},"IpAddress":{"AWS:SourceIp":"1.2.3/8"}}}]}"#,
        r#"{"Statement":[{"Resource":5,"Condition":{"DateLessThan":{"AWS:EpochTime":1}}}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Condition":{"DateLessThan":{"AWS:EpochTime":1}}}]}"#,
        r#"{"Statement":{"Condition":{"DateLessThan":{"AWS:EpochTime":1}}}}"#,
        // Repeated keys at every level: first-wins and last-wins readers would disagree.
        r#"{"Statement":[{"Resource":"https://h/public/*","Resource":"*","Condition":{"DateLessThan":{"AWS:EpochTime":1}}}]}"#,
        r#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":1}}}],"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":1}}}]}"#,
        r#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":1}},"Condition":{"DateLessThan":{"AWS:EpochTime":1}}}]}"#,
        r#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":1},"DateLessThan":{"AWS:EpochTime":9}}}]}"#,
        r#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":1,"AWS:EpochTime":9}}}]}"#,
        r#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":9},"IpAddress":{"AWS:SourceIp":"1.2.3.4","AWS:SourceIp":"0.0.0.0/0"}}}]}"#,
        "not json",
    ] {
        assert!(Policy::parse(bad.as_bytes()).is_err(), "{bad}");
        assert!(matches!(
            sign_url(
                "https://h/",
                "K1",
                &KEY1,
                &SignPolicy::Custom { json: bad.into() }
            ),
            Err(SignedError::Policy(_))
        ));
    }
}

#[test]
fn wildcard_resources() {
    let table = [
        ("https://h/a", "https://h/a", true),
        ("https://h/a", "https://h/A", false),
        ("https://h/*", "https://h/", true),
        ("https://h/*", "https://h/a/b/c?x=1", true),
        ("https://h/*.jpg", "https://h/x/y.jpg", true),
        ("https://h/*.jpg", "https://h/x/y.jpg?w=1", false),
        ("https://h/*.jpg*", "https://h/x/y.jpg?w=1", true),
        ("https://h/?.txt", "https://h/a.txt", true),
        ("https://h/?.txt", "https://h/ab.txt", false),
        ("https://h/?.txt", "https://h/.txt", false),
        ("http*://h/a", "https://h/a", true),
        ("http*://h/a", "http://h/a", true),
        ("*", "", true),
        ("*", "anything", true),
        ("", "", true),
        ("", "x", false),
        ("a*b*c", "aXbYc", true),
        ("a*b*c", "abcbc", true),
        ("a*b*c", "acb", false),
        ("**a", "ba", true),
        ("https://h/a?x=*", "https://h/a?x=", true),
        ("https://h/a?x=*", "https://h/a", false),
        ("https://h/é?", "https://h/éé", true),
        ("https://h:8443/*", "https://h/a", false),
    ];
    for (pattern, url, expected) in table {
        assert_eq!(
            resource_matches(pattern, url),
            expected,
            "{pattern} vs {url}"
        );
    }
}

#[test]
fn strip_signing_params_table() {
    let table = [
        ("", None),
        ("a=1", Some("a=1")),
        ("Expires=1&Signature=x&Key-Pair-Id=K", None),
        (
            "a=1&Expires=1&b=2&Signature=x&Key-Pair-Id=K",
            Some("a=1&b=2"),
        ),
        (
            "Policy=p&Signature=s&Key-Pair-Id=k&Hash-Algorithm=SHA256&z=9",
            Some("z=9"),
        ),
        ("b=2&a=1&Expires=3", Some("b=2&a=1")),
        ("a=1&&Expires=3&", Some("a=1")),
        ("expires=1&Expiresx=2", Some("expires=1&Expiresx=2")),
        ("Signature&a", Some("a")),
        ("a=Expires%3D1", Some("a=Expires%3D1")),
    ];
    for (query, expected) in table {
        assert_eq!(strip_signing_params(query).as_deref(), expected, "{query}");
    }
}

#[test]
fn pem_parsing() {
    assert!(parse_public_key_pem(KEY1_PUBLIC).is_ok());
    assert!(parse_public_key_pem(KEY2_PUBLIC).is_ok());
    assert!(matches!(
        parse_public_key_pem(KEY1_PRIVATE),
        Err(SignedError::PublicKey(_))
    ));
    assert!(matches!(
        parse_public_key_pem("nonsense"),
        Err(SignedError::PublicKey(_))
    ));
    let broken = KEY1_PUBLIC.replacen("MII", "MIJ", 1);
    assert!(matches!(
        parse_public_key_pem(&broken),
        Err(SignedError::PublicKey(_))
    ));
    assert!(matches!(
        parse_private_key_pem(KEY2_PUBLIC),
        Err(SignedError::PrivateKey(_))
    ));
    // Both private formats parse to keys matching their public halves.
    assert_eq!(
        KEY1.to_public_key(),
        parse_public_key_pem(KEY1_PUBLIC).unwrap()
    );
    assert_eq!(
        KEY2.to_public_key(),
        parse_public_key_pem(KEY2_PUBLIC).unwrap()
    );
    for error in [
        parse_public_key_pem("x").unwrap_err(),
        parse_private_key_pem("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----")
            .unwrap_err(),
    ] {
        assert!(!error.to_string().contains('\n'), "{error}");
    }
}
