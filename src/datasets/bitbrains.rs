//! Loader for the Bitbrains GWA-T-12 "Rnd" VM performance traces: one file per VM, one
//! row every 5 minutes, loaded as a column-oriented [`VmSeries`].
//!
//! Format: a header line, then rows whose cells are separated by `;` followed by a tab
//! (cells are trimmed, so any whitespace after `;` is accepted). Columns, in order:
//! `Timestamp [ms]` (the values are epoch **seconds** despite the name), `CPU cores`,
//! `CPU capacity provisioned [MHZ]`, `CPU usage [MHZ]`, `CPU usage [%]`,
//! `Memory capacity provisioned [KB]`, `Memory usage [KB]`, `Disk read throughput
//! [KB/s]`, `Disk write throughput [KB/s]`, `Network received throughput [KB/s]`,
//! `Network transmitted throughput [KB/s]`. Every cell is required.
//!
//! Rows are kept as written, in file order. In 2013-7, VM 14 has only 428 rows and VM 20
//! has 16,553 of which 4,158 repeat an earlier timestamp; [`VmSeries::out_of_order`]
//! detects this and [`VmSeries::dedup_by_time`] gives one sample per timestamp.
//!
//! [`load_dir`] reads every `*.csv` of a folder (in parallel), ordered by the file stem's
//! number (`1.csv`, `2.csv`, …, `10.csv`; stems that are not numbers come after, by name).
//!
//! Citation: S. Shen, V. van Beek, A. Iosup, "Statistical Characterization of
//! Business-Critical Workloads Hosted in Cloud Datacenters", CCGrid 2015.

use super::common::{
    parse_rows, read_text, DatasetError, Header, LoadReport, RowError, Strictness, BAD_VALUE,
};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// The header every file starts with (cells trimmed).
pub const HEADER: [&str; 11] = [
    "Timestamp [ms]",
    "CPU cores",
    "CPU capacity provisioned [MHZ]",
    "CPU usage [MHZ]",
    "CPU usage [%]",
    "Memory capacity provisioned [KB]",
    "Memory usage [KB]",
    "Disk read throughput [KB/s]",
    "Disk write throughput [KB/s]",
    "Network received throughput [KB/s]",
    "Network transmitted throughput [KB/s]",
];

/// The longest time one VM file may span, first to last timestamp: 366 days. The real
/// files span about a month; a single row at timestamp 0 or 9e18, or a gap of years,
/// would make every series built from the file (one value per 5 minutes) that long.
pub const MAX_SPAN_SECS: i64 = 366 * 24 * 3600;

/// The largest absolute value of a measurement cell (CPU MHz and %, memory KB, KB/s):
/// 10^15. The real files stay below 10^9; values near `f64::MAX` overflow the
/// predictors' sums into `inf`.
pub const MAX_CELL_VALUE: f64 = 1e15;

/// One VM's time series, one entry per kept row in every column (all columns have the
/// same length).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VmSeries {
    /// The file stem (`"1"` for `1.csv`).
    pub name: String,
    /// Sample times, epoch seconds.
    pub timestamps: Vec<i64>,
    /// Virtual CPU cores.
    pub cpu_cores: Vec<u32>,
    /// CPU capacity provisioned, MHz.
    pub cpu_provisioned_mhz: Vec<f64>,
    /// CPU used, MHz.
    pub cpu_usage_mhz: Vec<f64>,
    /// CPU used, percent of the provisioned capacity.
    pub cpu_usage_percent: Vec<f64>,
    /// Memory provisioned, KB.
    pub mem_provisioned_kb: Vec<f64>,
    /// Memory used, KB.
    pub mem_usage_kb: Vec<f64>,
    /// Disk read throughput, KB/s.
    pub disk_read_kbps: Vec<f64>,
    /// Disk write throughput, KB/s.
    pub disk_write_kbps: Vec<f64>,
    /// Network received throughput, KB/s.
    pub net_rx_kbps: Vec<f64>,
    /// Network transmitted throughput, KB/s.
    pub net_tx_kbps: Vec<f64>,
}

