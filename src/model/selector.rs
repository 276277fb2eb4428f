//! Label matching: node selector requirements (In, NotIn, Exists, DoesNotExist, Gt, Lt),
//! label selectors for pods, taints and tolerations — with the semantics of
//! `k8s.io/component-helpers/scheduling/corev1` and `k8s.io/apimachinery/pkg/labels`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Labels of a node or pod.
pub type Labels = BTreeMap<String, String>;

/// Operators of node selector requirements and label selector expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operator {
    /// Label value is one of the values.
    In,
    /// Label absent or value not among the values.
    NotIn,
    /// Label present.
    Exists,
    /// Label absent.
    DoesNotExist,
    /// Label value, as an integer, is greater than the single value (node affinity only).
    Gt,
    /// Label value, as an integer, is less than the single value (node affinity only).
    Lt,
}

/// One `key op values` requirement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: Operator,
    /// Values (empty for Exists/DoesNotExist; exactly one integer for Gt/Lt).
    #[serde(default)]
    pub values: Vec<String>,
}

impl Requirement {
    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.key);
        match self.operator {
            Operator::In => v.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Operator::NotIn => !v.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Operator::Exists => v.is_some(),
            Operator::DoesNotExist => v.is_none(),
            Operator::Gt | Operator::Lt => {
                let (Some(v), Some(bound)) = (v, self.values.first()) else {
                    return false;
                };
                let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else {
                    return false;
                };
                if self.operator == Operator::Gt {
                    v > bound
                } else {
                    v < bound
                }
            }
        }
    }
}

/// A node selector term: all requirements must hold (`matchExpressions` AND
/// `matchFields` on `metadata.name`). An empty term matches nothing, as in Kubernetes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSelectorTerm {
    /// Requirements on node labels.
    #[serde(default)]
    pub match_expressions: Vec<Requirement>,
    /// Requirements on node fields; only `metadata.name` exists in Kubernetes.
    #[serde(default)]
    pub match_fields: Vec<Requirement>,
}

impl NodeSelectorTerm {
    /// Whether a node with this name and labels satisfies the term.
    pub fn matches(&self, node_name: &str, labels: &Labels) -> bool {
        if self.match_expressions.is_empty() && self.match_fields.is_empty() {
            return false;
        }
        if !self.match_expressions.iter().all(|r| r.matches(labels)) {
            return false;
        }
        if self.match_fields.is_empty() {
            return true;
        }
        let fields: Labels = [("metadata.name".to_string(), node_name.to_string())].into();
        self.match_fields.iter().all(|r| r.matches(&fields))
    }
}

/// Required node affinity: the node must match at least one term (terms are ORed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSelector {
    /// Terms, ORed.
    pub terms: Vec<NodeSelectorTerm>,
}

impl NodeSelector {
    /// Whether the node matches any term.
    pub fn matches(&self, node_name: &str, labels: &Labels) -> bool {
        self.terms.iter().any(|t| t.matches(node_name, labels))
    }
}

/// A preferred node affinity term with its weight (1–100).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferredTerm {
    /// Weight added to the node's score when the term matches.
    pub weight: i32,
    /// The term.
    pub term: NodeSelectorTerm,
}

/// A pod label selector (`matchLabels` AND `matchExpressions`). An empty selector matches
/// every pod; a missing selector (`None` where optional) matches none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSelector {
    /// Exact label matches.
    #[serde(default)]
    pub match_labels: Labels,
    /// Expressions (In, NotIn, Exists, DoesNotExist).
    #[serde(default)]
    pub match_expressions: Vec<Requirement>,
}

impl LabelSelector {
    /// Whether a pod with these labels matches.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

/// Taint effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TaintEffect {
    /// New pods that do not tolerate it are not scheduled.
    NoSchedule,
    /// The scheduler tries to avoid the node.
    PreferNoSchedule,
    /// Like NoSchedule, and running pods are evicted.
    NoExecute,
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taint {
    /// Key.
    pub key: String,
    /// Value (may be empty).
    #[serde(default)]
    pub value: String,
    /// Effect.
    pub effect: TaintEffect,
}

impl std::fmt::Display for Taint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{{{}: {}}}", self.key, self.value)
    }
}

