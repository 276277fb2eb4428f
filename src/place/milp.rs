//! MILP (interface stub; implemented by the MILP work package).
#![allow(missing_docs, unused_variables)]
use super::{Outcome, PlaceError, Placer};
use crate::model::Problem;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Objective { #[default] Pack, Balance, Fragmentation }

#[derive(Debug, Clone, PartialEq)]
pub struct MilpOptions { pub objective: Objective, pub time_limit_seconds: f64, pub mip_rel_gap: f64, pub threads: u32, pub seed: u64 }

#[derive(Debug, Clone)]
pub struct MilpPlacer { pub opts: MilpOptions }

impl MilpPlacer {
    pub fn new(opts: MilpOptions) -> Result<Self, PlaceError> { Ok(MilpPlacer { opts }) }
}

impl Placer for MilpPlacer {
    fn name(&self) -> &str { "milp" }
    fn place(&self, problem: &Problem) -> Result<Outcome, PlaceError> { unimplemented!("stub") }
}
