use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use socket2::Socket;

use super::{Datagrams, Replies};

/// A blocking server socket with a read timeout, and a client socket, on `ip`.
fn pair(ip: &str) -> (Socket, UdpSocket) {
    let server = UdpSocket::bind((ip, 0)).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let client = UdpSocket::bind((ip, 0)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client.connect(server.local_addr().unwrap()).unwrap();
    (Socket::from(server), client)
}

/// Receives until `want` datagrams came, in as many batches as it takes.
fn receive_all(
    socket: &Socket,
    datagrams: &mut Datagrams,
    want: usize,
) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut got = Vec::new();
    while got.len() < want {
        let n = datagrams.receive(socket).unwrap();
        assert!(n >= 1, "a blocking receive returns at least one datagram");
        for i in 0..n {
            let (data, peer) = datagrams.get(i);
            got.push((data.to_vec(), peer.unwrap()));
        }
    }
    got
}

fn round_trip(ip: &str) {
    let (server, client) = pair(ip);
    let mut datagrams = Datagrams::new(8, 512);
    let mut replies = Replies::new(8, 64);
    for i in 0..5u8 {
        client.send(&[i; 3]).unwrap();
    }
    let got = receive_all(&server, &mut datagrams, 5);
    let sent: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 3]).collect();
    assert_eq!(got.iter().map(|g| g.0.clone()).collect::<Vec<_>>(), sent);
    assert!(got.iter().all(|g| g.1 == client.local_addr().unwrap()));

    // A reply goes back to the sender of the datagram it answers.
    client.send(b"ping").unwrap();
    let n = datagrams.receive(&server).unwrap();
    assert_eq!(n, 1);
    let buffer = replies.next_buffer();
    buffer.clear();
    buffer.extend_from_slice(b"pong");
    replies.keep(0);
    assert!(replies.send(&server, &datagrams).is_empty());
    let mut answer = [0u8; 16];
    let len = client.recv(&mut answer).unwrap();
    assert_eq!(&answer[..len], b"pong");
}

#[test]
fn batches_round_trip_over_ipv4() {
    round_trip("127.0.0.1");
}

#[test]
fn batches_round_trip_over_ipv6() {
    if UdpSocket::bind(("::1", 0)).is_err() {
        panic!("this machine has no ::1; the IPv6 path must be tested");
    }
    round_trip("::1");
}

#[test]
fn several_replies_go_out_in_one_send_to_their_own_senders() {
    let (server, first) = pair("127.0.0.1");
    let second = UdpSocket::bind("127.0.0.1:0").unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let to = server.local_addr().unwrap().as_socket().unwrap();
    first.send(b"a").unwrap();
    second.send_to(b"b", to).unwrap();
    let mut datagrams = Datagrams::new(4, 64);
    let mut replies = Replies::new(4, 64);
    let mut answered = 0;
    while answered < 2 {
        let n = datagrams.receive(&server).unwrap();
        for i in 0..n {
            let query = datagrams.get(i).0.to_vec();
            let buffer = replies.next_buffer();
            buffer.clear();
            buffer.extend_from_slice(&[query[0].to_ascii_uppercase()]);
            replies.keep(i);
        }
        assert!(replies.send(&server, &datagrams).is_empty());
        answered += n;
    }
    let mut answer = [0u8; 4];
    assert_eq!(first.recv(&mut answer).unwrap(), 1);
    assert_eq!(answer[0], b'A');
    assert_eq!(second.recv(&mut answer).unwrap(), 1);
    assert_eq!(answer[0], b'B');
}

#[test]
fn a_datagram_longer_than_the_buffer_is_cut() {
    let (server, client) = pair("127.0.0.1");
    let mut datagrams = Datagrams::new(2, 16);
    client.send(&[7u8; 100]).unwrap();
    assert_eq!(datagrams.receive(&server).unwrap(), 1);
    assert_eq!(datagrams.get(0).0, &[7u8; 16]);
}

#[test]
fn nothing_before_the_timeout_is_an_error_not_an_empty_batch() {
    let (server, _client) = pair("127.0.0.1");
    server
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut datagrams = Datagrams::new(2, 16);
    let e = datagrams.receive(&server).unwrap_err();
    assert!(matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
}
