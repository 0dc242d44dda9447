//! Hot reload of the real `edgewise-dns` binary on a copy of the example config: SIGHUP and
//! `POST /reload` pick up an edited zone file, and the process keeps serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::e2e_dig::ExampleServer;

/// The example zone file's `printer` line, and how long a reload may take to show.
const PRINTER: &str = "printer           A  192.168.1.70";
const POLLS: usize = 100;
const POLL_EVERY: Duration = Duration::from_millis(100);

fn printer(server: &ExampleServer) -> Vec<String> {
    server.answer("printer.home.example A")
}

/// Points `printer` at 192.168.1.`last` in the served copy of the zone file.
fn edit_zone(server: &ExampleServer, last: u8) {
    let path = server.dir.path().join("zones/home.example.zone");
    let text = std::fs::read_to_string(&path).expect("the example zone file");
    let edited = text
        .lines()
        .map(|line| {
            if line.starts_with("printer ") {
                PRINTER.replace("192.168.1.70", &format!("192.168.1.{last}"))
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(text.trim_end(), edited, "the zone file has {PRINTER:?}");
    std::fs::write(&path, edited).expect("write the zone file");
}

/// `POST /reload` from loopback: status code and JSON body.
fn post_reload(port: u16) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to status");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    let request = format!(
        "POST /reload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read the answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header end");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON ({e}): {body}"));
    (status, body)
}

#[test]
fn sighup_and_post_reload_pick_up_an_edited_zone_file_and_the_process_keeps_serving() {
    let mut server = ExampleServer::start();
    assert_eq!(
        printer(&server),
        ["printer.home.example. 3600 IN A 192.168.1.70"]
    );

    edit_zone(&server, 71);
    let killed = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -HUP");
    let want = ["printer.home.example. 3600 IN A 192.168.1.71"];
    let mut last = Vec::new();
    for _ in 0..POLLS {
        last = printer(&server);
        if last == want {
            break;
        }
        std::thread::sleep(POLL_EVERY);
    }
    assert_eq!(last, want, "the answer after SIGHUP");
    assert!(
        server.child.try_wait().expect("process status").is_none(),
        "edgewise-dns is still running after SIGHUP"
    );

    edit_zone(&server, 72);
    let (status, body) = post_reload(server.status_port);
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["reloaded"], true, "{body:#}");
    let changed = body["zones"]["changed"]
        .as_array()
        .expect("a list of changed zones");
    let zone = changed
        .iter()
        .find(|z| z["name"] == "home.example.")
        .unwrap_or_else(|| panic!("home.example. changed: {body:#}"));
    assert_eq!(zone["serial"], 2026112501, "{body:#}");
    assert!(zone["records"].as_u64().expect("a count") > 20, "{body:#}");
    assert!(
        body["health_checks"]["kept"]
            .as_array()
            .is_some_and(|k| !k.is_empty())
    );
    assert_eq!(
        printer(&server),
        ["printer.home.example. 3600 IN A 192.168.1.72"]
    );
    assert!(server.child.try_wait().expect("process status").is_none());
}
