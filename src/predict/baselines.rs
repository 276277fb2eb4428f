//! The baselines the learned models are measured against. None of them learns; each
//! reads a trailing window of `values[..=t]`:
//! - [`Baseline::LastValue`]: the value at `t`;
//! - [`Baseline::MovingMax`]: the maximum over the window (default 1 hour);
//! - [`Baseline::VpaP90`]: the Kubernetes VPA recommender's rule, the 90th percentile
//!   over the window (default 1 day) times a margin (default 1.15);
//! - [`Baseline::NSigma`]: Koordinator-style mean + N·σ over the window (default 1 day,
//!   N = 2).

use super::features::{mean_max_std, quantile, window_steps};
use super::{PredictError, Predictor, Series};
use serde::{Deserialize, Serialize};

/// A baseline predictor (windows in seconds, converted to steps of the series read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Baseline {
    /// The last value.
    LastValue,
    /// Maximum over a trailing window.
    MovingMax {
        /// Window, seconds.
        window_secs: i64,
    },
    /// 90th percentile over a trailing window times `margin`.
    VpaP90 {
        /// Window, seconds.
        window_secs: i64,
        /// Multiplier (VPA: 1.15).
        margin: f64,
    },
    /// Mean + `n` standard deviations over a trailing window.
    NSigma {
        /// Window, seconds.
        window_secs: i64,
        /// Number of standard deviations.
        n: f64,
    },
}

impl Baseline {
    /// Moving maximum over one hour.
    pub fn moving_max() -> Baseline {
        Baseline::MovingMax { window_secs: 3_600 }
    }

    /// VPA-style p90 × 1.15 over one day.
    pub fn vpa_p90() -> Baseline {
        Baseline::VpaP90 {
            window_secs: 86_400,
            margin: 1.15,
        }
    }

    /// Mean + 2σ over one day.
    pub fn n_sigma() -> Baseline {
        Baseline::NSigma {
            window_secs: 86_400,
            n: 2.0,
        }
    }

    /// Checks the parameters: windows > 0, margin and n finite and ≥ 0.
    pub fn validate(self) -> Result<Baseline, PredictError> {
        let bad = |name, value: String, reason| PredictError::InvalidParam {
            name,
            value,
            reason,
        };
        match &self {
            Baseline::LastValue => {}
            Baseline::MovingMax { window_secs }
            | Baseline::VpaP90 { window_secs, .. }
            | Baseline::NSigma { window_secs, .. }
                if *window_secs <= 0 =>
            {
                return Err(bad("window", window_secs.to_string(), "must be > 0 s"))
            }
            Baseline::VpaP90 { margin, .. } if !(margin.is_finite() && *margin >= 0.0) => {
                return Err(bad("margin", margin.to_string(), "must be finite and >= 0"))
            }
            Baseline::NSigma { n, .. } if !(n.is_finite() && *n >= 0.0) => {
                return Err(bad("n", n.to_string(), "must be finite and >= 0"))
            }
            _ => {}
        }
        Ok(self)
    }
}

impl Predictor for Baseline {
    fn name(&self) -> &str {
        match self {
            Baseline::LastValue => "last-value",
            Baseline::MovingMax { .. } => "moving-max",
            Baseline::VpaP90 { .. } => "vpa-p90",
            Baseline::NSigma { .. } => "n-sigma",
        }
    }

    fn predict(&self, series: &Series, t: usize) -> f64 {
        let hist = &series.values[..=t];
        let window =
            |secs: i64| &hist[hist.len().saturating_sub(window_steps(secs, series.step))..];
        match *self {
            Baseline::LastValue => hist[t],
            Baseline::MovingMax { window_secs } => mean_max_std(window(window_secs)).1,
            Baseline::VpaP90 {
                window_secs,
                margin,
            } => quantile(window(window_secs), 0.9, &mut Vec::new()) * margin,
            Baseline::NSigma { window_secs, n } => {
                let (mean, _, std) = mean_max_std(window(window_secs));
                mean + n * std
            }
        }
    }
}
