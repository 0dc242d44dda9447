//! The DNS console in headless Chromium (the CDP driver of `browser.rs`), against a real DNS
//! server: charts by rcode and by zone move with traffic, the top names list the names asked
//! for, routed answers show each set's count and share, and a health check's flips appear in
//! the recent changes, newest first. At a phone's width nothing overflows the page.

use std::cell::Cell;
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::browser::{Browser, Page};
use crate::console::summary;
use crate::dns_routing::{Routing, plain, route_config, routed, start_routing};
use crate::harness::q;
use crate::health_checks::{TcpEndpoint, check, watchers};

const WAIT: Duration = Duration::from_secs(20);

/// Sends queries for `www` and `lb` over UDP until `predicate` holds in the page (or the
/// wait times out); returns how many `lb` queries were sent.
async fn traffic_until(routing: &Routing, page: &Page, predicate: &str) -> u64 {
    let lb_sent = Cell::new(0);
    let traffic = async {
        loop {
            for _ in 0..8 {
                routing
                    .send_udp(&q("WWW.route.test.", RecordType::A).bytes())
                    .await;
            }
            routing
                .send_udp(&q("lb.route.test.", RecordType::A).bytes())
                .await;
            lb_sent.set(lb_sent.get() + 1);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        () = page.wait_for(predicate, WAIT) => {}
        () = traffic => unreachable!("the traffic loop never ends"),
    }
    lb_sent.get()
}

/// The text of every cell of table `id`'s body, row by row.
async fn table(page: &Page, id: &str) -> Vec<Vec<String>> {
    let rows = page
        .eval(&format!(
            "[...document.getElementById('{id}').tBodies[0].rows]\
             .map((r) => [...r.cells].map((c) => c.textContent))"
        ))
        .await;
    serde_json::from_value(rows).expect("rows of cells")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_console_shows_rates_top_names_routed_sets_and_health_flips() {
    let mut endpoint = TcpEndpoint::start().await;
    let records: Vec<String> = [
        plain("www", "A", 60, &["192.0.2.10"]),
        routed("lb", "A", 60, "blue", "weight = 1", &["192.0.2.21"], None),
        routed("lb", "A", 60, "green", "weight = 1", &["192.0.2.22"], None),
    ]
    .into_iter()
    .chain(watchers(&["port"]))
    .collect();
    let config = route_config(
        &check("port", "tcp", &endpoint.addr.to_string(), ""),
        "",
        &records,
    );
    let routing = start_routing(&config, &[]).await;
    let browser = Browser::launch().await;
    let page = browser.open(&format!("http://{}/", routing.status())).await;

    // The zones and health checks of the config, before any traffic.
    page.wait_for(
        "document.querySelector('#zones tbody th')?.textContent === 'route.test.' && \
         document.querySelector('#checks tbody th')?.textContent === 'port' && \
         !document.getElementById('dns-health').hidden",
        WAIT,
    )
    .await;

    // Both charts move with traffic.
    traffic_until(
        &routing,
        &page,
        "Edgewise.charts['dns-chart'].latest('NOERROR') > 0 && \
         Edgewise.charts['dns-zones-chart'].latest('route.test') > 0 && \
         Edgewise.charts['dns-zones-chart'].plot.series.some((s) => s.label === 'route.test' && s.show)",
    )
    .await;

    // The name asked for leads the top names, lower case, with the zone it is in.
    let lb_sent = traffic_until(
        &routing,
        &page,
        "[...document.querySelectorAll('#top-names tbody tr')].some((r) => \
         r.cells[0].textContent === 'www.route.test' && r.cells[2].textContent === 'route.test')",
    )
    .await;
    let top = table(&page, "top-names").await;
    assert_eq!(
        top[0][..3],
        ["www.route.test", "A", "route.test"],
        "{top:?}"
    );
    let estimate: u64 = top[0][3].replace(',', "").parse().expect("a count");
    assert!(estimate > 0, "{top:?}");
    let note = page
        .eval("document.getElementById('dns-names-note').textContent")
        .await;
    let every = (note.as_str().unwrap().split("now 1 in ").nth(1))
        .and_then(|rest| rest.split(' ').next()?.replace(',', "").parse::<u32>().ok())
        .unwrap_or_else(|| panic!("the sampling rate in the note: {note}"));
    assert!(every.is_power_of_two(), "{note}");

    // Each routed set of lb with its answers; together, every lb query sent so far.
    page.wait_for(
        "['blue', 'green'].every((set) => [...document.querySelectorAll('#routed tbody tr')]\
         .some((r) => r.cells[0].textContent === 'lb.route.test' && r.cells[2].textContent === set \
         && Number(r.cells[3].textContent.replace(/,/g, '')) > 0))",
        WAIT,
    )
    .await;
    let json = summary(routing.status()).await;
    let answers = |set: &str| -> u64 {
        json["routed"]
            .as_array()
            .expect("routed rows")
            .iter()
            .find(|r| r["name"] == "lb.route.test" && r["set_id"] == set)
            .unwrap_or_else(|| panic!("set {set}: {json}"))["answers"]
            .as_u64()
            .unwrap()
    };
    assert!(
        answers("blue") + answers("green") >= lb_sent,
        "{lb_sent} sent: {json}"
    );
    assert_eq!(json["routed"][0]["policy"], "weighted", "{json}");
    assert!(json["queries_by_zone"]["route.test"].as_u64().unwrap() > lb_sent);
    let routed_rows = table(&page, "routed").await;
    let lb_shares: Vec<&str> = (routed_rows.iter())
        .filter(|r| r[0] == "lb.route.test")
        .map(|r| r[4].as_str())
        .collect();
    assert!(
        lb_shares.len() == 2 && lb_shares.iter().all(|s| s.ends_with(" %")),
        "{routed_rows:?}"
    );

    // The check's flips, newest first: unhealthy when its endpoint stops, healthy again
    // when it is back.
    let addr = endpoint.addr;
    endpoint.stop().await;
    page.wait_for(
        "document.querySelector('#flips tbody tr')?.cells[1].textContent === 'unhealthy'",
        WAIT,
    )
    .await;
    let _endpoint = TcpEndpoint::start_at(addr).await;
    page.wait_for(
        "document.querySelectorAll('#flips tbody tr').length === 2 && \
         document.querySelector('#flips tbody tr').cells[1].textContent === 'healthy'",
        WAIT,
    )
    .await;
    let flips = table(&page, "flips").await;
    assert_eq!(flips[0][0], "port", "{flips:?}");
    assert_eq!(flips[1][..2], ["port", "unhealthy"], "{flips:?}");
    assert!(flips[1][2].ends_with(" s ago"), "{flips:?}");
    assert!(flips[1][3] != "–", "the reason is shown: {flips:?}");
    let datetime = page
        .eval("document.querySelector('#flips tbody time').dateTime")
        .await;
    assert!(
        datetime.as_str().is_some_and(|d| d.ends_with('Z')),
        "an ISO time: {datetime}"
    );
    page.assert_no_errors();

    // A phone: tables scroll in their own boxes, the page itself does not.
    // The viewport changes asynchronously: wait for the page to have the phone's width.
    page.viewport(390, 844, true).await;
    page.wait_for(
        "innerWidth === 390 && document.documentElement.scrollWidth <= innerWidth",
        Duration::from_secs(5),
    )
    .await;
    page.assert_no_errors();
}
