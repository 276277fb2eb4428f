//! The cluster a run changes, behind either policy style: an online [`Session`] (pods
//! placed one at a time as they arrive or are retried) or a plain [`Cluster`] that a
//! batch [`Placer`] fills on each tick.

use super::SimError;
use crate::model::{Binding, Cluster, NodeId, Pod, PodId, Problem};
use crate::place::online::{OnlineKind, OnlinePolicy, Session};
use crate::place::score::fgd::TargetWorkload;
use crate::place::{validate, Placer};

/// A run's cluster and the policy that fills it.
pub(crate) enum Backend<'p> {
    /// Online policy. A session reads node descriptions once, so a node change leaves
    /// the cluster `loose` until the next decision rebuilds the session from it.
    Online {
        policy: &'p OnlinePolicy,
        workload: TargetWorkload,
        session: Option<Box<Session<'static>>>,
        loose: Option<Cluster>,
    },
    /// Batch policy on the tick.
    Batch {
        placer: &'p dyn Placer,
        cluster: Cluster,
    },
}

impl<'p> Backend<'p> {
    pub(crate) fn online(policy: &'p OnlinePolicy, workload: TargetWorkload, c: Cluster) -> Self {
        Backend::Online {
            policy,
            workload,
            session: None,
            loose: Some(c),
        }
    }

    pub(crate) fn cluster(&self) -> &Cluster {
        match self {
            Backend::Online { session, loose, .. } => match (session, loose) {
                (Some(s), _) => s.cluster(),
                (None, Some(c)) => c,
                (None, None) => unreachable!("a session or a loose cluster always exists"),
            },
            Backend::Batch { cluster, .. } => cluster,
        }
    }

    /// The cluster for a node change (loosens an online session).
    pub(crate) fn cluster_for_node_change(&mut self) -> &mut Cluster {
        match self {
            Backend::Online { session, loose, .. } => {
                if let Some(s) = session.take() {
                    *loose = Some(s.into_cluster());
                }
                loose.as_mut().expect("just loosened")
            }
            Backend::Batch { cluster, .. } => cluster,
        }
    }

    fn session(&mut self) -> Option<&mut Session<'static>> {
        match self {
            Backend::Online {
                policy,
                workload,
                session,
                loose,
            } => {
                if let Some(c) = loose.take() {
                    let mut s = policy.session(c);
                    if policy.kind == OnlineKind::Fgd && policy.target_workload.is_none() {
                        s.set_target_workload(workload.clone());
                    }
                    *session = Some(Box::new(s));
                }
                session.as_deref_mut()
            }
            Backend::Batch { .. } => None,
        }
    }

    /// Online: places `pod` with the policy. Batch: `None` (the tick decides).
    pub(crate) fn place_now(&mut self, pod: &Pod) -> Result<Option<(PodId, Binding)>, SimError> {
        match self.session() {
            Some(s) => Ok(s.place(pod.clone())?),
            None => Ok(None),
        }
    }

    /// True for batch policies.
    pub(crate) fn is_batch(&self) -> bool {
        matches!(self, Backend::Batch { .. })
    }

    /// Removes a bound pod.
    pub(crate) fn remove(&mut self, id: PodId) -> Result<(), SimError> {
        match self {
            Backend::Online { session, loose, .. } => match (session, loose) {
                (Some(s), _) => {
                    s.remove(id)?;
                }
                (None, Some(c)) => {
                    c.unbind(id)?;
                }
                (None, None) => unreachable!("a session or a loose cluster always exists"),
            },
            Backend::Batch { cluster, .. } => {
                cluster.unbind(id)?;
            }
        }
        Ok(())
    }

    /// Batch: places `pending` on the current cluster, checks the answer with the
    /// validator and binds it. Returns one pod id per placed pending pod.
    pub(crate) fn place_batch(
        &mut self,
        pending: Vec<Pod>,
        time: u64,
    ) -> Result<Vec<Option<(PodId, NodeId)>>, SimError> {
        let Backend::Batch { placer, cluster } = self else {
            return Ok(vec![None; pending.len()]);
        };
        let problem = Problem {
            cluster: cluster.clone(),
            pending,
        };
        let outcome = placer.place(&problem)?;
        if let Err(v) = validate::validate(&problem, &outcome.placement) {
            return Err(SimError::invalid(time, placer.name(), &v));
        }
        let mut out = Vec::with_capacity(problem.pending.len());
        for (pod, b) in problem.pending.into_iter().zip(outcome.placement) {
            out.push(match b {
                Some(b) => Some((cluster.bind(pod, b.node, Some(b.gpu_devices))?, b.node)),
                None => None,
            });
        }
        Ok(out)
    }
}
