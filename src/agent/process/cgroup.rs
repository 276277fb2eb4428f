//! Containers' cgroups through cgroups-rs, on v1 or v2 (whichever
//! `cgroups_rs::fs::hierarchies::auto` finds).

use std::time::{Duration, SystemTime};

use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuacct::CpuAcctController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::{hierarchies, Cgroup, Controller};
use cgroups_rs::CgroupPid;

use crate::agent::runtime::{ContainerStats, Resources};

/// The CFS period: 100 ms, as the kubelet sets it.
pub(crate) const CFS_PERIOD_US: u64 = 100_000;

/// A handle on the cgroup at `path` (relative to each hierarchy's root); it may not exist.
pub(crate) fn load(path: &str) -> Cgroup {
    Cgroup::load(hierarchies::auto(), path)
}

/// `cpu.shares` for a CPU request, as the kubelet computes it (`millis × 1024 / 1000`,
/// at least 2; at most the kernel's 262144).
pub(crate) fn cpu_shares(request_millis: u64) -> u64 {
    (request_millis.saturating_mul(1024) / 1000).clamp(2, cgroups_rs::CPU_SHARES_V1_MAX)
}

/// The v2 `cpu.weight` for shares (the kubelet's and runc's conversion).
pub(crate) fn cpu_weight(shares: u64) -> u64 {
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// Creates the cgroup at `path` and applies `res` to it.
pub(crate) fn create(path: &str, res: &Resources) -> Result<Cgroup, String> {
    // A cleanup removing the empty `plimsoll` parent at the same moment
    // (`remove_if_childless`) can make one attempt fail: try again.
    let mut attempt = 0;
    let cg = loop {
        match Cgroup::new(hierarchies::auto(), path) {
            Ok(cg) => break cg,
            Err(_) if attempt < 3 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("creating cgroup {path}: {e}")),
        }
    };
    let v2 = cg.v2();
    if let Some(cpu) = cg.controller_of::<CpuController>() {
        if let Some(millis) = res.cpu_request_millis {
            let shares = cpu_shares(millis);
            let value = if v2 { cpu_weight(shares) } else { shares };
            cpu.set_shares(value)
                .map_err(|e| format!("cgroup {path}: cpu shares {value}: {e}"))?;
        }
        if let Some(millis) = res.cpu_limit_millis {
            // The kernel's minimum quota is 1 ms.
            let quota = (millis.saturating_mul(CFS_PERIOD_US) / 1000).max(1000);
            cpu.set_cfs_quota_and_period(Some(quota as i64), Some(CFS_PERIOD_US))
                .map_err(|e| {
                    format!("cgroup {path}: cpu quota {quota} µs per {CFS_PERIOD_US} µs: {e}")
                })?;
        }
    } else if res.cpu_limit_millis.is_some() || res.cpu_request_millis.is_some() {
        return Err(format!("cgroup {path}: no cpu controller on this host"));
    }
    if let Some(bytes) = res.memory_limit_bytes {
        let mem = cg
            .controller_of::<MemController>()
            .ok_or_else(|| format!("cgroup {path}: no memory controller on this host"))?;
        let limit = i64::try_from(bytes).unwrap_or(i64::MAX);
        mem.set_limit(limit)
            .map_err(|e| format!("cgroup {path}: memory limit {bytes}: {e}"))?;
        // No swapping past the limit: memory+swap equal to the limit on v1, no swap on
        // v2, where swap accounting exists.
        let base = mem.path();
        if !v2 && base.join("memory.memsw.limit_in_bytes").exists() {
            mem.set_memswap_limit(limit)
                .map_err(|e| format!("cgroup {path}: memory+swap limit {bytes}: {e}"))?;
        } else if v2 && base.join("memory.swap.max").exists() {
            mem.set_memswap_limit(0)
                .map_err(|e| format!("cgroup {path}: swap limit 0: {e}"))?;
        }
    }
    Ok(cg)
}

/// How many times the kernel's OOM killer killed a process of the cgroup: v1
/// `memory.oom_control` `oom_kill` (through cgroups-rs), v2 `memory.events` `oom_kill`
/// (cgroups-rs 0.5 does not read that file, so it is read from the controller's
/// directory here).
pub(crate) fn oom_kills(cg: &Cgroup) -> u64 {
    let Some(mem) = cg.controller_of::<MemController>() else {
        return 0;
    };
    if cg.v2() {
        std::fs::read_to_string(mem.path().join("memory.events"))
            .ok()
            .and_then(|text| {
                text.lines().find_map(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|v| v.trim().parse().ok())
                })
            })
            .unwrap_or(0)
    } else {
        mem.memory_stat().oom_control.oom_kill
    }
}

