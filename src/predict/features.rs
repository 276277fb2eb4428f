//! The feature vector of a series at time `t`, computed from `values[..=t]` only, and
//! the training set (features, peak target) of a set of series.
//!
//! Features, in order (see [`FEATURE_NAMES`]): the last three values; mean, max and
//! standard deviation over 1 h, 6 h and 1 day; the 50th and 90th percentiles over 6 h and
//! 1 day; the trend (least-squares slope over the last hour, per hour); the peak of the
//! same horizon window one day earlier; time of day and day of week as sin/cos; and
//! log2 of the provisioned cores. Windows shorter than the history are cut to it. All
//! usage features are fractions of the provisioned capacity, so one model serves every
//! size.

use super::Series;

/// Number of features.
pub const NUM_FEATURES: usize = 23;

/// One feature vector.
pub type FeatureVec = [f64; NUM_FEATURES];

/// Feature names, in vector order.
pub const FEATURE_NAMES: [&str; NUM_FEATURES] = [
    "last",
    "last-1",
    "last-2",
    "mean-1h",
    "max-1h",
    "std-1h",
    "mean-6h",
    "max-6h",
    "std-6h",
    "p50-6h",
    "p90-6h",
    "mean-1d",
    "max-1d",
    "std-1d",
    "p50-1d",
    "p90-1d",
    "trend-1h",
    "peak-1d-ago",
    "tod-sin",
    "tod-cos",
    "dow-sin",
    "dow-cos",
    "log2-cores",
];

/// Index of the 1-hour moving maximum (the base the learned models predict over).
pub const MAX_1H: usize = 4;

const DAY_SECS: i64 = 86_400;

/// Window length in steps for `secs` seconds at `step` (at least 1).
pub fn window_steps(secs: i64, step: i64) -> usize {
    (secs / step).max(1) as usize
}

/// The last `w` values of `hist` (all of it if shorter).
fn tail(hist: &[f64], w: usize) -> &[f64] {
    &hist[hist.len().saturating_sub(w)..]
}

/// Mean, max and population standard deviation of a non-empty slice.
pub fn mean_max_std(xs: &[f64]) -> (f64, f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let max = xs.iter().copied().fold(f64::MIN, f64::max);
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, max, var.max(0.0).sqrt())
}

/// The `q`-quantile (0..=1, nearest rank) of a non-empty slice; `buf` is scratch space.
pub fn quantile(xs: &[f64], q: f64, buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend_from_slice(xs);
    let k = ((q * (buf.len() - 1) as f64).round() as usize).min(buf.len() - 1);
    let (_, v, _) = buf.select_nth_unstable_by(k, f64::total_cmp);
    *v
}

/// Least-squares slope of a slice against its index, per step (0 for fewer than 2).
fn slope(xs: &[f64]) -> f64 {
    let n = xs.len();
    if n < 2 {
        return 0.0;
    }
    let nf = n as f64;
    let mx = (nf - 1.0) / 2.0;
    let my = xs.iter().sum::<f64>() / nf;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, y) in xs.iter().enumerate() {
        let dx = i as f64 - mx;
        num += dx * (y - my);
        den += dx * dx;
    }
    num / den
}

