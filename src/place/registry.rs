//! Policies by name, as the CLI, simulator, extender and benchmarks choose them.

#[cfg(feature = "milp")]
use super::milp::{MilpOptions, MilpPlacer};
use super::online::{OnlineKind, OnlinePolicy};
use super::Objective;
use super::{PlaceError, Placer, Plugins};
use std::fmt;
use std::str::FromStr;

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
    "cbf",
    "first-fit",
    "random",
    "lookahead:all",
    #[cfg(feature = "milp")]
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

/// A policy chosen by name: the one place where names become policies, for the CLI, the
/// simulator, the extender and the benchmarks. Parse it with [`str::parse`]
/// (`"best-fit".parse::<PolicyName>()`), then [`build`](PolicyName::build) it with
/// checked [`PolicyOptions`] (the seed included: nothing is hard-coded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyName {
    /// One of the online policies.
    Online(OnlineKind),
    /// `lookahead:W` (`lookahead:all`: `None`): windows of pending pods planned together
    /// by `cbf` (see [`super::lookahead`]).
    Lookahead(Option<usize>),
    /// The MILP (all pending pods at once; needs the `milp` feature).
    #[cfg(feature = "milp")]
    Milp,
}

impl PolicyName {
    /// The name as users write it.
    pub fn name(&self) -> String {
        match self {
            PolicyName::Online(k) => k.name().to_string(),
            PolicyName::Lookahead(Some(w)) => format!("lookahead:{w}"),
            PolicyName::Lookahead(None) => "lookahead:all".into(),
            #[cfg(feature = "milp")]
            PolicyName::Milp => "milp".into(),
        }
    }

    /// Builds the policy with `opts`: the seed for `random` and tie-breaking; the MILP's
    /// objective, time limit, gap and threads, which [`MilpPlacer::new`] checks.
    pub fn build(&self, opts: &PolicyOptions) -> Result<Box<dyn Placer>, PlaceError> {
        self.build_with_plugins(opts, Plugins::default())
    }

    /// [`build`](PolicyName::build) with embedders' `plugins` attached.
    pub fn build_with_plugins(
        &self,
        opts: &PolicyOptions,
        plugins: Plugins,
    ) -> Result<Box<dyn Placer>, PlaceError> {
        Ok(match *self {
            PolicyName::Online(k) => {
                Box::new(OnlinePolicy::new(k, opts.seed).with_plugins(plugins))
            }
            PolicyName::Lookahead(w) => Box::new(super::lookahead::Lookahead::new(
                w,
                OnlinePolicy::new(OnlineKind::Cbf, opts.seed).with_plugins(plugins),
            )),
            #[cfg(feature = "milp")]
            PolicyName::Milp => {
                let milp = MilpPlacer::new(MilpOptions {
                    objective: opts.objective,
                    time_limit_seconds: opts.time_limit_seconds,
                    mip_rel_gap: opts.mip_rel_gap,
                    threads: opts.threads,
                    seed: opts.seed,
                    ..Default::default()
                })?;
                Box::new(milp.with_plugins(plugins))
            }
        })
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for PolicyName {
    type Err = PlaceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        #[cfg(feature = "milp")]
        if s == "milp" {
            return Ok(PolicyName::Milp);
        }
        if let Some(w) = s.strip_prefix("lookahead:") {
            return super::lookahead::Lookahead::parse_window(w).map(PolicyName::Lookahead);
        }
        s.parse().map(PolicyName::Online)
    }
}

/// Builds the policy called `name` (any of [`POLICY_NAMES`]): `name.parse::<PolicyName>()`
/// then [`PolicyName::build`].
pub fn policy_by_name(name: &str, opts: &PolicyOptions) -> Result<Box<dyn Placer>, PlaceError> {
    name.parse::<PolicyName>()?.build(opts)
}
