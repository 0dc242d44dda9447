//! The probe tasks behind a [`HealthTable`], and how a reload changes them: a check with the
//! same id and definition keeps its state and its timer (its task runs on untouched), a new
//! check starts, a removed one stops, and a changed one restarts from the initial state.
//!
//! Reloads are staged ([`HealthChecks::stage`], no side effects, so a reload that fails later
//! leaves nothing behind) and then committed ([`HealthChecks::commit`]). Callers serialize
//! reloads; the task registry's mutex is only taken at start and at commit, never by answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rand::RngExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{CheckKind, CheckState, HealthCheckConfig, HealthTable, probe};
use crate::net::tls;

/// The live health table and the tasks probing its endpoint checks.
pub struct HealthChecks {
    /// Read by probe tasks to re-derive calculated checks after a flip, so a flip is judged
    /// against the table in force, not the one the task started with.
    live: Arc<ArcSwap<HealthTable>>,
    running: Mutex<Running>,
    /// Cancelling it stops every probe task, those started by later reloads included.
    stop: CancellationToken,
    insecure_tls: Arc<rustls::ClientConfig>,
    verified_tls: Arc<rustls::ClientConfig>,
}

/// Probe tasks by check id, each with its own stop token.
#[derive(Default)]
struct Running {
    /// False until [`HealthChecks::start`]: a reload before then only swaps the table.
    started: bool,
    tasks: HashMap<String, CancellationToken>,
}

/// A table built for a new config, with the changes committing it would make.
pub struct StagedHealth {
    pub table: Arc<HealthTable>,
    pub changes: HealthChanges,
}

/// Check ids by what a reload does to them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HealthChanges {
    /// New ids: start healthy (inverted: unhealthy) and get a task.
    pub added: Vec<String>,
    /// Ids gone from the config: their tasks stop.
    pub removed: Vec<String>,
    /// Same id and definition: state and timer kept.
    pub kept: Vec<String>,
    /// Same id, new definition: restarted from the initial state.
    pub restarted: Vec<String>,
}

// === impl HealthChecks ===

impl HealthChecks {
    /// Checks in their initial states; nothing is probed until [`HealthChecks::start`].
    /// `stop` ends every probe task.
    pub fn new(configs: &[HealthCheckConfig], stop: CancellationToken) -> HealthChecks {
        HealthChecks {
            live: Arc::new(ArcSwap::from_pointee(HealthTable::new(configs))),
            running: Mutex::default(),
            stop,
            insecure_tls: tls::client_config(false),
            verified_tls: tls::client_config(true),
        }
    }

    /// The table in force.
    pub fn table(&self) -> Arc<HealthTable> {
        self.live.load_full()
    }

    /// Starts a probe task for every endpoint check. Must be called inside a tokio runtime.
    pub fn start(&self) {
        let table = self.live.load_full();
        let mut running = self.lock();
        running.started = true;
        for index in 0..table.checks.len() {
            if !running.tasks.contains_key(&table.configs[index].id) {
                self.spawn(&mut running, &table, index);
            }
        }
    }

    /// Builds the table `configs` would run on, carrying over the state of every unchanged
    /// check. Changes nothing until committed.
    pub fn stage(&self, configs: &[HealthCheckConfig]) -> StagedHealth {
        let old = self.live.load_full();
        let mut changes = HealthChanges::default();
        let states = configs
            .iter()
            .enumerate()
            .map(|(index, config)| {
                let previous = old.configs.iter().position(|c| c.id == config.id);
                match previous {
                    Some(p) if same_definition(&old.configs, p, configs, index) => {
                        changes.kept.push(config.id.clone());
                        old.checks[p].clone()
                    }
                    Some(_) => {
                        changes.restarted.push(config.id.clone());
                        Arc::new(CheckState::new(config))
                    }
                    None => {
                        changes.added.push(config.id.clone());
                        Arc::new(CheckState::new(config))
                    }
                }
            })
            .collect();
        changes.removed = old
            .configs
            .iter()
            .filter(|c| !configs.iter().any(|n| n.id == c.id))
            .map(|c| c.id.clone())
            .collect();
        StagedHealth {
            table: Arc::new(HealthTable::with_states(states, configs)),
            changes,
        }
    }

