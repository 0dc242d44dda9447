//! Health checks, run on a timer in the background and published as lock-free flags.
//!
//! Route 53's rules: a check starts healthy (an inverted one unhealthy) until results arrive;
//! it flips only after `failure_threshold` consecutive failures (or `success_threshold`
//! consecutive successes); calculated checks are healthy when at least `healthy_threshold`
//! children are. Readers (DNS answers) only load an atomic flag.

pub mod flips;
mod metrics;
pub mod probe;
mod runner;
pub mod status;

pub use flips::{Flip, Flips};
pub use metrics::HealthCollector;
pub use runner::{HealthChanges, HealthChecks, StagedHealth};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

use crate::metrics::Histogram;

/// Validated `[[health_checks]]` entry. Equality is "same definition" for endpoint checks,
/// which a reload uses to decide whether a check keeps its state and timer.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckConfig {
    pub id: String,
    pub kind: CheckKind,
    /// Time between probes. Defaults to 30 s; at least 1 s.
    pub interval: Duration,
    pub timeouts: ProbeTimeouts,
    /// Consecutive failures that make a healthy check unhealthy. Defaults to 3.
    pub failure_threshold: u32,
    /// Consecutive successes that make an unhealthy check healthy. Defaults to `failure_threshold`.
    pub success_threshold: u32,
    /// Report healthy when the endpoint fails, and the other way round.
    pub invert: bool,
}

/// What a check probes.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    Http(HttpCheck),
    /// Certificates are not verified unless `verify_tls` (Route 53 never verifies them).
    Https {
        check: HttpCheck,
        verify_tls: bool,
    },
    Tcp {
        host: String,
        port: u16,
    },
    /// Indices of children in the check list; healthy when at least `healthy_threshold` are.
    Calculated {
        children: Vec<usize>,
        healthy_threshold: usize,
    },
}

/// An HTTP(S) GET target and how to judge the reply.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    pub host: String,
    pub port: u16,
    pub path_and_query: String,
    /// `Host` header: the URL's authority.
    pub host_header: String,
    pub expect_status: StatusMatch,
    /// Must be wholly inside the first 5,120 bytes of the body (case-sensitive).
    pub search_string: Option<String>,
}

/// Which statuses count as healthy.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusMatch {
    /// Any 2xx or 3xx (Route 53's rule).
    SuccessOrRedirect,
    Listed(Vec<u16>),
}

/// Time limits of one probe. Route 53: connect 4 s and response 2 s for HTTP(S), connect
/// 10 s for TCP; a configured `timeout` bounds the whole probe instead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeTimeouts {
    pub connect: Duration,
    pub response: Duration,
    pub total: Duration,
}

/// Live state of every check, indexed like the config list. A reload builds a new table in
/// which unchanged checks share their [`CheckState`] with the old one, so their state carries
/// over without copying and their probe tasks keep writing where answers read.
#[derive(Debug)]
pub struct HealthTable {
    checks: Vec<Arc<CheckState>>,
    configs: Vec<HealthCheckConfig>,
}

#[derive(Debug)]
struct CheckState {
    id: String,
    kind: &'static str,
    target: String,
    healthy: AtomicBool,
    status: Mutex<CheckStatus>,
    /// Probe durations, kept with the state across reloads that keep the check.
    latency: Histogram,
}

/// What the status page shows about one check.
#[derive(Debug, Clone, Default)]
pub struct CheckStatus {
    pub healthy: bool,
    /// Outcome of the last probe after inversion: `Ok` or why it failed.
    pub last_result: Option<Result<(), String>>,
    pub last_latency: Option<Duration>,
    pub last_checked: Option<SystemTime>,
    pub last_change: Option<SystemTime>,
    pub consecutive_successes: u32,
    pub consecutive_failures: u32,
    pub probes_ok: u64,
    pub probes_failed: u64,
    /// The last state changes, for the console.
    pub flips: Flips,
}

/// A status row: identity plus the current status.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub id: String,
    pub kind: &'static str,
    pub target: String,
    pub status: CheckStatus,
}

// === impl HealthTable ===

impl HealthTable {
    /// Initial states: healthy, inverted checks unhealthy, calculated ones from their children.
    pub fn new(configs: &[HealthCheckConfig]) -> HealthTable {
        let checks = configs
            .iter()
            .map(|c| Arc::new(CheckState::new(c)))
            .collect();
        HealthTable::with_states(checks, configs)
    }

    /// A table over `checks` (one per config, in order), calculated checks derived.
    fn with_states(checks: Vec<Arc<CheckState>>, configs: &[HealthCheckConfig]) -> HealthTable {
        let table = HealthTable {
            checks,
            configs: configs.to_vec(),
        };
        table.recompute_calculated();
        table
    }

    /// Whether check `index` is healthy now. Lock-free; this is what DNS answers read.
    pub fn is_healthy(&self, index: usize) -> bool {
        self.checks
            .get(index)
            .is_none_or(|c| c.healthy.load(Ordering::Acquire))
    }

