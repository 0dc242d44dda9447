//! `[stream] backend = "nats"` through the real binary and Debian's nats-server: the Kinesis
//! API unchanged in front of a JetStream cluster — puts acknowledged by a quorum, read back
//! in order with their sequence numbers from any edgewise-cdn in front of the cluster, and
//! nothing acknowledged lost when a NATS node or edgewise-cdn itself is SIGKILLed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;

use crate::nats::Nats;
use crate::stream_durability::{
    BATCH, Ledger, SHARDS, STREAM, partition_key, payload, verify, writer,
};
use crate::stream_harness::{Client, seq_parts};
use crate::stream_process::{LIMIT, Server, wait_for, write_config};

const WRITERS: usize = 4;
/// JetStream moves a stream's leadership off a dead node in seconds; puts to that shard fail
/// (503) meanwhile, and the writers go on.
const FAILOVER: Duration = Duration::from_secs(60);

fn nats_config(nats: &Nats, replicas: usize, stream: &str, shards: u32) -> String {
    format!(
        r#"[stream]
listen = ["127.0.0.1:0"]
data_dir = "data"
backend = "nats"
nats = {{ servers = [{}], replicas = {replicas} }}

[[stream.streams]]
name = "{stream}"
shards = {shards}
"#,
        nats.servers()
    )
}

