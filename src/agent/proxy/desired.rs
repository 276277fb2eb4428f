//! What the proxy should serve, from the cached Services and Endpoints: one
//! [`DesiredPort`] per Service port with at least one listener on this node — its
//! listeners, its ready endpoints, its balancing mode and affinity.
//!
//! Pure: it reads objects and returns data plus the problems it found (as messages the
//! caller logs once each). Bad data is skipped, never fatal: a port out of range, an
//! address that is not an IP, an unknown protocol or mode.

use super::balancer::{Endpoint, Mode, DEFAULT_AFFINITY_TIMEOUT, MODE_ANNOTATION};
use k8s_openapi::api::core::v1::{Endpoints, Service, ServicePort};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The transport of a Service port the proxy serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP: connections are accepted and their bytes copied.
    Tcp,
    /// UDP: datagrams are forwarded per client session.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        })
    }
}

/// One Service port: namespace, Service name, port name (`""` when unnamed) and
/// protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey {
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub service: String,
    /// `spec.ports[].name` (`""` when unnamed).
    pub port_name: String,
    /// Its protocol.
    pub protocol: Protocol,
}

impl fmt::Display for PortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.service)?;
        if !self.port_name.is_empty() {
            write!(f, ":{}", self.port_name)?;
        }
        write!(f, "/{}", self.protocol)
    }
}

/// What one Service port should be on this node.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredPort {
    /// How it spreads connections.
    pub mode: Mode,
    /// ClientIP affinity timeout (`None`: no affinity).
    pub affinity: Option<Duration>,
    /// Its ready endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Where it listens: ClusterIP:port, node address:nodePort, node address:port.
    pub listeners: BTreeSet<SocketAddr>,
}

/// The proxy's whole desired state, and what was wrong on the way.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// Per Service port.
    pub ports: BTreeMap<PortKey, DesiredPort>,
    /// Problems found (bad data skipped), one message each, stable texts so the caller
    /// can log each once.
    pub warnings: Vec<String>,
    /// Things left out on purpose (SCTP ports), logged once at info.
    pub notes: Vec<String>,
}

/// Where the proxy listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// The node's address (nodePorts, ServiceLB).
    pub node_address: IpAddr,
    /// Listen on ClusterIPs too.
    pub cluster_ips: bool,
}

/// The desired state for these Services and Endpoints (see the module docs).
pub fn desired(services: &[Arc<Service>], endpoints: &[Arc<Endpoints>], scope: Scope) -> Desired {
    let by_name: HashMap<(&str, &str), &Endpoints> = endpoints
        .iter()
        .filter_map(|e| {
            Some((
                (
                    e.metadata.namespace.as_deref()?,
                    e.metadata.name.as_deref()?,
                ),
                e.as_ref(),
            ))
        })
        .collect();
    let mut out = Desired::default();
    for svc in services {
        let (Some(ns), Some(name)) = (
            svc.metadata.namespace.as_deref(),
            svc.metadata.name.as_deref(),
        ) else {
            continue;
        };
        let ep = by_name.get(&(ns, name)).copied();
        service(&mut out, ns, name, svc, ep, scope);
    }
    out
}

