//! Workload controllers against Plimsoll's API server: ReplicaSet, Deployment (rolling
//! update, Recreate, rollback, kubectl rollout status/history/undo) and garbage
//! collection (background, foreground, orphan). Each test starts its own server and
//! controllers, simulates a kubelet by patching pod status, and cleans up after itself.

use anyhow::{bail, Context as _, Result};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::ResourceExt;
use plimsoll::server::controllers::context::{Context, OrchClock};
use plimsoll::server::controllers::events::Recorder;
use plimsoll::server::metrics::ControllerMetrics;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The server binary built with these tests.
fn bin() -> String {
    env!("CARGO_BIN_EXE_plimsoll").to_string()
}

/// The server's own controllers and scheduler are switched off: these tests run the
/// controllers under test in-process.
fn no_builtin_flags(_bin: &str) -> Vec<&'static str> {
    vec!["--no-controllers", "--no-scheduler"]
}

const NS: &str = "work";

/// A running API server; killed and its directory removed on drop.
struct Server {
    child: Child,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("admin.kubeconfig")
    }
}

/// Server, client and the controllers; controllers stop when dropped.
struct Env {
    server: Server,
    client: kube::Client,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Env {
    async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }

    fn kubectl(&self, args: &[&str]) -> Result<(bool, String)> {
        let out = Command::new("/usr/bin/kubectl")
            .arg("--kubeconfig")
            .arg(self.server.kubeconfig())
            .args(args)
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.success(), text))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn stopped(rx: &watch::Receiver<bool>) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|v| *v).await;
    }
}

