//! The Docker runtime against the real Docker Engine of this machine.
//!
//! Each test imports its own image (a busybox root filesystem: the host's static busybox
//! and its applet links, as `docker import` makes from a tar) under a random tag, and uses
//! its own node name, so tests run in parallel without seeing each other's containers.
//! The fixture's `Drop` removes every container labelled with that node (pods' and their
//! sandboxes), the node's pod network, the image and the temporary directory, also when a
//! test fails; and the pod sandbox image when the test used it and nothing else does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bollard::query_parameters::{
    CreateImageOptionsBuilder, InspectNetworkOptions, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptions,
    RemoveImageOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;
use plimsoll::agent::docker::{
    pod_network_name, DockerRuntime, LABEL_NODE, LABEL_SANDBOX, LABEL_UID, PAUSE_IMAGE,
};
use plimsoll::agent::network::Ipv4Cidr;
use plimsoll::agent::runtime::{
    ContainerKind, ContainerSpec, ContainerState, Mount, PodRef, Resources, Runtime, RuntimeError,
};

const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &[
    "sh", "echo", "sleep", "cat", "yes", "head", "tail", "tr", "hostname", "ps", "pwd", "env",
    "true", "false", "seq", "httpd", "wget",
];

static NEXT: AtomicU32 = AtomicU32::new(0);

