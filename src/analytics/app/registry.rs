//! The running applications: those of the config file, and those created, replaced and
//! deleted at run time through the API (kept in `<data_dir>/analytics/applications.json`,
//! so they run again after a restart). An application defined in the config file is
//! changed by editing the file, never through the API.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{AppEnv, check, checkpoint, supervise};
use crate::config::analytics::{ApplicationSpec, OutputSpec, valid_application_name};
use crate::stream::delivery::file::write_atomically;

/// How long a replaced or deleted application has to finish its tick.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// An application as the API shows and takes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AppDefinition {
    pub inputs: Vec<String>,
    pub sql: String,
    #[serde(default)]
    pub outputs: Vec<AppOutput>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AppOutput {
    pub sql_stream: String,
    pub stream: String,
}

/// One application in the API's list.
#[derive(Debug, Clone, Serialize)]
pub struct AppView {
    pub name: String,
    #[serde(flatten)]
    pub definition: AppDefinition,
    /// "running", "failed: ...", "starting".
    pub status: String,
    /// "config" or "api".
    pub origin: &'static str,
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Invalid(String),
    #[error("application {0} is defined in the config file: change it there")]
    FromConfig(String),
    #[error("no application named {0}")]
    NotFound(String),
    #[error("applications are not running yet")]
    NotStarted,
    #[error("keeping the applications: {0}")]
    Store(String),
}

struct Running {
    spec: ApplicationSpec,
    from_config: bool,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

pub struct Registry {
    env: Arc<AppEnv>,
    runtime: tokio::runtime::Handle,
    store: PathBuf,
    /// Held only for moments, never across an await.
    running: std::sync::Mutex<BTreeMap<String, Running>>,
    /// One change (put or delete) at a time, held while an old instance stops.
    changes: Mutex<()>,
    shutdown: OnceLock<CancellationToken>,
}

impl Registry {
    pub fn new(env: Arc<AppEnv>, runtime: tokio::runtime::Handle) -> Registry {
        let store = env.data_dir.join("analytics").join("applications.json");
        Registry {
            env,
            runtime,
            store,
            running: std::sync::Mutex::new(BTreeMap::new()),
            changes: Mutex::new(()),
            shutdown: OnceLock::new(),
        }
    }

    /// Starts the config file's applications and those the API created, until `shutdown`;
    /// they are listed from the moment this returns.
    pub fn start(&self, shutdown: &CancellationToken) {
        if self.shutdown.set(shutdown.clone()).is_err() {
            return;
        }
        let mut running = self.lock();
        for spec in &self.env.config.applications {
            running.insert(spec.name.clone(), self.spawn(spec.clone(), true, shutdown));
        }
        for spec in self.stored() {
            if running.contains_key(&spec.name) {
                warn!(
                    "analytics application {} is in the config file now; the API's copy is ignored",
                    spec.name
                );
                continue;
            }
            running.insert(spec.name.clone(), self.spawn(spec, false, shutdown));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn spawn(
        &self,
        spec: ApplicationSpec,
        from_config: bool,
        shutdown: &CancellationToken,
    ) -> Running {
        let stop = shutdown.child_token();
        self.set_status(&spec.name, Some("starting".into()));
        let task = self
            .runtime
            .spawn(supervise(spec.clone(), self.env.clone(), stop.clone()));
        Running {
            spec,
            from_config,
            stop,
            task,
        }
    }

    fn set_status(&self, name: &str, status: Option<String>) {
        if let Ok(mut statuses) = self.env.statuses.lock() {
            match status {
                Some(status) => statuses.insert(name.to_string(), status),
                None => statuses.remove(name),
            };
        }
    }

    /// The applications the API created, as last stored (none when the file is missing).
    fn stored(&self) -> Vec<ApplicationSpec> {
        let bytes = match std::fs::read(&self.store) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                warn!("reading {}: {e}", self.store.display());
                return Vec::new();
            }
        };
        match serde_json::from_slice::<BTreeMap<String, AppDefinition>>(&bytes) {
            Ok(apps) => apps
                .into_iter()
                .map(|(name, definition)| spec_of(&name, definition))
                .collect(),
            Err(e) => {
                warn!("{}: not a list of applications: {e}", self.store.display());
                Vec::new()
            }
        }
    }

