//! The batch objective: what the MILP optimises once the most priority-weighted pods are
//! placed. It lives outside `milp` so policy options mean the same with or without the
//! `milp` feature.

use super::PlaceError;
use std::fmt;
use std::str::FromStr;

/// The MILP's second goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Objective {
    /// Fewest nodes newly put in use.
    #[default]
    Pack,
    /// Lowest maximum utilisation (CPU, memory, GPU) over the nodes.
    Balance,
    /// Fewest milli-GPU left free on partly used devices.
    Fragmentation,
}

impl Objective {
    /// The CLI spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Objective::Pack => "pack",
            Objective::Balance => "balance",
            Objective::Fragmentation => "fragmentation",
        }
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Objective {
    type Err = PlaceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pack" => Ok(Objective::Pack),
            "balance" => Ok(Objective::Balance),
            "fragmentation" => Ok(Objective::Fragmentation),
            other => Err(PlaceError::InvalidOption {
                name: "objective",
                msg: format!("{other:?} is not one of pack, balance, fragmentation"),
            }),
        }
    }
}
