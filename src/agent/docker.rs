//! The Docker runtime: containers on the local Docker Engine, through its API (bollard).
//!
//! Every container this runtime makes carries labels that say whose it is
//! ([`LABEL_NODE`], [`LABEL_NAMESPACE`], [`LABEL_POD`], [`LABEL_UID`], [`LABEL_CONTAINER`],
//! [`LABEL_KIND`], [`LABEL_ATTEMPT`], [`LABEL_LOG_PATH`], …); they are the runtime's only
//! state, so a new [`DockerRuntime`] (after the agent restarts) finds the containers of its
//! node again with [`Runtime::list`]. Containers are named
//! `plimsoll_<node>_<namespace>_<pod>_<container>_<attempt>_<uid prefix>`, reduced to
//! Docker's name characters.
//!
//! Command semantics are Kubernetes': `command` replaces the image's `Entrypoint`, `args`
//! its `Cmd`; a `command` without `args` runs with no arguments; neither keeps the image's.
//! Resources become the container's cgroup limits (memory with an equal memory+swap limit,
//! so that going over it OOM-kills instead of swapping; a CFS quota from the CPU limit;
//! CPU shares from the request, as the kubelet computes them). Docker never restarts a
//! container (restart policy `no`): restarts are the agent's.
//!
//! Logs: Docker keeps each container's output in its own `json-file` log; a copier task per
//! container follows it through the API (`logs?follow&timestamps`) and writes every line
//! to the container's [`ContainerSpec::log_path`] in the CRI format with rotation
//! ([`crate::agent::logfile::LogWriter`]). The copier ends when the container has ended and
//! its log is drained. When a runtime meets a container it did not start (the agent
//! restarted), [`Runtime::list`] (or [`DockerRuntime::resume_logs`]) starts a copier that
//! resumes after the last line already in the file, so nothing is written twice or lost
//! (as long as Docker still holds the lines: its own log is capped at
//! [`DOCKER_LOG_MAX_FILES`] files of at least [`DOCKER_LOG_MIN_BYTES`]).
//!
//! Images are never pulled (there is no registry): an image that is not on the Engine is
//! [`RuntimeError::ImageNotPresent`].
//!
//! ## Pod network
//!
//! Without [`DockerRuntime::enable_pod_network`], every container goes on the runtime's
//! Docker network (the `network` of [`DockerRuntime::connect`], else Docker's default
//! `bridge`) with an address of its own. With it (given the node's `spec.podCIDR`), the
//! runtime does what the kubelet's pause container does (the agent's netlink pod network,
//! [`crate::agent::network`], is not used: containers live in the Engine's namespaces):
//! - one Docker bridge network per node, `plimsoll-<node>` ([`pod_network_name`], label
//!   [`LABEL_NODE`]), whose IPAM subnet is the node's pod CIDR and whose gateway is its
//!   first address;
//! - one sandbox container per pod ([`sandbox_name`]; labels [`LABEL_NODE`], [`LABEL_UID`],
//!   [`LABEL_NAMESPACE`], [`LABEL_POD`] and [`LABEL_SANDBOX`]), made at the pod's first
//!   container start, on that network and with the pod's hostname. It holds the pod's
//!   network namespace and address and does nothing else: image [`PAUSE_IMAGE`], imported
//!   once into the Engine from a root filesystem holding only the host's static busybox
//!   ([`PAUSE_BUSYBOX`]), running `busybox sleep 2147483647`;
//! - every container of the pod joins it (`network_mode: container:<sandbox id>`, and no
//!   hostname of its own: Docker gives it the sandbox's), so the pod's containers share one
//!   address and reach each other on `localhost`; [`Runtime::address`] answers the
//!   sandbox's address, [`DockerRuntime::pod_address`] the pod's.
//!
//! A sandbox is not a container of the pod spec: [`Runtime::list`] does not report it, and
//! stopping containers leaves it alone. It goes with the pod's last container:
//! [`Runtime::remove`] of a container that leaves no other container (running or ended) of
//! its pod removes the pod's sandbox too (the agent removes all of a pod's containers when
//! the pod goes, and keeps the previous start of each while the pod lives, so this happens
//! exactly at teardown). Besides: a start that fails while the pod has no container
//! removes the sandbox it made; [`Runtime::list`] removes a sandbox that has had no
//! container for [`SANDBOX_ORPHAN_GRACE`] (an agent that died between the two removals);
//! [`DockerRuntime::remove_sandbox`] removes one directly and [`DockerRuntime::destroy_all`]
//! everything of the node.
//!
//! Limitation: the per-node networks of several agents on one Engine do not reach each
//! other: Docker isolates its bridge networks from one another (the `DOCKER-ISOLATION`
//! iptables chains) and this runtime does not defeat that; nor does it route to other
//! hosts' pod CIDRs (Docker's `FORWARD` rules drop new connections into its bridges from
//! outside). Pods of several nodes reach each other with the process runtime's pod network
//! (its tests put hosts in network namespaces).

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary,
    HostConfig, HostConfigLogConfig, Ipam, IpamConfig, Mount as DockerMount, MountTypeEnum,
    Network, NetworkCreateRequest, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, InspectContainerOptions,
    InspectNetworkOptions, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions, StatsOptionsBuilder,
    StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;
use tokio::task::JoinHandle;

use crate::agent::cidr::Ipv4Cidr;
use crate::agent::logfile::{LogStream, LogWriter};
use crate::agent::runtime::{
    BoxFuture, ContainerInfo, ContainerKind, ContainerSpec, ContainerState, ContainerStats,
    ExecOutput, Exit, PodRef, Runtime, RuntimeError,
};

/// Label: the node whose agent made the container.
pub const LABEL_NODE: &str = "io.plimsoll.node";
/// Label: the pod's namespace.
pub const LABEL_NAMESPACE: &str = "io.plimsoll.pod.namespace";
/// Label: the pod's name.
pub const LABEL_POD: &str = "io.plimsoll.pod.name";
/// Label: the pod's uid.
pub const LABEL_UID: &str = "io.plimsoll.pod.uid";
/// Label: the container's name in the pod spec.
pub const LABEL_CONTAINER: &str = "io.plimsoll.container";
/// Label: `init` or `regular`.
pub const LABEL_KIND: &str = "io.plimsoll.kind";
/// Label: the attempt ([`ContainerSpec::attempt`]).
pub const LABEL_ATTEMPT: &str = "io.plimsoll.attempt";
/// Label: the CRI log file the copier writes.
pub const LABEL_LOG_PATH: &str = "io.plimsoll.log-path";
/// Label: the log file's rotation size ([`ContainerSpec::log_max_bytes`]).
pub const LABEL_LOG_MAX_BYTES: &str = "io.plimsoll.log-max-bytes";
/// Label: how many rotated log files are kept ([`ContainerSpec::log_max_files`]).
pub const LABEL_LOG_MAX_FILES: &str = "io.plimsoll.log-max-files";

/// Label: `true` on a pod's sandbox container (see the module docs).
pub const LABEL_SANDBOX: &str = "io.plimsoll.sandbox";

/// The sandbox image, imported into the Engine by the runtime itself (no registry).
pub const PAUSE_IMAGE: &str = "plimsoll-pause:1";
/// The static busybox the sandbox image is made of (Debian's `busybox-static`).
pub const PAUSE_BUSYBOX: &str = "/bin/busybox";
/// What a sandbox runs: nothing, for 68 years.
const PAUSE_CMD: [&str; 3] = ["/bin/busybox", "sleep", "2147483647"];
/// A sandbox left without any container of its pod for this long is removed by
/// [`Runtime::list`] (longer than a start takes between making the sandbox and the
/// container).
pub const SANDBOX_ORPHAN_GRACE: Duration = Duration::from_secs(120);

/// Docker's own (`json-file`) log of a container is capped at this many files …
pub const DOCKER_LOG_MAX_FILES: u32 = 2;
/// … of `max(log_max_bytes, this)` bytes each: enough for the copier to catch up after
/// an agent restart without letting Docker's copy grow without bound.
pub const DOCKER_LOG_MIN_BYTES: u64 = 10 * 1024 * 1024;

/// The oldest Engine API this runtime speaks (one-shot stats appeared in 1.41, Docker 20.10).
const MIN_API: (u64, u64) = (1, 41);
/// Exec output is cut here.
const EXEC_OUTPUT_LIMIT: usize = 10 * 1024;
/// The kubelet's log rotation, for a container whose labels lack it.
const DEFAULT_LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;
const DEFAULT_LOG_MAX_FILES: u32 = 5;
/// How long to wait for an answer besides a stop's grace period.
const STOP_MARGIN: Duration = Duration::from_secs(60);

