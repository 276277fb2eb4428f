//! The fixed-step usage [`Series`] every predictor reads, and its construction from the
//! Bitbrains VM loader and the Alibaba 2018 machine usage loader by resampling to a fixed
//! step (mean of the samples in each step; an empty step repeats the previous value, so
//! filling never looks ahead).

use super::PredictError;
use crate::datasets::alibaba2018::MachineUsage;
use crate::datasets::bitbrains::VmSeries;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The default resampling step: 5 minutes.
pub const DEFAULT_STEP_SECS: i64 = 300;

/// The most values one resampled series may have (80 MB): ten million steps, about 95
/// years at 5 minutes. Loaders bound their spans far below this (Bitbrains files:
/// [`MAX_SPAN_SECS`](crate::datasets::bitbrains::MAX_SPAN_SECS)); this bound keeps
/// [`Series::resample`] itself from sizing an array by an absurd span.
pub const MAX_VALUES: usize = 10_000_000;

/// Cores of every Alibaba 2018 machine (the trace's `machine_meta.csv` lists 96 for all).
pub const ALIBABA_2018_CORES: f64 = 96.0;

/// CPU usage of one workload at a fixed step, as a fraction of its provisioned capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The workload's name (file stem or machine id).
    pub name: String,
    /// Time of `values[0]`, Unix seconds (or trace seconds for Alibaba).
    pub start: i64,
    /// Seconds between two values (> 0).
    pub step: i64,
    /// Usage, fraction of the provisioned capacity (0.5 = half of it), finite and ≥ 0.
    pub values: Vec<f64>,
    /// Provisioned capacity, cores (> 0).
    pub capacity: f64,
}

impl Series {
    /// A checked series: `step > 0`, `capacity > 0` and finite, values finite and ≥ 0.
    pub fn new(
        name: impl Into<String>,
        start: i64,
        step: i64,
        values: Vec<f64>,
        capacity: f64,
    ) -> Result<Series, PredictError> {
        let name = name.into();
        let bad = |msg: String| PredictError::InvalidSeries {
            name: name.clone(),
            msg,
        };
        if step <= 0 {
            return Err(bad(format!("step {step} s is not positive")));
        }
        if !(capacity.is_finite() && capacity > 0.0) {
            return Err(bad(format!("capacity {capacity} is not a positive number")));
        }
        if let Some(i) = values.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(bad(format!(
                "value {} at index {i} is not finite and ≥ 0",
                values[i]
            )));
        }
        Ok(Series {
            name,
            start,
            step,
            values,
            capacity,
        })
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True if there are no values.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Time of `values[i]`, seconds.
    pub fn time_at(&self, i: usize) -> i64 {
        self.start + self.step * i as i64
    }

    /// The first `n` values (the whole series if it is shorter).
    pub fn prefix(&self, n: usize) -> Series {
        Series {
            values: self.values[..n.min(self.len())].to_vec(),
            ..self.clone()
        }
    }

    /// Resamples irregular `(time, value)` samples (any order, duplicates allowed) to
    /// `step`: the grid starts at the first time rounded down to a multiple of `step`;
    /// each value is the mean of the samples in its step; an empty step repeats the
    /// previous value. Non-finite samples are dropped; negative ones become 0.
    pub fn resample(
        name: impl Into<String>,
        samples: &[(i64, f64)],
        step: i64,
        capacity: f64,
    ) -> Result<Series, PredictError> {
        let name = name.into();
        if step <= 0 {
            return Err(PredictError::InvalidSeries {
                name,
                msg: format!("step {step} s is not positive"),
            });
        }
        let mut buckets: BTreeMap<i64, (f64, u32)> = BTreeMap::new();
        for &(t, v) in samples.iter().filter(|s| s.1.is_finite()) {
            let e = buckets.entry(t.div_euclid(step)).or_default();
            e.0 += v.max(0.0);
            e.1 += 1;
        }
        let (Some((&first, _)), Some((&last, _))) =
            (buckets.first_key_value(), buckets.last_key_value())
        else {
            return Err(PredictError::InvalidSeries {
                name,
                msg: "no finite samples".into(),
            });
        };
        let steps = i128::from(last) - i128::from(first) + 1;
        if steps > MAX_VALUES as i128 {
            return Err(PredictError::InvalidSeries {
                name,
                msg: format!(
                    "samples from {} to {} s would make {steps} values of {step} s; \
                     at most {MAX_VALUES}",
                    i128::from(first) * i128::from(step),
                    i128::from(last) * i128::from(step)
                ),
            });
        }
        let mut values = Vec::with_capacity(steps as usize);
        let mut prev = 0.0;
        for b in first..=last {
            if let Some(&(sum, n)) = buckets.get(&b) {
                prev = sum / f64::from(n);
            }
            values.push(prev);
        }
        let Some(start) = first.checked_mul(step) else {
            return Err(PredictError::InvalidSeries {
                name,
                msg: format!("a sample at {first} steps of {step} s is out of range"),
            });
        };
        Series::new(name, start, step, values, capacity)
    }

