//! The node agent end to end: `plimsoll server` (API server, controllers, scheduler)
//! and several `plimsoll agent` processes on this machine, each its own node, running
//! real containers — isolated processes (new PID, mount, UTS and IPC namespaces,
//! cgroups) or Docker containers — driven through the real `kubectl`
//! ([`cluster::Cluster`] starts and cleans up).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/images.rs"]
mod images;
mod support;

use cluster::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};
use support::free_port;

/// What every runtime must show for the burner Deployment: spread over the nodes, the
/// ConfigMap value in the container's environment and files, `kubectl logs`, and
/// `kubectl top pods` with real CPU use.
fn burner_acceptance(c: &Cluster) -> Vec<Value> {
    c.apply(&burner(&c.image, 6, ""));
    let pods = burners_ready(c, 6, 90);
    let nodes: BTreeSet<String> = pods.iter().map(node_of).collect();
    assert_eq!(
        nodes.len(),
        3,
        "6 replicas spread over the 3 nodes: {nodes:?}"
    );
    for p in &pods {
        let name = name_of(p);
        let logs = c.eventually(20, "the burner's first lines", || {
            let l = c.ok(&["logs", &name]);
            l.contains("file=").then_some(l)
        });
        assert!(logs.contains("env=hello-from-configmap"), "{name}: {logs}");
        assert!(logs.contains("file=hello-from-configmap"), "{name}: {logs}");
        // `ps` inside shows the container's own processes only: its command as PID 1
        // (and ps itself), none of the host's or the other containers'.
        let ps: Vec<&str> = logs
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("PID"))
            .skip(1)
            .take_while(|l| !l.starts_with("env="))
            .collect();
        assert!(
            ps.len() <= 2,
            "{name}: ps inside sees more than its own processes: {ps:?}"
        );
        assert!(
            ps[0].trim_start().starts_with("1 "),
            "{name}: PID 1 is the command: {ps:?}"
        );
        let tail = c.ok(&["logs", &name, "--tail", "1"]);
        assert_eq!(tail.lines().count(), 1, "{tail}");
    }
    // Usage reaches `kubectl top`: every burner uses CPU (capped at 100m).
    let top = c.eventually(60, "kubectl top pods with CPU for every burner", || {
        let top = top_pods(c);
        pods.iter()
            .all(|p| top.get(&name_of(p)).is_some_and(|cpu| *cpu >= 20))
            .then_some(top)
    });
    for (pod, cpu) in &top {
        assert!(*cpu <= 150, "{pod} uses {cpu}m over its 100m limit");
    }
    let nodes_top = c.ok(&["top", "nodes"]);
    for n in &c.nodes {
        assert!(nodes_top.contains(n.as_str()), "{nodes_top}");
    }
    pods
}

