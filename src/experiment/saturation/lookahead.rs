//! A batch policy that sees the next `W` arrivals, registered as `lookahead:W`
//! (`lookahead:all` sees the whole sequence at once).
//!
//! It is **not** an online policy: it exists to show how much a scheduler that may hold
//! pods back and place them together gains over placing them one at a time. At the first
//! arrival of each window of `W` pods it plans the whole window: the pods sorted by
//! decreasing GPU demand (total GPU milli, then per-device milli, then CPU; arrival order
//! on ties: multi-GPU pods first, small shares last, CPU-only pods after every GPU pod),
//! each placed with the inner online policy ([`Cbf`]) on a private copy of the cluster;
//! a pod the plan cannot place is dropped. As the window's pods then arrive, each takes
//! its planned node and devices. The planning is the library's look-ahead
//! ([`crate::place::lookahead::place_windows`]) on the live session of a CBF
//! [`crate::place::scheduler::Scheduler`], which thereby holds the plan.
//!
//! Every planned choice stays valid in arrival order: pods never leave, so at any moment
//! the pods bound so far are a subset of the plan's pods, and whatever fits with all of
//! them fits with a subset. At the end of each window the real cluster and the plan are
//! the same. The harness still checks every choice ([`State::valid`]).

use super::cbf::Cbf;
use super::engine::LibraryRun;
use super::{
    Choice, PodSpec, PolicyRun, RunContext, SaturationError, SaturationPolicy, State, Ties,
};
use crate::model::Binding;

/// The look-ahead batch policy over windows of `window` arrivals (`None`: all of them).
#[derive(Debug, Clone, Copy, Default)]
pub struct Lookahead {
    /// Pods planned together; `None` plans the whole arrival sequence at the first pod.
    pub window: Option<usize>,
    /// The online policy that places the sorted window.
    pub inner: Cbf,
}

impl Lookahead {
    /// Parses the part after `lookahead:`: a positive number of pods or `all`.
    pub fn parse(spec: &str) -> Result<Lookahead, SaturationError> {
        let window = crate::place::lookahead::Lookahead::parse_window(spec)
            .map_err(|e| SaturationError::Input(e.to_string()))?;
        Ok(Lookahead {
            window,
            inner: Cbf::default(),
        })
    }
}

struct LookaheadRun<'a> {
    window: usize,
    total: usize,
    /// CBF's scheduler, which holds the plan: every pod planned so far is bound there.
    run: LibraryRun<'a>,
    planned: Vec<Option<Binding>>,
    next: usize,
}

impl SaturationPolicy for Lookahead {
    fn name(&self) -> String {
        match self.window {
            Some(w) => format!("lookahead:{w}"),
            None => "lookahead:all".into(),
        }
    }

    fn start<'a>(
        &'a self,
        ctx: &RunContext<'a>,
    ) -> Result<Box<dyn PolicyRun + 'a>, SaturationError> {
        let total = ctx.workload.arrivals.len();
        Ok(Box::new(LookaheadRun {
            window: self.window.unwrap_or(total).max(1),
            total,
            run: LibraryRun::online(&self.inner.policy(ctx)?, ctx, self.name())?,
            planned: vec![None; total],
            next: 0,
        }))
    }
}

impl PolicyRun for LookaheadRun<'_> {
    fn select(
        &mut self,
        _state: &State,
        _pod: &PodSpec,
        arrival: usize,
        _ties: &mut Ties,
    ) -> Result<Option<Choice>, SaturationError> {
        if arrival >= self.total {
            return Err(SaturationError::Input(format!(
                "lookahead: arrival {arrival} is beyond the workload's {} pods",
                self.total
            )));
        }
        if arrival >= self.next {
            // The library's look-ahead plans the window on the scheduler's session, which
            // holds every pod planned before: the state the previous window left.
            let end = (arrival + self.window).min(self.total);
            let plan = self.run.plan_windows(arrival, end)?;
            for (i, b) in (arrival..end).zip(plan) {
                self.planned[i] = b;
            }
            self.next = end;
        }
        Ok(self.planned[arrival].take().map(|b| self.run.choice_of(b)))
    }
}