/// Toleration operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TolerationOperator {
    /// Key and value must equal the taint's.
    #[default]
    Equal,
    /// Key must equal (or be empty, tolerating every key).
    Exists,
}

/// A pod toleration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toleration {
    /// Key; empty with `Exists` tolerates everything.
    #[serde(default)]
    pub key: String,
    /// Operator.
    #[serde(default)]
    pub operator: TolerationOperator,
    /// Value for `Equal`.
    #[serde(default)]
    pub value: String,
    /// Effect to tolerate; `None` tolerates all effects.
    #[serde(default)]
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    /// Whether this toleration tolerates the taint (Kubernetes `ToleratesTaint`).
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if let Some(e) = self.effect {
            if e != taint.effect {
                return false;
            }
        }
        if !self.key.is_empty() && self.key != taint.key {
            return false;
        }
        match self.operator {
            TolerationOperator::Exists => true,
            TolerationOperator::Equal => self.value == taint.value,
        }
    }
}

/// Whether any of `tolerations` tolerates `taint`.
pub fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| t.tolerates(taint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> Labels {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: Operator, values: &[&str]) -> Requirement {
        Requirement {
            key: key.into(),
            operator: op,
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn every_operator() {
        let l = labels(&[("zone", "a"), ("gen", "5")]);
        assert!(req("zone", Operator::In, &["a", "b"]).matches(&l));
        assert!(!req("zone", Operator::In, &["b"]).matches(&l));
        assert!(req("zone", Operator::NotIn, &["b"]).matches(&l));
        assert!(req("missing", Operator::NotIn, &["b"]).matches(&l));
        assert!(!req("zone", Operator::NotIn, &["a"]).matches(&l));
        assert!(req("zone", Operator::Exists, &[]).matches(&l));
        assert!(!req("missing", Operator::Exists, &[]).matches(&l));
        assert!(req("missing", Operator::DoesNotExist, &[]).matches(&l));
        assert!(req("gen", Operator::Gt, &["4"]).matches(&l));
        assert!(!req("gen", Operator::Gt, &["5"]).matches(&l));
        assert!(req("gen", Operator::Lt, &["6"]).matches(&l));
        assert!(
            !req("zone", Operator::Lt, &["6"]).matches(&l),
            "non-integer label"
        );
        assert!(!req("missing", Operator::Gt, &["1"]).matches(&l));
    }

    #[test]
    fn empty_term_matches_nothing_and_fields_match_name() {
        let l = labels(&[]);
        assert!(!NodeSelectorTerm::default().matches("n1", &l));
        let t = NodeSelectorTerm {
            match_expressions: vec![],
            match_fields: vec![req("metadata.name", Operator::In, &["n1"])],
        };
        assert!(t.matches("n1", &l));
        assert!(!t.matches("n2", &l));
    }

    #[test]
    fn tolerations() {
        let taint = Taint {
            key: "gpu".into(),
            value: "true".into(),
            effect: TaintEffect::NoSchedule,
        };
        let eq = Toleration {
            key: "gpu".into(),
            operator: TolerationOperator::Equal,
            value: "true".into(),
            effect: Some(TaintEffect::NoSchedule),
        };
        assert!(eq.tolerates(&taint));
        let wrong_effect = Toleration {
            effect: Some(TaintEffect::NoExecute),
            ..eq.clone()
        };
        assert!(!wrong_effect.tolerates(&taint));
        let all = Toleration {
            operator: TolerationOperator::Exists,
            ..Default::default()
        };
        assert!(all.tolerates(&taint));
        assert_eq!(taint.to_string(), "{gpu: true}");
    }
}
