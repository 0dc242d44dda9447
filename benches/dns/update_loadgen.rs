//! Load generator for `benches/dns/updates.sh`: signed RFC 2136 updates at a fixed rate, as
//! many ACME clients (or DHCP servers) would send them, against edgewise-dns or Knot.
//!
//! Built as a bench target without the test harness (`cargo build --release --benches`, then
//! `target/release/deps/update_loadgen-*`).
//!
//! `--clients` UDP sockets each send one UPDATE at a time; together they start `--rate`
//! updates a second (open loop: a client whose previous update is still unanswered skips
//! its turn, and the skip is counted as `late`). Each client alternates between adding a TXT
//! record at its own name (`_acme-challenge.cN` under `--zone`, as ACME clients do) and
//! deleting it again, so the zone's size stays flat however long it runs. Every update is signed with the TSIG key given.
//!
//! Prints one line of `name=value` pairs: sent, answered (NOERROR), refused (any other
//! rcode), lost (no answer within 2 s), late, secs, ups (answered updates a second), and
//! p50_ms/p99_ms/max_ms of the answered ones. Exits 2 on usage errors and 1 when not a single
//! update was answered.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use edgewise::dns::tsig::{Algorithm, TsigKey, sign_request};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

/// An update unanswered for this long is lost.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

struct Args {
    addr: SocketAddr,
    zone: Name,
    key: Arc<TsigKey>,
    clients: usize,
    rate: u64,
    duration: Duration,
}

fn usage() -> &'static str {
    "usage: update_loadgen --addr HOST:PORT --zone ZONE --key NAME:BASE64SECRET \
     [--algorithm hmac-sha256] [--clients N] [--rate UPDATES_PER_SEC] [--duration SECS]"
}

fn parse_args() -> Result<Args, String> {
    let mut argv = std::env::args().skip(1).filter(|a| a != "--bench");
    let (mut addr, mut zone, mut key) = (None, None, None);
    let mut algorithm = Algorithm::HmacSha256;
    let (mut clients, mut rate, mut duration) = (32usize, 1000u64, 10u64);
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or(format!("{flag} needs a value"))?;
        let number = || -> Result<u64, String> {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: {value:?} is not a number"))
        };
        match flag.as_str() {
            "--addr" => addr = Some(value.parse().map_err(|e| format!("--addr: {e}"))?),
            "--zone" => zone = Some(Name::from_ascii(&value).map_err(|e| format!("--zone: {e}"))?),
            "--key" => key = Some(value.clone()),
            "--algorithm" => {
                algorithm = value
                    .parse::<Algorithm>()
                    .map_err(|e| format!("--algorithm: {e}"))?
            }
            "--clients" => clients = usize::try_from(number()?).unwrap_or(usize::MAX),
            "--rate" => rate = number()?,
            "--duration" => duration = number()?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let (Some(addr), Some(zone), Some(key)) = (addr, zone, key) else {
        return Err("--addr, --zone and --key are required".into());
    };
    let (name, secret) = key.split_once(':').ok_or("--key is NAME:BASE64SECRET")?;
    let name = Name::from_ascii(name).map_err(|e| format!("--key name: {e}"))?;
    let secret = STANDARD
        .decode(secret)
        .map_err(|e| format!("--key secret: {e}"))?;
    if !(1..=1024).contains(&clients) || !(1..=100_000).contains(&rate) || duration == 0 {
        return Err("out of range: clients 1..=1024, rate 1..=100000, duration > 0".into());
    }
    Ok(Args {
        addr,
        zone: zone
            .append_domain(&Name::root())
            .map_err(|e| e.to_string())?,
        key: Arc::new(TsigKey::new(&name, algorithm, &secret)),
        clients,
        rate,
        duration: Duration::from_secs(duration),
    })
}

/// What one client did.
#[derive(Default)]
struct Tally {
    sent: u64,
    answered: u64,
    refused: u64,
    lost: u64,
    late: u64,
    latencies_us: Vec<u32>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The signed UPDATE adding (or deleting) `value` as the TXT record of `owner`.
fn update(args: &Args, id: u16, owner: &Name, value: &str, add: bool) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Update);
    message.add_query(Query::query(args.zone.clone(), RecordType::SOA));
    let mut record =
        Record::from_rdata(owner.clone(), 60, RData::TXT(TXT::new(vec![value.into()])));
    if !add {
        record.dns_class = DNSClass::NONE;
        record.ttl = 0;
    }
    message.add_authority(record);
    let mut bytes = message.to_vec().expect("an UPDATE encodes");
    sign_request(&args.key, &mut bytes, unix_now()).expect("an UPDATE has room for TSIG");
    bytes
}

/// Client `index`: its turns come every `clients / rate` seconds, offset by its index.
async fn client(args: Arc<Args>, index: usize, start: Instant) -> Tally {
    let mut tally = Tally::default();
    let socket = UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind a UDP socket");
    socket
        .connect(args.addr)
        .await
        .expect("connect the UDP socket");
    let owner = Name::from_ascii(format!("_acme-challenge.c{index}"))
        .and_then(|n| n.append_domain(&args.zone))
        .expect("a valid owner name");
    let period = Duration::from_secs_f64(args.clients as f64 / args.rate as f64);
    let mut turn = start + period.mul_f64(index as f64 / args.clients as f64);
    let end = start + args.duration;
    let mut buf = vec![0u8; 4096];
    let mut added = false;
    while turn < end {
        tokio::time::sleep_until(turn.into()).await;
        let id = rand::random::<u16>();
        let request = update(&args, id, &owner, &format!("token-{}", tally.sent), !added);
        let sent_at = Instant::now();
        tally.sent += 1;
        if socket.send(&request).await.is_err() {
            tally.lost += 1;
        } else {
            match wait_answer(&socket, &mut buf, id).await {
                Some(0) => {
                    tally.answered += 1;
                    added = !added;
                    let us = sent_at.elapsed().as_micros();
                    tally
                        .latencies_us
                        .push(u32::try_from(us).unwrap_or(u32::MAX));
                }
                Some(_) => tally.refused += 1,
                None => tally.lost += 1,
            }
        }
        turn += period;
        while turn < Instant::now() && turn < end {
            tally.late += 1;
            turn += period;
        }
    }
    tally
}

/// The rcode of the answer to `id`, or None when none came in time.
async fn wait_answer(socket: &UdpSocket, buf: &mut [u8], id: u16) -> Option<u8> {
    let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
    loop {
        let len = tokio::time::timeout_at(deadline, socket.recv(buf))
            .await
            .ok()?
            .ok()?;
        if len >= 12 && u16::from_be_bytes([buf[0], buf[1]]) == id && buf[2] & 0x80 != 0 {
            return Some(buf[3] & 0x0f);
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[at]) / 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => Arc::new(args),
        Err(e) => {
            eprintln!("{e}\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    let tasks: Vec<_> = (0..args.clients)
        .map(|i| tokio::spawn(client(args.clone(), i, start)))
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.expect("a client task does not panic");
        total.sent += tally.sent;
        total.answered += tally.answered;
        total.refused += tally.refused;
        total.lost += tally.lost;
        total.late += tally.late;
        total.latencies_us.extend(tally.latencies_us);
    }
    let secs = start.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    let lat = &total.latencies_us;
    println!(
        "sent={} answered={} refused={} lost={} late={} secs={secs:.1} ups={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        total.sent,
        total.answered,
        total.refused,
        total.lost,
        total.late,
        total.answered as f64 / args.duration.as_secs_f64(),
        percentile(lat, 0.50),
        percentile(lat, 0.99),
        percentile(lat, 1.0),
    );
    if total.answered == 0 {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
