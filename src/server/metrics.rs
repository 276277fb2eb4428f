//! The control plane's Prometheus metrics: one registry for the API server, the
//! scheduling loop, the controllers and leader election, encoded as OpenMetrics text on
//! scrape (`GET /metrics` on the API server, or [`serve_metrics`] for a process without
//! one).
//!
//! This module owns the metric families, their names and their label types; it does not
//! decide when they change — the API server's routes and watches, the scheduling loop and
//! the controllers update the fields they are handed. Names follow kube's where kube has
//! the metric (`apiserver_request_total`, `scheduler_pending_pods`, `workqueue_depth`,
//! `leader_election_master_status`, …); Plimsoll's own are prefixed `plimsoll_`.
//! Counters are registered without their `_total` suffix: the OpenMetrics encoder adds it.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// The content type of [`Metrics::encode`]'s text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// kube-apiserver's buckets for `apiserver_request_duration_seconds`.
const REQUEST_DURATION_BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// Every metric of the control plane, and the registry they are encoded from.
///
/// Share one `Arc<Metrics>` between the API server (see
/// `server::api::Prepared::metrics`), the scheduling loop and the controllers of one
/// process; each part updates its own field.
pub struct Metrics {
    registry: Registry,
    /// The API server's requests, stored objects and watches.
    pub api: ApiMetrics,
    /// The scheduling loop's queue, attempts and latencies.
    pub scheduler: SchedulerMetrics,
    /// The controllers' work queues and reconciles.
    pub controllers: ControllerMetrics,
    /// Leader election.
    pub leader: LeaderMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh registry with every family registered (and no samples yet).
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::default();
        let api = ApiMetrics::default();
        let scheduler = SchedulerMetrics::default();
        let controllers = ControllerMetrics::default();
        let leader = LeaderMetrics::default();
        api.register(&mut registry);
        scheduler.register(&mut registry);
        controllers.register(&mut registry);
        leader.register(&mut registry);
        Arc::new(Metrics {
            registry,
            api,
            scheduler,
            controllers,
            leader,
        })
    }

    /// Every metric as OpenMetrics text (ending in `# EOF`), as served on `/metrics`
    /// with [`OPENMETRICS_CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Labels of `apiserver_request_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabel {
    /// The verb as kube reports it: `GET`, `LIST`, `WATCH`, `POST`, `PUT`, `PATCH`,
    /// `DELETE`, `DELETECOLLECTION`; for paths that are not resources, the HTTP method.
    pub verb: String,
    /// The resource's plural (`pods`, `deployments`); empty for non-resource paths.
    pub resource: String,
    /// The HTTP status code.
    pub code: String,
}

/// Labels of `apiserver_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbResourceLabel {
    /// The verb, as in [`RequestLabel::verb`].
    pub verb: String,
    /// The resource, as in [`RequestLabel::resource`].
    pub resource: String,
}

/// The label of per-resource gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabel {
    /// The resource: the plural, qualified by its group outside the core group as kube
    /// names it in `apiserver_storage_objects` (`pods`, `deployments.apps`); the plural
    /// alone in `apiserver_registered_watchers`.
    pub resource: String,
}

impl ResourceLabel {
    /// The label for `resource`.
    pub fn new(resource: &str) -> Self {
        ResourceLabel {
            resource: resource.to_string(),
        }
    }
}

/// The API server's metrics.
#[derive(Debug)]
pub struct ApiMetrics {
    /// `apiserver_request_total{verb,resource,code}`: requests answered.
    pub requests: Family<RequestLabel, Counter>,
    /// `apiserver_request_duration_seconds{verb,resource}`: time to the response's
    /// headers, for every verb but `WATCH` (a watch lasts as long as its client keeps
    /// it; open watches are `apiserver_registered_watchers`).
    pub request_duration: Family<VerbResourceLabel, Histogram, fn() -> Histogram>,
    /// `apiserver_storage_objects{resource}`: objects in the store, per resource.
    pub storage_objects: Family<ResourceLabel, Gauge>,
    /// `apiserver_registered_watchers{resource}`: watches open now, per resource.
    pub registered_watchers: Family<ResourceLabel, Gauge>,
}

fn request_duration_histogram() -> Histogram {
    Histogram::new(REQUEST_DURATION_BUCKETS)
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(request_duration_histogram),
            storage_objects: Family::default(),
            registered_watchers: Family::default(),
        }
    }
}

