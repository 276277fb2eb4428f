//! The controllers of the reference orchestrator, in kube-runtime's style: a reconcile
//! function per object working from watch-fed caches and a rate-limited work queue,
//! idempotent, acting through the API like any client.

pub mod context;
pub mod deployment;
pub mod endpoints;
pub mod events;
pub mod gc;
pub mod ipam;
pub mod job;
pub mod nodes;
pub mod replicaset;
pub mod runtime;
pub mod servicelb;

use crate::server::clock::OrchClock;
use crate::server::metrics::{ControllerMetrics, Metrics};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Settings of the controllers.
#[derive(Debug, Clone)]
pub struct ControllersConfig {
    /// Workers per controller.
    pub workers: usize,
    /// A node whose Lease is older than this is unreachable (`--node-grace`, 40 s).
    pub node_grace: Duration,
    /// How long pods stay on an unreachable or not-ready node without an explicit
    /// toleration (`--eviction-timeout`, 300 s).
    pub eviction_timeout: Duration,
    /// First delay before a Job recreates a failed pod (10 s, doubling to 6 min).
    pub job_backoff_base: Duration,
    /// Pod CIDRs for Nodes (`--cluster-cidr`, `--node-cidr-mask-size`); `None`: no node
    /// IPAM, pods share their node's network.
    pub node_ipam: Option<ipam::IpamConfig>,
}

impl Default for ControllersConfig {
    fn default() -> Self {
        ControllersConfig {
            workers: 4,
            node_grace: Duration::from_secs(40),
            eviction_timeout: Duration::from_secs(300),
            job_backoff_base: Duration::from_secs(10),
            node_ipam: None,
        }
    }
}

/// Runs every controller until `stop` turns `true`: ReplicaSet, Deployment, Job, garbage
/// collection, node lifecycle, Endpoints, ServiceLB status and (when configured) node
/// IPAM, each with its own watches and work queue,
/// sharing one client, clock and metrics registry, each recording events under its kube
/// component name.
pub async fn run(
    client: kube::Client,
    config: ControllersConfig,
    clock: OrchClock,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) {
    let recorder = events::Recorder::new(client.clone(), "controller-manager", clock.clone());
    let ctx = |component: &str| context::Context {
        client: client.clone(),
        clock: clock.clone(),
        recorder: recorder.with_component(component),
        // The same families as the registry's (a family's clones share its samples).
        metrics: Arc::new(ControllerMetrics {
            queue_depth: metrics.controllers.queue_depth.clone(),
            reconciles: metrics.controllers.reconciles.clone(),
            reconcile_errors: metrics.controllers.reconcile_errors.clone(),
        }),
    };
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let w = config.workers.max(1);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(replicaset::run(
        ctx("replicaset-controller"),
        w,
        stopped(stop.clone()),
    ));
    tasks.spawn(deployment::run(
        ctx("deployment-controller"),
        w,
        stopped(stop.clone()),
    ));
    tasks.spawn(job::run(
        ctx("job-controller"),
        job::JobConfig {
            backoff_base: config.job_backoff_base,
            workers: w,
            ..job::JobConfig::default()
        },
        stopped(stop.clone()),
    ));
    tasks.spawn(gc::run(ctx("garbage-collector"), stopped(stop.clone())));
    tasks.spawn(nodes::run(
        ctx("node-controller"),
        nodes::NodeLifecycleConfig {
            node_grace: config.node_grace,
            eviction_timeout: config.eviction_timeout,
            workers: w,
        },
        stopped(stop.clone()),
    ));
    tasks.spawn(endpoints::run(
        ctx("endpoint-controller"),
        endpoints::EndpointsConfig { workers: w },
        stopped(stop.clone()),
    ));
    tasks.spawn(servicelb::run(
        ctx("service-lb-controller"),
        w,
        stopped(stop.clone()),
    ));
    if let Some(ipam_config) = config.node_ipam {
        tasks.spawn(ipam::run(
            ctx("node-ipam-controller"),
            ipam_config,
            stopped(stop),
        ));
    }
    while tasks.join_next().await.is_some() {}
}
