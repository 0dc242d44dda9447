//! The test zones shared by the answer tests: `zone.test` exercises RFC 1034 §4.3.2, 2308 and
//! 4592; `other.test` is a second served zone (cross-zone CNAME, a different negative TTL).

#![allow(dead_code)]

use crate::harness::{TestServer, soa, start};

/// SOA of zone.test: TTL 600 and MINIMUM 60, so negative answers carry TTL 60.
pub const ZONE_SOA_TTL: u32 = 600;
pub const ZONE_NEGATIVE_TTL: u32 = 60;
/// SOA of other.test: TTL 30 and MINIMUM 3600, so negative answers carry TTL 30.
pub const OTHER_NEGATIVE_TTL: u32 = 30;

pub fn zone_soa() -> Vec<u8> {
    soa(
        "ns1.zone.test.",
        "hostmaster.zone.test.",
        [2024010101, 3600, 900, 1_209_600, 60],
    )
}

pub fn other_soa() -> Vec<u8> {
    soa(
        "ns1.zone.test.",
        "hostmaster.other.test.",
        [7, 3600, 900, 1_209_600, 3600],
    )
}

/// The 30-byte TXT strings of `big` (40 of them) and `mid` (20).
pub fn filler(prefix: &str, i: usize) -> String {
    let s = format!("{prefix}-{i:02}-");
    format!("{s}{}", "x".repeat(30 - s.len()))
}

pub fn main_config() -> String {
    let mut records: Vec<String> = [
        r#"{ name = "@", type = "NS", values = ["ns1.zone.test.", "ns2"] }"#,
        r#"{ name = "ns1", type = "A", values = ["192.0.2.1"] }"#,
        r#"{ name = "ns1", type = "AAAA", values = ["2001:db8::1"] }"#,
        r#"{ name = "ns2", type = "A", values = ["192.0.2.2"] }"#,
        r#"{ name = "www", type = "A", ttl = 60, values = ["192.0.2.10", "192.0.2.11"] }"#,
        r#"{ name = "www", type = "AAAA", ttl = 60, values = ["2001:db8::10"] }"#,
        r#"{ name = "a.b", type = "A", values = ["192.0.2.20"] }"#,
        // wildcards
        r#"{ name = "*.w", type = "A", values = ["192.0.2.30"] }"#,
        r#"{ name = "*.w", type = "TXT", values = ['"wild"'] }"#,
        r#"{ name = "host.w", type = "A", values = ["192.0.2.31"] }"#,
        r#"{ name = "sub.w", type = "TXT", values = ['"sub"'] }"#,
        r#"{ name = "deep.ent.w", type = "A", values = ["192.0.2.32"] }"#,
        r#"{ name = "*.sub2.w", type = "A", values = ["192.0.2.33"] }"#,
        r#"{ name = "*.wc", type = "CNAME", values = ["www"] }"#,
        // aliases
        r#"{ name = "c1", type = "CNAME", values = ["c2"] }"#,
        r#"{ name = "c2", type = "CNAME", values = ["www.zone.test."] }"#,
        r#"{ name = "cross", type = "CNAME", values = ["host.other.test."] }"#,
        r#"{ name = "out", type = "CNAME", values = ["target.example.net."] }"#,
        r#"{ name = "dangling", type = "CNAME", values = ["nothere"] }"#,
        r#"{ name = "loop1", type = "CNAME", values = ["loop2"] }"#,
        r#"{ name = "loop2", type = "CNAME", values = ["loop1"] }"#,
        // a delegation with in- and out-of-bailiwick servers
        r#"{ name = "deleg", type = "NS", values = ["ns.deleg", "ns.outside.example."] }"#,
        r#"{ name = "ns.deleg", type = "A", values = ["192.0.2.53"] }"#,
        r#"{ name = "ns.deleg", type = "AAAA", values = ["2001:db8::53"] }"#,
        // additional-section processing
        r#"{ name = "@", type = "MX", values = ["10 mail", "20 mail2.zone.test.", "30 mx.example.net."] }"#,
        r#"{ name = "mail", type = "A", values = ["192.0.2.25"] }"#,
        r#"{ name = "mail2", type = "A", values = ["192.0.2.26"] }"#,
        r#"{ name = "mail2", type = "AAAA", values = ["2001:db8::26"] }"#,
        r#"{ name = "_sip._tcp", type = "SRV", values = ["10 60 5060 sip.zone.test."] }"#,
        r#"{ name = "sip", type = "A", values = ["192.0.2.60"] }"#,
        r#"{ name = "srvout", type = "SRV", values = ["0 0 443 svc.example.net."] }"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    let quoted = |prefix: &str, n: usize| {
        (0..n)
            .map(|i| format!("'\"{}\"'", filler(prefix, i)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    records.push(format!(
        r#"{{ name = "big", type = "TXT", values = [{}] }}"#,
        quoted("big", 40)
    ));
    records.push(format!(
        r#"{{ name = "mid", type = "TXT", values = [{}] }}"#,
        quoted("mid", 20)
    ));
    let mx: Vec<String> = (1..=8).map(|i| format!("\"{i} m{i}.addl\"")).collect();
    records.push(format!(
        r#"{{ name = "addl", type = "MX", values = [{}] }}"#,
        mx.join(", ")
    ));
    for i in 1..=8 {
        let v4: Vec<String> = (1..=4)
            .map(|j| format!("\"198.51.100.{}\"", i * 10 + j))
            .collect();
        let v6: Vec<String> = (1..=4).map(|j| format!("\"2001:db8:{i}::{j}\"")).collect();
        records.push(format!(
            r#"{{ name = "m{i}.addl", type = "A", values = [{}] }}"#,
            v4.join(", ")
        ));
        records.push(format!(
            r#"{{ name = "m{i}.addl", type = "AAAA", values = [{}] }}"#,
            v6.join(", ")
        ));
    }

    format!(
        r#"[dns]
listen = ["127.0.0.1:0"]

[[dns.zones]]
name = "zone.test"
ttl = 300
soa = {{ mname = "ns1.zone.test.", rname = "hostmaster.zone.test.", serial = 2024010101, refresh = "1h", retry = "15m", expire = "14d", minimum = "60s", ttl = 600 }}
records = [
    {}
]

[[dns.zones]]
name = "other.test"
ttl = 300
soa = {{ mname = "ns1.zone.test.", rname = "hostmaster.other.test.", serial = 7, refresh = 3600, retry = 900, expire = 1209600, minimum = "1h", ttl = 30 }}
records = [
    {{ name = "@", type = "NS", values = ["ns1.zone.test."] }},
    {{ name = "host", type = "A", values = ["192.0.2.100"] }},
]
"#,
        records.join(",\n    ")
    )
}

/// A server for the shared zones.
pub async fn main_server() -> TestServer {
    start(&main_config(), &[]).await
}
