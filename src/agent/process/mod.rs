//! The process runtime: containers as isolated processes, no daemon.
//!
//! Each container has a supervisor, the **shim** (`plimsoll agent shim --spec FILE`,
//! [`shim_main`]), started by [`ProcessRuntime::start`] in its own session so that it
//! outlives the agent. The shim creates the container's cgroup (through cgroups-rs, v1 or
//! v2: `plimsoll/<node>/pod<uid>/<container id>`, CPU quota and shares, memory limit with
//! swap capped so that the kernel OOM-kills rather than swaps), then the container's
//! first process in new PID, mount, UTS and IPC namespaces (it is PID 1 there), which
//! joins the cgroup before anything runs, and then:
//!
//! - gets its own root filesystem: an overlay whose lower layer is the image's root
//!   filesystem (never written to) and whose upper and work directories are in the
//!   container's state directory — or, when overlay mounts are not allowed (an overlay
//!   upper directory on an overlay, for instance) or asked not to be used
//!   ([`ProcessRuntime::with_rootfs_copy`]), a copy of the image's root filesystem;
//! - `pivot_root`s into it (the old root is detached, so nothing of the host's file
//!   systems stays reachable), with a fresh `/proc`, a minimal `/dev` on a tmpfs (`null`,
//!   `zero`, `full`, `random`, `urandom`, `tty` bind-mounted from the host, `/dev/shm`,
//!   the `fd` and `std*` links), `/etc/hostname` and the UTS hostname from the spec, and
//!   the spec's bind mounts (read-only where asked; targets resolved inside the new root,
//!   so that a symbolic link of the image cannot point a mount outside it);
//! - runs the command resolved as Kubernetes does (see [`resolve_command`]), with the
//!   image's environment overridden by the spec's (plus `PATH` when absent and
//!   `HOSTNAME`), in the working directory of the spec, else the image, else `/`, stdin
//!   on `/dev/null`, stdout and stderr on pipes the shim copies to the spec's log file in
//!   the CRI format ([`crate::agent::logfile::LogWriter`]).
//!
//! **Networking:** containers share the host's network namespace for now (pod networking
//! is a later step): their ports are the host's, reached at `127.0.0.1`, and two
//! containers cannot listen on the same port.
//!
//! When the container's PID 1 exits, the kernel kills the rest of its PID namespace; the
//! shim also kills whatever is left in the cgroup, then records the exit (`exit.json`:
//! exit code, 128 + signal when signalled, the signal, whether the cgroup's OOM killer
//! fired, when) and exits.
//!
//! State lives in `STATE/containers/<id>/`: `spec.json` (what the shim runs),
//! `state.json` (the shim's pid and the container's host pid with their start times, so
//! that a reused pid is never taken for them), `exit.json`, `start-error` (why the
//! container could not start), `shim.log` (the shim's own diagnostics), `hostname`, and
//! the root filesystem (`upper/`, `work/`, `merged/` or `rootfs/`). A new
//! [`ProcessRuntime`] on the same directory (the agent restarted) finds every container
//! again through [`Runtime::list`].
//!
//! [`exec_main`] (`plimsoll agent shim-exec`) runs a command inside a running container
//! (its PID, mount, UTS and IPC namespaces, its root, working directory, environment
//! and cgroup): entering namespaces needs a single-threaded process, which the agent is
//! not, so [`Runtime::exec`] runs it as a separate process.

mod cgroup;
mod exec;
mod rootfs;
mod shim;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use exec::exec_main;
pub use shim::shim_main;

use crate::agent::image::{ImageConfig, ImageStore};
use crate::agent::runtime::{
    BoxFuture, ContainerInfo, ContainerSpec, ContainerState, ContainerStats, ExecOutput, Exit,
    Resources, Runtime, RuntimeError,
};

/// `PATH` when neither the image nor the spec sets one (containerd's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How much of an exec's output is kept.
pub const EXEC_OUTPUT_LIMIT: usize = 10 * 1024;

/// How long [`Runtime::start`] waits for the shim to report the container running.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// How long [`Runtime::stop`] waits for the shim to record the exit after the kill.
const EXIT_RECORD_TIMEOUT: Duration = Duration::from_secs(15);

