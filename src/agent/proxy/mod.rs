//! The service proxy (kube-proxy's job) of the node agent: a userspace proxy, like
//! kube-proxy's old userspace mode — it listens on sockets and copies bytes; there is
//! no iptables.
//!
//! [`run`] watches Services, Endpoints and Nodes cluster-wide and, for each Service port
//! (TCP and UDP; ExternalName and headless Services are skipped, SCTP ports too with a
//! log line), listens on
//!
//! - `ClusterIP:port` when [`ProxyConfig::cluster_ips`] is on (the address is first
//!   added to the node through [`VirtualIps`], and removed when no Service needs it);
//! - `node_address:nodePort` for NodePort and LoadBalancer Services;
//! - `node_address:port` for LoadBalancer Services whose
//!   `status.loadBalancer.ingress[].ip` names this node's address (k3s ServiceLB style).
//!
//! New connections go to the port's ready endpoints (`addresses` of the Endpoints, port
//! matched by name) as the Service's `plimsoll.io/load-balancing` annotation says:
//! `round-robin` (the default, and for an unknown value, with a warning),
//! `least-connections`, or `predicted` (weighted least connections by the nodes'
//! predicted spare CPU, see [`capacity`]); `sessionAffinity: ClientIP` keeps a client on
//! its endpoint ([`balancer`]). An endpoint that leaves — not ready, deleted, or its
//! Service gone — gets no new connections, and its existing ones go on for
//! [`ProxyConfig::drain_timeout`] and are then closed (`port`). TCP is in `tcp`, UDP
//! sessions in `udp`.
//!
//! A listener that cannot bind is logged once and retried every
//! [`ProxyConfig::resync`]; bad data (a port 0, an address that is not an IP) is skipped
//! with a warning. Nothing here is fatal but the API server refusing the watches, which
//! are retried with back-off anyway.
//!
//! It owns sockets and nothing else: it never writes to the API.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), String> {
//! use plimsoll::agent::proxy::{self, NoVirtualIps, ProxyConfig};
//! let (_stop_tx, stop) = tokio::sync::watch::channel(false);
//! let mut config = ProxyConfig::new("node-1", "192.168.1.10".parse().unwrap());
//! config.cluster_ips = false; // nodePorts and ServiceLB only
//! proxy::run(client, config, std::sync::Arc::new(NoVirtualIps), stop).await
//! # }
//! ```

pub mod balancer;
pub mod capacity;
pub mod desired;
mod port;
mod proxier;
mod tcp;
mod udp;

use crate::agent::runtime::BoxFuture;
use crate::server::controllers::runtime as ctrl;
use crate::server::scheduling::usage::UsageModel;
use balancer::{Mode, NodeCapacities};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Node, Service};
use kube::api::Api;
use kube::runtime::watcher;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Adds and removes Service virtual IPs (ClusterIPs) on the node so that the proxy can
/// bind them. The agent implements it with a dummy interface; [`NoVirtualIps`] does
/// nothing (for addresses the node already has, such as `127.0.0.0/8`).
pub trait VirtualIps: Send + Sync + 'static {
    /// Makes `ip` a local address of the node (idempotent).
    fn add(&self, ip: Ipv4Addr) -> BoxFuture<'_, Result<(), String>>;
    /// Removes `ip` (idempotent).
    fn remove(&self, ip: Ipv4Addr) -> BoxFuture<'_, Result<(), String>>;
}

/// [`VirtualIps`] that adds nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoVirtualIps;

impl VirtualIps for NoVirtualIps {
    fn add(&self, _ip: Ipv4Addr) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn remove(&self, _ip: Ipv4Addr) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// How the proxy runs.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The node's name.
    pub node_name: String,
    /// The node's address (its `InternalIP`): nodePorts and ServiceLB listen on it.
    pub node_address: IpAddr,
    /// Listen on `ClusterIP:port` too (needs [`VirtualIps`] to add the addresses).
    pub cluster_ips: bool,
    /// Longest wait for a TCP connection to an endpoint before the next is tried (1 s).
    pub connect_timeout: Duration,
    /// How long connections to an endpoint that left (or of a Service port that went
    /// away) may go on before they are closed (30 s).
    pub drain_timeout: Duration,
    /// A UDP session without traffic for this long ends (30 s).
    pub udp_idle: Duration,
    /// How often the predicted mode's node CPU is recomputed (5 s).
    pub predict_refresh: Duration,
    /// The predictor of the predicted mode (k-NN, as the usage-aware scheduler).
    pub usage_model: UsageModel,
    /// How often everything is re-applied even without a change: failed binds and
    /// virtual IPs are retried then (2 s).
    pub resync: Duration,
}

