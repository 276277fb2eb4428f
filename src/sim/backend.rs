//! The run's cluster and policy behind the one scheduling interface
//! ([`Scheduler`]), on a [`ManualClock`] that the run moves to each event's time: an
//! online policy places pods one at a time as they arrive or are retried, node changes
//! applied to its session incrementally; a batch policy fills the cluster on each tick,
//! by a deadline on the simulated clock.

use super::event::Time;
use super::SimError;
use crate::model::{Cluster, Node, NodeId, Pod, PodId};
use crate::place::clock::ManualClock;
use crate::place::online::OnlinePolicy;
use crate::place::scheduler::{Scheduler, SchedulerError};
use crate::place::score::fgd::TargetWorkload;
use crate::place::Placer;
use std::sync::Arc;
use std::time::Duration;

/// A run's scheduler and its simulated clock.
pub(crate) struct Backend {
    scheduler: Scheduler,
    clock: ManualClock,
}

impl Backend {
    pub(crate) fn online(policy: &OnlinePolicy, workload: TargetWorkload, c: Cluster) -> Self {
        let clock = ManualClock::new();
        let mut scheduler = Scheduler::online(policy, c, Arc::new(clock.clone()));
        if policy.kind.uses_workload() && policy.target_workload.is_none() {
            if let Some(s) = scheduler.session_mut() {
                s.set_target_workload(workload);
            }
        }
        Backend { scheduler, clock }
    }

    pub(crate) fn batch(placer: Arc<dyn Placer>, c: Cluster) -> Self {
        let clock = ManualClock::new();
        let scheduler = Scheduler::batch(placer, c, Arc::new(clock.clone()));
        Backend { scheduler, clock }
    }

    /// Moves the simulated clock to `t` (seconds).
    pub(crate) fn set_time(&mut self, t: Time) {
        self.clock.set(Duration::from_secs(t));
    }

    pub(crate) fn cluster(&self) -> &Cluster {
        self.scheduler.cluster()
    }

    /// Adds a node (one joining the trace's cluster); returns its id.
    pub(crate) fn add_node(&mut self, node: Node) -> Result<NodeId, SimError> {
        Ok(self.scheduler.add_node(node)?)
    }

    /// Removes a node that left; its pods must have been unbound first.
    pub(crate) fn remove_node(&mut self, id: NodeId) -> Result<(), SimError> {
        let (_, evicted) = self.scheduler.remove_node(id)?;
        debug_assert!(
            evicted.is_empty(),
            "the run unbinds a lost node's pods first"
        );
        Ok(())
    }

    /// Online: places `pod` with the policy. Batch: `None` (the tick decides).
    pub(crate) fn place_now(
        &mut self,
        pod: &Pod,
    ) -> Result<Option<(PodId, crate::model::Binding)>, SimError> {
        if !self.scheduler.is_online() {
            return Ok(None);
        }
        self.scheduler
            .place_one(pod.clone())
            .map_err(|e| self.error(e, 0))
    }

    /// True for batch policies.
    pub(crate) fn is_batch(&self) -> bool {
        !self.scheduler.is_online()
    }

    /// Removes a bound pod.
    pub(crate) fn remove(&mut self, id: PodId) -> Result<(), SimError> {
        self.scheduler.unbind(id)?;
        Ok(())
    }

    /// The cluster, consumed.
    pub(crate) fn into_cluster(self) -> Cluster {
        self.scheduler.into_cluster()
    }

    /// Batch: places `pending` on the current cluster (the answer checked by the
    /// validator before it is bound). Returns one pod id per placed pending pod.
    pub(crate) fn place_batch(
        &mut self,
        pending: Vec<Pod>,
        time: Time,
    ) -> Result<Vec<Option<(PodId, NodeId)>>, SimError> {
        if self.scheduler.is_online() {
            return Ok(vec![None; pending.len()]);
        }
        let d = self
            .scheduler
            .place_batch(pending)
            .map_err(|e| self.error(e, time))?;
        Ok(d.placed
            .into_iter()
            .map(|p| p.map(|(id, b)| (id, b.node)))
            .collect())
    }

    fn error(&self, e: SchedulerError, time: Time) -> SimError {
        match e {
            SchedulerError::Place(e) => e.into(),
            SchedulerError::Cluster(e) => e.into(),
            SchedulerError::Invalid { policy, violations } => {
                SimError::invalid(time, &policy, &violations)
            }
        }
    }
}
