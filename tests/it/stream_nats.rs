//! `[stream] backend = "nats"` through the real binary and Debian's nats-server: the Kinesis
//! API unchanged in front of a JetStream cluster — puts acknowledged by a quorum, read back
//! in order with their sequence numbers from any edgewise-cdn in front of the cluster, and
//! nothing acknowledged lost when a NATS node or edgewise-cdn itself is SIGKILLed.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::nats::Nats;
use crate::stream_harness::{Client, seq_parts};
use crate::stream_process::{Server, write_config};

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