/// The feature vector of `series` at index `t` for a horizon of `horizon` steps, from
/// `series.values[..=t]` only. Panics if `t` is out of range.
pub fn features(series: &Series, t: usize, horizon: usize) -> FeatureVec {
    let hist = &series.values[..=t];
    let step = series.step;
    let (w1h, w6h, w1d) = (
        window_steps(3_600, step),
        window_steps(6 * 3_600, step),
        window_steps(DAY_SECS, step),
    );
    let at = |back: usize| hist[t.saturating_sub(back)];
    let mut buf = Vec::with_capacity(w1d);
    let (m1, x1, s1) = mean_max_std(tail(hist, w1h));
    let h6 = tail(hist, w6h);
    let (m6, x6, s6) = mean_max_std(h6);
    let d1 = tail(hist, w1d);
    let (md, xd, sd) = mean_max_std(d1);
    // The same horizon window one day earlier: values[t + 1 - day ..= t + h - day], all
    // at or before t when h <= day; the 1-hour max stands in while there is no such day.
    let peak_day_ago = if t + 1 >= w1d && horizon <= w1d {
        let lo = t + 1 - w1d;
        let hi = (lo + horizon.max(1)).min(t + 1);
        hist[lo..hi].iter().copied().fold(f64::MIN, f64::max)
    } else {
        x1
    };
    let time = series.time_at(t);
    let tod = time.rem_euclid(DAY_SECS) as f64 / DAY_SECS as f64;
    let dow = time.rem_euclid(7 * DAY_SECS) as f64 / (7 * DAY_SECS) as f64;
    let tau = std::f64::consts::TAU;
    [
        at(0),
        at(1),
        at(2),
        m1,
        x1,
        s1,
        m6,
        x6,
        s6,
        quantile(h6, 0.5, &mut buf),
        quantile(h6, 0.9, &mut buf),
        md,
        xd,
        sd,
        quantile(d1, 0.5, &mut buf),
        quantile(d1, 0.9, &mut buf),
        slope(tail(hist, w1h)) * w1h as f64,
        peak_day_ago,
        (tau * tod).sin(),
        (tau * tod).cos(),
        (tau * dow).sin(),
        (tau * dow).cos(),
        series.capacity.log2(),
    ]
}

/// The actual peak of `values[t + 1..=t + horizon]`, or `None` if the series ends first.
pub fn peak_after(series: &Series, t: usize, horizon: usize) -> Option<f64> {
    let end = t.checked_add(horizon)?;
    (horizon > 0 && end < series.len()).then(|| {
        series.values[t + 1..=end]
            .iter()
            .copied()
            .fold(f64::MIN, f64::max)
    })
}

/// Feature vectors with their targets: every index `t` of every series whose horizon
/// ends inside the series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainingData {
    /// Feature vectors.
    pub x: Vec<FeatureVec>,
    /// Target: the peak fraction over the horizon after `t`.
    pub y: Vec<f64>,
    /// Which series (index in the input) each sample comes from.
    pub series: Vec<usize>,
    /// Horizon, steps.
    pub horizon: usize,
}

impl TrainingData {
    /// Builds the samples of every series (in order; within a series by time).
    pub fn build(series: &[Series], horizon: usize) -> TrainingData {
        let mut d = TrainingData {
            horizon,
            ..Default::default()
        };
        for (k, s) in series.iter().enumerate() {
            for t in 0..s.len() {
                let Some(y) = peak_after(s, t, horizon) else {
                    break;
                };
                d.x.push(features(s, t, horizon));
                d.y.push(y);
                d.series.push(k);
            }
        }
        d
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True if there are no samples.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// Per-feature mean and standard deviation of a training set; standardises vectors.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scaler {
    /// Means.
    pub mean: Vec<f64>,
    /// Standard deviations (1 where a feature is constant).
    pub std: Vec<f64>,
}

impl Scaler {
    /// Fits on the rows of `x` (identity if `x` is empty).
    pub fn fit(x: &[FeatureVec]) -> Scaler {
        let n = x.len().max(1) as f64;
        let mut mean = vec![0.0; NUM_FEATURES];
        for r in x {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += v / n;
            }
        }
        let mut var = vec![0.0; NUM_FEATURES];
        for r in x {
            for ((s, v), m) in var.iter_mut().zip(r).zip(&mean) {
                *s += (v - m) * (v - m) / n;
            }
        }
        let std = var
            .into_iter()
            .map(|v| if v > 1e-12 { v.sqrt() } else { 1.0 })
            .collect();
        Scaler { mean, std }
    }

    /// The standardised vector.
    pub fn apply(&self, x: &FeatureVec) -> FeatureVec {
        let mut out = [0.0; NUM_FEATURES];
        for (i, o) in out.iter_mut().enumerate() {
            *o = (x[i] - self.mean[i]) / self.std[i];
        }
        out
    }
}
