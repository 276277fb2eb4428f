//! The compact cluster state of a saturation run (per node: free CPU, memory, pod slots,
//! per-device free GPU milli, GPU model id, GPU pod classes) and the tie-breaking rule.

use super::workload::{model_names, PodSpec};
use super::SaturationError;
use crate::model::Node;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Index of a node (its position in the nodes file).
pub type NodeIdx = usize;

/// Where a policy puts a pod: a node and the GPU devices it takes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The node.
    pub node: NodeIdx,
    /// Device indices on that node (`count` of them; empty for a CPU-only pod).
    pub devices: Vec<u32>,
}

/// Per-node free resources, updated as pods bind. Pods never leave.
#[derive(Debug, Clone)]
pub struct State {
    cpu_free: Vec<u64>,
    cpu_cap: Vec<u64>,
    mem_free: Vec<u64>,
    pods_free: Vec<u64>,
    model: Vec<Option<u8>>,
    dev_start: Vec<usize>,
    dev_free: Vec<u32>,
    classes: Vec<Vec<(u32, u32)>>,
    version: Vec<u32>,
    total_gpus: u64,
    allocated: u64,
}

impl State {
    /// The empty cluster of `nodes` (allocatable resources; GPU model ids index the
    /// sorted model names, as in [`super::Workload::models`]).
    pub fn new(nodes: &[Node]) -> Result<State, SaturationError> {
        let models = model_names(nodes);
        let mut dev_start = Vec::with_capacity(nodes.len() + 1);
        let mut dev_free = Vec::new();
        let mut model = Vec::with_capacity(nodes.len());
        for n in nodes {
            dev_start.push(dev_free.len());
            dev_free.extend(std::iter::repeat_n(1000u32, n.gpu_count() as usize));
            model.push(
                n.gpu_model()
                    .filter(|_| n.gpu_count() > 0)
                    .map(|m| models.binary_search_by(|x| x.as_str().cmp(m)).unwrap_or(0) as u8),
            );
        }
        dev_start.push(dev_free.len());
        if nodes.is_empty() {
            return Err(SaturationError::Input("the cluster has no nodes".into()));
        }
        Ok(State {
            cpu_free: nodes.iter().map(|n| n.allocatable.cpu_milli).collect(),
            cpu_cap: nodes.iter().map(|n| n.allocatable.cpu_milli).collect(),
            mem_free: nodes.iter().map(|n| n.allocatable.memory_bytes).collect(),
            pods_free: nodes.iter().map(|n| n.allocatable.pods).collect(),
            model,
            total_gpus: dev_free.len() as u64,
            dev_start,
            dev_free,
            classes: vec![Vec::new(); nodes.len()],
            version: vec![0; nodes.len()],
            allocated: 0,
        })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.cpu_free.len()
    }

    /// True without nodes (never: [`State::new`] refuses an empty cluster).
    pub fn is_empty(&self) -> bool {
        self.cpu_free.is_empty()
    }

    /// Free CPU of a node, milli-cores.
    pub fn cpu_free(&self, n: NodeIdx) -> u64 {
        self.cpu_free[n]
    }

    /// Allocatable CPU of a node, milli-cores.
    pub fn cpu_capacity(&self, n: NodeIdx) -> u64 {
        self.cpu_cap[n]
    }

    /// Free memory of a node, bytes.
    pub fn mem_free(&self, n: NodeIdx) -> u64 {
        self.mem_free[n]
    }

    /// GPU model id of a node (`None` without GPUs).
    pub fn model(&self, n: NodeIdx) -> Option<u8> {
        self.model[n]
    }

    /// Free milli of each GPU device of a node.
    pub fn devices(&self, n: NodeIdx) -> &[u32] {
        &self.dev_free[self.dev_start[n]..self.dev_start[n + 1]]
    }

    /// Sum of the free milli of a node's devices.
    pub fn gpu_free_total(&self, n: NodeIdx) -> u64 {
        self.devices(n).iter().map(|&d| u64::from(d)).sum()
    }

