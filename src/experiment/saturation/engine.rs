//! The engine's own online policies ([`crate::place::online`]) in saturation runs.
//!
//! The engine breaks equal scores by lowest node index, so the run hands it the nodes
//! permuted into the seed's fixed tie order ([`Ties::order`]) and maps its choices back:
//! ties then go to the node first in that order. (With [`super::TieMode::Random`] the
//! engine still uses that fixed order.) FGD's target workload is the original pods'.
//! Engine scores are the engine's, not the paper's: see [`super::paper`] for those.

use super::{
    Choice, NodeIdx, PodSpec, PolicyRun, RunContext, SaturationError, SaturationPolicy, State, Ties,
};
use crate::model::Cluster;
use crate::place::online::{OnlineKind, OnlinePolicy, Session};
use crate::place::score::fgd::{TargetWorkload, DEFAULT_COVERAGE};

/// An engine policy as a [`SaturationPolicy`], named `engine:KIND`.
#[derive(Debug, Clone, Copy)]
pub struct EnginePolicy(pub OnlineKind);

struct EngineRun<'a> {
    session: Session<'static>,
    order: Vec<NodeIdx>,
    ctx: RunContext<'a>,
    name: String,
}

impl SaturationPolicy for EnginePolicy {
    fn name(&self) -> String {
        format!("engine:{}", self.0.name())
    }

    fn start<'a>(
        &'a self,
        ctx: &RunContext<'a>,
    ) -> Result<Box<dyn PolicyRun + 'a>, SaturationError> {
        let order = Ties::new(ctx.ties, ctx.nodes.len(), ctx.seed).order();
        let nodes = order.iter().map(|&n| ctx.nodes[n].clone()).collect();
        let cluster = Cluster::new(nodes).map_err(|e| SaturationError::Input(e.to_string()))?;
        let mut session = OnlinePolicy::new(self.0, ctx.seed).session(cluster);
        if self.0 == OnlineKind::Fgd {
            session.set_target_workload(TargetWorkload::from_pods(
                &ctx.workload.originals,
                DEFAULT_COVERAGE,
            ));
        }
        Ok(Box::new(EngineRun {
            session,
            order,
            ctx: *ctx,
            name: self.name(),
        }))
    }
}

impl PolicyRun for EngineRun<'_> {
    fn select(
        &mut self,
        _state: &State,
        _pod: &PodSpec,
        arrival: usize,
        _ties: &mut Ties,
    ) -> Result<Option<Choice>, SaturationError> {
        let pod = self.ctx.workload.pod(arrival);
        match self.session.place(pod) {
            Ok(None) => Ok(None),
            Ok(Some((_, b))) => Ok(Some(Choice {
                node: self.order[b.node],
                devices: b.gpu_devices,
            })),
            Err(e) => Err(SaturationError::Policy {
                policy: self.name.clone(),
                msg: e.to_string(),
            }),
        }
    }
}
