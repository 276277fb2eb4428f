//! The metric: allocated GPU % against arrived GPU %, bucketed as the paper's
//! `merge_alloc_discrete_0920.py` does.

/// Last arrived-% bucket of a curve (buckets are 0..=`LAST_BUCKET`).
pub const LAST_BUCKET: usize = 130;

/// Rounds to `digits` decimals as Python's `round` does (correctly rounded, ties to even
/// on the exact binary value), through Rust's exact decimal formatting.
pub fn round_py(x: f64, digits: usize) -> f64 {
    format!("{x:.digits$}").parse().unwrap_or(x)
}

/// Collects one run's events (after every pod: arrived and allocated GPU milli).
#[derive(Debug, Clone)]
pub struct CurveBuilder {
    total_gpus: f64,
    sums: Vec<f64>,
    counts: Vec<u64>,
    last_alloc: (u64, f64),
}

impl CurveBuilder {
    /// A builder for a cluster of `total_gpus` devices.
    pub fn new(total_gpus: u64) -> Self {
        CurveBuilder {
            total_gpus: total_gpus as f64,
            sums: vec![0.0; LAST_BUCKET + 2],
            counts: vec![0; LAST_BUCKET + 2],
            last_alloc: (u64::MAX, 0.0),
        }
    }

    /// Records one event: arrived % = round(arrived / GPUs / 10) (half to even), alloc %
    /// = round(allocated / GPUs / 10, 2), as the paper's script computes them.
    pub fn record(&mut self, arrived_milli: u64, allocated_milli: u64) {
        if self.total_gpus == 0.0 {
            return;
        }
        let arrive = (arrived_milli as f64 / self.total_gpus / 10.0).round_ties_even();
        if self.last_alloc.0 != allocated_milli {
            let a = round_py(allocated_milli as f64 / self.total_gpus / 10.0, 2);
            self.last_alloc = (allocated_milli, a);
        }
        let b = arrive as usize;
        if b < self.sums.len() {
            self.sums[b] += self.last_alloc.1;
            self.counts[b] += 1;
        }
    }

    /// The curve: for each integer arrived % 0..=130 the mean alloc % of the events in
    /// that bucket (rounded to 0.01); an empty bucket takes the events of buckets ±1, and
    /// if those are empty too, the previous bucket's value (0 for bucket 0).
    pub fn finish(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(LAST_BUCKET + 1);
        let mut prev = 0.0;
        for b in 0..=LAST_BUCKET {
            let (s, c) = if self.counts[b] > 0 {
                (self.sums[b], self.counts[b])
            } else {
                let lo = b.saturating_sub(1);
                (lo..=b + 1).fold((0.0, 0), |(s, c), i| (s + self.sums[i], c + self.counts[i]))
            };
            let v = if c > 0 {
                round_py(s / c as f64, 2)
            } else {
                prev
            };
            out.push(v);
            prev = v;
        }
        out
    }
}

/// Mean of per-seed curves, bucket by bucket, rounded to 0.01.
pub fn mean_curve(curves: &[Vec<f64>]) -> Vec<f64> {
    let n = curves.len().max(1) as f64;
    (0..=LAST_BUCKET)
        .map(|b| round_py(curves.iter().map(|c| c[b]).sum::<f64>() / n, 2))
        .collect()
}
