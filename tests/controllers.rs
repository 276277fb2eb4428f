//! Job, node lifecycle and Endpoints controllers against a real Plimsoll API server.
//!
//! Each test starts its own server (the `plimsoll` binary built with the tests, its own controllers and scheduler off)
//! in a fresh data directory and a free port, runs one controller, and plays the
//! kubelet itself: it patches pod status (phase, conditions, podIP, exit codes) and
//! renews node Leases. The server is killed and its directory removed on drop.

use anyhow::{bail, Context as _, Result};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Endpoints, Event, Namespace, Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use plimsoll::server::controllers::context::{Context, OrchClock};
use plimsoll::server::controllers::events::Recorder;
use plimsoll::server::controllers::{endpoints, job, nodes};
use serde_json::json;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The server process and its data directory, removed on drop.
struct Proc {
    child: Child,
    dir: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Server {
    _proc: Proc,
    client: kube::Client,
}

impl Server {
    async fn start() -> Result<Server> {
        let bin = env!("CARGO_BIN_EXE_plimsoll").to_string();
        if !std::path::Path::new(&bin).exists() {
            bail!("no API server binary at {bin}");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = std::env::temp_dir().join(format!(
            "plimsoll-test-others-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        let child = Command::new(&bin)
            .args(["server", "--data-dir"])
            .arg(&dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--no-controllers", "--no-scheduler"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        let mut proc = Proc { child, dir };
        let kubeconfig = proc.dir.join("admin.kubeconfig");
        let start = Instant::now();
        loop {
            if start.elapsed() > Duration::from_secs(30) {
                bail!("API server did not come up");
            }
            if let Some(status) = proc.child.try_wait()? {
                bail!("API server exited: {status}");
            }
            if kubeconfig.exists() {
                let attempt = async {
                    let kc = kube::config::Kubeconfig::read_from(&kubeconfig)?;
                    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
                    let client = kube::Client::try_from(cfg)?;
                    client.apiserver_version().await?;
                    anyhow::Ok(client)
                };
                if let Ok(client) = attempt.await {
                    return Ok(Server {
                        _proc: proc,
                        client,
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn ctx(&self, component: &str) -> Context {
        let clock = OrchClock::wall();
        Context {
            client: self.client.clone(),
            recorder: Recorder::new(self.client.clone(), component, clock.clone()),
            clock,
            metrics: Arc::default(),
        }
    }

    async fn namespace(&self, name: &str) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A controller task and the switch that stops it.
struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn spawn<F: Future<Output = ()> + Send + 'static>(
        f: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> F,
    ) -> Self {
        let (stop, mut rx) = watch::channel(false);
        let shutdown = Box::pin(async move {
            let _ = rx.wait_for(|s| *s).await;
        });
        Running {
            stop,
            task: tokio::spawn(f(shutdown)),
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// Polls `f` every 100 ms until it yields `Some`, for at most `secs` seconds.
async fn wait_for<T, Fut: Future<Output = Option<T>>>(
    what: &str,
    secs: u64,
    mut f: impl FnMut() -> Fut,
) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if start.elapsed() > Duration::from_secs(secs) {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn pods_of(api: &Api<Pod>, job: &str) -> Vec<Pod> {
    let lp = ListParams::default().labels(&format!("{}={job}", job::JOB_NAME_LABEL));
    let mut pods = api.list(&lp).await.map(|l| l.items).unwrap_or_default();
    pods.sort_by_key(|p| p.name_any());
    pods
}

fn is_active(p: &Pod) -> bool {
    let phase = p
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    p.metadata.deletion_timestamp.is_none() && phase != "Succeeded" && phase != "Failed"
}

/// Plays the kubelet: the pod's container exited with `code`.
async fn finish_pod(api: &Api<Pod>, name: &str, code: i32) -> Result<()> {
    let phase = if code == 0 { "Succeeded" } else { "Failed" };
    let patch = json!({"status": {
        "phase": phase,
        "containerStatuses": [{
            "name": "main", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }}}
        }]
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Plays the kubelet: the pod runs with `ip`, ready or not.
async fn run_pod(api: &Api<Pod>, name: &str, ip: &str, ready: bool) -> Result<()> {
    let patch = json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

fn job_manifest(name: &str, extra: serde_json::Value) -> Result<Job> {
    let mut v = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}
        }
    });
    for (k, val) in extra.as_object().cloned().unwrap_or_default() {
        v["spec"][k] = val;
    }
    Ok(serde_json::from_value(v)?)
}

fn condition<'a>(
    job: &'a Job,
    type_: &str,
) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

async fn events_with_reason(client: &kube::Client, ns: &str, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

fn start_jobs(server: &Server, base: Duration) -> Running {
    let ctx = server.ctx("job-controller");
    let cfg = job::JobConfig {
        backoff_base: base,
        backoff_max: Duration::from_secs(5),
        workers: 2,
    };
    Running::spawn(move |shutdown| job::run(ctx, cfg, shutdown))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_retries_up_to_backoff_limit_then_fails() -> Result<()> {
    let server = Server::start().await?;
    server.namespace("t").await?;
    let ctl = start_jobs(&server, Duration::from_millis(300));
    let jobs: Api<Job> = Api::namespaced(server.client.clone(), "t");
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "t");
    jobs.create(
        &PostParams::default(),
        &job_manifest("flaky", json!({"backoffLimit": 2}))?,
    )
    .await?;

    let mut waits = Vec::new();
    let mut failed_at: Option<Instant> = None;
    for round in 0..3 {
        let pod = wait_for(&format!("pod {round}"), 20, || async {
            pods_of(&pods, "flaky").await.into_iter().find(is_active)
        })
        .await?;
        if let Some(t) = failed_at {
            waits.push(t.elapsed());
        }
        // Labels, owner and finalizer as kube sets them.
        let labels = pod.labels();
        assert!(
            labels.contains_key(job::CONTROLLER_UID_LABEL) && labels.contains_key("controller-uid")
        );
        assert_eq!(labels.get("job-name").map(String::as_str), Some("flaky"));
        assert!(pod.name_any().starts_with("flaky-") && pod.name_any().len() == "flaky-".len() + 5);
        assert!(pod
            .finalizers()
            .contains(&job::TRACKING_FINALIZER.to_string()));
        let owner = &pod.owner_references()[0];
        assert_eq!(
            (
                owner.kind.as_str(),
                owner.controller,
                owner.block_owner_deletion
            ),
            ("Job", Some(true), Some(true))
        );
        assert_eq!(
            pods_of(&pods, "flaky")
                .await
                .iter()
                .filter(|p| is_active(p))
                .count(),
            1,
            "parallelism 1"
        );
        finish_pod(&pods, &pod.name_any(), 1).await?;
        failed_at = Some(Instant::now());
    }
    let job = wait_for("Failed", 20, || async {
        let j = jobs.get("flaky").await.ok()?;
        condition(&j, "Failed").is_some().then_some(j)
    })
    .await?;
    let failed = condition(&job, "Failed").unwrap();
    assert_eq!(failed.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(failed.message.as_deref(), Some(job::BACKOFF_LIMIT_MESSAGE));
    assert!(condition(&job, "FailureTarget").is_some());
    let st = job.status.clone().unwrap();
    assert_eq!(
        (st.failed, st.succeeded, st.active),
        (Some(3), Some(0), Some(0))
    );
    assert!(st.start_time.is_some() && st.completion_time.is_none());
    // Back-off: 300 ms after the first failure, 600 ms after the second.
    assert!(
        waits[0] >= Duration::from_millis(250),
        "first back-off {:?}",
        waits[0]
    );
    assert!(
        waits[1] >= Duration::from_millis(550),
        "second back-off {:?}",
        waits[1]
    );
    // Exactly backoffLimit+1 pods, all released by the finalizer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = pods_of(&pods, "flaky").await;
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|p| !p
        .finalizers()
        .contains(&job::TRACKING_FINALIZER.to_string())));
    assert_eq!(
        events_with_reason(&server.client, "t", "SuccessfulCreate")
            .await
            .len(),
        3
    );
    let ev = events_with_reason(&server.client, "t", "BackoffLimitExceeded").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].type_.as_deref(), Some("Warning"));
    ctl.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_completes_with_completions_3_parallelism_2() -> Result<()> {
    let server = Server::start().await?;
    server.namespace("t").await?;
    let ctl = start_jobs(&server, Duration::from_millis(200));
    let jobs: Api<Job> = Api::namespaced(server.client.clone(), "t");
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "t");
    jobs.create(
        &PostParams::default(),
        &job_manifest("work", json!({"completions": 3, "parallelism": 2}))?,
    )
    .await?;

    let mut done = 0;
    while done < 3 {
        let active = wait_for("active pods", 20, || async {
            let a: Vec<Pod> = pods_of(&pods, "work")
                .await
                .into_iter()
                .filter(is_active)
                .collect();
            let want = (3 - done).min(2);
            (a.len() == want).then_some(a)
        })
        .await?;
        // One pod becomes ready first: status.ready follows.
        run_pod(&pods, &active[0].name_any(), "10.0.0.9", true).await?;
        wait_for("ready=1", 10, || async {
            let j = jobs.get("work").await.ok()?;
            (j.status?.ready == Some(1)).then_some(())
        })
        .await?;
        finish_pod(&pods, &active[0].name_any(), 0).await?;
        done += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let n_active = pods_of(&pods, "work")
            .await
            .iter()
            .filter(|p| is_active(p))
            .count();
        assert!(
            n_active <= 2,
            "never more than parallelism active ({n_active})"
        );
    }
    let job = wait_for("Complete", 20, || async {
        let j = jobs.get("work").await.ok()?;
        condition(&j, "Complete").is_some().then_some(j)
    })
    .await?;
    // Finished: the Job is not written again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        jobs.get("work").await?.resource_version(),
        job.resource_version(),
        "finished Job rewritten"
    );
    let st = job.status.clone().unwrap();
    assert_eq!(
        (st.succeeded, st.failed, st.active),
        (Some(3), Some(0), Some(0))
    );
    assert!(st.completion_time.is_some());
    assert!(condition(&job, "SuccessCriteriaMet").is_some());
    assert_eq!(
        pods_of(&pods, "work").await.len(),
        3,
        "no pod beyond the completions"
    );
    assert_eq!(
        events_with_reason(&server.client, "t", "Completed")
            .await
            .len(),
        1
    );
    ctl.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_pod_failure_policy_ignore_then_fail_job() -> Result<()> {
    let server = Server::start().await?;
    server.namespace("t").await?;
    let ctl = start_jobs(&server, Duration::from_millis(100));
    let jobs: Api<Job> = Api::namespaced(server.client.clone(), "t");
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "t");
    let policy = json!({"rules": [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}}
    ]});
    let manifest = job_manifest(
        "pfp",
        json!({"parallelism": 2, "completions": 4, "backoffLimit": 6, "podFailurePolicy": policy}),
    )?;
    jobs.create(&PostParams::default(), &manifest).await?;
    let active = wait_for("2 pods", 20, || async {
        let a: Vec<Pod> = pods_of(&pods, "pfp")
            .await
            .into_iter()
            .filter(is_active)
            .collect();
        (a.len() == 2).then_some(a)
    })
    .await?;
    // Exit 3 is ignored: not counted, and replaced without back-off.
    finish_pod(&pods, &active[0].name_any(), 3).await?;
    let active = wait_for("replacement", 20, || async {
        let a: Vec<Pod> = pods_of(&pods, "pfp")
            .await
            .into_iter()
            .filter(is_active)
            .collect();
        (a.len() == 2 && a.iter().all(|p| p.name_any() != active[0].name_any())).then_some(a)
    })
    .await?;
    let j = jobs.get("pfp").await?;
    assert_eq!(
        j.status.as_ref().and_then(|s| s.failed).unwrap_or(0),
        0,
        "ignored failure not counted"
    );
    // Exit 42 fails the Job; the other active pod is deleted.
    finish_pod(&pods, &active[0].name_any(), 42).await?;
    let job = wait_for("Failed", 20, || async {
        let j = jobs.get("pfp").await.ok()?;
        condition(&j, "Failed").is_some().then_some(j)
    })
    .await?;
    let c = condition(&job, "Failed").unwrap();
    assert_eq!(c.reason.as_deref(), Some("PodFailurePolicy"));
    let expected = format!(
        "Container main for pod t/{} failed with exit code 42 matching FailJob rule at index 1",
        active[0].name_any()
    );
    assert_eq!(c.message.as_deref(), Some(expected.as_str()));
    assert_eq!(job.status.as_ref().unwrap().active, Some(0));
    wait_for("other pod deleted", 10, || async {
        pods_of(&pods, "pfp")
            .await
            .iter()
            .all(|p| p.name_any() != active[1].name_any())
            .then_some(())
    })
    .await?;
    ctl.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_active_deadline_and_suspend() -> Result<()> {
    let server = Server::start().await?;
    server.namespace("t").await?;
    let ctl = start_jobs(&server, Duration::from_millis(100));
    let jobs: Api<Job> = Api::namespaced(server.client.clone(), "t");
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "t");
    jobs.create(
        &PostParams::default(),
        &job_manifest("sus", json!({"suspend": true}))?,
    )
    .await?;
    jobs.create(
        &PostParams::default(),
        &job_manifest("slow", json!({"activeDeadlineSeconds": 2}))?,
    )
    .await?;
    let started = Instant::now();
    wait_for("slow pod", 10, || async {
        pods_of(&pods, "slow").await.into_iter().find(is_active)
    })
    .await?;
    let job = wait_for("DeadlineExceeded", 20, || async {
        let j = jobs.get("slow").await.ok()?;
        condition(&j, "Failed").is_some().then_some(j)
    })
    .await?;
    // startTime is stored to the second (metav1.Time), so the 2 s deadline may end up to
    // 1 s early, as in Kubernetes.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "deadline honoured ({took:?})"
    );
    let c = condition(&job, "Failed").unwrap();
    assert_eq!(
        (c.reason.as_deref(), c.message.as_deref()),
        (Some("DeadlineExceeded"), Some(job::DEADLINE_MESSAGE))
    );
    wait_for("slow pod gone", 10, || async {
        pods_of(&pods, "slow").await.is_empty().then_some(())
    })
    .await?;
    // The suspended Job never created a pod.
    assert!(pods_of(&pods, "sus").await.is_empty());
    let sus = jobs.get("sus").await?;
    assert!(condition(&sus, "Suspended").is_some());
    ctl.stop().await;
    Ok(())
}

async fn renew(leases: &Api<Lease>, node: &str) -> Result<()> {
    let patch = json!({"spec": {"renewTime": MicroTime(jiff::Timestamp::now())}});
    leases
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

fn taint_keys(n: &Node) -> Vec<String> {
    let mut v: Vec<String> = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .iter()
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect();
    v.sort();
    v
}

fn ready_status(n: &Node) -> Option<(String, Option<String>)> {
    let c = nodes::ready_condition(n)?;
    Some((c.status.clone(), c.reason.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_lease_loss_taints_evicts_and_recovers() -> Result<()> {
    let server = Server::start().await?;
    server.namespace("t").await?;
    server.namespace(nodes::LEASE_NAMESPACE).await?;
    server.namespace("default").await?;
    let client = server.client.clone();
    let node_api: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), nodes::LEASE_NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "t");

    let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}}))?;
    node_api.create(&PostParams::default(), &node).await?;
    let now = jiff::Timestamp::now();
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
        "lastHeartbeatTime": now, "lastTransitionTime": now}]}});
    node_api
        .patch_status("n1", &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    let lease: Lease = serde_json::from_value(
        json!({"metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 2, "renewTime": MicroTime(now)}}),
    )?;
    leases.create(&PostParams::default(), &lease).await?;
    let pod = |name: &str, node: &str, tolerations: serde_json::Value| -> Result<Pod> {
        Ok(serde_json::from_value(
            json!({"metadata": {"name": name}, "spec": {"nodeName": node,
            "containers": [{"name": "main", "image": "busybox"}], "tolerations": tolerations}}),
        )?)
    };
    let short = json!([{"key": nodes::TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}]);
    let forever =
        json!([{"key": nodes::TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]);
    pods.create(&PostParams::default(), &pod("short", "n1", short)?)
        .await?;
    pods.create(&PostParams::default(), &pod("default", "n1", json!([]))?)
        .await?;
    pods.create(&PostParams::default(), &pod("forever", "n1", forever)?)
        .await?;
    pods.create(
        &PostParams::default(),
        &pod("ghost", "no-such-node", json!([]))?,
    )
    .await?;

    let ctx = server.ctx("node-controller");
    let cfg = nodes::NodeLifecycleConfig {
        node_grace: Duration::from_secs(2),
        eviction_timeout: Duration::from_secs(300),
        workers: 2,
    };
    let ctl = Running::spawn(move |shutdown| nodes::run(ctx, cfg, shutdown));

    // The orphan pod goes at once.
    wait_for("orphan pod deleted", 10, || async {
        pods.get_opt("ghost").await.ok()?.is_none().then_some(())
    })
    .await?;

    // Renewing: nothing happens over more than the grace (the node is not even written).
    let rv_before = node_api.get("n1").await?.resource_version();
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        renew(&leases, "n1").await?;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let n = node_api.get("n1").await?;
    assert!(
        taint_keys(&n).is_empty(),
        "healthy node tainted: {:?}",
        taint_keys(&n)
    );
    assert_eq!(ready_status(&n).map(|r| r.0).as_deref(), Some("True"));
    assert_eq!(n.resource_version(), rv_before, "healthy node rewritten");

    // The lease stops: Unknown, tainted.
    let stopped = Instant::now();
    let n = wait_for("Ready Unknown and tainted", 10, || async {
        let n = node_api.get("n1").await.ok()?;
        (ready_status(&n)?.0 == "Unknown" && taint_keys(&n).len() == 2).then_some(n)
    })
    .await?;
    assert!(
        stopped.elapsed() >= Duration::from_millis(1500),
        "not before the grace"
    );
    assert_eq!(
        ready_status(&n).unwrap().1.as_deref(),
        Some("NodeStatusUnknown")
    );
    assert_eq!(
        nodes::ready_condition(&n).unwrap().message.as_deref(),
        Some(nodes::UNKNOWN_MESSAGE)
    );
    assert_eq!(
        taint_keys(&n),
        vec![
            format!("{}:NoExecute", nodes::TAINT_UNREACHABLE),
            format!("{}:NoSchedule", nodes::TAINT_UNREACHABLE)
        ]
    );
    let tainted = Instant::now();
    // The pod tolerating it for 2 s is evicted after about 2 s; the others stay.
    wait_for("short-toleration pod evicted", 10, || async {
        pods.get_opt("short").await.ok()?.is_none().then_some(())
    })
    .await?;
    assert!(
        tainted.elapsed() >= Duration::from_millis(1000),
        "evicted too early: {:?}",
        tainted.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        pods.get_opt("default").await?.is_some(),
        "default toleration is 300 s"
    );
    assert!(pods.get_opt("forever").await?.is_some());
    let ev = events_with_reason(&client, "t", "TaintManagerEviction").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(
        ev[0].message.as_deref(),
        Some("Marking for deletion Pod t/short")
    );
    assert!(!events_with_reason(&client, "default", "NodeNotReady")
        .await
        .is_empty());

    // Renewed again: the taints go.
    renew(&leases, "n1").await?;
    wait_for("taints removed", 10, || async {
        let n = node_api.get("n1").await.ok()?;
        taint_keys(&n).is_empty().then_some(())
    })
    .await?;
    ctl.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_pod_without_toleration_evicted_after_default_timeout() -> Result<()> {
    let server = Server::start().await?;
    server.namespace("t").await?;
    let client = server.client.clone();
    let node_api: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "t");
    // A node that never reported and has no lease: the grace runs from its creation.
    node_api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "n2"}}))?,
        )
        .await?;
    let p: Pod =
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n2",
        "containers": [{"name": "main", "image": "busybox"}]}}))?;
    pods.create(&PostParams::default(), &p).await?;
    let ctx = server.ctx("node-controller");
    let cfg = nodes::NodeLifecycleConfig {
        node_grace: Duration::from_secs(1),
        eviction_timeout: Duration::from_secs(2),
        workers: 1,
    };
    let ctl = Running::spawn(move |shutdown| nodes::run(ctx, cfg, shutdown));
    let n = wait_for("tainted", 10, || async {
        let n = node_api.get("n2").await.ok()?;
        (taint_keys(&n).len() == 2).then_some(n)
    })
    .await?;
    assert_eq!(
        ready_status(&n).map(|r| r.1),
        Some(Some("NodeStatusNeverUpdated".to_string()))
    );
    let t = Instant::now();
    wait_for("evicted", 10, || async {
        pods.get_opt("p").await.ok()?.is_none().then_some(())
    })
    .await?;
    assert!(t.elapsed() >= Duration::from_millis(1000));
    ctl.stop().await;
    Ok(())
}

