//! Plimsoll's CBF ("CPU-backed fragmentation") in saturation runs, registered as `cbf`:
//! the library's online policy `cbf` ([`crate::place::online`]) with the paper's typical
//! pods.
//!
//! FGD measures how much free GPU the *next* typical pod could not use. In the
//! saturation experiment the binding loss is different: CPU runs out before GPUs on the
//! CPU-poor node types (8-GPU nodes with 12 cores per GPU, 16-core P100 pairs) while T4
//! nodes keep 50 cores per GPU, and free GPU on a node whose CPU is gone is lost for
//! good. CBF scores a placement by the increase of
//!
//! `cost(node) = F(node) + w · max(0, G(node) − C(node)/ρ)`
//!
//! where `F` is FGD's fragmentation over the GPU typical pods of [`typical_pods`]
//! (CPU-only typical pods add the same amount to every node and are left out; the others
//! keep their frequencies), `G` the node's free GPU milli, `C` its free CPU and `ρ` the
//! workload's CPU per GPU milli (total CPU over total GPU milli of the original GPU
//! pods). The second term is the free GPU that the expected future pods could not back
//! with CPU ("stranded").
//!
//! A pod goes to the node and devices with the smallest cost increase (a share tries
//! every distinct free amount; other pods take the first devices with room in
//! ascending-free order). The score is the negated increase in 1/1000 milli, rounded,
//! and equal scores go to the node first in the run's tie order, so the policy is
//! seed-dependent exactly as the others. It never refuses a pod that fits.

use super::engine::LibraryRun;
use super::fgd::{paper_workload, typical_pods, COVERAGE};
use super::{PolicyRun, RunContext, SaturationError, SaturationPolicy};
use crate::place::online::{FragOptions, OnlineKind, OnlinePolicy};

/// Parameters of [`Cbf`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CbfParams {
    /// Weight `w` of the stranded-GPU term (0 gives FGD's fragment alone).
    pub strand_weight: f64,
    /// Multiplier on the learnt CPU per GPU milli `ρ`.
    pub rho_scale: f64,
    /// Share of the original pods the typical shapes cover (FGD's [`COVERAGE`]).
    pub coverage: f64,
}

impl Default for CbfParams {
    fn default() -> Self {
        CbfParams {
            strand_weight: 1.0,
            rho_scale: 1.0,
            coverage: COVERAGE,
        }
    }
}

/// The CPU-backed fragmentation policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cbf {
    /// Its parameters.
    pub params: CbfParams,
}

impl Cbf {
    /// The library policy for a run over `ctx`: `cbf` with the paper's GPU typical pods
    /// and the workload's `ρ`.
    pub fn policy(&self, ctx: &RunContext<'_>) -> Result<OnlinePolicy, SaturationError> {
        let w = ctx.workload;
        let originals = w.original_specs();
        let typical = typical_pods(&originals, self.params.coverage);
        let (cpu, gpu) = originals
            .iter()
            .filter(|p| p.count > 0 && p.milli > 0)
            .fold((0u64, 0u64), |(c, g), p| (c + p.cpu, g + p.gpu_total()));
        let rho = if gpu == 0 {
            1.0
        } else {
            cpu as f64 / gpu as f64
        } * self.params.rho_scale;
        if !(rho.is_finite() && rho > 0.0) {
            return Err(SaturationError::Input(format!(
                "cbf: CPU per GPU milli must be positive, got {rho}"
            )));
        }
        Ok(OnlinePolicy::new(OnlineKind::Cbf, ctx.seed)
            .with_target_workload(paper_workload(&typical, &w.models, true))
            .with_frag_options(FragOptions {
                strand_weight: self.params.strand_weight,
                cpu_per_gpu_milli: Some(rho),
                ..FragOptions::default()
            }))
    }
}

impl SaturationPolicy for Cbf {
    fn name(&self) -> String {
        "cbf".into()
    }

    fn start<'a>(
        &'a self,
        ctx: &RunContext<'a>,
    ) -> Result<Box<dyn PolicyRun + 'a>, SaturationError> {
        Ok(Box::new(LibraryRun::online(
            &self.policy(ctx)?,
            ctx,
            self.name(),
        )?))
    }
}
