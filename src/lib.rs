//! Plimsoll: pod placement as an optimisation problem.
#![deny(missing_docs)]

pub mod datasets;
pub mod manifest;
pub mod model;
pub mod place;
