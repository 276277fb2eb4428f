//! The learned load predictors of [`crate::predict`] (k-NN, SVR, and its baselines) as
//! whole-period peak estimators for a static placement.
//!
//! A [`Predictor`] forecasts the peak over a short horizon (here one hour) after a time
//! `t`. A static placement must hold for the whole replay, so the CPU peak estimate of a
//! VM is the **largest one-hour-ahead forecast the model makes over the last
//! `window_steps` of the history** (default: the last week, every 5-minute step): "the
//! highest hourly peak the model expected during the last week". It assumes the replay's
//! weeks look like the last week of history; the margin of
//! [`UsageOptions`](crate::place::usage::UsageOptions) covers the rest.
//!
//! No leakage: the model is trained only on the history series (every sample's target
//! ends before the split), and each VM's series is resampled from its history samples
//! only. Memory (which the models do not predict) uses the history maximum.

use super::estimate::PeakEstimator;
use super::workload::{VmWorkload, Workloads};
use super::OvercommitError;
use crate::predict::{model, Model, ModelOptions, Predictor, Series, TrainingData};

/// Forecast horizon of the model, steps (one hour of 5-minute steps).
pub const HORIZON_STEPS: usize = 12;
/// Default look-back over which forecasts are maximised, steps (one week).
pub const WINDOW_STEPS: usize = 7 * 288;

/// A trained [`Model`] used as a whole-period peak estimator.
#[derive(Debug, Clone)]
pub struct LearnedPeak {
    /// The model (trained on the history only).
    pub model: Model,
    /// Step of the resampled series, seconds.
    pub step_seconds: i64,
    /// Forecast horizon the model was trained for, steps.
    pub horizon_steps: usize,
    /// Look-back over which forecasts are maximised, steps.
    pub window_steps: usize,
}

/// The history of `vm` as a [`Series`] of CPU fractions of its cores, resampled to
/// `step` from its history samples only (`None` if it has none).
pub fn history_series(vm: &VmWorkload, step: i64) -> Result<Option<Series>, OvercommitError> {
    if vm.history_times.is_empty() {
        return Ok(None);
    }
    let cores = vm.cpu_request_milli as f64 / 1000.0;
    let samples: Vec<(i64, f64)> = vm
        .history_times
        .iter()
        .zip(&vm.history_cpu_cores)
        .map(|(&t, &c)| (t, c / cores))
        .collect();
    Ok(Some(Series::resample(&vm.name, &samples, step, cores)?))
}

impl LearnedPeak {
    /// Trains model `name` (one of [`model::MODEL_NAMES`], e.g. `knn`, `svr`) on the
    /// history series of every VM, with the default hyper-parameters.
    pub fn train(
        name: &str,
        workloads: &Workloads,
        window_steps: usize,
    ) -> Result<LearnedPeak, OvercommitError> {
        let step = workloads.step_seconds;
        let series: Vec<Series> = workloads
            .vms
            .iter()
            .filter_map(|v| history_series(v, step).transpose())
            .collect::<Result<_, _>>()?;
        let data = TrainingData::build(&series, HORIZON_STEPS);
        let model = model::train(name, &data, &ModelOptions::default())?;
        Ok(LearnedPeak {
            model,
            step_seconds: step,
            horizon_steps: HORIZON_STEPS,
            window_steps: window_steps.max(1),
        })
    }
}

impl PeakEstimator for LearnedPeak {
    fn name(&self) -> String {
        self.model.name().to_string()
    }

    /// Memory: the history maximum (the models forecast CPU only).
    fn peak(&self, history: &[f64]) -> Option<f64> {
        history.iter().copied().reduce(f64::max)
    }

    fn cpu_peak(&self, vm: &VmWorkload) -> Option<f64> {
        let series = history_series(vm, self.step_seconds).ok()??;
        let last = series.len().checked_sub(1)?;
        let first = last.saturating_sub(self.window_steps - 1);
        let peak = (first..=last)
            .map(|t| self.model.predict(&series, t))
            .fold(f64::MIN, f64::max);
        Some(peak.max(0.0) * series.capacity)
    }
}

/// An estimator by name: the baselines of [`super::estimate::estimator_by_name`], or a
/// model of [`model::MODEL_NAMES`] (`knn`, `svr`, …) trained on `workloads`' history,
/// maximising its forecasts over the last `window_steps` of history.
pub fn estimator_for(
    name: &str,
    workloads: &Workloads,
    window_steps: usize,
) -> Result<Box<dyn PeakEstimator>, OvercommitError> {
    if model::MODEL_NAMES.contains(&name) {
        return Ok(Box::new(LearnedPeak::train(name, workloads, window_steps)?));
    }
    super::estimate::estimator_by_name(name)
}