/// One test's image, node name and temporary directory.
struct Fixture {
    image: String,
    node: String,
    dir: PathBuf,
    /// The test made pod sandboxes (so the sandbox image is removed at the end, unless
    /// something else uses it).
    pod_network: AtomicBool,
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// The busybox root filesystem as a tar archive.
fn rootfs_tar() -> Vec<u8> {
    let busybox = std::fs::read(BUSYBOX)
        .unwrap_or_else(|e| panic!("{BUSYBOX}: {e} (install Debian's busybox-static)"));
    let mut tar = tar::Builder::new(Vec::new());
    for dir in ["bin", "etc", "tmp", "proc", "dev", "sys", "data"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(if dir == "tmp" { 0o1777 } else { 0o755 });
        h.set_size(0);
        tar.append_data(&mut h, format!("{dir}/"), std::io::empty())
            .unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(busybox.len() as u64);
    tar.append_data(&mut h, "bin/busybox", busybox.as_slice())
        .unwrap();
    for applet in APPLETS {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        tar.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    let passwd = b"root:x:0:0:root:/root:/bin/sh\n";
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(passwd.len() as u64);
    tar.append_data(&mut h, "etc/passwd", &passwd[..]).unwrap();
    tar.into_inner().unwrap()
}

async fn docker() -> Docker {
    Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap()
}

impl Fixture {
    async fn new() -> Fixture {
        let tag = unique("t");
        let repo = "plimsoll-test-busybox";
        let options = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(repo)
            .tag(&tag)
            .changes(vec!["CMD [\"sh\"]".to_string()])
            .build();
        let docker = docker().await;
        let mut progress = docker.create_image(
            Some(options),
            Some(bollard::body_full(rootfs_tar().into())),
            None,
        );
        while let Some(step) = progress.next().await {
            step.expect("docker import");
        }
        let dir = std::env::temp_dir().join(unique("plimsoll-docker-test"));
        std::fs::create_dir_all(&dir).unwrap();
        Fixture {
            image: format!("{repo}:{tag}"),
            node: unique("h3node"),
            dir,
            pod_network: AtomicBool::new(false),
        }
    }

    fn spec(&self, name: &str, command: &[&str], args: Option<&[&str]>) -> ContainerSpec {
        ContainerSpec {
            pod: PodRef {
                namespace: "default".into(),
                name: format!("pod-{name}"),
                uid: format!(
                    "{:08x}-0000-4000-8000-000000000000",
                    NEXT.fetch_add(1, Ordering::SeqCst)
                ),
            },
            name: name.into(),
            kind: ContainerKind::Regular,
            attempt: 0,
            image: self.image.clone(),
            command: Some(command.iter().map(|s| s.to_string()).collect()),
            args: args.map(|a| a.iter().map(|s| s.to_string()).collect()),
            env: vec![],
            working_dir: None,
            mounts: vec![],
            hostname: format!("pod-{name}"),
            resources: Resources::default(),
            log_path: self.dir.join("logs").join(format!("{name}.log")),
            log_max_bytes: 10 * 1024 * 1024,
            log_max_files: 5,
            network: None,
        }
    }

    async fn runtime(&self) -> DockerRuntime {
        DockerRuntime::connect(&self.node, None)
            .await
            .expect("connect to Docker")
    }

    /// A runtime with the pod network on `cidr`.
    async fn runtime_with_pod_network(&self, cidr: Ipv4Cidr) -> DockerRuntime {
        self.pod_network.store(true, Ordering::SeqCst);
        let rt = self.runtime().await;
        rt.enable_pod_network(cidr)
            .await
            .unwrap_or_else(|e| panic!("pod network on {cidr}: {e}"));
        rt
    }
}

/// A pod network CIDR for this test process: `10.<second>.<pid % 250>.0/24` (tests of one
/// process that run at the same time pass different `second`s; Docker refuses networks
/// that overlap).
fn test_cidr(second: u8) -> Ipv4Cidr {
    Ipv4Cidr::parse(&format!("10.{second}.{}.0/24", std::process::id() % 250)).unwrap()
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let node = self.node.clone();
        let image = self.image.clone();
        let pause_image = self.pod_network.load(Ordering::SeqCst);
        // Drop may run inside a test's runtime: clean up from a thread with its own.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let docker = docker().await;
                let filters =
                    HashMap::from([("label".to_string(), vec![format!("{LABEL_NODE}={node}")])]);
                let options = ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build();
                for c in docker
                    .list_containers(Some(options))
                    .await
                    .unwrap_or_default()
                {
                    if let Some(id) = c.id {
                        let rm = RemoveContainerOptionsBuilder::new().force(true).build();
                        if let Err(e) = docker.remove_container(&id, Some(rm)).await {
                            eprintln!("cleanup: removing container {id}: {e}");
                        }
                    }
                }
                let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
                for n in docker
                    .list_networks(Some(options))
                    .await
                    .unwrap_or_default()
                {
                    let name = n.name.unwrap_or_default();
                    if let Err(e) = docker.remove_network(&name).await {
                        eprintln!("cleanup: removing network {name}: {e}");
                    }
                }
                let rmi = RemoveImageOptionsBuilder::new().force(true).build();
                if let Err(e) = docker.remove_image(&image, Some(rmi), None).await {
                    eprintln!("cleanup: removing image {image}: {e}");
                }
                if pause_image {
                    // Not forced: another test's sandbox may use it (the runtime imports
                    // it again when it is missing).
                    let _ = docker
                        .remove_image(PAUSE_IMAGE, None::<RemoveImageOptions>, None)
                        .await;
                }
            });
        });
        let _ = cleanup.join();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `list()` until container `id` has ended.
async fn wait_exit(
    rt: &DockerRuntime,
    id: &str,
    timeout: Duration,
) -> plimsoll::agent::runtime::Exit {
    let deadline = Instant::now() + timeout;
    loop {
        let list = rt.list().await.unwrap();
        let info = list.iter().find(|c| c.id == id).expect("container listed");
        if let ContainerState::Exited(exit) = &info.state {
            return exit.clone();
        }
        assert!(
            Instant::now() < deadline,
            "container {id} still {:?}",
            info.state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One parsed CRI log line.
#[derive(Debug)]
struct CriLine {
    ts: String,
    stream: String,
    tag: String,
    text: String,
}

fn read_cri(path: &Path) -> Vec<CriLine> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(4, ' ');
            let l = CriLine {
                ts: parts.next().unwrap().to_string(),
                stream: parts.next().unwrap_or_default().to_string(),
                tag: parts.next().unwrap_or_default().to_string(),
                text: parts.next().unwrap_or_default().to_string(),
            };
            assert!(
                l.ts.parse::<jiff::Timestamp>().is_ok(),
                "bad timestamp in {line:?}"
            );
            assert!(
                l.stream == "stdout" || l.stream == "stderr",
                "bad stream in {line:?}"
            );
            assert!(l.tag == "F" || l.tag == "P", "bad tag in {line:?}");
            l
        })
        .collect()
}