/// The Docker runtime (see the module docs).
pub struct DockerRuntime {
    docker: Docker,
    node: String,
    network: Option<String>,
    /// Log copiers by container id; a finished one stays until [`Runtime::remove`], so a
    /// container's log is copied once per runtime.
    copiers: Mutex<HashMap<String, JoinHandle<()>>>,
    /// Containers this runtime killed at the end of a stop's grace period (their exit
    /// code 128+n is a signal, not a code the process chose).
    killed: Mutex<HashSet<String>>,
    /// The node's pod network, once [`DockerRuntime::enable_pod_network`] has set it up.
    pod_network: RwLock<Option<DockerPodNetwork>>,
    /// Held while checking for (and importing) the sandbox image, so it is imported once.
    pause_image: tokio::sync::Mutex<()>,
}

/// The node's Docker network for pods.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DockerPodNetwork {
    /// Its Docker name ([`pod_network_name`]).
    name: String,
    /// Its subnet: the node's pod CIDR.
    cidr: Ipv4Cidr,
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("node", &self.node)
            .field("network", &self.network)
            .field("pod_network", &*read(&self.pod_network))
            .finish_non_exhaustive()
    }
}

impl Drop for DockerRuntime {
    fn drop(&mut self) {
        for (_, copier) in lock(&self.copiers).drain() {
            copier.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The HTTP status of a Docker error answer, if it was one.
fn status(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// A Docker error about container `id` as a [`RuntimeError`] (404 → `NotFound`).
fn container_error(op: &str, id: &str, e: DockerError) -> RuntimeError {
    if status(&e) == Some(404) {
        RuntimeError::NotFound(id.to_string())
    } else {
        RuntimeError::Other(format!("docker {op} of container {id}: {e}"))
    }
}

/// Docker's names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; anything else becomes `-`.
fn sanitise(part: &str) -> String {
    part.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The container's Docker name.
pub fn container_name(node: &str, spec: &ContainerSpec) -> String {
    let uid: String = spec.pod.uid.chars().filter(|c| *c != '-').take(8).collect();
    format!(
        "plimsoll_{}_{}_{}_{}_{}_{}",
        sanitise(node),
        sanitise(&spec.pod.namespace),
        sanitise(&spec.pod.name),
        sanitise(&spec.name),
        spec.attempt,
        sanitise(&uid)
    )
}

/// The Docker network of node `node`'s pods.
pub fn pod_network_name(node: &str) -> String {
    format!("plimsoll-{}", sanitise(node))
}

/// The Docker name of a pod's sandbox: `plimsoll_POD_<node>_<namespace>_<pod>_<uid>`
/// (`POD` is not a node name, which is lower case, so no container name is one).
pub fn sandbox_name(node: &str, pod: &PodRef) -> String {
    format!(
        "plimsoll_POD_{}_{}_{}_{}",
        sanitise(node),
        sanitise(&pod.namespace),
        sanitise(&pod.name),
        sanitise(&pod.uid)
    )
}

/// A Docker time (`2024-05-01T12:00:00.123456789Z`); Docker's zero time
/// (`0001-01-01T00:00:00Z`, never) and anything unparsable are `None`.
fn parse_time(s: &str) -> Option<SystemTime> {
    let ts: jiff::Timestamp = s.parse().ok()?;
    if ts.as_second() <= 0 {
        return None;
    }
    Some(SystemTime::from(ts))
}

/// The CPU shares of a CPU request, as the kubelet computes them.
fn cpu_shares(request_millis: u64) -> i64 {
    let shares = request_millis.saturating_mul(1024) / 1000;
    i64::try_from(shares.max(2)).unwrap_or(i64::MAX)
}

/// The CFS period the kubelet uses (100 ms), and the quota of a CPU limit for it (at least
/// 1 ms, the kernel's minimum).
const CFS_PERIOD_US: i64 = 100_000;
fn cpu_quota(limit_millis: u64) -> i64 {
    let quota = limit_millis.saturating_mul(CFS_PERIOD_US as u64) / 1000;
    i64::try_from(quota.max(1000)).unwrap_or(i64::MAX)
}

/// Kubernetes' `command`/`args` as Docker's `(Entrypoint, Cmd)`; `None` keeps the image's.
#[allow(clippy::type_complexity)]
fn entrypoint_and_cmd(
    command: Option<&[String]>,
    args: Option<&[String]>,
) -> (Option<Vec<String>>, Option<Vec<String>>) {
    // An empty list is the same as none, as in Kubernetes.
    let command = command.filter(|c| !c.is_empty());
    let args = args.filter(|a| !a.is_empty());
    match (command, args) {
        (Some(c), Some(a)) => (Some(c.to_vec()), Some(a.to_vec())),
        // With an Entrypoint given, Docker does not fall back to the image's Cmd; an
        // explicit empty Cmd says so.
        (Some(c), None) => (Some(c.to_vec()), Some(Vec::new())),
        (None, Some(a)) => (None, Some(a.to_vec())),
        (None, None) => (None, None),
    }
}

/// How far apart in time Docker may write two messages out of order. Its stdout and
/// stderr copiers stamp a message when they read it and append it afterwards, so the
/// file is in time order only up to a few milliseconds; resuming re-reads this much
/// before the newest message written and skips what was written already.
const REORDER_WINDOW: Duration = Duration::from_secs(2);

/// One log entry's identity: time, stream, content (without its newline), partial.
fn entry_key(ts: SystemTime, stream: LogStream, content: &[u8], partial: bool) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ts.hash(&mut h);
    matches!(stream, LogStream::Stderr).hash(&mut h);
    content.hash(&mut h);
    partial.hash(&mut h);
    h.finish()
}

/// What a log copier has written: the newest message's time and the entries of the last
/// [`REORDER_WINDOW`] before it, so that a pass that reads Docker's log again (after an
/// agent restart, or after a follow that ended early) writes every message exactly once.
#[derive(Debug, Default)]
struct Dedup {
    /// The newest time written.
    newest: Option<SystemTime>,
    /// Entries written within the window before `newest`, oldest first.
    recent: std::collections::VecDeque<(SystemTime, u64)>,
    /// This pass's copy of `recent` (entry → how many times), consumed as they come again.
    pass: HashMap<u64, usize>,
}

impl Dedup {
    /// Starts a pass over Docker's log; answers its `since` (whole seconds).
    fn next_pass(&mut self) -> Option<i32> {
        self.pass.clear();
        for (_, key) in &self.recent {
            *self.pass.entry(*key).or_insert(0) += 1;
        }
        let from = self.newest?.checked_sub(REORDER_WINDOW)?;
        let secs = from.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
        Some(i32::try_from(secs).unwrap_or(i32::MAX))
    }

    /// Whether an entry was written before this pass.
    fn seen(&mut self, ts: SystemTime, key: u64) -> bool {
        let Some(newest) = self.newest else {
            return false;
        };
        if ts + REORDER_WINDOW < newest {
            return true;
        }
        match self.pass.get_mut(&key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    /// Records a written entry.
    fn wrote(&mut self, ts: SystemTime, key: u64) {
        let newest = self.newest.map_or(ts, |n| n.max(ts));
        self.newest = Some(newest);
        self.recent.push_back((ts, key));
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| *t + REORDER_WINDOW < newest)
        {
            self.recent.pop_front();
        }
    }
}

/// One CRI log line (`TIMESTAMP STREAM P|F CONTENT`) as `(time, key)`.
fn parse_cri_line(line: &[u8]) -> Option<(SystemTime, u64)> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let ts = parse_time(std::str::from_utf8(parts.next()?).ok()?)?;
    let stream = match parts.next()? {
        b"stdout" => LogStream::Stdout,
        b"stderr" => LogStream::Stderr,
        _ => return None,
    };
    let partial = match parts.next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    let content = parts.next().unwrap_or_default();
    Some((ts, entry_key(ts, stream, content, partial)))
}

/// What the CRI log at `path` already holds, from the end of its live file (or of the
/// newest rotated one when the live one is empty).
fn written_before(path: &Path) -> std::io::Result<Dedup> {
    let rotated = PathBuf::from(format!("{}.1", path.display()));
    for candidate in [path, rotated.as_path()] {
        let dedup = written_in(candidate)?;
        if dedup.newest.is_some() {
            return Ok(dedup);
        }
    }
    Ok(Dedup::default())
}

fn written_in(path: &Path) -> std::io::Result<Dedup> {
    const TAIL: u64 = 1024 * 1024;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Dedup::default()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let mut lines: Vec<&[u8]> = tail.split(|b| *b == b'\n').collect();
    // The last piece is what follows the final newline (nothing, or half an entry); the
    // first may be the end of an entry cut by the seek.
    lines.pop();
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let mut dedup = Dedup::default();
    for (ts, key) in lines.into_iter().filter_map(parse_cri_line) {
        dedup.wrote(ts, key);
    }
    Ok(dedup)
}

/// Writes one Docker log message (`TIMESTAMP TEXT`, where `TEXT` ends in a newline unless
/// Docker split a long line or the output ended without one) to the CRI log, unless it
/// was written before.
fn write_message(
    writer: &mut LogWriter,
    stream: LogStream,
    message: &[u8],
    dedup: &mut Dedup,
) -> std::io::Result<()> {
    let (ts, text) = match message.iter().position(|b| *b == b' ') {
        Some(space) => match std::str::from_utf8(&message[..space])
            .ok()
            .and_then(parse_time)
        {
            Some(ts) => (ts, &message[space + 1..]),
            None => (SystemTime::now(), message),
        },
        None => (SystemTime::now(), message),
    };
    let (content, partial) = match text.strip_suffix(b"\n") {
        Some(content) => (content, false),
        None => (text, true),
    };
    let key = entry_key(ts, stream, content, partial);
    if dedup.seen(ts, key) {
        return Ok(());
    }
    writer.write(stream, ts, content, partial)?;
    dedup.wrote(ts, key);
    Ok(())
}

/// Where a container's output goes, from its labels.
#[derive(Debug, Clone)]
struct LogTarget {
    path: PathBuf,
    max_bytes: u64,
    max_files: u32,
}

/// Follows a container's Docker log into its CRI log until the container has ended and
/// the log is drained.
async fn copy_logs(docker: Docker, id: String, target: Option<LogTarget>, resume: bool) {
    let target = match target {
        Some(target) => target,
        None => match docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
        {
            Ok(inspect) => match log_target(&inspect) {
                Some(target) => target,
                None => {
                    tracing::warn!(container = %id, "log copier: the container has no {LABEL_LOG_PATH} label");
                    return;
                }
            },
            Err(e) => {
                tracing::warn!(container = %id, "log copier: docker inspect: {e}");
                return;
            }
        },
    };
    if let Err(e) = copy_logs_inner(&docker, &id, &target, resume).await {
        tracing::warn!(container = %id, path = %target.path.display(), "log copier: {e}");
    }
}

/// The log file and rotation of an inspected container, from its labels.
fn log_target(inspect: &ContainerInspectResponse) -> Option<LogTarget> {
    let labels = inspect.config.as_ref()?.labels.as_ref()?;
    Some(LogTarget {
        path: PathBuf::from(labels.get(LABEL_LOG_PATH)?),
        max_bytes: labels
            .get(LABEL_LOG_MAX_BYTES)
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_LOG_MAX_BYTES),
        max_files: labels
            .get(LABEL_LOG_MAX_FILES)
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_LOG_MAX_FILES),
    })
}

async fn copy_logs_inner(
    docker: &Docker,
    id: &str,
    target: &LogTarget,
    resume: bool,
) -> Result<(), String> {
    let path = &target.path;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let mut dedup = if resume {
        written_before(path).map_err(|e| format!("reading {}: {e}", path.display()))?
    } else {
        Dedup::default()
    };
    let mut writer = LogWriter::open(path, target.max_bytes, target.max_files)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    // Follow while the container runs. Docker 20.10's follower can end at the container's
    // exit before its last message is read (an output that ends without a newline), and a
    // follow can break off (the daemon restarting): so after each follow, look at the
    // container; while it runs, follow again; once it has ended, read what is left once.
    let mut follow = true;
    loop {
        let mut options = LogsOptionsBuilder::new()
            .follow(follow)
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .tail("all");
        if let Some(since) = dedup.next_pass() {
            options = options.since(since);
        }
        let mut stream = docker.logs(id, Some(options.build()));
        while let Some(item) = stream.next().await {
            let item = match item {
                Ok(item) => item,
                Err(e) if status(&e) == Some(404) => return Ok(()),
                Err(e) => {
                    tracing::debug!(container = %id, "docker logs broke off: {e}");
                    break;
                }
            };
            let (kind, message) = match item {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    (LogStream::Stdout, message)
                }
                LogOutput::StdErr { message } => (LogStream::Stderr, message),
                LogOutput::StdIn { .. } => continue,
            };
            write_message(&mut writer, kind, &message, &mut dedup)
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        if !follow {
            return Ok(());
        }
        match docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(inspect) => {
                let state = inspect.state.as_ref();
                if state.and_then(|s| s.running) == Some(true) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                } else {
                    follow = false;
                }
            }
            Err(e) if status(&e) == Some(404) => return Ok(()),
            Err(e) => return Err(format!("docker inspect: {e}")),
        }
    }
}

