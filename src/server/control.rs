//! The control plane's active parts — the controllers and the scheduling loop — run
//! together, in the API server's process (`plimsoll server`, like k3s) or on their own
//! with a kubeconfig (`plimsoll controllers`, `plimsoll scheduler`), and, when several
//! processes could run them, only in the holder of a Lease ([`super::leader`]).
//!
//! Every part acts through the API with a kube-rs client, the same way in-process or not.

use super::clock::OrchClock;
use super::controllers::{self, ControllersConfig};
use super::leader::{run_elected, LeaderConfig};
use super::metrics::Metrics;
use super::scheduling::{self, SchedulerConfig};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::Path;
use std::sync::Arc;
use thiserror::Error;
use tokio::sync::watch;

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct ControlPlaneConfig {
    /// The controllers, or `None` (`--no-controllers`).
    pub controllers: Option<ControllersConfig>,
    /// The scheduling loop, or `None` (`--no-scheduler`).
    pub scheduler: Option<SchedulerConfig>,
    /// Run only while holding this Lease (`None`: always run).
    pub leader_election: Option<LeaderConfig>,
}

/// Why a client could not be made.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The kubeconfig file could not be read.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The client could not be built from it.
    #[error("client: {0}")]
    Client(#[from] kube::Error),
}

/// A kube-rs client for the API server named by a kubeconfig file (its current context).
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client, ClientError> {
    let err = |message: String| ClientError::Kubeconfig {
        path: path.display().to_string(),
        message,
    };
    let kc = Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| err(e.to_string()))?;
    Ok(kube::Client::try_from(config)?)
}

/// Runs the configured parts until `shutdown` turns `true`.
pub async fn run(
    client: kube::Client,
    config: ControlPlaneConfig,
    clock: OrchClock,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) {
    if config.controllers.is_none() && config.scheduler.is_none() {
        return;
    }
    let lead = {
        let client = client.clone();
        let clock = clock.clone();
        let metrics = metrics.clone();
        let config = config.clone();
        move |stop: watch::Receiver<bool>| {
            run_parts(
                client.clone(),
                config.clone(),
                clock.clone(),
                metrics.clone(),
                stop,
            )
        }
    };
    match config.leader_election {
        Some(le) => run_elected(client, le, clock, metrics, shutdown, lead).await,
        None => lead(shutdown).await,
    }
}

async fn run_parts(
    client: kube::Client,
    config: ControlPlaneConfig,
    clock: OrchClock,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(sc) = config.scheduler {
        let (client, clock, metrics, mut stop) =
            (client.clone(), clock.clone(), metrics.clone(), stop.clone());
        tasks.spawn(async move {
            let stopped = async move {
                while !*stop.borrow() {
                    if stop.changed().await.is_err() {
                        break;
                    }
                }
            };
            if let Err(e) = scheduling::run(client, sc, clock, metrics, stopped).await {
                tracing::error!(error = %e, "scheduler stopped");
            }
        });
    }
    if let Some(cc) = config.controllers {
        tasks.spawn(controllers::run(client, cc, clock, metrics, stop));
    }
    while tasks.join_next().await.is_some() {}
}