impl VmSeries {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// True if there are no samples.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Samples whose timestamp is not after the previous one (0 for a clean series; VM
    /// 20 of 2013-7 has 4,158: 4,154 timestamps occur more than once, the extra rows
    /// mostly all zeros).
    pub fn out_of_order(&self) -> usize {
        self.timestamps.windows(2).filter(|w| w[1] <= w[0]).count()
    }

    /// The series sorted by time (stable) with one sample per timestamp, the first in
    /// file order; also returns how many samples were dropped.
    pub fn dedup_by_time(&self) -> (VmSeries, usize) {
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.sort_by_key(|&i| self.timestamps[i]);
        idx.dedup_by_key(|i| self.timestamps[*i]);
        fn pick<T: Copy>(v: &[T], idx: &[usize]) -> Vec<T> {
            idx.iter().map(|&i| v[i]).collect()
        }
        let out = VmSeries {
            name: self.name.clone(),
            timestamps: pick(&self.timestamps, &idx),
            cpu_cores: pick(&self.cpu_cores, &idx),
            cpu_provisioned_mhz: pick(&self.cpu_provisioned_mhz, &idx),
            cpu_usage_mhz: pick(&self.cpu_usage_mhz, &idx),
            cpu_usage_percent: pick(&self.cpu_usage_percent, &idx),
            mem_provisioned_kb: pick(&self.mem_provisioned_kb, &idx),
            mem_usage_kb: pick(&self.mem_usage_kb, &idx),
            disk_read_kbps: pick(&self.disk_read_kbps, &idx),
            disk_write_kbps: pick(&self.disk_write_kbps, &idx),
            net_rx_kbps: pick(&self.net_rx_kbps, &idx),
            net_tx_kbps: pick(&self.net_tx_kbps, &idx),
        };
        (out, self.len() - idx.len())
    }
}

/// Every VM of a folder with the report of each file, in the same order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BitbrainsSet {
    /// The VMs, ordered by file number.
    pub vms: Vec<VmSeries>,
    /// One load report per VM, same order.
    pub reports: Vec<LoadReport>,
}

/// Loads one VM file.
pub fn load_vm(
    path: impl AsRef<Path>,
    strictness: Strictness,
) -> Result<(VmSeries, LoadReport), DatasetError> {
    let path = path.as_ref();
    let name = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    parse_vm(&read_text(path)?, path, &name, strictness)
}

/// Parses the text of one VM file; `path` names it in errors and the report.
pub fn parse_vm(
    text: &str,
    path: &Path,
    name: &str,
    strictness: Strictness,
) -> Result<(VmSeries, LoadReport), DatasetError> {
    let mut s = VmSeries {
        name: name.to_string(),
        ..Default::default()
    };
    let mut range: Option<(i64, i64)> = None;
    let loaded = parse_rows(
        text,
        path,
        ";",
        Header::Expect(&HEADER),
        11,
        strictness,
        |r| {
            let t: i64 = r.num(0, HEADER[0])?;
            let cores: u32 = r.num(1, HEADER[1])?;
            let mut f = [0.0; 9];
            for (k, slot) in f.iter_mut().enumerate() {
                *slot = r.f64(k + 2, HEADER[k + 2])?;
                if slot.abs() > MAX_CELL_VALUE {
                    return Err(RowError::new(
                        BAD_VALUE,
                        format!(
                            "column {} ({}): {} is beyond ±{MAX_CELL_VALUE:e}",
                            k + 3,
                            HEADER[k + 2],
                            r.text(k + 2)
                        ),
                    ));
                }
            }
            let (lo, hi) = range.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t)));
            if i128::from(hi) - i128::from(lo) > i128::from(MAX_SPAN_SECS) {
                return Err(RowError::new(
                    BAD_VALUE,
                    format!(
                        "column 1 ({}): {t} makes the file span {} days \
                         (rows from {lo} to {hi}); at most {} days",
                        HEADER[0],
                        (i128::from(hi) - i128::from(lo)) / 86_400,
                        MAX_SPAN_SECS / 86_400
                    ),
                ));
            }
            range = Some((lo, hi));
            s.timestamps.push(t);
            s.cpu_cores.push(cores);
            s.cpu_provisioned_mhz.push(f[0]);
            s.cpu_usage_mhz.push(f[1]);
            s.cpu_usage_percent.push(f[2]);
            s.mem_provisioned_kb.push(f[3]);
            s.mem_usage_kb.push(f[4]);
            s.disk_read_kbps.push(f[5]);
            s.disk_write_kbps.push(f[6]);
            s.net_rx_kbps.push(f[7]);
            s.net_tx_kbps.push(f[8]);
            Ok(())
        },
    )?;
    Ok((s, loaded.report))
}