/// The program that runs shims and exec helpers: `PROGRAM ARGS... --spec FILE` runs
/// [`shim_main`]; the exec helper is the sibling subcommand `shim-exec` (`ARGS` with its
/// last element, `shim`, replaced): `PROGRAM agent shim-exec --pid PID -- COMMAND...`
/// runs [`exec_main`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimCommand {
    /// The executable (the `plimsoll` binary).
    pub program: PathBuf,
    /// Arguments before `--spec FILE` (`["agent", "shim"]`).
    pub args: Vec<String>,
}

impl ShimCommand {
    /// The `plimsoll` binary at `program`: `agent shim` (and `agent shim-exec`).
    pub fn plimsoll(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: vec!["agent".into(), "shim".into()],
        }
    }

    /// Arguments before `--pid PID -- COMMAND...`: [`Self::args`] with the last one
    /// replaced by `shim-exec` (`["agent", "shim-exec"]`).
    pub fn exec_args(&self) -> Vec<String> {
        let mut args = self.args.clone();
        args.pop();
        args.push("shim-exec".into());
        args
    }
}

/// What the shim runs: written by [`ProcessRuntime::start`] as `spec.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ShimSpec {
    /// The container id.
    pub id: String,
    /// The node whose agent made it.
    pub node: String,
    /// The spec it was started from.
    pub container: ContainerSpec,
    /// The normalised image reference.
    pub image_ref: String,
    /// The image id.
    pub image_id: String,
    /// The image's root filesystem (read only).
    pub image_rootfs: PathBuf,
    /// The command line (resolved from the spec and the image).
    pub argv: Vec<String>,
    /// The environment, `NAME=value` each.
    pub env: Vec<String>,
    /// The working directory (absolute).
    pub cwd: String,
    /// The cgroup, relative to the hierarchy's root.
    pub cgroup: String,
    /// Copy the image's root filesystem instead of trying an overlay first.
    pub rootfs_copy: bool,
}

/// The processes of a container (`state.json`), written by the shim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ShimState {
    /// The shim's pid.
    pub shim_pid: u32,
    /// Its start time (clock ticks after boot, `/proc/PID/stat` field 22).
    pub shim_start: u64,
    /// The container's first process, as the host sees it, once running.
    pub container_pid: Option<u32>,
    /// Its start time.
    pub container_start: Option<u64>,
    /// When the container's command started.
    pub started_at: Option<SystemTime>,
    /// `overlay` or `copy`.
    pub rootfs: Option<String>,
}

/// The state directory's file names.
pub(crate) const SPEC_FILE: &str = "spec.json";
pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const EXIT_FILE: &str = "exit.json";
pub(crate) const START_ERROR_FILE: &str = "start-error";
pub(crate) const SHIM_LOG_FILE: &str = "shim.log";

