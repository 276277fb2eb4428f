//! The node agent (`plimsoll agent`): the kubelet of the reference orchestrator.
//!
//! It registers its Node ([`node`]), renews its Lease, turns the pods bound to its node
//! into running containers through a [`runtime::Runtime`] — isolated processes
//! ([`process`]) or the Docker Engine ([`docker`]) — and reports their status as the
//! kubelet does ([`pods`]), serves their logs to the API server ([`logserver`]), and
//! reports what they really use ([`usage`]) so that the control plane's predictors can
//! learn from it.
//!
//! Everything goes through the API server with the agent's own identity
//! (`system:node:NAME`): the server's node authorizer lets it write only its own Node,
//! Lease and the pods bound to it.

pub mod cidr;
pub mod docker;
pub mod image;
pub mod logfile;
pub mod logserver;
pub mod network;
pub mod node;
pub mod pods;
pub mod probes;
pub mod process;
pub mod proxy;
pub mod runtime;
pub mod usage;
pub mod volumes;

use crate::server::clock::OrchClock;
use crate::server::controllers::events::Recorder;
use runtime::Runtime;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A taint given on the command line (`key=value:Effect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaintSpec {
    /// The key.
    pub key: String,
    /// The value (may be empty).
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

impl std::str::FromStr for TaintSpec {
    type Err = String;

    /// Parses `key=value:Effect` or `key:Effect`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (kv, effect) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("taint {s:?}: expected KEY[=VALUE]:EFFECT"))?;
        if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            return Err(format!(
                "taint {s:?}: effect {effect:?} is not one of NoSchedule, PreferNoSchedule, NoExecute"
            ));
        }
        let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
        if key.is_empty() {
            return Err(format!("taint {s:?}: empty key"));
        }
        Ok(TaintSpec {
            key: key.to_string(),
            value: value.to_string(),
            effect: effect.to_string(),
        })
    }
}

/// How the agent runs (see `plimsoll agent --help` for the command-line form).
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The node's name.
    pub node_name: String,
    /// Where pod directories (volumes, logs) live; the process runtime keeps its
    /// container records under it too.
    pub state_dir: PathBuf,
    /// Labels of the Node (besides `kubernetes.io/hostname`, `kubernetes.io/os`,
    /// `kubernetes.io/arch`).
    pub labels: BTreeMap<String, String>,
    /// Taints the Node is registered with.
    pub taints: Vec<TaintSpec>,
    /// CPU capacity in millicores; `None`: the host's CPUs.
    pub cpu_millis: Option<u64>,
    /// Memory capacity in bytes; `None`: the host's memory.
    pub memory_bytes: Option<u64>,
    /// Maximum pods on the node (kubelet: 110).
    pub max_pods: u32,
    /// Where the agent's HTTPS endpoint (logs, health) listens; port 0 picks one.
    pub listen: SocketAddr,
    /// The node's address (`InternalIP`), at which the API server reaches the agent.
    pub address: IpAddr,
    /// How often the Lease is renewed (kubelet: 10 s).
    pub lease_interval: Duration,
    /// How often the Node's status (conditions, heartbeat) is written (kubelet: 10 s).
    pub status_interval: Duration,
    /// How often each pod is synced even when nothing was heard about it.
    pub sync_interval: Duration,
    /// How often usage is sampled and reported (10 s).
    pub usage_interval: Duration,
    /// Rotate a container log past this size (kubelet: 10 MiB).
    pub log_max_bytes: u64,
    /// Log files kept per container, live one included (kubelet: 5).
    pub log_max_files: u32,
    /// `MemoryPressure` when available memory falls below this (kubelet: 100 MiB).
    pub memory_pressure_bytes: u64,
    /// `DiskPressure` when the state directory's file system has less than this
    /// fraction free (kubelet: 10 %).
    pub disk_pressure_fraction: f64,
    /// Whether pods get their own network (see [`PodNetworkMode`]).
    pub pod_network: PodNetworkMode,
    /// The clock.
    pub clock: OrchClock,
}

/// Whether the agent gives pods their own network namespace and address
/// ([`network`]) or runs them on the host's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodNetworkMode {
    /// A pod network when the control plane gives the node a pod CIDR (`plimsoll server
    /// --cluster-cidr`): waits a few seconds for it after registering, then runs pods
    /// on the host's network if none came.
    Auto,
    /// Always: waits for the pod CIDR however long it takes.
    On,
    /// Never: every pod shares the host's network.
    Off,
}