async fn start(kubelet_delay: Option<Duration>) -> Result<Env> {
    let bin = bin();
    if !std::path::Path::new(&bin).exists() {
        bail!("{bin} is missing");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir().join(format!("plimsoll-test-wl-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let child = Command::new(&bin)
        .args(["server", "--data-dir"])
        .arg(&dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(no_builtin_flags(&bin))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the server")?;
    let server = Server { child, dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        if Instant::now() > deadline {
            bail!("server did not come up");
        }
        if server.kubeconfig().exists() {
            if let Ok(kc) = Kubeconfig::read_from(server.kubeconfig()) {
                if let Ok(cfg) =
                    kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await
                {
                    if let Ok(c) = kube::Client::try_from(cfg) {
                        if Api::<Namespace>::all(c.clone())
                            .list(&ListParams::default())
                            .await
                            .is_ok()
                        {
                            break c;
                        }
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": NS}}))?;
    let _ = Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await;

    let clock = OrchClock::wall();
    let ctx = Context {
        client: client.clone(),
        clock: clock.clone(),
        recorder: Recorder::new(client.clone(), "controller-manager", clock),
        metrics: Arc::new(ControllerMetrics::default()),
    };
    let (stop, rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let rs_ctx = Context {
        recorder: ctx.recorder.with_component("replicaset-controller"),
        ..ctx.clone()
    };
    tasks.push(tokio::spawn(
        plimsoll::server::controllers::replicaset::run(rs_ctx, 2, stopped(&rx)),
    ));
    let d_ctx = Context {
        recorder: ctx.recorder.with_component("deployment-controller"),
        ..ctx.clone()
    };
    tasks.push(tokio::spawn(
        plimsoll::server::controllers::deployment::run(d_ctx, 2, stopped(&rx)),
    ));
    let gc_ctx = Context {
        recorder: ctx.recorder.with_component("garbage-collector"),
        ..ctx.clone()
    };
    tasks.push(tokio::spawn(plimsoll::server::controllers::gc::run(
        gc_ctx,
        stopped(&rx),
    )));
    if let Some(delay) = kubelet_delay {
        tasks.push(tokio::spawn(kubelet(client.clone(), delay, stopped(&rx))));
    }
    Ok(Env {
        server,
        client,
        stop,
        tasks,
    })
}

/// A fake kubelet: pods become Running and Ready `delay` after it first sees them.
async fn kubelet(
    client: kube::Client,
    delay: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    let api: Api<Pod> = Api::namespaced(client, NS);
    let mut seen: BTreeMap<String, Instant> = BTreeMap::new();
    let work = async {
        loop {
            if let Ok(pods) = api.list(&ListParams::default()).await {
                for p in pods {
                    let uid = p.uid().unwrap_or_default();
                    let first = *seen.entry(uid).or_insert_with(Instant::now);
                    let ready = p
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| {
                            c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                    if !ready && p.metadata.deletion_timestamp.is_none() && first.elapsed() >= delay
                    {
                        let now = jiff::Timestamp::now().to_string();
                        let patch = serde_json::json!({"status": {"phase": "Running", "conditions": [
                            {"type": "Ready", "status": "True", "lastTransitionTime": now}
                        ]}});
                        let _ = api
                            .patch_status(
                                &p.name_any(),
                                &PatchParams::default(),
                                &Patch::Merge(&patch),
                            )
                            .await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        _ = work => {}
        _ = stop => {}
    }
}

async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err = String::new();
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = e.to_string(),
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what} {last_err}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rs_of(pods: &[Pod], rs: &ReplicaSet) -> Vec<Pod> {
    pods.iter()
        .filter(|p| {
            p.owner_references()
                .iter()
                .any(|r| Some(&r.uid) == rs.metadata.uid.as_ref() && r.controller == Some(true))
        })
        .cloned()
        .collect()
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn deployment(
    name: &str,
    replicas: i32,
    image: &str,
    strategy: serde_json::Value,
) -> Result<Deployment> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 10,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]}
            }
        }
    }))?)
}

async fn owned_rss(client: &kube::Client, d: &Deployment) -> Result<Vec<ReplicaSet>> {
    let rss = Api::<ReplicaSet>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await?;
    let uid = d.uid().unwrap_or_default();
    Ok(rss
        .items
        .into_iter()
        .filter(|rs| rs.owner_references().iter().any(|r| r.uid == uid))
        .collect())
}

fn ann(rs: &ReplicaSet, k: &str) -> Option<String> {
    rs.annotations().get(k).cloned()
}

/// Waits for the deployment to be rolled out at `replicas` with one active ReplicaSet
/// whose template image is `image`; returns that ReplicaSet.
async fn rolled_out(
    client: &kube::Client,
    name: &str,
    replicas: i32,
    image: &str,
) -> Result<ReplicaSet> {
    let dapi: Api<Deployment> = Api::namespaced(client.clone(), NS);
    eventually(
        &format!("{name} rolled out with {image}"),
        Duration::from_secs(60),
        || async {
            let d = dapi.get(name).await?;
            let st = d.status.clone().unwrap_or_default();
            let gen_ok = st.observed_generation >= d.metadata.generation;
            let ok = gen_ok
                && st.replicas == Some(replicas)
                && st.updated_replicas == Some(replicas)
                && st.available_replicas == Some(replicas)
                && st.ready_replicas == Some(replicas);
            if !ok {
                return Ok(None);
            }
            let rss = owned_rss(client, &d).await?;
            let active: Vec<_> = rss
                .iter()
                .filter(|rs| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0)
                .collect();
            if active.len() != 1 {
                return Ok(None);
            }
            let img = active[0]
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref())
                .map(|s| s.containers[0].image.clone().unwrap_or_default());
            Ok((img.as_deref() == Some(image)).then(|| active[0].clone()))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicaset_scales_up_and_down_and_reports_status() -> Result<()> {
    let env = start(Some(Duration::from_millis(100))).await?;
    let c = env.client.clone();
    let api: Api<ReplicaSet> = Api::namespaced(c.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(c.clone(), NS);
    let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))?;
    let rs = api.create(&PostParams::default(), &rs).await?;
    let st = eventually("3 ready replicas", Duration::from_secs(30), || async {
        let r = api.get("web").await?;
        let s = r.status.clone().unwrap_or_default();
        Ok((s.replicas == 3
            && s.ready_replicas == Some(3)
            && s.available_replicas == Some(3)
            && s.observed_generation == r.metadata.generation)
            .then_some(s))
    })
    .await?;
    assert_eq!(st.fully_labeled_replicas, Some(3));
    let all = pods.list(&ListParams::default()).await?.items;
    let mine = rs_of(&all, &rs);
    assert_eq!(mine.len(), 3, "exactly three pods, no extras");
    for p in &mine {
        let n = p.name_any();
        assert!(n.starts_with("web-") && n.len() == 9, "pod name {n}");
        assert_eq!(p.labels().get("tier").map(String::as_str), Some("fe"));
        let r = &p.owner_references()[0];
        assert_eq!(
            (r.kind.as_str(), r.controller, r.block_owner_deletion),
            ("ReplicaSet", Some(true), Some(true))
        );
    }
    // An orphan pod matching the selector is adopted: the RS then deletes one pod.
    let orphan: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "stray", "namespace": NS, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    }))?;
    pods.create(&PostParams::default(), &orphan).await?;
    eventually(
        "back to 3 pods after adoption",
        Duration::from_secs(30),
        || async {
            let all = pods.list(&ListParams::default()).await?.items;
            let n = all
                .iter()
                .filter(|p| p.labels().get("app").map(String::as_str) == Some("web"))
                .count();
            Ok((n == 3 && rs_of(&all, &rs).len() == 3).then_some(()))
        },
    )
    .await?;

    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&serde_json::json!({"spec": {"replicas": 1}})),
    )
    .await?;
    eventually("1 replica", Duration::from_secs(30), || async {
        let r = api.get("web").await?;
        let n = rs_of(&pods.list(&ListParams::default()).await?.items, &rs).len();
        Ok((n == 1
            && r.status
                .is_some_and(|s| s.replicas == 1 && s.ready_replicas == Some(1)))
        .then_some(()))
    })
    .await?;
    // A pod deleted from under the RS is replaced.
    let victim = rs_of(&pods.list(&ListParams::default()).await?.items, &rs)[0].name_any();
    pods.delete(&victim, &DeleteParams::default()).await?;
    eventually("replacement pod", Duration::from_secs(30), || async {
        let mine = rs_of(&pods.list(&ListParams::default()).await?.items, &rs);
        Ok((mine.len() == 1 && mine[0].name_any() != victim).then_some(()))
    })
    .await?;

    let events = Api::<Event>::namespaced(c.clone(), NS)
        .list(&ListParams::default())
        .await?
        .items;
    let msgs: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.involved_object.name.as_deref() == Some("web"))
        .map(|e| {
            (
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        msgs.iter()
            .any(|(r, m)| r == "SuccessfulCreate" && m.starts_with("Created pod: web-")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|(r, m)| r == "SuccessfulDelete" && m.starts_with("Deleted pod: ")),
        "{msgs:?}"
    );
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deployment_rolls_out_scales_and_rolls_back() -> Result<()> {
    let env = start(Some(Duration::from_millis(300))).await?;
    let c = env.client.clone();
    let dapi: Api<Deployment> = Api::namespaced(c.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(c.clone(), NS);
    let strategy = serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}});
    dapi.create(
        &PostParams::default(),
        &deployment("app", 4, "img:v1", strategy)?,
    )
    .await?;
    let rs1 = rolled_out(&c, "app", 4, "img:v1").await?;
    let hash = rs1
        .labels()
        .get("pod-template-hash")
        .cloned()
        .context("hash label")?;
    assert_eq!(rs1.name_any(), format!("app-{hash}"));
    assert_eq!(
        rs1.spec
            .as_ref()
            .unwrap()
            .selector
            .match_labels
            .as_ref()
            .unwrap()
            .get("pod-template-hash"),
        Some(&hash)
    );
    assert_eq!(
        ann(&rs1, "deployment.kubernetes.io/revision").as_deref(),
        Some("1")
    );
    assert_eq!(
        ann(&rs1, "deployment.kubernetes.io/desired-replicas").as_deref(),
        Some("4")
    );
    assert_eq!(
        ann(&rs1, "deployment.kubernetes.io/max-replicas").as_deref(),
        Some("5")
    );
    let d = dapi.get("app").await?;
    assert_eq!(
        d.annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("1")
    );
    let st = d.status.clone().unwrap();
    assert_eq!(st.unavailable_replicas, Some(0));
    let conds = st.conditions.unwrap();
    let cond = |t: &str| conds.iter().find(|c| c.type_ == t).cloned().unwrap();
    assert_eq!(
        (
            cond("Available").status.as_str(),
            cond("Available").reason.as_deref()
        ),
        ("True", Some("MinimumReplicasAvailable"))
    );
    assert_eq!(
        cond("Progressing").reason.as_deref(),
        Some("NewReplicaSetAvailable")
    );
    let (ok, out) = env.kubectl(&[
        "-n",
        NS,
        "rollout",
        "status",
        "deployment/app",
        "--timeout=60s",
    ])?;
    assert!(ok && out.contains("successfully rolled out"), "{out}");

    // Scale.
    dapi.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(&serde_json::json!({"spec": {"replicas": 6}})),
    )
    .await?;
    rolled_out(&c, "app", 6, "img:v1").await?;

    // Template change: watch the invariants while it rolls out.
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let (mon_stop, mon_rx) = watch::channel(false);
    let monitor = {
        let c = c.clone();
        let violations = violations.clone();
        let d = dapi.get("app").await?;
        tokio::spawn(async move {
            let pods: Api<Pod> = Api::namespaced(c.clone(), NS);
            while !*mon_rx.borrow() {
                if let (Ok(all), Ok(rss)) = (
                    pods.list(&ListParams::default()).await,
                    owned_rss(&c, &d).await,
                ) {
                    let ready_n = all
                        .items
                        .iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_none() && ready(p))
                        .count();
                    let spec_sum: i32 = rss
                        .iter()
                        .map(|rs| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0))
                        .sum();
                    // 6 replicas, maxUnavailable 1, maxSurge 1.
                    if ready_n < 5 {
                        violations
                            .lock()
                            .unwrap()
                            .push(format!("only {ready_n} ready pods"));
                    }
                    if spec_sum > 7 {
                        violations
                            .lock()
                            .unwrap()
                            .push(format!("{spec_sum} replicas across replica sets"));
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let set_image = |img: &str| serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": img}]}}}});
    dapi.patch(
        "app",
        &PatchParams::default(),
        &Patch::Strategic(&set_image("img:v2")),
    )
    .await?;
    let rs2 = rolled_out(&c, "app", 6, "img:v2").await?;
    let _ = mon_stop.send(true);
    monitor.await?;
    let v = violations.lock().unwrap().clone();
    assert!(v.is_empty(), "rolling update broke its bounds: {v:?}");
    assert_ne!(rs2.name_any(), rs1.name_any());
    assert_eq!(
        ann(&rs2, "deployment.kubernetes.io/revision").as_deref(),
        Some("2")
    );
    let rs1_now = Api::<ReplicaSet>::namespaced(c.clone(), NS)
        .get(&rs1.name_any())
        .await?;
    assert_eq!(rs1_now.spec.unwrap().replicas, Some(0));
    let all = pods.list(&ListParams::default()).await?.items;
    assert_eq!(rs_of(&all, &rs1).len(), 0, "old pods are gone");
    let (ok, out) = env.kubectl(&[
        "-n",
        NS,
        "rollout",
        "status",
        "deployment/app",
        "--timeout=60s",
    ])?;
    assert!(ok && out.contains("successfully rolled out"), "{out}");
    let (ok, out) = env.kubectl(&["-n", NS, "rollout", "history", "deployment/app"])?;
    assert!(ok, "{out}");
    let revs: Vec<&str> = out
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revs, vec!["1", "2"], "{out}");
    let events = Api::<Event>::namespaced(c.clone(), NS)
        .list(&ListParams::default())
        .await?
        .items;
    let scaled: Vec<String> = events
        .iter()
        .filter(|e| e.reason.as_deref() == Some("ScalingReplicaSet"))
        .filter_map(|e| e.message.clone())
        .collect();
    assert!(
        scaled
            .iter()
            .any(|m| m == &format!("Scaled up replica set {} from 0 to 4", rs1.name_any())),
        "{scaled:?}"
    );
    assert!(
        scaled
            .iter()
            .any(|m| m.starts_with(&format!("Scaled down replica set {} from ", rs1.name_any()))),
        "{scaled:?}"
    );

    // Rollback by patching the template back: the first RS comes back as revision 3.
    dapi.patch(
        "app",
        &PatchParams::default(),
        &Patch::Strategic(&set_image("img:v1")),
    )
    .await?;
    let back = rolled_out(&c, "app", 6, "img:v1").await?;
    assert_eq!(
        back.name_any(),
        rs1.name_any(),
        "the old replica set is reused"
    );
    assert_eq!(
        ann(&back, "deployment.kubernetes.io/revision").as_deref(),
        Some("3")
    );
    assert_eq!(
        ann(&back, "deployment.kubernetes.io/revision-history").as_deref(),
        Some("1")
    );
    let d = dapi.get("app").await?;
    assert_eq!(
        d.annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("3")
    );

    // kubectl rollout undo goes back to revision 2's template.
    let (ok, out) = env.kubectl(&["-n", NS, "rollout", "undo", "deployment/app"])?;
    assert!(ok, "{out}");
    let again = rolled_out(&c, "app", 6, "img:v2").await?;
    assert_eq!(again.name_any(), rs2.name_any());
    assert_eq!(
        ann(&again, "deployment.kubernetes.io/revision").as_deref(),
        Some("4")
    );
    let (ok, out) = env.kubectl(&[
        "-n",
        NS,
        "rollout",
        "status",
        "deployment/app",
        "--timeout=60s",
    ])?;
    assert!(ok && out.contains("successfully rolled out"), "{out}");
    let (ok, out) = env.kubectl(&["-n", NS, "rollout", "history", "deployment/app"])?;
    assert!(ok, "{out}");
    let revs: Vec<&str> = out
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revs, vec!["3", "4"], "{out}");
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recreate_never_overlaps_old_and_new_pods() -> Result<()> {
    let env = start(Some(Duration::from_millis(100))).await?;
    let c = env.client.clone();
    let dapi: Api<Deployment> = Api::namespaced(c.clone(), NS);
    dapi.create(
        &PostParams::default(),
        &deployment("rec", 3, "img:v1", serde_json::json!({"type": "Recreate"}))?,
    )
    .await?;
    let rs1 = rolled_out(&c, "rec", 3, "img:v1").await?;
    let overlap = Arc::new(Mutex::new(false));
    let (mon_stop, mon_rx) = watch::channel(false);
    let monitor = {
        let c = c.clone();
        let overlap = overlap.clone();
        let rs1 = rs1.clone();
        tokio::spawn(async move {
            let pods: Api<Pod> = Api::namespaced(c, NS);
            while !*mon_rx.borrow() {
                if let Ok(all) = pods.list(&ListParams::default()).await {
                    let old = rs_of(&all.items, &rs1).len();
                    let other = all.items.len() - old;
                    if old > 0 && other > 0 {
                        *overlap.lock().unwrap() = true;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "img:v2"}]}}}});
    dapi.patch("rec", &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    let rs2 = rolled_out(&c, "rec", 3, "img:v2").await?;
    let _ = mon_stop.send(true);
    monitor.await?;
    assert!(!*overlap.lock().unwrap(), "old and new pods ran together");
    assert_ne!(rs1.name_any(), rs2.name_any());
    let (ok, out) = env.kubectl(&[
        "-n",
        NS,
        "rollout",
        "status",
        "deployment/rec",
        "--timeout=60s",
    ])?;
    assert!(ok && out.contains("successfully rolled out"), "{out}");
    env.shutdown().await;
    Ok(())
}

async fn pods_with_app(c: &kube::Client, app: &str) -> Result<Vec<Pod>> {
    let all = Api::<Pod>::namespaced(c.clone(), NS)
        .list(&ListParams::default())
        .await?
        .items;
    Ok(all
        .into_iter()
        .filter(|p| p.labels().get("app").map(String::as_str) == Some(app))
        .collect())
}

async fn rss_with_app(c: &kube::Client, app: &str) -> Result<Vec<ReplicaSet>> {
    let all = Api::<ReplicaSet>::namespaced(c.clone(), NS)
        .list(&ListParams::default())
        .await?
        .items;
    Ok(all
        .into_iter()
        .filter(|p| p.labels().get("app").map(String::as_str) == Some(app))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_collection_background_foreground_orphan() -> Result<()> {
    let env = start(Some(Duration::from_millis(50))).await?;
    let c = env.client.clone();
    let dapi: Api<Deployment> = Api::namespaced(c.clone(), NS);
    let strategy = serde_json::json!({"type": "RollingUpdate"});
    for name in ["bg", "fg", "orph"] {
        dapi.create(
            &PostParams::default(),
            &deployment(name, 2, "img:v1", strategy.clone())?,
        )
        .await?;
    }
    for name in ["bg", "fg", "orph"] {
        rolled_out(&c, name, 2, "img:v1").await?;
    }

    // Background: the API server deletes only the Deployment; the collector the rest.
    dapi.delete("bg", &DeleteParams::background()).await?;
    eventually(
        "bg's replica set and pods collected",
        Duration::from_secs(30),
        || async {
            Ok((rss_with_app(&c, "bg").await?.is_empty()
                && pods_with_app(&c, "bg").await?.is_empty())
            .then_some(()))
        },
    )
    .await?;

    // Foreground: the Deployment stays (finalizer) until its dependents are gone.
    dapi.delete("fg", &DeleteParams::foreground()).await?;
    let d = dapi.get_opt("fg").await?;
    if let Some(d) = d {
        assert!(d.metadata.deletion_timestamp.is_some());
    }
    eventually(
        "fg and dependents gone",
        Duration::from_secs(30),
        || async {
            let gone = dapi.get_opt("fg").await?.is_none();
            let rss = rss_with_app(&c, "fg").await?;
            let pods = pods_with_app(&c, "fg").await?;
            if !gone {
                // While the owner exists its pods/RS may exist; once gone they must be gone.
                return Ok(None);
            }
            if !rss.is_empty() || !pods.is_empty() {
                bail!(
                    "deployment removed before its dependents: {} rs, {} pods",
                    rss.len(),
                    pods.len()
                );
            }
            Ok(Some(()))
        },
    )
    .await?;

    // Orphan: dependents stay, without the ownerReference.
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..Default::default()
    };
    dapi.delete("orph", &dp).await?;
    eventually(
        "orph gone, its replica set orphaned",
        Duration::from_secs(30),
        || async {
            if dapi.get_opt("orph").await?.is_some() {
                return Ok(None);
            }
            let rss = rss_with_app(&c, "orph").await?;
            Ok((rss.len() == 1 && rss[0].owner_references().is_empty()).then_some(()))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_with_app(&c, "orph").await?;
    assert_eq!(rss.len(), 1, "orphaned replica set kept");
    assert_eq!(pods_with_app(&c, "orph").await?.len(), 2, "its pods kept");
    // Foreground deletion of the now-orphan ReplicaSet takes its pods first.
    Api::<ReplicaSet>::namespaced(c.clone(), NS)
        .delete(&rss[0].name_any(), &DeleteParams::foreground())
        .await?;
    eventually(
        "orphaned replica set and its pods gone",
        Duration::from_secs(30),
        || async {
            Ok((rss_with_app(&c, "orph").await?.is_empty()
                && pods_with_app(&c, "orph").await?.is_empty())
            .then_some(()))
        },
    )
    .await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paused_deployment_waits_and_deadline_is_reported() -> Result<()> {
    // No kubelet: pods never become ready.
    let env = start(None).await?;
    let c = env.client.clone();
    let dapi: Api<Deployment> = Api::namespaced(c.clone(), NS);
    let mut d = deployment(
        "stuck",
        2,
        "img:v1",
        serde_json::json!({"type": "RollingUpdate"}),
    )?;
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(2);
    d.spec.as_mut().unwrap().paused = Some(true);
    dapi.create(&PostParams::default(), &d).await?;
    let cond = |d: &Deployment, t: &str| {
        d.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == t).cloned())
    };
    eventually("paused condition", Duration::from_secs(20), || async {
        let d = dapi.get("stuck").await?;
        Ok(cond(&d, "Progressing")
            .filter(|c| c.reason.as_deref() == Some("DeploymentPaused") && c.status == "Unknown"))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let d = dapi.get("stuck").await?;
    assert!(
        owned_rss(&c, &d).await?.is_empty(),
        "a paused deployment does not roll out"
    );

    // Resume (kubectl rollout resume): a replica set appears, pods never get ready, the
    // deadline passes.
    let (ok, out) = env.kubectl(&["-n", NS, "rollout", "resume", "deployment/stuck"])?;
    assert!(ok, "{out}");
    eventually(
        "progress deadline exceeded",
        Duration::from_secs(30),
        || async {
            let d = dapi.get("stuck").await?;
            Ok(cond(&d, "Progressing").filter(|c| {
                c.reason.as_deref() == Some("ProgressDeadlineExceeded") && c.status == "False"
            }))
        },
    )
    .await?;
    let d = dapi.get("stuck").await?;
    let st = d.status.clone().unwrap();
    assert_eq!(
        (
            st.replicas,
            st.updated_replicas,
            st.available_replicas,
            st.unavailable_replicas
        ),
        (Some(2), Some(2), Some(0), Some(2))
    );
    let avail = cond(&d, "Available").unwrap();
    assert_eq!(
        (avail.status.as_str(), avail.reason.as_deref()),
        ("False", Some("MinimumReplicasUnavailable"))
    );
    let (ok, out) = env.kubectl(&[
        "-n",
        NS,
        "rollout",
        "status",
        "deployment/stuck",
        "--timeout=20s",
    ])?;
    assert!(
        !ok && out.contains("exceeded its progress deadline"),
        "{out}"
    );

    // kubectl scale goes through the scale subresource; the ReplicaSet follows.
    let (ok, out) = env.kubectl(&["-n", NS, "scale", "deployment/stuck", "--replicas=3"])?;
    assert!(ok, "{out}");
    eventually("3 pods", Duration::from_secs(20), || async {
        Ok((pods_with_app(&c, "stuck").await?.len() == 3).then_some(()))
    })
    .await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicaset_available_after_min_ready_seconds() -> Result<()> {
    let env = start(Some(Duration::from_millis(50))).await?;
    let api: Api<ReplicaSet> = Api::namespaced(env.client.clone(), NS);
    let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "slow", "namespace": NS},
        "spec": {"replicas": 2, "minReadySeconds": 3, "selector": {"matchLabels": {"app": "slow"}},
                 "template": {"metadata": {"labels": {"app": "slow"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))?;
    api.create(&PostParams::default(), &rs).await?;
    let t0 = Instant::now();
    eventually(
        "2 ready, none available yet",
        Duration::from_secs(20),
        || async {
            let s = api.get("slow").await?.status.unwrap_or_default();
            Ok((s.ready_replicas == Some(2) && s.available_replicas == Some(0)).then_some(()))
        },
    )
    .await?;
    eventually("2 available", Duration::from_secs(20), || async {
        let s = api.get("slow").await?.status.unwrap_or_default();
        Ok((s.available_replicas == Some(2)).then_some(()))
    })
    .await?;
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "available too early: {:?}",
        t0.elapsed()
    );
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_collection_of_job_pods_with_kubectl_cascade() -> Result<()> {
    let env = start(None).await?;
    let c = env.client.clone();
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(c.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(c.clone(), NS);
    for name in ["j-bg", "j-fg", "j-orph"] {
        let job: k8s_openapi::api::batch::v1::Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": NS},
            "spec": {"template": {"metadata": {"labels": {"app": name}},
                     "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}
        }))?;
        let job = jobs.create(&PostParams::default(), &job).await?;
        // Stand-in for the Job controller: one pod owned by the Job.
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{name}-pod"), "namespace": NS, "labels": {"app": name},
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                              "uid": job.uid(), "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
    }
    // A pod whose owner never existed (a stale uid) is collected too.
    let ghost: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "ghost", "namespace": NS,
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j-bg",
                                          "uid": "00000000-0000-0000-0000-000000000000", "controller": true}]},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))?;
    pods.create(&PostParams::default(), &ghost).await?;
    // A pod with one live and one vanished owner keeps only the live reference.
    let live = jobs.get("j-bg").await?;
    let half: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "half", "namespace": NS,
                     "ownerReferences": [
                         {"apiVersion": "batch/v1", "kind": "Job", "name": "gone", "uid": "11111111-0000-0000-0000-000000000000"},
                         {"apiVersion": "batch/v1", "kind": "Job", "name": "j-bg", "uid": live.uid()}]},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))?;
    pods.create(&PostParams::default(), &half).await?;
    eventually("ghost collected", Duration::from_secs(20), || async {
        Ok(pods.get_opt("ghost").await?.is_none().then_some(()))
    })
    .await?;
    eventually(
        "dangling reference dropped",
        Duration::from_secs(20),
        || async {
            let p = pods.get("half").await?;
            Ok(
                (p.owner_references().len() == 1 && p.owner_references()[0].name == "j-bg")
                    .then_some(()),
            )
        },
    )
    .await?;
    assert!(
        pods.get_opt("j-bg-pod").await?.is_some(),
        "a pod of a live owner stays"
    );

    for (name, cascade) in [
        ("j-bg", "background"),
        ("j-fg", "foreground"),
        ("j-orph", "orphan"),
    ] {
        let (ok, out) = env.kubectl(&[
            "-n",
            NS,
            "delete",
            &format!("job/{name}"),
            &format!("--cascade={cascade}"),
            "--wait=false",
        ])?;
        assert!(ok, "{out}");
    }
    eventually("jobs gone", Duration::from_secs(20), || async {
        let left = jobs.list(&ListParams::default()).await?.items.len();
        Ok((left == 0).then_some(()))
    })
    .await?;
    eventually(
        "background and foreground pods gone",
        Duration::from_secs(20),
        || async {
            Ok((pods.get_opt("j-bg-pod").await?.is_none()
                && pods.get_opt("j-fg-pod").await?.is_none())
            .then_some(()))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let kept = pods
        .get_opt("j-orph-pod")
        .await?
        .context("orphaned pod kept")?;
    assert!(
        kept.owner_references().is_empty(),
        "orphaned pod lost its owner reference"
    );
    env.shutdown().await;
    Ok(())
}
