//! Alias records to `[[edge_groups]]`: a name (the apex too) answered with the best healthy
//! CDN edges by latency, geolocation or weight, as Route 53 answers aliases to CloudFront —
//! A and AAAA from the edges' own addresses, the client located by EDNS Client Subnet, an
//! edge whose health check fails left out — and the config mistakes aliases can make.

use hickory_proto::rr::RecordType;

use crate::dns_routing::{
    R, REGIONS, a_rr, assert_answer, assert_ecs, assert_one_error, latency_networks, route_config,
    start_routing,
};
use crate::harness::{aaaa, rr};
use crate::health_checks::{HttpEndpoint, check, wait_healthy};

/// Three edges, one per region of [`REGIONS`], each with an IPv4 and (Seoul) IPv6 address.
fn edge_group(checks: [Option<&str>; 3]) -> String {
    let member = |address: &str, region: &str, geo: &str, check: Option<&str>| {
        let check = check.map_or(String::new(), |c| format!(", health_check = \"{c}\""));
        format!("{{ address = \"{address}\", region = \"{region}\", geo = {geo}{check} }}")
    };
    format!(
        "[[edge_groups]]\nid = \"cdn-edges\"\nmembers = [\n  {},\n  {},\n  {},\n  {},\n]\n",
        member("192.0.2.11", "seoul", "{ country = \"JP\" }", checks[0]),
        member("2001:db8::11", "seoul", "{ country = \"JP\" }", None),
        member("192.0.2.12", "frankfurt", "{ country = \"FR\" }", checks[1]),
        member("192.0.2.13", "virginia", "{ country = \"*\" }", checks[2]),
    )
}

