//! Every predictor behind one serialisable [`Model`], training by name, and JSON
//! save/load.

use super::baselines::Baseline;
use super::features::TrainingData;
use super::knn::{KnnModel, KnnParams, Reserve};
use super::svm::{SvrModel, SvrParams};
use super::{PredictError, Predictor, Series};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The names [`train`] accepts: the four baselines, then the learned models.
pub const MODEL_NAMES: [&str; 6] = [
    "last-value",
    "moving-max",
    "vpa-p90",
    "n-sigma",
    "knn",
    "svr",
];

/// What is inside a [`Model`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// A baseline rule.
    Baseline(Baseline),
    /// k-NN regression.
    Knn(KnnModel),
    /// Epsilon-SVR.
    Svr(SvrModel),
}

/// A predictor with a constant safety margin added to its predictions (0 unless
/// calibrated, see [`eval::calibrate_margin`](super::eval::calibrate_margin)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Added to every prediction (fraction of capacity).
    pub margin: f64,
    /// The predictor.
    pub kind: ModelKind,
}

impl Model {
    /// A model with no margin.
    pub fn new(kind: ModelKind) -> Model {
        Model { margin: 0.0, kind }
    }

    /// Writes the model as JSON.
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<(), PredictError> {
        let path = path.as_ref();
        let text = serde_json::to_string(self).map_err(|source| PredictError::ModelFile {
            path: path.to_path_buf(),
            source,
        })?;
        std::fs::write(path, text).map_err(|source| PredictError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a model written by [`save_json`](Self::save_json).
    pub fn load_json(path: impl AsRef<Path>) -> Result<Model, PredictError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PredictError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| PredictError::ModelFile {
            path: path.to_path_buf(),
            source,
        })
    }
}

impl Predictor for Model {
    fn name(&self) -> &str {
        match &self.kind {
            ModelKind::Baseline(b) => b.name(),
            ModelKind::Knn(m) => m.name(),
            ModelKind::Svr(m) => m.name(),
        }
    }

    fn predict(&self, series: &Series, t: usize) -> f64 {
        let p = match &self.kind {
            ModelKind::Baseline(b) => b.predict(series, t),
            ModelKind::Knn(m) => m.predict(series, t),
            ModelKind::Svr(m) => m.predict(series, t),
        };
        p + self.margin
    }
}

impl Model {
    /// The point prediction and one reservation per rule of `rules`, margin included.
    /// Only the k-NN has rules ([`KnnModel::predict_reserves`]: a quantile of its
    /// neighbours' outcomes, or the cost rule); every other model answers its point
    /// prediction for every rule (its quantile comes from a calibrated offset, see
    /// [`eval`](super::eval)).
    pub fn predict_reserves(
        &self,
        series: &Series,
        t: usize,
        rules: &[Reserve],
    ) -> (f64, Vec<f64>) {
        match &self.kind {
            ModelKind::Knn(m) if !rules.is_empty() => {
                let x = super::features::features(series, t, m.horizon());
                let (p, q) = m.predict_reserves(&x, rules);
                (
                    p + self.margin,
                    q.into_iter().map(|v| v + self.margin).collect(),
                )
            }
            _ => {
                let p = self.predict(series, t);
                (p, vec![p; rules.len()])
            }
        }
    }

    /// [`predict_reserves`](Self::predict_reserves) with quantile rules at `levels`.
    pub fn predict_levels(&self, series: &Series, t: usize, levels: &[f64]) -> (f64, Vec<f64>) {
        let rules: Vec<Reserve> = levels.iter().map(|&q| Reserve::Quantile(q)).collect();
        self.predict_reserves(series, t, &rules)
    }

    /// True for the learned models (k-NN, SVR), false for the baselines.
    pub fn is_learned(&self) -> bool {
        !matches!(self.kind, ModelKind::Baseline(_))
    }
}

/// Hyper-parameters of the learned models for [`train`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelOptions {
    /// k-NN.
    pub knn: KnnParams,
    /// SVR.
    pub svr: SvrParams,
}

impl Default for ModelOptions {
    /// k = 50; SVR C = 1, epsilon = 0.02, gamma = 0.05, cap 1,000.
    fn default() -> Self {
        ModelOptions {
            knn: KnnParams::new(50).expect("valid"),
            svr: SvrParams::new(1.0, 0.02, 0.05).expect("valid"),
        }
    }
}

/// Builds the model called `name` (one of [`MODEL_NAMES`]); the baselines ignore `data`.
pub fn train(name: &str, data: &TrainingData, opts: &ModelOptions) -> Result<Model, PredictError> {
    let kind = match name {
        "last-value" => ModelKind::Baseline(Baseline::LastValue),
        "moving-max" => ModelKind::Baseline(Baseline::moving_max()),
        "vpa-p90" => ModelKind::Baseline(Baseline::vpa_p90()),
        "n-sigma" => ModelKind::Baseline(Baseline::n_sigma()),
        "knn" => ModelKind::Knn(KnnModel::train(data, opts.knn)?),
        "svr" => ModelKind::Svr(SvrModel::train(data, opts.svr)?),
        _ => return Err(PredictError::UnknownModel(name.to_string())),
    };
    Ok(Model::new(kind))
}
