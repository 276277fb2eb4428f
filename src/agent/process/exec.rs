//! Running a command inside a running container (exec probes).

use std::fs::File;

use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::ForkResult;

use super::shim::{find_executable, prepare_exec, to_cstrings};
use super::DEFAULT_PATH;

/// The last line the helper writes on its stderr says how the command ended.
const STATUS_PREFIX: &str = "plimsoll-exec: ";

/// Reads the command's exit code from the helper's stderr (`None` when the helper
/// failed).
pub(crate) fn parse_status(stderr: &str) -> Option<i32> {
    let last = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(STATUS_PREFIX))?;
    last.strip_prefix("exit ")
        .and_then(|c| c.trim().parse().ok())
}

/// Runs `command` inside the container whose first process is `pid` (host pid) and
/// waits for it: `plimsoll agent shim-exec --pid PID -- COMMAND...`.
///
/// Joins the container's cgroup, its IPC, UTS, PID and mount namespaces (from
/// `/proc/PID/ns/*`), its root and working directory (`/proc/PID/root`,
/// `/proc/PID/cwd`), takes its first process's environment (`/proc/PID/environ`), and
/// runs the command (found through that environment's `PATH`) with stdin on
/// `/dev/null` and stderr on stdout. Its output goes to this process's stdout; the last
/// line on this process's stderr is `plimsoll-exec: exit CODE` or `plimsoll-exec:
/// error: …`. Answers the command's exit code (128 + signal when killed by one), 127
/// when it is not found, 125 when it could not be run.
///
/// The command stays in this process's process group: [`super::ProcessRuntime`] starts
/// the helper as a group of its own and kills the group at the exec's timeout.
///
/// Entering a mount namespace needs a single-threaded process: call it from the CLI
/// before any thread starts.
pub fn exec_main(pid: u32, command: &[String]) -> i32 {
    match run(pid, command) {
        Ok(code) => {
            eprintln!("{STATUS_PREFIX}exit {code}");
            code
        }
        Err(msg) => {
            eprintln!("{STATUS_PREFIX}error: {msg}");
            125
        }
    }
}

fn run(pid: u32, command: &[String]) -> Result<i32, String> {
    if command.is_empty() {
        return Err("no command".into());
    }
    let proc_dir = format!("/proc/{pid}");
    let environ = std::fs::read(format!("{proc_dir}/environ"))
        .map_err(|e| format!("{proc_dir}/environ: {e}"))?;
    let env: Vec<String> = environ
        .split(|&b| b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    let mut namespaces = Vec::new();
    for (name, flag) in [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        let path = format!("{proc_dir}/ns/{name}");
        namespaces.push((
            File::open(&path).map_err(|e| format!("{path}: {e}"))?,
            flag,
            path,
        ));
    }
    let root =
        File::open(format!("{proc_dir}/root")).map_err(|e| format!("{proc_dir}/root: {e}"))?;
    let cwd = File::open(format!("{proc_dir}/cwd")).ok();
    join_cgroup(pid)?;
    for (file, flag, path) in &namespaces {
        nix::sched::setns(file, *flag).map_err(|e| format!("setns {path}: {e}"))?;
    }
    nix::unistd::fchdir(&root).map_err(|e| format!("fchdir to the container's root: {e}"))?;
    nix::unistd::chroot(".").map_err(|e| format!("chroot to the container's root: {e}"))?;
    match &cwd {
        Some(cwd) if nix::unistd::fchdir(cwd).is_ok() => {}
        _ => nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?,
    }
    let argv = to_cstrings(command)?;
    let envp = to_cstrings(&env)?;
    let exe = match find_executable(&command[0], &path_var) {
        Ok(exe) => exe,
        Err(msg) => {
            // The command's fault, not the helper's: shown as its output, with the
            // shell's exit code for a command not found.
            println!("{msg}");
            return Ok(127);
        }
    };
    // SAFETY: this helper is single-threaded (see `exec_main`); the child only
    // redirects descriptors and calls execve or _exit.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            let _ = nix::unistd::dup2_stderr(std::io::stdout());
            if let Ok(null) = nix::fcntl::open(
                "/dev/null",
                nix::fcntl::OFlag::O_RDONLY,
                nix::sys::stat::Mode::empty(),
            ) {
                let _ = nix::unistd::dup2_stdin(&null);
            }
            let msg = match prepare_exec() {
                Ok(()) => match nix::unistd::execve(&exe, &argv, &envp) {
                    Err(e) => format!("exec {:?}: {e}\n", command[0]),
                    Ok(never) => match never {},
                },
                Err(msg) => msg,
            };
            let _ = nix::unistd::write(std::io::stdout(), msg.as_bytes());
            // SAFETY: ends the child without the parent's exit handlers.
            unsafe { libc::_exit(126) }
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(format!("fork: {e}")),
    };
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("waiting for the command: {e}")),
        }
    }
}

/// Moves this process into the cgroup of process `pid` (the memory controller's on v1,
/// the unified one on v2), so that what it runs counts against the container.
fn join_cgroup(pid: u32) -> Result<(), String> {
    let path = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let mut v2_path = None;
    let mut memory_path = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(p)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            v2_path = Some(p.to_string());
        } else if controllers.split(',').any(|c| c == "memory") {
            memory_path = Some(p.to_string());
        }
    }
    let hierarchy = cgroups_rs::fs::hierarchies::auto();
    let rel = if hierarchy.v2() { v2_path } else { memory_path }
        .ok_or_else(|| format!("{path}: no cgroup found"))?;
    let cg = cgroups_rs::fs::Cgroup::load(hierarchy, rel.trim_start_matches('/'));
    cg.add_task_by_tgid(cgroups_rs::CgroupPid::from(u64::from(std::process::id())))
        .map_err(|e| format!("joining cgroup {rel}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status("x\nplimsoll-exec: exit 3\n"), Some(3));
        assert_eq!(parse_status("plimsoll-exec: error: boom\n"), None);
        assert_eq!(parse_status(""), None);
    }
}