    /// Puts a staged table in force: stops the tasks of removed and restarted checks, starts
    /// those of added and restarted ones (once [`HealthChecks::start`] has run).
    pub fn commit(&self, staged: StagedHealth) {
        let StagedHealth { table, changes } = staged;
        self.live.store(table.clone());
        let mut running = self.lock();
        for id in changes.removed.iter().chain(&changes.restarted) {
            if let Some(task) = running.tasks.remove(id) {
                task.cancel();
            }
        }
        if !running.started {
            return;
        }
        for id in changes.added.iter().chain(&changes.restarted) {
            if let Some(index) = table.configs.iter().position(|c| &c.id == id) {
                self.spawn(&mut running, &table, index);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Running> {
        // The registry stays consistent even if a holder panicked: every change is one insert
        // or remove.
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the task of endpoint check `index` of `table`; calculated checks have none.
    fn spawn(&self, running: &mut Running, table: &HealthTable, index: usize) {
        let config = table.configs[index].clone();
        let tls = match &config.kind {
            CheckKind::Calculated { .. } => return,
            CheckKind::Https {
                verify_tls: true, ..
            } => Some(self.verified_tls.clone()),
            CheckKind::Https { .. } => Some(self.insecure_tls.clone()),
            CheckKind::Http(_) | CheckKind::Tcp { .. } => None,
        };
        let stop = self.stop.child_token();
        running.tasks.insert(config.id.clone(), stop.clone());
        let probe = Probe {
            state: table.checks[index].clone(),
            config,
            tls,
            live: self.live.clone(),
        };
        tokio::spawn(probe.run(stop));
    }
}

/// Whether check `a` of `old` and check `b` of `new` are the same check. Calculated checks
/// name their children by position, so those are compared by id.
fn same_definition(
    old: &[HealthCheckConfig],
    a: usize,
    new: &[HealthCheckConfig],
    b: usize,
) -> bool {
    let (a, b) = (&old[a], &new[b]);
    match (&a.kind, &b.kind) {
        (
            CheckKind::Calculated {
                children: old_children,
                healthy_threshold: old_threshold,
            },
            CheckKind::Calculated {
                children: new_children,
                healthy_threshold: new_threshold,
            },
        ) => {
            let ids = |configs: &[HealthCheckConfig], children: &[usize]| -> Vec<String> {
                children.iter().map(|&c| configs[c].id.clone()).collect()
            };
            old_threshold == new_threshold
                && a.invert == b.invert
                && ids(old, old_children) == ids(new, new_children)
        }
        _ => a == b,
    }
}

/// One endpoint check's task: probe on a jittered timer, record, re-derive calculated checks.
struct Probe {
    state: Arc<CheckState>,
    config: HealthCheckConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    live: Arc<ArcSwap<HealthTable>>,
}

impl Probe {
    async fn run(self, stop: CancellationToken) {
        // Spread the first probes over one interval so checks do not fire in lockstep.
        let mut delay = self.jittered(0.0..1.0);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            let started = tokio::time::Instant::now();
            let outcome = tokio::select! {
                () = stop.cancelled() => return,
                outcome = run_probe(&self.config, self.tls.as_ref()) => outcome,
            };
            if self.state.record(&self.config, outcome, started.elapsed()) {
                self.live.load().recompute_calculated();
            }
            delay = self.jittered(0.9..1.1);
        }
    }

    fn jittered(&self, range: std::ops::Range<f64>) -> Duration {
        self.config
            .interval
            .mul_f64(rand::rng().random_range(range))
    }
}

async fn run_probe(
    config: &HealthCheckConfig,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<(), String> {
    let probe = async {
        match &config.kind {
            CheckKind::Http(check) => probe::http(check, None, config.timeouts).await,
            CheckKind::Https { check, .. } => probe::http(check, tls, config.timeouts).await,
            CheckKind::Tcp { host, port } => probe::tcp(host, *port, config.timeouts).await,
            CheckKind::Calculated { .. } => Ok(()),
        }
    };
    tokio::time::timeout(config.timeouts.total, probe)
        .await
        .unwrap_or_else(|_| Err(format!("probe timed out after {:?}", config.timeouts.total)))
}
