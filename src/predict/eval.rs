//! Time-split evaluation: every series is cut at the same fraction of its length (by
//! default the first 70% trains, the last 30% tests); models train on the training parts
//! only; for every test index `t` each model predicts the peak over the horizon from
//! `values[..=t]` and is scored against the actual peak.
//!
//! **Calibration slice.** Every margin below is chosen on the training part alone: each
//! training part is cut again at [`CALIBRATION_FIT_FRACTION`] (75%); a *probe* copy of
//! every learned model is trained on the first 75% of each training part and predicts the
//! last 25% (the calibration slice), where its under-predictions are counted. The
//! baselines learn nothing, so they predict the calibration slice themselves. The test
//! part never influences a model, a margin or a hyper-parameter.
//!
//! **At a fixed risk** ([`EvalConfig::risks`]): for every target under-prediction rate
//! `R`, every model gets the signed offset ([`calibrate_offset`]) that makes its
//! under-prediction rate on the calibration slice `R`; the model trained on the whole
//! training part, plus that offset, then reserves `max(0, prediction + offset)` at every
//! test step. Reported per model and `R` ([`RiskScore`]): the realised under-prediction
//! rate on the test part (`actual > reserved`) and the mean slack, `reserved − actual`
//! averaged over the test steps (fractions of each workload's capacity; signed, so the
//! ranking by slack is the ranking by mean reserved capacity). The k-NN's prediction at
//! risk `R` is its quantile prediction (the `1 − R` quantile of its neighbours' outcomes,
//! [`KnnModel::predict_quantiles`](super::knn::KnnModel::predict_quantiles)) before the
//! offset; the SVR and the baselines add the offset to their point prediction, which
//! makes the offset the calibrated `1 − R` quantile of their residuals (split conformal).
//!
//! The older calibrated variants (`knn+margin`, `svr+margin`) add the smallest
//! non-negative margin whose under-prediction rate on the calibration slice is no higher
//! than the N-sigma baseline's there.
//!
//! A model that cannot be trained (too few samples, a classifier whose training part
//! never crosses its threshold…) is reported in [`EvalReport::not_trained`] with the
//! reason; the others are still evaluated.

use super::baselines::Baseline;
use super::features::{peak_after, TrainingData};
use super::knn::Reserve;
use super::model::{train, Model, ModelKind, ModelOptions};
use super::svm::{SvcModel, SvcParams};
use super::{PredictError, Series};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Share of each training part the probe models are fitted on; the rest of the training
/// part is the calibration slice.
pub const CALIBRATION_FIT_FRACTION: f64 = 0.75;

/// How far (absolute, in rate) a realised under-prediction rate may be from its target
/// for a model to count in the [`RiskComparison`]: one percentage point.
pub const RISK_TOLERANCE: f64 = 0.01;

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
    /// Target under-prediction rates, each in (0, 1), to calibrate every model to (see
    /// the module documentation); empty for none.
    pub risks: Vec<f64>,
    /// Share of each training part the probe models are fitted on (0 < f < 1); the
    /// rest is the calibration slice. Default [`CALIBRATION_FIT_FRACTION`].
    pub fit_fraction: f64,
    /// The costs of the k-NN's candidate [`Reserve::Cost`] rules (each finite and > 0);
    /// default [`KNN_COSTS`].
    pub knn_costs: Vec<f64>,
}

impl EvalConfig {
    /// Every model, 70/30 split, calibrated variants, no classifier, risks 5% and 1%.
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
            risks: vec![0.05, 0.01],
            fit_fraction: CALIBRATION_FIT_FRACTION,
            knn_costs: KNN_COSTS.to_vec(),
        }
    }
}

