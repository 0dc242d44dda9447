//! `[[health_checks]]`: validated into [`HealthCheckConfig`]s, children resolved to indices.

use std::collections::HashMap;
use std::time::Duration;

use hyper::Uri;
use toml::Spanned;

use super::diag::{ConfigError, SourceMap};
use super::raw::RawHealthCheck;
use crate::health::{CheckKind, HealthCheckConfig, HttpCheck, ProbeTimeouts, StatusMatch};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
/// Route 53's limit on the search string.
const MAX_SEARCH_STRING: usize = 255;
/// Route 53: HTTP(S) must connect within 4 s and answer within 2 s more.
const HTTP_TIMEOUTS: ProbeTimeouts = ProbeTimeouts {
    connect: Duration::from_secs(4),
    response: Duration::from_secs(2),
    total: Duration::from_secs(6),
};
/// Route 53: TCP must connect within 10 s.
const TCP_TIMEOUTS: ProbeTimeouts = ProbeTimeouts {
    connect: Duration::from_secs(10),
    response: Duration::from_secs(10),
    total: Duration::from_secs(10),
};

/// Checks every health check; ids are resolved so records can refer to them by index.
pub(super) fn validate(
    raw: &[Spanned<RawHealthCheck>],
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Vec<HealthCheckConfig> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, check) in raw.iter().enumerate() {
        let id = check.get_ref().id.get_ref().as_str();
        if id.is_empty() {
            errors.push(map.error(
                check.get_ref().id.span(),
                format!("health_checks[{i}].id"),
                "must not be empty",
            ));
        } else if index.insert(id, i).is_some() {
            errors.push(map.error(
                check.get_ref().id.span(),
                format!("health_checks[{i}].id"),
                format!("{id:?} is used by another health check"),
            ));
        }
    }
    let checks: Vec<HealthCheckConfig> = raw
        .iter()
        .enumerate()
        .filter_map(|(i, check)| {
            validate_one(
                check.get_ref(),
                &format!("health_checks[{i}]"),
                &index,
                map,
                errors,
            )
        })
        .collect();
    if checks.len() == raw.len() {
        check_cycles(&checks, raw, map, errors);
    }
    checks
}

