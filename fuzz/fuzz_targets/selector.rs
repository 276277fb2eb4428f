//! Label selectors as manifests spell them. The input is `SELECTOR \0 LABELS`: SELECTOR
//! is YAML/JSON put, in turn, as the label selector of a required pod affinity term, a
//! pod anti-affinity term and a topology spread constraint, as a required node affinity
//! term and as a `nodeSelector`; LABELS (`key=value` lines) are dealt round-robin to
//! three nodes and three bound pods. Each variant is read with `manifest::load_str`;
//! what reads is then checked two ways:
//! - the label index (`Cluster::bound_pods_maybe_matching`) returns a superset of the
//!   bound pods the selector matches (`LabelSelector::matches`);
//! - kube-default places the pending pod and the independent validator accepts the
//!   placement (the filters and the validator agree on the selector).
#![no_main]

use libfuzzer_sys::fuzz_target;
use plimsoll::manifest;
use plimsoll::model::{LabelSelector, Problem};
use plimsoll::place::validate::validate;
use plimsoll::place::{policy_by_name, PolicyOptions};
use serde_yaml::{Mapping, Value};

fn v(s: &str) -> Value {
    serde_yaml::from_str(s).expect("fixed YAML")
}

fn labels(pairs: &[(&str, &str)]) -> Value {
    let mut m = Mapping::new();
    for (k, val) in pairs {
        m.insert(Value::String(k.to_string()), Value::String(val.to_string()));
    }
    Value::Mapping(m)
}

fn node(i: usize, l: &[(&str, &str)]) -> Value {
    let mut n = v(&format!(
        "{{apiVersion: v1, kind: Node, metadata: {{name: n{i}}}, status: {{allocatable: {{cpu: '4', memory: 8Gi, pods: '110'}}}}}}"
    ));
    let mut all = vec![("kubernetes.io/hostname", format!("n{i}"))];
    all.extend(l.iter().map(|(k, val)| (*k, val.to_string())));
    let pairs: Vec<(&str, &str)> = all.iter().map(|(k, val)| (*k, val.as_str())).collect();
    n["metadata"]["labels"] = labels(&pairs);
    n
}

fn pod(name: &str, node: Option<usize>, l: &[(&str, &str)]) -> Value {
    let mut p = v(&format!(
        "{{apiVersion: v1, kind: Pod, metadata: {{name: {name}}}, spec: {{containers: [{{name: c, resources: {{requests: {{cpu: 100m, memory: 64Mi}}}}}}]}}}}"
    ));
    if let Some(n) = node {
        p["spec"]["nodeName"] = Value::String(format!("n{n}"));
    }
    p["metadata"]["labels"] = labels(l);
    p
}

fn check(docs: Vec<Value>) {
    let mut parts = Vec::with_capacity(docs.len());
    for d in &docs {
        match serde_yaml::to_string(d) {
            Ok(t) => parts.push(t),
            Err(_) => return,
        }
    }
    let text = parts.join("---\n");
    let Ok(loaded) = manifest::load_str(&text, "fuzz.yaml") else {
        return;
    };
    let Ok(problem) = Problem::from_parts(loaded.nodes, loaded.pods) else {
        return;
    };
    let cluster = &problem.cluster;
    let selectors: Vec<&LabelSelector> = problem
        .pending
        .iter()
        .flat_map(|p| {
            p.pod_affinity
                .iter()
                .chain(&p.pod_anti_affinity)
                .map(|t| &t.selector)
                .chain(p.topology_spread.iter().map(|c| &c.selector))
        })
        .collect();
    for sel in selectors {
        let maybe = cluster.bound_pods_maybe_matching(sel);
        for (id, p, _) in cluster.bound_pods() {
            if sel.matches(&p.labels) {
                assert!(
                    maybe.contains(&id),
                    "index misses bound pod {} for {sel:?}",
                    p.name
                );
            }
        }
    }
    let opts = PolicyOptions::default();
    let placer = policy_by_name("kube-default", &opts).expect("kube-default exists");
    if let Ok(outcome) = placer.place(&problem) {
        if let Err(violations) = validate(&problem, &outcome.placement) {
            panic!("kube-default placement rejected by the validator: {violations:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (sel_text, label_text) = text.split_once('\0').unwrap_or((text, ""));
    let Ok(sel) = serde_yaml::from_str::<Value>(sel_text) else {
        return;
    };
    let mut dealt: Vec<Vec<(&str, &str)>> = vec![Vec::new(); 6];
    for (j, line) in label_text.lines().take(24).enumerate() {
        let (k, val) = line.split_once('=').unwrap_or((line, ""));
        dealt[j % 6].push((k, val));
    }
    let mut base: Vec<Value> = (0..3).map(|i| node(i, &dealt[i])).collect();
    base.extend((0..3).map(|i| pod(&format!("b{i}"), Some(i), &dealt[3 + i])));
    let term = |sel: &Value| {
        let mut t = v("{topologyKey: kubernetes.io/hostname}");
        t["labelSelector"] = sel.clone();
        Value::Sequence(vec![t])
    };
    let variants: [(&str, Box<dyn Fn(&mut Value)>); 5] = [
        (
            "affinity",
            Box::new(|p: &mut Value| {
                p["spec"]["affinity"] = v("{podAffinity: {}}");
                p["spec"]["affinity"]["podAffinity"]
                    ["requiredDuringSchedulingIgnoredDuringExecution"] = term(&sel);
            }),
        ),
        (
            "anti",
            Box::new(|p: &mut Value| {
                p["spec"]["affinity"] = v("{podAntiAffinity: {}}");
                p["spec"]["affinity"]["podAntiAffinity"]
                    ["requiredDuringSchedulingIgnoredDuringExecution"] = term(&sel);
            }),
        ),
        (
            "spread",
            Box::new(|p: &mut Value| {
                let mut c = v("{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule}");
                c["labelSelector"] = sel.clone();
                p["spec"]["topologySpreadConstraints"] = Value::Sequence(vec![c]);
            }),
        ),
        (
            "node",
            Box::new(|p: &mut Value| {
                p["spec"]["affinity"] =
                    v("{nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {}}}");
                p["spec"]["affinity"]["nodeAffinity"]
                    ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] =
                    Value::Sequence(vec![sel.clone()]);
            }),
        ),
        (
            "nodesel",
            Box::new(|p: &mut Value| {
                p["spec"]["nodeSelector"] = sel.clone();
            }),
        ),
    ];
    for (name, set) in &variants {
        let mut p = pod(&format!("p-{name}"), None, &dealt[3]);
        set(&mut p);
        let mut docs = base.clone();
        docs.push(p);
        check(docs);
    }
});