fn service(
    out: &mut Desired,
    ns: &str,
    name: &str,
    svc: &Service,
    ep: Option<&Endpoints>,
    scope: Scope,
) {
    let Some(spec) = svc.spec.as_ref() else {
        return;
    };
    let kind = spec.type_.as_deref().unwrap_or("ClusterIP");
    let cluster_ip = spec.cluster_ip.as_deref().unwrap_or("");
    if kind == "ExternalName" || cluster_ip == "None" {
        return;
    }
    let node_ports = kind == "NodePort" || kind == "LoadBalancer";
    let servicelb = kind == "LoadBalancer"
        && svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .is_some_and(|ing| {
                ing.iter().any(|i| {
                    i.ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok())
                        == Some(scope.node_address)
                })
            });
    let vip = if scope.cluster_ips && !cluster_ip.is_empty() {
        match cluster_ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => Some(IpAddr::V4(ip)),
            Ok(IpAddr::V6(_)) => {
                out.warnings.push(format!(
                    "service {ns}/{name}: IPv6 clusterIP {cluster_ip} is not proxied"
                ));
                None
            }
            Err(_) => {
                out.warnings.push(format!(
                    "service {ns}/{name}: clusterIP {cluster_ip:?} is not an IP address"
                ));
                None
            }
        }
    } else {
        None
    };
    let annotation = svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MODE_ANNOTATION));
    let mode = match annotation {
        None => Mode::RoundRobin,
        Some(v) => Mode::from_name(v).unwrap_or_else(|| {
            out.warnings.push(format!(
                "service {ns}/{name}: unknown {MODE_ANNOTATION} {v:?} (known: {}); using round-robin",
                Mode::NAMES.join(", ")
            ));
            Mode::RoundRobin
        }),
    };
    let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .filter(|s| (1..=86400).contains(s))
            .map_or(DEFAULT_AFFINITY_TIMEOUT, |s| Duration::from_secs(s as u64))
    });
    for sp in spec.ports.iter().flatten() {
        let port_name = sp.name.clone().unwrap_or_default();
        let protocol = match sp.protocol.as_deref().unwrap_or("TCP") {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            "SCTP" => {
                out.notes.push(format!(
                    "service {ns}/{name}: SCTP port {} is not proxied",
                    sp.port
                ));
                continue;
            }
            other => {
                out.warnings.push(format!(
                    "service {ns}/{name}: port {} has unknown protocol {other:?}",
                    sp.port
                ));
                continue;
            }
        };
        let Some(port) = valid_port(sp.port) else {
            out.warnings.push(format!(
                "service {ns}/{name}: port {} is out of range",
                sp.port
            ));
            continue;
        };
        let mut listeners = BTreeSet::new();
        if let Some(ip) = vip {
            listeners.insert(SocketAddr::new(ip, port));
        }
        if node_ports {
            match sp.node_port.map(|n| (n, valid_port(n))) {
                Some((_, Some(n))) => {
                    listeners.insert(SocketAddr::new(scope.node_address, n));
                }
                Some((n, None)) => out
                    .warnings
                    .push(format!("service {ns}/{name}: nodePort {n} is out of range")),
                None => {}
            }
        }
        if servicelb {
            listeners.insert(SocketAddr::new(scope.node_address, port));
        }
        if listeners.is_empty() {
            continue;
        }
        let endpoints = ep.map_or_else(Vec::new, |ep| ready_endpoints(out, ep, sp));
        let key = PortKey {
            namespace: ns.to_string(),
            service: name.to_string(),
            port_name,
            protocol,
        };
        out.ports.insert(
            key,
            DesiredPort {
                mode,
                affinity,
                endpoints,
                listeners,
            },
        );
    }
}

fn valid_port(n: i32) -> Option<u16> {
    u16::try_from(n).ok().filter(|p| *p != 0)
}

