//! Typed ids of a [`super::Cluster`]'s nodes and bound pods.
//!
//! Both are small `Copy` handles. A [`NodeId`] is a node's slot; slots are never reused,
//! so the id of a removed node stays an error ([`super::ClusterError::NoSuchNode`]) for
//! the cluster's whole life instead of silently naming a later node. A [`PodId`] is a
//! slot plus a generation: pod slots are reused (a long-running cluster binds millions of
//! pods), and the generation makes an id of an unbound pod an error
//! ([`super::ClusterError::UnknownPod`]) even after its slot holds another pod.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A node of a [`super::Cluster`]: its slot, stable until the node is removed and never
/// given to another node.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct NodeId(pub(super) u32);

impl NodeId {
    /// The lowest id (slot 0): the start of a range over ids.
    pub const FIRST: NodeId = NodeId(0);

    /// The id of slot `index` (slots count from 0 in the order nodes were added). An id
    /// made this way is only as valid as the slot: the cluster answers `NoSuchNode` for
    /// a vacant or out-of-range one.
    ///
    /// # Panics
    /// If `index` does not fit in `u32` (a cluster holds at most `u32::MAX` nodes).
    #[inline]
    pub fn from_index(index: usize) -> Self {
        NodeId(u32::try_from(index).expect("node slot fits in u32"))
    }

    /// The id of slot `index` where the slot is known to fit (hot loops that keep slots
    /// as `u32`).
    #[inline]
    pub(crate) const fn from_u32(index: u32) -> Self {
        NodeId(index)
    }

    /// The slot, for indexing arrays parallel to the cluster's slots
    /// ([`super::Cluster::node_slots`] long).
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node#{}", self.0)
    }
}

/// A bound pod of a [`super::Cluster`]: its slot and the slot's generation when it was
/// bound. Ordered by slot, then generation.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct PodId {
    slot: u32,
    generation: u32,
}

impl PodId {
    pub(crate) fn new(slot: usize, generation: u32) -> Self {
        PodId {
            slot: u32::try_from(slot).expect("pod slot fits in u32"),
            generation,
        }
    }

    /// The slot (reused after the pod is unbound; pair it with the generation to tell
    /// pods apart).
    pub const fn slot(self) -> usize {
        self.slot as usize
    }

    /// How many pods held the slot before this one.
    pub const fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Display for PodId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pod#{}.{}", self.slot, self.generation)
    }
}

/// Arrays parallel to a cluster's node slots ([`super::Cluster::node_slots`] long) are
/// indexed by [`NodeId`] directly.
impl<T> std::ops::Index<NodeId> for [T] {
    type Output = T;

    #[inline]
    fn index(&self, id: NodeId) -> &T {
        &self[id.index()]
    }
}

impl<T> std::ops::IndexMut<NodeId> for [T] {
    #[inline]
    fn index_mut(&mut self, id: NodeId) -> &mut T {
        &mut self[id.index()]
    }
}

impl<T> std::ops::Index<NodeId> for Vec<T> {
    type Output = T;

    #[inline]
    fn index(&self, id: NodeId) -> &T {
        &self[id.index()]
    }
}

impl<T> std::ops::IndexMut<NodeId> for Vec<T> {
    #[inline]
    fn index_mut(&mut self, id: NodeId) -> &mut T {
        &mut self[id.index()]
    }
}