/// One model at one target under-prediction rate, on the test parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskScore {
    /// The target under-prediction rate.
    pub target: f64,
    /// Realised share of test steps whose actual peak exceeds the reservation.
    pub under_rate: f64,
    /// Mean of `reserved − actual` over the test steps, fraction of capacity.
    pub slack: f64,
    /// The offset added to the model's prediction (fraction of capacity), chosen on the
    /// calibration slice.
    pub margin: f64,
    /// Under-prediction rate on the calibration slice with that offset.
    pub calibration_under_rate: f64,
    /// For diagnosis only: the slack had the offset been chosen on the test part itself
    /// to hit the target exactly (the model's slack at exactly the target rate).
    pub slack_at_target: f64,
    /// What the offset is added to: `point` (the model's prediction), or the k-NN's
    /// rule chosen on the calibration slice (`q0.95`: that quantile of its neighbours'
    /// outcomes; `cost0.1`: the [`Reserve::Cost`] rule).
    pub rule: String,
}

/// Scores of one model on the test parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelScore {
    /// Model name.
    pub name: String,
    /// True for the learned models (and their `+margin` variants), false for baselines.
    #[serde(default)]
    pub learned: bool,
    /// Root mean squared error of the predicted peak (fraction of capacity).
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Fraction of predictions below the actual peak.
    pub under_rate: f64,
    /// Mean of predicted − actual (signed): the slack of the uncalibrated prediction.
    #[serde(default)]
    pub slack: f64,
    /// Mean of max(0, predicted − actual): capacity reserved but not used.
    pub over_mean: f64,
    /// Seconds spent training (0 for baselines; includes margin calibration).
    pub train_seconds: f64,
    /// Mean microseconds per prediction, feature extraction included.
    pub predict_us: f64,
    /// Margin added (fraction of capacity).
    pub margin: f64,
    /// One entry per target of [`EvalConfig::risks`], in that order (empty for the
    /// `+margin` variants, or if the model could not be calibrated).
    #[serde(default)]
    pub risk: Vec<RiskScore>,
    /// Why the model has no risk entries although risks were asked (its probe could not
    /// be trained on the calibration data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_calibrated: Option<String>,
}

/// A model that could not be trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotTrained {
    /// Model name.
    pub name: String,
    /// The training error.
    pub reason: String,
}

/// The best baseline against the best learned model at one target rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskComparison {
    /// The target under-prediction rate.
    pub target: f64,
    /// The baseline with the least slack among those whose realised rate is within
    /// [`RISK_TOLERANCE`] of the target (none if no baseline is).
    pub best_baseline: Option<String>,
    /// Its slack.
    pub baseline_slack: Option<f64>,
    /// The same among the learned models (k-NN, SVR).
    pub best_learned: Option<String>,
    /// Its slack.
    pub learned_slack: Option<f64>,
    /// `1 − learned_slack / baseline_slack` when both exist: the share of the best
    /// baseline's slack the best learned model saves (0.15 = 15% less).
    pub reduction: Option<f64>,
    /// Like for like at exactly the target rate (for diagnosis: offsets fitted on the
    /// test part, see [`RiskScore::slack_at_target`]): the baseline with the least
    /// `slack_at_target`.
    pub exact_baseline: Option<String>,
    /// Its `slack_at_target`.
    pub exact_baseline_slack: Option<f64>,
    /// The learned model with the least `slack_at_target`.
    pub exact_learned: Option<String>,
    /// Its `slack_at_target`.
    pub exact_learned_slack: Option<f64>,
    /// `1 − exact_learned_slack / exact_baseline_slack`.
    pub exact_reduction: Option<f64>,
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
    /// The SVM (unless it could not be trained), then the rule.
    pub scores: Vec<ClassifierScore>,
    /// Why the SVM could not be trained, if so (the rule is still scored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_trained: Option<String>,
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
    /// Calibration-slice predictions per model (the last 25% of the training parts).
    #[serde(default)]
    pub calibration_steps: usize,
    /// Horizon, steps.
    pub horizon: usize,
    /// One row per model that could be trained, in the order asked (each learned model
    /// followed by its `+margin` variant).
    pub models: Vec<ModelScore>,
    /// The models that could not be trained, in the order asked.
    #[serde(default)]
    pub not_trained: Vec<NotTrained>,
    /// Per target rate of [`EvalConfig::risks`]: best baseline against best learned model.
    #[serde(default)]
    pub risk_comparison: Vec<RiskComparison>,
    /// The classifier comparison, if asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier: Option<ClassifierReport>,
}

