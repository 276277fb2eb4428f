//! Dataset loaders and the seeded synthetic generator.
//!
//! Loaders, one module per trace: [`openb`] (Alibaba GPU trace 2023), [`alibaba2017`]
//! (cluster-trace-v2017 machines and batch tasks), [`alibaba2018`] (cluster-trace-v2018
//! machine tables), [`bitbrains`] (GWA-T-12 VM series). They share [`common`]: the error
//! type, [`Strictness`] (malformed rows are errors by default, or skipped and counted),
//! and the [`LoadReport`] counting rows read, kept and skipped by reason.
//!
//! The data folder is found by [`data_dir`]: `PLIMSOLL_DATA`, then `datasets/`, then
//! `../shared/datasets/`. Real trace files are never committed to the project.

pub mod alibaba2017;
pub mod alibaba2018;
pub mod bitbrains;
/// The shared row machinery (owned by [`crate::records`]).
pub use crate::records as common;
/// The openb node and pod lists (owned by [`crate::records::openb`]).
pub use crate::records::openb;
pub mod synthetic;

pub use common::{ConvertReport, DatasetError, LoadReport, Loaded, Strictness, TimedPod};

use std::path::PathBuf;

/// The folder holding the real traces, first match of: `$PLIMSOLL_DATA` if set (then it
/// alone decides: `None` if it is not a folder), else `./datasets` if it contains
/// `openb/`, else `../shared/datasets` if it contains `openb/`. Relative paths are from
/// the working directory (the crate root under `cargo test`). `None` if none exists.
pub fn data_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PLIMSOLL_DATA") {
        let p = PathBuf::from(p);
        return p.is_dir().then_some(p);
    }
    for cand in ["datasets", "../shared/datasets"] {
        let p = PathBuf::from(cand);
        if p.join("openb").is_dir() {
            return Some(p);
        }
    }
    None
}
