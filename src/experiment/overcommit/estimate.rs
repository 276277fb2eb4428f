//! Peak estimators for a static placement: from a usage history (samples strictly before
//! the split, nothing after), one number meant to bound the usage over the whole replay.
//!
//! Honest baselines until the learned models are wired in: N-sigma (mean + N·σ, as
//! Koordinator estimates node peaks), the history maximum, and quantiles (VPA's
//! recommender uses the 90th percentile with a 15 % margin).

use super::workload::VmWorkload;
use super::OvercommitError;

/// Estimates a workload's peak usage over a future period from its history.
pub trait PeakEstimator: Send + Sync {
    /// The name as `--predictor` spells it.
    fn name(&self) -> String;

    /// The estimated peak, in the history's unit; `None` if the history is empty (the
    /// pod then keeps its request). Must use only `history`.
    fn peak(&self, history: &[f64]) -> Option<f64>;

    /// The estimated CPU peak of `vm`, cores, from its history only. The default applies
    /// [`peak`](Self::peak) to `vm.history_cpu_cores`; learned models override it to use
    /// the sample times (time-of-day features).
    fn cpu_peak(&self, vm: &VmWorkload) -> Option<f64> {
        self.peak(&vm.history_cpu_cores)
    }
}

/// Mean + N standard deviations (population σ) of the history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NSigma {
    /// How many standard deviations above the mean.
    pub n: f64,
}

impl PeakEstimator for NSigma {
    fn name(&self) -> String {
        format!("nsigma:{}", self.n)
    }

    fn peak(&self, history: &[f64]) -> Option<f64> {
        if history.is_empty() {
            return None;
        }
        let len = history.len() as f64;
        let mean = history.iter().sum::<f64>() / len;
        let var = history.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / len;
        Some(mean + self.n * var.sqrt())
    }
}

/// The largest value of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryMax;

impl PeakEstimator for HistoryMax {
    fn name(&self) -> String {
        "max".into()
    }

    fn peak(&self, history: &[f64]) -> Option<f64> {
        history.iter().copied().reduce(f64::max)
    }
}

/// A quantile of the history times a factor (`vpa` = 90th percentile × 1.15).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantile {
    /// The quantile, in (0, 1].
    pub q: f64,
    /// Multiplier applied to it.
    pub factor: f64,
}

impl PeakEstimator for Quantile {
    fn name(&self) -> String {
        if (self.q, self.factor) == (0.9, 1.15) {
            "vpa".into()
        } else {
            format!("p{}", self.q * 100.0)
        }
    }

    fn peak(&self, history: &[f64]) -> Option<f64> {
        if history.is_empty() {
            return None;
        }
        let mut v = history.to_vec();
        v.sort_by(f64::total_cmp);
        // Nearest rank: the smallest value with at least q of the samples at or below it.
        let rank = ((self.q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1] * self.factor)
    }
}

/// Predictor names [`estimator_by_name`] accepts.
pub const PREDICTOR_NAMES: &[&str] = &["nsigma", "nsigma:N", "max", "vpa", "pNN"];

/// Builds an estimator: `nsigma` (N = 3), `nsigma:N`, `max`, `vpa` (p90 × 1.15), or
/// `pNN` (the NN-th percentile, 0 < NN ≤ 100).
pub fn estimator_by_name(name: &str) -> Result<Box<dyn PeakEstimator>, OvercommitError> {
    let bad = |msg: &str| OvercommitError::InvalidOption {
        name: "predictor",
        msg: format!("{name:?}: {msg} (known: {})", PREDICTOR_NAMES.join(", ")),
    };
    if name == "nsigma" {
        return Ok(Box::new(NSigma { n: 3.0 }));
    }
    if let Some(n) = name.strip_prefix("nsigma:") {
        let n: f64 = n.parse().map_err(|_| bad("N is not a number"))?;
        if !(n.is_finite() && (0.0..=100.0).contains(&n)) {
            return Err(bad("N must be in 0..=100"));
        }
        return Ok(Box::new(NSigma { n }));
    }
    match name {
        "max" => return Ok(Box::new(HistoryMax)),
        "vpa" => {
            return Ok(Box::new(Quantile {
                q: 0.9,
                factor: 1.15,
            }))
        }
        _ => {}
    }
    if let Some(p) = name.strip_prefix('p') {
        let p: f64 = p.parse().map_err(|_| bad("unknown predictor"))?;
        if !(p > 0.0 && p <= 100.0) {
            return Err(bad("the percentile must be in (0, 100]"));
        }
        return Ok(Box::new(Quantile {
            q: p / 100.0,
            factor: 1.0,
        }));
    }
    Err(bad("unknown predictor"))
}