impl std::str::FromStr for PodNetworkMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(PodNetworkMode::Auto),
            "on" => Ok(PodNetworkMode::On),
            "off" => Ok(PodNetworkMode::Off),
            _ => Err(format!("pod network mode {s:?}: expected auto, on or off")),
        }
    }
}

impl AgentConfig {
    /// kubelet's defaults for node `node_name`, state under `state_dir`, listening on
    /// `127.0.0.1:0`.
    pub fn new(node_name: impl Into<String>, state_dir: impl Into<PathBuf>) -> Self {
        AgentConfig {
            node_name: node_name.into(),
            state_dir: state_dir.into(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            cpu_millis: None,
            memory_bytes: None,
            max_pods: 110,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            address: IpAddr::from([127, 0, 0, 1]),
            lease_interval: Duration::from_secs(10),
            status_interval: Duration::from_secs(10),
            sync_interval: Duration::from_secs(1),
            usage_interval: Duration::from_secs(10),
            log_max_bytes: 10 << 20,
            log_max_files: 5,
            memory_pressure_bytes: 100 << 20,
            disk_pressure_fraction: 0.10,
            pod_network: PodNetworkMode::Auto,
            clock: OrchClock::wall(),
        }
    }
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The API server refused or failed a request the agent cannot go on without.
    #[error("{what}: {source}")]
    Api {
        /// What the agent was doing.
        what: String,
        /// The error.
        source: kube::Error,
    },
    /// The runtime failed in a way the agent cannot go on from.
    #[error("runtime: {0}")]
    Runtime(#[from] runtime::RuntimeError),
    /// A file or directory of the agent's own.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Anything else (bad configuration).
    #[error("{0}")]
    Config(String),
}

/// What every part of the agent shares.
pub(crate) struct Shared {
    pub(crate) client: kube::Client,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) config: AgentConfig,
    pub(crate) recorder: Recorder,
    /// The port the agent's HTTPS endpoint listens on.
    pub(crate) port: u16,
    /// The node's pod network, once set up (unset: pods share the host's network).
    pub(crate) network: std::sync::OnceLock<Arc<network::PodNetwork>>,
    /// Set when the runtime gives pods their addresses itself
    /// ([`runtime::Runtime::enable_pod_network`]).
    pub(crate) runtime_network: std::sync::OnceLock<()>,
}

/// Runs the agent until `shutdown` resolves: registers the node, then renews its Lease,
/// reports its status, runs its pods, serves their logs and reports their usage.
///
/// Containers are left running when the agent stops (as the kubelet leaves them): a
/// restarted agent finds them again through the runtime.
pub async fn run(
    client: kube::Client,
    runtime: Arc<dyn Runtime>,
    config: AgentConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    std::fs::create_dir_all(&config.state_dir).map_err(|source| AgentError::Io {
        path: config.state_dir.clone(),
        source,
    })?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (listener, tls) = logserver::bind(&config).await?;
    let port = listener
        .local_addr()
        .map_err(|source| AgentError::Io {
            path: PathBuf::from(config.listen.to_string()),
            source,
        })?
        .port();
    let recorder = Recorder::new(client.clone(), "kubelet", config.clock.clone());
    let shared = Arc::new(Shared {
        client,
        runtime,
        config,
        recorder,
        port,
        network: std::sync::OnceLock::new(),
        runtime_network: std::sync::OnceLock::new(),
    });
    node::register(&shared).await?;
    tracing::info!(node = %shared.config.node_name, port, runtime = shared.runtime.name(), "node registered");

    let mut tasks = tokio::task::JoinSet::new();
    if let Some(net) = network_setup(&shared).await? {
        let net = Arc::new(net);
        let _ = shared.network.set(net.clone());
        tasks.spawn(network_routes(shared.clone(), net.clone(), stop_rx.clone()));
        // The service proxy (kube-proxy's job) serves ClusterIPs, nodePorts and this
        // node's share of LoadBalancer Services, into the pod network.
        let mut proxy = proxy::ProxyConfig::new(&shared.config.node_name, shared.config.address);
        proxy.predict_refresh = shared.config.usage_interval.max(Duration::from_secs(1));
        let (client, stop) = (shared.client.clone(), stop_rx.clone());
        tasks.spawn(async move {
            proxy::run(client, proxy, net, stop)
                .await
                .map_err(AgentError::Config)
        });
    }
    tasks.spawn(node::heartbeat(shared.clone(), stop_rx.clone()));
    tasks.spawn(usage::report_loop(shared.clone(), stop_rx.clone()));
    tasks.spawn(pods::run(shared.clone(), stop_rx.clone()));
    {
        let mut stop = stop_rx.clone();
        let router = logserver::router(shared.clone());
        tasks.spawn(async move {
            let done = async move {
                stopped(&mut stop).await;
            };
            if let Err(e) = crate::server::api::listen::serve_tls(
                listener,
                tls,
                router,
                Default::default(),
                done,
            )
            .await
            {
                tracing::error!(error = %e, "agent endpoint failed");
            }
            Ok(())
        });
    }
    let mut result = Ok(());
    tokio::select! {
        () = shutdown => {}
        Some(r) = tasks.join_next() => {
            result = match r {
                Ok(r) => r,
                Err(e) => Err(AgentError::Config(format!("agent task failed: {e}"))),
            };
        }
    }
    let _ = stop_tx.send(true);
    let grace = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(grace);
    loop {
        tokio::select! {
            _ = &mut grace => break,
            next = tasks.join_next() => if next.is_none() { break },
        }
    }
    result
}

/// Resolves once `stop` turns `true` (or its sender is gone).
pub(crate) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The node's pod CIDR and address, once the control plane has allocated it, per
/// [`AgentConfig::pod_network`]; then the pod network set up on it.
async fn network_setup(shared: &Shared) -> Result<Option<network::PodNetwork>, AgentError> {
    let c = &shared.config;
    if c.pod_network == PodNetworkMode::Off {
        return Ok(None);
    }
    let address = match c.address {
        std::net::IpAddr::V4(a) => a,
        std::net::IpAddr::V6(_) => {
            return match c.pod_network {
                PodNetworkMode::On => Err(AgentError::Config(
                    "the pod network is IPv4 only and the node's address is IPv6".into(),
                )),
                _ => Ok(None),
            }
        }
    };
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(shared.client.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let cidr = loop {
        let node = nodes
            .get(&c.node_name)
            .await
            .map_err(|source| AgentError::Api {
                what: format!("reading node {}", c.node_name),
                source,
            })?;
        if let Some(cidr) = node.spec.as_ref().and_then(|s| s.pod_cidr.clone()) {
            break cidr;
        }
        if c.pod_network == PodNetworkMode::Auto && tokio::time::Instant::now() >= deadline {
            tracing::info!(
                "the node has no pod CIDR (the server runs without --cluster-cidr): pods share the host's network"
            );
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let cidr = network::Ipv4Cidr::parse(&cidr)
        .map_err(|e| AgentError::Config(format!("node {}: spec.podCIDR: {e}", c.node_name)))?;
    // A runtime that addresses pods itself (Docker) gets the CIDR instead: the netlink
    // bridge would claim the same subnet.
    if shared.runtime.enable_pod_network(cidr).await? {
        let _ = shared.runtime_network.set(());
        tracing::info!(%cidr, runtime = shared.runtime.name(), "pod network managed by the runtime");
        return Ok(None);
    }
    let net = network::PodNetwork::setup(&c.node_name, cidr, address, &c.state_dir)
        .await
        .map_err(|e| AgentError::Config(format!("setting up the pod network on {cidr}: {e}")))?;
    Ok(Some(net))
}

/// Keeps the routes to the other nodes' pods: every node's pod CIDR through its
/// `InternalIP`, refreshed from a watch of the Nodes.
async fn network_routes(
    shared: Arc<Shared>,
    net: Arc<network::PodNetwork>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), AgentError> {
    use futures::StreamExt;
    let api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(shared.client.clone());
    let watched = crate::server::controllers::runtime::watch(api, Default::default());
    let store = watched.store;
    let mut stream = watched.stream;
    let (poke_tx, mut poke_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        while stream.next().await.is_some() {
            if poke_tx.send(()).is_err() {
                break;
            }
        }
    });
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error = String::new();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => return Ok(()),
            _ = tick.tick() => {}
            Some(()) = poke_rx.recv() => while poke_rx.try_recv().is_ok() {},
        }
        let mut peers = Vec::new();
        for node in store.state() {
            let Some(cidr) = node.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()) else {
                continue;
            };
            let Ok(cidr) = network::Ipv4Cidr::parse(cidr) else {
                continue;
            };
            let ip = node
                .status
                .as_ref()
                .and_then(|s| s.addresses.as_ref())
                .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
                .and_then(|a| a.address.parse::<std::net::Ipv4Addr>().ok());
            if let Some(ip) = ip {
                peers.push((cidr, ip));
            }
        }
        match net.sync_routes(&peers).await {
            Ok(()) => last_error.clear(),
            Err(e) if e != last_error => {
                tracing::warn!(error = %e, "routes to other nodes' pods");
                last_error = e;
            }
            Err(_) => {}
        }
    }
}
