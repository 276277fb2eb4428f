//! The shim: one per container, supervising it from creation to its recorded exit.

use std::convert::Infallible;
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cgroups_rs::CgroupPid;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use super::{cgroup, rootfs, write_atomic, write_json_atomic, ShimSpec, ShimState};
use super::{EXIT_FILE, START_ERROR_FILE, STATE_FILE};
use crate::agent::logfile::{LogStream, LogWriter, MAX_ENTRY_BYTES};
use crate::agent::runtime::Exit;

/// Runs a container's shim from its `spec.json` (written by
/// `ProcessRuntime::start`) and answers the shim's exit code: `plimsoll agent
/// shim --spec FILE`.
///
/// It must be called from a single-threaded process (it forks the container's first
/// process, which then allocates and mounts before `exec`): the CLI dispatches to it
/// before starting any runtime or thread.
///
/// The shim leaves the agent's session, creates the cgroup, starts the container (see
/// the module docs of [`crate::agent::process`]), writes `state.json` once the command
/// runs (or `start-error` when it could not be started), copies the container's
/// output to its log, waits for it, kills what is left in its cgroup and writes
/// `exit.json`.
pub fn shim_main(spec_path: &Path) -> i32 {
    let dir = match spec_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match run(spec_path, &dir) {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("plimsoll shim: {msg}");
            if !dir.join(EXIT_FILE).exists() {
                let _ = write_atomic(&dir.join(START_ERROR_FILE), msg.as_bytes());
            }
            1
        }
    }
}

fn run(spec_path: &Path, dir: &Path) -> Result<(), String> {
    let bytes = std::fs::read(spec_path).map_err(|e| format!("{}: {e}", spec_path.display()))?;
    let spec: ShimSpec =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", spec_path.display()))?;
    // Out of the agent's session and process group: the agent's end (a terminal's
    // hang-up, a signal to its group) is not the container's. Fails only when already
    // a session leader.
    let _ = nix::unistd::setsid();
    let me = std::process::id();
    let shim_start = super::proc_start_time(me).ok_or("reading the shim's own /proc/self/stat")?;
    let mut state = ShimState {
        shim_pid: me,
        shim_start,
        ..Default::default()
    };
    write_json_atomic(&dir.join(STATE_FILE), &state)
        .map_err(|e| format!("{}: {e}", dir.join(STATE_FILE).display()))?;
    let hostname_file = dir.join("hostname");
    std::fs::write(&hostname_file, format!("{}\n", spec.container.hostname))
        .map_err(|e| format!("{}: {e}", hostname_file.display()))?;
    let mut log = LogWriter::open(
        &spec.container.log_path,
        spec.container.log_max_bytes,
        spec.container.log_max_files,
    )
    .map_err(|e| format!("log file {}: {e}", spec.container.log_path.display()))?;
    let cg = cgroup::create(&spec.cgroup, &spec.container.resources)?;
    match start_container(&spec, dir, &cg) {
        Ok((pid, out_r, err_r)) => {
            state.container_pid = Some(pid.as_raw() as u32);
            state.container_start = super::proc_start_time_any(pid.as_raw() as u32);
            state.started_at = Some(SystemTime::now());
            state.rootfs = std::fs::read_to_string(dir.join("rootfs-mode")).ok();
            if let Err(e) = write_json_atomic(&dir.join(STATE_FILE), &state) {
                eprintln!("plimsoll shim: {}: {e}", dir.join(STATE_FILE).display());
            }
            pump_logs(&mut log, out_r, err_r);
            let exit = wait_exit(pid, &cg, &spec.cgroup);
            write_json_atomic(&dir.join(EXIT_FILE), &exit)
                .map_err(|e| format!("{}: {e}", dir.join(EXIT_FILE).display()))
        }
        Err(msg) => {
            cgroup::kill_all(&spec.cgroup);
            let _ = cgroup::remove(&spec.cgroup);
            Err(msg)
        }
    }
}