/// Index where the test part of a series of `len` values starts.
pub fn split_index(len: usize, train_fraction: f64) -> usize {
    ((len as f64 * train_fraction).floor() as usize).min(len)
}

/// The largest value of the training part of `s` (its first `train_fraction`), 0 if
/// that part is empty: the filter `plimsoll predict eval --max-train-peak` applies.
pub fn train_peak(s: &Series, train_fraction: f64) -> f64 {
    s.values[..split_index(s.len(), train_fraction)]
        .iter()
        .copied()
        .fold(0.0, f64::max)
}

/// The series whose names `spec` selects, in their order. `spec` is a comma-separated
/// list of names and inclusive numeric ranges `A-B` (matching names that are integers
/// from A to B, as the Bitbrains file stems `1` … `40`). An item that selects nothing is
/// an error naming it.
pub fn select_series(series: Vec<Series>, spec: &str) -> Result<Vec<Series>, PredictError> {
    let bad = |item: &str, reason: &'static str| PredictError::InvalidParam {
        name: "series",
        value: item.to_string(),
        reason,
    };
    let mut items: Vec<(String, Option<(u64, u64)>)> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let range = match item.split_once('-') {
            Some((a, b)) if !a.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) => {
                let (a, b) = (a.parse::<u64>(), b.parse::<u64>());
                match (a, b) {
                    (Ok(a), Ok(b)) if a <= b => Some((a, b)),
                    _ => return Err(bad(item, "a range must be A-B with integers A <= B")),
                }
            }
            _ => None,
        };
        items.push((item.to_string(), range));
    }
    if items.is_empty() {
        return Err(bad(spec, "names no series"));
    }
    let matches = |s: &Series, (name, range): &(String, Option<(u64, u64)>)| match range {
        Some((a, b)) => s.name.parse::<u64>().is_ok_and(|n| (*a..=*b).contains(&n)),
        None => &s.name == name,
    };
    if let Some((item, _)) = items
        .iter()
        .find(|it| !series.iter().any(|s| matches(s, it)))
    {
        return Err(bad(item, "matches no series of the data"));
    }
    Ok(series
        .into_iter()
        .filter(|s| items.iter().any(|it| matches(s, it)))
        .collect())
}

/// The `(t, actual peak)` test points of a series from `from` on.
fn test_points(s: &Series, from: usize, horizon: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
    (from..s.len()).map_while(move |t| peak_after(s, t, horizon).map(|y| (t, y)))
}

/// A model's predictions at the points of a pass: the point prediction, one prediction
/// per reservation rule, and the actual peak.
struct Pass {
    point: Vec<(f64, f64)>,
    /// `rules[i]` holds the `(reservation by rule i, actual)` pairs.
    rules: Vec<Vec<(f64, f64)>>,
    /// Per point: true if it lies in the later half of its series' part of the pass.
    late: Vec<bool>,
    seconds: f64,
}

/// Predictions with the actual peaks over `series[k]` from `from[k]` on.
fn predict_all(
    model: &Model,
    series: &[Series],
    from: &[usize],
    horizon: usize,
    rules: &[Reserve],
) -> Pass {
    let start = Instant::now();
    let mut pass = Pass {
        point: Vec::new(),
        rules: vec![Vec::new(); rules.len()],
        late: Vec::new(),
        seconds: 0.0,
    };
    for (s, &f) in series.iter().zip(from) {
        let mid = f + s.len().saturating_sub(horizon + f) / 2;
        for (t, y) in test_points(s, f, horizon) {
            let (p, qs) = model.predict_reserves(s, t, rules);
            pass.point.push((p, y));
            pass.late.push(t >= mid);
            for (out, q) in pass.rules.iter_mut().zip(qs) {
                out.push((q, y));
            }
        }
    }
    pass.seconds = start.elapsed().as_secs_f64();
    pass
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

/// The smallest offset `c` (signed: it may lower a prediction) such that the share of
/// `(prediction, actual)` pairs with `actual > prediction + c` is at most `target`
/// (0 for no pairs): the empirical `1 − target` quantile of the residuals
/// `actual − prediction`, as in split conformal prediction.
pub fn calibrate_offset(pairs: &[(f64, f64)], target: f64) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let mut gaps: Vec<f64> = pairs.iter().map(|(p, y)| y - p).collect();
    gaps.sort_by(f64::total_cmp);
    let allowed = (target.clamp(0.0, 1.0) * gaps.len() as f64).floor() as usize;
    gaps[gaps.len() - 1 - allowed.min(gaps.len() - 1)]
}

