//! [`Cbf`] as a [`SaturationPolicy`] of the faithful harness ([`crate::experiment::saturation`]),
//! under the name `cbf`. Feasibility is the harness's filter ([`State::fits`], which also
//! counts pod slots); the score is CBF's cost increase, in micro-milli units, and equal
//! costs are broken by the harness's [`Ties`].

use super::policy::{Cbf, CbfParams};
use super::sim::{NodeState, PodSpec as WinPod};
use crate::experiment::saturation::{
    Choice, PodSpec, PolicyRun, RunContext, SaturationError, SaturationPolicy, State, Ties,
};

/// The CBF policy for the saturation harness.
#[derive(Debug, Clone, Default)]
pub struct CbfSaturation {
    /// CBF's parameters.
    pub params: CbfParams,
}

fn win_pod(p: &PodSpec) -> WinPod {
    WinPod {
        cpu: p.cpu,
        mem: p.mem,
        num_gpu: if p.milli == 0 { 0 } else { p.count },
        milli: p.milli,
        models: p.models,
    }
}

struct CbfRun {
    cbf: Cbf,
    mirror: Vec<(u32, NodeState)>,
}

impl SaturationPolicy for CbfSaturation {
    fn name(&self) -> String {
        "cbf".into()
    }

    fn start<'a>(
        &'a self,
        ctx: &RunContext<'a>,
    ) -> Result<Box<dyn PolicyRun + 'a>, SaturationError> {
        let w = ctx.workload;
        let mut originals: Vec<&PodSpec> = w.arrivals[..w.shuffled].iter().collect();
        originals.sort_by_key(|s| s.original);
        let originals: Vec<WinPod> = originals.into_iter().map(win_pod).collect();
        Ok(Box::new(CbfRun {
            cbf: Cbf::new(&originals, self.params.clone()),
            mirror: Vec::new(),
        }))
    }
}

impl CbfRun {
    fn sync(&mut self, state: &State) {
        if self.mirror.len() != state.len() {
            self.mirror = (0..state.len())
                .map(|_| {
                    (
                        u32::MAX,
                        NodeState {
                            cpu: 0,
                            mem: 0,
                            gpus: Vec::new(),
                            model: 63,
                            kind: 0,
                        },
                    )
                })
                .collect();
        }
        for (n, (ver, ns)) in self.mirror.iter_mut().enumerate() {
            if *ver != state.version(n) {
                *ver = state.version(n);
                ns.cpu = state.cpu_free(n);
                ns.mem = state.mem_free(n);
                ns.gpus.clear();
                ns.gpus.extend_from_slice(state.devices(n));
                ns.model = state.model(n).map_or(63, usize::from);
            }
        }
    }
}

impl PolicyRun for CbfRun {
    fn select(
        &mut self,
        state: &State,
        pod: &PodSpec,
        _arrival: usize,
        ties: &mut Ties,
    ) -> Result<Option<Choice>, SaturationError> {
        self.sync(state);
        let wp = win_pod(pod);
        let mut best = ties.best();
        for n in 0..state.len() {
            if !state.fits(n, pod) {
                continue;
            }
            let (d, devs) = self.cbf.best_on(&self.mirror[n].1, &wp);
            best.offer(n, -(d * 1000.0).round() as i64, devs);
        }
        Ok(best.finish().map(|(node, _, devs)| Choice {
            node,
            devices: devs.into_iter().map(|d| d as u32).collect(),
        }))
    }
}
