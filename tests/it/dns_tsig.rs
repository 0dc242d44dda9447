//! TSIG against BIND's own client: `dig -y`/`-k` signs a query to a small loopback server
//! that verifies it with `edgewise::dns::tsig` and signs its answer (one message, or an AXFR
//! of several over TCP), and dig must accept every signature. A tampered answer must make
//! dig fail, so the check can fail. The keys come from `edgewise-dns tsig-keygen`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgewise::config::Config;
use edgewise::dns::tsig::{Algorithm, Keyring, ResponseSigner, Verification, verify};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record};

/// What the test server saw: the verification of dig's request, as text.
type Seen = JoinHandle<String>;

/// How the test server answers a verified request.
#[derive(Clone, Copy, PartialEq)]
enum Reply {
    /// One signed answer.
    Signed,
    /// One signed answer with a byte of its MAC changed.
    Tampered,
    /// An AXFR in three signed messages.
    Axfr,
    /// The same AXFR with a byte of the second message's MAC changed.
    AxfrTampered,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// `edgewise-dns tsig-keygen NAME --algorithm ALG`, its four forms split at the headings.
fn keygen(name: &str, algorithm: Algorithm) -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_edgewise-dns"))
        .args(["tsig-keygen", name, "--algorithm", algorithm.as_str()])
        .output()
        .expect("run edgewise-dns tsig-keygen");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).expect("text");
    let forms: Vec<String> = text
        .split("\n\n")
        .map(|form| form.trim().to_string())
        .collect();
    assert_eq!(forms.len(), 4, "{text}");
    let headings = ["# edgewise-dns", "# BIND", "# Knot DNS", "# NSD"];
    for (form, heading) in forms.iter().zip(headings) {
        assert!(form.starts_with(heading), "{form}");
    }
    forms
}

/// The keyring of a config holding the TOML form, and the base64 secret in it.
fn keyring_from(toml_form: &str) -> (Keyring, String) {
    let text = format!("[dns]\n{toml_form}\n");
    let config = Config::from_str(&text, Path::new("tsig.toml")).expect("the TOML form loads");
    let keys = config.dns.expect("[dns]").tsig_keys;
    let table: toml::Table = toml::from_str(toml_form).expect("TOML");
    let secret = table["dns"]["tsig_keys"][0]["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    (Keyring::new(&keys), secret)
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("name")
}

fn soa() -> Record {
    Record::from_rdata(
        name("example.test."),
        300,
        RData::SOA(SOA::new(
            name("ns1.example.test."),
            name("hostmaster.example.test."),
            7,
            3600,
            600,
            86400,
            300,
        )),
    )
}

fn a(n: u8) -> Record {
    Record::from_rdata(
        name(&format!("h{n}.example.test.")),
        60,
        RData::A(A::new(192, 0, 2, n)),
    )
}

/// The messages answering `request` (parsed without its TSIG record), unsigned.
fn answers(request: &[u8], tsig_start: usize, reply: Reply) -> Vec<Vec<u8>> {
    let mut bare = request[..tsig_start].to_vec();
    let arcount = u16::from_be_bytes([bare[10], bare[11]]) - 1;
    bare[10..12].copy_from_slice(&arcount.to_be_bytes());
    let query = Message::from_vec(&bare).expect("dig's query parses");
    let question = query.queries[0].clone();
    let groups: Vec<Vec<Record>> = match reply {
        Reply::Axfr | Reply::AxfrTampered => {
            vec![vec![soa(), a(1)], vec![a(2), a(3)], vec![a(4), soa()]]
        }
        _ => vec![vec![a(1)]],
    };
    groups
        .into_iter()
        .map(|records| {
            let mut msg = Message::new(query.id, MessageType::Response, OpCode::Query);
            msg.metadata.authoritative = true;
            msg.add_query(question.clone());
            msg.add_answers(records);
            msg.to_vec().expect("encode")
        })
        .collect()
}

/// The signed reply to one request; the verification's outcome as text.
fn respond(ring: &Keyring, request: &[u8], reply: Reply) -> (Vec<Vec<u8>>, String) {
    match verify(ring, request, now()) {
        Verification::Signed(signed) => {
            let mut signer: ResponseSigner = signed.signer();
            let mut messages = answers(request, signed.tsig_start, reply);
            for msg in &mut messages {
                signer.sign(msg, now()).expect("sign");
            }
            let tampered = match reply {
                Reply::Tampered => Some(0),
                Reply::AxfrTampered => Some(1),
                _ => None,
            };
            if let Some(msg) = tampered.and_then(|i| messages.get_mut(i)) {
                // Inside the MAC, which the record's last 6 bytes follow.
                let at = msg.len() - 10;
                msg[at] ^= 0x01;
            }
            (messages, format!("signed with {}", signed.key.name()))
        }
        Verification::Failed(failed) => {
            let mut msg = answers(request, failed.tsig_start, Reply::Signed).remove(0);
            let mut parsed = Message::from_vec(&msg).expect("parse");
            parsed.answers.clear();
            parsed.metadata.response_code = ResponseCode::NotAuth;
            msg = parsed.to_vec().expect("encode");
            failed.sign_error(&mut msg, now()).expect("sign error");
            (vec![msg], format!("failed: {}", failed.error.as_str()))
        }
        other => (Vec::new(), format!("{other:?}")),
    }
}

/// Answers one TCP connection.
fn serve_tcp(listener: TcpListener, ring: Keyring, reply: Reply) -> Seen {
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let request = read_frame(&mut stream);
        let (messages, seen) = respond(&ring, &request, reply);
        for msg in messages {
            let len = u16::try_from(msg.len()).expect("fits");
            stream.write_all(&len.to_be_bytes()).expect("write");
            stream.write_all(&msg).expect("write");
        }
        // dig closes once it has what it asked for.
        let _ = stream.read(&mut [0u8; 1]);
        seen
    })
}

