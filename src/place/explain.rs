//! Explanations (interface stub; filled by the explain work package).
#![allow(missing_docs, unused_variables)]
use super::filter::Reason;
use crate::model::{Binding, NodeId, Problem};

#[derive(Debug, Clone)]
pub struct Explanation { pub pending_index: usize, pub summary: String, pub per_node: Vec<(NodeId, Vec<Reason>)> }

/// For every pod left out of `placement`, why (evaluated against the cluster with the placement applied).
pub fn explain(problem: &Problem, placement: &[Option<Binding>]) -> Vec<Explanation> {
    unimplemented!("stub")
}
