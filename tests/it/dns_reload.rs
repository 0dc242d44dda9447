//! Hot reload of edgewise-dns: answers switch whole from one config to the next with no query
//! lost, a broken config or zone file changes nothing, health checks keep their state across a
//! reload, `POST /reload` answers what changed, and reloads are safe against each other and
//! against shutdown.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use edgewise::config::Config;
use edgewise::dns::DnsServer;
use edgewise::dns::reload::{ReloadError, Reloader};
use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use serde_json::Value;

use crate::dns_routing::{Routing, eventually, ipv4s, plain, route_config, routed};
use crate::harness::{
    RECV_TIMEOUT, hickory_tcp, hickory_udp, load_ok, q, serve, tcp_connect, tcp_recv, tcp_send,
    udp_exchange_within,
};
use crate::health_checks::{
    TcpEndpoint, check, check_row, health_checks, status_request, wait_healthy,
};

/// Queries each client task sends between two reloads, at least.
const QUERIES_PER_RELOAD: u64 = 10;

// ------------------------------------------------------------------ servers and configs

/// A served config in a temp folder, reloadable from its file.
pub struct Reloadable {
    routing: Routing,
    pub reloader: Reloader,
    path: PathBuf,
}

impl Reloadable {
    /// Serves `config`, written with `files` (relative path, text) into a new temp folder.
    pub async fn start(config: &str, files: &[(&str, &str)]) -> Reloadable {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("edgewise.toml");
        std::fs::write(&path, config).expect("write the config");
        for (rel, text) in files {
            std::fs::write(dir.path().join(rel), text).expect("write a zone file");
        }
        let dns = load_ok(&path).dns.expect("a [dns] section");
        let mut server = DnsServer::bind(&dns).expect("bind on ephemeral ports");
        let reloader = server.reload_from(path.clone());
        let status_addrs = server.status_addrs().to_vec();
        let server = serve(server, dir);
        Reloadable {
            routing: Routing {
                server,
                status_addrs,
            },
            reloader,
            path,
        }
    }

    /// `rel`'s path in the config's folder.
    pub fn file(&self, rel: &str) -> PathBuf {
        self.path.parent().expect("config folder").join(rel)
    }

    /// Rewrites `rel` in place (truncate and write, as `>` in a shell does).
    pub fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.file(rel), text).expect("rewrite a file");
    }

    /// The addresses `name A` answers with, sorted.
    pub async fn addresses(&self, name: &str) -> Vec<String> {
        let mut got = ipv4s(&self.routing.ask(name, RecordType::A, None).await);
        got.sort();
        got
    }
}

/// The two configs the query loop alternates: `www` answers 192.0.2.1 or 192.0.2.2.
fn www_config(last: u8) -> String {
    route_config(
        "",
        "workers = 1",
        &[plain(
            "www",
            "A",
            60,
            &["192.0.2.10", &format!("192.0.2.{last}")],
        )],
    )
}

// ------------------------------------------------------------------ clients

/// One query through a hickory client; the A addresses (sorted) or why it failed.
async fn ask(client: &mut Client<TokioRuntimeProvider>) -> Result<Vec<String>, String> {
    let name = Name::from_ascii("www.route.test.").expect("a name");
    let response = client
        .query(name, DNSClass::IN, RecordType::A)
        .await
        .map_err(|e| e.to_string())?;
    if response.metadata.response_code != hickory_proto::op::ResponseCode::NoError {
        return Err(format!("rcode {}", response.metadata.response_code));
    }
    let mut got: Vec<String> = response
        .answers
        .iter()
        .map(|record| match &record.data {
            RData::A(a) => a.to_string(),
            other => format!("unexpected {other:?}"),
        })
        .collect();
    got.sort();
    Ok(got)
}

async fn udp_client(addr: SocketAddr) -> Client<TokioRuntimeProvider> {
    let stream = UdpClientStream::builder(addr, TokioRuntimeProvider::default())
        .with_timeout(Some(RECV_TIMEOUT))
        .build();
    let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
    tokio::spawn(bg);
    client
}

/// One TCP connection, kept open across every reload.
async fn tcp_client(addr: SocketAddr) -> Client<TokioRuntimeProvider> {
    let (connect, sender) =
        TcpClientStream::new(addr, None, Some(RECV_TIMEOUT), TokioRuntimeProvider::new());
    let stream = connect.await.expect("TCP connect");
    let (client, bg) = Client::<TokioRuntimeProvider>::with_timeout(stream, sender, RECV_TIMEOUT);
    tokio::spawn(bg);
    client
}

