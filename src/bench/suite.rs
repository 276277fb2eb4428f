//! Suite files: the YAML format, the built-in suites and loading.
//!
//! ```yaml
//! name: smoke                 # required
//! version: 1                  # required, a positive integer: bump it when cases change
//! description: tiny cases     # optional
//! defaults:                   # optional, every field optional
//!   policies: all             # "all" or a list of policy names
//!   time_limit: 10            # the MILP's time limit, seconds
//!   threads: 1                # HiGHS threads (0: HiGHS decides)
//!   seed: 42                  # policies' seed, and synthetic cases' default seed
//! cases:
//!   - name: synthetic-40
//!     synthetic: {nodes: 40, anti_affinity_fraction: 0.8}
//!   - name: openb-500
//!     openb:                  # paths relative to the data folder (datasets::data_dir)
//!       nodes: openb/openb_node_list_gpu_node.csv
//!       pods: openb/openb_pod_list_default.csv
//!       offset: 0             # first pod of the batch (default 0)
//!       count: 500            # pods in the batch
//!       seed: 7               # optional: a seeded random sample instead of a slice
//!   - name: mine
//!     manifests: [cluster.yaml]   # relative to the suite file
//! ```
//!
//! Unknown fields are errors naming the file, the field path and the line.

use super::BenchError;
use crate::datasets::synthetic::SyntheticConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The built-in suites: (name, file text), shipped in `bench/suites/`.
pub const BUILTIN_SUITES: &[(&str, &str)] = &[
    ("smoke", include_str!("../../bench/suites/smoke.yaml")),
    ("standard", include_str!("../../bench/suites/standard.yaml")),
    ("large", include_str!("../../bench/suites/large.yaml")),
];

/// Files the built-in suites' `manifests` cases name, embedded beside them.
const BUILTIN_FILES: &[(&str, &str)] = &[(
    "manifests/smoke-web.yaml",
    include_str!("../../bench/suites/manifests/smoke-web.yaml"),
)];

/// A suite as written in its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    /// Suite name.
    pub name: String,
    /// Version of the suite's definition (bumped whenever its cases change).
    pub version: u32,
    /// What the suite measures.
    #[serde(default)]
    pub description: Option<String>,
    /// Settings every case shares.
    #[serde(default)]
    pub defaults: Defaults,
    /// The cases, run in order.
    pub cases: Vec<CaseDef>,
}

/// A suite's shared settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Policies to run: `all` or a list of names.
    #[serde(default)]
    pub policies: PolicyList,
    /// The MILP's time limit, seconds.
    #[serde(default = "default_time_limit")]
    pub time_limit: f64,
    /// HiGHS threads (0: HiGHS decides).
    #[serde(default = "default_threads")]
    pub threads: u32,
    /// Policies' seed, and synthetic cases' seed unless they give one.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_time_limit() -> f64 {
    10.0
}
fn default_threads() -> u32 {
    1
}
fn default_seed() -> u64 {
    42
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            policies: PolicyList::default(),
            time_limit: default_time_limit(),
            threads: default_threads(),
            seed: default_seed(),
        }
    }
}

/// `all`, or a list of policy names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PolicyList {
    /// The word `all`: every policy in [`crate::place::POLICY_NAMES`].
    All(String),
    /// These policies, in this order.
    List(Vec<String>),
}

impl Default for PolicyList {
    fn default() -> Self {
        PolicyList::All("all".into())
    }
}

/// One case: a name and exactly one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseDef {
    /// Case name, unique in the suite.
    pub name: String,
    /// A seeded synthetic cluster.
    #[serde(default)]
    pub synthetic: Option<SyntheticCase>,
    /// A batch of openb pods on openb nodes.
    #[serde(default)]
    pub openb: Option<OpenbCase>,
    /// Kubernetes manifests (or openb CSV files), relative to the suite file.
    #[serde(default)]
    pub manifests: Option<Vec<PathBuf>>,
}