impl DockerRuntime {
    /// Connects to the local Docker Engine (`DOCKER_HOST`, else `/var/run/docker.sock`),
    /// negotiates the API version with it (bollard speaks 1.49; older daemons answer at
    /// their own version, at least 1.41) and checks that `network` exists when one is
    /// given (`None`: Docker's default bridge).
    pub async fn connect(node_name: &str, network: Option<String>) -> Result<Self, RuntimeError> {
        if node_name.is_empty() {
            return Err(RuntimeError::Other(
                "docker runtime: the node name is empty".into(),
            ));
        }
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| RuntimeError::Other(format!("connecting to the Docker Engine: {e}")))?
            .negotiate_version()
            .await
            .map_err(|e| RuntimeError::Other(format!("the Docker Engine does not answer: {e}")))?;
        let version = docker
            .version()
            .await
            .map_err(|e| RuntimeError::Other(format!("docker version: {e}")))?;
        let api = version.api_version.clone().unwrap_or_default();
        let parsed = api.split_once('.').and_then(|(major, minor)| {
            Some((major.parse::<u64>().ok()?, minor.parse::<u64>().ok()?))
        });
        match parsed {
            Some(v) if v >= MIN_API => {}
            _ => {
                return Err(RuntimeError::Other(format!(
                    "the Docker Engine speaks API {api:?}; this runtime needs {}.{} or newer",
                    MIN_API.0, MIN_API.1
                )))
            }
        }
        if let Some(net) = &network {
            docker
                .inspect_network(net, None::<InspectNetworkOptions>)
                .await
                .map_err(|e| RuntimeError::Other(format!("docker network {net:?}: {e}")))?;
        }
        Ok(Self {
            docker,
            node: node_name.to_string(),
            network,
            copiers: Mutex::new(HashMap::new()),
            killed: Mutex::new(HashSet::new()),
            pod_network: RwLock::new(None),
            pause_image: tokio::sync::Mutex::new(()),
        })
    }

    /// The Docker client (for callers that need more of the API).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// Starts copying a container's Docker log into its CRI log file, resuming after the
    /// last line already there, unless this runtime already copies (or copied) it.
    /// [`Runtime::list`] does this for every container it finds; call it directly for a
    /// container known otherwise. The file and its rotation come from the container's
    /// labels (`info.log_path` is the same file).
    pub fn resume_logs(&self, info: &ContainerInfo) {
        self.ensure_copier(&info.id, None, true);
    }

    /// Starts the log copier of container `id` unless this runtime has one. Without a
    /// `target`, the copier reads it from the container's labels.
    fn ensure_copier(&self, id: &str, target: Option<LogTarget>, resume: bool) {
        let mut copiers = lock(&self.copiers);
        if copiers.contains_key(id) {
            return;
        }
        let task = tokio::spawn(copy_logs(
            self.docker.clone(),
            id.to_string(),
            target,
            resume,
        ));
        copiers.insert(id.to_string(), task);
    }

    /// Waits until this runtime's log copier of container `id` has finished (the
    /// container ended and its output is all in the file); `false` when there is no copier
    /// or `timeout` passed first.
    pub async fn wait_logs(&self, id: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match lock(&self.copiers).get(id) {
                None => return false,
                Some(task) if task.is_finished() => return true,
                Some(_) => {}
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn labels(&self, spec: &ContainerSpec) -> Result<HashMap<String, String>, RuntimeError> {
        let log_path = spec.log_path.to_str().ok_or_else(|| {
            RuntimeError::Start(format!("log path {:?} is not UTF-8", spec.log_path))
        })?;
        let kind = match spec.kind {
            ContainerKind::Init => "init",
            ContainerKind::Regular => "regular",
        };
        Ok(HashMap::from([
            (LABEL_NODE.to_string(), self.node.clone()),
            (LABEL_NAMESPACE.to_string(), spec.pod.namespace.clone()),
            (LABEL_POD.to_string(), spec.pod.name.clone()),
            (LABEL_UID.to_string(), spec.pod.uid.clone()),
            (LABEL_CONTAINER.to_string(), spec.name.clone()),
            (LABEL_KIND.to_string(), kind.to_string()),
            (LABEL_ATTEMPT.to_string(), spec.attempt.to_string()),
            (LABEL_LOG_PATH.to_string(), log_path.to_string()),
            (
                LABEL_LOG_MAX_BYTES.to_string(),
                spec.log_max_bytes.to_string(),
            ),
            (
                LABEL_LOG_MAX_FILES.to_string(),
                spec.log_max_files.to_string(),
            ),
        ]))
    }

    /// The container's create request; `sandbox`: the id of the pod's sandbox, whose
    /// network (and hostname) it joins.
    fn create_body(
        &self,
        spec: &ContainerSpec,
        sandbox: Option<&str>,
    ) -> Result<ContainerCreateBody, RuntimeError> {
        let (entrypoint, cmd) = entrypoint_and_cmd(spec.command.as_deref(), spec.args.as_deref());
        let mut mounts = Vec::with_capacity(spec.mounts.len());
        for m in &spec.mounts {
            let source = m.host_path.to_str().ok_or_else(|| {
                RuntimeError::Start(format!("volume path {:?} is not UTF-8", m.host_path))
            })?;
            if !m.container_path.starts_with('/') {
                return Err(RuntimeError::Start(format!(
                    "mount path {:?} is not absolute",
                    m.container_path
                )));
            }
            mounts.push(DockerMount {
                target: Some(m.container_path.clone()),
                source: Some(source.to_string()),
                typ: Some(MountTypeEnum::BIND),
                read_only: Some(m.read_only),
                ..Default::default()
            });
        }
        let r = &spec.resources;
        let memory = r
            .memory_limit_bytes
            .map(|b| {
                i64::try_from(b).map_err(|_| {
                    RuntimeError::Start(format!("memory limit {b} bytes is out of range"))
                })
            })
            .transpose()?;
        let docker_log_bytes = spec.log_max_bytes.max(DOCKER_LOG_MIN_BYTES);
        let host_config = HostConfig {
            mounts: Some(mounts),
            memory,
            memory_swap: memory,
            cpu_period: r.cpu_limit_millis.map(|_| CFS_PERIOD_US),
            cpu_quota: r.cpu_limit_millis.map(cpu_quota),
            cpu_shares: r.cpu_request_millis.map(cpu_shares),
            network_mode: Some(match sandbox {
                Some(id) => format!("container:{id}"),
                None => self.network.clone().unwrap_or_else(|| "bridge".to_string()),
            }),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".to_string()),
                config: Some(HashMap::from([
                    ("max-size".to_string(), docker_log_bytes.to_string()),
                    ("max-file".to_string(), DOCKER_LOG_MAX_FILES.to_string()),
                ])),
            }),
            ..Default::default()
        };
        Ok(ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint,
            cmd,
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: spec.working_dir.clone().filter(|d| !d.is_empty()),
            // Docker refuses a hostname with a container's network: it is the sandbox's.
            hostname: Some(spec.hostname.clone()).filter(|h| !h.is_empty() && sandbox.is_none()),
            labels: Some(self.labels(spec)?),
            attach_stdout: Some(false),
            attach_stderr: Some(false),
            tty: Some(false),
            open_stdin: Some(false),
            host_config: Some(host_config),
            ..Default::default()
        })
    }

    async fn inspect(&self, id: &str) -> Result<ContainerInspectResponse, RuntimeError> {
        self.docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| container_error("inspect", id, e))
    }

    /// Whether an inspected container is one of this node's.
    fn is_ours(&self, inspect: &ContainerInspectResponse) -> bool {
        let labels = inspect.config.as_ref().and_then(|c| c.labels.as_ref());
        labels.and_then(|l| l.get(LABEL_NODE)).map(String::as_str) == Some(self.node.as_str())
    }

    /// An inspected container as [`ContainerInfo`] (`None` when its labels are not a
    /// complete set of this runtime's).
    fn info(&self, inspect: &ContainerInspectResponse) -> Option<(ContainerInfo, LogTarget)> {
        let id = inspect.id.clone()?;
        let config = inspect.config.as_ref()?;
        let labels = config.labels.as_ref()?;
        let label = |k: &str| labels.get(k).cloned();
        let kind = match label(LABEL_KIND)?.as_str() {
            "init" => ContainerKind::Init,
            _ => ContainerKind::Regular,
        };
        let target = log_target(inspect)?;
        let log_path = target.path.clone();
        let state = inspect.state.as_ref();
        let started_at = state
            .and_then(|s| s.started_at.as_deref())
            .and_then(parse_time);
        let info = ContainerInfo {
            pod: PodRef {
                namespace: label(LABEL_NAMESPACE)?,
                name: label(LABEL_POD)?,
                uid: label(LABEL_UID)?,
            },
            name: label(LABEL_CONTAINER)?,
            kind,
            attempt: label(LABEL_ATTEMPT)?.parse().ok()?,
            image: config.image.clone().unwrap_or_default(),
            image_id: inspect.image.clone().unwrap_or_default(),
            started_at,
            state: self.state(&id, inspect),
            log_path,
            pid: state
                .filter(|s| s.running == Some(true))
                .and_then(|s| s.pid)
                .and_then(|p| u32::try_from(p).ok())
                .filter(|p| *p > 0),
            id,
        };
        Some((info, target))
    }

    fn state(&self, id: &str, inspect: &ContainerInspectResponse) -> ContainerState {
        let Some(state) = inspect.state.as_ref() else {
            return ContainerState::Unknown("Docker reports no state".into());
        };
        match state.status {
            Some(ContainerStateStatusEnum::CREATED) => ContainerState::Created,
            Some(ContainerStateStatusEnum::RUNNING) => ContainerState::Running,
            Some(ContainerStateStatusEnum::EXITED) | Some(ContainerStateStatusEnum::DEAD) => {
                let exit_code = state
                    .exit_code
                    .and_then(|c| i32::try_from(c).ok())
                    .unwrap_or(-1);
                let oom_killed = state.oom_killed == Some(true);
                let signal = if oom_killed && exit_code == 137 {
                    Some(9)
                } else if exit_code > 128 && lock(&self.killed).contains(id) {
                    Some(exit_code - 128)
                } else {
                    None
                };
                ContainerState::Exited(Exit {
                    exit_code,
                    signal,
                    oom_killed,
                    finished_at: state
                        .finished_at
                        .as_deref()
                        .and_then(parse_time)
                        .unwrap_or(SystemTime::UNIX_EPOCH),
                })
            }
            Some(other) => {
                let error = state.error.clone().filter(|e| !e.is_empty());
                ContainerState::Unknown(match error {
                    Some(error) => format!("Docker state {other}: {error}"),
                    None => format!("Docker state {other}"),
                })
            }
            None => ContainerState::Unknown("Docker reports no state".into()),
        }
    }

    async fn start_inner(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        // Never pull: an absent image is the pod's ErrImageNeverPull.
        match self.docker.inspect_image(&spec.image).await {
            Ok(_) => {}
            Err(e) if status(&e) == Some(404) => {
                return Err(RuntimeError::ImageNotPresent(spec.image.clone()))
            }
            Err(e) => {
                return Err(RuntimeError::Other(format!(
                    "docker image {:?}: {e}",
                    spec.image
                )))
            }
        }
        if let Some(dir) = spec.log_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                RuntimeError::Start(format!("creating the log directory {}: {e}", dir.display()))
            })?;
        }
        let pod_network = read(&self.pod_network).clone();
        let sandbox = match &pod_network {
            Some(net) => Some(self.ensure_sandbox(net, spec).await?),
            None => None,
        };
        let result = self.create_and_start(spec, sandbox.as_deref()).await;
        if result.is_err() && sandbox.is_some() {
            // A pod that has no container yet keeps no sandbox either.
            if let Err(e) = self.remove_sandbox_if_unused(&spec.pod.uid).await {
                tracing::warn!(pod = %spec.pod.name, "removing the sandbox of a pod that failed to start: {e}");
            }
        }
        result
    }

    async fn create_and_start(
        &self,
        spec: &ContainerSpec,
        sandbox: Option<&str>,
    ) -> Result<String, RuntimeError> {
        let body = self.create_body(spec, sandbox)?;
        let name = container_name(&self.node, spec);
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let id = match self.docker.create_container(Some(options), body).await {
            Ok(created) => created.id,
            Err(e) if status(&e) == Some(409) => {
                // Made by an earlier call for the same attempt (a repeated start).
                let existing = self.inspect(&name).await?;
                let same = self.info(&existing).is_some_and(|(info, _)| {
                    self.is_ours(&existing)
                        && info.pod == spec.pod
                        && info.name == spec.name
                        && info.attempt == spec.attempt
                });
                if !same {
                    return Err(RuntimeError::Start(format!(
                        "a container named {name} exists and is not this one: {e}"
                    )));
                }
                let id = existing.id.clone().unwrap_or(name.clone());
                if !matches!(self.state(&id, &existing), ContainerState::Created) {
                    let (_, target) = self.info(&existing).ok_or_else(|| {
                        RuntimeError::Other(format!("container {id} lost its labels"))
                    })?;
                    self.ensure_copier(&id, Some(target), true);
                    return Ok(id);
                }
                id
            }
            Err(e) => {
                return Err(RuntimeError::Start(format!(
                    "creating container {name}: {e}"
                )))
            }
        };
        if let Err(e) = self
            .docker
            .start_container(&id, None::<StartContainerOptions>)
            .await
        {
            // Leave nothing half-made behind: the next attempt is a new container.
            let _ = self
                .docker
                .remove_container(
                    &id,
                    Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                )
                .await;
            return Err(RuntimeError::Start(format!(
                "starting container {name}: {e}"
            )));
        }
        let target = LogTarget {
            path: spec.log_path.clone(),
            max_bytes: spec.log_max_bytes,
            max_files: spec.log_max_files,
        };
        self.ensure_copier(&id, Some(target), false);
        Ok(id)
    }

    async fn list_inner(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_NODE}={}", self.node)],
        )]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| RuntimeError::Other(format!("docker list containers: {e}")))?;
        self.collect_orphan_sandboxes(&summaries).await;
        let mut out = Vec::with_capacity(summaries.len());
        for summary in summaries {
            if is_sandbox(summary.labels.as_ref()) {
                continue;
            }
            let Some(id) = summary.id else { continue };
            let inspect = match self.inspect(&id).await {
                Ok(inspect) => inspect,
                // Removed between the list and the inspect.
                Err(RuntimeError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            if !self.is_ours(&inspect) {
                continue;
            }
            let Some((info, target)) = self.info(&inspect) else {
                tracing::warn!(container = %id, "a container with this node's label but not the others");
                continue;
            };
            // Met for the first time by this runtime (the agent restarted): its log copier.
            if !matches!(info.state, ContainerState::Created) {
                self.ensure_copier(&info.id, Some(target), true);
            }
            out.push(info);
        }
        Ok(out)
    }

    async fn stop_inner(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        let t = i32::try_from(secs).unwrap_or(i32::MAX);
        let before = self.inspect(id).await?;
        let was_running = before.state.as_ref().and_then(|s| s.running) == Some(true);
        let started = Instant::now();
        let docker = self
            .docker
            .clone()
            .with_timeout(Duration::from_secs(secs) + STOP_MARGIN);
        docker
            .stop_container(id, Some(StopContainerOptionsBuilder::new().t(t).build()))
            .await
            .map_err(|e| container_error("stop", id, e))?;
        let mut wait = docker.wait_container(
            id,
            Some(
                WaitContainerOptionsBuilder::new()
                    .condition("not-running")
                    .build(),
            ),
        );
        match wait.next().await {
            None | Some(Ok(_)) | Some(Err(DockerError::DockerContainerWaitError { .. })) => {}
            Some(Err(e)) if status(&e) == Some(404) => {}
            Some(Err(e)) => return Err(container_error("wait", id, e)),
        }
        if was_running && started.elapsed() >= Duration::from_secs(secs) {
            // The grace period ran out: Docker sent SIGKILL.
            let after = self.inspect(id).await?;
            if after.state.as_ref().and_then(|s| s.exit_code) == Some(137) {
                lock(&self.killed).insert(id.to_string());
            }
        }
        Ok(())
    }

    async fn remove_inner(&self, id: &str) -> Result<(), RuntimeError> {
        let inspect = match self.inspect(id).await {
            Ok(inspect) => inspect,
            Err(RuntimeError::NotFound(_)) => {
                self.forget(id);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if inspect.state.as_ref().and_then(|s| s.running) == Some(true) {
            return Err(RuntimeError::Other(format!(
                "container {id} is running: stop it before removing it"
            )));
        }
        // Let the copier take the last lines before Docker's log goes with the container.
        let _ = self.wait_logs(id, Duration::from_secs(5)).await;
        match self
            .docker
            .remove_container(
                id,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => return Err(container_error("remove", id, e)),
        }
        self.forget(id);
        // The pod's last container takes the pod's sandbox with it (see the module docs).
        let joined_sandbox = inspect
            .host_config
            .as_ref()
            .and_then(|h| h.network_mode.as_deref())
            .is_some_and(|m| m.starts_with("container:"));
        let labels = inspect.config.as_ref().and_then(|c| c.labels.as_ref());
        if joined_sandbox && !is_sandbox(labels) {
            if let Some(uid) = labels.and_then(|l| l.get(LABEL_UID)) {
                self.remove_sandbox_if_unused(uid).await?;
            }
        }
        Ok(())
    }

    fn forget(&self, id: &str) {
        if let Some(task) = lock(&self.copiers).remove(id) {
            task.abort();
        }
        lock(&self.killed).remove(id);
    }

    async fn stats_inner(&self, id: &str) -> Result<ContainerStats, RuntimeError> {
        let options = StatsOptionsBuilder::new()
            .stream(false)
            .one_shot(true)
            .build();
        let mut stream = self.docker.stats(id, Some(options));
        let stats = match stream.next().await {
            Some(Ok(stats)) => stats,
            Some(Err(e)) => return Err(container_error("stats", id, e)),
            None => {
                return Err(RuntimeError::Other(format!(
                    "docker stats of {id}: no answer"
                )))
            }
        };
        let cpu_usage_ns = stats
            .cpu_stats
            .as_ref()
            .and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0);
        let memory = stats.memory_stats.as_ref();
        let usage = memory.and_then(|m| m.usage).unwrap_or(0);
        let inactive = memory
            .and_then(|m| m.stats.as_ref())
            .and_then(|s| {
                s.get("total_inactive_file")
                    .or_else(|| s.get("inactive_file"))
                    .copied()
            })
            .unwrap_or(0);
        Ok(ContainerStats {
            cpu_usage_ns,
            memory_working_set_bytes: usage.saturating_sub(inactive),
            timestamp: SystemTime::now(),
        })
    }

    async fn exec_inner(
        &self,
        id: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        if command.is_empty() {
            return Err(RuntimeError::Other(format!("exec in {id}: empty command")));
        }
        let deadline = Instant::now() + timeout;
        let exec = self
            .docker
            .create_exec(
                id,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(command.to_vec()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| container_error("exec", id, e))?;
        let started = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| container_error("exec start", id, e))?;
        let StartExecResults::Attached { mut output, .. } = started else {
            return Err(RuntimeError::Other(format!(
                "exec in {id}: Docker did not attach"
            )));
        };
        let mut buf: Vec<u8> = Vec::new();
        let read = async {
            while let Some(chunk) = output.next().await {
                let chunk = chunk.map_err(|e| container_error("exec output", id, e))?;
                let room = EXEC_OUTPUT_LIMIT.saturating_sub(buf.len());
                let bytes = chunk.into_bytes();
                buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            Ok::<(), RuntimeError>(())
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let timed_out = match tokio::time::timeout(remaining, read).await {
            Ok(result) => {
                result?;
                false
            }
            Err(_) => true,
        };
        let mut exit_code = None;
        if !timed_out {
            // The output ends just before the exec is recorded as ended.
            loop {
                let inspect = self
                    .docker
                    .inspect_exec(&exec.id)
                    .await
                    .map_err(|e| container_error("exec inspect", id, e))?;
                if inspect.running != Some(true) {
                    exit_code = inspect.exit_code.and_then(|c| i32::try_from(c).ok());
                    break;
                }
                if Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let mut output = String::from_utf8_lossy(&buf).into_owned();
        if output.len() > EXEC_OUTPUT_LIMIT {
            let mut cut = EXEC_OUTPUT_LIMIT;
            while !output.is_char_boundary(cut) {
                cut -= 1;
            }
            output.truncate(cut);
        }
        Ok(ExecOutput { exit_code, output })
    }

    async fn address_inner(&self, id: &str) -> Result<IpAddr, RuntimeError> {
        let inspect = self.inspect(id).await?;
        let joined = inspect
            .host_config
            .as_ref()
            .and_then(|h| h.network_mode.as_deref())
            .and_then(|m| m.strip_prefix("container:"));
        if let Some(sandbox) = joined {
            let sandbox = match self.inspect(sandbox).await {
                Ok(sandbox) => sandbox,
                Err(RuntimeError::NotFound(s)) => {
                    return Err(RuntimeError::Other(format!(
                        "container {id}: its pod's sandbox {s} is gone"
                    )))
                }
                Err(e) => return Err(e),
            };
            return self.sandbox_address(&sandbox);
        }
        let settings = inspect.network_settings.as_ref();
        let network = self.network.as_deref().unwrap_or("bridge");
        let on_network = settings
            .and_then(|s| s.networks.as_ref())
            .and_then(|n| n.get(network))
            .and_then(|e| e.ip_address.clone())
            .filter(|a| !a.is_empty());
        let address = on_network
            .or_else(|| {
                settings
                    .and_then(|s| s.ip_address.clone())
                    .filter(|a| !a.is_empty())
            })
            .ok_or_else(|| {
                RuntimeError::Other(format!(
                    "container {id} has no address on network {network} (is it running?)"
                ))
            })?;
        address.parse().map_err(|e| {
            RuntimeError::Other(format!("container {id}: Docker address {address:?}: {e}"))
        })
    }
}

/// Whether a container's labels are a sandbox's.
fn is_sandbox(labels: Option<&HashMap<String, String>>) -> bool {
    labels
        .and_then(|l| l.get(LABEL_SANDBOX))
        .is_some_and(|v| v == "true")
}

/// Whether an ELF file asks for a program interpreter (a `PT_INTERP` program header: it is
/// dynamically linked); `Err` when it is not an ELF file at all.
fn elf_has_interpreter(elf: &[u8]) -> Result<bool, String> {
    const PT_INTERP: u32 = 3;
    if elf.len() < 0x34 || &elf[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    let big = match elf[5] {
        1 => false,
        2 => true,
        other => return Err(format!("unknown ELF byte order {other}")),
    };
    let uint = |at: usize, len: usize| -> Result<u64, String> {
        let bytes = at
            .checked_add(len)
            .and_then(|end| elf.get(at..end))
            .ok_or_else(|| "truncated ELF header".to_string())?;
        let mut v = 0u64;
        for i in 0..len {
            let b = if big { bytes[i] } else { bytes[len - 1 - i] };
            v = (v << 8) | u64::from(b);
        }
        Ok(v)
    };
    // (e_phoff, e_phentsize, e_phnum) for ELF32 and ELF64.
    let (phoff, phentsize, phnum) = match elf[4] {
        1 => (uint(0x1c, 4)?, uint(0x2a, 2)?, uint(0x2c, 2)?),
        2 => (uint(0x20, 8)?, uint(0x36, 2)?, uint(0x38, 2)?),
        other => return Err(format!("unknown ELF class {other}")),
    };
    for i in 0..phnum {
        let at = usize::try_from(phoff.saturating_add(i.saturating_mul(phentsize)))
            .map_err(|e| e.to_string())?;
        if uint(at, 4)? == u64::from(PT_INTERP) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The sandbox image's root filesystem: the host's static busybox and the directories
/// Docker mounts over, as a tar archive.
fn pause_rootfs_tar() -> Result<Vec<u8>, RuntimeError> {
    let missing = |why: String| {
        RuntimeError::Other(format!(
            "the pod sandbox image {PAUSE_IMAGE} is made of {PAUSE_BUSYBOX}, a static busybox \
             (Debian's busybox-static, which `make deps` installs): {why}"
        ))
    };
    let busybox = std::fs::read(PAUSE_BUSYBOX).map_err(|e| missing(e.to_string()))?;
    match elf_has_interpreter(&busybox) {
        Ok(false) => {}
        Ok(true) => return Err(missing("it is dynamically linked".into())),
        Err(e) => return Err(missing(e)),
    }
    let io = |e: std::io::Error| RuntimeError::Other(format!("building {PAUSE_IMAGE}: {e}"));
    let mut tar = tar::Builder::new(Vec::new());
    for dir in ["bin", "dev", "etc", "proc", "sys"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        tar.append_data(&mut h, format!("{dir}/"), std::io::empty())
            .map_err(io)?;
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(busybox.len() as u64);
    tar.append_data(&mut h, "bin/busybox", busybox.as_slice())
        .map_err(io)?;
    tar.into_inner().map_err(io)
}

impl DockerRuntime {
    /// Gives the node's pods a network of their own (see the module docs): makes sure the
    /// Docker bridge network [`pod_network_name`] exists with subnet `node_cidr` (the node's
    /// `spec.podCIDR`) and its first address as gateway, labelled with the node; from then
    /// on, every pod gets a sandbox on it at its first container start. Safe to repeat
    /// with the same CIDR. A network of that name with another subnet (the node's CIDR
    /// changed, or someone else's network) is an error, as is a CIDR that overlaps another
    /// Docker network's (Docker refuses it). Containers started before keep their network.
    pub async fn enable_pod_network(&self, node_cidr: Ipv4Cidr) -> Result<(), RuntimeError> {
        let name = pod_network_name(&self.node);
        if let Some(current) = read(&self.pod_network).as_ref() {
            if current.cidr == node_cidr {
                return Ok(());
            }
            return Err(RuntimeError::Other(format!(
                "docker pod network {name}: already enabled on {}, not {node_cidr}",
                current.cidr
            )));
        }
        let gateway = node_cidr
            .nth(1)
            .filter(|_| node_cidr.size() >= 4)
            .ok_or_else(|| {
                RuntimeError::Other(format!(
                    "pod CIDR {node_cidr} is too small for a network (at least a /30)"
                ))
            })?;
        let network = match self
            .docker
            .inspect_network(&name, None::<InspectNetworkOptions>)
            .await
        {
            Ok(network) => network,
            Err(e) if status(&e) == Some(404) => {
                let request = NetworkCreateRequest {
                    name: name.clone(),
                    driver: Some("bridge".into()),
                    ipam: Some(Ipam {
                        driver: Some("default".into()),
                        config: Some(vec![IpamConfig {
                            subnet: Some(node_cidr.to_string()),
                            gateway: Some(gateway.to_string()),
                            ..Default::default()
                        }]),
                        options: None,
                    }),
                    labels: Some(HashMap::from([(LABEL_NODE.to_string(), self.node.clone())])),
                    ..Default::default()
                };
                match self.docker.create_network(request).await {
                    Ok(_) => {}
                    // Made meanwhile (checked below).
                    Err(e) if status(&e) == Some(409) => {}
                    Err(e) => {
                        return Err(RuntimeError::Other(format!(
                            "creating docker network {name} on {node_cidr}: {e}"
                        )))
                    }
                }
                self.docker
                    .inspect_network(&name, None::<InspectNetworkOptions>)
                    .await
                    .map_err(|e| RuntimeError::Other(format!("docker network {name}: {e}")))?
            }
            Err(e) => return Err(RuntimeError::Other(format!("docker network {name}: {e}"))),
        };
        self.check_pod_network(&name, &network, node_cidr)?;
        *write(&self.pod_network) = Some(DockerPodNetwork {
            name,
            cidr: node_cidr,
        });
        Ok(())
    }

    /// Whether an existing network is this node's pod network on `cidr`.
    fn check_pod_network(
        &self,
        name: &str,
        network: &Network,
        cidr: Ipv4Cidr,
    ) -> Result<(), RuntimeError> {
        let node = network
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_NODE))
            .map(String::as_str);
        if node != Some(self.node.as_str()) {
            return Err(RuntimeError::Other(format!(
                "docker network {name} exists and is not node {}'s pod network (its {LABEL_NODE} \
                 label is {node:?})",
                self.node
            )));
        }
        let subnets: Vec<String> = network
            .ipam
            .as_ref()
            .and_then(|i| i.config.as_ref())
            .map(|c| c.iter().filter_map(|c| c.subnet.clone()).collect())
            .unwrap_or_default();
        if subnets != [cidr.to_string()] {
            return Err(RuntimeError::Other(format!(
                "docker network {name} has subnet {subnets:?}, but the node's pod CIDR is {cidr}: \
                 remove the network (`docker network rm {name}`, once no container uses it) or \
                 give the node its old CIDR"
            )));
        }
        Ok(())
    }

    /// The node's pod network's Docker name and subnet, once enabled.
    pub fn pod_network(&self) -> Option<(String, Ipv4Cidr)> {
        read(&self.pod_network)
            .as_ref()
            .map(|n| (n.name.clone(), n.cidr))
    }

    /// Removes the node's pod network (nothing when there is none); Docker refuses while a
    /// container is on it. Pods started afterwards are on the runtime's plain network.
    pub async fn remove_pod_network(&self) -> Result<(), RuntimeError> {
        let name = pod_network_name(&self.node);
        match self.docker.remove_network(&name).await {
            Ok(()) => {}
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => {
                return Err(RuntimeError::Other(format!(
                    "removing docker network {name}: {e}"
                )))
            }
        }
        *write(&self.pod_network) = None;
        Ok(())
    }

    /// Imports [`PAUSE_IMAGE`] unless the Engine has it.
    async fn ensure_pause_image(&self) -> Result<(), RuntimeError> {
        let _once = self.pause_image.lock().await;
        match self.docker.inspect_image(PAUSE_IMAGE).await {
            Ok(_) => return Ok(()),
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => {
                return Err(RuntimeError::Other(format!(
                    "docker image {PAUSE_IMAGE}: {e}"
                )))
            }
        }
        let rootfs = pause_rootfs_tar()?;
        let (repo, tag) = PAUSE_IMAGE
            .split_once(':')
            .unwrap_or((PAUSE_IMAGE, "latest"));
        let cmd = serde_json::to_string(&PAUSE_CMD).unwrap_or_default();
        let options = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .changes(vec![format!("CMD {cmd}")])
            .build();
        let mut progress =
            self.docker
                .create_image(Some(options), Some(bollard::body_full(rootfs.into())), None);
        while let Some(step) = progress.next().await {
            let failed = match step {
                Ok(info) => info.error,
                Err(e) => Some(e.to_string()),
            };
            if let Some(e) = failed {
                return Err(RuntimeError::Other(format!(
                    "importing the pod sandbox image {PAUSE_IMAGE}: {e}"
                )));
            }
        }
        tracing::info!(image = PAUSE_IMAGE, "imported the pod sandbox image");
        Ok(())
    }

    /// The pod's sandbox, running: found (and started again if it had stopped) or made.
    async fn ensure_sandbox(
        &self,
        net: &DockerPodNetwork,
        spec: &ContainerSpec,
    ) -> Result<String, RuntimeError> {
        let name = sandbox_name(&self.node, &spec.pod);
        let mut last_error = String::new();
        // A second round when the sandbox was made meanwhile, or the image went meanwhile.
        for _ in 0..3 {
            match self.inspect(&name).await {
                Ok(existing) => {
                    let labels = existing.config.as_ref().and_then(|c| c.labels.as_ref());
                    let uid = labels.and_then(|l| l.get(LABEL_UID));
                    if !self.is_ours(&existing) || !is_sandbox(labels) || uid != Some(&spec.pod.uid)
                    {
                        return Err(RuntimeError::Start(format!(
                            "a container named {name} exists and is not this pod's sandbox"
                        )));
                    }
                    let id = existing.id.clone().unwrap_or_else(|| name.clone());
                    if existing.state.as_ref().and_then(|s| s.running) == Some(true) {
                        return Ok(id);
                    }
                    match self
                        .docker
                        .start_container(&id, None::<StartContainerOptions>)
                        .await
                    {
                        Ok(()) => return Ok(id),
                        Err(e) => {
                            // Unusable: make a new one.
                            last_error = format!("starting the pod sandbox {name}: {e}");
                            self.remove_container_forced(&id).await?;
                            continue;
                        }
                    }
                }
                Err(RuntimeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            self.ensure_pause_image().await?;
            let options = CreateContainerOptionsBuilder::new().name(&name).build();
            let id = match self
                .docker
                .create_container(Some(options), self.sandbox_body(net, spec))
                .await
            {
                Ok(created) => created.id,
                // Made meanwhile (409), or the image went meanwhile (404).
                Err(e) if matches!(status(&e), Some(409 | 404)) => {
                    last_error = format!("creating the pod sandbox {name}: {e}");
                    continue;
                }
                Err(e) => {
                    return Err(RuntimeError::Start(format!(
                        "creating the pod sandbox {name}: {e}"
                    )))
                }
            };
            if let Err(e) = self
                .docker
                .start_container(&id, None::<StartContainerOptions>)
                .await
            {
                let _ = self.remove_container_forced(&id).await;
                return Err(RuntimeError::Start(format!(
                    "starting the pod sandbox {name}: {e}"
                )));
            }
            tracing::debug!(pod = %spec.pod.name, sandbox = %id, "pod sandbox started");
            return Ok(id);
        }
        Err(RuntimeError::Start(last_error))
    }

    /// The create request of a pod's sandbox.
    fn sandbox_body(&self, net: &DockerPodNetwork, spec: &ContainerSpec) -> ContainerCreateBody {
        let labels = HashMap::from([
            (LABEL_NODE.to_string(), self.node.clone()),
            (LABEL_NAMESPACE.to_string(), spec.pod.namespace.clone()),
            (LABEL_POD.to_string(), spec.pod.name.clone()),
            (LABEL_UID.to_string(), spec.pod.uid.clone()),
            (LABEL_SANDBOX.to_string(), "true".to_string()),
        ]);
        ContainerCreateBody {
            image: Some(PAUSE_IMAGE.to_string()),
            cmd: Some(PAUSE_CMD.iter().map(|s| s.to_string()).collect()),
            hostname: Some(spec.hostname.clone()).filter(|h| !h.is_empty()),
            labels: Some(labels),
            stop_timeout: Some(1),
            attach_stdout: Some(false),
            attach_stderr: Some(false),
            tty: Some(false),
            open_stdin: Some(false),
            host_config: Some(HostConfig {
                network_mode: Some(net.name.clone()),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// An inspected sandbox's address on the pod network.
    fn sandbox_address(&self, sandbox: &ContainerInspectResponse) -> Result<IpAddr, RuntimeError> {
        let id = sandbox.id.as_deref().unwrap_or("?");
        let name = pod_network_name(&self.node);
        let networks = sandbox
            .network_settings
            .as_ref()
            .and_then(|s| s.networks.as_ref());
        let address = networks
            .and_then(|n| n.get(&name))
            .and_then(|e| e.ip_address.clone())
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                RuntimeError::Other(format!(
                    "pod sandbox {id} has no address on network {name} (is it running?)"
                ))
            })?;
        address.parse().map_err(|e| {
            RuntimeError::Other(format!("pod sandbox {id}: Docker address {address:?}: {e}"))
        })
    }

    /// The containers of this node labelled `uid` (sandboxes included).
    async fn pod_containers(&self, uid: &str) -> Result<Vec<ContainerSummary>, RuntimeError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{LABEL_NODE}={}", self.node),
                format!("{LABEL_UID}={uid}"),
            ],
        )]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        self.docker
            .list_containers(Some(options))
            .await
            .map_err(|e| RuntimeError::Other(format!("docker list containers of pod {uid}: {e}")))
    }

    /// The address of pod `uid` on the pod network: its sandbox's (`None` when it has no
    /// sandbox, or it has stopped). What the pod's `status.podIP` is.
    pub async fn pod_address(&self, pod_uid: &str) -> Result<Option<IpAddr>, RuntimeError> {
        for summary in self.pod_containers(pod_uid).await? {
            if !is_sandbox(summary.labels.as_ref()) {
                continue;
            }
            let Some(id) = summary.id else { continue };
            match self.inspect(&id).await {
                Ok(sandbox) => return Ok(self.sandbox_address(&sandbox).ok()),
                Err(RuntimeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Removes pod `uid`'s sandbox (nothing when it has none). Containers that joined it
    /// lose their network: remove them first.
    pub async fn remove_sandbox(&self, pod_uid: &str) -> Result<(), RuntimeError> {
        for summary in self.pod_containers(pod_uid).await? {
            if is_sandbox(summary.labels.as_ref()) {
                if let Some(id) = summary.id {
                    self.remove_container_forced(&id).await?;
                }
            }
        }
        Ok(())
    }

    /// Removes pod `uid`'s sandbox if no other container of the pod is left.
    async fn remove_sandbox_if_unused(&self, uid: &str) -> Result<(), RuntimeError> {
        let containers = self.pod_containers(uid).await?;
        if containers.iter().all(|c| is_sandbox(c.labels.as_ref())) {
            for id in containers.into_iter().filter_map(|c| c.id) {
                self.remove_container_forced(&id).await?;
            }
        }
        Ok(())
    }

    /// Removes the sandboxes among `summaries` (this node's containers) that have no
    /// container of their pod and are older than [`SANDBOX_ORPHAN_GRACE`].
    async fn collect_orphan_sandboxes(&self, summaries: &[ContainerSummary]) {
        let uid = |c: &ContainerSummary| c.labels.as_ref().and_then(|l| l.get(LABEL_UID)).cloned();
        let pods: HashSet<String> = summaries
            .iter()
            .filter(|c| !is_sandbox(c.labels.as_ref()))
            .filter_map(uid)
            .collect();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for sandbox in summaries.iter().filter(|c| is_sandbox(c.labels.as_ref())) {
            let Some(id) = sandbox.id.as_deref() else {
                continue;
            };
            if uid(sandbox).is_some_and(|u| pods.contains(&u)) {
                continue;
            }
            let created = sandbox
                .created
                .and_then(|c| u64::try_from(c).ok())
                .unwrap_or(now);
            if now.saturating_sub(created) < SANDBOX_ORPHAN_GRACE.as_secs() {
                continue;
            }
            tracing::info!(sandbox = %id, pod_uid = ?uid(sandbox), "removing a pod sandbox left without containers");
            if let Err(e) = self.remove_container_forced(id).await {
                tracing::warn!(sandbox = %id, "removing an orphaned pod sandbox: {e}");
            }
        }
    }

    /// Removes a container whatever its state (404: gone already).
    async fn remove_container_forced(&self, id: &str) -> Result<(), RuntimeError> {
        match self
            .docker
            .remove_container(
                id,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await
        {
            Ok(())
            | Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                self.forget(id);
                Ok(())
            }
            Err(e) => Err(container_error("remove", id, e)),
        }
    }

    /// Removes everything of this node from the Engine: every container (pods' and
    /// sandboxes, running or not, without a grace period) and the pod network. For the
    /// agent's cleanup; log files are left alone.
    pub async fn destroy_all(&self) -> Result<(), RuntimeError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_NODE}={}", self.node)],
        )]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| RuntimeError::Other(format!("docker list containers: {e}")))?;
        // Pods' containers before the sandboxes whose network they use.
        let (sandboxes, pods): (Vec<_>, Vec<_>) = containers
            .into_iter()
            .partition(|c| is_sandbox(c.labels.as_ref()));
        for c in pods.into_iter().chain(sandboxes) {
            if let Some(id) = c.id {
                self.remove_container_forced(&id).await?;
            }
        }
        self.remove_pod_network().await
    }
}

impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn enable_pod_network(&self, cidr: Ipv4Cidr) -> BoxFuture<'_, Result<bool, RuntimeError>> {
        Box::pin(async move {
            DockerRuntime::enable_pod_network(self, cidr).await?;
            Ok(true)
        })
    }

    fn pod_address<'a>(
        &'a self,
        pod_uid: &'a str,
    ) -> BoxFuture<'a, Result<Option<IpAddr>, RuntimeError>> {
        Box::pin(DockerRuntime::pod_address(self, pod_uid))
    }

    fn version(&self) -> BoxFuture<'_, Result<String, RuntimeError>> {
        Box::pin(async move {
            let version = self
                .docker
                .version()
                .await
                .map_err(|e| RuntimeError::Other(format!("docker version: {e}")))?;
            Ok(format!(
                "docker://{}",
                version.version.unwrap_or_else(|| "unknown".into())
            ))
        })
    }

    fn has_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<bool, RuntimeError>> {
        Box::pin(async move {
            match self.docker.inspect_image(image).await {
                Ok(_) => Ok(true),
                Err(e) if status(&e) == Some(404) => Ok(false),
                Err(e) => Err(RuntimeError::Other(format!("docker image {image:?}: {e}"))),
            }
        })
    }

    fn images(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>, RuntimeError>> {
        Box::pin(async move {
            let images = self
                .docker
                .list_images(Some(ListImagesOptionsBuilder::new().all(false).build()))
                .await
                .map_err(|e| RuntimeError::Other(format!("docker list images: {e}")))?;
            let mut out = Vec::new();
            for image in images {
                let size = u64::try_from(image.size).unwrap_or(0);
                let tags: Vec<String> = image
                    .repo_tags
                    .into_iter()
                    .filter(|t| t != "<none>:<none>")
                    .collect();
                if tags.is_empty() {
                    out.push((image.id, size));
                } else {
                    out.extend(tags.into_iter().map(|t| (t, size)));
                }
            }
            Ok(out)
        })
    }

    fn start<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<String, RuntimeError>> {
        Box::pin(self.start_inner(spec))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<ContainerInfo>, RuntimeError>> {
        Box::pin(self.list_inner())
    }

    fn stop<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.stop_inner(id, grace))
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.remove_inner(id))
    }

    fn stats<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<ContainerStats, RuntimeError>> {
        Box::pin(self.stats_inner(id))
    }

    fn exec<'a>(
        &'a self,
        id: &'a str,
        command: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, RuntimeError>> {
        Box::pin(self.exec_inner(id, command, timeout))
    }

    fn address<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<IpAddr, RuntimeError>> {
        Box::pin(self.address_inner(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_semantics_are_kubernetes() {
        let c = vec!["/bin/sh".to_string(), "-c".to_string()];
        let a = vec!["echo hi".to_string()];
        assert_eq!(
            entrypoint_and_cmd(Some(&c), Some(&a)),
            (Some(c.clone()), Some(a.clone()))
        );
        assert_eq!(
            entrypoint_and_cmd(Some(&c), None),
            (Some(c.clone()), Some(vec![]))
        );
        assert_eq!(entrypoint_and_cmd(None, Some(&a)), (None, Some(a.clone())));
        assert_eq!(entrypoint_and_cmd(None, None), (None, None));
        assert_eq!(entrypoint_and_cmd(Some(&[]), Some(&[])), (None, None));
    }

    #[test]
    fn cpu_shares_and_quota_as_the_kubelet() {
        assert_eq!(cpu_shares(0), 2);
        assert_eq!(cpu_shares(1), 2);
        assert_eq!(cpu_shares(250), 256);
        assert_eq!(cpu_shares(1000), 1024);
        assert_eq!(cpu_quota(200), 20_000);
        assert_eq!(cpu_quota(1), 1000);
        assert_eq!(cpu_quota(2500), 250_000);
    }

    #[test]
    fn a_dynamic_elf_has_an_interpreter() {
        // An ELF64 little-endian header with two program headers right after it.
        let mut elf = vec![0u8; 64 + 2 * 56];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[0x20] = 64;
        elf[0x36] = 56;
        elf[0x38] = 2;
        elf[64] = 1; // PT_LOAD
        assert_eq!(elf_has_interpreter(&elf), Ok(false));
        elf[64 + 56] = 3; // PT_INTERP
        assert_eq!(elf_has_interpreter(&elf), Ok(true));
        elf[64 + 56] = 1;
        elf[0x38] = 3; // a program header past the end
        assert!(elf_has_interpreter(&elf).is_err());
        assert!(elf_has_interpreter(b"#!/bin/sh\necho not an ELF file\n").is_err());
    }

    #[test]
    fn sandbox_and_network_names() {
        let pod = PodRef {
            namespace: "default".into(),
            name: "web".into(),
            uid: "0f0e-1d".into(),
        };
        assert_eq!(
            sandbox_name("n1", &pod),
            "plimsoll_POD_n1_default_web_0f0e-1d"
        );
        assert_eq!(pod_network_name("node:1"), "plimsoll-node-1");
    }

    #[test]
    fn names_use_docker_characters() {
        assert_eq!(sanitise("a.b-c_d"), "a.b-c_d");
        assert_eq!(sanitise("x/y:z é"), "x-y-z--");
    }

    #[test]
    fn docker_zero_time_is_none() {
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_time("garbage"), None);
        let t = parse_time("2024-05-01T12:00:00.123456789Z").unwrap();
        let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(d.as_secs(), 1_714_564_800);
        assert_eq!(d.subsec_nanos(), 123_456_789);
    }

    #[test]
    fn dedup_skips_what_was_written_even_out_of_order() {
        let t =
            |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(100) + Duration::from_millis(ms);
        let k = |n: u64| n * 7919;
        let mut d = Dedup::default();
        assert_eq!(d.next_pass(), None);
        assert!(!d.seen(t(0), k(1)));
        // Written in file order: a later stdout entry before an earlier stderr one.
        d.wrote(t(0), k(1));
        d.wrote(t(1020), k(2));
        d.wrote(t(1010), k(3));
        d.wrote(t(2500), k(4));
        assert_eq!(d.newest, Some(t(2500)));
        // t(0) fell out of the window; the others are kept.
        assert_eq!(d.recent.len(), 3);
        // A new pass from the start of the window (whole seconds).
        assert_eq!(d.next_pass(), Some(100));
        assert!(d.seen(t(0), k(1)), "older than the window: written");
        assert!(d.seen(t(1020), k(2)) && d.seen(t(1010), k(3)) && d.seen(t(2500), k(4)));
        // Each written entry is skipped once; new ones, even older than the newest, are not.
        assert!(!d.seen(t(2500), k(4)));
        assert!(!d.seen(t(2400), k(5)));
        assert!(!d.seen(t(2501), k(6)));
    }

    #[test]
    fn cri_lines_and_docker_messages_have_the_same_keys() {
        let ts = parse_time("2026-12-06T04:22:04.092147640Z").unwrap();
        let line = b"2026-12-06T04:22:04.092147640Z stdout P no newline";
        assert_eq!(
            parse_cri_line(line),
            Some((ts, entry_key(ts, LogStream::Stdout, b"no newline", true)))
        );
        let empty = b"2026-12-06T04:22:04.092147640Z stderr F ";
        assert_eq!(
            parse_cri_line(empty),
            Some((ts, entry_key(ts, LogStream::Stderr, b"", false)))
        );
        assert_eq!(parse_cri_line(b"garbage"), None);
    }
}