/// Forks the container's first process into new PID, mount, UTS and IPC namespaces,
/// puts it in the cgroup, lets it set up and exec; answers its pid and the read ends of
/// its stdout and stderr once the command runs.
fn start_container(
    spec: &ShimSpec,
    dir: &Path,
    cg: &cgroups_rs::fs::Cgroup,
) -> Result<(Pid, OwnedFd, OwnedFd), String> {
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"));
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // The shim says "go" once the child is in the cgroup; the child reports a failure
    // before exec on the status pipe, whose close-on-exec end closes at a successful
    // exec.
    let (go_r, go_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    // The shim's next child is PID 1 of a new PID namespace (the shim stays outside).
    nix::sched::unshare(CloneFlags::CLONE_NEWPID)
        .map_err(|e| format!("unshare(CLONE_NEWPID): {e}"))?;
    // SAFETY: the shim is single-threaded (see `shim_main`), so the child starts with
    // consistent locks and heap; it ends in `execve` or `_exit`.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            drop((out_r, err_r, go_w, status_r));
            let msg = match child_setup(spec, dir, out_w, err_w, go_r) {
                Err(msg) => msg,
                Ok(never) => match never {},
            };
            let _ = nix::unistd::write(&status_w, msg.as_bytes());
            // SAFETY: `_exit` ends the process without running the parent's exit
            // handlers or flushing buffers the child shares with it.
            unsafe { libc::_exit(127) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop((out_w, err_w, go_r, status_w));
            let abort = |msg: String| {
                let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                let _ = waitpid(child, None);
                msg
            };
            if let Err(e) = cg.add_task_by_tgid(CgroupPid::from(child.as_raw() as u64)) {
                return Err(abort(format!(
                    "adding the container's process to cgroup {}: {e}",
                    spec.cgroup
                )));
            }
            if let Err(e) = nix::unistd::write(&go_w, b"g") {
                return Err(abort(format!("starting the container's process: {e}")));
            }
            drop(go_w);
            let mut msg = Vec::new();
            let _ = std::fs::File::from(status_r).read_to_end(&mut msg);
            if !msg.is_empty() {
                let _ = waitpid(child, None);
                return Err(String::from_utf8_lossy(&msg).into_owned());
            }
            Ok((child, out_r, err_r))
        }
        Err(e) => Err(format!("fork: {e}")),
    }
}

/// In the container's first process: everything between fork and exec. Answers only
/// on failure.
fn child_setup(
    spec: &ShimSpec,
    dir: &Path,
    out_w: OwnedFd,
    err_w: OwnedFd,
    go_r: OwnedFd,
) -> Result<Infallible, String> {
    let mut go = [0u8; 1];
    match nix::unistd::read(&go_r, &mut go) {
        Ok(1) => {}
        _ => return Err("the shim went away before the container started".into()),
    }
    drop(go_r);
    // The pod's network namespace (shared by its containers), made by the agent.
    if let Some(net) = &spec.container.network {
        let ns = std::fs::File::open(&net.netns)
            .map_err(|e| format!("the pod's network namespace {}: {e}", net.netns.display()))?;
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("joining the pod's network namespace: {e}"))?;
    }
    nix::sched::unshare(
        CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC,
    )
    .map_err(|e| format!("unshare(mount, UTS, IPC namespaces): {e}"))?;
    // Nothing mounted from here on propagates back to the host.
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("making the mounts private: {e}"))?;
    nix::unistd::sethostname(&spec.container.hostname)
        .map_err(|e| format!("sethostname {:?}: {e}", spec.container.hostname))?;
    let (root, mode) = rootfs::make_root(spec, dir)?;
    let _ = std::fs::write(dir.join("rootfs-mode"), mode);
    rootfs::populate(&root, dir, &spec.container.mounts)?;
    rootfs::pivot(&root)?;

    let null = nix::fcntl::open("/dev/null", OFlag::O_RDWR, nix::sys::stat::Mode::empty())
        .map_err(|e| format!("opening /dev/null in the container: {e}"))?;
    nix::unistd::dup2_stdin(&null).map_err(|e| format!("stdin: {e}"))?;
    nix::unistd::dup2_stdout(&out_w).map_err(|e| format!("stdout: {e}"))?;
    nix::unistd::dup2_stderr(&err_w).map_err(|e| format!("stderr: {e}"))?;
    drop((null, out_w, err_w));

    std::fs::create_dir_all(&spec.cwd)
        .map_err(|e| format!("working directory {}: {e}", spec.cwd))?;
    nix::unistd::chdir(spec.cwd.as_str())
        .map_err(|e| format!("working directory {}: {e}", spec.cwd))?;

    let path_var = spec
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(super::DEFAULT_PATH);
    let exe = find_executable(&spec.argv[0], path_var)?;
    let argv = to_cstrings(&spec.argv)?;
    let env = to_cstrings(&spec.env)?;
    prepare_exec()?;
    match nix::unistd::execve(&exe, &argv, &env) {
        Err(e) => Err(format!("exec {:?}: {e}", spec.argv[0])),
        Ok(never) => match never {},
    }
}

pub(crate) fn to_cstrings(v: &[String]) -> Result<Vec<CString>, String> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| format!("{s:?} contains a NUL byte")))
        .collect()
}

