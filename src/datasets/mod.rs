//! Dataset loaders (openb) and the seeded synthetic generator.
//!
//! The data folder is found by [`data_dir`]: `PLIMSOLL_DATA`, then `datasets/`, then
//! `../shared/datasets/`. Real trace files are never committed to the project.

pub mod openb;
pub mod synthetic;

use std::path::PathBuf;

/// The folder holding the real traces: `$PLIMSOLL_DATA` if set, else `./datasets` if it
/// contains `openb/`, else `../shared/datasets`. Returns `None` if none exists.
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