#[test]
fn process_runtime_runs_a_deployment_and_survives_agent_faults() {
    let mut c = Cluster::start("process", Runtime::Process, &["n1", "n2", "n3"]);
    let pods = burner_acceptance(&c);

    // Real processes in their own namespaces and cgroups.
    let me = std::process::id().to_string();
    let mut pids_before: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for p in &pods {
        let pids = pod_pids(&uid_of(p));
        assert_eq!(
            pids.len(),
            1,
            "{}: one process (the burner) in the pod's cgroup: {pids:?}",
            name_of(p)
        );
        let pid = pids[0].to_string();
        for ns in ["pid", "mnt", "uts", "ipc"] {
            assert_ne!(
                ns_of(&pid, ns),
                ns_of(&me, ns),
                "{}: {ns} namespace is the host's",
                name_of(p)
            );
        }
        assert_eq!(
            memory_limit_of(pids[0]),
            Some(32 << 20),
            "{}: memory limit",
            name_of(p)
        );
        pids_before.insert(name_of(p), pids);
    }

    // An agent's token cannot touch another node's pods or Node (403).
    let on_n2 = pods
        .iter()
        .find(|p| node_of(p) == "n2")
        .expect("a pod on n2");
    let token = format!("--token=n1-token-{}", std::process::id());
    let out = c.kubectl(&[&token, "label", "node", "n2", "stolen=yes"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Forbidden"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = c.kubectl(&[
        &token,
        "patch",
        "pod",
        &name_of(on_n2),
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Failed"}}"#,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Forbidden"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = c.kubectl(&[&token, "delete", "pod", &name_of(on_n2), "--wait=false"]);
    assert!(!out.status.success(), "n1 deleted a pod of n2");

    // An agent killed and restarted adopts its containers: same processes, no
    // duplicates, no restarts.
    c.kill_agent("n2");
    std::thread::sleep(Duration::from_secs(1));
    c.start_agent("n2");
    std::thread::sleep(Duration::from_secs(6));
    let after = burners_ready(&c, 6, 30);
    for p in after.iter().filter(|p| node_of(p) == "n2") {
        let name = name_of(p);
        assert_eq!(
            pod_pids(&uid_of(p)),
            pids_before[&name],
            "{name}: the same single process after the restart"
        );
        assert_eq!(
            p["status"]["containerStatuses"][0]["restartCount"], 0,
            "{name}"
        );
    }

    // An agent killed for good: its pods run on the other nodes within the node grace
    // period plus the eviction timeout plus 10 s.
    let lost: Vec<String> = after
        .iter()
        .filter(|p| node_of(p) == "n1")
        .map(uid_of)
        .collect();
    assert!(!lost.is_empty());
    let t0 = Instant::now();
    c.kill_agent("n1");
    let budget = NODE_GRACE + EVICTION_TIMEOUT + 10;
    let replaced = c.eventually(budget + 30, "6 ready burners off n1", || {
        let pods = c.pods("app=burner");
        let live: Vec<&Value> = pods
            .iter()
            .filter(|p| is_ready(p) && node_of(p) != "n1")
            .collect();
        (live.len() == 6).then(|| live.into_iter().cloned().collect::<Vec<_>>())
    });
    let took = t0.elapsed();
    eprintln!("agent n1 killed: its pods running elsewhere after {took:?} (budget {budget} s)");
    assert!(
        took <= Duration::from_secs(budget),
        "replacement took {took:?}, over {budget} s"
    );
    assert!(replaced.iter().all(|p| node_of(p) != "n1"));
    // Its containers ran on meanwhile (the agent is gone, not the host)…
    assert!(lost.iter().all(|uid| !pod_pids(uid).is_empty()));
    // …and are stopped when it returns, its stale pods removed: 6 burners, no more.
    c.start_agent("n1");
    c.eventually(60, "n1's stale containers stopped", || {
        lost.iter()
            .all(|uid| pod_pids(uid).is_empty())
            .then_some(())
    });
    c.eventually(60, "exactly 6 burner pods", || {
        (c.pods("app=burner").len() == 6).then_some(())
    });
}

#[test]
fn crash_loop_oom_init_probes_and_logs() {
    let c = Cluster::start("lifecycle", Runtime::Process, &["m1"]);
    let port = free_port();
    c.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: hog}}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: {image}
    command: ["sh", "-c", "a=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived"]
    resources: {{limits: {{memory: 32Mi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: staged}}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - {{name: prepare, image: {image}, command: ["sh", "-c", "echo prepared > /work/state"], volumeMounts: [{{name: w, mountPath: /work}}]}}
  containers:
  - name: web
    image: {image}
    command: ["sh", "-c", "cat /work/state; mkdir -p /www; echo ok > /www/index.html; sleep 3; httpd -f -p {port} -h /www"]
    volumeMounts: [{{name: w, mountPath: /work}}]
    readinessProbe: {{httpGet: {{path: /index.html, port: {port}}}, periodSeconds: 1}}
    livenessProbe: {{tcpSocket: {{port: {port}}}, initialDelaySeconds: 8, periodSeconds: 2}}
  volumes: [{{name: w, emptyDir: {{}}}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: unhealthy}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {image}
    command: ["sh", "-c", "echo started; sleep 3600"]
    livenessProbe: {{exec: {{command: ["cat", "/nonexistent"]}}, periodSeconds: 1, failureThreshold: 2}}
---
apiVersion: v1
kind: Pod
metadata: {{name: absent}}
spec:
  containers:
  - {{name: c, image: "nowhere.example/none:1", imagePullPolicy: Always}}
---
apiVersion: v1
kind: Pod
metadata: {{name: graceful}}
spec:
  terminationGracePeriodSeconds: 20
  containers:
  - {{name: c, image: {image}, command: ["sh", "-c", "trap 'echo got-term; exit 0' TERM; while :; do sleep 1; done"]}}
"#,
        image = c.image
    ));
    // The memory hog is OOMKilled.
    let hog = c.eventually(60, "hog terminated", || {
        let p = c.json(&["get", "pod", "hog"]);
        let t = p["status"]["containerStatuses"][0]["state"]["terminated"].clone();
        t.is_object().then_some(p)
    });
    let t = &hog["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["reason"], "OOMKilled", "{t}");
    assert_eq!(t["exitCode"], 137, "{t}");
    assert_eq!(hog["status"]["phase"], "Failed");

    // Init container before the main one (through an emptyDir), HTTP readiness.
    let staged = c.eventually(60, "staged ready", || {
        let p = c.json(&["get", "pod", "staged"]);
        is_ready(&p).then_some(p)
    });
    assert_eq!(
        staged["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    assert!(c.ok(&["logs", "staged", "-c", "web"]).contains("prepared"));

    // A failing liveness probe restarts its container.
    c.eventually(60, "unhealthy restarted by its liveness probe", || {
        let p = c.json(&["get", "pod", "unhealthy"]);
        (p["status"]["containerStatuses"][0]["restartCount"].as_u64()? >= 1).then_some(())
    });
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=unhealthy",
    ]);
    assert!(events.contains("Liveness probe failed"), "{events}");

    // An image that is not on the node: ErrImagePull, then ImagePullBackOff.
    let mut reasons = BTreeSet::new();
    c.eventually(60, "ErrImagePull and ImagePullBackOff", || {
        let p = c.json(&["get", "pod", "absent"]);
        if let Some(r) = p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"].as_str()
        {
            reasons.insert(r.to_string());
        }
        (reasons.contains("ErrImagePull") && reasons.contains("ImagePullBackOff")).then_some(())
    });
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=absent",
    ]);
    assert!(events.contains("Failed to pull image"), "{events}");

    // The crashing container: CrashLoopBackOff with growing delays between restarts.
    // (Created now, so that its restarts are watched from the first one.)
    c.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: crasher}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: {image}, command: ["sh", "-c", "echo crash-$RANDOM$RANDOM; exit 3"]}}