    fn keep(&self, running: &BTreeMap<String, Running>) -> Result<(), RegistryError> {
        let apps: BTreeMap<&String, AppDefinition> = running
            .iter()
            .filter(|(_, r)| !r.from_config)
            .map(|(name, r)| (name, definition_of(&r.spec)))
            .collect();
        let bytes =
            serde_json::to_vec_pretty(&apps).map_err(|e| RegistryError::Store(e.to_string()))?;
        write_atomically(&self.store, &bytes)
            .map_err(|e| RegistryError::Store(format!("{}: {e}", self.store.display())))
    }

    /// Every application, by name.
    pub async fn list(&self) -> Vec<AppView> {
        let statuses = self
            .env
            .statuses
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        self.lock()
            .iter()
            .map(|(name, r)| AppView {
                name: name.clone(),
                definition: definition_of(&r.spec),
                status: statuses
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| "starting".into()),
                origin: if r.from_config { "config" } else { "api" },
            })
            .collect()
    }

    /// Creates or replaces application `name`: checked first (a mistake changes nothing),
    /// then stored, then run — from its checkpoint, when it had one.
    ///
    /// # Errors
    /// The name or definition is not valid, or the application is the config file's.
    pub async fn put(&self, name: &str, definition: AppDefinition) -> Result<(), RegistryError> {
        if !valid_application_name(name) {
            return Err(RegistryError::Invalid(
                "an application's name is 1 to 120 letters, digits, `_`, `-` or `.`".into(),
            ));
        }
        if definition.inputs.is_empty() || definition.sql.trim().is_empty() {
            return Err(RegistryError::Invalid(
                "an application needs inputs and sql".into(),
            ));
        }
        let spec = spec_of(name, definition);
        check(&spec, &self.env)
            .await
            .map_err(|e| RegistryError::Invalid(e.to_string()))?;
        let shutdown = self.shutdown.get().ok_or(RegistryError::NotStarted)?;
        let _change = self.changes.lock().await;
        if self.lock().get(name).is_some_and(|old| old.from_config) {
            return Err(RegistryError::FromConfig(name.to_string()));
        }
        let old = self.lock().remove(name);
        if let Some(old) = old {
            stop(old).await;
        }
        let mut running = self.lock();
        running.insert(name.to_string(), self.spawn(spec, false, shutdown));
        self.keep(&running)
    }

    /// Stops and forgets application `name`, its checkpoint with it.
    ///
    /// # Errors
    /// No such application, or it is the config file's.
    pub async fn delete(&self, name: &str) -> Result<(), RegistryError> {
        let _change = self.changes.lock().await;
        let old = {
            let mut running = self.lock();
            match running.get(name) {
                None => return Err(RegistryError::NotFound(name.to_string())),
                Some(r) if r.from_config => {
                    return Err(RegistryError::FromConfig(name.to_string()));
                }
                Some(_) => running.remove(name),
            }
        };
        if let Some(old) = old {
            stop(old).await;
        }
        self.set_status(name, None);
        let _ = std::fs::remove_file(checkpoint::path(&self.env.data_dir, name));
        self.keep(&self.lock())
    }
}

async fn stop(running: Running) {
    running.stop.cancel();
    let name = running.spec.name.clone();
    if tokio::time::timeout(STOP_WAIT, running.task).await.is_err() {
        warn!("analytics application {name} did not stop within {STOP_WAIT:?}");
    }
}

fn spec_of(name: &str, definition: AppDefinition) -> ApplicationSpec {
    ApplicationSpec {
        name: name.to_string(),
        inputs: definition.inputs,
        sql: definition.sql,
        outputs: definition
            .outputs
            .into_iter()
            .map(|o| OutputSpec {
                sql_stream: o.sql_stream,
                stream: o.stream,
            })
            .collect(),
    }
}

fn definition_of(spec: &ApplicationSpec) -> AppDefinition {
    AppDefinition {
        inputs: spec.inputs.clone(),
        sql: spec.sql.clone(),
        outputs: spec
            .outputs
            .iter()
            .map(|o| AppOutput {
                sql_stream: o.sql_stream.clone(),
                stream: o.stream.clone(),
            })
            .collect(),
    }
}
