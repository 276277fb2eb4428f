//! Load prediction: from a workload's CPU usage history up to time `t`, predict the peak
//! usage (as a fraction of its provisioned capacity) over the next horizon.
//!
//! This module owns the fixed-step [`Series`] (and its conversion from the Bitbrains and
//! Alibaba 2018 loaders), the leakage-free feature vector ([`features`]), the learned
//! models ([`knn`]: k-NN regression on a k-d tree; [`svm`]: epsilon-SVR and an SVM
//! classifier), the baselines ([`baselines`]: last value, moving maximum, VPA-style
//! p90 × 1.15, N-sigma), the serialisable [`Model`] enum with training by name
//! ([`model`]), and the time-split evaluation ([`eval`]). It does not place pods: the
//! placement and rebalancing code consumes [`Predictor`]s.
//!
//! Every predictor answers `predict(series, t)` from `series.values[..=t]` only; the
//! leakage test in `tests/predict.rs` perturbs the values after `t` and checks that the
//! features and predictions do not move.
//!
//! ```
//! use plimsoll::predict::{model, Predictor, Series, TrainingData};
//! // A day of 5-minute samples with a daily swing, for two workloads.
//! let wave = |phase: f64| -> Vec<f64> {
//!     (0..600).map(|i| 0.4 + 0.3 * ((i as f64 / 288.0) * std::f64::consts::TAU + phase).sin()).collect()
//! };
//! let series = vec![
//!     Series::new("a", 0, 300, wave(0.0), 4.0)?,
//!     Series::new("b", 0, 300, wave(1.0), 8.0)?,
//! ];
//! let horizon = 12; // one hour of 5-minute steps
//! let data = TrainingData::build(&series, horizon);
//! let m = model::train("moving-max", &data, &model::ModelOptions::default())?;
//! let p = m.predict(&series[0], 400);
//! assert!(p >= series[0].values[400]);
//! # Ok::<(), plimsoll::predict::PredictError>(())
//! ```

pub mod baselines;
pub mod eval;
pub mod features;
pub mod knn;
pub mod model;
pub mod series;
pub mod svm;

pub use features::{peak_after, FeatureVec, TrainingData, NUM_FEATURES};
pub use model::{Model, ModelOptions};
pub use series::{load_series, Series};

use std::path::PathBuf;

/// Why a prediction step failed. Domain errors first, wrapped errors after.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// A hyper-parameter is out of its allowed range.
    #[error("invalid {name} = {value}: {reason}")]
    InvalidParam {
        /// The parameter.
        name: &'static str,
        /// The value given, as written.
        value: String,
        /// What is allowed.
        reason: &'static str,
    },
    /// A series is not usable (empty, bad step, non-finite values…).
    #[error("series {name}: {msg}")]
    InvalidSeries {
        /// The series name.
        name: String,
        /// What is wrong.
        msg: String,
    },
    /// There is nothing to train on.
    #[error("no training samples: {0}")]
    NoTrainingData(String),
    /// A model name that [`model::train`] does not know.
    #[error("unknown model {0:?}; known: {known}", known = model::MODEL_NAMES.join(", "))]
    UnknownModel(String),
    /// The SVM solver rejected its parameters or data.
    #[error("SVM: {0}")]
    Svm(#[from] linfa_svm::SvmError),
    /// A dataset file could not be loaded (names the file and line).
    #[error(transparent)]
    Dataset(#[from] crate::datasets::DatasetError),
    /// A saved model could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A saved model is not valid JSON for a [`Model`].
    #[error("{path}: bad model file: {source}")]
    ModelFile {
        /// The file.
        path: PathBuf,
        /// The JSON error (names line and column).
        #[source]
        source: serde_json::Error,
    },
}

/// Something that predicts the peak usage of a workload over a horizon.
///
/// `predict(series, t)` returns the predicted peak of `series.values[t + 1..=t + h]` (a
/// fraction of the provisioned capacity; `h` is the horizon the predictor was built
/// for) using `series.values[..=t]` only. `t` must be a valid index of `series`.
pub trait Predictor: Send + Sync {
    /// The model's name (`"knn"`, `"n-sigma"`, …).
    fn name(&self) -> &str;
    /// Predicted peak fraction over the horizon after index `t`.
    fn predict(&self, series: &Series, t: usize) -> f64;
}
