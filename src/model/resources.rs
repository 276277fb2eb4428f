//! Resource vectors with explicit units: CPU in millicores, memory and ephemeral storage
//! in bytes, a pod count, and named extended resources in their own integer units.
//! GPUs are *not* here: they are devices (see [`crate::model::gpu`]).

use super::quantity::MAX_AMOUNT;
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

    /// Adds `other` to `self` unless a sum would exceed [`MAX_AMOUNT`]; then `self` is
    /// unchanged and the error is the Kubernetes name of the first such resource (cpu,
    /// memory, pods, ephemeral-storage, extended by name).
    pub fn checked_add(&mut self, other: &Resources) -> Result<(), String> {
        let sum = |a: u64, b: u64| a.checked_add(b).filter(|s| *s <= MAX_AMOUNT);
        let fixed = [
            (CPU, sum(self.cpu_milli, other.cpu_milli)),
            (MEMORY, sum(self.memory_bytes, other.memory_bytes)),
            (PODS, sum(self.pods, other.pods)),
            (
                EPHEMERAL_STORAGE,
                sum(self.ephemeral_storage_bytes, other.ephemeral_storage_bytes),
            ),
        ];
        if let Some((name, _)) = fixed.iter().find(|(_, s)| s.is_none()) {
            return Err(name.to_string());
        }
        for (k, v) in &other.extended {
            if sum(self.extended.get(k).copied().unwrap_or(0), *v).is_none() {
                return Err(k.clone());
            }
        }
        self.add(other);
        Ok(())
    }

    /// The first resource (in kube-scheduler's order: cpu, memory, ephemeral-storage,
    /// extended by name) where `self` + `request` exceeds `capacity`, or `None` if it fits.
    /// Pods are checked separately by the caller since every pod requests exactly one.
    /// The sums are taken in `u128`, so no amount can wrap into a fit.
    pub fn insufficient(&self, request: &Resources, capacity: &Resources) -> Vec<String> {
        let over = |used: u64, req: u64, cap: u64| {
            req > 0 && u128::from(used) + u128::from(req) > u128::from(cap)
        };
        let mut out = Vec::new();
        if over(self.cpu_milli, request.cpu_milli, capacity.cpu_milli) {
            out.push(CPU.to_string());
        }
        if over(
            self.memory_bytes,
            request.memory_bytes,
            capacity.memory_bytes,
        ) {
            out.push(MEMORY.to_string());
        }
        if over(
            self.ephemeral_storage_bytes,
            request.ephemeral_storage_bytes,
            capacity.ephemeral_storage_bytes,
        ) {
            out.push(EPHEMERAL_STORAGE.to_string());
        }
        for (k, v) in &request.extended {
            let used = self.extended.get(k).copied().unwrap_or(0);
            let cap = capacity.extended.get(k).copied().unwrap_or(0);
            if over(used, *v, cap) {
                out.push(k.clone());
            }
        }
        out
    }

    /// Subtracts `other` from `self`, saturating at zero (removing a pod never makes a
    /// node's used amounts wrap).
    pub fn saturating_sub(&mut self, other: &Resources) {
        self.cpu_milli = self.cpu_milli.saturating_sub(other.cpu_milli);
        self.memory_bytes = self.memory_bytes.saturating_sub(other.memory_bytes);
        self.pods = self.pods.saturating_sub(other.pods);
        self.ephemeral_storage_bytes = self
            .ephemeral_storage_bytes
            .saturating_sub(other.ephemeral_storage_bytes);
        for (k, v) in &other.extended {
            if let Some(e) = self.extended.get_mut(k) {
                *e = e.saturating_sub(*v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_sums_do_not_wrap_into_a_fit() {
        let used = Resources::cpu_mem(10_000_000_000_000_000_000, 0);
        let req = Resources::cpu_mem(10_000_000_000_000_000_000, 0);
        let cap = Resources::cpu_mem(u64::MAX, 1);
        assert_eq!(used.insufficient(&req, &cap), vec![CPU.to_string()]);
        let fits = Resources::cpu_mem(1, 0);
        assert!(Resources::default().insufficient(&fits, &cap).is_empty());
    }

    #[test]
    fn checked_add_names_the_resource_that_overflows() {
        let mut sum = Resources::default();
        let c = Resources::cpu_mem(MAX_AMOUNT / 2 + 1, 1);
        sum.checked_add(&c).unwrap();
        assert_eq!(sum.checked_add(&c), Err(CPU.to_string()));
        assert_eq!(sum.cpu_milli, MAX_AMOUNT / 2 + 1, "unchanged on error");
        let mut e = Resources::default();
        e.extended.insert("example.com/x".into(), MAX_AMOUNT);
        sum.checked_add(&e).unwrap();
        assert_eq!(sum.checked_add(&e), Err("example.com/x".to_string()));
    }

    #[test]
    fn saturating_sub_stops_at_zero() {
        let mut r = Resources::cpu_mem(1, 1);
        r.saturating_sub(&Resources::cpu_mem(5, 0));
        assert_eq!(r, Resources::cpu_mem(0, 1));
    }
}
