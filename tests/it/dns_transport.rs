//! Transport: TCP per RFC 7766 (several and pipelined queries, idle timeout), IPv6 loopback,
//! and clean shutdown. Connection limits are in `dns_limits`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType::{A, AAAA, MX};
use tokio::io::AsyncWriteExt;

use crate::dns_limits::closed_within;
use crate::fixture::{main_config, main_server};
use crate::harness::rcode::{NOERROR, NXDOMAIN};
use crate::harness::{
    Reply, a, aaaa, assert_rcode, assert_rrs, framed, hickory_tcp, hickory_udp, q, rr, start,
    start_on, tcp_connect, tcp_recv, tcp_send,
};

#[tokio::test]
async fn tcp_answers_several_queries_on_one_connection() {
    let server = main_server().await;
    let mut stream = tcp_connect(server.addr()).await;
    for (i, (qname, rcode)) in [
        ("www.zone.test.", NOERROR),
        ("nothere.zone.test.", NXDOMAIN),
        ("mail.zone.test.", NOERROR),
    ]
    .iter()
    .enumerate()
    {
        let id = 100 + i as u16;
        tcp_send(&mut stream, &q(qname, A).id(id).bytes()).await;
        let reply = Reply::new(
            "tcp",
            tcp_recv(&mut stream)
                .await
                .unwrap_or_else(|| panic!("reply {i} on the same connection")),
        );
        assert_eq!(reply.id, id);
        assert_rcode(&reply, *rcode);
    }
}

#[tokio::test]
async fn tcp_answers_pipelined_queries_matched_by_id() {
    let server = main_server().await;
    let mut stream = tcp_connect(server.addr()).await;
    let queries = [
        (0x1111, "www.zone.test.", A),
        (0x2222, "ns1.zone.test.", AAAA),
        (0x3333, "zone.test.", MX),
    ];
    let mut all = Vec::new();
    for (id, qname, qtype) in queries {
        all.extend(framed(&q(qname, qtype).id(id).bytes()));
    }
    stream.write_all(&all).await.unwrap();
    let mut replies = BTreeMap::new();
    for i in 0..3 {
        let reply = Reply::new(
            "tcp",
            tcp_recv(&mut stream)
                .await
                .unwrap_or_else(|| panic!("pipelined reply {i}")),
        );
        replies.insert(reply.id, reply);
    }
    assert_eq!(
        replies.keys().copied().collect::<Vec<_>>(),
        vec![0x1111, 0x2222, 0x3333]
    );
    let www = &replies[&0x1111];
    assert_rrs(
        www,
        &www.answer,
        &[
            rr("www.zone.test.", A, 60, a("192.0.2.10")),
            rr("www.zone.test.", A, 60, a("192.0.2.11")),
        ],
        "www A",
    );
    let ns1 = &replies[&0x2222];
    assert_rrs(
        ns1,
        &ns1.answer,
        &[rr("ns1.zone.test.", AAAA, 300, aaaa("2001:db8::1"))],
        "ns1 AAAA",
    );
    assert_eq!(replies[&0x3333].answer.len(), 3, "{:?}", replies[&0x3333]);
}

#[tokio::test]
async fn idle_tcp_connection_is_closed_after_the_idle_timeout() {
    let config = main_config().replace("[dns]\n", "[dns]\ntcp_idle_timeout = \"300ms\"\n");
    let server = start(&config, &[]).await;
    let mut stream = tcp_connect(server.addr()).await;
    // One answered query first: the timer counts from the last query.
    tcp_send(&mut stream, &q("www.zone.test.", A).bytes()).await;
    assert!(
        tcp_recv(&mut stream).await.is_some(),
        "answered before going idle"
    );
    let started = Instant::now();
    assert!(
        closed_within(&mut stream, Duration::from_secs(3)).await,
        "the server must close an idle connection"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250),
        "closed after {elapsed:?}, before the 300ms idle timeout"
    );
    assert!(
        elapsed < Duration::from_millis(2000),
        "closed only after {elapsed:?}"
    );
}

#[tokio::test]
async fn ipv6_loopback_serves_udp_and_tcp() {
    let server = start_on(&main_config(), &[], &["[::1]:0"]).await;
    let addr = server.addr();
    assert!(addr.is_ipv6(), "{addr}");
    let want = [
        rr("www.zone.test.", A, 60, a("192.0.2.10")),
        rr("www.zone.test.", A, 60, a("192.0.2.11")),
    ];
    for reply in [
        hickory_udp(addr, "www.zone.test.", A).await,
        hickory_tcp(addr, "www.zone.test.", A).await,
    ] {
        assert_rcode(&reply, NOERROR);
        assert_rrs(&reply, &reply.answer, &want, "answer over IPv6");
    }
    for reply in server.raw_both(&q("www.zone.test.", A)).await {
        assert_rrs(&reply, &reply.answer, &want, "raw answer over IPv6");
    }
}

#[tokio::test]
async fn ipv4_and_ipv6_listeners_serve_together() {
    let server = start_on(&main_config(), &[], &["127.0.0.1:0", "[::1]:0"]).await;
    assert_eq!(server.addrs.len(), 2);
    for &addr in &server.addrs {
        let reply = hickory_udp(addr, "www.zone.test.", A).await;
        assert_eq!(reply.answer.len(), 2, "{addr}: {reply:?}");
        let reply = hickory_tcp(addr, "www.zone.test.", A).await;
        assert_eq!(reply.answer.len(), 2, "{addr}: {reply:?}");
    }
}

#[tokio::test]
async fn cancelling_the_token_makes_run_return() {
    let mut server = main_server().await;
    // An idle TCP connection must not hold the shutdown up (idle timeout is 10 s by default).
    let mut idle = tcp_connect(server.addr()).await;
    tcp_send(&mut idle, &q("www.zone.test.", A).bytes()).await;
    assert!(tcp_recv(&mut idle).await.is_some());
    let handle = server.handle.take().unwrap();
    server.token.cancel();
    tokio::time::timeout(Duration::from_secs(2), handle)
        .await
        .expect("run() must return within 2 s of cancellation")
        .expect("run() must not panic");
    // Nothing answers any more.
    let silent = crate::harness::udp_exchange_within(
        server.addr(),
        &q("www.zone.test.", A).bytes(),
        crate::harness::SILENCE,
    )
    .await;
    assert!(silent.is_none(), "no UDP answers after shutdown");
}
