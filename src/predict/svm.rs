//! SVMs from linfa-svm on the standardised features: an epsilon-SVR with an RBF kernel
//! (predicting the residual of the peak over the 1-hour moving maximum, like the k-NN)
//! and a C-SVM classifier for "the peak over the horizon will exceed X of capacity".
//! Training uses at most `max_train` samples drawn with a seeded ChaCha8 subsample, so
//! training time stays bounded (the SMO solver is quadratic in the samples).

use super::features::{features, FeatureVec, Scaler, TrainingData, MAX_1H};
use super::knn::subsample;
use super::{PredictError, Predictor, Series};
use linfa::prelude::*;
use linfa_svm::Svm;
use ndarray::{Array1, Array2, ArrayView1};
use serde::{Deserialize, Serialize};

fn positive(name: &'static str, v: f64) -> Result<f64, PredictError> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(PredictError::InvalidParam {
            name,
            value: v.to_string(),
            reason: "must be finite and > 0",
        })
    }
}

fn cap(max_train: usize) -> Result<usize, PredictError> {
    if (2..=20_000).contains(&max_train) {
        Ok(max_train)
    } else {
        Err(PredictError::InvalidParam {
            name: "max_train",
            value: max_train.to_string(),
            reason: "must be in 2..=20000 (SVM training is quadratic in it)",
        })
    }
}

/// Checked epsilon-SVR hyper-parameters (RBF kernel `exp(-gamma·|x - x'|²)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SvrParams {
    c: f64,
    epsilon: f64,
    gamma: f64,
    max_train: usize,
    seed: u64,
}

impl SvrParams {
    /// `c` > 0, `epsilon` ≥ 0 (the insensitive band, in fractions of capacity),
    /// `gamma` > 0; at most 2,000 training samples, seed 42.
    pub fn new(c: f64, epsilon: f64, gamma: f64) -> Result<SvrParams, PredictError> {
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(PredictError::InvalidParam {
                name: "epsilon",
                value: epsilon.to_string(),
                reason: "must be finite and >= 0",
            });
        }
        Ok(SvrParams {
            c: positive("c", c)?,
            epsilon,
            gamma: positive("gamma", gamma)?,
            max_train: 2_000,
            seed: 42,
        })
    }

    /// At most `max_train` (2..=20,000) training samples.
    pub fn with_max_train(self, max_train: usize) -> Result<SvrParams, PredictError> {
        Ok(SvrParams {
            max_train: cap(max_train)?,
            ..self
        })
    }

    /// The subsampling seed.
    pub fn with_seed(self, seed: u64) -> SvrParams {
        SvrParams { seed, ..self }
    }

    /// Regularisation C.
    pub fn c(&self) -> f64 {
        self.c
    }
    /// Insensitive band.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }
    /// RBF gamma.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }
    /// Training-set cap.
    pub fn max_train(&self) -> usize {
        self.max_train
    }
}

fn matrix(rows: &[FeatureVec]) -> Array2<f64> {
    let flat: Vec<f64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Array2::from_shape_vec((rows.len(), rows.first().map_or(0, |r| r.len())), flat)
        .expect("rows of equal length")
}

/// A trained epsilon-SVR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SvrModel {
    params: SvrParams,
    horizon: usize,
    scaler: Scaler,
    svm: Svm<f64, f64>,
}

impl SvrModel {
    /// Trains on a seeded subsample of `data`.
    pub fn train(data: &TrainingData, params: SvrParams) -> Result<SvrModel, PredictError> {
        if data.len() < 2 {
            return Err(PredictError::NoTrainingData(format!(
                "SVR needs 2 samples, got {}",
                data.len()
            )));
        }
        let idx = subsample(data.len(), params.max_train, params.seed);
        let rows: Vec<FeatureVec> = idx.iter().map(|&i| data.x[i]).collect();
        let scaler = Scaler::fit(&rows);
        let std: Vec<FeatureVec> = rows.iter().map(|r| scaler.apply(r)).collect();
        let targets: Array1<f64> = idx.iter().map(|&i| data.y[i] - data.x[i][MAX_1H]).collect();
        let svm = Svm::<f64, f64>::params()
            .c_svr(params.c, Some(params.epsilon))
            .gaussian_kernel(1.0 / params.gamma)
            .fit(&Dataset::new(matrix(&std), targets))?;
        Ok(SvrModel {
            params,
            horizon: data.horizon,
            scaler,
            svm,
        })
    }

