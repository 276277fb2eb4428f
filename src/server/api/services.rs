//! Service addresses, as kube-apiserver's service registry hands them out: on every write
//! of a Service (create, update, every patch type and server-side apply) the server
//! gives it a cluster IP from `--service-cidr` and, for `NodePort` and `LoadBalancer`
//! Services, a node port per port from `--service-node-port-range`, checks the ones a
//! client asked for (in range, not held by another Service), keeps allocated values
//! across updates that omit them, and refuses to change a cluster IP once set.
//!
//! What is allocated is read from the Services themselves (there is no allocation
//! object): a write lists every Service under the API's allocation mutex, picks, and
//! stores before the mutex is released, so allocation is race-free within one server.
//! Two API servers on one etcd could still race and hand out the same address; kube
//! avoids that with a bitmap object (`RangeAllocation`) updated with compare-and-swap.
//! Deleting a Service releases its addresses (nothing holds them but the Service).
//!
//! Dynamic allocation takes the lowest free value, starting above a lower band of the
//! range (1/16 of it, at least 16 and at most 256 IPs or 128 ports) that is left to
//! clients asking for specific values, as kube-apiserver prefers the upper part since
//! 1.24; when the upper part is full it falls back to the lower band. The first host
//! address (`10.43.0.1`) is never handed out: clusters give it to the `kubernetes`
//! Service. IPv4 single-stack only.

use super::objects::{meta_str, path};
use super::status::ApiError;
use crate::server::cidr::{Ipv4Cidr, PortRange};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;

/// Where Services get their addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceNetwork {
    /// Cluster IPs (`--service-cidr`, k3s's `10.43.0.0/16`).
    pub cidr: Ipv4Cidr,
    /// Node ports (`--service-node-port-range`, `30000-32767`).
    pub node_ports: PortRange,
}

impl Default for ServiceNetwork {
    fn default() -> Self {
        ServiceNetwork {
            cidr: Ipv4Cidr::containing(Ipv4Addr::new(10, 43, 0, 0), 16),
            node_ports: PortRange::default(),
        }
    }
}

/// `(field, "Invalid value: …")` pairs, as [`ApiError::invalid`] takes them.
type FieldErrors = Vec<(String, String)>;

/// The Service's type (`ClusterIP` when unset).
pub fn service_type(svc: &Value) -> &str {
    path(svc, "spec.type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or("ClusterIP")
}

/// Whether the Service gets a cluster IP (every type but `ExternalName`).
pub fn needs_cluster_ip(svc: &Value) -> bool {
    service_type(svc) != "ExternalName"
}

/// Whether the Service's ports get node ports (`NodePort`, and `LoadBalancer` unless
/// `allocateLoadBalancerNodePorts` is false).
pub fn needs_node_ports(svc: &Value) -> bool {
    match service_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => {
            path(svc, "spec.allocateLoadBalancerNodePorts").and_then(Value::as_bool) != Some(false)
        }
        _ => false,
    }
}