impl ProxyConfig {
    /// The defaults above for node `node_name` at `node_address`, ClusterIPs on.
    pub fn new(node_name: impl Into<String>, node_address: IpAddr) -> Self {
        ProxyConfig {
            node_name: node_name.into(),
            node_address,
            cluster_ips: true,
            connect_timeout: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(30),
            udp_idle: Duration::from_secs(30),
            predict_refresh: Duration::from_secs(5),
            usage_model: UsageModel::Knn,
            resync: Duration::from_secs(2),
        }
    }
}

/// Changes closer together than this are applied together.
const DEBOUNCE: Duration = Duration::from_millis(20);

/// Runs the proxy until `stop` turns `true` (or its sender is dropped): see the module
/// docs. On the way out every listener and connection is closed and the virtual IPs it
/// added are removed. Errors only if it cannot start.
pub async fn run(
    client: kube::Client,
    config: ProxyConfig,
    vips: Arc<dyn VirtualIps>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let config = Arc::new(config);
    let services = ctrl::watch(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let endpoints = ctrl::watch(
        Api::<Endpoints>::all(client.clone()),
        watcher::Config::default(),
    );
    let nodes = ctrl::watch(Api::<Node>::all(client.clone()), watcher::Config::default());
    let (svc_store, ep_store) = (services.store.clone(), endpoints.store.clone());
    let changed = Arc::new(Notify::new());
    // Aborted when dropped, on every way out.
    let mut background = tokio::task::JoinSet::new();
    for stream in [
        services.stream.map(|_| ()).boxed(),
        endpoints.stream.map(|_| ()).boxed(),
        nodes.stream.map(|_| ()).boxed(),
    ] {
        let changed = changed.clone();
        background.spawn(async move {
            let mut stream = stream;
            while stream.next().await.is_some() {
                changed.notify_one();
            }
        });
    }
    tokio::select! {
        () = crate::agent::stopped(&mut stop) => return Ok(()),
        r = async { svc_store.wait_until_ready().await?; ep_store.wait_until_ready().await } => {
            r.map_err(|e| format!("proxy: service and endpoints caches: {e}"))?;
        }
    }
    let (cap_tx, mut cap_rx) = watch::channel(Arc::new(NodeCapacities::new()));
    let predicted_wanted = Arc::new(AtomicBool::new(false));
    background.spawn(capacity::refresh_loop(
        client,
        nodes.store.clone(),
        config.predict_refresh,
        config.usage_model,
        predicted_wanted.clone(),
        cap_tx,
    ));
    tracing::info!(node = %config.node_name, address = %config.node_address, cluster_ips = config.cluster_ips, "proxy started");
    let scope = desired::Scope {
        node_address: config.node_address,
        cluster_ips: config.cluster_ips,
    };
    let mut proxier = proxier::Proxier::new(config.clone(), vips, stop.clone());
    let mut resync = tokio::time::interval(config.resync.max(Duration::from_millis(100)));
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let want = desired::desired(&svc_store.state(), &ep_store.state(), scope);
        predicted_wanted.store(
            want.ports.values().any(|p| p.mode == Mode::Predicted),
            Ordering::Relaxed,
        );
        proxier.capacities = cap_rx.borrow_and_update().clone();
        proxier.apply(want).await;
        tokio::select! {
            () = crate::agent::stopped(&mut stop) => break,
            () = changed.notified() => tokio::time::sleep(DEBOUNCE).await,
            _ = resync.tick() => {}
            r = cap_rx.changed() => if r.is_err() {
                // The refresher is gone (it never returns while we hold the receiver).
                resync.tick().await;
            },
        }
    }
    proxier.shutdown().await;
    tracing::info!(node = %config.node_name, "proxy stopped");
    Ok(())
}
