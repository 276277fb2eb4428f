//! CSV trace records: the row machinery every trace loader shares (the error type,
//! [`Strictness`], the [`LoadReport`] of rows read, kept and skipped by reason) and the
//! openb node and pod lists ([`openb`]). Both [`crate::manifest`] (openb files given to
//! `plimsoll place -f`) and [`crate::datasets`] (which re-exports this module as
//! `datasets::common` and `datasets::openb`) read openb through here, so neither reaches
//! into the other.
//!
//! What every trace loader shares: the error type, the strictness switch, the load
//! report, pods with arrival/departure times, and a fast splitter for the simple
//! delimiter-separated files of the traces (no quoting in any of them).

pub mod openb;

use crate::model::Pod;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Pods per node given to every trace node: the kubelet's default `maxPods` (110).
pub const DEFAULT_MAX_PODS: u64 = 110;

/// Why a dataset file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A row (or the header) is malformed.
    #[error("{path}: line {line}: {msg}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// What is wrong.
        msg: String,
    },
    /// The header matches no known layout.
    #[error("{path}: line 1: unrecognised header {header:?}; expected {expected}")]
    UnknownHeader {
        /// The file.
        path: PathBuf,
        /// The header found.
        header: String,
        /// The layouts accepted.
        expected: String,
    },
    /// The file could not be read (the I/O error is the source, shown by callers that
    /// print the error chain).
    #[error("{path}: cannot read the file")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// What a loader does with a malformed row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strictness {
    /// The first malformed row is an error naming the file and line (the default).
    #[default]
    Strict,
    /// Malformed rows are skipped and counted by reason in [`LoadReport::skipped`].
    Lenient,
}

/// Reason key: a row has the wrong number of columns.
pub const WRONG_COLUMN_COUNT: &str = "wrong column count";
/// Reason key: a numeric field does not parse.
pub const NOT_A_NUMBER: &str = "non-numeric field";
/// Reason key: a required field is empty.
pub const EMPTY_FIELD: &str = "empty required field";
/// Reason key: a field parses but its value is not allowed (unknown enum value, duplicate…).
pub const BAD_VALUE: &str = "invalid value";
/// Reason key: an empty line (counted, never an error).
pub const BLANK_LINE: &str = "blank line";

/// What a load read, kept and skipped. Nothing is dropped without being counted here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The file read.
    pub path: PathBuf,
    /// Data lines read (the header excluded, blank lines included).
    pub rows: usize,
    /// Rows turned into records.
    pub kept: usize,
    /// Rows skipped, by reason (one of the reason keys of this module, e.g.
    /// [`WRONG_COLUMN_COUNT`]). Blank lines are always skipped under [`BLANK_LINE`];
    /// other reasons occur only under [`Strictness::Lenient`].
    pub skipped: BTreeMap<&'static str, usize>,
    /// Empty cells in optional columns of kept rows, by column name (the value became
    /// `None`).
    pub empty_cells: BTreeMap<&'static str, usize>,
}

impl LoadReport {
    /// A report for `path` with nothing counted yet.
    pub fn new(path: &Path) -> Self {
        LoadReport {
            path: path.to_path_buf(),
            ..Default::default()
        }
    }

    /// Rows skipped for any reason.
    pub fn skipped_total(&self) -> usize {
        self.skipped.values().sum()
    }
}

/// Records of one file with the report of their load.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<T> {
    /// The records, in file order.
    pub records: Vec<T>,
    /// What was read and skipped.
    pub report: LoadReport,
}

/// A pod of a trace with its arrival and departure, for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedPod {
    /// The pod (pending, namespace `default`).
    pub pod: Pod,
    /// Arrival time, in the trace's seconds.
    pub arrival: i64,
    /// Departure time in the trace's seconds; `None` if it had not left at the trace end.
    pub departure: Option<i64>,
}

/// What turning records into model objects converted and left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvertReport {
    /// Objects produced.
    pub converted: usize,
    /// Records (or instances) left out, by reason.
    pub skipped: BTreeMap<&'static str, usize>,
}

/// Reads a whole file as UTF-8.
pub(crate) fn read_text(path: &Path) -> Result<String, DatasetError> {
    std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A row-level problem: the reason key and the message.
#[derive(Debug)]
pub(crate) struct RowError {
    pub reason: &'static str,
    pub msg: String,
}

impl RowError {
    pub(crate) fn new(reason: &'static str, msg: String) -> Self {
        RowError { reason, msg }
    }
}

/// One split data row: its trimmed cells.
pub(crate) struct Row<'a> {
    pub cells: &'a [&'a str],
    empties: RefCell<Vec<&'static str>>,
}