impl ApiMetrics {
    /// Registers the families in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, resource and HTTP response code",
            self.requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb and resource (WATCH excluded)",
            self.request_duration.clone(),
        );
        registry.register(
            "apiserver_storage_objects",
            "Number of stored objects at the time of last check split by kind",
            self.storage_objects.clone(),
        );
        registry.register(
            "apiserver_registered_watchers",
            "Number of currently registered watchers for a given resource",
            self.registered_watchers.clone(),
        );
    }

    /// Counts one answered request, and its duration unless it is a `WATCH`.
    pub fn observe_request(&self, verb: &str, resource: &str, code: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabel {
                verb: verb.to_string(),
                resource: resource.to_string(),
                code: code.to_string(),
            })
            .inc();
        if verb != "WATCH" {
            self.request_duration
                .get_or_create(&VerbResourceLabel {
                    verb: verb.to_string(),
                    resource: resource.to_string(),
                })
                .observe(elapsed.as_secs_f64());
        }
    }

    /// Counts a watch of `resource` as open until the guard is dropped.
    pub fn watcher(&self, resource: &str) -> WatcherGuard {
        let gauge = self
            .registered_watchers
            .get_or_create_owned(&ResourceLabel::new(resource));
        gauge.inc();
        WatcherGuard(gauge)
    }
}

/// An open watch, counted in `apiserver_registered_watchers` until dropped.
#[derive(Debug)]
pub struct WatcherGuard(Gauge);

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The label of `scheduler_schedule_attempts_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `scheduled`, `unschedulable` or `error`.
    pub result: String,
}

/// The label of `plimsoll_scheduler_placements_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabel {
    /// The placement policy that placed the pods (`best-fit`, `milp`, …).
    pub policy: String,
}

/// The scheduling loop's metrics.
#[derive(Debug)]
pub struct SchedulerMetrics {
    /// `scheduler_pending_pods`: pods waiting to be scheduled.
    pub pending_pods: Gauge,
    /// `scheduler_schedule_attempts_total{result}`: attempts to schedule a pod.
    pub attempts: Family<ResultLabel, Counter>,
    /// `scheduler_pod_scheduling_duration_seconds`: from a pod's creation to its
    /// binding (1 ms to about 65 s, doubling).
    pub e2e_latency: Histogram,
    /// `plimsoll_scheduler_placements_total{policy}`: pods placed, per policy.
    pub placements: Family<PolicyLabel, Counter>,
    /// `plimsoll_milp_gap_ratio`: the relative MIP gap of the last MILP solve.
    pub milp_gap: Gauge<f64, AtomicU64>,
    /// `plimsoll_milp_solve_duration_seconds`: MILP solve times (10 ms to about 330 s).
    pub milp_solve_seconds: Histogram,
    /// `scheduler_preemption_victims_total`: pods evicted by preemption.
    pub preemption_victims: Counter,
    /// `plimsoll_scheduler_batch_size`: pods placed together in one round (1 to 8192).
    pub batch_size: Histogram,
    /// `plimsoll_scheduler_usage_predicted_pods`: pods (bound or pending) charged their
    /// predicted usage instead of their requests (`--usage-aware`; 0 otherwise).
    pub usage_predicted_pods: Gauge,
}

impl Default for SchedulerMetrics {
    fn default() -> Self {
        SchedulerMetrics {
            pending_pods: Gauge::default(),
            attempts: Family::default(),
            e2e_latency: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            placements: Family::default(),
            milp_gap: Gauge::default(),
            milp_solve_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            preemption_victims: Counter::default(),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            usage_predicted_pods: Gauge::default(),
        }
    }
}

impl SchedulerMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "scheduler_pending_pods",
            "Number of pending pods",
            self.pending_pods.clone(),
        );
        registry.register(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result",
            self.attempts.clone(),
        );
        registry.register(
            "scheduler_pod_scheduling_duration_seconds",
            "Latency from a pod's creation to its binding",
            self.e2e_latency.clone(),
        );
        registry.register(
            "plimsoll_scheduler_placements",
            "Pods placed, by placement policy",
            self.placements.clone(),
        );
        registry.register(
            "plimsoll_milp_gap_ratio",
            "Relative MIP gap of the last MILP solve",
            self.milp_gap.clone(),
        );
        registry.register(
            "plimsoll_milp_solve_duration_seconds",
            "MILP solve duration",
            self.milp_solve_seconds.clone(),
        );
        registry.register(
            "scheduler_preemption_victims",
            "Pods evicted by preemption",
            self.preemption_victims.clone(),
        );
        registry.register(
            "plimsoll_scheduler_batch_size",
            "Pods placed together in one scheduling round",
            self.batch_size.clone(),
        );
        registry.register(
            "plimsoll_scheduler_usage_predicted_pods",
            "Pods charged their predicted usage instead of their requests",
            self.usage_predicted_pods.clone(),
        );
    }
}

/// Label of controller metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    /// Controller name (`deployment`, `replicaset`, `job`, …).
    pub controller: String,
}

impl ControllerLabel {
    /// The label for `name`.
    pub fn new(name: &str) -> Self {
        ControllerLabel {
            controller: name.to_string(),
        }
    }
}

/// Controller metrics.
#[derive(Debug, Default)]
pub struct ControllerMetrics {
    /// Keys waiting in the work queue (ready or delayed), per controller.
    pub queue_depth: Family<ControllerLabel, Gauge>,
    /// Reconciles run, per controller.
    pub reconciles: Family<ControllerLabel, Counter>,
    /// Reconciles that returned an error, per controller.
    pub reconcile_errors: Family<ControllerLabel, Counter>,
}