"#,
        image = c.image
    ));
    let mut starts: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut saw_backoff = false;
    c.eventually(120, "crasher restarted 3 times", || {
        let p = c.json(&["get", "pod", "crasher"]);
        let s = &p["status"]["containerStatuses"][0];
        if s["state"]["waiting"]["reason"] == "CrashLoopBackOff" {
            saw_backoff = true;
        }
        let n = s["restartCount"].as_u64()?;
        starts.entry(n).or_insert_with(Instant::now);
        (n >= 3).then_some(())
    });
    assert!(saw_backoff, "CrashLoopBackOff was never shown");
    let gap = |a: u64, b: u64| starts[&b].duration_since(starts[&a]);
    eprintln!("crasher restarts 1→2 {:?}, 2→3 {:?}", gap(1, 2), gap(2, 3));
    assert!(gap(1, 2) >= Duration::from_secs(8), "1→2 {:?}", gap(1, 2));
    assert!(
        gap(2, 3) >= gap(1, 2) + Duration::from_secs(5),
        "delays grow: {:?} then {:?}",
        gap(1, 2),
        gap(2, 3)
    );
    let previous = c.ok(&["logs", "crasher", "--previous"]);
    let current = c.ok(&["logs", "crasher"]);
    assert!(previous.starts_with("crash-") && current.starts_with("crash-"));
    assert_ne!(previous, current, "--previous shows the start before");
    let describe = c.ok(&["describe", "pod", "crasher"]);
    assert!(
        describe.contains("Back-off restarting failed container"),
        "{describe}"
    );

    // Graceful termination: SIGTERM reaches the container, which exits at once.
    c.eventually(30, "graceful running", || {
        is_ready(&c.json(&["get", "pod", "graceful"])).then_some(())
    });
    let t0 = Instant::now();
    c.ok(&["delete", "pod", "graceful", "--wait=true"]);
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "SIGTERM handled: deleted in {:?}",
        t0.elapsed()
    );
}

#[test]
fn server_killed_mid_rollout_recovers() {
    let mut c = Cluster::start("rollout", Runtime::Process, &["r1", "r2"]);
    c.apply(&burner(&c.image, 3, ""));
    burners_ready(&c, 3, 90);
    // Objects acknowledged before the crash.
    for i in 0..5 {
        c.ok(&[
            "create",
            "configmap",
            &format!("acked-{i}"),
            &format!("--from-literal=i={i}"),
        ]);
    }
    c.apply(&burner(
        &c.image,
        3,
        "        - {name: VERSION, value: \"2\"}\n",
    ));
    std::thread::sleep(Duration::from_millis(700));
    c.kill_server();
    std::thread::sleep(Duration::from_secs(1));
    c.start_server();
    for i in 0..5 {
        c.ok(&["get", "configmap", &format!("acked-{i}")]);
    }
    let out = c.kubectl(&["rollout", "status", "deployment/burner", "--timeout=120s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pods = burners_ready(&c, 3, 60);
    for p in &pods {
        let env = p["spec"]["containers"][0]["env"].to_string();
        assert!(
            env.contains("VERSION"),
            "{} runs the new template: {env}",
            name_of(p)
        );
    }
}

#[test]
fn docker_runtime_runs_the_same_deployment() {
    assert!(
        images::docker_available(),
        "the Docker daemon does not answer"
    );
    let c = Cluster::start("docker", Runtime::Docker, &["d1", "d2", "d3"]);
    let pods = burner_acceptance(&c);
    // Each pod is a Docker container on its node, labelled with its pod.
    for p in &pods {
        let out = Command::new("docker")
            .args([
                "ps",
                "-q",
                "--filter",
                &format!("label=io.plimsoll.pod.uid={}", uid_of(p)),
                "--filter",
                &format!("label=io.plimsoll.node={}", node_of(p)),
            ])
            .output()
            .unwrap();
        let ids: Vec<&str> = std::str::from_utf8(&out.stdout)
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(ids.len(), 1, "{}: one running container", name_of(p));
    }
}
