//! Zone transfers out (RFC 5936 AXFR, RFC 1995 IXFR) over TCP, read with `dig` as an
//! operator would and with hand-built queries: who may transfer, what a transfer carries
//! (routed names as their fixed transfer set), and a 50,000-record zone in many messages.

use hickory_proto::rr::RecordType::{A, AXFR, IXFR, SOA};

use crate::harness::rcode::{NOERROR, NOTAUTH, REFUSED};
use crate::harness::{TestServer, assert_rcode, q, start};

const ZONE: &str = r#"
[[health_checks]]
id = "down"
type = "tcp"
target = "127.0.0.1:9"

[dns]
[[dns.zones]]
name = "xfr.test"
allow_transfer = ["127.0.0.1/32"]
soa = { mname = "ns1.xfr.test.", rname = "hostmaster.xfr.test.", serial = 7 }
records = [
  { name = "@", type = "NS", values = ["ns1.xfr.test."] },
  { name = "ns1", type = "A", values = ["192.0.2.1"] },
  { name = "www", type = "A", values = ["192.0.2.10", "192.0.2.11"] },
  { name = "@", type = "MX", values = ["10 mail.xfr.test."] },
  { name = "mail", type = "A", values = ["192.0.2.25"] },
  { name = "lb", type = "A", set_id = "light", weight = 10, values = ["192.0.2.40"] },
  { name = "lb", type = "A", set_id = "heavy", weight = 90, values = ["192.0.2.41"] },
  { name = "ha", type = "A", set_id = "backup", failover = "secondary", values = ["192.0.2.51"] },
  { name = "ha", type = "A", set_id = "main", failover = "primary", health_check = "down", values = ["192.0.2.50"] },
]

[[dns.zones]]
name = "closed.test"
soa = { mname = "ns1.closed.test.", rname = "hostmaster.closed.test.", serial = 1 }
records = [{ name = "@", type = "NS", values = ["ns1.closed.test."] }]
"#;

/// `dig AXFR` (or `IXFR=serial`) over TCP: the records as dig prints them, one per line
/// (owner, type and data; TTL and class dropped), and dig's summary line.
async fn dig_transfer(server: &TestServer, zone: &str, kind: &str) -> (Vec<String>, String) {
    let output = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.addr().ip()))
        .args(["-p", &server.addr().port().to_string()])
        .args(["+tcp", "+time=5", "+tries=1", zone, kind])
        .output()
        .await
        .expect("dig is installed (apt-get install bind9-dnsutils)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let records = text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {}", fields[0], fields[3], fields[4..].join(" "))
        })
        .collect();
    let summary = text
        .lines()
        .find(|l| l.starts_with(";; XFR size") || l.contains("Transfer failed"))
        .unwrap_or_else(|| panic!("dig {kind} {zone} printed no summary:\n{text}"))
        .to_string();
    (records, summary)
}

const SOA_LINE: &str = "xfr.test. SOA ns1.xfr.test. hostmaster.xfr.test. 7 3600 900 1209600 300";

#[tokio::test]
async fn axfr_carries_every_record_soa_first_and_last_and_one_set_per_routed_name() {
    let server = start(ZONE, &[]).await;
    let (records, summary) = dig_transfer(&server, "xfr.test", "AXFR").await;
    assert_eq!(
        records.first().map(String::as_str),
        Some(SOA_LINE),
        "{records:#?}"
    );
    assert_eq!(
        records.last().map(String::as_str),
        Some(SOA_LINE),
        "{records:#?}"
    );
    let mut middle = records[1..records.len() - 1].to_vec();
    middle.sort();
    let expected = [
        "ha.xfr.test. A 192.0.2.50",
        "lb.xfr.test. A 192.0.2.41",
        "mail.xfr.test. A 192.0.2.25",
        "ns1.xfr.test. A 192.0.2.1",
        "www.xfr.test. A 192.0.2.10",
        "www.xfr.test. A 192.0.2.11",
        "xfr.test. MX 10 mail.xfr.test.",
        "xfr.test. NS ns1.xfr.test.",
    ];
    assert_eq!(
        middle, expected,
        "the failover primary (whatever its health) and the heaviest weight"
    );
    assert!(summary.contains("10 records"), "{summary}");
}

