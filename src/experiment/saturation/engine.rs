//! The library's policies in saturation runs, through the scheduling interface
//! ([`Scheduler`]).
//!
//! The library breaks equal scores by lowest node id, so the run adds the nodes to the
//! scheduler's cluster in the seed's fixed tie order ([`Ties::order`]) and maps its
//! choices back: ties then go to the node first in that order. (With
//! [`super::TieMode::Random`] the library still uses that fixed order.) Every choice is
//! bound in the scheduler's cluster, which therefore mirrors the run's [`State`].
//!
//! - `engine:KIND`: every online kind with the library's own conventions; FGD's and
//!   CBF's target workload is the original pods' ([`TargetWorkload::from_pods`]).
//! - `fgd`: the library's FGD with the paper's conventions — integer scores and the
//!   paper's typical pods ([`super::fgd`]) — which is how the paper's simulator codes it.
//! - `cbf`: the library's CBF ([`super::cbf`]).

use super::{
    Choice, NodeIdx, PodSpec, PolicyRun, RunContext, SaturationError, SaturationPolicy, State, Ties,
};
use crate::model::{Binding, Cluster};
use crate::place::clock::{ManualClock, SharedClock};
use crate::place::online::{OnlineKind, OnlinePolicy};
use crate::place::scheduler::Scheduler;
use crate::place::score::fgd::{TargetWorkload, DEFAULT_COVERAGE};
use std::sync::Arc;

/// An engine policy with the library's conventions, named `engine:KIND`.
#[derive(Debug, Clone, Copy)]
pub struct EnginePolicy(pub OnlineKind);

impl SaturationPolicy for EnginePolicy {
    fn name(&self) -> String {
        format!("engine:{}", self.0.name())
    }

    fn start<'a>(
        &'a self,
        ctx: &RunContext<'a>,
    ) -> Result<Box<dyn PolicyRun + 'a>, SaturationError> {
        let mut policy = OnlinePolicy::new(self.0, ctx.seed);
        if self.0.uses_workload() {
            policy = policy.with_target_workload(TargetWorkload::from_pods(
                &ctx.workload.originals,
                DEFAULT_COVERAGE,
            ));
        }
        Ok(Box::new(LibraryRun::online(&policy, ctx, self.name())?))
    }
}

/// The scheduler's cluster for a run: the nodes in the seed's tie order, and that order
/// (`order[i]` is the run's node at scheduler slot `i`).
pub fn tie_ordered(ctx: &RunContext<'_>) -> Result<(Cluster, Vec<NodeIdx>), SaturationError> {
    let order = Ties::new(ctx.ties, ctx.nodes.len(), ctx.seed).order();
    let nodes = order.iter().map(|&n| ctx.nodes[n].clone()).collect();
    let cluster = Cluster::new(nodes).map_err(|e| SaturationError::Input(e.to_string()))?;
    Ok((cluster, order))
}

/// A library policy's run: a [`Scheduler`] over the tie-ordered cluster, on a manual
/// clock (pods never leave and decisions take no simulated time).
pub struct LibraryRun<'a> {
    scheduler: Scheduler,
    order: Vec<NodeIdx>,
    ctx: RunContext<'a>,
    name: String,
}

impl<'a> LibraryRun<'a> {
    /// An online policy's run.
    pub fn online(
        policy: &OnlinePolicy,
        ctx: &RunContext<'a>,
        name: String,
    ) -> Result<Self, SaturationError> {
        let (cluster, order) = tie_ordered(ctx)?;
        let clock: SharedClock = Arc::new(ManualClock::new());
        Ok(LibraryRun {
            scheduler: Scheduler::online(policy, cluster, clock),
            order,
            ctx: *ctx,
            name,
        })
    }

    fn error(&self, e: impl std::fmt::Display) -> SaturationError {
        SaturationError::Policy {
            policy: self.name.clone(),
            msg: e.to_string(),
        }
    }

    fn choice(&self, b: Binding) -> Choice {
        Choice {
            node: self.order[b.node.index()],
            devices: b.gpu_devices,
        }
    }

    /// Plans arrivals `from..to` together with the library's look-ahead on the
    /// scheduler's session (online policies): the plan is bound there at once; returns
    /// each arrival's binding.
    pub fn plan_windows(
        &mut self,
        from: usize,
        to: usize,
    ) -> Result<Vec<Option<Binding>>, SaturationError> {
        let pods: Vec<_> = (from..to).map(|i| self.ctx.workload.pod(i)).collect();
        let Some(session) = self.scheduler.session_mut() else {
            return Err(self.error("look-ahead needs an online policy"));
        };
        let placed = crate::place::lookahead::place_windows(session, &pods, None)
            .map_err(|e| self.error(e))?;
        Ok(placed.into_iter().map(|p| p.map(|(_, b)| b)).collect())
    }

    /// The run's choice for a binding in the scheduler's cluster.
    pub fn choice_of(&self, b: Binding) -> Choice {
        self.choice(b)
    }
}

impl PolicyRun for LibraryRun<'_> {
    fn select(
        &mut self,
        _state: &State,
        _pod: &PodSpec,
        arrival: usize,
        _ties: &mut Ties,
    ) -> Result<Option<Choice>, SaturationError> {
        let pod = self.ctx.workload.pod(arrival);
        match self.scheduler.place_one(pod) {
            Ok(None) => Ok(None),
            Ok(Some((_, b))) => Ok(Some(self.choice(b))),
            Err(e) => Err(self.error(e)),
        }
    }
}