/// Under-prediction rate and mean slack of reserving `max(0, p + offset)`.
pub fn reserve_scores(pairs: &[(f64, f64)], offset: f64) -> (f64, f64) {
    let n = pairs.len().max(1) as f64;
    let (mut under, mut slack) = (0usize, 0.0);
    for &(p, y) in pairs {
        let r = (p + offset).max(0.0);
        under += usize::from(y > r);
        slack += r - y;
    }
    (under as f64 / n, slack / n)
}

fn under_rate(pairs: &[(f64, f64)]) -> f64 {
    pairs.iter().filter(|(p, y)| y > p).count() as f64 / pairs.len().max(1) as f64
}

fn score(
    name: &str,
    learned: bool,
    pairs: &[(f64, f64)],
    secs: f64,
    train_seconds: f64,
    margin: f64,
) -> ModelScore {
    let n = pairs.len().max(1) as f64;
    let mut se = 0.0;
    let mut ae = 0.0;
    let mut over = 0.0;
    let mut slack = 0.0;
    for &(p, y) in pairs {
        se += (p - y) * (p - y);
        ae += (p - y).abs();
        over += (p - y).max(0.0);
        slack += p - y;
    }
    ModelScore {
        name: name.to_string(),
        learned,
        rmse: (se / n).sqrt(),
        mae: ae / n,
        under_rate: under_rate(pairs),
        slack: slack / n,
        over_mean: over / n,
        train_seconds,
        predict_us: secs * 1e6 / n,
        margin,
        risk: Vec::new(),
        not_calibrated: None,
    }
}

/// The costs of the k-NN's [`Reserve::Cost`] rules, fractions of capacity per unit of
/// under-prediction probability; at every risk the k-NN's rule is chosen among these and
/// the quantile at `1 − risk` on the calibration slice.
/// Costs below 0.5 were dropped: on Bitbrains VMs 21–40 the cost 0.2 rule, chosen on the
/// calibration slice, gave up on volatile states that became common in the test part
/// (realised 8.4% at a 5% target); see docs/predict.md.
pub const KNN_COSTS: [f64; 4] = [0.5, 1.0, 2.0, 5.0];

/// The k-NN's candidate rules: its (floored) mean, the `1 − risk` quantile of every risk,
/// then every cost.
fn knn_rules(risks: &[f64], costs: &[f64]) -> Vec<Reserve> {
    std::iter::once(Reserve::Mean)
        .chain(risks.iter().map(|r| Reserve::Quantile(1.0 - r)))
        .chain(costs.iter().map(|&c| Reserve::Cost(c)))
        .collect()
}

/// How a candidate reservation rule fares when its offset is calibrated on the earlier
/// half of every series' calibration slice and applied to the later half: `(rate
/// within target + half the tolerance, slack, rate)` on the later half.
fn holdout_score(pairs: &[(f64, f64)], late: &[bool], target: f64) -> (bool, f64, f64) {
    let (early, later): (Vec<_>, Vec<_>) = pairs.iter().zip(late).partition(|(_, l)| !**l);
    let early: Vec<(f64, f64)> = early.into_iter().map(|(p, _)| *p).collect();
    let later: Vec<(f64, f64)> = later.into_iter().map(|(p, _)| *p).collect();
    let m = calibrate_offset(&early, target);
    let (rate, slack) = reserve_scores(&later, m);
    (rate <= target + RISK_TOLERANCE / 2.0, slack, rate)
}

