//! Predicted usage per pod, and the usage CSV file.
//!
//! The file has the header `pod,cpu` or `pod,cpu,memory`; each row names a bound pod by
//! `namespace/name` or by `name` alone (an error if that name exists in several
//! namespaces), with CPU and memory as Kubernetes quantities (`250m`, `1.5`, `512Mi`).
//! An empty memory cell means "no prediction". Unknown pods, repeated pods, malformed or
//! negative quantities and wrong headers are errors naming the file and line. Pods the
//! file does not list use their requests as their predicted usage (likewise memory
//! when the cell is empty); [`Usage::defaulted`] counts them.

use super::BalanceError;
use crate::model::{Cluster, PodId, Quantity};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Predicted usage of one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodUsage {
    /// CPU in millicores.
    pub cpu_milli: u64,
    /// Memory in bytes, if predicted (the request is used otherwise).
    pub memory_bytes: Option<u64>,
}

/// Predicted usage of the bound pods of a cluster, by pod id. Pods without an entry
/// count their requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    by_pod: BTreeMap<PodId, PodUsage>,
    /// Bound pods without an entry when the usage was read from a file.
    defaulted: usize,
}

impl Usage {
    /// Usage from a map by pod id.
    pub fn new(by_pod: BTreeMap<PodId, PodUsage>) -> Self {
        Usage {
            by_pod,
            defaulted: 0,
        }
    }

    /// Usage by pod key (`namespace/name`) for the bound pods of `cluster` (for callers
    /// that know pods by name, such as an experiment's end state). An unknown key is an
    /// error; pods without an entry use their requests.
    pub fn from_keys<K: AsRef<str>>(
        cluster: &Cluster,
        entries: impl IntoIterator<Item = (K, PodUsage)>,
    ) -> Result<Usage, BalanceError> {
        let ids: HashMap<String, PodId> = cluster
            .bound_pods()
            .map(|(id, pod, _)| (pod.key(), id))
            .collect();
        let mut usage = Usage::default();
        for (key, u) in entries {
            let key = key.as_ref();
            let id = ids.get(key).ok_or_else(|| BalanceError::UnknownPod {
                pod: key.to_string(),
            })?;
            usage.insert(*id, u);
        }
        usage.defaulted = cluster.bound_count() - usage.len();
        Ok(usage)
    }

    /// Sets one pod's usage.
    pub fn insert(&mut self, pod: PodId, usage: PodUsage) {
        self.by_pod.insert(pod, usage);
    }

    /// One pod's usage, if known.
    pub fn get(&self, pod: PodId) -> Option<&PodUsage> {
        self.by_pod.get(&pod)
    }

    /// Number of pods with an entry.
    pub fn len(&self) -> usize {
        self.by_pod.len()
    }

    /// True if no pod has an entry.
    pub fn is_empty(&self) -> bool {
        self.by_pod.is_empty()
    }

    /// Whether any entry predicts memory.
    pub fn has_memory(&self) -> bool {
        self.by_pod.values().any(|u| u.memory_bytes.is_some())
    }

    /// Bound pods the file did not list (they use their requests).
    pub fn defaulted(&self) -> usize {
        self.defaulted
    }
}

/// Reads a usage CSV file (see the module docs) for the bound pods of `cluster`.
pub fn read_usage_file(path: &Path, cluster: &Cluster) -> Result<Usage, BalanceError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| BalanceError::UsageFile {
        file: file.clone(),
        line: 0,
        msg: format!("cannot read: {e}"),
    })?;
    parse_usage(&text, &file, cluster)
}

/// Parses usage CSV text; `file` names it in errors.
pub fn parse_usage(text: &str, file: &str, cluster: &Cluster) -> Result<Usage, BalanceError> {
    let err = |line: u64, msg: String| BalanceError::UsageFile {
        file: file.to_string(),
        line,
        msg,
    };
    let mut by_key: HashMap<String, PodId> = HashMap::new();
    let mut by_name: HashMap<&str, Vec<PodId>> = HashMap::new();
    for (id, pod, _) in cluster.bound_pods() {
        by_key.insert(pod.key(), id);
        by_name.entry(pod.name.as_str()).or_default().push(id);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| err(1, format!("bad header: {e}")))?
        .clone();
    let names: Vec<&str> = headers.iter().collect();
    let with_memory = match names.as_slice() {
        ["pod", "cpu"] => false,
        ["pod", "cpu", "memory"] => true,
        _ => {
            return Err(err(
                1,
                format!(
                    "header must be `pod,cpu` or `pod,cpu,memory`, found `{}`",
                    names.join(",")
                ),
            ))
        }
    };
    let mut usage = Usage::default();
    let mut seen: HashMap<PodId, u64> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            err(line, format!("malformed row: {e}"))
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let pod = record.get(0).unwrap_or("");
        let id = if pod.contains('/') {
            by_key.get(pod).copied()
        } else {
            match by_name.get(pod).map(Vec::as_slice) {
                Some([id]) => Some(*id),
                Some(ids) if ids.len() > 1 => {
                    return Err(err(
                        line,
                        format!("pod name {pod:?} is ambiguous (in several namespaces): write namespace/name"),
                    ))
                }
                _ => None,
            }
        };
        let id = id.ok_or_else(|| {
            err(
                line,
                format!("unknown pod {pod:?} (no bound pod has that name)"),
            )
        })?;
        if let Some(first) = seen.insert(id, line) {
            return Err(err(
                line,
                format!("pod {pod:?} repeated (first on line {first})"),
            ));
        }
        let cpu_text = record.get(1).unwrap_or("");
        let cpu_milli = Quantity::parse_milli(cpu_text)
            .map_err(|e| err(line, format!("field cpu: bad quantity {cpu_text:?}: {e}")))?;
        let memory_bytes = match record.get(2).filter(|_| with_memory) {
            None | Some("") => None,
            Some(m) => Some(
                Quantity::parse_units(m)
                    .map_err(|e| err(line, format!("field memory: bad quantity {m:?}: {e}")))?,
            ),
        };
        usage.insert(
            id,
            PodUsage {
                cpu_milli,
                memory_bytes,
            },
        );
    }
    usage.defaulted = cluster.bound_count() - usage.len();
    Ok(usage)
}