    /// GPU pods bound on a node by class (`(0, k)`: k shares; `(g, k)`: k pods of g whole
    /// GPUs), the paper's GpuClustering "GpuAffinity".
    pub fn gpu_classes(&self, n: NodeIdx) -> &[(u32, u32)] {
        &self.classes[n]
    }

    /// Bumped on every bind to the node: a policy may cache per-node results by it.
    pub fn version(&self, n: NodeIdx) -> u32 {
        self.version[n]
    }

    /// Devices in the cluster.
    pub fn total_gpus(&self) -> u64 {
        self.total_gpus
    }

    /// GPU milli allocated so far.
    pub fn allocated_milli(&self) -> u64 {
        self.allocated
    }

    /// The filter: CPU, memory and a pod slot by request, the GPU model, and the GPU
    /// itself (a share needs one device with `milli` free, k whole GPUs need k fully free
    /// devices).
    pub fn fits(&self, n: NodeIdx, pod: &PodSpec) -> bool {
        if self.cpu_free[n] < pod.cpu || self.mem_free[n] < pod.mem || self.pods_free[n] == 0 {
            return false;
        }
        if pod.count == 0 {
            return true;
        }
        match self.model[n] {
            None => false,
            Some(m) if pod.models & (1u64 << m) == 0 => false,
            Some(_) => {
                let fitting = self.devices(n).iter().filter(|&&d| d >= pod.milli).count();
                fitting >= pod.count as usize
            }
        }
    }

    /// True if `choice` is a valid placement of `pod` now.
    pub fn valid(&self, pod: &PodSpec, choice: &Choice) -> bool {
        if choice.node >= self.len() || !self.fits(choice.node, pod) {
            return false;
        }
        let devs = self.devices(choice.node);
        let mut seen = choice.devices.clone();
        seen.sort_unstable();
        seen.dedup();
        seen.len() == pod.count as usize
            && choice.devices.len() == pod.count as usize
            && choice
                .devices
                .iter()
                .all(|&d| (d as usize) < devs.len() && devs[d as usize] >= pod.milli)
    }

    /// Binds `pod` as `choice` says (checked with [`State::valid`]).
    pub fn bind(&mut self, pod: &PodSpec, choice: &Choice) -> Result<(), SaturationError> {
        if !self.valid(pod, choice) {
            return Err(SaturationError::InvalidChoice(format!(
                "node {} devices {:?} for a pod of cpu {} mem {} gpu {}x{}",
                choice.node, choice.devices, pod.cpu, pod.mem, pod.count, pod.milli
            )));
        }
        let n = choice.node;
        self.cpu_free[n] -= pod.cpu;
        self.mem_free[n] -= pod.mem;
        self.pods_free[n] -= 1;
        let start = self.dev_start[n];
        for &d in &choice.devices {
            self.dev_free[start + d as usize] -= pod.milli;
        }
        if pod.count > 0 {
            let class = if pod.is_share() { 0 } else { pod.count };
            match self.classes[n].iter_mut().find(|(c, _)| *c == class) {
                Some(e) => e.1 += 1,
                None => self.classes[n].push((class, 1)),
            }
        }
        self.version[n] = self.version[n].wrapping_add(1);
        self.allocated += pod.gpu_total();
        Ok(())
    }
}

/// How equal best scores are broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TieMode {
    /// A fixed node order drawn from the seed: the tied node first in it wins.
    #[default]
    Order,
    /// Uniformly at random among the tied nodes (the paper's kube `selectHost`).
    Random,
}

impl TieMode {
    /// The CLI name.
    pub fn name(&self) -> &'static str {
        match self {
            TieMode::Order => "order",
            TieMode::Random => "random",
        }
    }
}

