//! Strict readers for affinity: node affinity (required and preferred terms with every
//! operator), pod affinity and anti-affinity (required terms; preferred ones validated and
//! ignored), and the label selectors they use.

use super::error::ferr;
use super::value::*;
use crate::model::{
    LabelSelector, NodeSelector, NodeSelectorTerm, Operator, PodAffinityTerm, PreferredTerm,
    Requirement,
};
use serde_yaml::Value;

/// Fields of Affinity.
const AFFINITY_FIELDS: &[&str] = &["nodeAffinity", "podAffinity", "podAntiAffinity"];
const REQUIRED: &str = "requiredDuringSchedulingIgnoredDuringExecution";
const PREFERRED: &str = "preferredDuringSchedulingIgnoredDuringExecution";

fn operator(v: &Value, path: &str, node: bool) -> R<Operator> {
    let s = string(v, path)?;
    let op = match s.as_str() {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        "Gt" if node => Operator::Gt,
        "Lt" if node => Operator::Lt,
        _ => {
            let ok = if node {
                "In, NotIn, Exists, DoesNotExist, Gt, Lt"
            } else {
                "In, NotIn, Exists, DoesNotExist"
            };
            return Err(ferr(
                path,
                format!("invalid operator {s:?}; expected one of: {ok}"),
            ));
        }
    };
    Ok(op)
}

/// One requirement (`key`, `operator`, `values`), validated as the API server does.
fn requirement(v: &Value, path: &str, node: bool) -> R<Requirement> {
    let m = map(v, path)?;
    check_keys(m, path, &["key", "operator", "values"])?;
    let key = opt_string(m, "key", path)?
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ferr(&join(path, "key"), "required"))?;
    let op_v = get(m, "operator").ok_or_else(|| ferr(&join(path, "operator"), "required"))?;
    let operator = operator(op_v, &join(path, "operator"), node)?;
    let vp = join(path, "values");
    let values = strings(get(m, "values"), &vp)?;
    match operator {
        Operator::In | Operator::NotIn if values.is_empty() => {
            return Err(ferr(
                &vp,
                format!("must be non-empty for operator {operator:?}"),
            ))
        }
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
            return Err(ferr(
                &vp,
                format!("must be empty for operator {operator:?}"),
            ))
        }
        Operator::Gt | Operator::Lt => {
            if values.len() != 1 {
                return Err(ferr(
                    &vp,
                    format!(
                        "operator {operator:?} needs exactly one value, found {}",
                        values.len()
                    ),
                ));
            }
            if values[0].parse::<i64>().is_err() {
                return Err(ferr(
                    &index(&vp, 0),
                    format!("{:?} is not an integer (operator {operator:?})", values[0]),
                ));
            }
        }
        _ => {}
    }
    Ok(Requirement {
        key,
        operator,
        values,
    })
}

fn requirements(v: Option<&Value>, path: &str, node: bool) -> R<Vec<Requirement>> {
    seq(v, path)?
        .iter()
        .enumerate()
        .map(|(i, r)| requirement(r, &index(path, i), node))
        .collect()
}

/// A node selector term.
fn node_selector_term(v: &Value, path: &str) -> R<NodeSelectorTerm> {
    let m = map(v, path)?;
    check_keys(m, path, &["matchExpressions", "matchFields"])?;
    let match_expressions = requirements(
        get(m, "matchExpressions"),
        &join(path, "matchExpressions"),
        true,
    )?;
    let fp = join(path, "matchFields");
    let match_fields = requirements(get(m, "matchFields"), &fp, true)?;
    for (i, f) in match_fields.iter().enumerate() {
        if f.key != "metadata.name" || !matches!(f.operator, Operator::In | Operator::NotIn) {
            return Err(ferr(
                &index(&fp, i),
                "only key metadata.name with In or NotIn is supported",
            ));
        }
    }
    Ok(NodeSelectorTerm {
        match_expressions,
        match_fields,
    })
}

/// A label selector (`matchLabels`, `matchExpressions`).
pub(crate) fn label_selector(v: &Value, path: &str) -> R<LabelSelector> {
    let m = map(v, path)?;
    check_keys(m, path, &["matchExpressions", "matchLabels"])?;
    Ok(LabelSelector {
        match_labels: string_map(get(m, "matchLabels"), &join(path, "matchLabels"))?,
        match_expressions: requirements(
            get(m, "matchExpressions"),
            &join(path, "matchExpressions"),
            false,
        )?,
    })
}

pub(crate) fn required_selector(
    m: Option<&serde_yaml::Mapping>,
    path: &str,
    why: &str,
) -> R<LabelSelector> {
    let v = get(m, "labelSelector")
        .ok_or_else(|| ferr(&join(path, "labelSelector"), format!("required ({why})")))?;
    label_selector(v, &join(path, "labelSelector"))
}