/// Writes `value` as JSON to `path` atomically (a temporary file renamed over it).
pub(crate) fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` atomically.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, RuntimeError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RuntimeError::Other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RuntimeError::Other(format!("{}: {e}", path.display()))),
    }
}

/// The state letter and start time (clock ticks after boot, field 22) of a process,
/// from `/proc/PID/stat`.
fn proc_stat(pid: u32) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.to_string();
    // Field 3 was the state; field 22 is the start time.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// The start time of a process, live or not yet reaped.
pub(crate) fn proc_start_time_any(pid: u32) -> Option<u64> {
    proc_stat(pid).map(|(_, start)| start)
}

/// The start time of a live (not zombie) process.
pub(crate) fn proc_start_time(pid: u32) -> Option<u64> {
    match proc_stat(pid)? {
        (state, _) if state == "Z" || state == "X" => None,
        (_, start) => Some(start),
    }
}

/// Whether `pid` is the live process that started at `start`.
pub(crate) fn same_process(pid: u32, start: u64) -> bool {
    proc_start_time(pid) == Some(start)
}

fn kill(pid: u32, signal: nix::sys::signal::Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// A name usable as one path component of a cgroup (`[A-Za-z0-9._-]`, others as `_`).
pub(crate) fn path_component(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.as_str() {
        "" | "." | ".." => format!("_{s}"),
        _ => s,
    }
}

/// The container's command line as Kubernetes resolves it from the spec's `command` and
/// `args` and the image's `Entrypoint` and `Cmd`: `command` replaces the entrypoint and
/// `args` the cmd; a `command` without `args` runs with no arguments (the image's cmd is
/// dropped); with neither, the image's entrypoint then cmd.
pub fn resolve_command(
    command: Option<&[String]>,
    args: Option<&[String]>,
    image: &ImageConfig,
) -> Vec<String> {
    match (command, args) {
        (Some(c), Some(a)) => c.iter().chain(a).cloned().collect(),
        (Some(c), None) => c.to_vec(),
        (None, Some(a)) => image.entrypoint.iter().chain(a).cloned().collect(),
        (None, None) => image.entrypoint.iter().chain(&image.cmd).cloned().collect(),
    }
}

/// The container's environment: `HOSTNAME`, then the image's variables, then the spec's
/// (a name set again replaces the earlier value in place), then `PATH` if still unset.
pub fn resolve_env(
    image: &ImageConfig,
    spec_env: &[(String, String)],
    hostname: &str,
) -> Vec<String> {
    let mut vars: Vec<(String, String)> = vec![("HOSTNAME".into(), hostname.into())];
    let mut set = |name: &str, value: &str| match vars.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value.to_string(),
        None => vars.push((name.to_string(), value.to_string())),
    };
    for entry in &image.env {
        match entry.split_once('=') {
            Some((n, v)) => set(n, v),
            None => set(entry, ""),
        }
    }
    for (n, v) in spec_env {
        set(n, v);
    }
    if !vars.iter().any(|(n, _)| n == "PATH") {
        vars.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    vars.into_iter().map(|(n, v)| format!("{n}={v}")).collect()
}

/// The process runtime (see the module docs).
#[derive(Debug, Clone)]
pub struct ProcessRuntime {
    state_dir: PathBuf,
    images: ImageStore,
    node: String,
    shim: ShimCommand,
    rootfs_copy: bool,
    node_cpu_millis: Option<u64>,
}

impl ProcessRuntime {
    /// A runtime keeping its containers' state under `state_dir` (created when missing),
    /// taking images from `images`, for the node `node` (its cgroups are under
    /// `plimsoll/<node>/`), starting shims and exec helpers with `shim`.
    pub fn new(
        state_dir: impl Into<PathBuf>,
        images: ImageStore,
        node: &str,
        shim: ShimCommand,
    ) -> Result<Self, RuntimeError> {
        let state_dir = state_dir.into();
        let containers = state_dir.join("containers");
        std::fs::create_dir_all(&containers).map_err(|e| {
            RuntimeError::Other(format!("state directory {}: {e}", containers.display()))
        })?;
        Ok(Self {
            state_dir,
            images,
            node: node.to_string(),
            shim,
            rootfs_copy: false,
            node_cpu_millis: None,
        })
    }

    /// Caps the CPU of all the node's containers together at `millis` (a CFS quota on
    /// the node's cgroup `plimsoll/<node>`), as the kubelet enforces the node's
    /// allocatable CPU on its `kubepods` cgroup: pods on a node declared with 1 CPU
    /// share 1 CPU even on a bigger host.
    pub fn with_node_cpu_limit(mut self, millis: Option<u64>) -> Self {
        self.node_cpu_millis = millis;
        self
    }

    /// Copy each image's root filesystem into the container's state directory instead of
    /// mounting an overlay (the fallback taken anyway when overlay mounts fail).
    pub fn with_rootfs_copy(mut self, copy: bool) -> Self {
        self.rootfs_copy = copy;
        self
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The node name.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn container_dir(&self, id: &str) -> Result<PathBuf, RuntimeError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RuntimeError::NotFound(id.to_string()));
        }
        let dir = self.state_dir.join("containers").join(id);
        if dir.join(SPEC_FILE).is_file() {
            Ok(dir)
        } else {
            Err(RuntimeError::NotFound(id.to_string()))
        }
    }

    /// The cgroup of a container (relative to the hierarchy's root).
    fn cgroup_path(&self, pod_uid: &str, id: &str) -> String {
        format!(
            "plimsoll/{}/pod{}/{}",
            path_component(&self.node),
            path_component(pod_uid),
            id
        )
    }

    /// Kills every container and shim recorded in the state directory (whatever node
    /// made them), removes their cgroups, state directories and this node's cgroup
    /// tree (and the `plimsoll` cgroup when nothing else is left in it). For
    /// `plimsoll agent cleanup` and tests; errors are collected, the rest is still
    /// cleaned. Blocks (it waits for processes to end): see [`Self::destroy_all_blocking`]
    /// outside a runtime.
    pub async fn destroy_all(&self) -> Result<(), RuntimeError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.destroy_all_blocking())
            .await
            .map_err(|e| RuntimeError::Other(format!("cleanup task: {e}")))?
    }

    /// [`Self::destroy_all`], blocking the calling thread.
    pub fn destroy_all_blocking(&self) -> Result<(), RuntimeError> {
        let mut errors = Vec::new();
        let containers = self.state_dir.join("containers");
        let entries = match std::fs::read_dir(&containers) {
            Ok(e) => e.filter_map(Result::ok).map(|e| e.path()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(RuntimeError::Other(format!(
                    "{}: {e}",
                    containers.display()
                )))
            }
        };
        for dir in entries {
            if let Err(e) = destroy_container_dir(&dir) {
                errors.push(e);
            }
        }
        if let Err(e) = cgroup::destroy_tree(&format!("plimsoll/{}", path_component(&self.node))) {
            errors.push(e);
        }
        cgroup::remove_if_childless("plimsoll");
        if errors.is_empty() {
            Ok(())
        } else {
            Err(RuntimeError::Other(errors.join("; ")))
        }
    }

    fn info(&self, id: &str, dir: &Path) -> Result<Option<ContainerInfo>, RuntimeError> {
        let Some(spec) = read_json::<ShimSpec>(&dir.join(SPEC_FILE))? else {
            return Ok(None);
        };
        if spec.node != self.node {
            return Ok(None);
        }
        let state = read_json::<ShimState>(&dir.join(STATE_FILE))?;
        let exit = read_json::<Exit>(&dir.join(EXIT_FILE))?;
        let (container_state, pid) = container_state(dir, state.as_ref(), exit)?;
        Ok(Some(ContainerInfo {
            id: id.to_string(),
            pod: spec.container.pod.clone(),
            name: spec.container.name.clone(),
            kind: spec.container.kind,
            attempt: spec.container.attempt,
            image: spec.container.image.clone(),
            image_id: spec.image_id.clone(),
            started_at: state.and_then(|s| s.started_at),
            state: container_state,
            log_path: spec.container.log_path.clone(),
            pid,
        }))
    }

    async fn start_inner(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let image = self
            .images
            .resolve(&spec.image)
            .map_err(|e| RuntimeError::BadImage {
                image: spec.image.clone(),
                reason: e.to_string(),
            })?
            .ok_or_else(|| RuntimeError::ImageNotPresent(spec.image.clone()))?;
        if !image.rootfs.is_dir() {
            return Err(RuntimeError::BadImage {
                image: spec.image.clone(),
                reason: format!(
                    "root filesystem {} is not a directory",
                    image.rootfs.display()
                ),
            });
        }
        let argv = resolve_command(spec.command.as_deref(), spec.args.as_deref(), &image.config);
        if argv.is_empty() || argv[0].is_empty() {
            return Err(RuntimeError::Start(format!(
                "container {:?}: no command (the spec has none and image {:?} has no entrypoint or cmd)",
                spec.name, spec.image
            )));
        }
        let cwd = match (&spec.working_dir, image.config.working_dir.as_str()) {
            (Some(w), _) if !w.is_empty() => w.clone(),
            (_, w) if !w.is_empty() => w.to_string(),
            _ => "/".to_string(),
        };
        if !cwd.starts_with('/') {
            return Err(RuntimeError::Start(format!(
                "container {:?}: working directory {cwd:?} is not absolute",
                spec.name
            )));
        }
        for m in &spec.mounts {
            if !m.container_path.starts_with('/') {
                return Err(RuntimeError::Start(format!(
                    "container {:?}: mount path {:?} is not absolute",
                    spec.name, m.container_path
                )));
            }
            if !m.host_path.exists() {
                return Err(RuntimeError::Start(format!(
                    "container {:?}: mount source {} does not exist",
                    spec.name,
                    m.host_path.display()
                )));
            }
        }
        if spec.hostname.is_empty() || spec.hostname.len() > 64 {
            return Err(RuntimeError::Start(format!(
                "hostname {:?}: must be 1 to 64 bytes",
                spec.hostname
            )));
        }
        if let Some(millis) = self.node_cpu_millis {
            // Again at every start: the node's cgroup goes when its last pod does.
            let node_cgroup = format!("plimsoll/{}", path_component(&self.node));
            let limit = Resources {
                cpu_limit_millis: Some(millis),
                ..Default::default()
            };
            cgroup::create(&node_cgroup, &limit).map_err(RuntimeError::Start)?;
        }
        let id = new_id();
        let dir = self.state_dir.join("containers").join(&id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| RuntimeError::Start(format!("{}: {e}", dir.display())))?;
        let shim_spec = ShimSpec {
            id: id.clone(),
            node: self.node.clone(),
            container: spec.clone(),
            image_ref: image.reference.clone(),
            image_id: image.id.clone(),
            image_rootfs: image.rootfs.clone(),
            env: resolve_env(&image.config, &spec.env, &spec.hostname),
            argv,
            cwd,
            cgroup: self.cgroup_path(&spec.pod.uid, &id),
            rootfs_copy: self.rootfs_copy,
        };
        let result = self.launch(&dir, &shim_spec).await;
        if result.is_err() {
            // Not a container: nothing of it stays.
            let _ = destroy_container_dir(&dir);
        }
        result.map(|()| id)
    }

    async fn launch(&self, dir: &Path, spec: &ShimSpec) -> Result<(), RuntimeError> {
        let spec_path = dir.join(SPEC_FILE);
        write_json_atomic(&spec_path, spec)
            .map_err(|e| RuntimeError::Start(format!("{}: {e}", spec_path.display())))?;
        let log = std::fs::File::create(dir.join(SHIM_LOG_FILE)).map_err(|e| {
            RuntimeError::Start(format!("{}: {e}", dir.join(SHIM_LOG_FILE).display()))
        })?;
        let mut child = tokio::process::Command::new(&self.shim.program)
            .args(&self.shim.args)
            .arg("--spec")
            .arg(&spec_path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                RuntimeError::Start(format!("shim {}: {e}", self.shim.program.display()))
            })?;
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        let outcome = loop {
            if let Ok(msg) = std::fs::read_to_string(dir.join(START_ERROR_FILE)) {
                break Err(RuntimeError::Start(msg.trim().to_string()));
            }
            if dir.join(EXIT_FILE).exists() {
                break Ok(());
            }
            if let Some(state) = read_json::<ShimState>(&dir.join(STATE_FILE))? {
                if state.container_pid.is_some() {
                    break Ok(());
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                // The shim may have written its verdict just before exiting.
                if dir.join(EXIT_FILE).exists() {
                    break Ok(());
                }
                let state = read_json::<ShimState>(&dir.join(STATE_FILE))?;
                if state.is_some_and(|s| s.container_pid.is_some()) {
                    break Ok(());
                }
                if let Ok(msg) = std::fs::read_to_string(dir.join(START_ERROR_FILE)) {
                    break Err(RuntimeError::Start(msg.trim().to_string()));
                }
                let log = std::fs::read_to_string(dir.join(SHIM_LOG_FILE)).unwrap_or_default();
                break Err(RuntimeError::Start(format!(
                    "the shim exited ({status}) before the container started: {}",
                    log.trim()
                )));
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.start_kill();
                break Err(RuntimeError::Start(format!(
                    "the container did not start within {START_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        // The shim is this process's child until it exits: reap it then (after a restart
        // of the agent, shims are the init process's children).
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        outcome
    }

    async fn stop_inner(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let dir = self.container_dir(id)?;
        let spec = read_json::<ShimSpec>(&dir.join(SPEC_FILE))?
            .ok_or_else(|| RuntimeError::NotFound(id.into()))?;
        if dir.join(EXIT_FILE).exists() {
            return Ok(());
        }
        // A container still starting gets a moment to run (or to fail).
        let mut state = None;
        for _ in 0..500 {
            state = read_json::<ShimState>(&dir.join(STATE_FILE))?;
            if state.as_ref().is_some_and(|s| s.container_pid.is_some())
                || dir.join(EXIT_FILE).exists()
            {
                break;
            }
            if state
                .as_ref()
                .is_some_and(|s| !same_process(s.shim_pid, s.shim_start))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let Some(state) = state else { return Ok(()) };
        let alive = |s: &ShimState| match (s.container_pid, s.container_start) {
            (Some(pid), Some(start)) => same_process(pid, start),
            _ => false,
        };
        if alive(&state) {
            if let Some(pid) = state.container_pid {
                kill(pid, nix::sys::signal::Signal::SIGTERM);
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline
            && !dir.join(EXIT_FILE).exists()
            && alive(&state)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !dir.join(EXIT_FILE).exists() {
            if alive(&state) {
                if let Some(pid) = state.container_pid {
                    kill(pid, nix::sys::signal::Signal::SIGKILL);
                }
            }
            cgroup::kill_all(&spec.cgroup);
        }
        let deadline = tokio::time::Instant::now() + EXIT_RECORD_TIMEOUT;
        loop {
            if dir.join(EXIT_FILE).exists() {
                return Ok(());
            }
            let shim_alive = same_process(state.shim_pid, state.shim_start);
            if !shim_alive && !alive(&state) {
                // No supervisor to record the exit: the container has ended all the same
                // (list reports it Unknown).
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(RuntimeError::Other(format!(
                    "container {id}: killed, but its shim (pid {}) recorded no exit within {EXIT_RECORD_TIMEOUT:?}",
                    state.shim_pid
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn remove_inner(&self, id: &str) -> Result<(), RuntimeError> {
        let dir = match self.container_dir(id) {
            Ok(d) => d,
            Err(RuntimeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let state = read_json::<ShimState>(&dir.join(STATE_FILE))?;
        if let Some(s) = &state {
            if let (Some(pid), Some(start)) = (s.container_pid, s.container_start) {
                if same_process(pid, start) {
                    return Err(RuntimeError::Other(format!(
                        "container {id} is running (pid {pid}): stop it first"
                    )));
                }
            }
            if same_process(s.shim_pid, s.shim_start) && !dir.join(EXIT_FILE).exists() {
                return Err(RuntimeError::Other(format!(
                    "container {id}: its shim (pid {}) is still running",
                    s.shim_pid
                )));
            }
        }
        destroy_container_dir(&dir).map_err(RuntimeError::Other)
    }

    fn stats_inner(&self, id: &str) -> Result<ContainerStats, RuntimeError> {
        let dir = self.container_dir(id)?;
        let spec = read_json::<ShimSpec>(&dir.join(SPEC_FILE))?
            .ok_or_else(|| RuntimeError::NotFound(id.into()))?;
        cgroup::stats(&spec.cgroup).map_err(|e| RuntimeError::Other(format!("container {id}: {e}")))
    }

    async fn exec_inner(
        &self,
        id: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        use tokio::io::AsyncReadExt;
        let dir = self.container_dir(id)?;
        if command.is_empty() {
            return Err(RuntimeError::Other(format!(
                "container {id}: exec of an empty command"
            )));
        }
        let state = read_json::<ShimState>(&dir.join(STATE_FILE))?;
        let pid = match state {
            Some(ShimState {
                container_pid: Some(pid),
                container_start: Some(start),
                ..
            }) if same_process(pid, start) && !dir.join(EXIT_FILE).exists() => pid,
            _ => {
                return Err(RuntimeError::Other(format!(
                    "container {id} is not running"
                )))
            }
        };
        let mut child = tokio::process::Command::new(&self.shim.program)
            .args(self.shim.exec_args())
            .arg("--pid")
            .arg(pid.to_string())
            .arg("--")
            .args(command)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            // Its own process group, which the command inherits: killed together at the
            // timeout.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                RuntimeError::Other(format!("exec helper {}: {e}", self.shim.program.display()))
            })?;
        let group = child.id().and_then(|p| i32::try_from(p).ok());
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| RuntimeError::Other("exec helper: no stdout".into()))?;
        let mut stderr = child
            .stderr
            .take()
            .ok_or_else(|| RuntimeError::Other("exec helper: no stderr".into()))?;
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = output.clone();
        let read_out = async move {
            let mut buf = [0u8; 8192];
            loop {
                match stdout.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                        let room = EXEC_OUTPUT_LIMIT.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    }
                }
            }
        };
        let read_err = async {
            let mut s = Vec::new();
            let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut s).await;
            s
        };
        let all = async {
            let ((), err) = tokio::join!(read_out, read_err);
            let status = child.wait().await;
            (err, status)
        };
        let finished = tokio::time::timeout(timeout, all).await;
        let take_output = || {
            let out = output.lock().unwrap_or_else(|e| e.into_inner());
            String::from_utf8_lossy(&out).into_owned()
        };
        let (err, status) = match finished {
            Ok(r) => r,
            Err(_) => {
                if let Some(group) = group {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(group),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                return Ok(ExecOutput {
                    exit_code: None,
                    output: take_output(),
                });
            }
        };
        let err = String::from_utf8_lossy(&err);
        match exec::parse_status(&err) {
            Some(code) => Ok(ExecOutput {
                exit_code: Some(code),
                output: take_output(),
            }),
            None => Err(RuntimeError::Other(format!(
                "exec in container {id} failed ({}): {}",
                status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| e.to_string()),
                err.trim()
            ))),
        }
    }
}

/// The state of a container from its records and its processes; with the container's
/// pid while it runs.
fn container_state(
    dir: &Path,
    state: Option<&ShimState>,
    exit: Option<Exit>,
) -> Result<(ContainerState, Option<u32>), RuntimeError> {
    if let Some(exit) = exit {
        return Ok((ContainerState::Exited(exit), None));
    }
    let Some(state) = state else {
        return Ok((
            ContainerState::Unknown("its shim never recorded a state".into()),
            None,
        ));
    };
    let shim_alive = same_process(state.shim_pid, state.shim_start);
    match (state.container_pid, state.container_start) {
        (Some(pid), Some(start)) if same_process(pid, start) => {
            Ok((ContainerState::Running, Some(pid)))
        }
        // Ended; the shim is recording it.
        (Some(_), _) if shim_alive => Ok((ContainerState::Running, None)),
        (Some(pid), _) => Ok((
            ContainerState::Unknown(format!(
                "the container (pid {pid}) and its shim (pid {}) are gone and no exit was recorded",
                state.shim_pid
            )),
            None,
        )),
        (None, _) if shim_alive => Ok((ContainerState::Created, None)),
        (None, _) => {
            let why = std::fs::read_to_string(dir.join(START_ERROR_FILE)).unwrap_or_default();
            Ok((
                ContainerState::Unknown(if why.is_empty() {
                    format!(
                        "its shim (pid {}) exited before the container started",
                        state.shim_pid
                    )
                } else {
                    why.trim().to_string()
                }),
                None,
            ))
        }
    }
}

/// Kills what is left of a container (its first process and shim when they are still
/// the recorded ones, everything in its cgroup), removes its cgroup and its state
/// directory.
fn destroy_container_dir(dir: &Path) -> Result<(), String> {
    let spec = read_json::<ShimSpec>(&dir.join(SPEC_FILE)).ok().flatten();
    let state = read_json::<ShimState>(&dir.join(STATE_FILE)).ok().flatten();
    if let Some(s) = &state {
        if let (Some(pid), Some(start)) = (s.container_pid, s.container_start) {
            if same_process(pid, start) {
                kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
    if let Some(spec) = &spec {
        cgroup::kill_all(&spec.cgroup);
    }
    if let Some(s) = &state {
        if same_process(s.shim_pid, s.shim_start) {
            // Give the shim a moment to record the exit, then make sure it is gone.
            for _ in 0..100 {
                if !same_process(s.shim_pid, s.shim_start) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if same_process(s.shim_pid, s.shim_start) {
                kill(s.shim_pid, nix::sys::signal::Signal::SIGKILL);
                for _ in 0..100 {
                    if !same_process(s.shim_pid, s.shim_start) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
    let mut errors = Vec::new();
    if let Some(spec) = &spec {
        if let Err(e) = cgroup::remove(&spec.cgroup) {
            errors.push(e);
        }
    }
    rootfs::unmount_under(dir);
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => errors.push(format!("{}: {e}", dir.display())),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// A new container id: 32 random hex digits.
fn new_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "process"
    }

    fn version(&self) -> BoxFuture<'_, Result<String, RuntimeError>> {
        Box::pin(async { Ok(format!("plimsoll-process://{}", env!("CARGO_PKG_VERSION"))) })
    }

    fn has_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<bool, RuntimeError>> {
        Box::pin(async move {
            match self.images.resolve(image) {
                Ok(found) => Ok(found.is_some_and(|i| i.rootfs.is_dir())),
                Err(e) => Err(RuntimeError::BadImage {
                    image: image.to_string(),
                    reason: e.to_string(),
                }),
            }
        })
    }

    fn images(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>, RuntimeError>> {
        Box::pin(async move {
            let images = self
                .images
                .list()
                .map_err(|e| RuntimeError::Other(e.to_string()))?;
            Ok(images.into_iter().map(|i| (i.reference, i.size)).collect())
        })
    }

    fn start<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<String, RuntimeError>> {
        Box::pin(self.start_inner(spec))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<ContainerInfo>, RuntimeError>> {
        Box::pin(async move {
            let containers = self.state_dir.join("containers");
            let entries = std::fs::read_dir(&containers)
                .map_err(|e| RuntimeError::Other(format!("{}: {e}", containers.display())))?;
            let mut out = Vec::new();
            for entry in entries {
                let entry = entry
                    .map_err(|e| RuntimeError::Other(format!("{}: {e}", containers.display())))?;
                let id = entry.file_name().to_string_lossy().into_owned();
                if !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    continue;
                }
                match self.info(&id, &entry.path()) {
                    Ok(Some(info)) => out.push(info),
                    Ok(None) => {}
                    // A directory being created or removed right now.
                    Err(e) => {
                        tracing::debug!(container = %id, error = %e, "skipping an unreadable container record")
                    }
                }
            }
            out.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(out)
        })
    }

    fn stop<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.stop_inner(id, grace))
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move { self.remove_inner(id) })
    }

    fn stats<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<ContainerStats, RuntimeError>> {
        Box::pin(async move { self.stats_inner(id) })
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
        Box::pin(async move {
            let dir = self.container_dir(id)?;
            let spec = read_json::<ShimSpec>(&dir.join(SPEC_FILE))?;
            Ok(IpAddr::V4(
                spec.and_then(|s| s.container.network.map(|n| n.ip))
                    .unwrap_or(Ipv4Addr::LOCALHOST),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn command_resolution_follows_kubernetes() {
        let image = ImageConfig {
            entrypoint: s(&["/ep"]),
            cmd: s(&["c1", "c2"]),
            ..Default::default()
        };
        assert_eq!(resolve_command(None, None, &image), s(&["/ep", "c1", "c2"]));
        assert_eq!(resolve_command(Some(&s(&["x"])), None, &image), s(&["x"]));
        assert_eq!(
            resolve_command(None, Some(&s(&["a"])), &image),
            s(&["/ep", "a"])
        );
        assert_eq!(
            resolve_command(Some(&s(&["x"])), Some(&s(&["a"])), &image),
            s(&["x", "a"])
        );
        assert!(resolve_command(None, None, &ImageConfig::default()).is_empty());
    }

    #[test]
    fn env_resolution_overrides_in_place() {
        let image = ImageConfig {
            env: s(&["A=1", "PATH=/bin", "B=2"]),
            ..Default::default()
        };
        let env = resolve_env(
            &image,
            &[("B".into(), "3".into()), ("C".into(), "4".into())],
            "web-0",
        );
        assert_eq!(
            env,
            s(&["HOSTNAME=web-0", "A=1", "PATH=/bin", "B=3", "C=4"])
        );
        let env = resolve_env(&ImageConfig::default(), &[], "h");
        assert_eq!(
            env,
            vec!["HOSTNAME=h".to_string(), format!("PATH={DEFAULT_PATH}")]
        );
    }

    #[test]
    fn proc_start_time_of_self() {
        let me = std::process::id();
        let t = proc_start_time(me).unwrap();
        assert!(same_process(me, t));
        assert!(!same_process(me, t + 1));
        assert_eq!(path_component("a/b"), "a_b");
        assert_eq!(path_component(".."), "_..");
    }
}
