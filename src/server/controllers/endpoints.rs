//! The Endpoints controller, after Kubernetes' `pkg/controller/endpoint`.
//!
//! For each Service with a selector it keeps an Endpoints object of the same name: the
//! selected pods with an IP that are not terminating (nor terminal) appear under
//! `addresses` when `Ready` (or when the Service publishes not-ready addresses) and under
//! `notReadyAddresses` otherwise, each with `ip`, `nodeName` and a `targetRef` to the pod.
//! Each service port's `targetPort` is a number, or a name looked up among the pod's
//! container ports (same protocol); a pod lacking a named port is left out of that port.
//! Pods with the same resolved ports share a subset (kube's `RepackSubsets`); addresses,
//! ports and subsets are sorted, and the object is only written when it differs.
//!
//! The controller labels what it writes with [`MANAGED_BY_LABEL`]: when a Service loses
//! its selector, Endpoints with that label are deleted and any others (written by users
//! for selector-less Services) are left alone. Deleting a Service deletes its Endpoints.
//! Start it with [`run`].

use super::context::Context;
use super::runtime::{self, Action, Controller, ObjectKey};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::ResourceExt;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

/// Label on the Endpoints this controller writes.
pub const MANAGED_BY_LABEL: &str = "endpoints.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY: &str = "endpoint-controller";
/// Label kube adds to the Endpoints of headless Services.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// Settings of the Endpoints controller.
#[derive(Debug, Clone)]
pub struct EndpointsConfig {
    /// Concurrent reconciles.
    pub workers: usize,
}

impl Default for EndpointsConfig {
    fn default() -> Self {
        EndpointsConfig { workers: 2 }
    }
}

/// What can go wrong in a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum EndpointsError {
    /// An API call failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// The Service's selector, if it has a non-empty one.
pub fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
}

/// The pod's labels include every pair of `sel`.
pub fn selects(sel: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    sel.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The pod's port for the service port: a numeric `targetPort` as is, a named one from
/// the pod's container ports with that name and protocol (kube's `FindPort`).
pub fn find_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    let protocol = sp.protocol.as_deref().unwrap_or("TCP");
    match sp.target_port.as_ref() {
        None => Some(sp.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find_map(|p| {
                    (p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol)
                        .then_some(p.container_port)
                })
        }
    }
}

fn pod_ready(pod: &Pod) -> bool {
    super::job::pod_ready(pod)
}

/// Should the pod be listed at all (kube's `ShouldPodBeInEndpoints`): it has an IP, is
/// not terminal, and is not terminating (unless not-ready addresses are published).
pub fn listed(pod: &Pod, publish_not_ready: bool) -> bool {
    let status = pod.status.as_ref();
    if status
        .and_then(|s| s.pod_ip.as_deref())
        .unwrap_or("")
        .is_empty()
    {
        return false;
    }
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return false;
    }
    publish_not_ready || pod.metadata.deletion_timestamp.is_none()
}

type PortKey = (String, i32, String);

/// The subsets for `svc` from these pods (only pods the Service selects, in its
/// namespace, should be given), grouped by resolved ports and sorted.
pub fn desired_subsets(svc: &Service, pods: &[&Pod]) -> Vec<EndpointSubset> {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish = spec.publish_not_ready_addresses == Some(true);
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let ports = spec.ports.unwrap_or_default();
    // Ports → (ready addresses, not-ready addresses), each keyed for sorting.
    type Addrs = BTreeMap<(String, String), EndpointAddress>;
    let mut groups: BTreeMap<Vec<PortKey>, (Addrs, Addrs)> = BTreeMap::new();
    for pod in pods {
        if !listed(pod, publish) {
            continue;
        }
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default();
        let mut key: Vec<PortKey> = ports
            .iter()
            .filter_map(|sp| {
                let n = find_port(pod, sp)?;
                Some((
                    sp.name.clone().unwrap_or_default(),
                    n,
                    sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                ))
            })
            .collect();
        if key.is_empty() && !(ports.is_empty() && headless) {
            continue;
        }
        key.sort();
        let pspec = pod.spec.as_ref();
        let hostname = pspec
            .and_then(|s| s.hostname.clone())
            .filter(|_| pspec.and_then(|s| s.subdomain.as_deref()) == svc.metadata.name.as_deref());
        let addr = EndpointAddress {
            ip: ip.clone(),
            hostname,
            node_name: pspec.and_then(|s| s.node_name.clone()),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.metadata.namespace.clone(),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            }),
        };
        let entry = groups.entry(key).or_default();
        let slot = if publish || pod_ready(pod) {
            &mut entry.0
        } else {
            &mut entry.1
        };
        slot.insert((ip, pod.name_any()), addr);
    }
    groups
        .into_iter()
        .map(|(ports, (ready, not_ready))| EndpointSubset {
            addresses: (!ready.is_empty()).then(|| ready.into_values().collect()),
            not_ready_addresses: (!not_ready.is_empty()).then(|| not_ready.into_values().collect()),
            ports: (!ports.is_empty()).then(|| {
                ports
                    .into_iter()
                    .map(|(name, port, protocol)| EndpointPort {
                        name: (!name.is_empty()).then_some(name),
                        port,
                        protocol: Some(protocol),
                        app_protocol: None,
                    })
                    .collect()
            }),
        })
        .collect()
}