/// Tie-breaking and the run's random stream (seeded from the run's seed).
#[derive(Debug, Clone)]
pub struct Ties {
    mode: TieMode,
    rank: Vec<u32>,
    /// The run's RNG for policies (random choices, random tie-breaks).
    pub rng: ChaCha8Rng,
}

impl Ties {
    /// Tie-breaking for `nodes` nodes under `seed`: the node order is a permutation drawn
    /// from a ChaCha8 stream independent of the workload's.
    pub fn new(mode: TieMode, nodes: usize, seed: u64) -> Ties {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1);
        let mut order: Vec<u32> = (0..nodes as u32).collect();
        order.shuffle(&mut rng);
        let mut rank = vec![0u32; nodes];
        for (r, &n) in order.iter().enumerate() {
            rank[n as usize] = r as u32;
        }
        Ties { mode, rank, rng }
    }

    /// The node's position in the fixed order.
    pub fn rank(&self, n: NodeIdx) -> u32 {
        self.rank[n]
    }

    /// The nodes in the fixed order.
    pub fn order(&self) -> Vec<NodeIdx> {
        let mut o: Vec<NodeIdx> = (0..self.rank.len()).collect();
        o.sort_by_key(|&n| self.rank[n]);
        o
    }

    /// Scores every node `pod` fits on with `score(node) -> (score, share device)` in node
    /// index order, picks the best (ties broken by this [`Ties`]) and returns its
    /// [`Choice`]: the scored device for a share, `exclusive(free per device)` otherwise.
    pub fn select_scored(
        &mut self,
        state: &State,
        pod: &PodSpec,
        mut score: impl FnMut(NodeIdx) -> (i64, u32),
        exclusive: impl Fn(&[u32], &PodSpec) -> Vec<u32>,
    ) -> Option<Choice> {
        let mut best = self.best::<u32>();
        for n in 0..state.len() {
            if state.fits(n, pod) {
                let (s, d) = score(n);
                best.offer(n, s, d);
            }
        }
        best.finish().map(|(node, _, d)| Choice {
            node,
            devices: if pod.is_share() {
                vec![d]
            } else {
                exclusive(state.devices(node), pod)
            },
        })
    }

    /// Starts a selection of the best-scoring node.
    pub fn best<T>(&mut self) -> Best<'_, T> {
        Best {
            ties: self,
            best: None,
            count: 0,
        }
    }
}

/// A running argmax over nodes offered in any order, ties broken by [`Ties`].
pub struct Best<'a, T> {
    ties: &'a mut Ties,
    best: Option<(i64, NodeIdx, T)>,
    count: u32,
}

impl<T> Best<'_, T> {
    /// Offers node `n` with `score` and a payload (e.g. its devices).
    pub fn offer(&mut self, n: NodeIdx, score: i64, payload: T) {
        let cur = self.best.as_ref().map(|(s, b, _)| (*s, *b));
        match cur {
            Some((s, _)) if score < s => {}
            Some((s, b)) if score == s => {
                if self.replaces(n, b) {
                    self.best = Some((score, n, payload));
                }
            }
            _ => {
                self.count = 1;
                self.best = Some((score, n, payload));
            }
        }
    }

    /// True if tied node `n` should replace the current `b` (counts the tie).
    fn replaces(&mut self, n: NodeIdx, b: NodeIdx) -> bool {
        match self.ties.mode {
            TieMode::Order => self.ties.rank[n] < self.ties.rank[b],
            TieMode::Random => {
                self.count += 1;
                self.ties.rng.gen_range(0..self.count) == 0
            }
        }
    }

    /// Would a score of `score` possibly win (≥ the best so far)? Lets a policy skip work.
    pub fn could_win(&self, score: i64) -> bool {
        self.best.as_ref().is_none_or(|(s, _, _)| score >= *s)
    }

    /// The winner: node, score and payload.
    pub fn finish(self) -> Option<(NodeIdx, i64, T)> {
        self.best.map(|(s, n, t)| (n, s, t))
    }
}