/// The `*.csv` files of `dir` in load order: by numeric stem, then non-numeric by name.
pub fn vm_files(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>, DatasetError> {
    let dir = dir.as_ref();
    let io = |source| DatasetError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if p.extension().is_some_and(|e| e == "csv") && p.is_file() {
            files.push(p);
        }
    }
    files.sort_by_cached_key(|p| {
        let stem = p
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        (stem.parse::<u64>().unwrap_or(u64::MAX), stem)
    });
    Ok(files)
}

/// Loads every VM file of `dir` (see [`vm_files`] for the order), files in parallel.
/// The first failing file (in load order) is the error.
pub fn load_dir(
    dir: impl AsRef<Path>,
    strictness: Strictness,
) -> Result<BitbrainsSet, DatasetError> {
    let files = vm_files(dir)?;
    let loaded: Vec<_> = files.par_iter().map(|p| load_vm(p, strictness)).collect();
    let mut set = BitbrainsSet::default();
    for r in loaded {
        let (vm, rep) = r?;
        set.vms.push(vm);
        set.reports.push(rep);
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(rows: &[&str]) -> String {
        let mut t = HEADER.join(";\t");
        for r in rows {
            t.push('\n');
            t.push_str(r);
        }
        t.push('\n');
        t
    }

    const ROW: &str = "1;\t4;\t11703.0;\t46.8;\t0.4;\t67108.0;\t6710.0;\t0.0;\t0.0;\t0.0;\t0.0";

    fn row_at(t: i64) -> String {
        ROW.replacen('1', &t.to_string(), 1)
    }

    fn parse(rows: &[&str]) -> Result<(VmSeries, LoadReport), DatasetError> {
        parse_vm(&text(rows), Path::new("vm/7.csv"), "7", Strictness::Strict)
    }

    #[test]
    fn bitbrains_timestamps_far_apart_are_an_error_naming_the_line() {
        let (a, b) = (row_at(1_372_636_800), row_at(1_372_637_100));
        assert_eq!(parse(&[&a, &b]).unwrap().0.len(), 2);
        for far in [
            0,
            9_000_000_000_000_000_000,
            1_372_636_800 + 3 * 365 * 86_400,
        ] {
            let c = row_at(far);
            let e = parse(&[&a, &b, &c]).unwrap_err().to_string();
            assert!(
                e.starts_with("vm/7.csv: line 4: column 1 (Timestamp [ms])"),
                "{e}"
            );
        }
    }

    #[test]
    fn bitbrains_absurd_usage_cells_are_an_error_naming_line_and_column() {
        let huge = ROW.replace("0.4", "1e308");
        let e = parse(&[&huge]).unwrap_err().to_string();
        assert!(
            e.starts_with("vm/7.csv: line 2: column 5 (CPU usage [%]): 1e308"),
            "{e}"
        );
        let inf = ROW.replace("0.4", "inf");
        let e = parse(&[&inf]).unwrap_err().to_string();
        assert!(e.contains("line 2: column CPU usage [%]"), "{e}");
    }
}