/// Runs a container to its end and answers its log's lines (stream, text).
async fn run_to_end(
    rt: &DockerRuntime,
    spec: &ContainerSpec,
) -> (plimsoll::agent::runtime::Exit, Vec<(String, String)>) {
    let id = rt.start(spec).await.expect("start");
    let exit = wait_exit(rt, &id, Duration::from_secs(30)).await;
    assert!(
        rt.wait_logs(&id, Duration::from_secs(10)).await,
        "log copier of {id} did not end"
    );
    let lines = read_cri(&spec.log_path)
        .into_iter()
        .map(|l| (l.stream, l.text))
        .collect();
    (exit, lines)
}

fn stdout(lines: &[(String, String)]) -> Vec<&str> {
    lines
        .iter()
        .filter(|(s, _)| s == "stdout")
        .map(|(_, t)| t.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_goes_to_the_cri_log_with_kubernetes_command_semantics() {
    let fx = Fixture::new().await;
    let rt = fx.runtime().await;
    assert!(rt.version().await.unwrap().starts_with("docker://"));

    // command + args, env, working directory, hostname, both streams.
    let mut spec = fx.spec(
        "main",
        &["sh", "-c"],
        Some(&["echo out; echo err >&2; echo \"FOO=$FOO\"; pwd; hostname; exit 3"]),
    );
    spec.env = vec![("FOO".into(), "bar baz".into())];
    spec.working_dir = Some("/tmp".into());
    spec.hostname = "my-pod".into();
    let (exit, lines) = run_to_end(&rt, &spec).await;
    assert_eq!(exit.exit_code, 3);
    assert!(!exit.oom_killed);
    assert_eq!(exit.signal, None);
    assert_eq!(stdout(&lines), ["out", "FOO=bar baz", "/tmp", "my-pod"]);
    assert!(
        lines.contains(&("stderr".into(), "err".into())),
        "{lines:?}"
    );

    // A command without args runs with no arguments (not the image's CMD `sh`).
    let spec = fx.spec("cmd-only", &["echo", "only"], None);
    let (exit, lines) = run_to_end(&rt, &spec).await;
    assert_eq!(exit.exit_code, 0);
    assert_eq!(stdout(&lines), ["only"]);

    // Args without a command replace the image's CMD.
    let mut spec = fx.spec("args-only", &[], Some(&["echo", "from", "args"]));
    spec.command = None;
    let (_, lines) = run_to_end(&rt, &spec).await;
    assert_eq!(stdout(&lines), ["from args"]);

    // Neither: the image's CMD (`sh`, which ends at once on an empty stdin).
    let mut spec = fx.spec("image-cmd", &[], None);
    spec.command = None;
    let id = rt.start(&spec).await.unwrap();
    let exit = wait_exit(&rt, &id, Duration::from_secs(30)).await;
    assert_eq!(exit.exit_code, 0);

    // A line without a newline at the end, and an empty line.
    let spec = fx.spec("partial", &["sh", "-c", "echo; printf 'no newline'"], None);
    let (_, lines) = run_to_end(&rt, &spec).await;
    assert_eq!(stdout(&lines), ["", "no newline"]);

    // Both streams interleaved fast (Docker stamps them apart and may append them out of
    // time order): each line once, each stream in order.
    let spec = fx.spec(
        "interleaved",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 300 ]; do echo o$i; echo e$i >&2; i=$((i+1)); done",
        ],
        None,
    );
    let (_, lines) = run_to_end(&rt, &spec).await;
    let want = |p: &str| (0..300).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    assert_eq!(stdout(&lines), want("o"));
    let stderr: Vec<&str> = lines
        .iter()
        .filter(|(s, _)| s == "stderr")
        .map(|(_, t)| t.as_str())
        .collect();
    assert_eq!(stderr, want("e"));

    // The labels bring everything back.
    let list = rt.list().await.unwrap();
    assert_eq!(list.len(), 6);
    let main = list.iter().find(|c| c.name == "main").unwrap();
    assert_eq!(main.pod.name, "pod-main");
    assert_eq!(main.kind, ContainerKind::Regular);
    assert_eq!(main.attempt, 0);
    assert_eq!(main.image, fx.image);
    assert!(main.image_id.starts_with("sha256:"), "{}", main.image_id);
    assert!(main.started_at.is_some());
    assert_eq!(main.log_path, fx.dir.join("logs/main.log"));

    // Removing forgets; removing again is fine.
    rt.remove(&main.id).await.unwrap();
    rt.remove(&main.id).await.unwrap();
    assert_eq!(rt.list().await.unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_never_pulled() {
    let fx = Fixture::new().await;
    let rt = fx.runtime().await;
    assert!(rt.has_image(&fx.image).await.unwrap());
    let absent = format!("{}-absent", fx.image);
    assert!(!rt.has_image(&absent).await.unwrap());
    let images = rt.images().await.unwrap();
    let (_, size) = images
        .iter()
        .find(|(r, _)| *r == fx.image)
        .expect("our image is listed");
    assert!(*size > 1_000_000, "busybox is about 2 MB, got {size}");
    let mut spec = fx.spec("absent", &["true"], None);
    spec.image = absent.clone();
    match rt.start(&spec).await {
        Err(RuntimeError::ImageNotPresent(image)) => assert_eq!(image, absent),
        other => panic!("expected ImageNotPresent, got {other:?}"),
    }
    assert!(rt.list().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_and_read_only() {
    let fx = Fixture::new().await;
    let rt = fx.runtime().await;
    let ro = fx.dir.join("ro");
    let rw = fx.dir.join("rw");
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::create_dir_all(&rw).unwrap();
    std::fs::write(ro.join("f"), "from the host\n").unwrap();
    let mut spec = fx.spec(
        "mounts",
        &["sh", "-c"],
        Some(&[
            "cat /config/f; (echo x > /config/g) 2>/dev/null && echo wrote || echo refused; echo hi > /work/out",
        ]),
    );
    spec.mounts = vec![
        Mount {
            host_path: ro.clone(),
            container_path: "/config".into(),
            read_only: true,
        },
        Mount {
            host_path: rw.clone(),
            container_path: "/work".into(),
            read_only: false,
        },
    ];
    let (exit, lines) = run_to_end(&rt, &spec).await;
    assert_eq!(exit.exit_code, 0, "{lines:?}");
    assert_eq!(stdout(&lines), ["from the host", "refused"]);
    assert!(!ro.join("g").exists());
    assert_eq!(std::fs::read_to_string(rw.join("out")).unwrap(), "hi\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_oom_kills() {
    let fx = Fixture::new().await;
    let rt = fx.runtime().await;
    // The command substitution keeps 100 MB in the shell's memory.
    let mut spec = fx.spec(
        "hog",
        &[
            "sh",
            "-c",
            "x=$(head -c 100m /dev/zero | tr '\\0' a); echo ${#x}",
        ],
        None,
    );
    spec.resources.memory_limit_bytes = Some(32 * 1024 * 1024);
    let id = rt.start(&spec).await.unwrap();
    let exit = wait_exit(&rt, &id, Duration::from_secs(60)).await;
    assert!(exit.oom_killed, "{exit:?}");
    assert_eq!(exit.exit_code, 137);
    assert_eq!(exit.signal, Some(9));

    // Under the limit the same program with 8 MB is fine.
    let mut spec = fx.spec(
        "small",
        &[
            "sh",
            "-c",
            "x=$(head -c 8m /dev/zero | tr '\\0' a); echo ${#x}",
        ],
        None,
    );
    spec.resources.memory_limit_bytes = Some(32 * 1024 * 1024);
    let (exit, lines) = run_to_end(&rt, &spec).await;
    assert_eq!(exit.exit_code, 0);
    assert!(!exit.oom_killed);
    assert_eq!(stdout(&lines), ["8388608"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_limit_and_stats() {
    let fx = Fixture::new().await;
    let rt = fx.runtime().await;
    let mut spec = fx.spec("burner", &["sh", "-c", "while :; do :; done"], None);
    spec.resources.cpu_limit_millis = Some(200);
    spec.resources.cpu_request_millis = Some(100);
    let id = rt.start(&spec).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a = rt.stats(&id).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b = rt.stats(&id).await.unwrap();
    let wall = b
        .timestamp
        .duration_since(a.timestamp)
        .unwrap()
        .as_secs_f64();
    let cores = (b.cpu_usage_ns - a.cpu_usage_ns) as f64 / 1e9 / wall;
    assert!(
        (0.12..=0.28).contains(&cores),
        "a 200m limit used {cores:.3} cores"
    );
    assert!(
        b.memory_working_set_bytes > 0 && b.memory_working_set_bytes < 64 * 1024 * 1024,
        "{b:?}"
    );

    // Docker has the kubelet's cgroup numbers.
    let inspect = rt
        .client()
        .inspect_container(
            &id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap();
    let hc = inspect.host_config.unwrap();
    assert_eq!(
        (hc.cpu_period, hc.cpu_quota, hc.cpu_shares),
        (Some(100_000), Some(20_000), Some(102))
    );
    rt.stop(&id, Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_honours_the_grace_period() {
    let fx = Fixture::new().await;
    let rt = fx.runtime().await;
    // TERM handled: the container exits with its own code, well before the grace ends.
    let spec = fx.spec(
        "polite",
        &[
            "sh",
            "-c",
            "trap 'echo bye; exit 42' TERM; echo ready; while :; do sleep 0.1; done",
        ],
        None,
    );
    let polite = rt.start(&spec).await.unwrap();
    let stubborn_spec = fx.spec(
        "stubborn",
        &[
            "sh",
            "-c",
            "trap '' TERM; echo ready; while :; do sleep 0.1; done",
        ],
        None,
    );
    let stubborn = rt.start(&stubborn_spec).await.unwrap();
    // Let the traps be set.
    for path in [&spec.log_path, &stubborn_spec.log_path] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(path)
            .unwrap_or_default()
            .contains("ready")
        {
            assert!(
                Instant::now() < deadline,
                "{} never said ready",
                path.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let t = Instant::now();
    rt.stop(&polite, Duration::from_secs(20)).await.unwrap();
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "a TERM-handling container took {took:?}"
    );
    let exit = wait_exit(&rt, &polite, Duration::from_secs(1)).await;
    assert_eq!((exit.exit_code, exit.signal), (42, None));
    assert!(rt.wait_logs(&polite, Duration::from_secs(10)).await);
    let lines: Vec<String> = read_cri(&spec.log_path)
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert_eq!(lines, ["ready", "bye"]);

    // TERM ignored: killed when the grace period ends.
    let t = Instant::now();
    rt.stop(&stubborn, Duration::from_millis(1500))
        .await
        .unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "took {took:?}"
    );
    let exit = wait_exit(&rt, &stubborn, Duration::from_secs(1)).await;
    assert_eq!(
        (exit.exit_code, exit.signal, exit.oom_killed),
        (137, Some(9), false)
    );
    // Stopping an ended container does nothing.
    rt.stop(&stubborn, Duration::from_secs(5)).await.unwrap();
    // An ended container can be removed; a running one cannot.
    rt.remove(&stubborn).await.unwrap();
    let sleeper = rt
        .start(&fx.spec("sleeper", &["sleep", "1000"], None))
        .await
        .unwrap();
    assert!(rt.remove(&sleeper).await.is_err());
    assert!(matches!(
        rt.stop("no-such-container-h3", Duration::ZERO).await,
        Err(RuntimeError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_probes() {
    let fx = Fixture::new().await;
    let rt = fx.runtime().await;
    let id = rt
        .start(&fx.spec("app", &["sleep", "1000"], None))
        .await
        .unwrap();
    let cmd = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];

    let out = rt
        .exec(
            &id,
            &cmd("echo hi; echo oops >&2; exit 3"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(3));
    assert!(
        out.output.contains("hi\n") && out.output.contains("oops\n"),
        "{:?}",
        out.output
    );

    let out = rt
        .exec(&id, &cmd("true"), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(0));

    let t = Instant::now();
    let out = rt
        .exec(&id, &cmd("sleep 30"), Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(out.exit_code, None);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    let out = rt
        .exec(&id, &cmd("yes | head -c 50000"), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(0));
    assert_eq!(out.output.len(), 10 * 1024);

    // The container's address on the default bridge.
    let address = rt.address(&id).await.unwrap();
    assert!(
        !address.is_loopback() && !address.is_unspecified(),
        "{address}"
    );
    rt.stop(&id, Duration::from_secs(1)).await.unwrap();
    assert!(rt
        .exec(&id, &cmd("true"), Duration::from_secs(5))
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_runtime_finds_its_containers_and_resumes_their_logs() {
    let fx = Fixture::new().await;
    let mut spec = fx.spec(
        "counter",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo line $i; sleep 0.01; done; sleep 1000",
        ],
        None,
    );
    spec.kind = ContainerKind::Init;
    spec.attempt = 3;
    let first = fx.runtime().await;
    let id = first.start(&spec).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The agent goes away (its copier with it) while the container keeps writing.
    drop(first);
    let copied_before = read_cri(&spec.log_path).len();
    assert!(copied_before > 0, "nothing copied before the restart");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let second = fx.runtime().await;
    let list = second.list().await.unwrap();
    assert_eq!(list.len(), 1);
    let info = &list[0];
    assert_eq!(info.id, id);
    assert_eq!(
        (info.name.as_str(), info.kind, info.attempt),
        ("counter", ContainerKind::Init, 3)
    );
    assert_eq!(info.pod, spec.pod);
    assert_eq!(info.state, ContainerState::Running);
    assert!(info.pid.is_some());

    // Let the counter finish, stop it, and read everything.
    let deadline = Instant::now() + Duration::from_secs(30);
    while read_cri(&spec.log_path).len() < 400 {
        assert!(Instant::now() < deadline, "the resumed copier stalled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.stop(&id, Duration::from_secs(1)).await.unwrap();
    assert!(second.wait_logs(&id, Duration::from_secs(10)).await);
    let texts: Vec<String> = read_cri(&spec.log_path)
        .into_iter()
        .map(|l| l.text)
        .collect();
    let expected: Vec<String> = (1..=400).map(|i| format!("line {i}")).collect();
    assert!(
        copied_before < 400,
        "the counter was done before the restart ({copied_before})"
    );
    if let Some(i) = (0..texts.len().max(expected.len())).find(|&i| texts.get(i) != expected.get(i))
    {
        panic!(
            "lines lost or doubled across the restart: line {i} is {:?}, expected {:?} ({} lines)",
            texts.get(i),
            expected.get(i),
            texts.len()
        );
    }

    // An explicit resume on a runtime that copies already does nothing.
    second.resume_logs(info);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(read_cri(&spec.log_path).len(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copied_logs_rotate() {
    let fx = Fixture::new().await;
    let rt = fx.runtime().await;
    let mut spec = fx.spec("chatty", &["seq", "1", "1000"], None);
    spec.log_max_bytes = 4096;
    spec.log_max_files = 3;
    let id = rt.start(&spec).await.unwrap();
    wait_exit(&rt, &id, Duration::from_secs(30)).await;
    assert!(rt.wait_logs(&id, Duration::from_secs(10)).await);
    let rotated = |n: u32| PathBuf::from(format!("{}.{n}", spec.log_path.display()));
    assert!(!rotated(3).exists(), "more files than log_max_files");
    let mut numbers = Vec::new();
    for path in [rotated(2), rotated(1), spec.log_path.clone()] {
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= 4096, "{} has {size} bytes", path.display());
        numbers.extend(
            read_cri(&path)
                .into_iter()
                .map(|l| l.text.parse::<u32>().unwrap()),
        );
    }
    // The newest lines, in order, none lost between the files.
    assert_eq!(numbers.last(), Some(&1000));
    let first = numbers[0];
    assert!(first > 1, "nothing was rotated away");
    assert_eq!(numbers, (first..=1000).collect::<Vec<_>>());
}

/// This node's containers (sandboxes included) of pod `uid`, as Docker lists them:
/// `(id, is a sandbox)`.
async fn docker_pod_containers(node: &str, uid: &str) -> Vec<(String, bool)> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_NODE}={node}"), format!("{LABEL_UID}={uid}")],
    )]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    docker()
        .await
        .list_containers(Some(options))
        .await
        .unwrap()
        .into_iter()
        .map(|c| {
            let sandbox = c
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_SANDBOX))
                .is_some_and(|v| v == "true");
            (c.id.unwrap_or_default(), sandbox)
        })
        .collect()
}

/// A shell loop that fetches `url` (retrying while the server starts) and prints it and
/// the hostname.
fn fetch(url: &str) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!(
            "hostname; for i in $(seq 100); do wget -q -O - {url} && exit 0; sleep 0.1; done; exit 1"
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_network_gives_each_pod_one_address_shared_by_its_containers() {
    let fx = Fixture::new().await;
    let cidr = test_cidr(251);
    let rt = fx.runtime_with_pod_network(cidr).await;
    // Enabling again is harmless; the network is the node's, on the CIDR.
    rt.enable_pod_network(cidr).await.unwrap();
    let name = pod_network_name(&fx.node);
    assert_eq!(rt.pod_network(), Some((name.clone(), cidr)));
    let network = docker()
        .await
        .inspect_network(&name, None::<InspectNetworkOptions>)
        .await
        .unwrap();
    assert_eq!(
        network.labels.unwrap_or_default().get(LABEL_NODE),
        Some(&fx.node)
    );
    let ipam = network.ipam.unwrap().config.unwrap();
    assert_eq!(ipam.len(), 1);
    assert_eq!(ipam[0].subnet.as_deref(), Some(cidr.to_string().as_str()));
    let gateway = cidr.nth(1).unwrap().to_string();
    assert_eq!(ipam[0].gateway.as_deref(), Some(gateway.as_str()));

    // Pod "web": a server, and a client that reaches it on localhost.
    let server = fx.spec("server", &["httpd", "-f", "-p", "8080", "-h", "/etc"], None);
    let server_id = rt.start(&server).await.expect("start the server");
    let mut client = fx.spec("client", &[], None);
    client.command = Some(fetch("http://127.0.0.1:8080/passwd"));
    client.pod = server.pod.clone();
    client.hostname = server.hostname.clone();
    let (exit, lines) = run_to_end(&rt, &client).await;
    assert_eq!(exit.exit_code, 0, "{lines:?}");
    assert_eq!(
        stdout(&lines),
        vec![server.hostname.as_str(), "root:x:0:0:root:/root:/bin/sh"]
    );
    let client_id = rt
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "client")
        .unwrap()
        .id;

    // One address for the pod, on the node's CIDR, what the pod's status shows.
    let web_ip = rt.address(&server_id).await.unwrap();
    assert_eq!(rt.address(&client_id).await.unwrap(), web_ip);
    let std::net::IpAddr::V4(web_v4) = web_ip else {
        panic!("{web_ip} is not IPv4")
    };
    assert!(cidr.contains(web_v4), "{web_ip} is not in {cidr}");
    assert_ne!(web_ip.to_string(), gateway);
    assert_eq!(rt.pod_address(&server.pod.uid).await.unwrap(), Some(web_ip));

    // The sandbox is Docker's, not the pod's: list() shows the two containers only.
    let mut listed: Vec<String> = rt
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    listed.sort();
    assert_eq!(listed, ["client", "server"]);
    let web = docker_pod_containers(&fx.node, &server.pod.uid).await;
    assert_eq!(
        web.iter().filter(|(_, sandbox)| *sandbox).count(),
        1,
        "{web:?}"
    );

    // Another pod has another address, and reaches the first at its pod address.
    let mut other = fx.spec("other", &[], None);
    other.command = Some(fetch(&format!("http://{web_ip}:8080/passwd")));
    let (exit, lines) = run_to_end(&rt, &other).await;
    assert_eq!(exit.exit_code, 0, "{lines:?}");
    assert_eq!(stdout(&lines)[1], "root:x:0:0:root:/root:/bin/sh");
    let other_ip = rt.pod_address(&other.pod.uid).await.unwrap().unwrap();
    assert_ne!(other_ip, web_ip);
    let std::net::IpAddr::V4(other_v4) = other_ip else {
        panic!("{other_ip} is not IPv4")
    };
    assert!(cidr.contains(other_v4), "{other_ip} is not in {cidr}");

    // A pod whose only container cannot be made keeps no sandbox.
    let mut broken = fx.spec("broken", &["true"], None);
    broken.mounts.push(Mount {
        host_path: fx.dir.clone(),
        container_path: "relative/path".into(),
        read_only: true,
    });
    assert!(matches!(
        rt.start(&broken).await,
        Err(RuntimeError::Start(_))
    ));
    assert_eq!(
        docker_pod_containers(&fx.node, &broken.pod.uid).await,
        vec![]
    );

    // Stopping leaves the sandbox; removing a container leaves it while another remains;
    // removing the last one removes it.
    rt.stop(&server_id, Duration::from_secs(1)).await.unwrap();
    rt.remove(&client_id).await.unwrap();
    let left = docker_pod_containers(&fx.node, &server.pod.uid).await;
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().any(|(id, sandbox)| *sandbox && !id.is_empty()));
    rt.remove(&server_id).await.unwrap();
    assert_eq!(
        docker_pod_containers(&fx.node, &server.pod.uid).await,
        vec![]
    );
    assert_eq!(rt.pod_address(&server.pod.uid).await.unwrap(), None);

    // remove_sandbox takes a pod's sandbox directly; destroy_all everything of the node.
    let other_id = rt
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "other")
        .unwrap()
        .id;
    rt.remove_sandbox(&other.pod.uid).await.unwrap();
    assert_eq!(
        docker_pod_containers(&fx.node, &other.pod.uid).await,
        vec![(other_id, false)]
    );
    rt.destroy_all().await.unwrap();
    assert!(rt.list().await.unwrap().is_empty());
    assert_eq!(rt.pod_network(), None);
    let gone = docker()
        .await
        .inspect_network(&name, None::<InspectNetworkOptions>)
        .await;
    assert!(gone.is_err(), "network {name} is still there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_network_on_another_subnet_is_refused() {
    let fx = Fixture::new().await;
    let cidr = test_cidr(252);
    let rt = fx.runtime_with_pod_network(cidr).await;
    let moved = test_cidr(253);
    let e = rt.enable_pod_network(moved).await.unwrap_err().to_string();
    assert!(e.contains("already enabled"), "{e}");
    // A new runtime (the agent restarted) finds the network on the old CIDR.
    let restarted = fx.runtime().await;
    let e = restarted
        .enable_pod_network(moved)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&cidr.to_string()) && e.contains(&moved.to_string()),
        "{e}"
    );
    assert_eq!(restarted.pod_network(), None);
    // And takes it over on the same CIDR.
    restarted.enable_pod_network(cidr).await.unwrap();
}
