//! `plimsoll agent`: the node agent (see `plimsoll::agent`).

use crate::control::signalled;
use crate::Status;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use plimsoll::agent::{self, AgentConfig, TaintSpec};
use plimsoll::model::quantity::Quantity;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which container runtime runs the pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeChoice {
    /// Isolated processes: new PID, mount, UTS and IPC namespaces, cgroups; no daemon.
    Process,
    /// The Docker Engine on this host (its local socket or DOCKER_HOST).
    Docker,
}

/// `plimsoll agent`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    internal: Option<Internal>,
    /// The agent's kubeconfig (its node identity's token and the server's CA).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The API server's URL (overrides the kubeconfig's).
    #[arg(long)]
    server: Option<String>,
    /// The node's name (its identity must be system:node:NAME).
    #[arg(long)]
    node_name: Option<String>,
    /// The container runtime.
    #[arg(long, value_enum, default_value = "process")]
    runtime: RuntimeChoice,
    /// The process runtime's image store (`plimsoll image import` writes there).
    #[arg(long, default_value = "/var/lib/plimsoll/images")]
    image_dir: PathBuf,
    /// Where pods' volumes, logs and (process runtime) containers' records live.
    #[arg(long, default_value = "/var/lib/plimsoll/agent")]
    state_dir: PathBuf,
    /// CPU capacity to report (a quantity: `4`, `2500m`); default: the host's CPUs. With
    /// the process runtime it is also enforced: all the node's containers together get
    /// at most this much CPU (a quota on the node's cgroup, as the kubelet enforces
    /// allocatable CPU on `kubepods`).
    #[arg(long)]
    cpu: Option<String>,
    /// Memory capacity to report (`8Gi`); default: the host's memory.
    #[arg(long)]
    memory: Option<String>,
    /// Maximum pods on the node.
    #[arg(long, default_value_t = 110)]
    max_pods: u32,
    /// Node labels, `K=V,K=V`.
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    /// Node taints (at registration), `K=V:EFFECT,…`.
    #[arg(long, value_delimiter = ',')]
    taints: Vec<TaintSpec>,
    /// Where the agent's HTTPS endpoint (logs) listens.
    #[arg(long, default_value = "0.0.0.0:10250")]
    listen: SocketAddr,
    /// The node's address (InternalIP) the API server reaches the agent at; default:
    /// the listen address, or 127.0.0.1 when that is unspecified.
    #[arg(long)]
    address: Option<IpAddr>,
    /// The Docker network containers join (docker runtime; default: Docker's bridge).
    #[arg(long)]
    docker_network: Option<String>,
    /// Seconds between usage samples sent to the control plane.
    #[arg(long, default_value_t = 10)]
    usage_interval: u64,
    /// Seconds between Lease renewals.
    #[arg(long, default_value_t = 10)]
    lease_interval: u64,
    /// Pods' own network namespaces and addresses from the node's pod CIDR: `auto` when
    /// the control plane allocates pod CIDRs (`plimsoll server --cluster-cidr`), `on`
    /// (wait for one), `off` (every pod on the host's network).
    #[arg(long, default_value = "auto")]
    pod_network: agent::PodNetworkMode,
}

