//! The ServiceLB status controller, after k3s's `servicelb` (Klipper LB): a `LoadBalancer`
//! Service is served on the node ports of the cluster's nodes, and its
//! `status.loadBalancer.ingress` lists those nodes' addresses, so `kubectl get svc`
//! shows them as EXTERNAL-IP.
//!
//! The nodes chosen are the Ready ones (`Ready` condition `True`) with an `InternalIP`:
//! all of them, or, when any node carries the label [`ENABLE_LB_LABEL`], only those
//! whose label is `true` (k3s's rule). The ingress is one `{"ip": IP, "ipMode": "VIP"}`
//! per node, sorted by address and without duplicates, rewritten when the node set
//! changes and removed when the Service stops being a `LoadBalancer`. Services with a
//! `spec.loadBalancerClass` belong to another implementation and are left alone. k3s
//! prefers a node's `ExternalIP`; this controller uses the `InternalIP` only. It writes
//! status only (`services/status`, a merge patch) — the node agents' proxy is what
//! actually answers on the node ports. Start it with [`run`].

use super::context::Context;
use super::runtime::{self, Action, Controller, ObjectKey};
use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

/// The node label that restricts ServiceLB to the nodes labelled `true`.
pub const ENABLE_LB_LABEL: &str = "svccontroller.k3s.cattle.io/enablelb";

/// What can go wrong in a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum ServiceLbError {
    /// An API call failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

fn ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn internal_ip(node: &Node) -> Option<String> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .find(|a| a.type_ == "InternalIP" && !a.address.is_empty())
        .map(|a| a.address.clone())
}

/// The addresses a LoadBalancer Service is published on, given every node: the Ready
/// nodes' InternalIPs (only the nodes labelled [`ENABLE_LB_LABEL`]`=true` when any node
/// has the label), sorted by address, without duplicates.
pub fn ingress_ips<'n>(nodes: impl IntoIterator<Item = &'n Node> + Clone) -> Vec<String> {
    fn label(n: &Node) -> Option<&str> {
        n.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(ENABLE_LB_LABEL))
            .map(String::as_str)
    }
    let restricted = nodes.clone().into_iter().any(|n| label(n).is_some());
    let mut ips: Vec<String> = nodes
        .into_iter()
        .filter(|n| !restricted || label(n) == Some("true"))
        .filter(|n| ready(n))
        .filter_map(internal_ip)
        .collect();
    // By address (numerically; anything unparsable after, by text).
    ips.sort_by(|a, b| match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    });
    ips.dedup();
    ips
}

/// Whether this controller looks after the Service's status: no `loadBalancerClass`.
pub fn ours(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.load_balancer_class.as_deref())
        .is_none_or(str::is_empty)
}

fn is_load_balancer(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
}

/// The ingress the Service has now, as `(ip, ipMode)` pairs (hostnames as `ip`).
fn current(svc: &Service) -> Vec<(String, String)> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|list| {
            list.iter()
                .map(|i| {
                    (
                        i.ip.clone()
                            .or_else(|| i.hostname.clone())
                            .unwrap_or_default(),
                        i.ip_mode.clone().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The controller's state: its caches.
pub struct ServiceLb {
    ctx: Context,
    services: Store<Service>,
    nodes: Store<Node>,
}

impl ServiceLb {
    /// One reconcile of the Service `key`.
    pub async fn reconcile(&self, key: &ObjectKey) -> Result<Action, ServiceLbError> {
        let Some(svc) = self.services.get(&key.to_ref()) else {
            return Ok(Action::Done);
        };
        if !ours(&svc) {
            return Ok(Action::Done);
        }
        let want: Vec<String> = if is_load_balancer(&svc) {
            let nodes = self.nodes.state();
            ingress_ips(nodes.iter().map(|n| n.as_ref()))
        } else {
            Vec::new()
        };
        let have = current(&svc);
        let same = have.len() == want.len()
            && have
                .iter()
                .zip(&want)
                .all(|((ip, mode), w)| ip == w && mode == "VIP");
        if same {
            return Ok(Action::Done);
        }
        let ingress = if want.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::json!(want
                .iter()
                .map(|ip| serde_json::json!({"ip": ip, "ipMode": "VIP"}))
                .collect::<Vec<_>>())
        };
        let patch = serde_json::json!({"status": {"loadBalancer": {"ingress": ingress}}});
        let api: Api<Service> = Api::namespaced(self.ctx.client.clone(), key.ns());
        match api
            .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(Action::Done),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}

/// Runs the ServiceLB controller until `shutdown` completes: a Service is reconciled when
/// it changes, every LoadBalancer Service (and any with an ingress) when a node does.
pub async fn run(ctx: Context, workers: usize, shutdown: impl Future<Output = ()> + Send) {
    let client = ctx.client.clone();
    let services = runtime::watch(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let nodes = runtime::watch(Api::<Node>::all(client), watcher::Config::default());
    let state = Arc::new(ServiceLb {
        ctx: ctx.clone(),
        services: services.store.clone(),
        nodes: nodes.store.clone(),
    });
    let svc_store = services.store.clone();
    Controller::<ServiceLbError>::new("servicelb", ctx)
        .watches(services, |s| vec![ObjectKey::of(s.as_ref())])
        .watches(nodes, move |_| {
            svc_store
                .state()
                .iter()
                .filter(|s| is_load_balancer(s) || !current(s).is_empty())
                .map(|s| ObjectKey::of(s.as_ref()))
                .collect()
        })
        .workers(workers)
        .run(
            state,
            |key, st| async move { st.reconcile(&key).await },
            shutdown,
        )
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeCondition, NodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, ip: &str, is_ready: bool, label: Option<&str>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: label.map(|v| [(ENABLE_LB_LABEL.to_string(), v.to_string())].into()),
                ..Default::default()
            },
            spec: None,
            status: Some(NodeStatus {
                addresses: Some(vec![NodeAddress {
                    type_: "InternalIP".into(),
                    address: ip.into(),
                }]),
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: if is_ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn ready_nodes_sorted_by_address() {
        let nodes = [
            node("a", "10.0.0.10", true, None),
            node("b", "10.0.0.9", true, None),
            node("c", "10.0.0.11", false, None),
            node("d", "10.0.0.9", true, None),
        ];
        assert_eq!(ingress_ips(nodes.iter()), ["10.0.0.9", "10.0.0.10"]);
    }

    #[test]
    fn the_enablelb_label_restricts_the_nodes() {
        let nodes = [
            node("a", "10.0.0.1", true, Some("true")),
            node("b", "10.0.0.2", true, None),
            node("c", "10.0.0.3", true, Some("false")),
        ];
        assert_eq!(ingress_ips(nodes.iter()), ["10.0.0.1"]);
        assert!(ingress_ips(nodes[1..].iter()).is_empty());
        assert_eq!(ingress_ips(nodes[1..2].iter()), ["10.0.0.2"]);
    }
}
