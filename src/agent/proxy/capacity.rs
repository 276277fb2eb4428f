//! The predicted spare CPU of every node, for Services in [`Mode::Predicted`]
//! (`plimsoll.io/load-balancing: predicted`).
//!
//! spare(node) = allocatable CPU of the Node (`status.allocatable.cpu`, else
//! `capacity.cpu`) − the predicted peak CPU of the pods the usage history places on
//! that node. Predictions come from the API server's usage history
//! ([`fetch_history`]) through a [`UsagePredictor`], as the usage-aware scheduler makes
//! them; a pod without an estimate of its own uses its workload's, and a pod with
//! neither (or without usage reported yet) counts as zero. While no pod has an estimate
//! the result is empty, and the predicted mode acts as least connections.
//!
//! `refresh_loop` recomputes it every refresh, but only while some Service asks for
//! the predicted mode (the history and the model cost the API server and this node
//! CPU). It never changes anything but the value it publishes.
//!
//! [`Mode::Predicted`]: super::balancer::Mode::Predicted

use super::balancer::{NodeCapacities, NodeCpu};
use crate::model::Quantity;
use crate::server::scheduling::usage::{fetch_history, Predictions, UsageModel, UsagePredictor};
use crate::server::usage::UsageHistory;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::reflector::Store;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A Node's allocatable CPU in millicores (`allocatable.cpu`, else `capacity.cpu`).
pub fn allocatable_milli(node: &Node) -> Option<u64> {
    let status = node.status.as_ref()?;
    [status.allocatable.as_ref(), status.capacity.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|m| m.get("cpu"))
        .and_then(|q| Quantity::parse_milli(&q.0).ok())
}

/// Every node's allocatable and predicted CPU (see the module docs); empty when
/// `predictions` has no pod estimate.
pub fn node_capacities(
    nodes: &[Arc<Node>],
    history: &UsageHistory,
    predictions: &Predictions,
) -> NodeCapacities {
    if predictions.by_uid.is_empty() {
        return NodeCapacities::new();
    }
    let mut out: NodeCapacities = nodes
        .iter()
        .filter_map(|n| {
            let name = n.metadata.name.clone()?;
            let allocatable_milli = allocatable_milli(n)?;
            Some((
                name,
                NodeCpu {
                    allocatable_milli,
                    predicted_milli: 0,
                },
            ))
        })
        .collect();
    for pod in &history.pods {
        let Some(cpu) = out.get_mut(&pod.node) else {
            continue;
        };
        let owners: Vec<_> = pod.owner.iter().cloned().collect();
        if let Some((estimate, _)) = predictions.for_pod(&pod.uid, &pod.namespace, &owners) {
            cpu.predicted_milli = cpu.predicted_milli.saturating_add(estimate.cpu_milli());
        }
    }
    out
}

/// Publishes [`node_capacities`] on `tx` every `refresh` while `wanted` is set, until
/// every receiver is gone. A failed read of the history is logged at debug and keeps
/// the last value (an API server without usage history leaves the predicted mode at
/// least connections).
pub(super) async fn refresh_loop(
    client: kube::Client,
    nodes: Store<Node>,
    refresh: Duration,
    model: UsageModel,
    wanted: Arc<AtomicBool>,
    tx: watch::Sender<Arc<NodeCapacities>>,
) {
    let mut tick = tokio::time::interval(refresh.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut predictor = Some(UsagePredictor::new(model));
    let mut failing = false;
    loop {
        tick.tick().await;
        if tx.is_closed() {
            return;
        }
        if !wanted.load(Ordering::Relaxed) {
            continue;
        }
        let history = match fetch_history(&client).await {
            Ok(h) => h,
            Err(e) => {
                if !failing {
                    tracing::debug!(error = %e, "proxy: usage history not read");
                }
                failing = true;
                continue;
            }
        };
        failing = false;
        let Some(mut p) = predictor.take() else {
            return;
        };
        let done = tokio::task::spawn_blocking(move || {
            let out = p.predict(&history);
            (p, history, out)
        })
        .await;
        let (p, history, predictions) = match done {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "proxy: usage prediction failed");
                predictor = Some(UsagePredictor::new(model));
                continue;
            }
        };
        predictor = Some(p);
        let caps = node_capacities(&nodes.state(), &history, &predictions);
        if **tx.borrow() != caps {
            tracing::debug!(nodes = caps.len(), "proxy: predicted node CPU changed");
            let _ = tx.send(Arc::new(caps));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::scheduling::usage::{Estimate, Method};
    use crate::server::usage::{PodHistory, WorkloadOwner};
    use serde_json::json;

    fn node(name: &str, allocatable: Option<&str>, capacity: &str) -> Arc<Node> {
        let mut status = json!({"capacity": {"cpu": capacity}});
        if let Some(a) = allocatable {
            status["allocatable"] = json!({"cpu": a});
        }
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name}, "status": status})).unwrap(),
        )
    }

    fn pod(uid: &str, node: &str, owner: Option<&str>) -> PodHistory {
        PodHistory {
            namespace: "ns".into(),
            name: uid.into(),
            uid: uid.into(),
            node: node.into(),
            owner: owner.map(|o| WorkloadOwner {
                kind: "Deployment".into(),
                name: o.into(),
            }),
            samples: Vec::new(),
        }
    }

    fn est(cpu: f64) -> Estimate {
        Estimate {
            cpu,
            memory: 0,
            method: Method::Window,
        }
    }

    #[test]
    fn spare_is_allocatable_minus_the_predictions_of_the_node_pods() {
        let nodes = [
            node("a", Some("3500m"), "4"),
            node("b", None, "2"),
            node("c", Some("lots"), "x"),
        ];
        let history = UsageHistory {
            pods: vec![
                pod("p1", "a", None),
                pod("p2", "a", Some("web")),
                pod("p3", "b", Some("web")),
                pod("p4", "gone", None),
                pod("p5", "b", None),
            ],
        };
        let mut predictions = Predictions::default();
        predictions.by_uid.insert("p1".into(), est(0.5));
        predictions.by_uid.insert("p2".into(), est(1.2));
        predictions.by_uid.insert("p4".into(), est(9.0));
        predictions.by_workload.insert(
            (
                "ns".into(),
                WorkloadOwner {
                    kind: "Deployment".into(),
                    name: "web".into(),
                },
            ),
            est(1.2),
        );
        let caps = node_capacities(&nodes, &history, &predictions);
        assert_eq!(
            caps,
            [
                (
                    "a".to_string(),
                    NodeCpu {
                        allocatable_milli: 3500,
                        predicted_milli: 1700
                    }
                ),
                (
                    "b".to_string(),
                    NodeCpu {
                        allocatable_milli: 2000,
                        predicted_milli: 1200
                    }
                ),
            ]
            .into()
        );
        assert_eq!(caps["a"].spare_milli(), 1800);
        // No estimate at all: nothing predicted.
        assert!(node_capacities(&nodes, &history, &Predictions::default()).is_empty());
    }
}