    /// A Bitbrains VM: CPU usage % / 100, resampled to `step` (duplicate timestamps keep
    /// the first row, as [`VmSeries::dedup_by_time`]); capacity is the VM's largest core
    /// count.
    pub fn from_vm(vm: &VmSeries, step: i64) -> Result<Series, PredictError> {
        let (vm, _) = vm.dedup_by_time();
        let cores = vm.cpu_cores.iter().copied().max().unwrap_or(0);
        let samples: Vec<(i64, f64)> = vm
            .timestamps
            .iter()
            .zip(&vm.cpu_usage_percent)
            .map(|(&t, &p)| (t, p / 100.0))
            .collect();
        Series::resample(&vm.name, &samples, step, f64::from(cores.max(1)))
    }

    /// One series per machine of Alibaba 2018 machine usage rows (by machine id, sorted):
    /// `cpu_util_percent / 100` resampled to `step` (rows without CPU are skipped);
    /// capacity from `cores` by machine id, else [`ALIBABA_2018_CORES`].
    pub fn from_machine_usage(
        rows: &[MachineUsage],
        step: i64,
        cores: &BTreeMap<String, f64>,
    ) -> Result<Vec<Series>, PredictError> {
        let mut by_machine: BTreeMap<&str, Vec<(i64, f64)>> = BTreeMap::new();
        for r in rows {
            if let Some(c) = r.cpu_util_percent {
                by_machine
                    .entry(&r.machine_id)
                    .or_default()
                    .push((r.time_stamp, c / 100.0));
            }
        }
        by_machine
            .into_iter()
            .map(|(id, samples)| {
                let cap = cores.get(id).copied().unwrap_or(ALIBABA_2018_CORES);
                Series::resample(id, &samples, step, cap)
            })
            .collect()
    }
}

/// Loads usage series from `path`: a folder of Bitbrains VM files (one series per VM,
/// ordered as [`load_dir`](crate::datasets::bitbrains::load_dir)) or an Alibaba 2018
/// `machine_usage.csv` file (one series per machine, 96 cores each), resampled to
/// `step`. Malformed rows are errors naming the file and line.
pub fn load_series(path: &std::path::Path, step: i64) -> Result<Vec<Series>, PredictError> {
    use crate::datasets::{alibaba2018, bitbrains, Strictness};
    if path.is_dir() {
        let set = bitbrains::load_dir(path, Strictness::Strict)?;
        set.vms
            .iter()
            .zip(&set.reports)
            .map(|(vm, rep)| Series::from_vm(vm, step).map_err(|e| from_file(e, &rep.path)))
            .collect()
    } else {
        let rows = alibaba2018::load_machine_usage(path, Strictness::Strict)?;
        Series::from_machine_usage(&rows.records, step, &BTreeMap::new())
            .map_err(|e| from_file(e, path))
    }
}

/// Names the file a series came from in its error (`series 7 (data/7.csv): …`).
fn from_file(e: PredictError, path: &std::path::Path) -> PredictError {
    match e {
        PredictError::InvalidSeries { name, msg } => PredictError::InvalidSeries {
            name: format!("{name} ({})", path.display()),
            msg,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resample_refuses_a_span_beyond_max_values() {
        let e = Series::resample("s", &[(0, 1.0), (i64::MAX, 1.0)], 300, 1.0).unwrap_err();
        assert!(e.to_string().contains("at most 10000000"), "{e}");
        let e = Series::resample("s", &[(i64::MIN, 1.0), (i64::MAX, 1.0)], 1, 1.0).unwrap_err();
        assert!(e.to_string().starts_with("series s:"), "{e}");
    }

    #[test]
    fn series_errors_name_their_file() {
        let dir = std::env::temp_dir().join(format!("plimsoll-series-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let header = crate::datasets::bitbrains::HEADER.join(";\t");
        std::fs::write(dir.join("7.csv"), format!("{header}\n")).unwrap();
        let e = load_series(&dir, DEFAULT_STEP_SECS)
            .unwrap_err()
            .to_string();
        let file = dir.join("7.csv").display().to_string();
        assert_eq!(e, format!("series 7 ({file}): no finite samples"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
