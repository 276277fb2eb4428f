//! Validator (interface stub; filled by the validate work package).
#![allow(missing_docs, unused_variables)]
use crate::model::{Binding, Problem};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation { pub message: String }

/// Checks a placement (one entry per pending pod) against every hard constraint.
pub fn validate(problem: &Problem, placement: &[Option<Binding>]) -> Result<(), Vec<Violation>> {
    unimplemented!("stub")
}
