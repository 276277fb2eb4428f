//! k-NN regression on a kiddo k-d tree: standardised features, inverse-distance
//! weighting, configurable k, and a capped training set drawn by seeded subsampling.
//!
//! The tree indexes [`KNN_DIMS`] of the features ([`KNN_FEATURES`]: recent values,
//! the 1-hour mean, max and standard deviation, the peak of the same window a day ago,
//! and the size): a k-d tree loses its speed in high dimensions, and on the Bitbrains
//! training split these eight gave a lower error than all 23 (calendar features and
//! long windows mostly add distance noise).
//!
//! The model predicts the residual of the peak over the 1-hour moving maximum (feature
//! [`MAX_1H`]) and adds it back. The tree is not serialised:
//! a saved model keeps its standardised points and targets and rebuilds the tree on load.

use super::features::{features, FeatureVec, TrainingData, MAX_1H};

/// Index of the last value in [`FeatureVec`].
const LAST: usize = 0;
use super::{PredictError, Predictor, Series};
use kiddo::{ImmutableKdTree, SquaredEuclidean};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;

/// Dimensions of the k-d tree.
pub const KNN_DIMS: usize = 8;

/// The features the k-NN reads (indices into [`FeatureVec`]).
pub const KNN_FEATURES: [usize; KNN_DIMS] = [0, 1, 2, 3, 4, 5, 17, 22];

/// A point of the tree.
pub type KnnPoint = [f64; KNN_DIMS];

/// Per-dimension mean and standard deviation of the k-NN's features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnnScaler {
    /// Means.
    pub mean: KnnPoint,
    /// Standard deviations (1 where constant).
    pub std: KnnPoint,
}

impl KnnScaler {
    fn fit(rows: &[FeatureVec]) -> KnnScaler {
        let n = rows.len().max(1) as f64;
        let (mut mean, mut var) = ([0.0; KNN_DIMS], [0.0; KNN_DIMS]);
        for r in rows {
            for (m, &j) in mean.iter_mut().zip(&KNN_FEATURES) {
                *m += r[j] / n;
            }
        }
        for r in rows {
            for ((v, &j), m) in var.iter_mut().zip(&KNN_FEATURES).zip(&mean) {
                *v += (r[j] - m) * (r[j] - m) / n;
            }
        }
        let std = var.map(|v| if v > 1e-12 { v.sqrt() } else { 1.0 });
        KnnScaler { mean, std }
    }

    /// The standardised k-NN point of a full feature vector.
    pub fn apply(&self, x: &FeatureVec) -> KnnPoint {
        let mut out = [0.0; KNN_DIMS];
        for (i, o) in out.iter_mut().enumerate() {
            *o = (x[KNN_FEATURES[i]] - self.mean[i]) / self.std[i];
        }
        out
    }
}

/// Checked k-NN hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KnnParams {
    k: usize,
    max_train: usize,
    seed: u64,
}

impl KnnParams {
    /// `k` neighbours (1..=1000), at most 50,000 training points, seed 42.
    pub fn new(k: usize) -> Result<KnnParams, PredictError> {
        if !(1..=1000).contains(&k) {
            return Err(PredictError::InvalidParam {
                name: "k",
                value: k.to_string(),
                reason: "must be in 1..=1000",
            });
        }
        Ok(KnnParams {
            k,
            max_train: 50_000,
            seed: 42,
        })
    }

    /// At most `max_train` (≥ k) training points, drawn with the seed.
    pub fn with_max_train(self, max_train: usize) -> Result<KnnParams, PredictError> {
        if max_train < self.k {
            return Err(PredictError::InvalidParam {
                name: "max_train",
                value: max_train.to_string(),
                reason: "must be at least k",
            });
        }
        Ok(KnnParams { max_train, ..self })
    }

    /// The subsampling seed.
    pub fn with_seed(self, seed: u64) -> KnnParams {
        KnnParams { seed, ..self }
    }

    /// Neighbours per query.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Training-set cap.
    pub fn max_train(&self) -> usize {
        self.max_train
    }

