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
//! its planned node and devices.
//!
//! Every planned choice stays valid in arrival order: pods never leave, so at any moment
//! the pods bound so far are a subset of the plan's pods, and whatever fits with all of
//! them fits with a subset. At the end of each window the real cluster and the plan are
//! the same. The harness still checks every choice ([`State::valid`]).

use super::cbf::Cbf;
use super::{
    Choice, PodSpec, PolicyRun, RunContext, SaturationError, SaturationPolicy, State, Ties,
};
use std::cmp::Reverse;

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
        let window = match spec {
            "all" => None,
            s => match s.parse::<usize>() {
                Ok(w) if w > 0 => Some(w),
                _ => {
                    return Err(SaturationError::Input(format!(
                        "lookahead:{s}: the window must be a positive number of pods or `all`"
                    )))
                }
            },
        };
        Ok(Lookahead {
            window,
            inner: Cbf::default(),
        })
    }
}

/// The order in which a window is planned: larger GPU demand first.
pub fn plan_order(pods: &[PodSpec], from: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (from..from + pods.len()).collect();
    idx.sort_by_key(|&i| {
        let p = &pods[i - from];
        (Reverse(p.gpu_total()), Reverse(p.milli), Reverse(p.cpu), i)
    });
    idx
}

struct LookaheadRun<'a> {
    window: usize,
    arrivals: &'a [PodSpec],
    inner: Box<dyn PolicyRun + 'a>,
    plan: Option<State>,
    planned: Vec<Option<Choice>>,
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
        let arrivals = &ctx.workload.arrivals[..];
        Ok(Box::new(LookaheadRun {
            window: self.window.unwrap_or(arrivals.len()).max(1),
            arrivals,
            inner: self.inner.start(ctx)?,
            plan: None,
            planned: vec![None; arrivals.len()],
            next: 0,
        }))
    }
}

impl PolicyRun for LookaheadRun<'_> {
    fn select(
        &mut self,
        state: &State,
        _pod: &PodSpec,
        arrival: usize,
        ties: &mut Ties,
    ) -> Result<Option<Choice>, SaturationError> {
        if arrival >= self.planned.len() {
            return Err(SaturationError::Input(format!(
                "lookahead: arrival {arrival} is beyond the workload's {} pods",
                self.planned.len()
            )));
        }
        if arrival >= self.next {
            // The plan continues from the state the previous window left, which is the
            // real state now (the first window starts from the real, empty cluster).
            let plan = self.plan.get_or_insert_with(|| state.clone());
            let end = (arrival + self.window).min(self.arrivals.len());
            for i in plan_order(&self.arrivals[arrival..end], arrival) {
                let spec = &self.arrivals[i];
                let choice = self.inner.select(plan, spec, i, ties)?;
                if let Some(c) = &choice {
                    plan.bind(spec, c)?;
                }
                self.planned[i] = choice;
            }
            self.next = end;
        }
        Ok(self.planned[arrival].take())
    }
}