fn subsets_summary(ep: &Endpoints) -> Vec<(Vec<String>, Vec<String>, Vec<String>)> {
    ep.subsets
        .iter()
        .flatten()
        .map(|s| {
            let ips = |a: &Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>| {
                a.iter().flatten().map(|a| a.ip.clone()).collect::<Vec<_>>()
            };
            let ports = s
                .ports
                .iter()
                .flatten()
                .map(|p| format!("{}={}", p.name.clone().unwrap_or_default(), p.port))
                .collect();
            (ips(&s.addresses), ips(&s.not_ready_addresses), ports)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_follow_readiness_and_named_ports() -> Result<()> {
    let server = Server::start().await?;
    server.namespace("t").await?;
    let client = server.client.clone();
    let svcs: Api<Service> = Api::namespaced(client.clone(), "t");
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "t");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "t");
    let ctx = server.ctx("endpoint-controller");
    let ctl = Running::spawn(move |shutdown| {
        endpoints::run(ctx, endpoints::EndpointsConfig::default(), shutdown)
    });

    let svc: Service = serde_json::from_value(
        json!({"metadata": {"name": "web", "labels": {"tier": "front"}}, "spec": {
        "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": "web"}, {"name": "metrics", "port": 9000, "targetPort": 9090}]}}),
    )?;
    svcs.create(&PostParams::default(), &svc).await?;
    // A user-managed Endpoints of a selector-less Service.
    let manual: Service = serde_json::from_value(
        json!({"metadata": {"name": "manual"}, "spec": {"ports": [{"port": 5432}]}}),
    )?;
    svcs.create(&PostParams::default(), &manual).await?;
    let manual_ep: Endpoints = serde_json::from_value(json!({"metadata": {"name": "manual"},
        "subsets": [{"addresses": [{"ip": "192.168.0.1"}], "ports": [{"port": 5432}]}]}))?;
    eps.create(&PostParams::default(), &manual_ep).await?;

    let pod = |name: &str, ports: serde_json::Value| -> Result<Pod> {
        Ok(serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"app": "web"}}, "spec": {"nodeName": "n1",
            "containers": [{"name": "main", "image": "nginx", "ports": ports}]}}),
        )?)
    };
    pods.create(
        &PostParams::default(),
        &pod("a", json!([{"name": "web", "containerPort": 8080}]))?,
    )
    .await?;
    pods.create(&PostParams::default(), &pod("b", json!([]))?)
        .await?;

    let get = || async { eps.get_opt("web").await.ok().flatten() };
    let ep = wait_for("Endpoints created", 10, || async { get().await }).await?;
    assert!(subsets_summary(&ep).is_empty(), "no pod has an IP yet");
    assert_eq!(ep.labels().get("tier").map(String::as_str), Some("front"));

    let s = |a: &[&str], n: &[&str], p: &[&str]| {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        (v(a), v(n), v(p))
    };
    run_pod(&pods, "a", "10.0.0.1", false).await?;
    wait_for("a not ready", 10, || async {
        (subsets_summary(&get().await?)
            == vec![s(&[], &["10.0.0.1"], &["http=8080", "metrics=9090"])])
        .then_some(())
    })
    .await?;
    run_pod(&pods, "a", "10.0.0.1", true).await?;
    run_pod(&pods, "b", "10.0.0.2", true).await?;
    let ep = wait_for("a and b ready", 10, || async {
        let ep = get().await?;
        let want = vec![
            s(&["10.0.0.1"], &[], &["http=8080", "metrics=9090"]),
            s(&["10.0.0.2"], &[], &["metrics=9090"]),
        ];
        let mut got = subsets_summary(&ep);
        got.sort();
        (got == want).then_some(ep)
    })
    .await?;
    let addr = &ep
        .subsets
        .as_ref()
        .unwrap()
        .iter()
        .flat_map(|s| s.addresses.iter().flatten())
        .find(|a| a.ip == "10.0.0.1")
        .unwrap();
    assert_eq!(addr.node_name.as_deref(), Some("n1"));
    let r = addr.target_ref.as_ref().unwrap();
    assert_eq!(
        (r.kind.as_deref(), r.name.as_deref(), r.namespace.as_deref()),
        (Some("Pod"), Some("a"), Some("t"))
    );

    // Not written again when nothing changed.
    let rv = ep.resource_version();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(get().await.unwrap().resource_version(), rv);

    // b's labels change: it leaves; a is deleted: it leaves.
    pods.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await?;
    wait_for("b gone", 10, || async {
        (subsets_summary(&get().await?)
            == vec![s(&["10.0.0.1"], &[], &["http=8080", "metrics=9090"])])
        .then_some(())
    })
    .await?;
    pods.delete("a", &DeleteParams::default().grace_period(0))
        .await?;
    wait_for("a gone", 10, || async {
        subsets_summary(&get().await?).is_empty().then_some(())
    })
    .await?;

    // The user's Endpoints stayed as written.
    let m = eps.get("manual").await?;
    assert_eq!(
        subsets_summary(&m),
        vec![s(&["192.168.0.1"], &[], &["=5432"])]
    );

    // Deleting the Service deletes its Endpoints.
    svcs.delete("web", &DeleteParams::default()).await?;
    wait_for("Endpoints deleted", 10, || async {
        get().await.is_none().then_some(())
    })
    .await?;
    assert!(eps.get_opt("manual").await?.is_some());
    ctl.stop().await;
    Ok(())
}