    /// Subsampling seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// Sorted indices of at most `cap` of `n` samples, drawn uniformly with `seed` (all of
/// them if `n <= cap`).
pub fn subsample(n: usize, cap: usize, seed: u64) -> Vec<usize> {
    if n <= cap {
        return (0..n).collect();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut idx = rand::seq::index::sample(&mut rng, n, cap).into_vec();
    idx.sort_unstable();
    idx
}

/// The serialised form of a [`KnnModel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct KnnData {
    params: KnnParams,
    horizon: usize,
    scaler: KnnScaler,
    points: Vec<KnnPoint>,
    residuals: Vec<f64>,
}

/// A trained k-NN regressor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "KnnData", into = "KnnData")]
pub struct KnnModel {
    data: KnnData,
    tree: ImmutableKdTree<f64, KNN_DIMS>,
}

impl PartialEq for KnnModel {
    fn eq(&self, other: &Self) -> bool {
        self.data == other.data
    }
}

impl From<KnnModel> for KnnData {
    fn from(m: KnnModel) -> KnnData {
        m.data
    }
}

impl TryFrom<KnnData> for KnnModel {
    type Error = String;
    fn try_from(data: KnnData) -> Result<KnnModel, String> {
        if data.points.len() != data.residuals.len() || data.points.len() < data.params.k {
            return Err(format!(
                "{} points, {} targets, k = {}: need equal counts and at least k",
                data.points.len(),
                data.residuals.len(),
                data.params.k
            ));
        }
        let tree = ImmutableKdTree::new_from_slice(&data.points);
        Ok(KnnModel { data, tree })
    }
}

impl KnnModel {
    /// Trains on `data` (capped at `params.max_train()` samples by seeded subsampling).
    pub fn train(data: &TrainingData, params: KnnParams) -> Result<KnnModel, PredictError> {
        if data.len() < params.k {
            return Err(PredictError::NoTrainingData(format!(
                "k-NN needs at least k = {} samples, got {}",
                params.k,
                data.len()
            )));
        }
        let idx = subsample(data.len(), params.max_train, params.seed);
        let rows: Vec<FeatureVec> = idx.iter().map(|&i| data.x[i]).collect();
        let scaler = KnnScaler::fit(&rows);
        let points = rows.iter().map(|r| scaler.apply(r)).collect();
        let residuals = idx.iter().map(|&i| data.y[i] - data.x[i][MAX_1H]).collect();
        KnnModel::try_from(KnnData {
            params,
            horizon: data.horizon,
            scaler,
            points,
            residuals,
        })
        .map_err(PredictError::NoTrainingData)
    }

    /// The hyper-parameters.
    pub fn params(&self) -> KnnParams {
        self.data.params
    }

    /// The horizon (steps) the model was trained for.
    pub fn horizon(&self) -> usize {
        self.data.horizon
    }

    /// Number of stored training points.
    pub fn len(&self) -> usize {
        self.data.points.len()
    }

    /// True if no points are stored (never for a trained model).
    pub fn is_empty(&self) -> bool {
        self.data.points.is_empty()
    }

    /// The k nearest stored points to a raw (unstandardised) feature vector, as
    /// `(index, squared distance)`, nearest first.
    pub fn neighbours(&self, x: &FeatureVec) -> Vec<(usize, f64)> {
        let q = self.data.scaler.apply(x);
        let k = NonZeroUsize::new(self.data.params.k).expect("k >= 1 is checked");
        self.tree
            .nearest_n::<SquaredEuclidean>(&q, k)
            .into_iter()
            .map(|n| (n.item as usize, n.distance))
            .collect()
    }

