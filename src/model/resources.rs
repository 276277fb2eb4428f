//! Resource vectors with explicit units: CPU in millicores, memory and ephemeral storage
//! in bytes, a pod count, and named extended resources in their own integer units.
//! GPUs are *not* here: they are devices (see [`crate::model::gpu`]).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An amount of every schedulable resource except GPU devices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU in millicores (1000 = one core).
    pub cpu_milli: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Number of pods (a node's `pods` capacity; a pod requests 1 implicitly).
    pub pods: u64,
    /// Ephemeral storage in bytes.
    pub ephemeral_storage_bytes: u64,
    /// Extended resources by their Kubernetes name (e.g. `example.com/foo`), in units.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extended: BTreeMap<String, u64>,
}

/// Names the resources as kube-scheduler does in "Insufficient NAME" messages.
pub const CPU: &str = "cpu";
/// Memory's Kubernetes name.
pub const MEMORY: &str = "memory";
/// Ephemeral storage's Kubernetes name.
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
/// The pod count's Kubernetes name.
pub const PODS: &str = "pods";
/// Whole GPU devices' Kubernetes name (NVIDIA device plugin).
pub const NVIDIA_GPU: &str = "nvidia.com/gpu";

impl Resources {
    /// A vector with only CPU (millicores) and memory (bytes) set.
    pub fn cpu_mem(cpu_milli: u64, memory_bytes: u64) -> Self {
        Resources {
            cpu_milli,
            memory_bytes,
            ..Default::default()
        }
    }

    /// Adds `other` to `self`, saturating (amounts are capped far below `u64::MAX`).
    pub fn add(&mut self, other: &Resources) {
        self.cpu_milli = self.cpu_milli.saturating_add(other.cpu_milli);
        self.memory_bytes = self.memory_bytes.saturating_add(other.memory_bytes);
        self.pods = self.pods.saturating_add(other.pods);
        self.ephemeral_storage_bytes = self
            .ephemeral_storage_bytes
            .saturating_add(other.ephemeral_storage_bytes);
        for (k, v) in &other.extended {
            let e = self.extended.entry(k.clone()).or_insert(0);
            *e = e.saturating_add(*v);
        }
    }

    /// The first resource (in kube-scheduler's order: cpu, memory, ephemeral-storage,
    /// extended by name) where `self` + `request` exceeds `capacity`, or `None` if it fits.
    /// Pods are checked separately by the caller since every pod requests exactly one.
    pub fn insufficient(&self, request: &Resources, capacity: &Resources) -> Vec<String> {
        let mut out = Vec::new();
        if request.cpu_milli > 0 && self.cpu_milli + request.cpu_milli > capacity.cpu_milli {
            out.push(CPU.to_string());
        }
        if request.memory_bytes > 0
            && self.memory_bytes + request.memory_bytes > capacity.memory_bytes
        {
            out.push(MEMORY.to_string());
        }
        if request.ephemeral_storage_bytes > 0
            && self.ephemeral_storage_bytes + request.ephemeral_storage_bytes
                > capacity.ephemeral_storage_bytes
        {
            out.push(EPHEMERAL_STORAGE.to_string());
        }
        for (k, v) in &request.extended {
            if *v == 0 {
                continue;
            }
            let used = self.extended.get(k).copied().unwrap_or(0);
            let cap = capacity.extended.get(k).copied().unwrap_or(0);
            if used + v > cap {
                out.push(k.clone());
            }
        }
        out
    }
}