    /// The hyper-parameters.
    pub fn params(&self) -> SvrParams {
        self.params
    }

    /// Number of support vectors.
    pub fn support_vectors(&self) -> usize {
        self.svm.nsupport()
    }

    /// The predicted peak for a raw feature vector (1-hour max + residual, at least 0).
    pub fn predict_features(&self, x: &FeatureVec) -> f64 {
        let q = self.scaler.apply(x);
        let r = self.svm.predict(ArrayView1::from(&q[..]));
        (x[MAX_1H] + r).max(0.0)
    }
}

impl Predictor for SvrModel {
    fn name(&self) -> &str {
        "svr"
    }

    fn predict(&self, series: &Series, t: usize) -> f64 {
        self.predict_features(&features(series, t, self.horizon))
    }
}

/// Checked SVM classifier hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SvcParams {
    threshold: f64,
    c: f64,
    gamma: f64,
    max_train: usize,
    seed: u64,
}

impl SvcParams {
    /// Predict "peak over the horizon > `threshold`" (a fraction of capacity, in
    /// (0, 10]); `c` > 0, `gamma` > 0; at most 2,000 training samples (positives and
    /// negatives drawn separately, each up to half, so rare events are seen), seed 42.
    pub fn new(threshold: f64, c: f64, gamma: f64) -> Result<SvcParams, PredictError> {
        if !(threshold.is_finite() && threshold > 0.0 && threshold <= 10.0) {
            return Err(PredictError::InvalidParam {
                name: "threshold",
                value: threshold.to_string(),
                reason: "must be in (0, 10] (a fraction of capacity)",
            });
        }
        Ok(SvcParams {
            threshold,
            c: positive("c", c)?,
            gamma: positive("gamma", gamma)?,
            max_train: 2_000,
            seed: 42,
        })
    }

    /// At most `max_train` (2..=20,000) training samples.
    pub fn with_max_train(self, max_train: usize) -> Result<SvcParams, PredictError> {
        Ok(SvcParams {
            max_train: cap(max_train)?,
            ..self
        })
    }

    /// The threshold (fraction of capacity).
    pub fn threshold(&self) -> f64 {
        self.threshold
    }
}

/// A trained classifier: will the peak over the horizon exceed the threshold?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SvcModel {
    params: SvcParams,
    horizon: usize,
    scaler: Scaler,
    svm: Svm<f64, bool>,
}

impl SvcModel {
    /// Trains on a seeded subsample of `data`, positives and negatives balanced.
    pub fn train(data: &TrainingData, params: SvcParams) -> Result<SvcModel, PredictError> {
        let (pos, neg): (Vec<usize>, Vec<usize>) =
            (0..data.len()).partition(|&i| data.y[i] > params.threshold);
        if pos.is_empty() || neg.is_empty() {
            return Err(PredictError::NoTrainingData(format!(
                "the classifier needs samples on both sides of {}: {} above, {} not",
                params.threshold,
                pos.len(),
                neg.len()
            )));
        }
        let half = params.max_train / 2;
        let mut idx: Vec<usize> = subsample(pos.len(), half, params.seed)
            .into_iter()
            .map(|i| pos[i])
            .collect();
        let room = params.max_train - idx.len();
        idx.extend(
            subsample(neg.len(), room, params.seed.wrapping_add(1))
                .into_iter()
                .map(|i| neg[i]),
        );
        let rows: Vec<FeatureVec> = idx.iter().map(|&i| data.x[i]).collect();
        let scaler = Scaler::fit(&rows);
        let std: Vec<FeatureVec> = rows.iter().map(|r| scaler.apply(r)).collect();
        let labels: Array1<bool> = idx.iter().map(|&i| data.y[i] > params.threshold).collect();
        let svm = Svm::<f64, bool>::params()
            .pos_neg_weights(params.c, params.c)
            .gaussian_kernel(1.0 / params.gamma)
            .fit(&Dataset::new(matrix(&std), labels))?;
        Ok(SvcModel {
            params,
            horizon: data.horizon,
            scaler,
            svm,
        })
    }

    /// The hyper-parameters.
    pub fn params(&self) -> SvcParams {
        self.params
    }

    /// True if the peak after index `t` is predicted to exceed the threshold.
    pub fn will_exceed(&self, series: &Series, t: usize) -> bool {
        let q = self.scaler.apply(&features(series, t, self.horizon));
        self.svm.predict(ArrayView1::from(&q[..]))
    }
}