    /// The same as [`neighbours`](Self::neighbours) by linear search (for testing).
    pub fn neighbours_brute_force(&self, x: &FeatureVec) -> Vec<(usize, f64)> {
        let q = self.data.scaler.apply(x);
        let mut all: Vec<(usize, f64)> = self
            .data
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.iter().zip(&q).map(|(a, b)| (a - b) * (a - b)).sum()))
            .collect();
        all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        all.truncate(self.data.params.k);
        all
    }

    /// The predicted peak for a raw feature vector: the 1-hour max plus the
    /// inverse-distance weighted mean residual of the neighbours, at least 0.
    pub fn predict_features(&self, x: &FeatureVec) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for (i, d2) in self.neighbours(x) {
            let w = 1.0 / (d2.sqrt() + 1e-3);
            num += w * self.data.residuals[i];
            den += w;
        }
        (x[MAX_1H] + num / den).max(0.0)
    }

    /// The point prediction ([`predict_features`](Self::predict_features)) and, for
    /// each level of `levels` (each in [0, 1]), the quantile prediction at that level:
    /// the 1-hour max plus the level-quantile (nearest rank) of the k neighbours'
    /// outcomes (their peaks over their own 1-hour max), at least 0. One tree query
    /// serves every level; a higher level never gives a lower prediction.
    pub fn predict_quantiles(&self, x: &FeatureVec, levels: &[f64]) -> (f64, Vec<f64>) {
        let rules: Vec<Reserve> = levels.iter().map(|&q| Reserve::Quantile(q)).collect();
        self.predict_reserves(x, &rules)
    }

    /// The point prediction and one reservation per rule of `rules` (see [`Reserve`]):
    /// the 1-hour max plus the outcome the rule picks among the k neighbours', never
    /// below the current usage (a workload on a plateau above anything in the training
    /// data, whose neighbours are spikes that fell back, keeps its level). One tree
    /// query serves every rule.
    pub fn predict_reserves(&self, x: &FeatureVec, rules: &[Reserve]) -> (f64, Vec<f64>) {
        let neighbours = self.neighbours(x);
        let (mut num, mut den) = (0.0, 0.0);
        let mut outcomes: Vec<f64> = Vec::with_capacity(neighbours.len());
        for &(i, d2) in &neighbours {
            let w = 1.0 / (d2.sqrt() + 1e-3);
            num += w * self.data.residuals[i];
            den += w;
            outcomes.push(self.data.residuals[i]);
        }
        outcomes.sort_by(f64::total_cmp);
        let base = x[MAX_1H];
        let floor = x[LAST].max(0.0);
        let mean = num / den;
        let reserves = rules
            .iter()
            .map(|rule| {
                let o = match rule {
                    Reserve::Mean => mean,
                    _ => rule.pick(&outcomes),
                };
                (base + o).max(floor)
            })
            .collect();
        ((base + mean).max(0.0), reserves)
    }
}

/// How the k-NN turns its k neighbours' outcomes into a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reserve {
    /// The inverse-distance weighted mean outcome (the point prediction), floored.
    Mean,
    /// The level-quantile (nearest rank, level in [0, 1]) of the outcomes.
    Quantile(f64),
    /// The outcome `o` minimising `o + cost × (share of the outcomes above o)`: a unit
    /// of capacity is reserved only while it removes at least `1 / cost` of the
    /// under-prediction probability. Where the neighbours agree (an idle workload) this
    /// covers nearly all of them for little; where they scatter it accepts more risk.
    /// Spread over many steps, this is the reservation that minimises the mean slack for
    /// a given overall under-prediction rate (the cost is the Lagrange multiplier of
    /// that constraint; [`eval`](super::eval) chooses it on the calibration slice).
    Cost(f64),
}

impl Reserve {
    /// The chosen outcome of non-empty ascending `outcomes`.
    fn pick(self, outcomes: &[f64]) -> f64 {
        let last = outcomes.len() - 1;
        match self {
            Reserve::Mean => outcomes.iter().sum::<f64>() / outcomes.len() as f64,
            Reserve::Quantile(q) => {
                outcomes[((q.clamp(0.0, 1.0) * last as f64).round() as usize).min(last)]
            }
            Reserve::Cost(cost) => {
                let k = outcomes.len() as f64;
                let mut best = (f64::INFINITY, outcomes[last]);
                for (j, &o) in outcomes.iter().enumerate() {
                    let c = o + cost * (last - j) as f64 / k;
                    if c < best.0 {
                        best = (c, o);
                    }
                }
                best.1
            }
        }
    }

    /// A short label: `q0.95`, `cost0.1`.
    pub fn label(self) -> String {
        match self {
            Reserve::Mean => "mean".to_string(),
            Reserve::Quantile(q) => format!("q{q}"),
            Reserve::Cost(c) => format!("cost{c}"),
        }
    }
}

impl Predictor for KnnModel {
    fn name(&self) -> &str {
        "knn"
    }

    fn predict(&self, series: &Series, t: usize) -> f64 {
        self.predict_features(&features(series, t, self.data.horizon))
    }
}
