//! Time-split evaluation: every series is cut at the same fraction of its length (by
//! default the first 70% trains, the last 30% tests); models train on the training parts
//! only; for every test index `t` each model predicts the peak over the horizon from
//! `values[..=t]` and is scored against the actual peak.
//!
//! Calibrated variants (`knn+margin`, `svr+margin`) add a constant margin chosen on the
//! training part alone: a copy of the model is trained on the first 75% of each training
//! part, and the margin is the smallest one whose under-prediction rate on the last 25%
//! is no higher than the N-sigma baseline's there. The test part never influences a
//! model, a margin or a hyper-parameter.

use super::baselines::Baseline;
use super::features::{peak_after, TrainingData};
use super::model::{train, Model, ModelOptions};
use super::svm::{SvcModel, SvcParams};
use super::{PredictError, Predictor, Series};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// What to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalConfig {
    /// Horizon, steps of the series.
    pub horizon: usize,
    /// Fraction of each series used for training (0 < f < 1).
    pub train_fraction: f64,
    /// Models by name (see [`MODEL_NAMES`](super::model::MODEL_NAMES)).
    pub models: Vec<String>,
    /// Also evaluate `NAME+margin` for each learned model (k-NN, SVR).
    pub calibrated: bool,
    /// Hyper-parameters of the learned models.
    pub options: ModelOptions,
    /// The classifier, if any.
    pub classifier: Option<SvcParams>,
}

impl EvalConfig {
    /// Every model, 70/30 split, calibrated variants, no classifier.
    pub fn new(horizon: usize) -> EvalConfig {
        EvalConfig {
            horizon,
            train_fraction: 0.7,
            models: super::model::MODEL_NAMES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            calibrated: true,
            options: ModelOptions::default(),
            classifier: None,
        }
    }
}

/// Scores of one model on the test parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelScore {
    /// Model name.
    pub name: String,
    /// Root mean squared error of the predicted peak (fraction of capacity).
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Fraction of predictions below the actual peak.
    pub under_rate: f64,
    /// Mean of max(0, predicted − actual): capacity reserved but not used.
    pub over_mean: f64,
    /// Seconds spent training (0 for baselines; includes margin calibration).
    pub train_seconds: f64,
    /// Mean microseconds per prediction, feature extraction included.
    pub predict_us: f64,
    /// Margin added (fraction of capacity).
    pub margin: f64,
}

/// Precision, recall and F1 of a yes/no predictor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    /// Predicted yes, was yes.
    pub tp: u64,
    /// Predicted yes, was no.
    pub fp: u64,
    /// Predicted no, was yes.
    pub fn_: u64,
    /// Predicted no, was no.
    pub tn: u64,
}

impl Confusion {
    /// Counts one outcome.
    pub fn add(&mut self, predicted: bool, actual: bool) {
        match (predicted, actual) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }
    /// tp / (tp + fp), 0 if nothing was predicted yes.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    /// tp / (tp + fn), 0 if nothing was yes.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// One row of the classifier comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierScore {
    /// `svm` or `above-now` (the rule "usage at t is above the threshold").
    pub name: String,
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
    /// The counts.
    pub confusion: Confusion,
}

/// The classifier comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierReport {
    /// Threshold, fraction of capacity.
    pub threshold: f64,
    /// Test steps whose actual peak exceeds it.
    pub positives: u64,
    /// Test steps.
    pub steps: u64,
    /// Seconds spent training the SVM.
    pub train_seconds: f64,
    /// The SVM, then the rule.
    pub scores: Vec<ClassifierScore>,
}

/// Everything `plimsoll predict eval` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Series evaluated.
    pub series: usize,
    /// Training samples (all series).
    pub train_samples: usize,
    /// Test predictions per model.
    pub test_steps: usize,
    /// Horizon, steps.
    pub horizon: usize,
    /// One row per model, in the order asked.
    pub models: Vec<ModelScore>,
    /// The classifier comparison, if asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier: Option<ClassifierReport>,
}

/// Index where the test part of a series of `len` values starts.
pub fn split_index(len: usize, train_fraction: f64) -> usize {
    ((len as f64 * train_fraction).floor() as usize).min(len)
}

/// The `(t, actual peak)` test points of a series from `from` on.
fn test_points(s: &Series, from: usize, horizon: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
    (from..s.len()).map_while(move |t| peak_after(s, t, horizon).map(|y| (t, y)))
}

/// Predictions with the actual peaks over `series[k]` from `from[k]` on.
fn predict_all(
    model: &dyn Predictor,
    series: &[Series],
    from: &[usize],
    horizon: usize,
) -> (Vec<(f64, f64)>, f64) {
    let start = Instant::now();
    let mut out = Vec::new();
    for (s, &f) in series.iter().zip(from) {
        out.extend(test_points(s, f, horizon).map(|(t, y)| (model.predict(s, t), y)));
    }
    (out, start.elapsed().as_secs_f64())
}

/// The smallest margin `m` such that the share of `(prediction, actual)` pairs with
/// `actual > prediction + m` is at most `target_under_rate` (never negative).
pub fn calibrate_margin(pairs: &[(f64, f64)], target_under_rate: f64) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let mut gaps: Vec<f64> = pairs.iter().map(|(p, y)| y - p).collect();
    gaps.sort_by(f64::total_cmp);
    // At most `allowed` gaps may stay above m: m is the gap at rank n - allowed - 1.
    let allowed = (target_under_rate.clamp(0.0, 1.0) * gaps.len() as f64).floor() as usize;
    if allowed >= gaps.len() {
        return 0.0;
    }
    gaps[gaps.len() - 1 - allowed].max(0.0)
}

