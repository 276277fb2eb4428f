//! Online policies (interface stub; implemented by the online work package).
#![allow(missing_docs, unused_variables)]
use super::{Outcome, PlaceError, Placer};
use crate::model::{Binding, Cluster, Pod, Problem};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnlineKind { KubeDefault, BestFit, MostAllocated, LeastAllocated, DotProduct, GpuPacking, GpuClustering, Fgd, FirstFit, Random }

#[derive(Debug, Clone)]
pub struct OnlinePolicy { pub kind: OnlineKind, pub seed: u64 }

impl OnlinePolicy {
    pub fn new(kind: OnlineKind, seed: u64) -> Self { OnlinePolicy { kind, seed } }
    pub fn select(&self, cluster: &Cluster, pod: &Pod) -> Option<Binding> { unimplemented!("stub") }
}

impl Placer for OnlinePolicy {
    fn name(&self) -> &str { "stub" }
    fn place(&self, problem: &Problem) -> Result<Outcome, PlaceError> { unimplemented!("stub") }
}
