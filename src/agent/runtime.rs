//! The container runtime contract the node agent drives: one trait, [`Runtime`], with
//! two real implementations — [`crate::agent::process`] (isolated processes in their own
//! namespaces and cgroups, no daemon) and [`crate::agent::docker`] (the Docker Engine
//! through its API).
//!
//! The agent owns the pod logic (which container to start when, restart policy and
//! back-off, probes, status); a runtime only creates, finds, stops and measures
//! containers. Everything a runtime needs to find its containers again after the agent
//! restarts is in the runtime itself (the process runtime's state directory, Docker's
//! labels), so [`Runtime::list`] after a restart answers what [`Runtime::start`] made
//! before it.

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

/// Which pod a container belongs to.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct PodRef {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's `metadata.uid` (two pods of one name at different times differ here).
    pub uid: String,
}

/// Whether a container is an init container or a regular one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerKind {
    /// `spec.initContainers[]`: runs to completion, in order, before the others.
    Init,
    /// `spec.containers[]`.
    Regular,
}

/// A file or directory of the host made visible inside the container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    /// The host path (a directory the agent prepared: an `emptyDir`, the files of a
    /// ConfigMap or Secret volume).
    pub host_path: PathBuf,
    /// The absolute path inside the container.
    pub container_path: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// CPU and memory bounds of one container, from its `resources`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    /// `limits.cpu` in millicores: a CFS quota (`quota = limit × period / 1000`).
    pub cpu_limit_millis: Option<u64>,
    /// `requests.cpu` in millicores: the CPU weight (shares = millis × 1024 / 1000, at
    /// least 2, as the kubelet sets them).
    pub cpu_request_millis: Option<u64>,
    /// `limits.memory` in bytes: the hard memory limit (the kernel OOM-kills over it).
    pub memory_limit_bytes: Option<u64>,
}

/// Everything a runtime needs to create and start one container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerSpec {
    /// The pod.
    pub pod: PodRef,
    /// The container's name in the pod spec.
    pub name: String,
    /// Init or regular.
    pub kind: ContainerKind,
    /// How many times this container was started before (0 for the first start): the
    /// kubelet's restart count, kept with the container so that it survives restarts of
    /// the agent.
    pub attempt: u32,
    /// The image reference as written in the pod spec (`busybox:1.36`, `burner`, …).
    pub image: String,
    /// `command` of the pod spec; `None` means the image's entrypoint.
    pub command: Option<Vec<String>>,
    /// `args` of the pod spec; `None` means the image's cmd (only when `command` is also
    /// `None`, as Kubernetes does: a `command` without `args` runs with no arguments).
    pub args: Option<Vec<String>>,
    /// Environment from the pod spec, values resolved (ConfigMap and Secret keys, field
    /// references), in the spec's order; these override the image's variables of the
    /// same name.
    pub env: Vec<(String, String)>,
    /// `workingDir`; `None` means the image's, or `/`.
    pub working_dir: Option<String>,
    /// Volume mounts, already materialised on the host.
    pub mounts: Vec<Mount>,
    /// The hostname inside the container (the pod's name, as Kubernetes sets it).
    pub hostname: String,
    /// CPU and memory bounds.
    pub resources: Resources,
    /// Where stdout and stderr go, in the CRI log format (`TIMESTAMP STREAM P|F LINE`,
    /// one file per start; rotated to `PATH.1` … when larger than the agent's limit).
    /// The Docker runtime copies Docker's log stream here.
    pub log_path: PathBuf,
    /// Rotate the log when it grows past this many bytes (kubelet: 10 MiB).
    pub log_max_bytes: u64,
    /// Keep this many rotated files besides the live one (kubelet: 5 in all).
    pub log_max_files: u32,
    /// The pod's own network (its namespace and address), when the node has a pod
    /// network; `None`: the container shares the host's network.
    #[serde(default)]
    pub network: Option<PodNetworkRef>,
}

/// Where a pod is on the node's pod network ([`crate::agent::network`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PodNetworkRef {
    /// The network namespace file every container of the pod joins.
    pub netns: PathBuf,
    /// The pod's address.
    pub ip: std::net::Ipv4Addr,
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Exit {
    /// The exit code (128 + signal number when killed by a signal, as Kubernetes shows).
    pub exit_code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// The kernel killed it for going over its memory limit.
    pub oom_killed: bool,
    /// When it ended.
    pub finished_at: SystemTime,
}

/// A container's state as the runtime sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ContainerState {
    /// Created but not (yet) running.
    Created,
    /// Running.
    Running,
    /// Ended.
    Exited(Exit),
    /// The runtime lost track of it (its supervisor vanished without recording an exit).
    Unknown(String),
}

