//! Policies by name, as the CLI, simulator, extender and benchmarks choose them.

use super::milp::{MilpOptions, MilpPlacer, Objective};
use super::online::{OnlineKind, OnlinePolicy};
use super::{PlaceError, Placer};

/// Every policy name [`policy_by_name`] accepts, online policies first.
pub const POLICY_NAMES: &[&str] = &[
    "kube-default",
    "best-fit",
    "most-allocated",
    "least-allocated",
    "dot-product",
    "gpu-packing",
    "gpu-clustering",
    "fgd",
    "first-fit",
    "random",
    "milp",
];

/// Settings shared by the policies; each policy reads the ones it uses.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyOptions {
    /// Seed for `random` and for seeded tie-breaking.
    pub seed: u64,
    /// The MILP's second goal.
    pub objective: Objective,
    /// The MILP's time limit in seconds.
    pub time_limit_seconds: f64,
    /// The MILP's relative gap at which it may stop.
    pub mip_rel_gap: f64,
    /// Solver threads (HiGHS); 0 lets HiGHS decide.
    pub threads: u32,
}

impl Default for PolicyOptions {
    fn default() -> Self {
        PolicyOptions {
            seed: 42,
            objective: Objective::Pack,
            time_limit_seconds: 10.0,
            mip_rel_gap: 0.01,
            threads: 1,
        }
    }
}

/// Builds the policy called `name`.
pub fn policy_by_name(name: &str, opts: &PolicyOptions) -> Result<Box<dyn Placer>, PlaceError> {
    let online = |k| -> Box<dyn Placer> { Box::new(OnlinePolicy::new(k, opts.seed)) };
    Ok(match name {
        "kube-default" => online(OnlineKind::KubeDefault),
        "best-fit" => online(OnlineKind::BestFit),
        "most-allocated" => online(OnlineKind::MostAllocated),
        "least-allocated" => online(OnlineKind::LeastAllocated),
        "dot-product" => online(OnlineKind::DotProduct),
        "gpu-packing" => online(OnlineKind::GpuPacking),
        "gpu-clustering" => online(OnlineKind::GpuClustering),
        "fgd" => online(OnlineKind::Fgd),
        "first-fit" => online(OnlineKind::FirstFit),
        "random" => online(OnlineKind::Random),
        "milp" => Box::new(MilpPlacer::new(MilpOptions {
            objective: opts.objective,
            time_limit_seconds: opts.time_limit_seconds,
            mip_rel_gap: opts.mip_rel_gap,
            threads: opts.threads,
            seed: opts.seed,
            ..Default::default()
        })?),
        other => return Err(PlaceError::UnknownPolicy(other.to_string())),
    })
}