fn start(dir: &Path, config: &str) -> Server {
    Server::start(&write_config(dir, config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_put_through_one_process_are_read_in_order_from_another() {
    let nats = Nats::start(1).await;
    let config = nats_config(&nats, 1, "orders", 2);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start(dir_a.path(), &config);
    let b = start(dir_b.path(), &config);
    let mut put = Client::new(a.addr);
    let records: Vec<(String, Option<u128>, Vec<u8>)> = (0..20)
        .map(|n| {
            (
                format!("k{n}"),
                Some(if n % 2 == 0 { 0 } else { u128::MAX }),
                format!("order {n}").into_bytes(),
            )
        })
        .collect();
    let placed = put
        .put_records("orders", &records)
        .await
        .expect("PutRecords");
    // Offsets are JetStream's sequence numbers less one: 0, 1, 2... in each shard.
    for shard in 0..2_u32 {
        let offsets: Vec<u64> = placed
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .filter(|(s, _)| *s == shard)
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(offsets, (0..10).collect::<Vec<u64>>(), "shard {shard}");
    }
    // An iterator from one process opens on the other: they share the cluster's key.
    let iterator = put.iterator("orders", 0, "TRIM_HORIZON", None).await;
    let mut other = Client::new(b.addr);
    let answer = other
        .call("GetRecords", &json!({"ShardIterator": iterator}))
        .await
        .expect("B opens A's iterator");
    assert!(answer["NextShardIterator"].is_string(), "{answer}");
    // The process that took the puts reads them at once; the other once its mirror has them.
    for (server, wait) in [(&a, Duration::ZERO), (&b, Duration::from_secs(10))] {
        let mut client = Client::new(server.addr);
        let deadline = Instant::now() + wait;
        for shard in 0..2_u32 {
            loop {
                let got = client.read_all("orders", shard).await;
                let want: Vec<(u64, String)> = (0..10)
                    .map(|i| (i, format!("order {}", 2 * i + u64::from(shard))))
                    .collect();
                let seen: Vec<(u64, String)> = got
                    .iter()
                    .map(|g| {
                        (
                            seq_parts(&g.seq).1,
                            String::from_utf8_lossy(&g.data).into_owned(),
                        )
                    })
                    .collect();
                if seen == want {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "shard {shard} from {}: {seen:?}",
                    server.addr
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Writers against `addr` until `more` further batches are acknowledged whole.
async fn write_until(server: &Server, round: usize, more: usize, ledger: &Arc<Mutex<Ledger>>) {
    let batches = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (ledger, batches, stop) = (ledger.clone(), batches.clone(), stop.clone());
            tokio::spawn(writer(
                server.addr,
                round * 10 + w,
                ledger,
                batches,
                stop,
                true,
            ))
        })
        .collect();
    let deadline = Instant::now() + FAILOVER;
    while batches.load(Ordering::SeqCst) < more {
        assert!(
            Instant::now() < deadline,
            "round {round}: {} of {more} batches acknowledged within {FAILOVER:?}:\n{}",
            batches.load(Ordering::SeqCst),
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in writers {
        tokio::time::timeout(LIMIT, task)
            .await
            .expect("writers stop")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_puts_survive_a_nats_node_and_edgewise_being_killed() {
    let started = Instant::now();
    let mut nats = Nats::start(3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &nats_config(&nats, 3, STREAM, SHARDS));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut seen = HashMap::new();

    // Puts go on while a NATS node is SIGKILLed, and after it is back.
    let mut server = Server::start(&config);
    write_until(&server, 0, 10, &ledger).await;
    nats.kill(1);
    write_until(&server, 1, 10, &ledger).await;
    nats.restart(1).await;
    write_until(&server, 2, 10, &ledger).await;

    // edgewise-cdn itself SIGKILLed mid-puts, then started again on the same data folder.
    write_until(&server, 3, 5, &ledger).await;
    server.kill();
    let mut server = Server::start(&config);
    let mut client = Client::new(server.addr);
    let snapshot = ledger.lock().unwrap().clone();
    caught_up(&mut client, &snapshot).await;
    verify(&mut client, &snapshot, &mut seen).await;
    write_until(&server, 4, 10, &ledger).await;

    // Two of three nodes down: no quorum, puts fail with ServiceUnavailable (503). As with
    // any failed put, the record may still be stored: the leader may commit it once the
    // quorum is back.
    nats.kill(1);
    nats.kill(2);
    let data = base64::engine::general_purpose::STANDARD.encode(payload(98, 0));
    ledger.lock().unwrap().maybe.insert((98, 0));
    let refused = client
        .call(
            "PutRecord",
            &json!({"StreamName": STREAM, "PartitionKey": partition_key(98, 0), "Data": data}),
        )
        .await;
    match refused {
        Err(Ok(error)) => {
            assert_eq!(error.status, 503, "{error:?}");
            assert_eq!(error.body["__type"], "ServiceUnavailable", "{error:?}");
        }
        other => panic!("a put without quorum: {other:?}"),
    }
    nats.restart(1).await;
    nats.restart(2).await;

    // Every acknowledged record exactly once, in order, at its acknowledged place.
    let snapshot = ledger.lock().unwrap().clone();
    caught_up(&mut client, &snapshot).await;
    verify(&mut client, &snapshot, &mut seen).await;
    let acked = snapshot.acked.len();
    assert!(acked >= 45 * BATCH, "{acked} acknowledged");
    assert_eq!(server.terminate().code(), Some(0), "{}", server.stderr());
    eprintln!(
        "nats chaos: {acked} acknowledged, {} unanswered, {:?}",
        snapshot.maybe.len(),
        started.elapsed()
    );
}

/// Waits until the process's mirror holds every acknowledged record (it mirrors the cluster
/// again from the start after a restart).
async fn caught_up(client: &mut Client, ledger: &Ledger) {
    let mut want = [0_u64; SHARDS as usize];
    for &(shard, offset) in ledger.acked.values() {
        want[shard as usize] = want[shard as usize].max(offset + 1);
    }
    let deadline = Instant::now() + LIMIT;
    for shard in 0..SHARDS {
        loop {
            let records = client.read_all(STREAM, shard).await;
            let tip = records.last().map_or(0, |r| seq_parts(&r.seq).1 + 1);
            if tip >= want[shard as usize] {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "shard {shard} mirrored to {tip} of {}",
                want[shard as usize]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The max age the cluster keeps JetStream stream `name` for.
async fn max_age(nats: &Nats, name: &str) -> Duration {
    let client = async_nats::connect(nats.urls()[0].as_str())
        .await
        .expect("connect to nats-server");
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream(name).await.expect("the shard's stream");
    stream.cached_info().config.max_age
}

/// DescribeStreamSummary's RetentionPeriodHours through `server`.
async fn retention_hours(server: &Server) -> u64 {
    let out = Client::new(server.addr)
        .call("DescribeStreamSummary", &json!({"StreamName": "orders"}))
        .await
        .expect("DescribeStreamSummary");
    out["StreamDescriptionSummary"]["RetentionPeriodHours"]
        .as_u64()
        .unwrap_or_else(|| panic!("{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_change_reaches_the_cluster_and_other_processes_and_the_config_wins_once_it_changes()
 {
    let nats = Nats::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = nats_config(&nats, 1, "orders", 2);
    let mut server = start(dir.path(), &config);
    let other_dir = tempfile::tempdir().unwrap();
    let mut other = start(other_dir.path(), &config);
    assert_eq!(retention_hours(&server).await, 24);
    assert_eq!(retention_hours(&other).await, 24);
    Client::new(server.addr)
        .call(
            "IncreaseStreamRetentionPeriod",
            &json!({"StreamName": "orders", "RetentionPeriodHours": 48}),
        )
        .await
        .expect("IncreaseStreamRetentionPeriod");
    for shard in ["EW_orders_0", "EW_orders_1"] {
        assert_eq!(max_age(&nats, shard).await, Duration::from_secs(48 * 3600));
    }
    // The other process in front of the cluster follows within its check interval (5 s).
    let deadline = Instant::now() + Duration::from_secs(15);
    while retention_hours(&other).await != 48 {
        assert!(
            Instant::now() < deadline,
            "the other process still says 24 h"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    other.terminate();
    // The cluster's value stands across a restart while the config's retention is the same.
    server.terminate();
    let mut server = start(dir.path(), &config);
    assert_eq!(retention_hours(&server).await, 48);
    // A new retention in the config wins, as on the local log.
    server.terminate();
    let config = config.replace("shards = 2", "shards = 2\nretention = \"72h\"");
    let server = start(dir.path(), &config);
    assert_eq!(retention_hours(&server).await, 72);
    assert_eq!(
        max_age(&nats, "EW_orders_1").await,
        Duration::from_secs(72 * 3600)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_after_the_cluster_dropped_every_record_serves_and_numbers_on() {
    let nats = Nats::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = nats_config(&nats, 1, "orders", 1);
    let mut server = start(dir.path(), &config);
    let records: Vec<(String, Option<u128>, Vec<u8>)> = (0..5)
        .map(|n| (format!("k{n}"), None, vec![b'x']))
        .collect();
    Client::new(server.addr)
        .put_records("orders", &records)
        .await
        .expect("PutRecords");
    server.terminate();
    // What retention does to an idle stream: no records left, the sequence kept.
    let client = async_nats::connect(nats.urls()[0].as_str()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.get_stream("EW_orders_0")
        .await
        .unwrap()
        .purge()
        .await
        .expect("purge");

    let server = start(dir.path(), &config);
    logged(&server, "before their max age (a purge?)").await;
    let mut client = Client::new(server.addr);
    assert!(client.read_all("orders", 0).await.is_empty());
    // Past a few of the mirror's quiet checks (every 500 ms).
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let placed = client
        .put_records("orders", &records[..1])
        .await
        .expect("PutRecords after the purge");
    assert_eq!(placed[0], Ok((0, 5)), "numbered after the dropped records");
    let got = client.read_all("orders", 0).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(seq_parts(&got[0].seq).1, 5);
    let log = server.stderr();
    assert!(
        !log.contains("stalled"),
        "the empty shard is not a stall:\n{log}"
    );
}

/// `server`'s log once it has a line with `text` (waiting, bounded: the line comes when the
/// mirror is attached, after the listeners are bound).
async fn logged(server: &Server, text: &str) -> String {
    wait_for(&format!("a log line with {text:?}"), LIMIT, || {
        server.stderr().contains(text)
    })
    .await;
    server.stderr()
}

/// Both shards of "orders" through `server`: (offset, data) each.
async fn both_shards(server: &Server) -> Vec<Vec<(u64, String)>> {
    let mut client = Client::new(server.addr);
    let mut shards = Vec::new();
    for shard in 0..2_u32 {
        let got = client.read_all("orders", shard).await;
        shards.push(
            got.iter()
                .map(|g| {
                    let data = String::from_utf8_lossy(&g.data).into_owned();
                    (seq_parts(&g.seq).1, data)
                })
                .collect(),
        );
    }
    shards
}

/// `n` records from `first` on, alternating between the two shards.
fn orders(first: usize, n: usize) -> Vec<(String, Option<u128>, Vec<u8>)> {
    (first..first + n)
        .map(|i| {
            let hash = if i % 2 == 0 { 0 } else { u128::MAX };
            (
                format!("k{i}"),
                Some(hash),
                format!("order {i}").into_bytes(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_mirror_unless_the_cluster_made_its_streams_again() {
    let nats = Nats::start(1).await;
    let config = nats_config(&nats, 1, "orders", 2);
    let (dir, other_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut server = start(dir.path(), &config);
    Client::new(server.addr)
        .put_records("orders", &orders(0, 40))
        .await
        .expect("PutRecords");
    server.terminate();
    // Records arrive through another process while this one is down.
    let mut other = start(other_dir.path(), &config);
    Client::new(other.addr)
        .put_records("orders", &orders(40, 10))
        .await
        .expect("PutRecords");
    other.terminate();

    let mut server = start(dir.path(), &config);
    let log = logged(&server, "mirror kept, shard tips at [20, 20]").await;
    assert!(!log.contains("mirror emptied"), "{log}");
    let want: Vec<Vec<(u64, String)>> = (0..2)
        .map(|shard| {
            (0..25)
                .map(|i| (i, format!("order {}", 2 * i + shard)))
                .collect()
        })
        .collect();
    assert_eq!(both_shards(&server).await, want);
    // Killed, then (as if) the machine went down: writes synced only once a second may have
    // holes, so the copy is not trusted and is mirrored again whole.
    server.kill();
    std::fs::write(dir.path().join("data/mirror-state"), "boot another-boot\n").unwrap();
    let mut server = start(dir.path(), &config);
    logged(&server, "the machine restarted since it was written").await;
    assert_eq!(both_shards(&server).await, want);
    server.terminate();

    // The cluster's streams deleted and made again number from 1 again: the copy of the
    // old ones must not serve.
    let js =
        async_nats::jetstream::new(async_nats::connect(nats.urls()[0].as_str()).await.unwrap());
    for shard in ["EW_orders_0", "EW_orders_1"] {
        js.delete_stream(shard)
            .await
            .expect("delete the shard's stream");
    }
    let server = start(dir.path(), &config);
    logged(&server, "are not the ones it mirrored").await;
    assert_eq!(both_shards(&server).await, vec![vec![], vec![]]);
    let placed = Client::new(server.addr)
        .put_records("orders", &orders(0, 2))
        .await
        .expect("PutRecords");
    assert_eq!(placed, vec![Ok((0, 0)), Ok((1, 0))]);
    assert_eq!(
        both_shards(&server).await,
        vec![vec![(0, "order 0".into())], vec![(0, "order 1".into())]]
    );
}

/// `[cdn]` on `port` serving the folder `site`, its real-time logs on the stream `cdn-logs`.
fn cdn_with_realtime_logs(port: u16) -> String {
    format!(
        r#"[cdn]
http_listen = ["127.0.0.1:{port}"]
realtime_logs = {{ stream = "cdn-logs", fields = ["sc-status", "cs-uri-stem"] }}

[[cdn.distributions]]
id = "site"
hosts = ["www.site.test"]
viewer_protocol = "allow-all"

[[cdn.distributions.origins]]
id = "files"
dir = "site"

[[cdn.distributions.behaviors]]
path = "*"
origin = "files"

"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdn_realtime_logs_go_through_the_cluster_to_every_process() {
    let nats = Nats::start(1).await;
    let [port] = crate::pebble::free_ports::<1>();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::create_dir(dir_a.path().join("site")).unwrap();
    std::fs::write(dir_a.path().join("site/hello.txt"), "hello").unwrap();
    let stream = nats_config(&nats, 1, "cdn-logs", 1);
    let edge = start(
        dir_a.path(),
        &format!("{}{stream}", cdn_with_realtime_logs(port)),
    );
    let reader = start(dir_b.path(), &stream);
    for path in ["/hello.txt", "/hello.txt", "/missing.txt"] {
        let out = tokio::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(["-H", "Host: www.site.test"])
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .output()
            .await
            .expect("curl is installed");
        let status = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(status == "200" || status == "404", "{path}: {status}");
    }
    let want = [
        "200\t/hello.txt\n",
        "200\t/hello.txt\n",
        "404\t/missing.txt\n",
    ];
    // The edge put them into the cluster; the other process reads them from its mirror.
    for server in [&edge, &reader] {
        let mut client = Client::new(server.addr);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got: Vec<String> = client
                .read_all("cdn-logs", 0)
                .await
                .iter()
                .map(|g| String::from_utf8_lossy(&g.data).into_owned())
                .collect();
            if got == want {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {got:?}", server.addr);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
