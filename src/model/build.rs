//! Builders for hand-made nodes and pods: tests, examples, docs and embedders write
//! `Node::new("a", 8_000, 32 * GIB).with_gpus("V100", 4)` instead of restating every
//! field. Manifests and traces do not go through here (they fill every field
//! themselves).
//!
//! ```
//! use plimsoll::model::{Cluster, GpuAmount, Node, Pod, Problem, GIB};
//! let nodes = vec![
//!     Node::new("a", 8_000, 32 * GIB),
//!     Node::new("b", 16_000, 64 * GIB).with_gpus("V100", 2).with_label("zone", "z1"),
//! ];
//! let pending = vec![
//!     Pod::new("web-1", 2_000, 4 * GIB),
//!     Pod::new("train", 4_000, 16 * GIB).with_gpu(GpuAmount::Whole(1)).with_priority(100),
//! ];
//! let problem = Problem { cluster: Cluster::new(nodes)?, pending };
//! let b = problem.cluster.node_id("b").unwrap();
//! assert_eq!(problem.cluster[b].gpu_count(), 2);
//! # Ok::<(), plimsoll::model::ClusterError>(())
//! ```

use super::gpu::{GpuAmount, NodeGpus};
use super::node::Node;
use super::pod::{Gang, Pod};
use super::resources::Resources;
use super::selector::{Taint, TaintEffect, Toleration};

/// One gibibyte in bytes (`memory_bytes` is always in bytes).
pub const GIB: u64 = 1 << 30;

/// The label kube sets to a node's name; [`Node::new`] sets it.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// A node's default pod capacity (kubelet's `maxPods`).
pub const DEFAULT_MAX_PODS: u64 = 110;

impl Node {
    /// A schedulable node with `cpu_milli` millicores and `memory_bytes` allocatable (and
    /// the same capacity), room for [`DEFAULT_MAX_PODS`] pods, no ephemeral storage, no
    /// GPUs, and its [`HOSTNAME_LABEL`].
    pub fn new(name: &str, cpu_milli: u64, memory_bytes: u64) -> Node {
        let r = Resources {
            cpu_milli,
            memory_bytes,
            pods: DEFAULT_MAX_PODS,
            ..Default::default()
        };
        Node {
            name: name.into(),
            capacity: r.clone(),
            allocatable: r,
            labels: [(HOSTNAME_LABEL.to_string(), name.to_string())].into(),
            ..Default::default()
        }
    }

    /// With `count` GPU devices of `model` (none when `count` is 0).
    pub fn with_gpus(mut self, model: &str, count: u32) -> Node {
        self.gpus = (count > 0).then(|| NodeGpus {
            model: model.into(),
            count,
        });
        self
    }

    /// With room for `pods` pods (allocatable and capacity).
    pub fn with_max_pods(mut self, pods: u64) -> Node {
        self.allocatable.pods = pods;
        self.capacity.pods = pods;
        self
    }

    /// With `bytes` of ephemeral storage (allocatable and capacity).
    pub fn with_ephemeral_storage(mut self, bytes: u64) -> Node {
        self.allocatable.ephemeral_storage_bytes = bytes;
        self.capacity.ephemeral_storage_bytes = bytes;
        self
    }

    /// With the label `key=value` (replacing one of the same key).
    pub fn with_label(mut self, key: &str, value: &str) -> Node {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Without any label (not even the hostname).
    pub fn without_labels(mut self) -> Node {
        self.labels.clear();
        self
    }

    /// With the taint `key=value:effect`.
    pub fn with_taint(mut self, key: &str, value: &str, effect: TaintEffect) -> Node {
        self.taints.push(Taint {
            key: key.into(),
            value: value.into(),
            effect,
        });
        self
    }

    /// Cordoned (`spec.unschedulable`).
    pub fn cordoned(mut self) -> Node {
        self.unschedulable = true;
        self
    }
}

impl Pod {
    /// A pod in namespace `default` requesting `cpu_milli` millicores and `memory_bytes`,
    /// priority 0, no GPU and no constraints.
    pub fn new(name: &str, cpu_milli: u64, memory_bytes: u64) -> Pod {
        Pod {
            name: name.into(),
            namespace: "default".into(),
            requests: Resources::cpu_mem(cpu_milli, memory_bytes),
            ..Default::default()
        }
    }

    /// In namespace `namespace`.
    pub fn in_namespace(mut self, namespace: &str) -> Pod {
        self.namespace = namespace.into();
        self
    }

    /// Asking for `amount` of GPU.
    pub fn with_gpu(mut self, amount: GpuAmount) -> Pod {
        self.gpu.amount = amount;
        self
    }

    /// Accepting only GPUs of these models.
    pub fn with_gpu_models(mut self, models: &[&str]) -> Pod {
        self.gpu.models = models.iter().map(|m| m.to_string()).collect();
        self
    }

    /// With priority `priority`.
    pub fn with_priority(mut self, priority: i32) -> Pod {
        self.priority = priority;
        self
    }

    /// With the label `key=value`.
    pub fn with_label(mut self, key: &str, value: &str) -> Pod {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Tolerating `toleration`.
    pub fn with_toleration(mut self, toleration: Toleration) -> Pod {
        self.tolerations.push(toleration);
        self
    }

    /// Requiring the node label `key=value` (`spec.nodeSelector`).
    pub fn with_node_selector(mut self, key: &str, value: &str) -> Pod {
        self.node_selector.insert(key.into(), value.into());
        self
    }

    /// A member of gang `name`, which places all-or-nothing with at least `min_member`.
    pub fn in_gang(mut self, name: &str, min_member: u32) -> Pod {
        self.gang = Some(Gang {
            name: name.into(),
            min_member,
        });
        self
    }

    /// Already bound to the node named `node` (`spec.nodeName`).
    pub fn bound_to(mut self, node: &str) -> Pod {
        self.node_name = Some(node.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_set_exactly_what_they_say() {
        let n = Node::new("a", 8_000, 4 * GIB)
            .with_gpus("V100", 2)
            .with_label("zone", "z1")
            .with_taint("pool", "gpu", TaintEffect::NoSchedule)
            .with_ephemeral_storage(10 * GIB)
            .cordoned();
        assert_eq!(n.allocatable, n.capacity);
        assert_eq!(n.allocatable.cpu_milli, 8_000);
        assert_eq!(n.allocatable.memory_bytes, 4 * GIB);
        assert_eq!(n.allocatable.pods, DEFAULT_MAX_PODS);
        assert_eq!(n.allocatable.ephemeral_storage_bytes, 10 * GIB);
        assert_eq!(n.gpu_count(), 2);
        assert_eq!(n.labels.get(HOSTNAME_LABEL).map(String::as_str), Some("a"));
        assert_eq!(n.taints.len(), 1);
        assert!(n.unschedulable);
        assert_eq!(Node::new("b", 1, 1).with_gpus("V100", 0).gpus, None);

        let p = Pod::new("p", 500, GIB)
            .in_namespace("ns")
            .with_gpu(GpuAmount::Whole(1))
            .with_gpu_models(&["V100"])
            .with_priority(7)
            .in_gang("g", 2)
            .bound_to("a");
        assert_eq!(p.key(), "ns/p");
        assert_eq!(p.requests, Resources::cpu_mem(500, GIB));
        assert_eq!(p.gpu.models, vec!["V100".to_string()]);
        assert_eq!((p.priority, p.node_name.as_deref()), (7, Some("a")));
        assert_eq!(p.gang.as_ref().map(|g| g.min_member), Some(2));
    }
}
