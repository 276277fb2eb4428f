//! FGD as the paper's simulator codes it (`fgd_score.go`, `pkg/utils/frag.go`).
//!
//! - Typical pods: the original pods (copies excluded) grouped by (cpu, per-GPU milli,
//!   GPU count, GPU models), CPU-only pods included, sorted by count descending (ties:
//!   key descending), the most popular taken until they cover 95% of the pods; their
//!   frequencies are renormalised to sum 1.
//! - Node fragmentation `F = Σ_t p_t · (Q3(t) ? Σ_{d: free_d < m_t} free_d : Σ_d free_d)`,
//!   where Q3(t) means a GPU task that the node can run now (model, CPU, ≥ n_t devices
//!   with m_t free). CPU-only tasks count every idle GPU milli as fragment.
//! - Score `trunc(100 · σ((F_before − F_after) / 1000))`. A share tries every device with
//!   room (fully free ones included); the highest score wins, lowest index on ties.
//!   Other pods take the first devices in ascending-free order with room.
//!
//! Per node and pod shape the score and device are cached until the node changes.

use super::paper::best_devices;
use super::{
    Choice, NodeIdx, PodSpec, PolicyRun, RunContext, SaturationError, SaturationPolicy, State, Ties,
};
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

/// The fragmentation of a node with `cpu` free CPU, device free milli `devs` and GPU
/// model `model`, against `typical`.
pub fn node_frag(typical: &[Typical], cpu: u64, devs: &[u32], model: Option<u8>) -> f64 {
    let total: u64 = devs.iter().map(|&d| u64::from(d)).sum();
    let mut f = 0.0;
    for t in typical {
        let accessible = t.milli == 0 || model.is_some_and(|m| t.models & (1u64 << m) != 0);
        if t.milli > 0 && accessible && cpu >= t.cpu {
            let mut fit = 0u32;
            let mut small = 0u64;
            for &d in devs {
                if d >= t.milli {
                    fit += 1;
                } else {
                    small += u64::from(d);
                }
            }
            if fit >= t.count {
                f += t.p * small as f64;
                continue;
            }
        }
        f += t.p * total as f64;
    }
    f
}

/// Length of a per-(node, pod shape) score cache: `nodes × shapes` entries, or none
/// (scores computed every time) past 50 million entries, to bound memory.
pub(crate) fn memo_len(nodes: usize, shapes: usize) -> usize {
    if nodes.saturating_mul(shapes) <= 50_000_000 {
        nodes * shapes
    } else {
        0
    }
}

fn score_of(before: f64, after: f64) -> i64 {
    let x = (before - after) / 1000.0;
    (1.0 / (1.0 + (-x).exp()) * 100.0) as i64
}

/// The paper's FGD as a [`SaturationPolicy`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PaperFgd;

/// Per-run state of [`PaperFgd`].
pub struct FgdRun {
    typical: Vec<Typical>,
    shapes: usize,
    before: Vec<(u32, f64)>,
    memo: Vec<(u32, i32, u32)>,
    scratch: Vec<u32>,
}

impl SaturationPolicy for PaperFgd {
    fn name(&self) -> String {
        "fgd".into()
    }

    fn start<'a>(
        &'a self,
        ctx: &RunContext<'a>,
    ) -> Result<Box<dyn PolicyRun + 'a>, SaturationError> {
        let w = ctx.workload;
        let originals = w.original_specs();
        let n = ctx.nodes.len();
        let shapes = w.shapes as usize;
        let memo_len = memo_len(n, shapes);
        Ok(Box::new(FgdRun {
            typical: typical_pods(&originals, COVERAGE),
            shapes,
            before: vec![(0, 0.0); n],
            memo: vec![(0, 0, 0); memo_len],
            scratch: Vec::new(),
        }))
    }
}

impl FgdRun {
    /// The typical pods in use.
    pub fn typical(&self) -> &[Typical] {
        &self.typical
    }

    /// FGD's score of node `n` for `pod` and the device a share would take (`u32::MAX`
    /// for other pods).
    fn score(&mut self, state: &State, n: NodeIdx, pod: &PodSpec) -> (i64, u32) {
        let stamp = state.version(n).wrapping_add(1);
        let slot = n * self.shapes + pod.shape as usize;
        if let Some(&(s, sc, dev)) = self.memo.get(slot) {
            if s == stamp {
                return (i64::from(sc), dev);
            }
        }
        let devs = state.devices(n);
        let model = state.model(n);
        if self.before[n].0 != stamp {
            self.before[n] = (
                stamp,
                node_frag(&self.typical, state.cpu_free(n), devs, model),
            );
        }
        let before = self.before[n].1;
        let cpu = state.cpu_free(n) - pod.cpu;
        self.scratch.clear();
        self.scratch.extend_from_slice(devs);
        let result = if pod.is_share() {
            let mut best: Option<(i64, u32)> = None;
            for i in 0..devs.len() {
                if devs[i] < pod.milli || devs[..i].contains(&devs[i]) {
                    continue;
                }
                self.scratch[i] -= pod.milli;
                let s = score_of(before, node_frag(&self.typical, cpu, &self.scratch, model));
                self.scratch[i] += pod.milli;
                if best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, i as u32));
                }
            }
            best.unwrap_or((0, u32::MAX))
        } else {
            let mut order: Vec<usize> = (0..devs.len()).collect();
            order.sort_by_key(|&i| devs[i]);
            let mut req = pod.count;
            for i in order {
                if req == 0 {
                    break;
                }
                if devs[i] >= pod.milli {
                    self.scratch[i] -= pod.milli;
                    req -= 1;
                }
            }
            (
                score_of(before, node_frag(&self.typical, cpu, &self.scratch, model)),
                u32::MAX,
            )
        };
        if let Some(m) = self.memo.get_mut(slot) {
            *m = (stamp, result.0 as i32, result.1);
        }
        result
    }
}

impl PolicyRun for FgdRun {
    fn select(
        &mut self,
        state: &State,
        pod: &PodSpec,
        _arrival: usize,
        ties: &mut Ties,
    ) -> Result<Option<Choice>, SaturationError> {
        Ok(ties.select_scored(state, pod, |n| self.score(state, n, pod), best_devices))
    }
}