/// Finds `name` as `execvp` would, in `path_var`'s directories unless it has a `/`.
pub(crate) fn find_executable(name: &str, path_var: &str) -> Result<CString, String> {
    let is_exec = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if name.contains('/') {
        Some(PathBuf::from(name)).filter(|p| is_exec(p))
    } else {
        path_var
            .split(':')
            .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(name))
            .find(|p| is_exec(p))
    };
    match found {
        Some(p) => CString::new(p.into_os_string().into_encoded_bytes())
            .map_err(|_| format!("{name:?} contains a NUL byte")),
        None if name.contains('/') => Err(format!("exec {name:?}: no such executable file")),
        None => Err(format!(
            "exec {name:?}: executable file not found in $PATH ({path_var})"
        )),
    }
}

/// Just before `execve`: every descriptor but 0, 1 and 2 closes at exec, no signal is
/// blocked or ignored (Rust ignores SIGPIPE in its programs; the command gets the
/// default).
pub(crate) fn prepare_exec() -> Result<(), String> {
    // SAFETY: close_range only sets a flag on this process's descriptors.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        // Kernels before 5.11: one descriptor at a time.
        let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
            .map_err(|e| format!("/proc/self/fd: {e}"))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&fd| fd > 2)
            .collect();
        for fd in fds {
            // SAFETY: setting FD_CLOEXEC on a descriptor number (a stale one fails).
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing the default disposition runs no handler code.
        let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) };
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|e| format!("sigprocmask: {e}"))
}

/// Copies the container's stdout and stderr to the log, line by line, until both close.
fn pump_logs(log: &mut LogWriter, out_r: OwnedFd, err_r: OwnedFd) {
    struct Source {
        fd: OwnedFd,
        stream: LogStream,
        pending: Vec<u8>,
        open: bool,
    }
    let mut sources = [
        Source {
            fd: out_r,
            stream: LogStream::Stdout,
            pending: Vec::new(),
            open: true,
        },
        Source {
            fd: err_r,
            stream: LogStream::Stderr,
            pending: Vec::new(),
            open: true,
        },
    ];
    let mut warned = false;
    let mut write = |log: &mut LogWriter, stream, line: &[u8], partial| {
        if let Err(e) = log.write(stream, SystemTime::now(), line, partial) {
            if !warned {
                eprintln!(
                    "plimsoll shim: writing the log {}: {e}",
                    log.path().display()
                );
                warned = true;
            }
        }
    };
    let mut buf = vec![0u8; 64 * 1024];
    while sources.iter().any(|s| s.open) {
        let ready: Vec<usize> = {
            let open: Vec<usize> = (0..2).filter(|&i| sources[i].open).collect();
            let mut fds: Vec<PollFd> = open
                .iter()
                .map(|&i| PollFd::new(sources[i].fd.as_fd(), PollFlags::POLLIN))
                .collect();
            match nix::poll::poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    eprintln!("plimsoll shim: poll: {e}");
                    return;
                }
            }
            open.iter()
                .zip(&fds)
                .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
                .map(|(&i, _)| i)
                .collect()
        };
        for i in ready {
            let src = &mut sources[i];
            match nix::unistd::read(&src.fd, &mut buf) {
                Ok(0) | Err(nix::errno::Errno::EBADF) => {
                    if !src.pending.is_empty() {
                        write(log, src.stream, &src.pending, false);
                        src.pending.clear();
                    }
                    src.open = false;
                }
                Ok(n) => {
                    src.pending.extend_from_slice(&buf[..n]);
                    let mut start = 0;
                    while let Some(p) = src.pending[start..].iter().position(|&b| b == b'\n') {
                        write(log, src.stream, &src.pending[start..start + p], false);
                        start += p + 1;
                    }
                    // A line still growing past an entry's size is written in parts.
                    while src.pending.len() - start >= MAX_ENTRY_BYTES {
                        write(
                            log,
                            src.stream,
                            &src.pending[start..start + MAX_ENTRY_BYTES],
                            true,
                        );
                        start += MAX_ENTRY_BYTES;
                    }
                    src.pending.drain(..start);
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(e) => {
                    eprintln!(
                        "plimsoll shim: reading the container's {}: {e}",
                        src.stream.as_str()
                    );
                    src.open = false;
                }
            }
        }
    }
}

/// Waits for the container's first process, kills whatever is left in the cgroup, and
/// answers how it ended.
fn wait_exit(pid: Pid, cg: &cgroups_rs::fs::Cgroup, cgroup_path: &str) -> Exit {
    let status = loop {
        match waitpid(pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    };
    let (exit_code, signal) = match status {
        Ok(WaitStatus::Exited(_, code)) => (code, None),
        Ok(WaitStatus::Signaled(_, sig, _)) => (128 + sig as i32, Some(sig as i32)),
        other => {
            eprintln!("plimsoll shim: waiting for the container: {other:?}");
            (-1, None)
        }
    };
    let finished_at = SystemTime::now();
    let oom_killed = cgroup::oom_kills(cg) > 0;
    cgroup::kill_all(cgroup_path);
    Exit {
        exit_code,
        signal,
        oom_killed,
        finished_at,
    }
}