/// The ready addresses of `ep` with the port named like `sp` (kube matches Endpoints
/// ports to Service ports by name).
fn ready_endpoints(out: &mut Desired, ep: &Endpoints, sp: &ServicePort) -> Vec<Endpoint> {
    let ns = ep.metadata.namespace.as_deref().unwrap_or("");
    let name = ep.metadata.name.as_deref().unwrap_or("");
    let want = sp.name.as_deref().unwrap_or("");
    let mut found = Vec::new();
    for subset in ep.subsets.iter().flatten() {
        let Some(p) = subset
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref().unwrap_or("") == want)
        else {
            continue;
        };
        let Some(port) = valid_port(p.port) else {
            out.warnings.push(format!(
                "endpoints {ns}/{name}: port {} is out of range",
                p.port
            ));
            continue;
        };
        for a in subset.addresses.iter().flatten() {
            match a.ip.parse::<IpAddr>() {
                Ok(ip) => found.push(Endpoint {
                    addr: SocketAddr::new(ip, port),
                    node: a.node_name.clone(),
                }),
                Err(_) => out.warnings.push(format!(
                    "endpoints {ns}/{name}: address {:?} is not an IP address",
                    a.ip
                )),
            }
        }
    }
    found.sort();
    found.dedup_by(|a, b| a.addr == b.addr);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NODE: [u8; 4] = [192, 168, 1, 10];

    fn scope(cluster_ips: bool) -> Scope {
        Scope {
            node_address: IpAddr::from(NODE),
            cluster_ips,
        }
    }

    fn svc(v: serde_json::Value) -> Arc<Service> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn eps(v: serde_json::Value) -> Arc<Endpoints> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn key(service: &str, port: &str, protocol: Protocol) -> PortKey {
        PortKey {
            namespace: "ns".into(),
            service: service.into(),
            port_name: port.into(),
            protocol,
        }
    }

    fn addrs(p: &DesiredPort) -> Vec<String> {
        p.endpoints.iter().map(|e| e.addr.to_string()).collect()
    }

    fn listeners(p: &DesiredPort) -> Vec<String> {
        p.listeners.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn listeners_per_service_type() {
        let web = svc(json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.5",
                "ports": [{"name": "http", "port": 80, "nodePort": 30080},
                          {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.10"}, {"ip": "192.168.1.11"}]}}}));
        let np = svc(json!({"metadata": {"name": "np", "namespace": "ns"},
            "spec": {"type": "NodePort", "clusterIP": "10.43.0.6",
                "ports": [{"port": 8080, "nodePort": 31000}]}}));
        let cip = svc(json!({"metadata": {"name": "cip", "namespace": "ns"},
            "spec": {"clusterIP": "10.43.0.7", "ports": [{"port": 80}]}}));
        let d = desired(&[web.clone(), np.clone(), cip.clone()], &[], scope(true));
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
        assert_eq!(
            listeners(&d.ports[&key("web", "http", Protocol::Tcp)]),
            ["10.43.0.5:80", "192.168.1.10:80", "192.168.1.10:30080"]
        );
        assert_eq!(
            listeners(&d.ports[&key("web", "dns", Protocol::Udp)]),
            ["10.43.0.5:53", "192.168.1.10:53", "192.168.1.10:30053"]
        );
        assert_eq!(
            listeners(&d.ports[&key("np", "", Protocol::Tcp)]),
            ["10.43.0.6:8080", "192.168.1.10:31000"]
        );
        assert_eq!(
            listeners(&d.ports[&key("cip", "", Protocol::Tcp)]),
            ["10.43.0.7:80"]
        );
        // Without ClusterIPs, a ClusterIP-only service has nothing to serve here.
        let d = desired(&[web, np, cip], &[], scope(false));
        assert_eq!(d.ports.len(), 3);
        assert_eq!(
            listeners(&d.ports[&key("np", "", Protocol::Tcp)]),
            ["192.168.1.10:31000"]
        );
    }

    #[test]
    fn servicelb_only_on_nodes_named_in_the_status() {
        let lb = svc(json!({"metadata": {"name": "lb", "namespace": "ns"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.11"}, {"hostname": "x"}]}}}));
        assert!(desired(&[lb], &[], scope(false)).ports.is_empty());
    }

    #[test]
    fn endpoints_match_ports_by_name_and_only_ready_addresses_count() {
        let s = svc(json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"type": "NodePort", "ports": [
                {"name": "http", "port": 80, "nodePort": 30080},
                {"name": "metrics", "port": 9000, "nodePort": 30090}]}}));
        let e = eps(
            json!({"metadata": {"name": "web", "namespace": "ns"}, "subsets": [
            {"addresses": [{"ip": "10.42.0.2", "nodeName": "a"}, {"ip": "10.42.0.3"}],
             "notReadyAddresses": [{"ip": "10.42.0.4"}],
             "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}]},
            {"addresses": [{"ip": "10.42.1.2", "nodeName": "b"}],
             "ports": [{"name": "http", "port": 8081}]}]}),
        );
        let d = desired(&[s], &[e], scope(false));
        let http = &d.ports[&key("web", "http", Protocol::Tcp)];
        assert_eq!(
            addrs(http),
            ["10.42.0.2:8080", "10.42.0.3:8080", "10.42.1.2:8081"]
        );
        assert_eq!(http.endpoints[0].node.as_deref(), Some("a"));
        assert_eq!(
            addrs(&d.ports[&key("web", "metrics", Protocol::Tcp)]),
            ["10.42.0.2:9090", "10.42.0.3:9090"]
        );
    }

    #[test]
    fn mode_and_affinity_come_from_the_service() {
        let s = |ann: &str, aff: serde_json::Value| {
            svc(json!({"metadata": {"name": "web", "namespace": "ns",
                    "annotations": {MODE_ANNOTATION: ann}},
                "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}],
                    "sessionAffinity": "ClientIP", "sessionAffinityConfig": aff}}))
        };
        let d = desired(
            &[s("predicted", json!({"clientIP": {"timeoutSeconds": 60}}))],
            &[],
            scope(false),
        );
        let p = &d.ports[&key("web", "", Protocol::Tcp)];
        assert_eq!(
            (p.mode, p.affinity),
            (Mode::Predicted, Some(Duration::from_secs(60)))
        );
        let d = desired(&[s("fastest", json!({}))], &[], scope(false));
        let p = &d.ports[&key("web", "", Protocol::Tcp)];
        assert_eq!(
            (p.mode, p.affinity),
            (Mode::RoundRobin, Some(DEFAULT_AFFINITY_TIMEOUT))
        );
        assert_eq!(d.warnings.len(), 1);
        assert!(d.warnings[0].contains("fastest"), "{}", d.warnings[0]);
    }

    #[test]
    fn bad_data_is_skipped_with_a_warning() {
        let headless = svc(json!({"metadata": {"name": "h", "namespace": "ns"},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}));
        let external = svc(json!({"metadata": {"name": "x", "namespace": "ns"},
            "spec": {"type": "ExternalName", "externalName": "example.com"}}));
        let bad = svc(json!({"metadata": {"name": "bad", "namespace": "ns"},
            "spec": {"type": "NodePort", "clusterIP": "nonsense", "ports": [
                {"name": "zero", "port": 0, "nodePort": 30001},
                {"name": "sctp", "port": 80, "protocol": "SCTP", "nodePort": 30002},
                {"name": "big", "port": 81, "nodePort": 70000},
                {"name": "ok", "port": 82, "nodePort": 30003}]}}));
        let e = eps(
            json!({"metadata": {"name": "bad", "namespace": "ns"}, "subsets": [
            {"addresses": [{"ip": "not-an-ip"}, {"ip": "10.42.0.9"}],
             "ports": [{"name": "ok", "port": 8082}]},
            {"addresses": [{"ip": "10.42.0.8"}], "ports": [{"name": "ok", "port": 0}]}]}),
        );
        let d = desired(&[headless, external, bad], &[e], scope(true));
        assert_eq!(d.ports.len(), 1);
        assert_eq!(
            addrs(&d.ports[&key("bad", "ok", Protocol::Tcp)]),
            ["10.42.0.9:8082"]
        );
        assert_eq!(d.notes.len(), 1);
        let all = d.warnings.join("\n");
        for needle in [
            "nonsense",
            "port 0 is out",
            "nodePort 70000",
            "not-an-ip",
            "endpoints ns/bad: port 0",
        ] {
            assert!(all.contains(needle), "{needle} not in {all}");
        }
    }
}
