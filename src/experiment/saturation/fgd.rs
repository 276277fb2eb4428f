//! The FGD paper's workload convention (`fgd_score.go`, `pkg/utils/frag.go`): its
//! typical pods. FGD itself is the library's ([`crate::place::online`], kind `fgd`)
//! with the paper's conventions as options: integer scores, these typical pods, and the
//! seed's node order for ties (see [`super::engine`]).
//!
//! - Typical pods: the original pods (copies excluded) grouped by (cpu, per-GPU milli,
//!   GPU count, GPU models), CPU-only pods included, sorted by count descending (ties:
//!   key descending), the most popular taken until they cover 95% of the pods; their
//!   frequencies are renormalised to sum 1.
//! - Node fragmentation `F = Σ_t p_t · (Q3(t) ? Σ_{d: free_d < m_t} free_d : Σ_d free_d)`,
//!   where Q3(t) means a GPU task that the node can run now (model, CPU, ≥ n_t devices
//!   with m_t free); memory plays no part. CPU-only tasks count every idle GPU milli.
//! - Score `trunc(100 · σ((F_before − F_after) / 1000))`. A share tries every device with
//!   room (fully free ones included); the highest score wins, lowest index on ties.
//!   Other pods take the first devices in ascending-free order with room.

use super::engine::LibraryRun;
use super::{PodSpec, PolicyRun, RunContext, SaturationError, SaturationPolicy};
use crate::model::GpuAmount;
use crate::place::online::{FragOptions, OnlineKind, OnlinePolicy};
use crate::place::score::fgd::{TargetWorkload, TypicalPod};
use std::collections::HashMap;

/// The paper's coverage of typical pods.
pub const COVERAGE: f64 = 0.95;

/// One typical task shape with its renormalised frequency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Typical {
    /// CPU, milli.
    pub cpu: u64,
    /// Per-GPU milli (0: CPU-only).
    pub milli: u32,
    /// GPU count.
    pub count: u32,
    /// Accepted GPU models (bit per model id).
    pub models: u64,
    /// Frequency (sums to 1 over the set).
    pub p: f64,
}

/// The typical pods of `originals` (see the module docs).
pub fn typical_pods(originals: &[PodSpec], coverage: f64) -> Vec<Typical> {
    let mut counts: HashMap<(u64, u32, u32, u64), u64> = HashMap::new();
    for s in originals {
        *counts
            .entry((s.cpu, s.milli, s.count, s.models))
            .or_default() += 1;
    }
    let mut list: Vec<((u64, u32, u32, u64), u64)> = counts.into_iter().collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    let total = originals.len() as f64;
    let expected = coverage * total;
    let mut cum = 0.0;
    let mut i = 0;
    while cum < expected && i < list.len() {
        cum += list[i].1 as f64;
        i += 1;
    }
    list.truncate(i);
    list.iter()
        .map(|&((cpu, milli, count, models), c)| Typical {
            cpu,
            milli,
            count,
            models,
            p: c as f64 / cum,
        })
        .collect()
}

/// The typical pods as the library's [`TargetWorkload`]: each keeps its frequency
/// exactly (no renormalising), memory 0 (the paper's fragmentation ignores memory), and
/// its model mask as names (`models` are the run's sorted model names; every model: any).
/// With `gpu_only`, the CPU-only specs are left out and the others keep their
/// frequencies (CBF's fragmentation).
pub fn paper_workload(typical: &[Typical], models: &[String], gpu_only: bool) -> TargetWorkload {
    TargetWorkload::with_frequencies(
        typical
            .iter()
            .filter(|t| !gpu_only || t.milli > 0)
            .map(|t| TypicalPod {
                cpu_milli: t.cpu,
                memory_bytes: 0,
                gpu: match (t.milli, t.count) {
                    (0, _) | (_, 0) => GpuAmount::None,
                    (m, 1) if m < 1000 => GpuAmount::Shared(m),
                    (_, n) => GpuAmount::Whole(n),
                },
                models: model_list(t.models, models),
                frequency: t.p,
            })
            .collect(),
    )
}

/// The names of the models in `mask` (empty, meaning any, when it holds every model; a
/// name no node has when it holds none).
fn model_list(mask: u64, models: &[String]) -> Vec<String> {
    let all = models
        .iter()
        .enumerate()
        .all(|(i, _)| mask & (1u64 << i) != 0);
    if all {
        return Vec::new();
    }
    let names: Vec<String> = models
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1u64 << i) != 0)
        .map(|(_, m)| m.clone())
        .collect();
    if names.is_empty() {
        vec!["(no GPU model of this cluster)".into()]
    } else {
        names
    }
}

/// FGD as the paper's simulator codes it, registered as `fgd`: the library's FGD with
/// integer scores and the paper's typical pods (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct PaperFgd;

impl PaperFgd {
    /// The library policy for a run over `ctx`.
    pub fn policy(&self, ctx: &RunContext<'_>) -> OnlinePolicy {
        let w = ctx.workload;
        let typical = typical_pods(&w.original_specs(), COVERAGE);
        OnlinePolicy::new(OnlineKind::Fgd, ctx.seed)
            .with_target_workload(paper_workload(&typical, &w.models, false))
            .with_frag_options(FragOptions {
                integer_scores: true,
                ..FragOptions::default()
            })
    }
}

impl SaturationPolicy for PaperFgd {
    fn name(&self) -> String {
        "fgd".into()
    }

    fn start<'a>(
        &'a self,
        ctx: &RunContext<'a>,
    ) -> Result<Box<dyn PolicyRun + 'a>, SaturationError> {
        Ok(Box::new(LibraryRun::online(
            &self.policy(ctx),
            ctx,
            self.name(),
        )?))
    }
}