fn under_rate(pairs: &[(f64, f64)]) -> f64 {
    pairs.iter().filter(|(p, y)| y > p).count() as f64 / pairs.len().max(1) as f64
}

fn score(
    name: &str,
    pairs: &[(f64, f64)],
    secs: f64,
    train_seconds: f64,
    margin: f64,
) -> ModelScore {
    let n = pairs.len().max(1) as f64;
    let mut se = 0.0;
    let mut ae = 0.0;
    let mut over = 0.0;
    for &(p, y) in pairs {
        se += (p - y) * (p - y);
        ae += (p - y).abs();
        over += (p - y).max(0.0);
    }
    ModelScore {
        name: name.to_string(),
        rmse: (se / n).sqrt(),
        mae: ae / n,
        under_rate: under_rate(pairs),
        over_mean: over / n,
        train_seconds,
        predict_us: secs * 1e6 / n,
        margin,
    }
}

/// Runs the evaluation. Series too short to have both a training and a test point are
/// skipped; an error if no training samples remain.
pub fn evaluate(series: &[Series], cfg: &EvalConfig) -> Result<EvalReport, PredictError> {
    if !(cfg.train_fraction > 0.0 && cfg.train_fraction < 1.0) {
        return Err(PredictError::InvalidParam {
            name: "train_fraction",
            value: cfg.train_fraction.to_string(),
            reason: "must be in (0, 1)",
        });
    }
    if cfg.horizon == 0 {
        return Err(PredictError::InvalidParam {
            name: "horizon",
            value: "0".into(),
            reason: "must be at least one step",
        });
    }
    let h = cfg.horizon;
    let split: Vec<usize> = series
        .iter()
        .map(|s| split_index(s.len(), cfg.train_fraction))
        .collect();
    let train_parts: Vec<Series> = series
        .iter()
        .zip(&split)
        .map(|(s, &k)| s.prefix(k))
        .collect();
    let data = TrainingData::build(&train_parts, h);
    if data.is_empty() {
        return Err(PredictError::NoTrainingData(format!(
            "{} series, none longer than the horizon in its training part",
            series.len()
        )));
    }
    // Calibration: fit on the first 75% of each training part, calibrate on the rest.
    let cal_from: Vec<usize> = train_parts
        .iter()
        .map(|s| split_index(s.len(), 0.75))
        .collect();
    let fit_parts: Vec<Series> = train_parts
        .iter()
        .zip(&cal_from)
        .map(|(s, &k)| s.prefix(k))
        .collect();
    let fit_data = TrainingData::build(&fit_parts, h);
    // Calibration pairs come from the training parts (their horizons end inside them).
    let sigma_target = {
        let (pairs, _) = predict_all(
            &Model::new(super::model::ModelKind::Baseline(Baseline::n_sigma())),
            &train_parts,
            &cal_from,
            h,
        );
        under_rate(&pairs)
    };

    let mut report = EvalReport {
        series: series.len(),
        train_samples: data.len(),
        test_steps: 0,
        horizon: h,
        models: Vec::new(),
        classifier: None,
    };
    for name in &cfg.models {
        let start = Instant::now();
        let model = train(name, &data, &cfg.options)?;
        let train_seconds = start.elapsed().as_secs_f64();
        let (pairs, secs) = predict_all(&model, series, &split, h);
        report.test_steps = pairs.len();
        report
            .models
            .push(score(name, &pairs, secs, train_seconds, 0.0));
        if cfg.calibrated && matches!(name.as_str(), "knn" | "svr") && !fit_data.is_empty() {
            let start = Instant::now();
            let probe = train(name, &fit_data, &cfg.options)?;
            let (cal_pairs, _) = predict_all(&probe, &train_parts, &cal_from, h);
            let margin = calibrate_margin(&cal_pairs, sigma_target);
            let cal_seconds = train_seconds + start.elapsed().as_secs_f64();
            let shifted: Vec<(f64, f64)> = pairs.iter().map(|&(p, y)| (p + margin, y)).collect();
            report.models.push(score(
                &format!("{name}+margin"),
                &shifted,
                secs,
                cal_seconds,
                margin,
            ));
        }
    }
    if let Some(params) = cfg.classifier {
        report.classifier = Some(evaluate_classifier(series, &split, &data, params)?);
    }
    Ok(report)
}

fn evaluate_classifier(
    series: &[Series],
    split: &[usize],
    data: &TrainingData,
    params: SvcParams,
) -> Result<ClassifierReport, PredictError> {
    let x = params.threshold();
    let start = Instant::now();
    let svc = SvcModel::train(data, params)?;
    let train_seconds = start.elapsed().as_secs_f64();
    let (mut svm, mut rule) = (Confusion::default(), Confusion::default());
    let (mut positives, mut steps) = (0, 0);
    for (s, &f) in series.iter().zip(split) {
        for (t, y) in test_points(s, f, data.horizon) {
            let actual = y > x;
            svm.add(svc.will_exceed(s, t), actual);
            rule.add(s.values[t] > x, actual);
            positives += u64::from(actual);
            steps += 1;
        }
    }
    let row = |name: &str, c: Confusion| ClassifierScore {
        name: name.to_string(),
        precision: c.precision(),
        recall: c.recall(),
        f1: c.f1(),
        confusion: c,
    };
    Ok(ClassifierReport {
        threshold: x,
        positives,
        steps,
        train_seconds,
        scores: vec![row("svm", svm), row("above-now", rule)],
    })
}