    /// Every check's current status, for the status page and metrics.
    pub fn report(&self) -> Vec<CheckReport> {
        self.checks
            .iter()
            .map(|c| CheckReport {
                id: c.id.clone(),
                kind: c.kind,
                target: c.target.clone(),
                status: c.status.lock().map(|s| s.clone()).unwrap_or_default(),
            })
            .collect()
    }

    /// Re-derives calculated checks from their children, until nothing changes (calculated
    /// checks may have calculated children; config validation rules out cycles).
    fn recompute_calculated(&self) {
        for _ in 0..=self.configs.len() {
            let mut changed = false;
            for (index, config) in self.configs.iter().enumerate() {
                let CheckKind::Calculated {
                    children,
                    healthy_threshold,
                } = &config.kind
                else {
                    continue;
                };
                let healthy_children = children.iter().filter(|&&c| self.is_healthy(c)).count();
                let healthy = (healthy_children >= *healthy_threshold) != config.invert;
                let check = &self.checks[index];
                if check.healthy.swap(healthy, Ordering::AcqRel) != healthy {
                    changed = true;
                    let result = if healthy {
                        Ok(())
                    } else {
                        Err(self.calculated_reason(children, *healthy_threshold, config.invert))
                    };
                    log_change(&check.id, &result);
                    if let Ok(mut status) = check.status.lock() {
                        let now = SystemTime::now();
                        status.healthy = healthy;
                        status.last_change = Some(now);
                        status.flips.push(Flip {
                            at: now,
                            healthy,
                            reason: result.clone().err(),
                        });
                        status.last_result = Some(result);
                    }
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// Why a calculated check is unhealthy: how many of its children are healthy against its
    /// threshold and, unless inverted, each unhealthy child's own reason, so the log and the
    /// status page lead to the probe that failed.
    fn calculated_reason(&self, children: &[usize], threshold: usize, invert: bool) -> String {
        let healthy = children.iter().filter(|&&c| self.is_healthy(c)).count();
        let counts = format!("{healthy} of {} children healthy", children.len());
        if invert {
            return format!("{counts}, at least {threshold} (inverted check)");
        }
        let failing: Vec<String> = children
            .iter()
            .filter(|&&c| !self.is_healthy(c))
            .map(|&c| {
                let child = &self.checks[c];
                let last = child.status.lock().ok().and_then(|s| s.last_result.clone());
                match last {
                    Some(Err(reason)) => format!("{}: {reason}", child.id),
                    _ => format!("{}: unhealthy, not probed yet", child.id),
                }
            })
            .collect();
        format!("{counts}, needs {threshold}: {}", failing.join("; "))
    }
}

// === impl CheckState ===

impl CheckState {
    fn new(config: &HealthCheckConfig) -> CheckState {
        CheckState {
            id: config.id.clone(),
            kind: config.kind.name(),
            target: config.kind.target(),
            healthy: AtomicBool::new(!config.invert),
            status: Mutex::new(CheckStatus {
                healthy: !config.invert,
                ..CheckStatus::default()
            }),
            latency: metrics::probe_histogram(),
        }
    }

    /// Records one probe outcome (before inversion); returns whether the state flipped.
    fn record(
        &self,
        config: &HealthCheckConfig,
        outcome: Result<(), String>,
        latency: Duration,
    ) -> bool {
        let Ok(mut status) = self.status.lock() else {
            return false;
        };
        let outcome = match (outcome, config.invert) {
            (Ok(()), true) => Err("endpoint is up (inverted check)".to_string()),
            (Err(_), true) => Ok(()),
            (outcome, false) => outcome,
        };
        let flipped = observe(
            &mut status,
            outcome.is_ok(),
            config.failure_threshold,
            config.success_threshold,
        );
        match &outcome {
            Ok(()) => status.probes_ok += 1,
            Err(_) => status.probes_failed += 1,
        }
        status.last_latency = Some(latency);
        self.latency
            .observe(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        status.last_checked = Some(SystemTime::now());
        if flipped {
            status.last_change = status.last_checked;
            self.healthy.store(status.healthy, Ordering::Release);
            let flip = Flip {
                at: status.last_checked.unwrap_or_else(SystemTime::now),
                healthy: status.healthy,
                reason: outcome.clone().err(),
            };
            status.flips.push(flip);
            // A flip follows the result that completed the run, so that result says why.
            log_change(&self.id, &outcome);
        }
        status.last_result = Some(outcome);
        flipped
    }
}

/// Logs a flip of check `id`, caused by `result`: a flip to unhealthy always has a reason.
fn log_change(id: &str, result: &Result<(), String>) {
    match result {
        Ok(()) => info!(check = id, "health check is now healthy"),
        Err(reason) => warn!(check = id, reason, "health check is now unhealthy"),
    }
}

/// Hysteresis: counts consecutive results and flips after enough of them (pure).
fn observe(
    status: &mut CheckStatus,
    ok: bool,
    failure_threshold: u32,
    success_threshold: u32,
) -> bool {
    if ok {
        status.consecutive_successes = status.consecutive_successes.saturating_add(1);
        status.consecutive_failures = 0;
    } else {
        status.consecutive_failures = status.consecutive_failures.saturating_add(1);
        status.consecutive_successes = 0;
    }
    let flip = if status.healthy {
        status.consecutive_failures >= failure_threshold
    } else {
        status.consecutive_successes >= success_threshold
    };
    if flip {
        status.healthy = !status.healthy;
    }
    flip
}

// === impl CheckKind ===

impl CheckKind {
    fn name(&self) -> &'static str {
        match self {
            CheckKind::Http(_) => "http",
            CheckKind::Https { .. } => "https",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Calculated { .. } => "calculated",
        }
    }

    fn target(&self) -> String {
        match self {
            CheckKind::Http(c) => format!("http://{}{}", c.host_header, c.path_and_query),
            CheckKind::Https { check: c, .. } => {
                format!("https://{}{}", c.host_header, c.path_and_query)
            }
            CheckKind::Tcp { host, port } => format!("{host}:{port}"),
            CheckKind::Calculated {
                children,
                healthy_threshold,
            } => {
                format!("{healthy_threshold} of {} children", children.len())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A TCP check of `127.0.0.1:port` that flips after one result.
    fn tcp_check(id: &str, port: u16) -> HealthCheckConfig {
        HealthCheckConfig {
            id: id.into(),
            kind: CheckKind::Tcp {
                host: "127.0.0.1".into(),
                port,
            },
            interval: Duration::from_secs(1),
            timeouts: ProbeTimeouts {
                connect: Duration::from_secs(1),
                response: Duration::from_secs(1),
                total: Duration::from_secs(1),
            },
            failure_threshold: 1,
            success_threshold: 1,
            invert: false,
        }
    }

    /// Log lines written while `f` runs, without colours.
    fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Capture(Arc<Mutex<Vec<u8>>>);
        impl Write for Capture {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(capture.0.lock().unwrap().clone()).unwrap()
    }

    #[tokio::test]
    async fn a_flip_to_unhealthy_logs_and_records_the_failing_probes_reason() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut both = tcp_check("both", 0);
        both.kind = CheckKind::Calculated {
            children: vec![0],
            healthy_threshold: 1,
        };
        let configs = [tcp_check("web", port), both];
        let refused = probe::tcp("127.0.0.1", port, configs[0].timeouts)
            .await
            .expect_err("nothing listens there");
        let table = HealthTable::new(&configs);
        let log = logged(|| {
            assert!(table.checks[0].record(&configs[0], Err(refused.clone()), Duration::ZERO));
            table.recompute_calculated();
        });

        let unhealthy: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("now unhealthy"))
            .collect();
        assert_eq!(unhealthy.len(), 2, "both flips logged:\n{log}");
        let quoted = format!("{refused:?}");
        assert!(
            unhealthy[0].contains("check=\"web\"") && unhealthy[0].contains(&quoted),
            "the endpoint's line gives the probe's error {quoted}:\n{log}"
        );
        assert!(
            unhealthy[1].contains("check=\"both\"")
                && unhealthy[1].contains("0 of 1 children healthy, needs 1: web: ")
                && unhealthy[1].contains(refused.as_str()),
            "the calculated check's line leads to the child's error:\n{log}"
        );
        assert!(!log.contains("reason=\"ok\""), "never \"ok\":\n{log}");
        let report = table.report();
        assert_eq!(report[0].status.last_result, Some(Err(refused.clone())));
        let flips: Vec<&Flip> = report[0].status.flips.newest_first().collect();
        assert_eq!(flips.len(), 1, "{flips:?}");
        assert!(!flips[0].healthy && flips[0].reason.as_ref() == Some(&refused));
        let Some(Err(reason)) = &report[1].status.last_result else {
            panic!("the calculated check records why: {:?}", report[1].status);
        };
        assert!(reason.ends_with(&format!("web: {refused}")), "{reason}");
    }

    #[test]
    fn flips_only_after_consecutive_results() {
        let mut status = CheckStatus {
            healthy: true,
            ..CheckStatus::default()
        };
        let sequence = [
            (false, false),
            (false, false),
            (true, false),
            (false, false),
            (false, false),
            (false, true),
        ];
        for (step, (ok, flips)) in sequence.into_iter().enumerate() {
            assert_eq!(observe(&mut status, ok, 3, 2), flips, "step {step}");
        }
        assert!(!status.healthy);
        assert!(!observe(&mut status, true, 3, 2));
        assert!(observe(&mut status, true, 3, 2));
        assert!(status.healthy);
    }
}