#[tokio::test]
async fn transfers_are_refused_outside_allow_transfer_and_over_udp() {
    let server = start(ZONE, &[]).await;
    assert_rcode(&server.raw_tcp(&q("closed.test.", AXFR)).await, REFUSED);
    assert_rcode(&server.raw_tcp(&q("closed.test.", IXFR)).await, REFUSED);
    let (_, summary) = dig_transfer(&server, "closed.test", "AXFR").await;
    assert!(summary.contains("Transfer failed"), "{summary}");
    // Over UDP even an allowed client is refused: AXFR needs TCP (RFC 5936 §4.2).
    let reply = server.raw_udp(&q("xfr.test.", AXFR)).await;
    assert_rcode(&reply, REFUSED);
    assert!(reply.answer.is_empty(), "{reply:?}");
}

#[tokio::test]
async fn a_transfer_of_a_name_that_is_no_apex_is_notauth() {
    let server = start(ZONE, &[]).await;
    for name in ["www.xfr.test.", "elsewhere.example."] {
        let reply = server.raw_tcp(&q(name, AXFR)).await;
        assert_rcode(&reply, NOTAUTH);
        assert!(reply.answer.is_empty(), "{reply:?}");
    }
}

#[tokio::test]
async fn ixfr_gets_the_soa_alone_when_current_and_the_whole_zone_otherwise() {
    let server = start(ZONE, &[]).await;
    let (current, _) = dig_transfer(&server, "xfr.test", "IXFR=7").await;
    assert_eq!(current, [SOA_LINE]);
    // A serial from the future (RFC 1982) is no older than ours either.
    let (ahead, _) = dig_transfer(&server, "xfr.test", "IXFR=8").await;
    assert_eq!(ahead, [SOA_LINE]);
    let (behind, summary) = dig_transfer(&server, "xfr.test", "IXFR=6").await;
    assert_eq!(behind.len(), 10, "AXFR-style answer: {behind:#?}");
    assert_eq!(behind[0], SOA_LINE);
    assert!(summary.contains("10 records"), "{summary}");
    // An IXFR query without the SOA of the client's version reads as a request for all.
    let reply = server.raw_tcp(&q("xfr.test.", IXFR)).await;
    assert_rcode(&reply, NOERROR);
    assert_eq!(reply.answer.first().map(|r| r.rtype), Some(u16::from(SOA)));
}

