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
    /// Weight of the model-reservation term (the library's
    /// [`FragOptions::reserve_weight`]; 0 leaves it out).
    pub reserve_weight: f64,
    /// Rank by FGD's integer score first, CBF's cost breaking its ties (the library's
    /// [`FragOptions::fgd_first`]); the typical pods then include the CPU-only ones, as
    /// FGD's do.
    pub fgd_first: bool,
}

impl Default for CbfParams {
    fn default() -> Self {
        CbfParams {
            strand_weight: 1.0,
            rho_scale: 1.0,
            coverage: COVERAGE,
            reserve_weight: 0.0,
            fgd_first: false,
        }
    }
}

impl CbfParams {
    /// The parameters of Plimsoll's recommended policy (`plimsoll`), chosen on seeds
    /// 42–51 over the 25 openb pod lists and checked on seeds 52–61 (docs/saturation.md).
    pub fn recommended() -> CbfParams {
        CbfParams {
            reserve_weight: 1.0,
            ..CbfParams::default()
        }
    }

    /// Parses `key=value` pairs separated by `:` (the part after `cbf:` in a policy
    /// name): `w` ([`CbfParams::strand_weight`]), `rho` ([`CbfParams::rho_scale`]),
    /// `cov` ([`CbfParams::coverage`]), `res` ([`CbfParams::reserve_weight`]) and `lex`
    /// (1 or 0: [`CbfParams::fgd_first`]); the others keep their defaults.
    pub fn parse(spec: &str) -> Result<CbfParams, SaturationError> {
        let mut p = CbfParams::default();
        for item in spec.split(':').filter(|s| !s.is_empty()) {
            let bad = || {
                SaturationError::Input(format!(
                    "cbf parameter {item:?} is not w=, rho=, cov=, res= (numbers) or lex=0|1"
                ))
            };
            let (k, v) = item.split_once('=').ok_or_else(bad)?;
            let v: f64 = v.trim().parse().map_err(|_| bad())?;
            let slot = match k.trim() {
                "w" => &mut p.strand_weight,
                "rho" => &mut p.rho_scale,
                "cov" => &mut p.coverage,
                "res" => &mut p.reserve_weight,
                "lex" if v == 0.0 || v == 1.0 => {
                    p.fgd_first = v == 1.0;
                    continue;
                }
                _ => return Err(bad()),
            };
            *slot = v;
        }
        let ok = p.reserve_weight.is_finite()
            && p.reserve_weight >= 0.0
            && p.strand_weight.is_finite()
            && p.strand_weight >= 0.0
            && p.rho_scale.is_finite()
            && p.rho_scale > 0.0
            && p.coverage > 0.0
            && p.coverage <= 1.0;
        if !ok {
            return Err(SaturationError::Input(format!(
                "cbf parameters out of range in {spec:?}: w >= 0, rho > 0, 0 < cov <= 1"
            )));
        }
        Ok(p)
    }
}

/// The CPU-backed fragmentation policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cbf {
    /// Its parameters.
    pub params: CbfParams,
    /// The name it answers to instead of the one derived from its parameters
    /// (`plimsoll` for [`Cbf::recommended`]).
    pub alias: Option<&'static str>,
}

impl Cbf {
    /// Plimsoll's recommended online policy for the saturation experiment, registered
    /// as `plimsoll`: CBF with [`CbfParams::recommended`], the same for every pod list.
    pub fn recommended() -> Cbf {
        Cbf {
            params: CbfParams::recommended(),
            alias: Some("plimsoll"),
        }
    }
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
            .with_target_workload(paper_workload(&typical, &w.models, !self.params.fgd_first))
            .with_frag_options(FragOptions {
                strand_weight: self.params.strand_weight,
                cpu_per_gpu_milli: Some(rho),
                reserve_weight: self.params.reserve_weight,
                fgd_first: self.params.fgd_first,
                ..FragOptions::default()
            }))
    }
}

impl SaturationPolicy for Cbf {
    fn name(&self) -> String {
        if let Some(a) = self.alias {
            return a.to_string();
        }
        let (d, p) = (CbfParams::default(), self.params);
        if p == d {
            return "cbf".into();
        }
        let mut s = String::from("cbf");
        if p.strand_weight != d.strand_weight {
            s += &format!(":w={}", p.strand_weight);
        }
        if p.rho_scale != d.rho_scale {
            s += &format!(":rho={}", p.rho_scale);
        }
        if p.coverage != d.coverage {
            s += &format!(":cov={}", p.coverage);
        }
        if p.reserve_weight != d.reserve_weight {
            s += &format!(":res={}", p.reserve_weight);
        }
        if p.fgd_first != d.fgd_first {
            s += &format!(":lex={}", u8::from(p.fgd_first));
        }
        s
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