/// `(reservation, actual peak)` pairs of one pass.
type Pairs<'a> = &'a [(f64, f64)];

/// Risk entries of one model from its calibration-slice and test passes. At every risk
/// the k-NN chooses among its candidate rules (its point prediction, the `1 − risk`
/// quantile, the cost rules) on the calibration slice alone, guarding against drift:
/// each candidate's offset is calibrated on the earlier half of every series' slice
/// and tried on the later half; among the candidates whose rate there stays within
/// half a point of the target, the least slack wins (if none does, the lowest rate).
/// The winner's offset is then calibrated on the whole slice. The other models have
/// one candidate, their point prediction.
fn risk_scores(risks: &[f64], rules: &[Reserve], cal: &Pass, test: &Pass) -> Vec<RiskScore> {
    risks
        .iter()
        .enumerate()
        .map(|(i, &target)| {
            // Candidates: (label, calibration pairs, test pairs).
            let mut candidates: Vec<(String, Pairs, Pairs)> = Vec::new();
            if rules.is_empty() {
                candidates.push(("point".into(), &cal.point, &test.point));
            } else {
                for (j, rule) in rules.iter().enumerate() {
                    let own_quantile = j == i + 1;
                    if own_quantile || !matches!(rule, Reserve::Quantile(_)) {
                        candidates.push((rule.label(), &cal.rules[j], &test.rules[j]));
                    }
                }
            }
            let (rule, cal_pairs, test_pairs) = candidates
                .into_iter()
                .map(|(label, c, t)| (label, c, t, holdout_score(c, &cal.late, target)))
                .min_by(|a, b| {
                    let (ok_a, slack_a, rate_a) = a.3;
                    let (ok_b, slack_b, rate_b) = b.3;
                    ok_b.cmp(&ok_a).then(if ok_a && ok_b {
                        slack_a.total_cmp(&slack_b)
                    } else {
                        rate_a.total_cmp(&rate_b)
                    })
                })
                .map(|(label, c, t, _)| (label, c, t))
                .expect("at least one candidate");
            let margin = calibrate_offset(cal_pairs, target);
            let (calibration_under_rate, _) = reserve_scores(cal_pairs, margin);
            let (under_rate, slack) = reserve_scores(test_pairs, margin);
            let exact = calibrate_offset(test_pairs, target);
            let (_, slack_at_target) = reserve_scores(test_pairs, exact);
            RiskScore {
                target,
                under_rate,
                slack,
                margin,
                calibration_under_rate,
                slack_at_target,
                rule,
            }
        })
        .collect()
}

/// Best baseline against best learned model at each target rate.
fn compare(risks: &[f64], models: &[ModelScore]) -> Vec<RiskComparison> {
    risks
        .iter()
        .enumerate()
        .map(|(i, &target)| {
            let best = |learned: bool| {
                models
                    .iter()
                    .filter(|m| m.learned == learned)
                    .filter_map(|m| m.risk.get(i).map(|r| (m, r)))
                    .filter(|(_, r)| (r.under_rate - target).abs() <= RISK_TOLERANCE + 1e-12)
                    .min_by(|a, b| a.1.slack.total_cmp(&b.1.slack))
                    .map(|(m, r)| (m.name.clone(), r.slack))
            };
            let (b, l) = (best(false), best(true));
            let reduction = match (&b, &l) {
                (Some((_, bs)), Some((_, ls))) if *bs > 0.0 => Some(1.0 - ls / bs),
                _ => None,
            };
            let exact = |learned: bool| {
                models
                    .iter()
                    .filter(|m| m.learned == learned)
                    .filter_map(|m| m.risk.get(i).map(|r| (m, r)))
                    .min_by(|a, b| a.1.slack_at_target.total_cmp(&b.1.slack_at_target))
                    .map(|(m, r)| (m.name.clone(), r.slack_at_target))
            };
            let (eb, el) = (exact(false), exact(true));
            let exact_reduction = match (&eb, &el) {
                (Some((_, bs)), Some((_, ls))) if *bs > 0.0 => Some(1.0 - ls / bs),
                _ => None,
            };
            RiskComparison {
                target,
                baseline_slack: b.as_ref().map(|x| x.1),
                best_baseline: b.map(|x| x.0),
                learned_slack: l.as_ref().map(|x| x.1),
                best_learned: l.map(|x| x.0),
                reduction,
                exact_baseline_slack: eb.as_ref().map(|x| x.1),
                exact_baseline: eb.map(|x| x.0),
                exact_learned_slack: el.as_ref().map(|x| x.1),
                exact_learned: el.map(|x| x.0),
                exact_reduction,
            }
        })
        .collect()
}