pub(crate) fn unsupported_if_set(
    m: Option<&serde_yaml::Mapping>,
    path: &str,
    keys: &[&str],
) -> R<()> {
    for k in keys {
        let set = match get(m, k) {
            None => false,
            Some(Value::Sequence(s)) => !s.is_empty(),
            Some(_) => true,
        };
        if set {
            return Err(ferr(&join(path, k), "is not supported by Plimsoll"));
        }
    }
    Ok(())
}

fn pod_affinity_term(v: &Value, path: &str) -> R<PodAffinityTerm> {
    let m = map(v, path)?;
    check_keys(
        m,
        path,
        &[
            "labelSelector",
            "matchLabelKeys",
            "mismatchLabelKeys",
            "namespaceSelector",
            "namespaces",
            "topologyKey",
        ],
    )?;
    unsupported_if_set(
        m,
        path,
        &["matchLabelKeys", "mismatchLabelKeys", "namespaceSelector"],
    )?;
    let topology_key = opt_string(m, "topologyKey", path)?
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ferr(&join(path, "topologyKey"), "required"))?;
    Ok(PodAffinityTerm {
        selector: required_selector(m, path, "a term without one selects no pods")?,
        namespaces: strings(get(m, "namespaces"), &join(path, "namespaces"))?,
        topology_key,
    })
}

/// Pod affinity terms: the required ones; preferred ones are validated and dropped.
fn pod_affinity(v: Option<&Value>, path: &str) -> R<Vec<PodAffinityTerm>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let m = map(v, path)?;
    check_keys(m, path, &[PREFERRED, REQUIRED])?;
    let pp = join(path, PREFERRED);
    for (i, w) in seq(get(m, PREFERRED), &pp)?.iter().enumerate() {
        let wp = index(&pp, i);
        let wm = map(w, &wp)?;
        check_keys(wm, &wp, &["podAffinityTerm", "weight"])?;
        opt_int_in(wm, "weight", &wp, 1, 100)?
            .ok_or_else(|| ferr(&join(&wp, "weight"), "required"))?;
        let t = get(wm, "podAffinityTerm")
            .ok_or_else(|| ferr(&join(&wp, "podAffinityTerm"), "required"))?;
        pod_affinity_term(t, &join(&wp, "podAffinityTerm"))?;
    }
    let rp = join(path, REQUIRED);
    seq(get(m, REQUIRED), &rp)?
        .iter()
        .enumerate()
        .map(|(i, t)| pod_affinity_term(t, &index(&rp, i)))
        .collect()
}

/// What `spec.affinity` says.
#[derive(Debug, Default)]
pub(crate) struct Affinity {
    pub required: Option<NodeSelector>,
    pub preferred: Vec<PreferredTerm>,
    pub pod_affinity: Vec<PodAffinityTerm>,
    pub pod_anti_affinity: Vec<PodAffinityTerm>,
}

/// Reads `spec.affinity`.
pub(crate) fn affinity(v: Option<&Value>, path: &str) -> R<Affinity> {
    let mut out = Affinity::default();
    let Some(v) = v else { return Ok(out) };
    let m = map(v, path)?;
    check_keys(m, path, AFFINITY_FIELDS)?;
    if let Some(na) = get(m, "nodeAffinity") {
        let np = join(path, "nodeAffinity");
        let nm = map(na, &np)?;
        check_keys(nm, &np, &[PREFERRED, REQUIRED])?;
        if let Some(req) = get(nm, REQUIRED) {
            let rp = join(&np, REQUIRED);
            let rm = map(req, &rp)?;
            check_keys(rm, &rp, &["nodeSelectorTerms"])?;
            let tp = join(&rp, "nodeSelectorTerms");
            let terms = seq(get(rm, "nodeSelectorTerms"), &tp)?
                .iter()
                .enumerate()
                .map(|(i, t)| node_selector_term(t, &index(&tp, i)))
                .collect::<R<Vec<_>>>()?;
            if terms.is_empty() {
                return Err(ferr(&tp, "must have at least one term"));
            }
            out.required = Some(NodeSelector { terms });
        }
        let pp = join(&np, PREFERRED);
        for (i, w) in seq(get(nm, PREFERRED), &pp)?.iter().enumerate() {
            let wp = index(&pp, i);
            let wm = map(w, &wp)?;
            check_keys(wm, &wp, &["preference", "weight"])?;
            let weight = opt_int_in(wm, "weight", &wp, 1, 100)?
                .ok_or_else(|| ferr(&join(&wp, "weight"), "required"))?;
            let t =
                get(wm, "preference").ok_or_else(|| ferr(&join(&wp, "preference"), "required"))?;
            out.preferred.push(PreferredTerm {
                weight: weight as i32,
                term: node_selector_term(t, &join(&wp, "preference"))?,
            });
        }
    }
    out.pod_affinity = pod_affinity(get(m, "podAffinity"), &join(path, "podAffinity"))?;
    out.pod_anti_affinity =
        pod_affinity(get(m, "podAntiAffinity"), &join(path, "podAntiAffinity"))?;
    Ok(out)
}