fn validate_one(
    raw: &RawHealthCheck,
    key: &str,
    index: &HashMap<&str, usize>,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<HealthCheckConfig> {
    let before = errors.len();
    let kind_name = raw.kind.get_ref().as_str();
    let mut not_for = |present: Option<std::ops::Range<usize>>, field: &str, types: &str| {
        if let Some(span) = present {
            errors.push(map.error(
                span,
                format!("{key}.{field}"),
                format!("only applies to {types} checks, not {kind_name}"),
            ));
        }
    };
    let is_http = matches!(kind_name, "http" | "https");
    let is_calculated = kind_name == "calculated";
    if !is_http {
        not_for(
            raw.expect_status.as_ref().map(Spanned::span),
            "expect_status",
            "http and https",
        );
        not_for(
            raw.search_string.as_ref().map(Spanned::span),
            "search_string",
            "http and https",
        );
    }
    if kind_name != "https" {
        not_for(
            raw.verify_tls.as_ref().map(Spanned::span),
            "verify_tls",
            "https",
        );
    }
    if !is_calculated {
        not_for(
            raw.children.as_ref().map(Spanned::span),
            "children",
            "calculated",
        );
        not_for(
            raw.healthy_threshold.as_ref().map(Spanned::span),
            "healthy_threshold",
            "calculated",
        );
    } else {
        not_for(
            raw.target.as_ref().map(Spanned::span),
            "target",
            "http, https and tcp",
        );
        not_for(
            raw.interval.as_ref().map(Spanned::span),
            "interval",
            "http, https and tcp",
        );
        not_for(
            raw.timeout.as_ref().map(Spanned::span),
            "timeout",
            "http, https and tcp",
        );
    }
    let kind = match kind_name {
        "http" | "https" => http_kind(raw, key, kind_name == "https", map, errors),
        "tcp" => tcp_kind(raw, key, map, errors),
        "calculated" => calculated_kind(raw, key, index, map, errors),
        other => {
            errors.push(map.error(
                raw.kind.span(),
                format!("{key}.type"),
                format!("{other:?} is not a check type (expected http, https, tcp or calculated)"),
            ));
            None
        }
    };
    let interval = match &raw.interval {
        Some(i) if i.get_ref().0 < Duration::from_secs(1) => {
            errors.push(map.error(i.span(), format!("{key}.interval"), "must be at least 1s"));
            DEFAULT_INTERVAL
        }
        Some(i) => i.get_ref().0,
        None => DEFAULT_INTERVAL,
    };
    let defaults = if kind_name == "tcp" {
        TCP_TIMEOUTS
    } else {
        HTTP_TIMEOUTS
    };
    let timeouts = match &raw.timeout {
        Some(t) if t.get_ref().0.is_zero() => {
            errors.push(map.error(t.span(), format!("{key}.timeout"), "must be longer than 0s"));
            defaults
        }
        Some(t) => ProbeTimeouts {
            connect: t.get_ref().0,
            response: t.get_ref().0,
            total: t.get_ref().0,
        },
        None => defaults,
    };
    let threshold =
        |value: &Option<Spanned<i64>>, field: &str, errors: &mut Vec<ConfigError>| -> Option<u32> {
            let v = value.as_ref()?;
            if (1..=10).contains(v.get_ref()) {
                Some(*v.get_ref() as u32)
            } else {
                errors.push(map.error(
                    v.span(),
                    format!("{key}.{field}"),
                    format!("{} is out of range (expected 1 to 10)", v.get_ref()),
                ));
                None
            }
        };
    let failure_threshold = threshold(&raw.failure_threshold, "failure_threshold", errors)
        .unwrap_or(DEFAULT_FAILURE_THRESHOLD);
    let success_threshold =
        threshold(&raw.success_threshold, "success_threshold", errors).unwrap_or(failure_threshold);
    let kind = kind?;
    (errors.len() == before).then(|| HealthCheckConfig {
        id: raw.id.get_ref().clone(),
        kind,
        interval,
        timeouts,
        failure_threshold,
        success_threshold,
        invert: raw.invert.unwrap_or(false),
    })
}

fn http_kind(
    raw: &RawHealthCheck,
    key: &str,
    https: bool,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<CheckKind> {
    let Some(target) = &raw.target else {
        let example = if https {
            "https://192.168.1.20/healthz"
        } else {
            "http://192.168.1.20:8080/healthz"
        };
        errors.push(map.error(
            raw.id.span(),
            format!("{key}.target"),
            format!("is required (e.g. \"{example}\")"),
        ));
        return None;
    };
    let scheme = if https { "https" } else { "http" };
    let bad = |why: &str| {
        map.error(
            target.span(),
            format!("{key}.target"),
            format!("{:?} {why}", target.get_ref()),
        )
    };
    let uri: Uri = match target.get_ref().parse() {
        Ok(uri) => uri,
        Err(_) => {
            errors.push(bad(&format!(
                "is not a URL (expected e.g. \"{scheme}://host:port/path\")"
            )));
            return None;
        }
    };
    if uri.scheme_str() != Some(scheme) {
        errors.push(bad(&format!(
            "must start with {scheme}:// for a {scheme} check"
        )));
        return None;
    }
    let Some(authority) = uri.authority() else {
        errors.push(bad("has no host"));
        return None;
    };
    let expect_status = match &raw.expect_status {
        None => StatusMatch::SuccessOrRedirect,
        Some(list) if list.get_ref().is_empty() => {
            errors.push(map.error(
                list.span(),
                format!("{key}.expect_status"),
                "must list at least one status",
            ));
            StatusMatch::SuccessOrRedirect
        }
        Some(list) => {
            let mut statuses = Vec::new();
            for status in list.get_ref() {
                match u16::try_from(*status) {
                    Ok(s) if (100..=599).contains(&s) => statuses.push(s),
                    _ => errors.push(map.error(
                        list.span(),
                        format!("{key}.expect_status"),
                        format!("{status} is not an HTTP status (100 to 599)"),
                    )),
                }
            }
            StatusMatch::Listed(statuses)
        }
    };
    if let Some(search) = &raw.search_string {
        let len = search.get_ref().len();
        if len == 0 || len > MAX_SEARCH_STRING {
            errors.push(map.error(
                search.span(),
                format!("{key}.search_string"),
                format!("must be 1 to {MAX_SEARCH_STRING} bytes long, not {len}"),
            ));
        }
    }
    let check = HttpCheck {
        host: authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
        path_and_query: uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string()),
        host_header: authority.as_str().to_string(),
        expect_status,
        search_string: raw.search_string.as_ref().map(|s| s.get_ref().clone()),
    };
    Some(if https {
        CheckKind::Https {
            check,
            verify_tls: raw.verify_tls.as_ref().is_some_and(|v| *v.get_ref()),
        }
    } else {
        CheckKind::Http(check)
    })
}

fn tcp_kind(
    raw: &RawHealthCheck,
    key: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<CheckKind> {
    let Some(target) = &raw.target else {
        errors.push(map.error(
            raw.id.span(),
            format!("{key}.target"),
            "is required (e.g. \"192.168.1.21:8080\")",
        ));
        return None;
    };
    let text = target.get_ref();
    let parsed = text.rsplit_once(':').and_then(|(host, port)| {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some((
            host.to_string(),
            port.parse::<u16>().ok().filter(|p| *p > 0)?,
        ))
        .filter(|(h, _)| !h.is_empty())
    });
    match parsed {
        Some((host, port)) => Some(CheckKind::Tcp { host, port }),
        None => {
            errors.push(map.error(
                target.span(),
                format!("{key}.target"),
                format!(
                    "{text:?} is not host:port (e.g. \"192.168.1.21:8080\" or \"[fd00::21]:8080\")"
                ),
            ));
            None
        }
    }
}

fn calculated_kind(
    raw: &RawHealthCheck,
    key: &str,
    index: &HashMap<&str, usize>,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<CheckKind> {
    let Some(children) = &raw.children else {
        errors.push(map.error(
            raw.id.span(),
            format!("{key}.children"),
            "is required for a calculated check (ids of other checks)",
        ));
        return None;
    };
    let mut resolved = Vec::new();
    for (i, child) in children.get_ref().iter().enumerate() {
        match index.get(child.as_str()) {
            Some(_) if child == raw.id.get_ref() => {
                errors.push(map.error(
                    children.span(),
                    format!("{key}.children[{i}]"),
                    "a calculated check cannot be its own child",
                ));
            }
            Some(&c) => resolved.push(c),
            None => errors.push(map.error(
                children.span(),
                format!("{key}.children[{i}]"),
                format!("no health check has id {child:?}"),
            )),
        }
    }
    if children.get_ref().is_empty() {
        errors.push(map.error(
            children.span(),
            format!("{key}.children"),
            "must name at least one check",
        ));
    }
    let healthy_threshold = match &raw.healthy_threshold {
        None => 1,
        Some(t) => match usize::try_from(*t.get_ref()) {
            Ok(n) if n <= children.get_ref().len() => n,
            _ => {
                let max = children.get_ref().len();
                errors.push(map.error(
                    t.span(),
                    format!("{key}.healthy_threshold"),
                    format!(
                        "{} is out of range (expected 0 to {max}, the number of children)",
                        t.get_ref()
                    ),
                ));
                1
            }
        },
    };
    Some(CheckKind::Calculated {
        children: resolved,
        healthy_threshold,
    })
}

/// Calculated checks that depend on themselves through others can never settle.
fn check_cycles(
    checks: &[HealthCheckConfig],
    raw: &[Spanned<RawHealthCheck>],
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) {
    for start in 0..checks.len() {
        let mut stack = vec![start];
        let mut seen = vec![false; checks.len()];
        while let Some(current) = stack.pop() {
            let CheckKind::Calculated { children, .. } = &checks[current].kind else {
                continue;
            };
            for &child in children {
                if child == start {
                    let id = &checks[start].id;
                    errors.push(map.error(
                        raw[start].get_ref().id.span(),
                        format!("health_checks[{start}].children"),
                        format!("calculated check {id:?} depends on itself through its children"),
                    ));
                    return;
                }
                if !seen[child] {
                    seen[child] = true;
                    stack.push(child);
                }
            }
        }
    }
}