/// A synthetic case: [`SyntheticConfig`]'s fields, each defaulting to its default
/// (`seed` to the suite's seed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Each field is the SyntheticConfig field of the same name.
pub struct SyntheticCase {
    pub nodes: usize,
    pub seed: Option<u64>,
    pub zones: Option<usize>,
    pub gpu_taint_fraction: Option<f64>,
    pub cordoned_fraction: Option<f64>,
    pub node_agents: Option<bool>,
    pub gpu_demand: Option<f64>,
    pub cpu_demand: Option<f64>,
    pub share_fraction: Option<f64>,
    pub multi_gpu_fraction: Option<f64>,
    pub model_constraint_fraction: Option<f64>,
    pub gang_fraction: Option<f64>,
    pub service_fraction: Option<f64>,
    pub anti_affinity_fraction: Option<f64>,
    pub cpu_pool_selector_fraction: Option<f64>,
    pub zone_affinity_fraction: Option<f64>,
    pub max_replicas: Option<u32>,
    pub max_job_pods: Option<u32>,
}

impl SyntheticCase {
    /// The generator's configuration, unset fields at their defaults.
    pub fn config(&self, default_seed: u64) -> SyntheticConfig {
        let d = SyntheticConfig::default();
        SyntheticConfig {
            nodes: self.nodes,
            seed: self.seed.unwrap_or(default_seed),
            zones: self.zones.unwrap_or(d.zones),
            gpu_taint_fraction: self.gpu_taint_fraction.unwrap_or(d.gpu_taint_fraction),
            cordoned_fraction: self.cordoned_fraction.unwrap_or(d.cordoned_fraction),
            node_agents: self.node_agents.unwrap_or(d.node_agents),
            gpu_demand: self.gpu_demand.unwrap_or(d.gpu_demand),
            cpu_demand: self.cpu_demand.unwrap_or(d.cpu_demand),
            share_fraction: self.share_fraction.unwrap_or(d.share_fraction),
            multi_gpu_fraction: self.multi_gpu_fraction.unwrap_or(d.multi_gpu_fraction),
            model_constraint_fraction: self
                .model_constraint_fraction
                .unwrap_or(d.model_constraint_fraction),
            gang_fraction: self.gang_fraction.unwrap_or(d.gang_fraction),
            service_fraction: self.service_fraction.unwrap_or(d.service_fraction),
            anti_affinity_fraction: self
                .anti_affinity_fraction
                .unwrap_or(d.anti_affinity_fraction),
            cpu_pool_selector_fraction: self
                .cpu_pool_selector_fraction
                .unwrap_or(d.cpu_pool_selector_fraction),
            zone_affinity_fraction: self
                .zone_affinity_fraction
                .unwrap_or(d.zone_affinity_fraction),
            max_replicas: self.max_replicas.unwrap_or(d.max_replicas),
            max_job_pods: self.max_job_pods.unwrap_or(d.max_job_pods),
        }
    }
}

/// A batch of openb pods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenbCase {
    /// Node list CSV, relative to the data folder.
    pub nodes: PathBuf,
    /// Pod list CSV, relative to the data folder.
    pub pods: PathBuf,
    /// First pod of the batch (after the seeded shuffle, if `seed` is given).
    #[serde(default)]
    pub offset: usize,
    /// Pods in the batch.
    pub count: usize,
    /// If given, the pod list is shuffled with this seed before the batch is taken.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// Where a suite's relative manifest paths resolve.
#[derive(Debug, Clone, PartialEq)]
pub enum SuiteBase {
    /// A built-in suite: its manifests are embedded in the binary.
    Builtin,
    /// A suite file: manifests are relative to this folder.
    Dir(PathBuf),
}

/// A loaded, checked suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    /// What the file says.
    pub file: SuiteFile,
    /// The file's name (or `builtin:NAME`), for messages.
    pub source: String,
    /// Where manifest paths resolve.
    pub base: SuiteBase,
}

impl Suite {
    /// A built-in suite by name, or a suite file by path (anything ending in `.yaml` or
    /// `.yml`, or containing a path separator).
    pub fn load(name_or_path: &str) -> Result<Suite, BenchError> {
        let looks_like_path = name_or_path.ends_with(".yaml")
            || name_or_path.ends_with(".yml")
            || name_or_path.contains(std::path::MAIN_SEPARATOR)
            || name_or_path.contains('/');
        if !looks_like_path {
            let text = BUILTIN_SUITES
                .iter()
                .find(|(n, _)| *n == name_or_path)
                .map(|(_, t)| *t)
                .ok_or_else(|| BenchError::UnknownSuite {
                    name: name_or_path.to_string(),
                    known: builtin_names().join(", "),
                })?;
            return Suite::parse(text, &format!("builtin:{name_or_path}"), SuiteBase::Builtin);
        }
        let path = Path::new(name_or_path);
        let text = std::fs::read_to_string(path).map_err(|e| BenchError::Io {
            file: path.display().to_string(),
            msg: e.to_string(),
        })?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Suite::parse(&text, &path.display().to_string(), SuiteBase::Dir(dir))
    }