#[derive(Debug, Subcommand)]
enum Internal {
    /// (internal) Supervise one container of the process runtime.
    #[command(hide = true)]
    Shim {
        /// The container's spec file, written by the runtime.
        #[arg(long)]
        spec: PathBuf,
    },
    /// (internal) Run a command inside a running container (exec probes).
    #[command(hide = true, name = "shim-exec")]
    ShimExec {
        /// The container's first process (host pid).
        #[arg(long)]
        pid: u32,
        /// The command.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Stop and remove every container the process runtime recorded under
    /// `--state-dir`, and the node's pod network (its bridge, pods' namespaces and veth
    /// pairs), for tearing a node down; the Node object is left alone.
    Cleanup {
        /// The agent's state directory.
        #[arg(long, default_value = "/var/lib/plimsoll/agent")]
        state_dir: PathBuf,
        /// The node's name.
        #[arg(long)]
        node_name: String,
        /// The image store.
        #[arg(long, default_value = "/var/lib/plimsoll/images")]
        image_dir: PathBuf,
        /// Also remove the node's Docker containers, pod sandboxes and pod network.
        #[arg(long)]
        docker: bool,
    },
}

fn process_runtime(
    state_dir: &std::path::Path,
    image_dir: &std::path::Path,
    node: &str,
) -> Result<agent::process::ProcessRuntime> {
    let exe = std::env::current_exe().context("finding the plimsoll executable for the shim")?;
    let images = agent::image::ImageStore::open(image_dir)
        .with_context(|| format!("image store {}", image_dir.display()))?;
    agent::process::ProcessRuntime::new(
        state_dir,
        images,
        node,
        agent::process::ShimCommand::plimsoll(exe),
    )
    .context("process runtime")
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// `plimsoll agent …`.
pub fn run(args: &AgentArgs) -> Result<Status> {
    match &args.internal {
        Some(Internal::Shim { spec }) => std::process::exit(agent::process::shim_main(spec)),
        Some(Internal::ShimExec { pid, command }) => {
            std::process::exit(agent::process::exec_main(*pid, command))
        }
        Some(Internal::Cleanup {
            state_dir,
            node_name,
            image_dir,
            docker,
        }) => {
            let rt = process_runtime(state_dir, image_dir, node_name)?;
            let tokio_rt = runtime()?;
            tokio_rt.block_on(rt.destroy_all()).context("cleanup")?;
            if *docker {
                tokio_rt
                    .block_on(async {
                        let d = agent::docker::DockerRuntime::connect(node_name, None).await?;
                        d.destroy_all().await
                    })
                    .context("cleanup of the node's Docker containers and network")?;
            }
            tokio_rt
                .block_on(agent::network::destroy_all(node_name, state_dir))
                .map_err(|e| anyhow::anyhow!("cleanup of the pod network: {e}"))?;
            return Ok(Status::Ok);
        }
        None => {}
    }
    let Some(kubeconfig) = &args.kubeconfig else {
        bail!("--kubeconfig is required");
    };
    let Some(node_name) = args.node_name.clone() else {
        bail!("--node-name is required");
    };
    let mut config = AgentConfig::new(node_name.clone(), args.state_dir.clone());
    for l in &args.labels {
        let (k, v) = l
            .split_once('=')
            .with_context(|| format!("--labels: {l:?} is not KEY=VALUE"))?;
        config.labels.insert(k.to_string(), v.to_string());
    }
    config.taints = args.taints.clone();
    if let Some(cpu) = &args.cpu {
        config.cpu_millis =
            Some(Quantity::parse_milli(cpu).map_err(|e| anyhow::anyhow!("--cpu {cpu:?}: {e}"))?);
    }
    if let Some(mem) = &args.memory {
        config.memory_bytes =
            Some(Quantity::parse_units(mem).map_err(|e| anyhow::anyhow!("--memory {mem:?}: {e}"))?);
    }
    config.max_pods = args.max_pods;
    config.listen = args.listen;
    config.address = args
        .address
        .unwrap_or(if args.listen.ip().is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            args.listen.ip()
        });
    if args.usage_interval == 0 || args.lease_interval == 0 {
        bail!("--usage-interval and --lease-interval must be at least 1 second");
    }
    config.usage_interval = Duration::from_secs(args.usage_interval);
    config.lease_interval = Duration::from_secs(args.lease_interval);
    config.pod_network = args.pod_network;
    runtime()?.block_on(async {
        let client = client(kubeconfig, args.server.as_deref()).await?;
        let rt: Arc<dyn agent::runtime::Runtime> = match args.runtime {
            RuntimeChoice::Process => Arc::new(
                process_runtime(&args.state_dir, &args.image_dir, &node_name)?
                    .with_node_cpu_limit(config.cpu_millis),
            ),
            RuntimeChoice::Docker => Arc::new(
                agent::docker::DockerRuntime::connect(&node_name, args.docker_network.clone())
                    .await
                    .context("docker runtime")?,
            ),
        };
        agent::run(client, rt, config, signalled())
            .await
            .context("agent")?;
        Ok(Status::Ok)
    })
}

async fn client(kubeconfig: &std::path::Path, server: Option<&str>) -> Result<kube::Client> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let kc = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("kubeconfig {}", kubeconfig.display()))?;
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("kubeconfig {}", kubeconfig.display()))?;
    if let Some(url) = server {
        config.cluster_url = url
            .parse()
            .with_context(|| format!("--server {url:?} is not a URL"))?;
    }
    kube::Client::try_from(config).context("API client")
}