#[tokio::test]
async fn a_zone_of_50000_records_goes_out_in_compressed_messages_under_64_kib() {
    let mut file = String::from(
        "$ORIGIN big.test.\n$TTL 300\n\
         @ SOA ns1 hostmaster 1 3600 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n",
    );
    for i in 0..49_997 {
        file.push_str(&format!(
            "host{i} A 10.{}.{}.{}\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
    }
    let config = r#"
[dns]
[[dns.zones]]
name = "big.test"
file = "big.test.zone"
allow_transfer = ["127.0.0.0/8"]
"#;
    let server = start(config, &[("big.test.zone", &file)]).await;
    let (records, summary) = dig_transfer(&server, "big.test", "AXFR").await;
    assert_eq!(records.len(), 50_001, "{summary}");
    // ";; XFR size: 50001 records (messages N, bytes B)"
    let numbers: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let [count, messages, bytes] = numbers[..] else {
        panic!("{summary}")
    };
    assert_eq!(count, 50_001);
    assert!(messages > 20, "{summary}");
    // Uncompressed, each record would take 39 to 44 bytes; compressed, the owner is a label
    // and a pointer (a dozen bytes) plus 14 of type, class, TTL and address.
    assert!(bytes < 50_001 * 30, "names compressed: {summary}");
    let www = server.raw_tcp(&q("host49996.big.test.", A)).await;
    assert_rcode(&www, NOERROR);
}

const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";

/// `dig -y` with a key and `args`: dig's whole output.
async fn dig_signed(server: &TestServer, key: &str, args: &[&str]) -> String {
    let output = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.addr().ip()))
        .args(["-p", &server.addr().port().to_string()])
        .args(["-y", key, "+time=5", "+tries=1"])
        .args(args)
        .output()
        .await
        .expect("dig is installed");
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[tokio::test]
async fn a_key_rule_lets_only_transfers_signed_with_that_key_and_signs_every_message() {
    let mut file = String::from(
        "$ORIGIN signed.test.\n$TTL 300\n@ SOA ns1 hostmaster 3 3600 900 1209600 300\n@ NS ns1\n",
    );
    for i in 0..3_000 {
        file.push_str(&format!("h{i} A 10.0.{}.{}\n", i >> 8, i & 255));
    }
    let config = format!(
        r#"
[dns]
[[dns.tsig_keys]]
name = "xfr"
secret = "{SECRET}"
[[dns.tsig_keys]]
name = "other"
algorithm = "hmac-sha512"
secret = "{SECRET}"

[[dns.zones]]
name = "signed.test"
file = "signed.test.zone"
allow_transfer = ["key:xfr"]
"#
    );
    let server = start(&config, &[("signed.test.zone", &file)]).await;
    let good = dig_signed(
        &server,
        &format!("hmac-sha256:xfr:{SECRET}"),
        &["+tcp", "signed.test", "AXFR"],
    )
    .await;
    let summary = good
        .lines()
        .find(|l| l.starts_with(";; XFR size"))
        .unwrap_or_default();
    assert!(summary.contains("3003 records"), "{good}");
    assert!(
        !summary.contains("messages 1,"),
        "several signed messages: {summary}"
    );
    assert!(
        !good.contains("failure") && !good.contains("BADSIG"),
        "{good}"
    );
    // dig prints each message's TSIG record: one per message.
    let messages: usize = summary
        .split("messages ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    let tsigs = good
        .lines()
        .filter(|l| l.contains("\tTSIG\t") || l.contains(" TSIG "))
        .count();
    assert!(messages > 1, "{summary}");
    assert_eq!(tsigs, messages, "{good}");

    // Unsigned, or signed with a key the rule does not name: refused.
    let (_, unsigned) = dig_transfer(&server, "signed.test", "AXFR").await;
    assert!(unsigned.contains("Transfer failed"), "{unsigned}");
    let other = dig_signed(
        &server,
        &format!("hmac-sha512:other:{SECRET}"),
        &["+tcp", "signed.test", "AXFR"],
    )
    .await;
    assert!(other.contains("Transfer failed"), "{other}");
    // A key we do not know: NOTAUTH with BADKEY.
    let unknown = dig_signed(
        &server,
        &format!("hmac-sha256:nobody:{SECRET}"),
        &["+tcp", "signed.test", "AXFR"],
    )
    .await;
    assert!(!unknown.contains(";; XFR size"), "{unknown}");
    // The wrong secret: BADSIG, no zone.
    let wrong = dig_signed(
        &server,
        "hmac-sha256:xfr:d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmc=",
        &["+tcp", "signed.test", "AXFR"],
    )
    .await;
    assert!(!wrong.contains(";; XFR size"), "{wrong}");
}

/// The header line's flags and status, the TSIG line and the size, from dig's output.
struct SignedReply {
    status: String,
    flags: String,
    tsig: Option<String>,
    size: usize,
    verified: bool,
}

fn read_signed(output: &str) -> SignedReply {
    let status = output
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no header in:\n{output}"))
        .to_string();
    let flags = output
        .split(";; flags: ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap_or_default()
        .to_string();
    let tsig = output
        .lines()
        .find(|l| l.contains("\tTSIG\t"))
        .map(str::to_string);
    let size = output
        .split("MSG SIZE  rcvd: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    let verified =
        !output.contains("Couldn't verify") && !output.contains("could not be validated");
    SignedReply {
        status,
        flags,
        tsig,
        size,
        verified,
    }
}

#[tokio::test]
async fn signed_queries_get_signed_answers_and_a_failed_check_gets_notauth() {
    let txt: Vec<String> = (0..12)
        .map(|i| format!("'\"{}\"'", "t".repeat(60 + i)))
        .collect();
    let config = format!(
        r#"
[dns]
[[dns.tsig_keys]]
name = "xfr"
secret = "{SECRET}"

[[dns.zones]]
name = "signed.test"
soa = {{ mname = "ns1.signed.test.", rname = "hostmaster.signed.test.", serial = 9 }}
records = [
  {{ name = "@", type = "NS", values = ["ns1.signed.test."] }},
  {{ name = "ns1", type = "A", values = ["192.0.2.1"] }},
  {{ name = "big", type = "TXT", values = [{}] }},
]
"#,
        txt.join(", ")
    );
    let server = start(&config, &[]).await;
    let key = format!("hmac-sha256:xfr:{SECRET}");

    // A secondary's SOA refresh, over UDP and TCP, with and without EDNS: signed back.
    for transport in ["+notcp", "+tcp"] {
        for edns in ["+edns", "+noedns"] {
            let reply = read_signed(
                &dig_signed(&server, &key, &[transport, edns, "signed.test", "SOA"]).await,
            );
            assert_eq!(reply.status, "NOERROR", "{transport} {edns}");
            assert!(
                reply.verified,
                "{transport} {edns}: dig verified the answer's MAC"
            );
            let tsig = reply.tsig.unwrap_or_default();
            assert!(
                tsig.starts_with("xfr.") && tsig.ends_with("NOERROR 0 "),
                "{tsig:?}"
            );
        }
    }

    // An answer too big for the client's 512 bytes is truncated with room for the TSIG
    // record: TC, signed, within the limit (dig keeps it with +ignore).
    let reply = read_signed(
        &dig_signed(
            &server,
            &key,
            &["+notcp", "+noedns", "+ignore", "big.signed.test", "TXT"],
        )
        .await,
    );
    assert!(reply.flags.split(' ').any(|f| f == "tc"), "{}", reply.flags);
    assert!(reply.verified && reply.tsig.is_some());
    assert!(reply.size <= 512, "{} bytes", reply.size);
    // Over TCP the whole answer comes, signed.
    let reply = read_signed(&dig_signed(&server, &key, &["+tcp", "big.signed.test", "TXT"]).await);
    assert!(reply.verified && reply.size > 512, "{} bytes", reply.size);

    // An unknown key: NOTAUTH with BADKEY; a wrong secret: NOTAUTH with BADSIG. Neither
    // error is signed (§5.3.2), and neither carries the zone's data.
    let unknown = dig_signed(
        &server,
        &format!("hmac-sha256:nobody:{SECRET}"),
        &["signed.test", "SOA"],
    )
    .await;
    let reply = read_signed(&unknown);
    assert_eq!(reply.status, "NOTAUTH", "{unknown}");
    assert!(
        reply.tsig.unwrap_or_default().contains("BADKEY"),
        "{unknown}"
    );
    assert!(!unknown.contains("hostmaster"), "{unknown}");
    let wrong = dig_signed(
        &server,
        "hmac-sha256:xfr:d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmc=",
        &["signed.test", "SOA"],
    )
    .await;
    let reply = read_signed(&wrong);
    assert_eq!(reply.status, "NOTAUTH", "{wrong}");
    assert!(reply.tsig.unwrap_or_default().contains("BADSIG"), "{wrong}");

    // Unsigned queries are answered as ever, with no TSIG record.
    let plain = server.raw_udp(&q("signed.test.", SOA)).await;
    assert_rcode(&plain, NOERROR);
    assert!(plain.additional.is_empty(), "{plain:?}");
}

#[test]
fn a_key_rule_or_notify_target_must_name_a_configured_key() {
    let text = r#"
[dns]
[[dns.zones]]
name = "z.test"
allow_transfer = ["127.0.0.1", "key:missing"]
notify = ["127.0.0.1:5301 key:absent"]
records = [{ name = "@", type = "NS", values = ["ns1.z.test."] }]
"#;
    let errors = edgewise::config::Config::from_str(text, std::path::Path::new("t.toml"))
        .expect_err("an unknown key is an error");
    let text = format!("{errors:?}");
    assert!(
        text.contains("allow_transfer[1]") && text.contains("missing"),
        "{text}"
    );
    assert!(
        text.contains("notify[0]") && text.contains("absent"),
        "{text}"
    );
}

/// A NOTIFY received by the test's stand-in secondary: its ID, the SOA serial it carries,
/// and who sent it.
async fn next_notify(
    secondary: &tokio::net::UdpSocket,
    wait: std::time::Duration,
) -> Option<(u16, u32, std::net::SocketAddr)> {
    let mut buf = vec![0u8; 4096];
    let (len, from) = tokio::time::timeout(wait, secondary.recv_from(&mut buf))
        .await
        .ok()?
        .expect("receive");
    let message = hickory_proto::op::Message::from_vec(&buf[..len]).expect("a DNS message");
    assert_eq!(message.metadata.op_code, hickory_proto::op::OpCode::Notify);
    assert!(message.metadata.authoritative, "{message:?}");
    let question = &message.queries[0];
    assert_eq!(question.name().to_string(), "xfr.test.");
    assert_eq!(question.query_type(), SOA);
    let serial = match &message.answers[0].data {
        hickory_proto::rr::RData::SOA(soa) => soa.serial,
        other => panic!("SOA in the answer, not {other:?}"),
    };
    Some((message.metadata.id, serial, from))
}

/// The reply a secondary sends to a NOTIFY (QR set, same ID and opcode).
async fn acknowledge(secondary: &tokio::net::UdpSocket, id: u16, to: std::net::SocketAddr) {
    let mut reply = hickory_proto::op::Message::new(
        id,
        hickory_proto::op::MessageType::Response,
        hickory_proto::op::OpCode::Notify,
    );
    reply.add_query(hickory_proto::op::Query::query(
        hickory_proto::rr::Name::from_ascii("xfr.test.").unwrap(),
        SOA,
    ));
    secondary
        .send_to(&reply.to_vec().unwrap(), to)
        .await
        .unwrap();
}

#[tokio::test]
async fn notify_goes_out_at_start_again_until_answered_and_after_each_serial_change() {
    use std::time::Duration;
    let secondary = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = secondary.local_addr().unwrap().port();
    let config = |serial: u32, www: &str| {
        format!(
            r#"
[dns]
[[dns.zones]]
name = "xfr.test"
notify = ["127.0.0.1:{port}"]
soa = {{ mname = "ns1.xfr.test.", rname = "hostmaster.xfr.test.", serial = {serial} }}
records = [
  {{ name = "@", type = "NS", values = ["ns1.xfr.test."] }},
  {{ name = "www", type = "A", values = ["{www}"] }},
]
"#
        )
    };
    let server = crate::dns_reload::Reloadable::start(&config(7, "192.0.2.1"), &[]).await;

    // At start; left unanswered, the same NOTIFY comes again about a second later.
    let (id, serial, from) = next_notify(&secondary, Duration::from_secs(5))
        .await
        .expect("a NOTIFY at start");
    assert_eq!(serial, 7);
    let started = std::time::Instant::now();
    let (again, _, from_again) = next_notify(&secondary, Duration::from_secs(5))
        .await
        .expect("the NOTIFY sent again");
    assert_eq!(
        (again, from_again),
        (id, from),
        "the same message from the same socket"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    acknowledge(&secondary, id, from).await;
    assert!(
        next_notify(&secondary, Duration::from_secs(3))
            .await
            .is_none(),
        "answered: no more tries"
    );

    // A reload that changes the serial notifies; one that changes nothing does not.
    server.write("edgewise.toml", &config(8, "192.0.2.2"));
    server.reloader.reload().await.expect("reload");
    let (id, serial, from) = next_notify(&secondary, Duration::from_secs(5))
        .await
        .expect("a NOTIFY after the reload");
    assert_eq!(serial, 8);
    acknowledge(&secondary, id, from).await;
    server.reloader.reload().await.expect("reload");
    assert!(
        next_notify(&secondary, Duration::from_secs(2))
            .await
            .is_none(),
        "same serial: no NOTIFY"
    );
}