/// The labels of the Service's Endpoints: the Service's, the headless marker, and
/// [`MANAGED_BY_LABEL`].
pub fn desired_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels
}

fn is_managed(ep: &Endpoints) -> bool {
    ep.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
}

/// The Endpoints controller's state: its caches.
pub struct EndpointsController {
    ctx: Context,
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
}

impl EndpointsController {
    async fn delete(&self, api: &Api<Endpoints>, name: &str) -> Result<(), kube::Error> {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One reconcile of the Service `key`.
    pub async fn reconcile(&self, key: &ObjectKey) -> Result<Action, EndpointsError> {
        let ns = key.ns();
        let api: Api<Endpoints> = Api::namespaced(self.ctx.client.clone(), ns);
        let existing = self.endpoints.get(&key.to_ref());
        let Some(svc) = self.services.get(&key.to_ref()) else {
            if existing.is_some() {
                // The Service is gone (confirm: the cache may lag a create).
                let services: Api<Service> = Api::namespaced(self.ctx.client.clone(), ns);
                if services.get_opt(&key.name).await?.is_none() {
                    self.delete(&api, &key.name).await?;
                }
            }
            return Ok(Action::Done);
        };
        let Some(sel) = selector(&svc) else {
            if existing.as_deref().is_some_and(is_managed) {
                self.delete(&api, &key.name).await?;
            }
            return Ok(Action::Done);
        };
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.namespace().as_deref() == Some(ns) && selects(sel, p))
            .collect();
        let refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
        let subsets = desired_subsets(&svc, &refs);
        let labels = desired_labels(&svc);
        match existing {
            None => {
                let ep = Endpoints {
                    metadata: ObjectMeta {
                        name: Some(key.name.clone()),
                        namespace: Some(ns.to_string()),
                        labels: Some(labels),
                        ..Default::default()
                    },
                    subsets: Some(subsets),
                };
                match api.create(&PostParams::default(), &ep).await {
                    Ok(_) => {}
                    // The cache lags: replace what is there.
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        let mut cur = api.get(&key.name).await?;
                        cur.metadata.labels = ep.metadata.labels;
                        cur.subsets = ep.subsets;
                        api.replace(&key.name, &PostParams::default(), &cur).await?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Some(cur) => {
                let same_subsets = cur.subsets.clone().unwrap_or_default() == subsets;
                let same_labels = cur.metadata.labels.clone().unwrap_or_default() == labels;
                if !same_subsets || !same_labels {
                    let mut next = (*cur).clone();
                    next.metadata.labels = Some(labels);
                    next.subsets = Some(subsets);
                    api.replace(&key.name, &PostParams::default(), &next)
                        .await?;
                }
            }
        }
        Ok(Action::Done)
    }
}

/// Runs the Endpoints controller until `shutdown` completes: watches Services, pods and
/// Endpoints; a Service is reconciled when it, its Endpoints or a pod it selects (or
/// lists) changes.
pub async fn run(ctx: Context, cfg: EndpointsConfig, shutdown: impl Future<Output = ()> + Send) {
    let client = ctx.client.clone();
    let services = runtime::watch(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let pods = runtime::watch(Api::<Pod>::all(client.clone()), watcher::Config::default());
    let endpoints = runtime::watch(Api::<Endpoints>::all(client), watcher::Config::default());
    let state = Arc::new(EndpointsController {
        ctx: ctx.clone(),
        services: services.store.clone(),
        pods: pods.store.clone(),
        endpoints: endpoints.store.clone(),
    });
    let (svc_store, ep_store) = (services.store.clone(), endpoints.store.clone());
    Controller::<EndpointsError>::new("endpoint", ctx)
        .watches(services, |s| vec![ObjectKey::of(s.as_ref())])
        .watches(endpoints, |e| vec![ObjectKey::of(e.as_ref())])
        .watches(pods, move |p| services_of_pod(&svc_store, &ep_store, &p))
        .workers(cfg.workers)
        .run(
            state,
            |key, st| async move { st.reconcile(&key).await },
            shutdown,
        )
        .await;
}

/// The Services a changed pod matters to: those selecting it now, and those whose
/// Endpoints list it (its labels may have changed).
fn services_of_pod(
    services: &Store<Service>,
    endpoints: &Store<Endpoints>,
    pod: &Pod,
) -> Vec<ObjectKey> {
    let ns = pod.namespace();
    let mut keys: Vec<ObjectKey> = services
        .state()
        .iter()
        .filter(|s| s.namespace() == ns && selector(s).is_some_and(|sel| selects(sel, pod)))
        .map(|s| ObjectKey::of(s.as_ref()))
        .collect();
    let name = pod.metadata.name.as_deref();
    for ep in endpoints.state().iter().filter(|e| e.namespace() == ns) {
        let lists = ep.subsets.iter().flatten().any(|s| {
            s.addresses
                .iter()
                .flatten()
                .chain(s.not_ready_addresses.iter().flatten())
                .any(|a| a.target_ref.as_ref().and_then(|r| r.name.as_deref()) == name)
        });
        if lists {
            keys.push(ObjectKey::of(ep.as_ref()));
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodCondition, PodSpec, PodStatus, ServiceSpec,
    };

    fn pod(name: &str, ip: &str, ready: bool, named: &[(&str, i32)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(
                        named
                            .iter()
                            .map(|(n, p)| ContainerPort {
                                name: Some(n.to_string()),
                                container_port: *p,
                                ..Default::default()
                            })
                            .collect(),
                    ),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some(ip.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn svc(ports: Vec<ServicePort>) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), "web".to_string())].into()),
                ports: Some(ports),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn sp(name: &str, port: i32, target: IntOrString) -> ServicePort {
        ServicePort {
            name: Some(name.into()),
            port,
            target_port: Some(target),
            protocol: Some("TCP".into()),
            ..Default::default()
        }
    }

    fn ips(a: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        a.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn ready_and_not_ready_share_a_subset() {
        let s = svc(vec![sp("http", 80, IntOrString::Int(8080))]);
        let (a, b, c) = (
            pod("a", "10.0.0.2", true, &[]),
            pod("b", "10.0.0.1", false, &[]),
            pod("c", "", true, &[]),
        );
        let subsets = desired_subsets(&s, &[&a, &b, &c]);
        assert_eq!(subsets.len(), 1);
        assert_eq!(ips(&subsets[0].addresses), vec!["10.0.0.2"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), vec!["10.0.0.1"]);
        let port = &subsets[0].ports.as_ref().unwrap()[0];
        assert_eq!((port.name.as_deref(), port.port), (Some("http"), 8080));
        let addr = &subsets[0].addresses.as_ref().unwrap()[0];
        assert_eq!(addr.node_name.as_deref(), Some("n1"));
        assert_eq!(addr.target_ref.as_ref().unwrap().name.as_deref(), Some("a"));
    }

    #[test]
    fn named_ports_group_pods() {
        let s = svc(vec![
            sp("http", 80, IntOrString::String("web".into())),
            sp("metrics", 9000, IntOrString::Int(9090)),
        ]);
        let a = pod("a", "10.0.0.1", true, &[("web", 8080)]);
        let b = pod("b", "10.0.0.2", true, &[("web", 8081)]);
        let c = pod("c", "10.0.0.3", true, &[]);
        let d = pod("d", "10.0.0.4", true, &[("web", 8080)]);
        let subsets = desired_subsets(&s, &[&d, &c, &b, &a]);
        assert_eq!(subsets.len(), 3);
        let find = |port: i32| {
            subsets.iter().find(|s| {
                s.ports
                    .as_ref()
                    .unwrap()
                    .iter()
                    .any(|p| p.name.as_deref() == Some("http") && p.port == port)
            })
        };
        assert_eq!(
            ips(&find(8080).unwrap().addresses),
            vec!["10.0.0.1", "10.0.0.4"]
        );
        assert_eq!(ips(&find(8081).unwrap().addresses), vec!["10.0.0.2"]);
        // The pod without the named port is only in the numeric port's subset.
        let only_metrics = subsets
            .iter()
            .find(|s| s.ports.as_ref().unwrap().len() == 1)
            .unwrap();
        assert_eq!(ips(&only_metrics.addresses), vec!["10.0.0.3"]);
        // Deterministic regardless of input order.
        assert_eq!(subsets, desired_subsets(&s, &[&a, &b, &c, &d]));
    }

    #[test]
    fn terminating_and_terminal_pods_are_left_out() {
        let s = svc(vec![sp("http", 80, IntOrString::Int(80))]);
        let mut a = pod("a", "10.0.0.1", true, &[]);
        a.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::UNIX_EPOCH,
        ));
        let mut b = pod("b", "10.0.0.2", false, &[]);
        b.status.as_mut().unwrap().phase = Some("Failed".into());
        assert!(desired_subsets(&s, &[&a, &b]).is_empty());
    }
}
