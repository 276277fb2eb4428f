//! The process runtime with real containers: namespaces, cgroups, overlay root
//! filesystems, CRI logs, stop and exec, recovery by a new runtime on the same state
//! directory. Needs root (namespaces, mounts, cgroups); every test cleans up its
//! containers, shims, cgroups and directories.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use plimsoll::agent::image::ImageStore;
use plimsoll::agent::logfile::{self, LogOptions};
use plimsoll::agent::process::{ProcessRuntime, ShimCommand};
use plimsoll::agent::runtime::{
    ContainerKind, ContainerSpec, ContainerState, Exit, Mount, PodRef, Resources, Runtime,
    RuntimeError,
};

const APPLETS: &[&str] = &[
    "sh", "sleep", "echo", "cat", "ps", "ls", "yes", "head", "hostname", "dd", "pwd", "env",
    "true", "false", "touch", "mkdir", "wc", "grep", "tr", "id",
];

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A temporary directory with an image store holding `busybox:latest` (a plain root
/// filesystem: static busybox and its applets) and `toolbox:1` (the same with an image
/// config), a state directory, a log directory, and a runtime on them; everything is
/// destroyed on drop.
struct Fixture {
    dir: PathBuf,
    images: PathBuf,
    rt: ProcessRuntime,
    node: String,
}

fn make_rootfs(rootfs: &Path) {
    for d in ["bin", "proc", "dev", "tmp", "etc", "srv"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(rootfs.join("etc/issue"), "plimsoll test image\n").unwrap();
}

impl Fixture {
    fn new(name: &str) -> Self {
        let node = format!("h2test-{}-{name}", std::process::id());
        let dir = std::env::temp_dir().join(format!("plimsoll-procrt-{node}"));
        let _ = std::fs::remove_dir_all(&dir);
        let images = dir.join("images");
        make_rootfs(&images.join("busybox:latest/rootfs"));
        make_rootfs(&images.join("toolbox:1/rootfs"));
        std::fs::write(
            images.join("toolbox:1/image.json"),
            serde_json::json!({
                "entrypoint": ["/bin/sh", "-c"],
                "cmd": ["echo from-cmd"],
                "env": ["A=image", "B=image", "PATH=/bin"],
                "working_dir": "/srv",
                "id": "sha256:0000000000000000000000000000000000000000000000000000000000000001",
                "size": 1_000_000,
            })
            .to_string(),
        )
        .unwrap();
        let store = ImageStore::open(&images).unwrap();
        let rt = ProcessRuntime::new(
            dir.join("state"),
            store,
            &node,
            ShimCommand::plimsoll(env!("CARGO_BIN_EXE_plimsoll")),
        )
        .unwrap();
        Self {
            dir,
            images,
            rt,
            node,
        }
    }

    /// A second runtime on the same state directory (the agent restarted).
    fn reopen(&self) -> ProcessRuntime {
        ProcessRuntime::new(
            self.dir.join("state"),
            ImageStore::open(&self.images).unwrap(),
            &self.node,
            ShimCommand::plimsoll(env!("CARGO_BIN_EXE_plimsoll")),
        )
        .unwrap()
    }

    fn spec(&self, name: &str, command: &[&str]) -> ContainerSpec {
        ContainerSpec {
            pod: PodRef {
                namespace: "default".into(),
                name: format!("pod-{name}"),
                uid: format!("uid-{name}"),
            },
            name: name.into(),
            kind: ContainerKind::Regular,
            attempt: 0,
            image: "busybox".into(),
            command: if command.is_empty() {
                None
            } else {
                Some(command.iter().map(|s| s.to_string()).collect())
            },
            args: None,
            env: vec![],
            working_dir: None,
            mounts: vec![],
            hostname: format!("pod-{name}"),
            resources: Resources::default(),
            log_path: self.dir.join("logs").join(format!("{name}.log")),
            log_max_bytes: 10 << 20,
            log_max_files: 5,
            network: None,
        }
    }

    fn cgroup_dir(&self, controller: &str, spec: &ContainerSpec, id: &str) -> PathBuf {
        let v1 = Path::new("/sys/fs/cgroup").join(controller);
        let base = if v1.join("cgroup.procs").exists() {
            v1
        } else {
            PathBuf::from("/sys/fs/cgroup")
        };
        base.join(format!("plimsoll/{}/pod{}/{id}", self.node, spec.pod.uid))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let result = self.rt.destroy_all_blocking();
        let _ = std::fs::remove_dir_all(&self.dir);
        if !std::thread::panicking() {
            result.unwrap();
            let node_cgroup = Path::new("/sys/fs/cgroup/memory/plimsoll").join(&self.node);
            assert!(
                !node_cgroup.exists(),
                "{} left behind",
                node_cgroup.display()
            );
        }
    }
}

async fn state_of(rt: &ProcessRuntime, id: &str) -> ContainerState {
    rt.list()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.id == id)
        .map(|c| c.state)
        .expect("the container is listed")
}

async fn wait_exit(rt: &ProcessRuntime, id: &str, within: Duration) -> Exit {
    let deadline = Instant::now() + within;
    loop {
        match state_of(rt, id).await {
            ContainerState::Exited(exit) => return exit,
            other if Instant::now() > deadline => {
                panic!("container {id} still {other:?} after {within:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Runs a container to its end; answers its exit and its log as `kubectl logs` shows it.
async fn run_to_end(fx: &Fixture, spec: &ContainerSpec) -> (Exit, String) {
    // One log per run, as the agent gives each start its own file.
    let _ = std::fs::remove_file(&spec.log_path);
    let id = fx.rt.start(spec).await.unwrap();
    let exit = wait_exit(&fx.rt, &id, Duration::from_secs(20)).await;
    let log = logfile::read_logs(&spec.log_path, &LogOptions::default()).unwrap();
    fx.rt.remove(&id).await.unwrap();
    (exit, String::from_utf8(log).unwrap())
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: the process runtime needs root");
            return;
        }
    };
}

#[tokio::test(flavor = "multi_thread")]
async fn echo_is_logged_in_the_cri_format() {
    require_root!();
    let fx = Fixture::new("echo");
    let before = SystemTime::now();
    let spec = fx.spec("echo", &["echo", "hello world"]);
    let (exit, log) = run_to_end(&fx, &spec).await;
    assert_eq!(exit.exit_code, 0);
    assert_eq!(exit.signal, None);
    assert!(!exit.oom_killed);
    assert!(exit.finished_at >= before);
    assert_eq!(log, "hello world\n");
    let raw = std::fs::read_to_string(&spec.log_path).unwrap();
    let line = raw.strip_suffix('\n').unwrap();
    let parts: Vec<&str> = line.splitn(4, ' ').collect();
    assert_eq!(parts[1..], ["stdout", "F", "hello world"], "{raw:?}");
    // RFC 3339 with nanoseconds, in UTC, at the time of the run.
    assert_eq!(
        parts[0].len(),
        "2026-12-06T04:10:33.123456789Z".len(),
        "{raw:?}"
    );
    let ts = logfile::parse_timestamp(parts[0]).unwrap();
    assert!(ts >= before && ts <= SystemTime::now());

    // Both streams, an exit code, a line longer than an entry.
    let spec = fx.spec(
        "streams",
        &["sh", "-c", "echo out; echo err >&2; head -c 20000 /dev/zero | tr '\\0' x; echo; printf tail; exit 3"],
    );
    let (exit, log) = run_to_end(&fx, &spec).await;
    assert_eq!(exit.exit_code, 3);
    let raw = std::fs::read_to_string(&spec.log_path).unwrap();
    assert!(raw.contains(" stderr F err\n"), "{raw:?}");
    assert!(raw.contains(" stdout P xxxx"), "{raw:?}");
    assert!(raw.ends_with(" stdout F tail\n"), "{raw:?}");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log:?}");
    assert!(lines.contains(&"out") && lines.contains(&"err") && lines.contains(&"tail"));
    assert!(lines.contains(&"x".repeat(20000).as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn command_args_env_and_working_dir_resolve_as_kubernetes() {
    require_root!();
    let fx = Fixture::new("resolve");
    let s = |v: &[&str]| Some(v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
    let mut spec = fx.spec("resolve", &[]);
    spec.image = "toolbox:1".into();
    // Neither: entrypoint + cmd.
    assert_eq!(run_to_end(&fx, &spec).await.1, "from-cmd\n");
    // args only: entrypoint + args.
    spec.args = s(&["echo args-only"]);
    assert_eq!(run_to_end(&fx, &spec).await.1, "args-only\n");
    // command only: no args at all (the image's cmd is dropped).
    spec.command = s(&["/bin/echo"]);
    spec.args = None;
    assert_eq!(run_to_end(&fx, &spec).await.1, "\n");
    // Both.
    spec.args = s(&["x", "y"]);
    assert_eq!(run_to_end(&fx, &spec).await.1, "x y\n");
    // Environment: the image's, overridden by the spec's, HOSTNAME; the image's workdir.
    spec.command = s(&["sh", "-c", "echo \"$A $B $C $HOSTNAME $PATH\"; pwd"]);
    spec.args = None;
    spec.env = vec![("B".into(), "spec".into()), ("C".into(), "spec".into())];
    assert_eq!(
        run_to_end(&fx, &spec).await.1,
        "image spec spec pod-resolve /bin\n/srv\n"
    );
    // The spec's working directory (created when missing).
    spec.working_dir = Some("/var/work".into());
    assert_eq!(
        run_to_end(&fx, &spec).await.1,
        "image spec spec pod-resolve /bin\n/var/work\n"
    );
    // No PATH anywhere: the default.
    let spec = fx.spec("path", &["sh", "-c", "echo $PATH; pwd"]);
    assert_eq!(
        run_to_end(&fx, &spec).await.1,
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn namespaces_hostname_pids_and_root() {
    require_root!();
    let fx = Fixture::new("ns");
    let spec = fx.spec(
        "ns",
        &[
            "sh",
            "-c",
            "hostname; cat /etc/hostname; echo $$; ps -o pid,args; ls /; ls /dev; cat /etc/issue",
        ],
    );
    let (exit, log) = run_to_end(&fx, &spec).await;
    assert_eq!(exit.exit_code, 0, "{log}");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "pod-ns");
    assert_eq!(lines[1], "pod-ns");
    // The command is PID 1 of its own PID namespace and sees only its own processes.
    assert_eq!(lines[2], "1");
    assert!(lines[3].trim_start().starts_with("PID"), "{log}");
    let procs: Vec<&str> = lines[4..]
        .iter()
        .take_while(|l| l.trim_start().starts_with(char::is_numeric))
        .copied()
        .collect();
    assert_eq!(procs.len(), 2, "only sh and ps: {log}");
    assert!(
        procs[0].trim_start().starts_with("1 sh -c hostname"),
        "{log}"
    );
    // Its root is the image's (the host's /work or /sys is not there), with a minimal /dev.
    assert!(
        !lines.contains(&"sys") && !lines.contains(&"work") && lines.contains(&"bin"),
        "{log}"
    );
    for dev in [
        "null", "zero", "full", "random", "urandom", "tty", "shm", "fd",
    ] {
        assert!(lines.contains(&dev), "/dev/{dev} missing: {log}");
    }
    assert!(
        !lines.contains(&"sda") && !lines.contains(&"vda") && !lines.contains(&"kmsg"),
        "{log}"
    );
    assert_eq!(*lines.last().unwrap(), "plimsoll test image");
    // The host's hostname is untouched.
    assert_ne!(
        nix::unistd::gethostname().unwrap().to_string_lossy(),
        "pod-ns"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mounts_and_copy_on_write_roots() {
    require_root!();
    let fx = Fixture::new("mounts");
    let rw = fx.dir.join("vol-rw");
    let ro = fx.dir.join("vol-ro");
    std::fs::create_dir_all(&rw).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::write(rw.join("a.txt"), "from the host\n").unwrap();
    std::fs::write(ro.join("r.txt"), "read only\n").unwrap();
    let config = fx.dir.join("config.txt");
    std::fs::write(&config, "key=value\n").unwrap();
    for copy in [false, true] {
        let rt = fx.reopen().with_rootfs_copy(copy);
        let mut spec = fx.spec(
            if copy { "mounts-copy" } else { "mounts-overlay" },
            &[
                "sh",
                "-c",
                "cat /data/a.txt; echo new > /data/b.txt; \
                 (echo x > /ro/c.txt) 2>/dev/null || echo ro-denied; cat /ro/r.txt; cat /etc/app.conf; \
                 echo changed > /etc/issue; echo created > /bin/new-file; cat /etc/issue",
            ],
        );
        spec.mounts = vec![
            Mount {
                host_path: rw.clone(),
                container_path: "/data".into(),
                read_only: false,
            },
            Mount {
                host_path: ro.clone(),
                container_path: "/ro".into(),
                read_only: true,
            },
            Mount {
                host_path: config.clone(),
                container_path: "/etc/app.conf".into(),
                read_only: true,
            },
        ];
        let id = rt.start(&spec).await.unwrap();
        let exit = wait_exit(&rt, &id, Duration::from_secs(20)).await;
        let log =
            String::from_utf8(logfile::read_logs(&spec.log_path, &LogOptions::default()).unwrap())
                .unwrap();
        assert_eq!(exit.exit_code, 0, "{log}");
        assert_eq!(
            log,
            "from the host\nro-denied\nread only\nkey=value\nchanged\n"
        );
        assert_eq!(std::fs::read_to_string(rw.join("b.txt")).unwrap(), "new\n");
        assert!(!ro.join("c.txt").exists());
        // The image is never written to.
        let image = fx.images.join("busybox:latest/rootfs");
        assert_eq!(
            std::fs::read_to_string(image.join("etc/issue")).unwrap(),
            "plimsoll test image\n"
        );
        assert!(!image.join("bin/new-file").exists());
        assert!(!image.join("etc/app.conf").exists());
        let mode = std::fs::read_to_string(
            fx.dir
                .join("state/containers")
                .join(&id)
                .join("rootfs-mode"),
        )
        .unwrap();
        assert_eq!(mode, if copy { "copy" } else { "overlay" });
        std::fs::remove_file(rw.join("b.txt")).unwrap();
        rt.remove(&id).await.unwrap();
        assert!(!fx.dir.join("state/containers").join(&id).exists());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_limit_oom_kills() {
    require_root!();
    let fx = Fixture::new("oom");
    let mut spec = fx.spec(
        "oom",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
    );
    spec.resources.memory_limit_bytes = Some(32 << 20);
    let id = fx.rt.start(&spec).await.unwrap();
    let limit = std::fs::read_to_string(
        fx.cgroup_dir("memory", &spec, &id)
            .join("memory.limit_in_bytes"),
    )
    .or_else(|_| std::fs::read_to_string(fx.cgroup_dir("memory", &spec, &id).join("memory.max")))
    .unwrap();
    assert_eq!(limit.trim(), (32u64 << 20).to_string());
    let exit = wait_exit(&fx.rt, &id, Duration::from_secs(20)).await;
    assert_eq!(exit.exit_code, 137, "{exit:?}");
    assert_eq!(exit.signal, Some(9));
    assert!(exit.oom_killed, "{exit:?}");
    fx.rt.remove(&id).await.unwrap();
    assert!(!fx.cgroup_dir("memory", &spec, &id).exists());

    // Under the limit: no OOM.
    let mut spec = fx.spec(
        "no-oom",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=4M", "count=4"],
    );
    spec.resources.memory_limit_bytes = Some(32 << 20);
    let (exit, _) = run_to_end(&fx, &spec).await;
    assert_eq!((exit.exit_code, exit.oom_killed), (0, false));
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_quota_and_stats() {
    require_root!();
    let fx = Fixture::new("cpu");
    let mut spec = fx.spec("burner", &["sh", "-c", "yes > /dev/null"]);
    spec.resources.cpu_limit_millis = Some(200);
    spec.resources.cpu_request_millis = Some(100);
    let id = fx.rt.start(&spec).await.unwrap();
    let cpu = fx.cgroup_dir("cpu", &spec, &id);
    if cpu.join("cpu.cfs_quota_us").exists() {
        assert_eq!(
            std::fs::read_to_string(cpu.join("cpu.cfs_quota_us"))
                .unwrap()
                .trim(),
            "20000"
        );
        assert_eq!(
            std::fs::read_to_string(cpu.join("cpu.cfs_period_us"))
                .unwrap()
                .trim(),
            "100000"
        );
        assert_eq!(
            std::fs::read_to_string(cpu.join("cpu.shares"))
                .unwrap()
                .trim(),
            "102"
        );
    } else {
        assert_eq!(
            std::fs::read_to_string(cpu.join("cpu.max")).unwrap().trim(),
            "20000 100000"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a = fx.rt.stats(&id).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b = fx.rt.stats(&id).await.unwrap();
    let wall = b
        .timestamp
        .duration_since(a.timestamp)
        .unwrap()
        .as_secs_f64();
    let cores = (b.cpu_usage_ns - a.cpu_usage_ns) as f64 / 1e9 / wall;
    eprintln!(
        "burner under a 200m limit: {cores:.3} cores over {wall:.2} s; working set {} bytes",
        b.memory_working_set_bytes
    );
    assert!((0.12..0.26).contains(&cores), "{cores} cores");
    assert!(b.memory_working_set_bytes > 0 && b.memory_working_set_bytes < 64 << 20);
    // sh as PID 1 has no TERM handler: the kernel ignores the signal, SIGKILL follows.
    fx.rt.stop(&id, Duration::from_millis(300)).await.unwrap();
    let exit = wait_exit(&fx.rt, &id, Duration::from_secs(5)).await;
    assert_eq!((exit.exit_code, exit.signal), (137, Some(9)));
    assert!(
        fx.rt.stats(&id).await.is_ok(),
        "the cgroup stays until remove"
    );
    fx.rt.remove(&id).await.unwrap();
    assert!(matches!(
        fx.rt.stats(&id).await,
        Err(RuntimeError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_term_then_kill_after_grace() {
    require_root!();
    let fx = Fixture::new("stop");
    let spec = fx.spec(
        "trap",
        &[
            "sh",
            "-c",
            "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    let id = fx.rt.start(&spec).await.unwrap();
    let pid = fx.rt.list().await.unwrap()[0].pid.unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    // Removing a running container is refused.
    assert!(fx.rt.remove(&id).await.is_err());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    fx.rt.stop(&id, Duration::from_secs(10)).await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let ContainerState::Exited(exit) = state_of(&fx.rt, &id).await else {
        panic!("not exited")
    };
    assert_eq!((exit.exit_code, exit.signal), (7, None));
    let log = logfile::read_logs(&spec.log_path, &LogOptions::default()).unwrap();
    assert_eq!(String::from_utf8(log).unwrap(), "ready\ngot TERM\n");
    // Stopping again does nothing.
    fx.rt.stop(&id, Duration::from_secs(1)).await.unwrap();
    fx.rt.remove(&id).await.unwrap();
    fx.rt.remove(&id).await.unwrap();

    let spec = fx.spec("ignore", &["sleep", "1000"]);
    let id = fx.rt.start(&spec).await.unwrap();
    let t = Instant::now();
    fx.rt.stop(&id, Duration::from_secs(1)).await.unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let ContainerState::Exited(exit) = state_of(&fx.rt, &id).await else {
        panic!("not exited")
    };
    assert_eq!(
        (exit.exit_code, exit.signal, exit.oom_killed),
        (137, Some(9), false)
    );
    fx.rt.remove(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_runs_inside_the_container() {
    require_root!();
    let fx = Fixture::new("exec");
    let mut spec = fx.spec("exec", &["sleep", "1000"]);
    spec.env = vec![("GREETING".into(), "hi".into())];
    let id = fx.rt.start(&spec).await.unwrap();
    let cmd = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let out = fx
        .rt
        .exec(
            &id,
            &cmd(&[
                "sh",
                "-c",
                "echo $GREETING; echo err >&2; hostname; cat /proc/1/cmdline; echo; ls /; exit 3",
            ]),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(3), "{out:?}");
    let lines: Vec<&str> = out.output.lines().collect();
    assert_eq!(
        lines[..4],
        ["hi", "err", "pod-exec", "sleep\u{0}1000\u{0}"],
        "{out:?}"
    );
    assert!(
        !lines.contains(&"work") && lines.contains(&"bin"),
        "{out:?}"
    );
    // The probe's own processes are in the container's PID namespace.
    let out = fx
        .rt
        .exec(&id, &cmd(&["ps", "-o", "pid,args"]), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(0));
    assert!(
        out.output
            .lines()
            .any(|l| l.trim_start().starts_with("1 sleep 1000")),
        "{out:?}"
    );
    assert_eq!(out.output.lines().count(), 3, "{out:?}");
    // At the timeout, the command is killed.
    let t = Instant::now();
    let out = fx
        .rt
        .exec(&id, &cmd(&["sleep", "30"]), Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(out.exit_code, None);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // A missing command, a long output.
    let out = fx
        .rt
        .exec(&id, &cmd(&["no-such-probe"]), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(127));
    assert!(out.output.contains("not found"), "{out:?}");
    let out = fx
        .rt
        .exec(
            &id,
            &cmd(&["sh", "-c", "yes | head -c 50000"]),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!((out.exit_code, out.output.len()), (Some(0), 10 * 1024));
    fx.rt.stop(&id, Duration::ZERO).await.unwrap();
    assert!(fx
        .rt
        .exec(&id, &cmd(&["true"]), Duration::from_secs(1))
        .await
        .is_err());
    fx.rt.remove(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_runtime_finds_running_containers() {
    require_root!();
    let fx = Fixture::new("restart");
    let spec = fx.spec("long", &["sleep", "1000"]);
    let id = fx.rt.start(&spec).await.unwrap();
    let first = fx.rt.list().await.unwrap();
    let rt2 = fx.reopen();
    let listed = rt2.list().await.unwrap();
    assert_eq!(listed, first);
    assert_eq!(listed.len(), 1);
    let c = &listed[0];
    assert_eq!(
        (c.id.as_str(), c.name.as_str(), c.pod.uid.as_str()),
        (id.as_str(), "long", "uid-long")
    );
    assert_eq!(c.state, ContainerState::Running);
    assert!(c.id.len() >= 16 && c.id.bytes().all(|b| b.is_ascii_hexdigit()));
    let pid = c.pid.unwrap();
    assert!(c.started_at.is_some());
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap(),
        "sleep\u{0}1000\u{0}"
    );
    // The shim is in its own session, not the test's.
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fx.dir.join("state/containers").join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    let shim = state["shim_pid"].as_u64().unwrap() as i32;
    assert_eq!(
        nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(shim)))
            .unwrap()
            .as_raw(),
        shim
    );
    // Another node's runtime on the same directory does not list it.
    let other = ProcessRuntime::new(
        fx.dir.join("state"),
        ImageStore::open(&fx.images).unwrap(),
        "another-node",
        ShimCommand::plimsoll(env!("CARGO_BIN_EXE_plimsoll")),
    )
    .unwrap();
    assert!(other.list().await.unwrap().is_empty());
    // The new runtime stops, measures and removes it.
    assert!(rt2.stats(&id).await.unwrap().cpu_usage_ns > 0);
    assert_eq!(rt2.address(&id).await.unwrap().to_string(), "127.0.0.1");
    rt2.stop(&id, Duration::from_millis(200)).await.unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap()
                != "sleep\u{0}1000\u{0}"
    );
    assert!(matches!(
        state_of(&rt2, &id).await,
        ContainerState::Exited(Exit { exit_code: 137, .. })
    ));
    rt2.remove(&id).await.unwrap();
    assert!(rt2.list().await.unwrap().is_empty());
    assert!(!fx.cgroup_dir("memory", &spec, &id).exists());
    assert!(
        !fx.cgroup_dir("memory", &spec, &id)
            .parent()
            .unwrap()
            .exists(),
        "the pod's cgroup goes with its last container"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn start_errors_leave_nothing() {
    require_root!();
    let fx = Fixture::new("errors");
    let mut spec = fx.spec("missing", &["true"]);
    spec.image = "nginx:1.27".into();
    assert!(matches!(
        fx.rt.start(&spec).await,
        Err(RuntimeError::ImageNotPresent(_))
    ));
    let spec = fx.spec("notfound", &["no-such-command", "x"]);
    let err = fx.rt.start(&spec).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::Start(m) if m.contains("no-such-command") && m.contains("not found")),
        "{err}"
    );
    let mut spec = fx.spec("nocmd", &[]);
    spec.image = "busybox:latest".into();
    assert!(matches!(
        fx.rt.start(&spec).await,
        Err(RuntimeError::Start(_))
    ));
    let mut spec = fx.spec("badmount", &["true"]);
    spec.mounts = vec![Mount {
        host_path: fx.dir.join("nope"),
        container_path: "/x".into(),
        read_only: false,
    }];
    assert!(matches!(
        fx.rt.start(&spec).await,
        Err(RuntimeError::Start(_))
    ));
    assert!(fx.rt.list().await.unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(fx.dir.join("state/containers"))
            .unwrap()
            .count(),
        0
    );
    assert!(fx.rt.has_image("busybox").await.unwrap());
    assert!(!fx.rt.has_image("nginx").await.unwrap());
    assert!(fx
        .rt
        .version()
        .await
        .unwrap()
        .starts_with("plimsoll-process://"));
    assert!(matches!(
        fx.rt.stop("0123abcd", Duration::ZERO).await,
        Err(RuntimeError::NotFound(_))
    ));
    assert!(matches!(
        fx.rt.stats("../../etc").await,
        Err(RuntimeError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_logs_until_the_container_ends() {
    use futures::StreamExt;
    require_root!();
    let fx = Fixture::new("follow");
    let spec = fx.spec(
        "ticker",
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do echo tick $i; sleep 0.2; done",
        ],
    );
    let id = fx.rt.start(&spec).await.unwrap();
    let exit_file = fx.dir.join("state/containers").join(&id).join("exit.json");
    let done = move || exit_file.exists();
    let opts = LogOptions {
        timestamps: true,
        ..Default::default()
    };
    let chunks: Vec<_> = tokio::time::timeout(
        Duration::from_secs(15),
        logfile::follow_logs(spec.log_path.clone(), opts, done).collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    assert!(
        chunks.len() >= 2,
        "the log arrived over time: {} chunks",
        chunks.len()
    );
    let text: Vec<u8> = chunks
        .into_iter()
        .map(|c| c.unwrap())
        .collect::<Vec<_>>()
        .concat();
    let text = String::from_utf8(text).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    for (i, l) in lines.iter().enumerate() {
        let (ts, rest) = l.split_once(' ').unwrap();
        assert!(logfile::parse_timestamp(ts).is_some(), "{l}");
        assert_eq!(rest, format!("tick {}", i + 1));
    }
    let tail = logfile::read_logs(
        &spec.log_path,
        &LogOptions {
            tail_lines: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(tail, b"tick 4\ntick 5\n");
    fx.rt.remove(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_all_cleans_everything() {
    require_root!();
    let fx = Fixture::new("destroy");
    let mut pids = Vec::new();
    let mut shims = Vec::new();
    for name in ["d1", "d2"] {
        let mut spec = fx.spec(name, &["sh", "-c", "sleep 1000 & sleep 1000"]);
        spec.resources.memory_limit_bytes = Some(64 << 20);
        let id = fx.rt.start(&spec).await.unwrap();
        let state: serde_json::Value = serde_json::from_slice(
            &std::fs::read(fx.dir.join("state/containers").join(&id).join("state.json")).unwrap(),
        )
        .unwrap();
        pids.push(state["container_pid"].as_u64().unwrap());
        shims.push(state["shim_pid"].as_u64().unwrap());
    }
    let procs_file = Path::new("/sys/fs/cgroup/memory/plimsoll")
        .join(&fx.node)
        .join("poduid-d1");
    if Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists() {
        assert!(procs_file.exists());
    }
    fx.rt.destroy_all().await.unwrap();
    for pid in pids.iter().chain(&shims) {
        let alive =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
        assert!(!alive, "pid {pid} still alive");
    }
    assert_eq!(
        std::fs::read_dir(fx.dir.join("state/containers"))
            .unwrap()
            .count(),
        0
    );
    assert!(!procs_file.exists());
    assert!(fx.rt.list().await.unwrap().is_empty());
}

/// The "agent" of [`containers_survive_the_agent_being_killed`]: a separate process
/// (this test binary run again) that starts a container, prints its id, and waits to be
/// killed. Does nothing unless run by that test.
#[test]
#[ignore = "run by containers_survive_the_agent_being_killed as its agent process"]
fn agent_process_for_the_kill_test() {
    let (Ok(dir), Ok(node)) = (
        std::env::var("PLIMSOLL_TEST_AGENT_DIR"),
        std::env::var("PLIMSOLL_TEST_AGENT_NODE"),
    ) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let rt = ProcessRuntime::new(
        dir.join("state"),
        ImageStore::open(dir.join("images")).unwrap(),
        &node,
        ShimCommand::plimsoll(env!("CARGO_BIN_EXE_plimsoll")),
    )
    .unwrap();
    let tokio_rt = tokio::runtime::Runtime::new().unwrap();
    let mut spec = ContainerSpec {
        pod: PodRef {
            namespace: "default".into(),
            name: "survivor".into(),
            uid: "uid-survivor".into(),
        },
        name: "survivor".into(),
        kind: ContainerKind::Regular,
        attempt: 0,
        image: "busybox".into(),
        command: Some(vec![
            "sh".into(),
            "-c".into(),
            "while true; do echo alive; sleep 0.2; done".into(),
        ]),
        args: None,
        env: vec![],
        working_dir: None,
        mounts: vec![],
        hostname: "survivor".into(),
        resources: Resources::default(),
        log_path: dir.join("logs/survivor.log"),
        log_max_bytes: 10 << 20,
        log_max_files: 5,
        network: None,
    };
    spec.resources.memory_limit_bytes = Some(64 << 20);
    let id = tokio_rt.block_on(rt.start(&spec)).unwrap();
    println!("CONTAINER={id}");
    std::thread::sleep(Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_survive_the_agent_being_killed() {
    use std::io::BufRead;
    require_root!();
    let fx = Fixture::new("kill9");
    let mut agent = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "agent_process_for_the_kill_test",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PLIMSOLL_TEST_AGENT_DIR", &fx.dir)
        .env("PLIMSOLL_TEST_AGENT_NODE", &fx.node)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut id = None;
    for line in std::io::BufReader::new(agent.stdout.take().unwrap()).lines() {
        if let Some((_, v)) = line.unwrap().split_once("CONTAINER=") {
            id = Some(v.to_string());
            break;
        }
    }
    // kill -9 the agent: its shim was its child.
    agent.kill().unwrap();
    agent.wait().unwrap();
    let id = id.expect("the agent process started a container");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let listed = fx.rt.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id.as_str(), &listed[0].state),
        (id.as_str(), &ContainerState::Running)
    );
    // Its output is still being logged (the shim lives on).
    let lines = |_: ()| {
        String::from_utf8(
            logfile::read_logs(&fx.dir.join("logs/survivor.log"), &LogOptions::default()).unwrap(),
        )
        .unwrap()
        .lines()
        .count()
    };
    let before = lines(());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(lines(()) > before);
    let out = fx
        .rt
        .exec(&id, &["hostname".to_string()], Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        (out.exit_code, out.output.as_str()),
        (Some(0), "survivor\n")
    );
    fx.rt.stop(&id, Duration::from_millis(500)).await.unwrap();
    assert!(matches!(
        state_of(&fx.rt, &id).await,
        ContainerState::Exited(Exit { exit_code: 137, .. })
    ));
    fx.rt.remove(&id).await.unwrap();
}
