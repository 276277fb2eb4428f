//! A compact, fast replay of the FGD paper's openb "saturation" experiment (pods arrive
//! one at a time, never depart, a pod that fits nowhere is dropped) and the
//! "reservation-aware" online policy that beats FGD on it.
//!
//! - [`sim`]: the cluster state (free CPU, memory and per-device GPU milli per node), the
//!   workload (seeded shuffle of the pod list, then copies drawn with replacement until
//!   arrived GPU demand would pass the tune ratio) and the metric (mean allocated GPU % over
//!   the events whose arrived % rounds to the target).
//! - [`fgd`]: the FGD baseline exactly as the simulator scores it (typical pods, integer
//!   sigmoid scores, random tie-breaks).
//! - [`policy`]: Plimsoll's online policy.
//!
//! Source of the experiment: Weng et al., "Beware of Fragmentation: Scheduling
//! GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC 2023; data from
//! GitHub `alibaba/clusterdata`, `cluster-trace-gpu-v2023`.

pub mod adapter;
pub mod fgd;
pub mod policy;
pub mod sim;

#[cfg(test)]
mod tests;
