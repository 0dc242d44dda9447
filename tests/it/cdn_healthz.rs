//! `GET /healthz` on edgewise-cdn: what health checks (edgewise-dns alias records to edge
//! groups, load balancers) ask an edge by address — 200 while every distribution has a
//! reachable origin, 503 with the reason when one has none — without taking the path from
//! any distribution.

use http::Method;
use serde_json::Value;

use crate::cdn_harness::*;

fn report_of(resp: &Resp) -> Value {
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    serde_json::from_slice(&resp.body).unwrap_or_else(|e| panic!("{e}: {}", resp.text()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_asked_by_address_says_it_is_ready_and_a_distribution_keeps_its_path() {
    let origin = Origin::start().await;
    origin.route("*", Reply::ok("the origin's own healthz"));
    let cdn = Cdn::site(&origin, "").await;
    let by_address = cdn.http.unwrap().to_string();
    for proto in [Proto::H1, Proto::H2] {
        let resp = cdn
            .get("/healthz")
            .plain()
            .host(&by_address)
            .proto(proto)
            .send()
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        let report = report_of(&resp);
        assert_eq!(report["ready"], true, "{report:#}");
        assert_eq!(report["distributions"][0]["id"], "site");
        assert_eq!(report["distributions"][0]["origins"][0]["reachable"], true);
    }
    // The probe only connects: the origin saw no request.
    assert_eq!(origin.total(), 0);
    // A distribution's host gets its own /healthz from its origin.
    let resp = cdn.get("/healthz").send().await;
    assert_eq!(resp.text(), "the origin's own healthz");
    assert_eq!(origin.total(), 1);
    // The admin listener answers it without the token.
    let resp = cdn.admin(Method::GET, "/healthz", None, "").await;
    assert_eq!(resp.status, 200);
    assert_eq!(report_of(&resp)["ready"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distribution_without_a_reachable_origin_makes_the_edge_unready() {
    let origin = Origin::start().await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let body = format!(
        "{}\n[[cdn.distributions]]\nid = \"down\"\nhosts = [\"down.test\"]\n[[cdn.distributions.origins]]\nid = \"gone\"\nurl = \"http://{closed}\"\n[[cdn.distributions.behaviors]]\npath = \"*\"\norigin = \"gone\"\n",
        site(&origin.url(), "")
    );
    let cdn = Cdn::start(&config("", &body)).await;
    let resp = cdn.get("/healthz").host("127.0.0.1").send().await;
    assert_eq!(resp.status, 503, "{}", resp.text());
    let report = report_of(&resp);
    assert_eq!(report["ready"], false);
    let down = &report["distributions"][1];
    assert_eq!(down["id"], "down");
    assert_eq!(down["reachable"], false);
    let error = down["origins"][0]["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("cannot connect to 127.0.0.1:{}", closed.port())),
        "{error}"
    );
    assert_eq!(report["distributions"][0]["reachable"], true);

    // One check per distribution: each answers for its own origins.
    let site = cdn
        .get("/healthz?distribution=site")
        .host("127.0.0.1")
        .send()
        .await;
    assert_eq!(site.status, 200, "{}", site.text());
    assert_eq!(
        report_of(&site)["distributions"].as_array().unwrap().len(),
        1
    );
    let down = cdn
        .get("/healthz?distribution=down")
        .host("127.0.0.1")
        .send()
        .await;
    assert_eq!(down.status, 503, "{}", down.text());
    let unknown = cdn
        .get("/healthz?distribution=nope")
        .host("127.0.0.1")
        .send()
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text());
}