fn check(cfg: &EvalConfig) -> Result<(), PredictError> {
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
    if !(cfg.fit_fraction > 0.0 && cfg.fit_fraction < 1.0) {
        return Err(PredictError::InvalidParam {
            name: "fit_fraction",
            value: cfg.fit_fraction.to_string(),
            reason: "must be in (0, 1)",
        });
    }
    if let Some(c) = cfg.knn_costs.iter().find(|c| !(c.is_finite() && **c > 0.0)) {
        return Err(PredictError::InvalidParam {
            name: "knn_costs",
            value: c.to_string(),
            reason: "must be finite and > 0",
        });
    }
    if let Some(r) = cfg.risks.iter().find(|r| !(**r > 0.0 && **r < 1.0)) {
        return Err(PredictError::InvalidParam {
            name: "risk",
            value: r.to_string(),
            reason: "must be in (0, 1)",
        });
    }
    Ok(())
}

/// Runs the evaluation. Series too short to have both a training and a test point are
/// skipped. A model (or the classifier) that cannot be trained is listed in
/// [`EvalReport::not_trained`] (or [`ClassifierReport::not_trained`]) and the others are
/// still evaluated; an error only if nothing at all could be evaluated.
pub fn evaluate(series: &[Series], cfg: &EvalConfig) -> Result<EvalReport, PredictError> {
    check(cfg)?;
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
    // Calibration: fit on the first 75% of each training part, calibrate on the rest.
    let cal_from: Vec<usize> = train_parts
        .iter()
        .map(|s| split_index(s.len(), cfg.fit_fraction))
        .collect();
    let fit_parts: Vec<Series> = train_parts
        .iter()
        .zip(&cal_from)
        .map(|(s, &k)| s.prefix(k))
        .collect();
    let fit_data = TrainingData::build(&fit_parts, h);
    // Calibration pairs come from the training parts (their horizons end inside them).
    let sigma_target = {
        let nsigma = Model::new(ModelKind::Baseline(Baseline::n_sigma()));
        under_rate(&predict_all(&nsigma, &train_parts, &cal_from, h, &[]).point)
    };

    let mut report = EvalReport {
        series: series.len(),
        train_samples: data.len(),
        test_steps: 0,
        calibration_steps: 0,
        horizon: h,
        models: Vec::new(),
        not_trained: Vec::new(),
        risk_comparison: Vec::new(),
        classifier: None,
    };
    for name in &cfg.models {
        let start = Instant::now();
        let model = match train(name, &data, &cfg.options) {
            Ok(m) => m,
            Err(e @ PredictError::UnknownModel(_)) => return Err(e),
            Err(e) => {
                report.not_trained.push(NotTrained {
                    name: name.clone(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let train_seconds = start.elapsed().as_secs_f64();
        let learned = model.is_learned();
        let rules = match model.kind {
            ModelKind::Knn(_) if !cfg.risks.is_empty() => knn_rules(&cfg.risks, &cfg.knn_costs),
            _ => Vec::new(),
        };
        let test = predict_all(&model, series, &split, h, &rules);
        report.test_steps = test.point.len();
        let mut row = score(name, learned, &test.point, test.seconds, train_seconds, 0.0);
        let wants_margin = cfg.calibrated && learned;
        // The probe predicts the calibration slice: a copy trained on the fit parts for
        // a learned model, the baseline itself otherwise.
        let start = Instant::now();
        let probe = if !learned {
            Ok(model.clone())
        } else if wants_margin || !cfg.risks.is_empty() {
            train(name, &fit_data, &cfg.options)
        } else {
            Err(PredictError::NoTrainingData("no calibration asked".into()))
        };
        let mut margin_row = None;
        match probe {
            Ok(probe) => {
                let cal = predict_all(&probe, &train_parts, &cal_from, h, &rules);
                let cal_seconds = start.elapsed().as_secs_f64();
                report.calibration_steps = cal.point.len();
                if !cfg.risks.is_empty() {
                    row.risk = risk_scores(&cfg.risks, &rules, &cal, &test);
                    row.train_seconds += cal_seconds;
                }
                if wants_margin {
                    let margin = calibrate_margin(&cal.point, sigma_target);
                    let shifted: Vec<(f64, f64)> =
                        test.point.iter().map(|&(p, y)| (p + margin, y)).collect();
                    margin_row = Some(score(
                        &format!("{name}+margin"),
                        true,
                        &shifted,
                        test.seconds,
                        train_seconds + cal_seconds,
                        margin,
                    ));
                }
            }
            Err(e) => {
                if !cfg.risks.is_empty() || wants_margin {
                    row.not_calibrated = Some(format!(
                        "the calibration copy (first {:.0}% of each training part) could not be trained: {e}",
                        cfg.fit_fraction * 100.0
                    ));
                }
            }
        }
        report.models.push(row);
        report.models.extend(margin_row);
    }
    report.risk_comparison = compare(&cfg.risks, &report.models);
    if let Some(params) = cfg.classifier {
        report.classifier = Some(evaluate_classifier(series, &split, &data, params));
    }
    let classified = report
        .classifier
        .as_ref()
        .is_some_and(|c| c.not_trained.is_none() && c.steps > 0);
    let scored = !report.models.is_empty() && report.test_steps > 0;
    if !scored && !classified {
        let mut why: Vec<String> = report
            .not_trained
            .iter()
            .map(|n| format!("{}: {}", n.name, n.reason))
            .collect();
        if let Some(reason) = report
            .classifier
            .as_ref()
            .and_then(|c| c.not_trained.clone())
        {
            why.push(format!("classifier: {reason}"));
        }
        if why.is_empty() {
            why.push(format!(
                "{} series, none with a test step whose horizon ends inside it",
                series.len()
            ));
        }
        return Err(PredictError::NoTrainingData(format!(
            "nothing could be evaluated ({})",
            why.join("; ")
        )));
    }
    Ok(report)
}

fn evaluate_classifier(
    series: &[Series],
    split: &[usize],
    data: &TrainingData,
    params: SvcParams,
) -> ClassifierReport {
    let x = params.threshold();
    let start = Instant::now();
    let (svc, not_trained) = match SvcModel::train(data, params) {
        Ok(m) => (Some(m), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let train_seconds = start.elapsed().as_secs_f64();
    let (mut svm, mut rule) = (Confusion::default(), Confusion::default());
    let (mut positives, mut steps) = (0, 0);
    for (s, &f) in series.iter().zip(split) {
        for (t, y) in test_points(s, f, data.horizon) {
            let actual = y > x;
            if let Some(svc) = &svc {
                svm.add(svc.will_exceed(s, t), actual);
            }
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
    let mut scores = Vec::new();
    if svc.is_some() {
        scores.push(row("svm", svm));
    }
    scores.push(row("above-now", rule));
    ClassifierReport {
        threshold: x,
        positives,
        steps,
        train_seconds: if svc.is_some() { train_seconds } else { 0.0 },
        scores,
        not_trained,
    }
}