/// One container the runtime knows, as [`Runtime::list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerInfo {
    /// The runtime's id (unique on this node, stable across agent restarts).
    pub id: String,
    /// The pod.
    pub pod: PodRef,
    /// The container's name in the pod spec.
    pub name: String,
    /// Init or regular.
    pub kind: ContainerKind,
    /// The attempt from [`ContainerSpec::attempt`].
    pub attempt: u32,
    /// The image reference it was started from.
    pub image: String,
    /// An id of the image content (`sha256:…` where known).
    pub image_id: String,
    /// When it started running.
    pub started_at: Option<SystemTime>,
    /// Its state.
    pub state: ContainerState,
    /// Its log file (see [`ContainerSpec::log_path`]).
    pub log_path: PathBuf,
    /// The host pid of the container's first process, while it runs (process runtime).
    pub pid: Option<u32>,
}

/// Cumulative resource use of one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerStats {
    /// CPU time used since the container started, in nanoseconds (cgroup `cpuacct.usage`
    /// or `cpu.stat usage_usec`, Docker's `cpu_stats.cpu_usage.total_usage`).
    pub cpu_usage_ns: u64,
    /// The memory working set in bytes (usage minus inactive file pages, as cAdvisor and
    /// `kubectl top` count it).
    pub memory_working_set_bytes: u64,
    /// When it was measured.
    pub timestamp: SystemTime,
}

/// What an exec (probe) command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Its exit code (`None` when it was killed at the timeout).
    pub exit_code: Option<i32>,
    /// Its stdout and stderr, interleaved, cut at 10 KiB.
    pub output: String,
}

/// Why a runtime call failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The image is not on this node (no registry is reachable to pull it from).
    #[error("image {0:?} is not present on this node")]
    ImageNotPresent(String),
    /// The image is there but unusable (bad config, missing root filesystem, …).
    #[error("image {image:?}: {reason}")]
    BadImage {
        /// The image reference.
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// The container could not be created or started (the message is shown in the
    /// pod's `waiting.message` with reason `CreateContainerError` / `RunContainerError`).
    #[error("{0}")]
    Start(String),
    /// No container with this id.
    #[error("no container {0:?}")]
    NotFound(String),
    /// Anything else (I/O, the Docker API, cgroups).
    #[error("{0}")]
    Other(String),
}

/// A boxed future, so that [`Runtime`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A container runtime (see the module docs). All calls are safe to repeat.
pub trait Runtime: Send + Sync + 'static {
    /// `process` or `docker` (shown as the node's `containerRuntimeVersion` prefix).
    fn name(&self) -> &'static str;

    /// The runtime's version string (`plimsoll-process://0.1.0`, `docker://28.2.2`).
    fn version(&self) -> BoxFuture<'_, Result<String, RuntimeError>>;

    /// Whether `image` is on this node (and usable).
    fn has_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<bool, RuntimeError>>;

    /// Images on this node: `(reference, size in bytes)` (the Node's `status.images`).
    fn images(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>, RuntimeError>>;

    /// Creates and starts a container; answers its id once it runs (or has already
    /// ended: a command that exits at once is still a started container).
    fn start<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<String, RuntimeError>>;

    /// Every container this runtime made for this node, running or not.
    fn list(&self) -> BoxFuture<'_, Result<Vec<ContainerInfo>, RuntimeError>>;

    /// Stops a container: SIGTERM, then SIGKILL after `grace`; returns once it has
    /// ended. Stopping an ended container does nothing.
    fn stop<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, Result<(), RuntimeError>>;

    /// Forgets an ended container (its record and cgroup; its log file is the agent's).
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>>;

    /// Cumulative CPU and memory use of a running container.
    fn stats<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<ContainerStats, RuntimeError>>;

    /// Runs `command` inside a running container (its namespaces and root) and waits at
    /// most `timeout` (an exec probe).
    fn exec<'a>(
        &'a self,
        id: &'a str,
        command: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, RuntimeError>>;

    /// The address at which the container's ports are reached from the host (HTTP and
    /// TCP probes): the pod's address on the pod network, `127.0.0.1` for a process-runtime
    /// container on the host's network, the container's address on its Docker network.
    fn address<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<IpAddr, RuntimeError>>;

    /// Gives pods addresses from `cidr`, the node's pod CIDR, the runtime's own way;
    /// `Ok(false)` (the default) when the runtime leaves it to the agent's netlink pod
    /// network ([`crate::agent::network`], the process runtime), `Ok(true)` when the
    /// runtime does it itself (Docker: a network per node and a sandbox per pod).
    fn enable_pod_network(
        &self,
        cidr: crate::agent::cidr::Ipv4Cidr,
    ) -> BoxFuture<'_, Result<bool, RuntimeError>> {
        let _ = cidr;
        Box::pin(async { Ok(false) })
    }

    /// The pod's address when the runtime gives pods addresses itself (see
    /// [`Runtime::enable_pod_network`]); `None` before the pod has one, or by default.
    fn pod_address<'a>(
        &'a self,
        pod_uid: &'a str,
    ) -> BoxFuture<'a, Result<Option<IpAddr>, RuntimeError>> {
        let _ = pod_uid;
        Box::pin(async { Ok(None) })
    }
}