impl ControllerMetrics {
    /// Registers the families in `registry` (`workqueue_depth`,
    /// `plimsoll_controller_reconciles_total`, `plimsoll_controller_reconcile_errors_total`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "workqueue_depth",
            "Current depth of workqueue",
            self.queue_depth.clone(),
        );
        registry.register(
            "plimsoll_controller_reconciles",
            "Reconciles run",
            self.reconciles.clone(),
        );
        registry.register(
            "plimsoll_controller_reconcile_errors",
            "Reconciles that failed",
            self.reconcile_errors.clone(),
        );
    }
}

/// The label of leader-election metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaseLabel {
    /// The lease's name (`kube-scheduler`, `kube-controller-manager`, …).
    pub name: String,
}

/// Leader-election metrics.
#[derive(Debug, Default)]
pub struct LeaderMetrics {
    /// `leader_election_master_status{name}`: 1 while this process holds the lease.
    pub is_leader: Family<LeaseLabel, Gauge>,
}

impl LeaderMetrics {
    /// Registers the family in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "leader_election_master_status",
            "Whether this process is the leader of the named lease (1) or not (0)",
            self.is_leader.clone(),
        );
    }
}

/// Serves `GET /metrics` (OpenMetrics text, no TLS, no authentication) on `addr` until
/// `shutdown` resolves: for a `plimsoll scheduler` or `plimsoll controllers` process that
/// runs no API server. Bind it to loopback or a private network.
pub async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(metrics);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn scrape(
    axum::extract::State(metrics): axum::extract::State<Arc<Metrics>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        metrics.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn encodes_kube_names_with_labels() {
        let m = Metrics::new();
        m.api
            .observe_request("POST", "pods", 201, Duration::from_millis(3));
        m.api
            .observe_request("POST", "pods", 201, Duration::from_millis(30));
        m.api.observe_request("WATCH", "pods", 200, Duration::ZERO);
        m.api
            .storage_objects
            .get_or_create(&ResourceLabel::new("pods"))
            .set(7);
        m.scheduler.pending_pods.set(3);
        m.scheduler
            .attempts
            .get_or_create(&ResultLabel {
                result: "scheduled".into(),
            })
            .inc();
        m.scheduler.milp_gap.set(0.25);
        m.controllers
            .reconciles
            .get_or_create(&ControllerLabel::new("deployment"))
            .inc_by(4);
        m.leader
            .is_leader
            .get_or_create(&LeaseLabel {
                name: "plimsoll-scheduler".into(),
            })
            .set(1);
        let text = m.encode();
        for line in [
            "# TYPE apiserver_request counter",
            r#"apiserver_request_total{verb="POST",resource="pods",code="201"} 2"#,
            r#"apiserver_request_total{verb="WATCH",resource="pods",code="200"} 1"#,
            r#"apiserver_request_duration_seconds_count{verb="POST",resource="pods"} 2"#,
            r#"apiserver_request_duration_seconds_bucket{le="0.005",verb="POST",resource="pods"} 1"#,
            r#"apiserver_storage_objects{resource="pods"} 7"#,
            "scheduler_pending_pods 3",
            r#"scheduler_schedule_attempts_total{result="scheduled"} 1"#,
            "plimsoll_milp_gap_ratio 0.25",
            r#"plimsoll_controller_reconciles_total{controller="deployment"} 4"#,
            r#"leader_election_master_status{name="plimsoll-scheduler"} 1"#,
            "scheduler_preemption_victims_total 0",
            "scheduler_pod_scheduling_duration_seconds_count 0",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // A watch's duration is not a request latency.
        assert!(!text.contains(r#"apiserver_request_duration_seconds_count{verb="WATCH""#));
    }

    #[test]
    fn a_watcher_guard_counts_until_dropped() {
        let m = Metrics::new();
        let gauge = |m: &Metrics| {
            m.api
                .registered_watchers
                .get_or_create(&ResourceLabel::new("pods"))
                .get()
        };
        let a = m.api.watcher("pods");
        let b = m.api.watcher("pods");
        assert_eq!(gauge(&m), 2);
        drop(a);
        assert_eq!(gauge(&m), 1);
        drop(b);
        assert_eq!(gauge(&m), 0);
    }

    #[tokio::test]
    async fn serve_metrics_answers_a_scrape_and_stops() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let metrics = Metrics::new();
        metrics.scheduler.pending_pods.set(5);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_metrics(addr, metrics, async {
            let _ = stopped.await;
        }));
        let mut response = String::new();
        for _ in 0..100 {
            if let Ok(mut conn) = tokio::net::TcpStream::connect(addr).await {
                conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .await
                    .unwrap();
                conn.read_to_string(&mut response).await.unwrap();
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response.contains("content-type: application/openmetrics-text; version=1.0.0"),
            "{response}"
        );
        assert!(
            response.contains("\nscheduler_pending_pods 5\n"),
            "{response}"
        );
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve_metrics stops on shutdown")
            .unwrap()
            .unwrap();
    }
}
