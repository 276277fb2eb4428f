//! A max-tree over the nodes' free resources, so first-fit finds the lowest-index node
//! that can hold a pod without walking every full node before it.
//!
//! Each tree node keeps, per resource, the largest free amount below it. A search
//! descends left to right and skips every subtree whose maximum of some requested
//! resource is below the request: such a subtree holds no node that fits. Pruning is
//! conservative only — every leaf reached is still checked exactly by the caller — so the
//! first accepted leaf is exactly the first node an ascending scan would accept.

use super::engine::{NodeRow, PodReq};
use crate::model::GpuAmount;

/// Free CPU, memory, ephemeral storage, pod slots, largest free device share, whole free
/// devices.
type Free = [u64; 6];

fn free_of(r: &NodeRow) -> Free {
    [
        r.alloc_cpu.saturating_sub(r.used_cpu),
        r.alloc_mem.saturating_sub(r.used_mem),
        r.alloc_eph.saturating_sub(r.used_eph),
        r.alloc_pods.saturating_sub(r.used_pods),
        u64::from(r.gpu_max_free),
        u64::from(r.gpu_whole_free),
    ]
}

/// The amounts a pod needs of each [`Free`] entry (0: no need, never prunes).
fn need_of(q: &PodReq) -> Free {
    let (share, whole) = match q.gpu {
        GpuAmount::None => (0, 0),
        GpuAmount::Shared(m) => (u64::from(m), 0),
        GpuAmount::Whole(k) => (0, u64::from(k)),
    };
    [q.cpu, q.mem, q.eph, 1, share, whole]
}

/// The max-tree (a complete binary tree in an array, leaves = nodes in index order).
#[derive(Debug, Clone, Default)]
pub(crate) struct FreeTree {
    /// Number of leaves (a power of two, at least the node count).
    size: usize,
    max: Vec<Free>,
}

impl FreeTree {
    /// The tree of `rows`.
    pub fn new(rows: &[NodeRow]) -> Self {
        let size = rows.len().next_power_of_two().max(1);
        let mut t = FreeTree {
            size,
            max: vec![[0; 6]; 2 * size],
        };
        for (i, r) in rows.iter().enumerate() {
            t.max[size + i] = free_of(r);
        }
        for i in (1..size).rev() {
            t.max[i] = merge(&t.max[2 * i], &t.max[2 * i + 1]);
        }
        t
    }

    /// Node `id`'s row changed (no-op before the tree is built).
    pub fn update(&mut self, id: usize, r: &NodeRow) {
        if id >= self.size {
            return;
        }
        let mut i = self.size + id;
        self.max[i] = free_of(r);
        while i > 1 {
            i /= 2;
            self.max[i] = merge(&self.max[2 * i], &self.max[2 * i + 1]);
        }
    }

    /// The lowest node (below `nodes`) that `accept` accepts, among those whose free
    /// resources may hold `q`; `accept` is called in ascending node order and must do
    /// the exact checks.
    pub fn first(
        &self,
        q: &PodReq,
        nodes: usize,
        mut accept: impl FnMut(usize) -> bool,
    ) -> Option<usize> {
        let need = need_of(q);
        let room = |f: &Free| f.iter().zip(&need).all(|(&have, &n)| n == 0 || have >= n);
        // Iterative depth-first descent, left child first.
        let mut stack = vec![1usize];
        while let Some(i) = stack.pop() {
            if !room(&self.max[i]) {
                continue;
            }
            if i >= self.size {
                let id = i - self.size;
                if id < nodes && accept(id) {
                    return Some(id);
                }
                continue;
            }
            stack.push(2 * i + 1);
            stack.push(2 * i);
        }
        None
    }
}

fn merge(a: &Free, b: &Free) -> Free {
    std::array::from_fn(|k| a[k].max(b[k]))
}
