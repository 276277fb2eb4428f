//! Command-line options shared by the subcommands, checked into `PolicyOptions`.

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use plimsoll::place::milp::Objective;
use plimsoll::place::PolicyOptions;

/// The MILP's second goal, after placing the most priority-weighted pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectiveArg {
    /// Use as few nodes as possible.
    Pack,
    /// Spread load evenly.
    Balance,
    /// Keep GPU fragmentation low.
    Fragmentation,
}

impl From<ObjectiveArg> for Objective {
    fn from(o: ObjectiveArg) -> Self {
        match o {
            ObjectiveArg::Pack => Objective::Pack,
            ObjectiveArg::Balance => Objective::Balance,
            ObjectiveArg::Fragmentation => Objective::Fragmentation,
        }
    }
}

/// Options every policy reads (the MILP ones are ignored by greedy policies).
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// The MILP's second goal.
    #[arg(long, value_enum, default_value = "pack")]
    pub objective: ObjectiveArg,
    /// The MILP's time limit in seconds (> 0).
    #[arg(long = "time-limit", value_name = "SECS", default_value_t = 10.0)]
    pub time_limit: f64,
    /// The MILP's relative gap at which it may stop (0 to 1).
    #[arg(long, value_name = "REL", default_value_t = 0.01)]
    pub gap: f64,
    /// Solver threads (0 lets HiGHS decide).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: u32,
    /// Seed for `random` and for seeded tie-breaking.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
}

impl PolicyArgs {
    /// Checks ranges and builds the library's options.
    pub fn to_options(&self) -> Result<PolicyOptions> {
        if !(self.time_limit.is_finite() && self.time_limit > 0.0) {
            bail!(
                "invalid option --time-limit: {} is not a positive number of seconds",
                self.time_limit
            );
        }
        if !(0.0..=1.0).contains(&self.gap) {
            bail!(
                "invalid option --gap: {} is not a relative gap in [0, 1]",
                self.gap
            );
        }
        Ok(PolicyOptions {
            seed: self.seed,
            objective: self.objective.into(),
            time_limit_seconds: self.time_limit,
            mip_rel_gap: self.gap,
            threads: self.threads,
        })
    }
}