/// Answers one UDP query.
fn serve_udp(socket: UdpSocket, ring: Keyring) -> Seen {
    std::thread::spawn(move || {
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        let (len, peer) = socket.recv_from(&mut buf).expect("dig's query");
        let (messages, seen) = respond(&ring, &buf[..len], Reply::Signed);
        for msg in messages {
            socket.send_to(&msg, peer).expect("send");
        }
        seen
    })
}

fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).expect("length");
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut msg).expect("message");
    msg
}

/// Runs dig with `args` against `port`; its output, stdout then stderr.
fn dig(port: u16, args: &[&str]) -> String {
    let output = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+time=5", "+tries=1"])
        .args(args)
        .output()
        .expect("dig is installed (apt-get install bind9-dnsutils)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// dig's ways of saying a signature did not verify (BIND 9.18: ";; Couldn't verify
/// signature: tsig verify failure" and ";; WARNING -- Some TSIG could not be validated").
fn dig_rejected_tsig(output: &str) -> bool {
    [
        "Couldn't verify signature",
        "TSIG could not be validated",
        "tsig verify failure",
    ]
    .iter()
    .any(|says| output.contains(says))
}

fn tcp_server(ring: Keyring, reply: Reply) -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (port, serve_tcp(listener, ring, reply))
}

#[test]
fn dig_signed_queries_verify_and_dig_accepts_our_signed_answers() {
    for algorithm in Algorithm::ALL {
        let forms = keygen("Xfr-Key", algorithm);
        let (ring, secret) = keyring_from(&forms[0]);
        let y = format!("{algorithm}:xfr-key:{secret}");

        let (ring_tcp, _) = keyring_from(&forms[0]);
        let (port, seen) = tcp_server(ring_tcp, Reply::Signed);
        let out = dig(port, &["+tcp", "-y", &y, "h1.example.test", "A"]);
        assert_eq!(seen.join().expect("server"), "signed with xfr-key.");
        assert!(!dig_rejected_tsig(&out), "{algorithm} over TCP:\n{out}");
        assert!(out.contains("192.0.2.1"), "{algorithm} over TCP:\n{out}");
        assert!(out.contains("TSIG"), "the answer shows its TSIG:\n{out}");

        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = socket.local_addr().expect("addr").port();
        let seen = serve_udp(socket, ring);
        let out = dig(port, &["-y", &y, "h1.example.test", "A"]);
        assert_eq!(seen.join().expect("server"), "signed with xfr-key.");
        assert!(!dig_rejected_tsig(&out), "{algorithm} over UDP:\n{out}");
        assert!(out.contains("192.0.2.1"), "{algorithm} over UDP:\n{out}");
    }
}

#[test]
fn dig_reports_a_tampered_answer() {
    let forms = keygen("xfr-key", Algorithm::HmacSha256);
    let (ring, secret) = keyring_from(&forms[0]);
    let (port, seen) = tcp_server(ring, Reply::Tampered);
    let out = dig(
        port,
        &[
            "+tcp",
            "-y",
            &format!("hmac-sha256:xfr-key:{secret}"),
            "h1.example.test",
            "A",
        ],
    );
    assert_eq!(seen.join().expect("server"), "signed with xfr-key.");
    assert!(dig_rejected_tsig(&out), "dig accepted a broken MAC:\n{out}");
}

#[test]
fn dig_axfr_accepts_every_message_of_a_signed_multi_message_answer() {
    for algorithm in Algorithm::ALL {
        let forms = keygen("xfr-key", algorithm);
        let (ring, secret) = keyring_from(&forms[0]);
        let (port, seen) = tcp_server(ring, Reply::Axfr);
        let out = dig(
            port,
            &[
                "-y",
                &format!("{algorithm}:xfr-key:{secret}"),
                "example.test",
                "AXFR",
            ],
        );
        assert_eq!(seen.join().expect("server"), "signed with xfr-key.");
        assert!(!dig_rejected_tsig(&out), "{algorithm}:\n{out}");
        for n in 1..=4 {
            assert!(out.contains(&format!("192.0.2.{n}")), "{algorithm}:\n{out}");
        }
    }
}

#[test]
fn dig_axfr_reports_a_tampered_later_message() {
    let forms = keygen("xfr-key", Algorithm::HmacSha256);
    let (ring, secret) = keyring_from(&forms[0]);
    let (port, seen) = tcp_server(ring, Reply::AxfrTampered);
    let y = format!("hmac-sha256:xfr-key:{secret}");
    let out = dig(port, &["-y", &y, "example.test", "AXFR"]);
    assert_eq!(seen.join().expect("server"), "signed with xfr-key.");
    assert!(
        dig_rejected_tsig(&out),
        "dig accepted a broken chain:\n{out}"
    );
}

#[test]
fn an_unknown_key_is_answered_notauth_badkey_as_dig_expects() {
    let forms = keygen("xfr-key", Algorithm::HmacSha256);
    let (ring, _) = keyring_from(&forms[0]);
    let other = keygen("other-key", Algorithm::HmacSha256);
    let (_, secret) = keyring_from(&other[0]);
    let (port, seen) = tcp_server(ring, Reply::Signed);
    let out = dig(
        port,
        &[
            "+tcp",
            "-y",
            &format!("hmac-sha256:other-key:{secret}"),
            "h1.example.test",
            "A",
        ],
    );
    assert_eq!(seen.join().expect("server"), "failed: BADKEY");
    assert!(out.contains("status: NOTAUTH"), "{out}");
    assert!(
        out.contains("ANY\tTSIG\thmac-sha256. ") && out.contains(" BADKEY 0"),
        "an unsigned TSIG with error BADKEY:\n{out}"
    );
    assert!(out.contains("tsig indicates error"), "{out}");
}

#[test]
fn the_bind_form_of_tsig_keygen_is_a_key_file_dig_signs_with() {
    let dir = tempfile::tempdir().expect("temp dir");
    for algorithm in Algorithm::ALL {
        let forms = keygen("xfr-key", algorithm);
        let (ring, secret) = keyring_from(&forms[0]);
        for form in &forms[1..] {
            assert!(
                form.contains(&secret),
                "every form has the same secret:\n{form}"
            );
            assert!(form.contains(algorithm.as_str()), "{form}");
        }
        let key_file = dir.path().join(format!("{algorithm}.key"));
        std::fs::write(&key_file, &forms[1]).expect("write key file");
        let (port, seen) = tcp_server(ring, Reply::Signed);
        let out = dig(
            port,
            &[
                "+tcp",
                "-k",
                key_file.to_str().expect("utf-8"),
                "h1.example.test",
                "A",
            ],
        );
        assert_eq!(seen.join().expect("server"), "signed with xfr-key.");
        assert!(!dig_rejected_tsig(&out), "{algorithm}:\n{out}");
        assert!(out.contains("192.0.2.1"), "{algorithm}:\n{out}");
    }
}
