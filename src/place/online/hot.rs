//! The numbers the online engine's hot loop reads: one node's row, the pod being placed,
//! a scored candidate. Plain data shared by the engine and its helpers (rows, classes,
//! frag, soft), so none of them imports the engine.

use crate::model::quantity::MAX_AMOUNT;
use crate::model::{GpuAmount, Pod};
use crate::place::score;

/// A request or use as the hot loop keeps it: at most `MAX_AMOUNT + 1`, so a use plus a
/// request never wraps `u64`. Amounts in range (every amount a manifest or trace can
/// carry) are unchanged.
#[inline]
pub(crate) fn cap_amount(x: u64) -> u64 {
    x.min(MAX_AMOUNT + 1)
}

/// An allocatable amount as the hot loop keeps it: at most `MAX_AMOUNT`. With
/// [`cap_amount`] on the other side, `used + request <= allocatable` holds in the capped
/// values only if it holds in the real ones (a capped use or request is above every
/// capped allocatable), so the caps can refuse an absurd fit (amounts beyond
/// `MAX_AMOUNT`, which only code building nodes by hand can make) but never invent one.
#[inline]
pub(crate) fn cap_allocatable(x: u64) -> u64 {
    x.min(MAX_AMOUNT)
}

/// Numbers of one node the hot loop reads.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NodeRow {
    pub alloc_cpu: u64,
    pub alloc_mem: u64,
    pub alloc_eph: u64,
    pub alloc_pods: u64,
    pub used_cpu: u64,
    pub used_mem: u64,
    pub used_eph: u64,
    pub used_pods: u64,
    /// kube's non-zero requested sums (scoring only).
    pub nz_cpu: u64,
    pub nz_mem: u64,
    pub gpu_count: u32,
    pub gpu_max_free: u32,
    pub gpu_whole_free: u32,
    pub gpu_free_total: u32,
    /// `1 / alloc_cpu`, `1 / alloc_mem`, `1 / gpu capacity` (0 where the total is 0), and
    /// `1 / number of non-zero totals`: divisions taken out of the hot loop.
    pub inv_cpu: f64,
    pub inv_mem: f64,
    pub inv_gpu: f64,
    pub inv_dims: f64,
}

/// What the hot loop needs of the pod being placed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PodReq {
    pub cpu: u64,
    pub mem: u64,
    pub eph: u64,
    pub nz_cpu: u64,
    pub nz_mem: u64,
    pub gpu: GpuAmount,
    /// True if the pod accepts every GPU model (no `gpu.models` restriction).
    pub any_model: bool,
}

impl PodReq {
    #[inline]
    pub fn of(pod: &Pod) -> Self {
        let (nz_cpu, nz_mem) =
            score::non_zero_request(pod.requests.cpu_milli, pod.requests.memory_bytes);
        PodReq {
            cpu: cap_amount(pod.requests.cpu_milli),
            mem: cap_amount(pod.requests.memory_bytes),
            eph: cap_amount(pod.requests.ephemeral_storage_bytes),
            nz_cpu: cap_amount(nz_cpu),
            nz_mem: cap_amount(nz_mem),
            gpu: pod.gpu.amount,
            any_model: pod.gpu.models.is_empty(),
        }
    }

    #[inline]
    pub fn gpu_milli(&self) -> u64 {
        self.gpu.total_milli()
    }
}

/// A feasible node with its scores for one pod.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub node: u32,
    /// Index into the static entry's node list (for the static soft scores).
    pub slot: u32,
    pub main: f64,
    /// Device chosen by the score (FGD shares), `u32::MAX` for the default choice.
    pub device: u32,
    pub total: f64,
}