impl Row<'_> {
    /// The cell `i` (trimmed), empty if missing.
    pub fn text(&self, i: usize) -> &str {
        self.cells.get(i).copied().unwrap_or("")
    }

    /// A required non-empty cell.
    pub fn req(&self, i: usize, col: &str) -> Result<&str, RowError> {
        let s = self.text(i);
        if s.is_empty() {
            return Err(RowError::new(EMPTY_FIELD, format!("column {col} is empty")));
        }
        Ok(s)
    }

    /// A required cell parsed as `T`.
    pub fn num<T: std::str::FromStr>(&self, i: usize, col: &str) -> Result<T, RowError> {
        let s = self.req(i, col)?;
        s.parse::<T>().map_err(|_| {
            RowError::new(
                NOT_A_NUMBER,
                format!("column {col}: {s:?} is not a valid {}", type_word::<T>()),
            )
        })
    }

    /// A cell parsed as `T` that may be empty (the empty cell is counted under `col`).
    pub fn opt_num<T: std::str::FromStr>(
        &self,
        i: usize,
        col: &'static str,
    ) -> Result<Option<T>, RowError> {
        if self.text(i).is_empty() {
            self.empties.borrow_mut().push(col);
            return Ok(None);
        }
        self.num(i, col).map(Some)
    }

    /// A finite float that may be empty (the empty cell is counted under `col`).
    pub fn opt_f64(&self, i: usize, col: &'static str) -> Result<Option<f64>, RowError> {
        if self.text(i).is_empty() {
            self.empties.borrow_mut().push(col);
            return Ok(None);
        }
        self.f64(i, col).map(Some)
    }

    /// A required finite float.
    pub fn f64(&self, i: usize, col: &str) -> Result<f64, RowError> {
        let v: f64 = self.num(i, col)?;
        if !v.is_finite() {
            return Err(RowError::new(
                NOT_A_NUMBER,
                format!("column {col}: {v} is not finite"),
            ));
        }
        Ok(v)
    }

    /// A text cell that may be empty (the empty cell is counted under `col`).
    pub fn opt_text(&self, i: usize, col: &'static str) -> Option<&str> {
        let s = self.text(i);
        if s.is_empty() {
            self.empties.borrow_mut().push(col);
            return None;
        }
        Some(s)
    }
}

fn type_word<T>() -> &'static str {
    let n = std::any::type_name::<T>();
    if n.starts_with('f') {
        "number"
    } else if n.starts_with('i') {
        "integer"
    } else {
        "non-negative integer"
    }
}

/// How a delimited file starts.
pub(crate) enum Header<'a> {
    /// No header line.
    None,
    /// A header line whose trimmed cells must equal these.
    Expect(&'a [&'a str]),
}

/// Splits `text` on `sep` line by line, checks the header and the column count, and
/// calls `f` on each data row. Malformed rows are errors or skipped per `strictness`.
pub(crate) fn parse_rows<T>(
    text: &str,
    path: &Path,
    sep: &str,
    header: Header<'_>,
    ncols: usize,
    strictness: Strictness,
    mut f: impl FnMut(&Row<'_>) -> Result<T, RowError>,
) -> Result<Loaded<T>, DatasetError> {
    let mut report = LoadReport::new(path);
    let mut records = Vec::new();
    let mut lines = text.lines().enumerate();
    if let Header::Expect(want) = header {
        let first = lines.next().map_or("", |(_, l)| l);
        let got: Vec<&str> = first.split(sep).map(str::trim).collect();
        if got != want {
            return Err(DatasetError::UnknownHeader {
                path: path.to_path_buf(),
                header: first.trim_end().to_string(),
                expected: format!("{:?}", want.join(sep)),
            });
        }
    }
    let mut cells: Vec<&str> = Vec::with_capacity(ncols);
    for (i, raw) in lines {
        let line = i as u64 + 1;
        report.rows += 1;
        let raw = raw.trim_end_matches('\r');
        if raw.trim().is_empty() {
            *report.skipped.entry(BLANK_LINE).or_default() += 1;
            continue;
        }
        cells.clear();
        cells.extend(raw.split(sep).map(str::trim));
        let result = if cells.len() != ncols {
            Err(RowError::new(
                WRONG_COLUMN_COUNT,
                format!("{} columns, expected {ncols}", cells.len()),
            ))
        } else {
            let row = Row {
                cells: &cells,
                empties: RefCell::new(Vec::new()),
            };
            f(&row).map(|rec| (rec, row.empties.into_inner()))
        };
        match result {
            Ok((rec, empties)) => {
                for col in empties {
                    *report.empty_cells.entry(col).or_default() += 1;
                }
                records.push(rec);
                report.kept += 1;
            }
            Err(e) => match strictness {
                Strictness::Strict => {
                    return Err(DatasetError::Malformed {
                        path: path.to_path_buf(),
                        line,
                        msg: e.msg,
                    })
                }
                Strictness::Lenient => *report.skipped.entry(e.reason).or_default() += 1,
            },
        }
    }
    Ok(Loaded { records, report })
}

/// `normalised × bytes_per_unit`, rounded, as bytes.
pub(crate) fn scaled_bytes(normalised: f64, bytes_per_unit: u64) -> u64 {
    (normalised * bytes_per_unit as f64).round().max(0.0) as u64
}
