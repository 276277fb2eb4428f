//! FGD as the simulator scores it: typical pods from the original list (CPU pods
//! included, 95 % cover, step 1, renormalised), node fragment
//! `F = Σ_t p_t · (Q3(t) ? Σ_{left_d < m_t} left_d : Σ_d left_d)`, node score
//! `trunc(100·σ((F_before − F_after)/1000))`, uniform random tie-break among the best
//! nodes, lowest device index on ties.

use super::sim::{argmax_random, Choice, NodeState, OnlinePolicy, PodSpec, MILLI};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// One typical pod shape and its probability.
#[derive(Debug, Clone, PartialEq)]
pub struct Typical {
    /// Shape (memory is ignored by FGD and set to 0).
    pub pod: PodSpec,
    /// Probability (the typical set sums to 1).
    pub freq: f64,
}

/// Typical pods of a list, as `GetTypicalPods` computes them (memory not in the key).
pub fn typical_pods(pods: &[PodSpec], cover_pct: u64) -> Vec<Typical> {
    let mut counts: BTreeMap<PodSpec, u64> = BTreeMap::new();
    for p in pods {
        let key = PodSpec {
            mem: 0,
            ..p.clone()
        };
        *counts.entry(key).or_default() += 1;
    }
    let total = pods.len() as u64;
    let mut list: Vec<(PodSpec, u64)> = counts.into_iter().collect();
    // Decreasing count; ties by the key, descending.
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let expected = cover_pct * total / 100;
    let (mut cum, mut i) = (0u64, 0usize);
    while cum < expected && i < list.len() {
        cum += list[i].1;
        i += 1;
    }
    list.truncate(i);
    list.into_iter()
        .map(|(pod, c)| Typical {
            pod,
            freq: c as f64 / cum as f64,
        })
        .collect()
}

/// FGD's fragment of a node in milli-GPU (memory ignored, as in the simulator).
pub fn frag(cpu: u64, model: usize, gpus: &[u32], typical: &[Typical]) -> f64 {
    let total: u32 = gpus.iter().sum();
    let mut f = 0.0;
    for t in typical {
        let p = &t.pod;
        let q3 = p.num_gpu > 0 && p.models & (1 << model) != 0 && cpu >= p.cpu && {
            gpus.iter().filter(|&&g| g >= p.milli).count() >= p.num_gpu as usize
        };
        let amount = if q3 {
            gpus.iter().filter(|&&g| g < p.milli).sum::<u32>()
        } else {
            total
        };
        f += t.freq * f64::from(amount);
    }
    f
}

/// Devices a non-sharing pod takes: the first `num_gpu` devices in ascending free
/// (stable) order with enough room; for whole-GPU pods the lowest-index free devices.
pub fn exclusive_devices(n: &NodeState, pod: &PodSpec) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n.gpus.len()).collect();
    idx.sort_by_key(|&i| n.gpus[i]);
    idx.into_iter()
        .filter(|&i| n.gpus[i] >= pod.milli)
        .take(pod.num_gpu as usize)
        .collect()
}

fn score(before: f64, after: f64) -> i64 {
    let x = (before - after) / 1000.0;
    (100.0 / (1.0 + (-x).exp())) as i64
}

/// Best FGD score of `pod` on node `n` and the devices it would take.
pub fn fgd_node(n: &NodeState, pod: &PodSpec, typical: &[Typical]) -> (i64, Vec<usize>) {
    let before = frag(n.cpu, n.model, &n.gpus, typical);
    let cpu = n.cpu - pod.cpu;
    let mut g = n.gpus.clone();
    if pod.is_sharing() {
        let mut best: Option<(i64, usize)> = None;
        for i in 0..g.len() {
            if n.gpus[i] < pod.milli {
                continue;
            }
            g[i] -= pod.milli;
            let s = score(before, frag(cpu, n.model, &g, typical));
            g[i] += pod.milli;
            if best.is_none_or(|(b, _)| s > b) {
                best = Some((s, i));
            }
        }
        let (s, i) = best.unwrap_or((0, 0));
        (s, vec![i])
    } else {
        let devs = exclusive_devices(n, pod);
        for &d in &devs {
            g[d] -= pod.milli;
        }
        (score(before, frag(cpu, n.model, &g, typical)), devs)
    }
}

/// The FGD baseline.
#[derive(Debug, Clone)]
pub struct Fgd {
    typical: Vec<Typical>,
}

impl Fgd {
    /// FGD with the typical pods of `originals` (95 % cover).
    pub fn new(originals: &[PodSpec]) -> Self {
        Fgd {
            typical: typical_pods(originals, 95),
        }
    }
}

impl OnlinePolicy for Fgd {
    fn name(&self) -> &str {
        "FGD"
    }
    fn place(
        &mut self,
        nodes: &[NodeState],
        pod: &PodSpec,
        rng: &mut ChaCha8Rng,
    ) -> Option<Choice> {
        let mut devs: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        let scored = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.fits(pod))
            .map(|(i, n)| {
                let (s, d) = fgd_node(n, pod, &self.typical);
                devs[i] = d;
                (i, s)
            });
        let scored: Vec<(usize, i64)> = scored.collect();
        let node = argmax_random(scored.into_iter(), rng)?;
        Some(Choice {
            node,
            devices: std::mem::take(&mut devs[node]),
        })
    }
}

/// Devices for a whole-GPU pod on `n`: lowest-index fully free devices.
pub fn lowest_free(n: &NodeState, k: u32) -> Vec<usize> {
    (0..n.gpus.len())
        .filter(|&i| n.gpus[i] == MILLI)
        .take(k as usize)
        .collect()
}