fn alias(name: &str, rtype: &str, policy: &str) -> String {
    format!(
        r#"{{ name = "{name}", type = "{rtype}", alias = {{ edges = "cdn-edges", policy = "{policy}" }} }}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apex_alias_answers_the_nearest_edge_for_each_client_subnet() {
    let top = format!("{}{REGIONS}{}", latency_networks(), edge_group([None; 3]));
    let records = [alias("@", "A", "latency"), alias("@", "AAAA", "latency")];
    let routing = start_routing(&route_config(&top, "", &records), &[]).await;
    let apex = "route.test.";
    for (subnet, edge) in [
        ("192.168.1.0/24", "192.0.2.12"), // Paris → Frankfurt
        ("10.0.0.0/24", "192.0.2.11"),    // Tokyo → Seoul
        ("172.16.0.0/24", "192.0.2.13"),  // New York → Virginia
    ] {
        let reply = routing.ask(apex, RecordType::A, Some(subnet)).await;
        // CloudFront's 60 s alias TTL; no CNAME on the way.
        assert_answer(&reply, &[a_rr(apex, 60, edge)]);
        assert_ecs(&reply, subnet, 24);
    }
    // AAAA: only the edges with IPv6 addresses are candidates.
    let reply = routing
        .ask(apex, RecordType::AAAA, Some("172.16.0.0/24"))
        .await;
    assert_answer(
        &reply,
        &[rr(apex, RecordType::AAAA, 60, aaaa("2001:db8::11"))],
    );
    // The apex's own NS and SOA are still there.
    let reply = routing.ask(apex, RecordType::NS, None).await;
    assert_eq!(reply.answer.len(), 1, "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geolocation_aliases_pick_by_country_with_a_default() {
    let top = format!("{}{REGIONS}{}", latency_networks(), edge_group([None; 3]));
    let routing = start_routing(
        &route_config(&top, "", &[alias("www", "A", "geolocation")]),
        &[],
    )
    .await;
    let name = "www.route.test.";
    for (subnet, edge) in [
        ("10.0.0.0/24", "192.0.2.11"),    // JP
        ("192.168.1.0/24", "192.0.2.12"), // FR
        ("172.16.0.0/24", "192.0.2.13"),  // US: the default
        ("203.0.113.0/24", "192.0.2.13"), // unknown: the default
    ] {
        let reply = routing.ask(name, RecordType::A, Some(subnet)).await;
        assert_answer(&reply, &[a_rr(name, 60, edge)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_whose_check_fails_is_left_out_until_it_passes_again() {
    let seoul = HttpEndpoint::start(200, "ready").await;
    let frankfurt = HttpEndpoint::start(200, "ready").await;
    let checks = [
        check(
            "edge-seoul",
            "http",
            &format!("http://{}/healthz", seoul.addr),
            "",
        ),
        check(
            "edge-frankfurt",
            "http",
            &format!("http://{}/healthz", frankfurt.addr),
            "",
        ),
    ]
    .concat();
    let top = format!(
        "{}{REGIONS}{checks}{}",
        latency_networks(),
        edge_group([Some("edge-seoul"), Some("edge-frankfurt"), None])
    );
    let routing = start_routing(&route_config(&top, "", &[alias("@", "A", "latency")]), &[]).await;
    let apex = "route.test.";
    let tokyo = Some("10.0.0.0/24");
    wait_healthy(&routing, "edge-seoul", true).await;
    let reply = routing.ask(apex, RecordType::A, tokyo).await;
    assert_answer(&reply, &[a_rr(apex, 60, "192.0.2.11")]);

    // Seoul down: Tokyo's viewers go to the next nearest healthy edge, Frankfurt.
    seoul.set_status(503);
    wait_healthy(&routing, "edge-seoul", false).await;
    let reply = routing.ask(apex, RecordType::A, tokyo).await;
    assert_answer(&reply, &[a_rr(apex, 60, "192.0.2.12")]);

    seoul.set_status(200);
    wait_healthy(&routing, "edge-seoul", true).await;
    let reply = routing.ask(apex, RecordType::A, tokyo).await;
    assert_answer(&reply, &[a_rr(apex, 60, "192.0.2.11")]);
}

#[test]
fn an_alias_naming_no_edge_group_is_rejected() {
    assert_one_error(
        "",
        "",
        &[alias("@", "A", "weighted")],
        &format!("{R}.alias.edges"),
        "no [[edge_groups]] entry has id \"cdn-edges\"",
    );
}

#[test]
fn an_alias_with_values_or_of_another_type_is_rejected() {
    let top = format!("{}{REGIONS}{}", latency_networks(), edge_group([None; 3]));
    assert_one_error(
        &top,
        "",
        &[r#"{ name = "x", type = "A", values = ["192.0.2.1"], alias = { edges = "cdn-edges" } }"#.to_string()],
        &format!("{R}.values"),
        "leave values out",
    );
    assert_one_error(
        &top,
        "",
        &[alias("x", "CNAME", "latency")],
        &format!("{R}.type"),
        "an alias to edges is an A or AAAA record, not CNAME",
    );
    assert_one_error(
        &top,
        "",
        &[alias("x", "A", "fastest")],
        &format!("{R}.alias.policy"),
        "\"fastest\" is not an alias policy",
    );
}

#[test]
fn a_latency_alias_needs_a_region_on_every_edge() {
    let top = format!(
        "{}{REGIONS}[[edge_groups]]\nid = \"cdn-edges\"\nmembers = [{{ address = \"192.0.2.1\", region = \"seoul\" }}, {{ address = \"192.0.2.2\" }}]\n",
        latency_networks()
    );
    assert_one_error(
        &top,
        "",
        &[alias("@", "A", "latency")],
        &format!("{R}.alias.policy"),
        "latency routing reads each edge's region, and edge 192.0.2.2 of group \"cdn-edges\" has none",
    );
}

#[test]
fn edge_group_mistakes_are_reported_at_the_member() {
    let top = format!(
        "{REGIONS}[[edge_groups]]\nid = \"cdn-edges\"\nmembers = [{{ address = \"edge-1\" }}, {{ address = \"192.0.2.2\", region = \"mars\", health_check = \"nope\" }}]\n"
    );
    let text = route_config(&top, "", &[]);
    let path = std::path::PathBuf::from("/nonexistent-edgewise-test/edgewise.toml");
    let errors = crate::dns_routing::errors_of(&text, &path);
    let keys: Vec<&str> = errors.iter().map(|e| e.key_path.as_str()).collect();
    assert_eq!(
        keys,
        [
            "edge_groups[0].members[0].address",
            "edge_groups[0].members[1].region",
            "edge_groups[0].members[1].health_check",
        ],
        "{errors:#?}"
    );
}

#[test]
fn an_alias_beside_routed_sets_of_its_name_and_type_is_rejected() {
    let top = format!("{}{REGIONS}{}", latency_networks(), edge_group([None; 3]));
    let routed = crate::dns_routing::routed(
        "www",
        "A",
        30,
        "other",
        r#"region = "seoul""#,
        &["192.0.2.99"],
        None,
    );
    for records in [
        [alias("www", "A", "latency"), routed.clone()],
        [routed.clone(), alias("www", "A", "latency")],
    ] {
        let text = route_config(&top, "", &records);
        let path = std::path::PathBuf::from("/nonexistent-edgewise-test/edgewise.toml");
        let errors = crate::dns_routing::errors_of(&text, &path);
        assert!(
            errors.iter().any(|e| e
                .message
                .contains("www.route.test. A has an alias and other record sets")),
            "{errors:#?}"
        );
    }
}