    /// Parses and checks a suite's text; `source` names it in errors.
    pub fn parse(text: &str, source: &str, base: SuiteBase) -> Result<Suite, BenchError> {
        let file: SuiteFile = serde_yaml::from_str(text).map_err(|e| BenchError::Suite {
            file: source.to_string(),
            msg: e.to_string(),
        })?;
        let bad = |msg: String| BenchError::Suite {
            file: source.to_string(),
            msg,
        };
        if file.name.trim().is_empty() {
            return Err(bad("name: must not be empty".into()));
        }
        if file.version == 0 {
            return Err(bad("version: must be at least 1".into()));
        }
        let d = &file.defaults;
        if !(d.time_limit.is_finite() && d.time_limit > 0.0) {
            return Err(bad(format!(
                "defaults.time_limit: must be positive, got {}",
                d.time_limit
            )));
        }
        if let PolicyList::All(w) = &d.policies {
            if w != "all" {
                return Err(bad(format!(
                    "defaults.policies: {w:?} is neither \"all\" nor a list of policy names"
                )));
            }
        }
        check_policies(&policy_names(&d.policies)).map_err(|m| bad(format!("defaults.{m}")))?;
        if file.cases.is_empty() {
            return Err(bad("cases: at least one case is needed".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in file.cases.iter().enumerate() {
            let at = format!("cases[{i}] ({})", c.name);
            if !seen.insert(c.name.as_str()) {
                return Err(bad(format!("{at}: name: duplicate case name")));
            }
            let sources = usize::from(c.synthetic.is_some())
                + usize::from(c.openb.is_some())
                + usize::from(c.manifests.is_some());
            if sources != 1 {
                return Err(bad(format!(
                    "{at}: give exactly one of synthetic, openb, manifests (got {sources})"
                )));
            }
            if let Some(s) = &c.synthetic {
                s.config(d.seed)
                    .validate()
                    .map_err(|e| bad(format!("{at}: synthetic: {e}")))?;
            }
            if let Some(o) = &c.openb {
                if o.count == 0 {
                    return Err(bad(format!("{at}: openb.count: must be at least 1")));
                }
            }
            if c.manifests.as_ref().is_some_and(Vec::is_empty) {
                return Err(bad(format!("{at}: manifests: at least one file is needed")));
            }
        }
        Ok(Suite {
            file,
            source: source.to_string(),
            base,
        })
    }

    /// The text of a manifest file a case names (embedded for built-in suites).
    pub(crate) fn manifest_text(&self, rel: &Path) -> Result<(String, String), BenchError> {
        match &self.base {
            SuiteBase::Builtin => {
                let key = rel.to_string_lossy().replace('\\', "/");
                BUILTIN_FILES
                    .iter()
                    .find(|(n, _)| *n == key)
                    .map(|(n, t)| (format!("builtin:{n}"), t.to_string()))
                    .ok_or_else(|| BenchError::Io {
                        file: format!("builtin:{key}"),
                        msg: "no such embedded file".into(),
                    })
            }
            SuiteBase::Dir(dir) => {
                let p = dir.join(rel);
                std::fs::read_to_string(&p)
                    .map(|t| (p.display().to_string(), t))
                    .map_err(|e| BenchError::Io {
                        file: p.display().to_string(),
                        msg: e.to_string(),
                    })
            }
        }
    }
}

/// Names of the built-in suites.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN_SUITES.iter().map(|(n, _)| *n).collect()
}

/// The policy names a list stands for.
pub fn policy_names(list: &PolicyList) -> Vec<String> {
    match list {
        PolicyList::All(_) => crate::place::POLICY_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        PolicyList::List(v) => v.clone(),
    }
}

/// Checks that every name is a known policy and the list is not empty.
pub fn check_policies(names: &[String]) -> Result<(), String> {
    if names.is_empty() {
        return Err("policies: no policy given".into());
    }
    if let Some(bad) = names
        .iter()
        .find(|p| p.parse::<crate::place::PolicyName>().is_err())
    {
        return Err(format!(
            "policies: unknown policy {bad:?} (known: {})",
            crate::place::POLICY_NAMES.join(", ")
        ));
    }
    Ok(())
}