fn cluster_ip(svc: &Value) -> String {
    path(svc, "spec.clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn cluster_ips(svc: &Value) -> Vec<String> {
    path(svc, "spec.clusterIPs")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn spec_mut(svc: &mut Value) -> &mut Map<String, Value> {
    if !svc.get("spec").is_some_and(Value::is_object) {
        svc["spec"] = json!({});
    }
    svc["spec"].as_object_mut().expect("spec is an object")
}

fn set_cluster_ips(svc: &mut Value, ip: &str, ips: &[String]) {
    let spec = spec_mut(svc);
    if ip.is_empty() {
        spec.remove("clusterIP");
    } else {
        spec.insert("clusterIP".into(), json!(ip));
    }
    if ips.is_empty() {
        spec.remove("clusterIPs");
    } else {
        spec.insert("clusterIPs".into(), json!(ips));
    }
}

/// A port's `nodePort` (0 when unset).
fn node_port(p: &Value) -> i64 {
    p.get("nodePort").and_then(Value::as_i64).unwrap_or(0)
}

fn ports(svc: &Value) -> &[Value] {
    path(svc, "spec.ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn ports_mut(svc: &mut Value) -> Option<&mut Vec<Value>> {
    svc.get_mut("spec")?.get_mut("ports")?.as_array_mut()
}

fn port_name(p: &Value) -> &str {
    p.get("name").and_then(Value::as_str).unwrap_or("")
}

/// Go's `%#v` of a `[]string`, as kube prints `clusterIPs` in errors.
fn go_strings(list: &[String]) -> String {
    let quoted: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// A 422 with each cause's `reason` matching its message (`FieldValueInvalid`,
/// `FieldValueForbidden`, `FieldValueDuplicate`, …).
fn invalid(name: &str, errs: &[(String, String)]) -> ApiError {
    let mut e = ApiError::invalid("Service", name, errs);
    let causes = e
        .details
        .as_mut()
        .and_then(|d| d.get_mut("causes"))
        .and_then(Value::as_array_mut);
    for c in causes.into_iter().flatten() {
        let m = c["message"].as_str().unwrap_or("");
        let reason = [
            ("Forbidden", "FieldValueForbidden"),
            ("Duplicate value", "FieldValueDuplicate"),
            ("Required value", "FieldValueRequired"),
            ("Unsupported value", "FieldValueNotSupported"),
        ]
        .iter()
        .find(|(prefix, _)| m.starts_with(prefix))
        .map_or("FieldValueInvalid", |(_, r)| r);
        c["reason"] = json!(reason);
    }
    e
}

/// Kube's `NormalizeClusterIPs` and `patchAllocatedValues` for an update: the plural and
/// singular fields agree; values the client left out are kept; switching to a type that
/// has no use for them drops the cluster IP and node ports the client did not change.
fn carry_over(old: &Value, new: &mut Value) {
    let (oip, oips) = (cluster_ip(old), cluster_ips(old));
    let (mut nip, mut nips) = (cluster_ip(new), cluster_ips(new));
    if !oips.is_empty() && nips.is_empty() && oip == nip {
        nips = oips.clone();
    }
    if oip != nip {
        if !oip.is_empty() && nip.is_empty() && !nips.is_empty() && nips == oips {
            nips.clear();
        }
        if !oips.is_empty() && !nips.is_empty() && nips == oips {
            nips[0] = nip.clone();
        }
    }
    if needs_cluster_ip(old) && !needs_cluster_ip(new) && nip == oip && nips == oips {
        nip.clear();
        nips.clear();
        let spec = spec_mut(new);
        for f in ["ipFamilies", "ipFamilyPolicy"] {
            if path(old, &format!("spec.{f}")) == spec.get(f) {
                spec.remove(f);
            }
        }
    }
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        if nip.is_empty() {
            nip = oip;
        }
        if nips.is_empty() {
            nips = oips;
        }
    }
    set_cluster_ips(new, &nip, &nips);
    // Fields of a type the Service is leaving, unless the client changed them.
    for (field, keep) in [
        (
            "externalTrafficPolicy",
            matches!(service_type(new), "NodePort" | "LoadBalancer"),
        ),
        (
            "allocateLoadBalancerNodePorts",
            service_type(new) == "LoadBalancer",
        ),
    ] {
        if !keep && path(old, &format!("spec.{field}")) == path(new, &format!("spec.{field}")) {
            spec_mut(new).remove(field);
        }
    }
    let old_by_name: BTreeMap<&str, i64> = ports(old)
        .iter()
        .map(|p| (port_name(p), node_port(p)))
        .collect();
    let (old_np, new_np) = (needs_node_ports(old), needs_node_ports(new));
    if old_np && !new_np {
        // Wipe what the client did not change (it came from the allocator).
        for p in ports_mut(new).into_iter().flatten() {
            let np = node_port(p);
            if np != 0 && old_by_name.get(port_name(p)) == Some(&np) {
                if let Some(m) = p.as_object_mut() {
                    m.remove("nodePort");
                }
            }
        }
    }
    if old_np && new_np {
        let used: HashSet<i64> = ports(new).iter().map(node_port).collect();
        for p in ports_mut(new).into_iter().flatten() {
            if node_port(p) != 0 {
                continue;
            }
            if let Some(&np) = old_by_name.get(port_name(p)) {
                if let (true, Some(m)) = (np != 0 && !used.contains(&np), p.as_object_mut()) {
                    m.insert("nodePort".into(), json!(np));
                }
            }
        }
    }
}

/// Defaults kube's Service strategy sets once the type is known.
fn defaults(svc: &mut Value) {
    let (cluster, node_ports, lb) = (
        needs_cluster_ip(svc),
        matches!(service_type(svc), "NodePort" | "LoadBalancer"),
        service_type(svc) == "LoadBalancer",
    );
    let spec = spec_mut(svc);
    let mut default = |k: &str, v: Value| {
        if spec.get(k).is_none_or(Value::is_null) {
            spec.insert(k.into(), v);
        }
    };
    if cluster {
        default("ipFamilies", json!(["IPv4"]));
        default("ipFamilyPolicy", json!("SingleStack"));
        default("internalTrafficPolicy", json!("Cluster"));
    }
    if node_ports {
        default("externalTrafficPolicy", json!("Cluster"));
    }
    if lb {
        default("allocateLoadBalancerNodePorts", json!(true));
    }
}

/// What can be checked without knowing the other Services.
fn validate(old: Option<&Value>, svc: &Value, net: &ServiceNetwork) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let (ip, ips) = (cluster_ip(svc), cluster_ips(svc));
    let ty = service_type(svc);
    if !needs_cluster_ip(svc) {
        if !ip.is_empty() || !ips.is_empty() {
            errs.push((
                "spec.clusterIPs".into(),
                "Forbidden: may not be set for ExternalName services".into(),
            ));
        }
    } else {
        if !ip.is_empty() && ips.first().is_some_and(|first| *first != ip) {
            errs.push((
                "spec.clusterIPs[0]".into(),
                format!(
                    "Invalid value: {}: must match `clusterIP` ({ip:?})",
                    go_strings(&ips)
                ),
            ));
        }
        if ips.len() > 1 {
            errs.push((
                "spec.clusterIPs".into(),
                format!(
                    "Invalid value: {}: this cluster is IPv4 single-stack: at most one cluster IP",
                    go_strings(&ips)
                ),
            ));
        }
        for (i, v) in ips.iter().enumerate() {
            if v != "None" && v.parse::<std::net::IpAddr>().is_err() {
                errs.push((
                    format!("spec.clusterIPs[{i}]"),
                    format!("Invalid value: {v:?}: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
                ));
            }
        }
        let families = path(svc, "spec.ipFamilies").and_then(Value::as_array);
        for (i, f) in families.into_iter().flatten().enumerate() {
            if f != "IPv4" {
                errs.push((
                    format!("spec.ipFamilies[{i}]"),
                    format!("Invalid value: {f}: not configured on this cluster"),
                ));
            }
        }
        if let Some(p) = path(svc, "spec.ipFamilyPolicy").and_then(Value::as_str) {
            if p == "RequireDualStack" {
                errs.push((
                    "spec.ipFamilyPolicy".into(),
                    format!("Invalid value: {p:?}: this cluster is not configured for dual-stack services"),
                ));
            }
        }
        if let Some(old) = old.filter(|o| needs_cluster_ip(o)) {
            let oips = cluster_ips(old);
            if !oips.is_empty() && ips.first() != oips.first() {
                errs.push((
                    "spec.clusterIPs[0]".into(),
                    format!(
                        "Invalid value: {}: may not change once set",
                        go_strings(&ips)
                    ),
                ));
            }
        }
    }
    let old_ports: HashSet<i64> = old
        .map(|o| ports(o).iter().map(node_port).collect())
        .unwrap_or_default();
    let mut seen: HashSet<(i64, String)> = HashSet::new();
    for (i, p) in ports(svc).iter().enumerate() {
        let np = node_port(p);
        if np == 0 {
            continue;
        }
        let field = format!("spec.ports[{i}].nodePort");
        if !needs_node_ports(svc) {
            errs.push((
                field,
                format!("Forbidden: may not be used when `type` is '{ty}'"),
            ));
            continue;
        }
        if !old_ports.contains(&np) && !net.node_ports.contains(np) {
            errs.push((
                field.clone(),
                format!(
                    "Invalid value: {np}: provided port is not in the valid range. The range of valid ports is {}",
                    net.node_ports
                ),
            ));
        }
        let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
        if !seen.insert((np, protocol.to_string())) {
            errs.push((field, format!("Duplicate value: {np}")));
        }
    }
    errs
}

/// Normalises, defaults and checks a Service about to be written (`old`: the stored one
/// for an update); the checks that need the other Services are [`allocate`]'s.
fn prepare(old: Option<&Value>, svc: &mut Value, net: &ServiceNetwork) -> FieldErrors {
    spec_mut(svc);
    match old {
        Some(old) => carry_over(old, svc),
        None => {
            let (ip, ips) = (cluster_ip(svc), cluster_ips(svc));
            if !ip.is_empty() && ips.is_empty() {
                set_cluster_ips(svc, &ip, std::slice::from_ref(&ip));
            } else if ip.is_empty() && !ips.is_empty() {
                let first = ips[0].clone();
                set_cluster_ips(svc, &first, &ips);
            }
        }
    }
    defaults(svc);
    validate(old, svc, net)
}

/// The addresses other Services hold.
#[derive(Debug, Default)]
struct Taken {
    ips: HashSet<u32>,
    ports: HashSet<i64>,
}

impl Taken {
    fn add(&mut self, svc: &Value) {
        if needs_cluster_ip(svc) {
            for ip in cluster_ips(svc).iter().chain([cluster_ip(svc)].iter()) {
                if let Ok(a) = ip.parse::<Ipv4Addr>() {
                    self.ips.insert(u32::from(a));
                }
            }
        }
        for p in ports(svc) {
            let np = node_port(p);
            if np != 0 {
                self.ports.insert(np);
            }
        }
    }
}

/// Why allocation failed.
#[derive(Debug)]
enum AllocError {
    /// A requested value is out of range or taken.
    Invalid(FieldErrors),
    /// Nothing is free (kube answers 500).
    Full(&'static str),
}

/// `lo..=hi`, starting at `start` and wrapping around to `lo`.
fn banded(lo: u64, hi: u64, start: u64) -> impl Iterator<Item = u64> {
    let start = start.clamp(lo, hi.saturating_add(1));
    (start..=hi).chain(lo..start)
}

fn lower_band(size: u64, max: u64) -> u64 {
    (size / 16).clamp(16, max)
}

/// The lowest free service IP (see the module docs), skipping the network address, the
/// first host address and the broadcast address.
fn pick_ip(cidr: &Ipv4Cidr, taken: &HashSet<u32>) -> Option<Ipv4Addr> {
    let (first, _) = cidr.bounds();
    let size = cidr.size();
    if size < 4 {
        return None;
    }
    let (lo, hi) = (2, size - 2);
    banded(lo, hi, lower_band(size, 256))
        .map(|off| (u64::from(first) + off) as u32)
        .find(|ip| !taken.contains(ip))
        .map(Ipv4Addr::from)
}

/// Whether a client may ask for `ip`: in the range, not its network or broadcast address.
fn allocatable(cidr: &Ipv4Cidr, ip: Ipv4Addr) -> bool {
    let (first, last) = cidr.bounds();
    let n = u32::from(ip);
    cidr.contains(ip) && (cidr.size() < 4 || (n != first && n != last))
}

fn pick_port(range: &PortRange, taken: &HashSet<i64>) -> Option<i64> {
    let (lo, hi) = (u64::from(range.low), u64::from(range.high));
    banded(lo, hi, lo + lower_band(u64::from(range.size()), 128))
        .map(|p| p as i64)
        .find(|p| !taken.contains(p))
}

/// Gives the Service the cluster IP and node ports it lacks and checks those it asked
/// for against `taken` (everything the other Services hold).
fn allocate(
    net: &ServiceNetwork,
    taken: &Taken,
    old: Option<&Value>,
    svc: &mut Value,
) -> Result<(), AllocError> {
    let mut errs = FieldErrors::new();
    if needs_cluster_ip(svc) {
        let ip = cluster_ip(svc);
        let held = old.is_some_and(|o| needs_cluster_ip(o) && cluster_ips(o).contains(&ip));
        if ip.is_empty() {
            let a = pick_ip(&net.cidr, &taken.ips)
                .ok_or(AllocError::Full(
                    "failed to allocate a serviceIP: range is full",
                ))?
                .to_string();
            set_cluster_ips(svc, &a, std::slice::from_ref(&a));
        } else if ip != "None" && !held {
            let fail = |why: String| {
                (
                    "spec.clusterIPs".to_string(),
                    format!(
                        "Invalid value: {}: failed to allocate IP {ip}: {why}",
                        go_strings(std::slice::from_ref(&ip))
                    ),
                )
            };
            match ip.parse::<Ipv4Addr>() {
                Ok(a) if !allocatable(&net.cidr, a) => errs.push(fail(format!(
                    "provided IP is not in the valid range. The range of valid IPs is {}",
                    net.cidr
                ))),
                Ok(a) if taken.ips.contains(&u32::from(a)) => {
                    errs.push(fail("provided IP is already allocated".into()))
                }
                Ok(_) => {}
                Err(_) => errs.push(fail(format!(
                    "provided IP is not in the valid range. The range of valid IPs is {}",
                    net.cidr
                ))),
            }
        }
    }
    if needs_node_ports(svc) {
        let held: HashSet<i64> = old
            .filter(|o| needs_node_ports(o))
            .map(|o| ports(o).iter().map(node_port).collect())
            .unwrap_or_default();
        let mut mine: HashSet<i64> = HashSet::new();
        for (i, p) in ports(svc).iter().enumerate() {
            let np = node_port(p);
            if np == 0 {
                continue;
            }
            if !held.contains(&np) && taken.ports.contains(&np) {
                errs.push((
                    format!("spec.ports[{i}].nodePort"),
                    format!("Invalid value: {np}: provided port is already allocated"),
                ));
            }
            mine.insert(np);
        }
        if !errs.is_empty() {
            return Err(AllocError::Invalid(errs));
        }
        // Ports of the same number (TCP and UDP 53) share one node port, as in kube.
        let mut by_port: BTreeMap<i64, i64> = ports(svc)
            .iter()
            .filter(|p| node_port(p) != 0)
            .map(|p| {
                (
                    p.get("port").and_then(Value::as_i64).unwrap_or(0),
                    node_port(p),
                )
            })
            .collect();
        for p in ports_mut(svc).into_iter().flatten() {
            if node_port(p) != 0 {
                continue;
            }
            let number = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let np = match by_port.get(&number) {
                Some(&np) => np,
                None => {
                    let all: HashSet<i64> = taken.ports.union(&mine).copied().collect();
                    let np = pick_port(&net.node_ports, &all).ok_or(AllocError::Full(
                        "failed to allocate a nodePort: range is full",
                    ))?;
                    mine.insert(np);
                    by_port.insert(number, np);
                    np
                }
            };
            if let Some(m) = p.as_object_mut() {
                m.insert("nodePort".into(), json!(np));
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(AllocError::Invalid(errs))
    }
}

/// The first half of the Service hook of every write (see
/// `handlers::admit_service`): normalises and checks `svc` (to be stored as `name`,
/// replacing `old` if it is an update).
pub(crate) fn check(
    name: &str,
    old: Option<&Value>,
    svc: &mut Value,
    net: &ServiceNetwork,
) -> Result<(), ApiError> {
    let errs = prepare(old, svc, net);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(invalid(name, &errs))
    }
}

/// The second half, under the allocation lock: allocates what `svc` (`namespace/name`)
/// lacks, given every stored Service (`svc`'s own stored version among them is
/// skipped).
pub(crate) fn allocate_among(
    net: &ServiceNetwork,
    namespace: &str,
    name: &str,
    old: Option<&Value>,
    svc: &mut Value,
    stored: &[Value],
) -> Result<(), ApiError> {
    let mut taken = Taken::default();
    for other in stored {
        if meta_str(other, "namespace") == namespace && meta_str(other, "name") == name {
            continue;
        }
        taken.add(other);
    }
    match allocate(net, &taken, old, svc) {
        Ok(()) => Ok(()),
        Err(AllocError::Invalid(errs)) => Err(invalid(name, &errs)),
        Err(AllocError::Full(why)) => Err(ApiError::internal(format!(
            "Internal error occurred: {why}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> ServiceNetwork {
        ServiceNetwork::default()
    }

    fn svc(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"},
            "spec": spec})
    }

    fn admit_pure(old: Option<&Value>, new: &mut Value, taken: &Taken) -> Result<(), FieldErrors> {
        let errs = prepare(old, new, &net());
        if !errs.is_empty() {
            return Err(errs);
        }
        match allocate(&net(), taken, old, new) {
            Ok(()) => Ok(()),
            Err(AllocError::Invalid(e)) => Err(e),
            Err(AllocError::Full(w)) => Err(vec![("full".into(), w.into())]),
        }
    }

    #[test]
    fn a_new_service_gets_an_ip_above_the_lower_band_and_defaults() {
        let mut s = svc(json!({"ports": [{"port": 80}]}));
        admit_pure(None, &mut s, &Taken::default()).unwrap();
        assert_eq!(s["spec"]["clusterIP"], "10.43.1.0");
        assert_eq!(s["spec"]["clusterIPs"], json!(["10.43.1.0"]));
        assert_eq!(s["spec"]["ipFamilies"], json!(["IPv4"]));
        assert_eq!(s["spec"]["ipFamilyPolicy"], "SingleStack");
        assert_eq!(s["spec"]["internalTrafficPolicy"], "Cluster");
        assert!(s["spec"]["ports"][0].get("nodePort").is_none());
        let mut taken = Taken::default();
        taken.add(&s);
        let mut t = svc(json!({"ports": [{"port": 80}]}));
        admit_pure(None, &mut t, &taken).unwrap();
        assert_eq!(t["spec"]["clusterIP"], "10.43.1.1");
    }

    #[test]
    fn requested_ips_are_checked() {
        let mut taken = Taken::default();
        taken.ips.insert(u32::from(Ipv4Addr::new(10, 43, 0, 5)));
        let mut ok = svc(json!({"clusterIP": "10.43.0.6"}));
        admit_pure(None, &mut ok, &taken).unwrap();
        assert_eq!(ok["spec"]["clusterIPs"], json!(["10.43.0.6"]));
        let mut dup = svc(json!({"clusterIP": "10.43.0.5"}));
        let e = admit_pure(None, &mut dup, &taken).unwrap_err();
        assert_eq!(e[0].0, "spec.clusterIPs");
        assert_eq!(
            e[0].1,
            "Invalid value: []string{\"10.43.0.5\"}: failed to allocate IP 10.43.0.5: provided IP is already allocated"
        );
        for out in ["10.44.0.1", "10.43.0.0", "10.43.255.255", "fd00::1"] {
            let mut s = svc(json!({"clusterIP": out}));
            let e = admit_pure(None, &mut s, &taken).unwrap_err();
            assert!(
                e[0].1.ends_with("The range of valid IPs is 10.43.0.0/16"),
                "{out}: {e:?}"
            );
        }
        let mut bad = svc(json!({"clusterIP": "abc"}));
        let e = admit_pure(None, &mut bad, &taken).unwrap_err();
        assert_eq!(e[0].0, "spec.clusterIPs[0]");
        let mut headless = svc(json!({"clusterIP": "None"}));
        admit_pure(None, &mut headless, &taken).unwrap();
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        let mut ext = svc(json!({"type": "ExternalName", "externalName": "x.example"}));
        admit_pure(None, &mut ext, &taken).unwrap();
        assert!(ext["spec"].get("clusterIP").is_none());
    }

    #[test]
    fn cluster_ips_are_kept_and_immutable() {
        let mut old = svc(json!({"ports": [{"port": 80}]}));
        admit_pure(None, &mut old, &Taken::default()).unwrap();
        // An update that omits the IP keeps it.
        let mut new = svc(json!({"ports": [{"port": 81}]}));
        admit_pure(Some(&old), &mut new, &Taken::default()).unwrap();
        assert_eq!(new["spec"]["clusterIP"], old["spec"]["clusterIP"]);
        assert_eq!(new["spec"]["clusterIPs"], old["spec"]["clusterIPs"]);
        // A merge patch of clusterIP alone: clusterIPs follows, then may not change.
        let mut changed = old.clone();
        changed["spec"]["clusterIP"] = json!("10.43.0.99");
        let e = admit_pure(Some(&old), &mut changed, &Taken::default()).unwrap_err();
        assert_eq!(
            e,
            vec![(
                "spec.clusterIPs[0]".to_string(),
                "Invalid value: []string{\"10.43.0.99\"}: may not change once set".to_string()
            )]
        );
        // To ExternalName: the unchanged IP is dropped.
        let mut ext = old.clone();
        ext["spec"]["type"] = json!("ExternalName");
        ext["spec"]["externalName"] = json!("x.example");
        admit_pure(Some(&old), &mut ext, &Taken::default()).unwrap();
        assert!(ext["spec"].get("clusterIP").is_none());
        assert!(ext["spec"].get("ipFamilies").is_none());
    }

    #[test]
    fn node_ports_are_allocated_shared_kept_and_released() {
        let mut taken = Taken::default();
        taken.ports.insert(30128);
        let mut s = svc(json!({"type": "NodePort", "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "web", "port": 80}]}));
        admit_pure(None, &mut s, &taken).unwrap();
        let nps: Vec<i64> = ports(&s).iter().map(node_port).collect();
        assert_eq!(nps, vec![30129, 30129, 30130]);
        assert_eq!(s["spec"]["externalTrafficPolicy"], "Cluster");
        // Requested: taken, out of range, duplicate.
        let mut dup = svc(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30128}]}));
        let e = admit_pure(None, &mut dup, &taken).unwrap_err();
        assert_eq!(
            e[0].1,
            "Invalid value: 30128: provided port is already allocated"
        );
        let mut out = svc(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}));
        let e = admit_pure(None, &mut out, &taken).unwrap_err();
        assert_eq!(e[0].1, "Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767");
        // An update without nodePorts keeps them (by port name).
        let mut upd = svc(json!({"type": "NodePort", "ports": [{"name": "web", "port": 80}]}));
        admit_pure(Some(&s), &mut upd, &taken).unwrap();
        assert_eq!(node_port(&ports(&upd)[0]), 30130);
        // Back to ClusterIP: released; an explicit one is forbidden.
        let mut cip = s.clone();
        cip["spec"]["type"] = json!("ClusterIP");
        admit_pure(Some(&s), &mut cip, &taken).unwrap();
        assert!(ports(&cip).iter().all(|p| p.get("nodePort").is_none()));
        assert_eq!(cip["spec"]["clusterIP"], s["spec"]["clusterIP"]);
        let mut forced = svc(json!({"ports": [{"port": 80, "nodePort": 30001}]}));
        let e = admit_pure(None, &mut forced, &taken).unwrap_err();
        assert_eq!(
            e[0].1,
            "Forbidden: may not be used when `type` is 'ClusterIP'"
        );
    }

    #[test]
    fn small_ranges_fill_up() {
        let tiny = ServiceNetwork {
            cidr: "10.9.0.0/29".parse().unwrap(),
            node_ports: "30000-30001".parse().unwrap(),
        };
        let mut taken = Taken::default();
        let mut got = Vec::new();
        while let Some(ip) = pick_ip(&tiny.cidr, &taken.ips) {
            taken.ips.insert(u32::from(ip));
            got.push(ip.to_string());
        }
        // .0 network, .1 reserved, .7 broadcast.
        assert_eq!(
            got,
            ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
        );
        let mut ports = HashSet::new();
        while let Some(p) = pick_port(&tiny.node_ports, &ports) {
            ports.insert(p);
        }
        assert_eq!(ports.len(), 2);
    }
}