/// Answers seen by one client task, failures included.
#[derive(Default)]
struct Seen {
    answers: Vec<Vec<String>>,
    failures: Vec<String>,
}

/// Queries until `stop`, counting into `sent`.
async fn query_loop(
    mut client: Client<TokioRuntimeProvider>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> Seen {
    let mut seen = Seen::default();
    while !stop.load(Ordering::Relaxed) {
        match ask(&mut client).await {
            Ok(answer) => seen.answers.push(answer),
            Err(e) => seen.failures.push(e),
        }
        sent.fetch_add(1, Ordering::Relaxed);
    }
    seen
}

// ------------------------------------------------------------------ status listener

/// `POST path` on the status listener with extra header lines: status code and JSON body.
async fn status_post(addr: SocketAddr, path: &str, headers: &[&str]) -> (u16, Value) {
    let (status, body) = status_request(addr, "POST", path, headers).await;
    let body = serde_json::from_str(&body).unwrap_or_else(|e| panic!("JSON body ({e}): {body}"));
    (status, body)
}

/// The lines `edgewise-dns check` prints for the config at `path`, one per error.
fn check_errors(path: &Path) -> Vec<String> {
    match Config::load(path) {
        Ok(_) => panic!("{} should not validate", path.display()),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

// ------------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queries_over_udp_and_tcp_across_20_reloads_all_get_one_whole_config() {
    let server = Reloadable::start(&www_config(1), &[]).await;
    let one = vec!["192.0.2.1".to_string(), "192.0.2.10".to_string()];
    let two = vec!["192.0.2.10".to_string(), "192.0.2.2".to_string()];
    let (stop, sent) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut clients = Vec::new();
    for _ in 0..2 {
        let udp = udp_client(server.routing.addr()).await;
        clients.push(tokio::spawn(query_loop(udp, stop.clone(), sent.clone())));
        let tcp = tcp_client(server.routing.addr()).await;
        clients.push(tokio::spawn(query_loop(tcp, stop.clone(), sent.clone())));
    }
    for round in 0..20u8 {
        let before = sent.load(Ordering::Relaxed);
        eventually("the clients to query between reloads", || async {
            let now = sent.load(Ordering::Relaxed);
            if now >= before + QUERIES_PER_RELOAD * clients.len() as u64 {
                Ok(())
            } else {
                Err(format!("{} queries since the last reload", now - before))
            }
        })
        .await;
        server.write("edgewise.toml", &www_config(2 - round % 2));
        let summary = server.reloader.reload().await.expect("the reload succeeds");
        assert_eq!(summary.zones.changed.len(), 1, "round {round}: {summary}");
    }
    stop.store(true, Ordering::Relaxed);
    let mut distinct = BTreeSet::new();
    for client in clients {
        let seen = client.await.expect("client task");
        assert!(
            seen.failures.is_empty(),
            "failed queries: {:?}",
            seen.failures
        );
        for answer in seen.answers {
            assert!(answer == one || answer == two, "a mixed answer: {answer:?}");
            distinct.insert(answer);
        }
    }
    assert_eq!(distinct.len(), 2, "both configs answered: {distinct:?}");
    assert!(sent.load(Ordering::Relaxed) >= 20 * 4 * QUERIES_PER_RELOAD);
    // The last reload put config 1 in force (round 19 wrote 2 - 1).
    assert_eq!(server.addresses("www.route.test.").await, one);
}

#[tokio::test]
async fn a_broken_config_is_refused_with_the_check_errors_and_answers_stay() {
    let server = Reloadable::start(&www_config(1), &[]).await;
    let broken = www_config(2)
        .replace("workers = 1", "workers = 1\nmax_udp_payload = 100")
        .replace("192.0.2.2", "192.0.2.300");
    server.write("edgewise.toml", &broken);
    let want = check_errors(&server.path);
    assert_eq!(want.len(), 2, "two independent mistakes: {want:?}");
    match server.reloader.reload().await {
        Err(ReloadError::Invalid(errors)) => {
            let got: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
            assert_eq!(got, want);
        }
        other => panic!("expected the check errors, got {other:?}"),
    }
    assert_eq!(
        server.addresses("www.route.test.").await,
        ["192.0.2.1", "192.0.2.10"]
    );
    let (status, body) = status_post(server.routing.status(), "/reload", &[]).await;
    assert_eq!(status, 400, "{body:#}");
    assert_eq!(body["reloaded"], false);
    assert_eq!(body["errors"], serde_json::json!(want));
    assert_eq!(
        server.addresses("www.route.test.").await,
        ["192.0.2.1", "192.0.2.10"]
    );
}

#[tokio::test]
async fn a_broken_zone_file_is_refused_at_its_line_and_answers_stay() {
    let with_file = |zone: &str| {
        route_config("", "workers = 1", &[]).replace(
            "name = \"route.test\"\n",
            &format!("name = \"route.test\"\nfile = \"{zone}\"\n"),
        )
    };
    let zone = "$ORIGIN route.test.\nmail 300 IN A 192.0.2.25\n";
    let server = Reloadable::start(&with_file("reload.zone"), &[("reload.zone", zone)]).await;
    assert_eq!(server.addresses("mail.route.test.").await, ["192.0.2.25"]);
    server.write(
        "reload.zone",
        "$ORIGIN route.test.\nmail 300 IN A 192.0.2.26\nbad 300 IN A not-an-address\n",
    );
    let want = check_errors(&server.path);
    assert!(
        want.iter().any(|e| e.contains("reload.zone:3")),
        "check names the zone file line: {want:?}"
    );
    match server.reloader.reload().await {
        Err(ReloadError::Invalid(errors)) => {
            let got: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
            assert_eq!(got, want);
        }
        other => panic!("expected the check errors, got {other:?}"),
    }
    assert_eq!(server.addresses("mail.route.test.").await, ["192.0.2.25"]);
    // Fixed, the same file reloads.
    server.write(
        "reload.zone",
        "$ORIGIN route.test.\nmail 300 IN A 192.0.2.26\n",
    );
    let summary = server
        .reloader
        .reload()
        .await
        .expect("the fixed zone reloads");
    assert_eq!(summary.zones.changed.len(), 1, "{summary}");
    assert_eq!(server.addresses("mail.route.test.").await, ["192.0.2.26"]);
}

#[tokio::test]
async fn an_unchanged_check_keeps_its_state_a_removed_one_goes_and_a_new_one_starts() {
    let up = TcpEndpoint::start().await;
    let mut down = TcpEndpoint::start().await;
    let down_addr = down.addr.to_string();
    down.stop().await;
    let failover = |primary_check: &str| {
        [
            routed(
                "svc",
                "A",
                30,
                "primary",
                r#"failover = "primary""#,
                &["192.0.2.1"],
                Some(primary_check),
            ),
            routed(
                "svc",
                "A",
                30,
                "secondary",
                r#"failover = "secondary""#,
                &["192.0.2.2"],
                None,
            ),
        ]
    };
    // Probed only every minute, so its state after the reload is its initial one.
    let fresh = format!(
        "[[health_checks]]\nid = \"fresh\"\ntype = \"tcp\"\ntarget = \"{}\"\ninterval = \"60s\"\n",
        up.addr
    );
    let before = route_config(
        &format!(
            "{}{}",
            check("gone", "tcp", &up.addr.to_string(), ""),
            check("down", "tcp", &down_addr, "")
        ),
        "workers = 1",
        &failover("down"),
    );
    let server = Reloadable::start(&before, &[]).await;
    let row = wait_healthy(&server.routing, "down", false).await;
    assert_eq!(server.addresses("svc.route.test.").await, ["192.0.2.2"]);

    // "fresh" comes first, so "down" moves from index 1 to 1 of a different list; the
    // record set must still follow "down".
    let after = route_config(
        &format!("{}{}", fresh, check("down", "tcp", &down_addr, "")),
        "workers = 1",
        &failover("down"),
    );
    server.write("edgewise.toml", &after);
    let summary = server.reloader.reload().await.expect("reload");
    assert_eq!(summary.health_checks.kept, ["down"]);
    assert_eq!(summary.health_checks.removed, ["gone"]);
    assert_eq!(summary.health_checks.added, ["fresh"]);
    let kept = check_row(&server.routing, "down").await;
    assert_eq!(kept["healthy"], false, "{kept:#}");
    assert_eq!(kept["last_change"], row["last_change"], "{kept:#}");
    assert_eq!(server.addresses("svc.route.test.").await, ["192.0.2.2"]);
    let ids: Vec<Value> = health_checks(&server.routing)
        .await
        .into_iter()
        .map(|row| row["id"].clone())
        .collect();
    assert_eq!(ids, ["fresh", "down"]);
    let fresh = check_row(&server.routing, "fresh").await;
    assert_eq!(
        fresh["healthy"], true,
        "new checks start healthy: {fresh:#}"
    );

    // A changed definition restarts the check: healthy again until probes say otherwise.
    let changed = after.replace(
        &format!("target = \"{down_addr}\"\ninterval = \"1s\"\nfailure_threshold = 1"),
        &format!("target = \"{down_addr}\"\ninterval = \"60s\"\nfailure_threshold = 1"),
    );
    assert_ne!(changed, after);
    server.write("edgewise.toml", &changed);
    let summary = server.reloader.reload().await.expect("reload");
    assert_eq!(summary.health_checks.restarted, ["down"]);
    assert_eq!(check_row(&server.routing, "down").await["healthy"], true);
    assert_eq!(server.addresses("svc.route.test.").await, ["192.0.2.1"]);
}

#[tokio::test]
async fn post_reload_from_loopback_answers_what_changed() {
    let server = Reloadable::start(&www_config(1), &[]).await;
    let changed = www_config(2).replace("serial = 1", "serial = 7");
    server.write("edgewise.toml", &changed);
    let (status, body) = status_post(server.routing.status(), "/reload", &[]).await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["reloaded"], true);
    assert_eq!(
        body["zones"]["changed"],
        serde_json::json!([{ "name": "route.test.", "serial": 7, "records": 5 }]),
        "{body:#}"
    );
    assert_eq!(body["zones"]["unchanged"], 0);
    assert_eq!(
        body["changed"],
        serde_json::json!(["zone route.test. (serial 7, 5 records) changed"]),
        "one line per change, as the config contract's `changed` list"
    );
    assert_eq!(
        server.addresses("www.route.test.").await,
        ["192.0.2.10", "192.0.2.2"]
    );
    let (status, _) = crate::health_checks::status_get(server.routing.status(), "/reload").await;
    assert_eq!(status, 405, "GET /reload");
}

#[tokio::test]
async fn post_reload_needs_exactly_one_right_bearer_token_once_one_is_set() {
    let with_token = |last: u8| {
        www_config(last).replace(
            "workers = 1",
            "workers = 1\nstatus_token = \"s3cret-token\"",
        )
    };
    let server = Reloadable::start(&with_token(1), &[]).await;
    server.write("edgewise.toml", &with_token(2));
    let status = server.routing.status();
    for headers in [
        &[][..],
        &["Authorization: Bearer wrong-token"],
        &["Authorization: Basic s3cret-token"],
        &[
            "Authorization: Bearer s3cret-token",
            "Authorization: Bearer s3cret-token",
        ],
    ] {
        let (code, body) = status_post(status, "/reload", headers).await;
        assert_eq!(code, 401, "{headers:?}: {body:#}");
    }
    assert_eq!(
        server.addresses("www.route.test.").await,
        ["192.0.2.1", "192.0.2.10"]
    );
    let (code, body) =
        status_post(status, "/reload", &["Authorization: Bearer s3cret-token"]).await;
    assert_eq!(code, 200, "{body:#}");
    assert_eq!(
        server.addresses("www.route.test.").await,
        ["192.0.2.10", "192.0.2.2"]
    );
}

/// `www_config(last)` listening on `listen` instead of 127.0.0.1:0.
fn www_config_on(last: u8, listen: &str) -> String {
    www_config(last).replace(
        "listen = [\"127.0.0.1:0\"]\nstatus",
        &format!("listen = [{listen}]\nstatus"),
    )
}

/// The address a reload answer says it bound for `kind`, e.g. `udp+tcp`.
fn added_listener(body: &Value, kind: &str) -> SocketAddr {
    let added = body["listeners"]["added"]
        .as_array()
        .expect("listeners.added");
    added
        .iter()
        .filter_map(|l| l.as_str()?.strip_prefix(&format!("{kind} ")))
        .map(|addr| addr.parse().expect("an address"))
        .next()
        .unwrap_or_else(|| panic!("no {kind} listener added: {body:#}"))
}

#[tokio::test]
async fn a_changed_listen_address_is_bound_and_the_old_one_drains() {
    let server = Reloadable::start(&www_config(1), &[]).await;
    let old = server.routing.addr();
    let www = q("www.route.test.", RecordType::A);
    // Opened before the reload: served until the client is done with it.
    let mut open = tcp_connect(old).await;
    server.write("edgewise.toml", &www_config_on(2, "\"127.0.0.2:0\""));
    let (status, body) = status_post(server.routing.status(), "/reload", &[]).await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(
        body["listeners"]["removed"],
        serde_json::json!([format!("udp+tcp {old}")])
    );
    let new = added_listener(&body, "udp+tcp");
    assert_eq!(new.ip().to_string(), "127.0.0.2");
    for reply in [
        hickory_udp(new, "www.route.test.", RecordType::A).await,
        hickory_tcp(new, "www.route.test.", RecordType::A).await,
    ] {
        assert_eq!(ipv4s(&reply), ["192.0.2.10", "192.0.2.2"]);
    }
    assert_eq!(
        udp_exchange_within(old, &www.bytes(), Duration::from_millis(500)).await,
        None,
        "the old address still answers over UDP"
    );
    assert!(
        tokio::net::TcpStream::connect(old).await.is_err(),
        "the old address still accepts TCP"
    );
    tcp_send(&mut open, &www.bytes()).await;
    let answer = tcp_recv(&mut open)
        .await
        .expect("the open connection is answered");
    assert_eq!(
        ipv4s(&crate::wire::Reply::new("tcp", answer)),
        ["192.0.2.10", "192.0.2.2"]
    );
}

#[tokio::test]
async fn a_listen_address_that_cannot_be_bound_refuses_the_whole_reload() {
    let server = Reloadable::start(&www_config(1), &[]).await;
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("a socket to hold");
    let taken = taken.local_addr().expect("its address");
    server.write(
        "edgewise.toml",
        &www_config_on(2, &format!("\"127.0.0.1:0\", \"{taken}\"")),
    );
    let (status, body) = status_post(server.routing.status(), "/reload", &[]).await;
    assert_eq!(status, 400, "{body:#}");
    let message = body["errors"][0].as_str().expect("a message");
    assert!(
        message.contains("edgewise.toml:") && message.contains("dns.listen[1]"),
        "{message}"
    );
    assert!(
        message.contains(&format!("cannot bind {taken}")),
        "{message}"
    );
    // Nothing of the refused config applies: the record change neither.
    assert_eq!(
        server.addresses("www.route.test.").await,
        ["192.0.2.1", "192.0.2.10"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reloads_at_once_both_apply_in_turn() {
    let server = Reloadable::start(&www_config(1), &[]).await;
    server.write("edgewise.toml", &www_config(2));
    let (first, second) = tokio::join!(server.reloader.reload(), server.reloader.reload());
    let (first, second) = (first.expect("first"), second.expect("second"));
    // Serialized: one saw the change, the other found nothing left to change.
    let changed = [&first, &second]
        .iter()
        .filter(|s| !s.zones.changed.is_empty())
        .count();
    assert_eq!(changed, 1, "{first} / {second}");
    assert_eq!(
        server.addresses("www.route.test.").await,
        ["192.0.2.10", "192.0.2.2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_during_shutdown_are_refused_or_finish_and_the_server_still_stops() {
    let mut server = Reloadable::start(&www_config(1), &[]).await;
    server.write("edgewise.toml", &www_config(2));
    let token = server.routing.server.token.clone();
    // A reload racing the shutdown either lands whole or is refused; neither hangs.
    let (raced, ()) = tokio::join!(server.reloader.reload(), async { token.cancel() });
    assert!(
        matches!(raced, Ok(_) | Err(ReloadError::ShuttingDown)),
        "{raced:?}"
    );
    let handle = server.routing.server.handle.take().expect("server task");
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("the server stops")
        .expect("the server task ends cleanly");
    assert!(matches!(
        server.reloader.reload().await,
        Err(ReloadError::ShuttingDown)
    ));
}

#[tokio::test]
async fn a_changed_query_log_is_refused_as_needing_a_restart() {
    let server = Reloadable::start(&www_config(1), &[]).await;
    let logged = www_config(2).replacen(
        "workers = 1",
        "workers = 1\nquery_log = { to = \"stderr\" }",
        1,
    );
    assert_ne!(logged, www_config(2), "the test config has `workers = 1`");
    server.write("edgewise.toml", &logged);
    let (status, body) = status_post(server.routing.status(), "/reload", &[]).await;
    assert_eq!(status, 400, "{body:#}");
    let message = body["errors"][0].as_str().expect("a message");
    assert!(message.contains("dns.query_log"), "{message}");
    assert_eq!(
        server.addresses("www.route.test.").await,
        ["192.0.2.1", "192.0.2.10"]
    );
}