/// The processes in the cgroup (every hierarchy).
fn procs(cg: &Cgroup) -> Vec<CgroupPid> {
    let mut pids = cg.procs();
    pids.sort();
    pids.dedup();
    pids
}

/// SIGKILLs every process in the cgroup at `path` until it is empty (at most 5 s).
pub(crate) fn kill_all(path: &str) {
    let cg = load(path);
    if !cg.exists() {
        return;
    }
    for _ in 0..250 {
        let pids = procs(&cg);
        if pids.is_empty() {
            return;
        }
        for p in pids {
            if let Ok(pid) = i32::try_from(p.pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes the cgroup at `path` (killing what is left in it), then its parent (the
/// pod's) if that is now empty.
pub(crate) fn remove(path: &str) -> Result<(), String> {
    let cg = load(path);
    if cg.exists() {
        kill_all(path);
        cg.delete()
            .map_err(|e| format!("removing cgroup {path}: {e}"))?;
    }
    if let Some((parent, _)) = path.rsplit_once('/') {
        let parent_cg = load(parent);
        // Fails while the pod has other containers: that is fine.
        if parent_cg.exists() && procs(&parent_cg).is_empty() {
            let _ = parent_cg.delete();
        }
    }
    Ok(())
}

/// Removes the cgroup tree at `path` (children first), killing every process in it.
pub(crate) fn destroy_tree(path: &str) -> Result<(), String> {
    let cg = load(path);
    if !cg.exists() {
        return Ok(());
    }
    // The children are the same in every hierarchy we made them in; list them where the
    // cgroup's first controller has its directory.
    let mut children = Vec::new();
    for sub in cg.subsystems() {
        let dir = sub.to_controller().path().to_path_buf();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    children.push(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
    }
    children.sort();
    children.dedup();
    let mut errors = Vec::new();
    for child in children {
        if let Err(e) = destroy_tree(&format!("{path}/{child}")) {
            errors.push(e);
        }
    }
    kill_all(path);
    if let Err(e) = cg.delete() {
        errors.push(format!("removing cgroup {path}: {e}"));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Removes the cgroup at `path` if it has no child cgroups (and so no containers); a
/// cgroup another runtime creates children in at the same moment stays (`rmdir` of a
/// cgroup with children fails).
pub(crate) fn remove_if_childless(path: &str) {
    let cg = load(path);
    if !cg.exists() {
        return;
    }
    let has_children = cg.subsystems().iter().any(|sub| {
        std::fs::read_dir(sub.to_controller().path())
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            })
            .unwrap_or(false)
    });
    if !has_children && procs(&cg).is_empty() {
        let _ = cg.delete();
    }
}

/// CPU time and memory working set of the cgroup at `path`.
pub(crate) fn stats(path: &str) -> Result<ContainerStats, String> {
    let cg = load(path);
    if !cg.exists() {
        return Err(format!("cgroup {path} does not exist"));
    }
    let cpu_usage_ns = if cg.v2() {
        let cpu = cg
            .controller_of::<CpuController>()
            .ok_or_else(|| format!("cgroup {path}: no cpu controller"))?;
        let stat = cpu.cpu().stat;
        stat.lines()
            .find_map(|l| {
                l.strip_prefix("usage_usec ")
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .ok_or_else(|| format!("cgroup {path}: cpu.stat has no usage_usec"))?
            * 1000
    } else {
        let acct = cg
            .controller_of::<CpuAcctController>()
            .ok_or_else(|| format!("cgroup {path}: no cpuacct controller"))?;
        acct.cpuacct().usage
    };
    let mem = cg
        .controller_of::<MemController>()
        .ok_or_else(|| format!("cgroup {path}: no memory controller"))?;
    let m = mem.memory_stat();
    let inactive = if cg.v2() {
        m.stat.inactive_file
    } else {
        m.stat.total_inactive_file
    };
    Ok(ContainerStats {
        cpu_usage_ns,
        memory_working_set_bytes: m.usage_in_bytes.saturating_sub(inactive),
        timestamp: SystemTime::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_weight_as_the_kubelet() {
        assert_eq!(cpu_shares(0), 2);
        assert_eq!(cpu_shares(1), 2);
        assert_eq!(cpu_shares(100), 102);
        assert_eq!(cpu_shares(1000), 1024);
        assert_eq!(cpu_shares(u64::MAX), 262_144);
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(1024), 39);
        assert_eq!(cpu_weight(262_144), 10_000);
    }
}
