//! GPUs as devices. A node has `count` devices of one model, each of
//! [`MILLI_PER_GPU`] milli-GPU. A pod asks for a share of one device (1–999 milli) or
//! for N whole devices, optionally only on some models.

use serde::{Deserialize, Serialize};

/// Milli-GPU in one whole device.
pub const MILLI_PER_GPU: u32 = 1000;

/// The most GPU devices one node may have (every loader rejects more, and so does
/// [`crate::model::Cluster::add_node`]): one node holds a per-device array, so the
/// count must not be left to the input. DGX-class machines have 8–16 GPUs, and 7 MIG
/// slices on each of 16 would be 112; 256 leaves room for anything real.
pub const MAX_GPUS_PER_NODE: u32 = 256;

/// The GPU devices of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeGpus {
    /// GPU model name, e.g. `V100M16`, `A100`, `T4`.
    pub model: String,
    /// Number of devices.
    pub count: u32,
}

/// What a pod asks of GPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuAmount {
    /// No GPU.
    #[default]
    None,
    /// A share of one device, in milli-GPU (1..=999).
    Shared(u32),
    /// This many whole devices (≥ 1).
    Whole(u32),
}

impl GpuAmount {
    /// Total milli-GPU this request takes.
    pub fn total_milli(&self) -> u64 {
        match *self {
            GpuAmount::None => 0,
            GpuAmount::Shared(m) => u64::from(m),
            GpuAmount::Whole(n) => u64::from(n) * u64::from(MILLI_PER_GPU),
        }
    }

    /// Builds the request from the openb convention (`num_gpu`, `gpu_milli`): one device
    /// with less than 1000 milli is a share, otherwise `num_gpu` whole devices.
    pub fn from_count_and_milli(num_gpu: u32, gpu_milli: u32) -> Result<Self, String> {
        match (num_gpu, gpu_milli) {
            (0, _) => Ok(GpuAmount::None),
            (1, m) if (1..MILLI_PER_GPU).contains(&m) => Ok(GpuAmount::Shared(m)),
            (n, 1000) => Ok(GpuAmount::Whole(n)),
            (n, 0) => Ok(GpuAmount::Whole(n)),
            (n, m) => Err(format!(
                "num_gpu {n} with gpu_milli {m}: a share (1-999 milli) needs exactly one GPU, whole GPUs need 1000 milli"
            )),
        }
    }

    /// True if any GPU is requested.
    pub fn is_some(&self) -> bool {
        !matches!(self, GpuAmount::None)
    }
}

/// A pod's GPU request: the amount and the acceptable models (empty = any model).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuRequest {
    /// How much GPU.
    pub amount: GpuAmount,
    /// Acceptable GPU models; empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
}

impl GpuRequest {
    /// True if a node with GPUs of `model` satisfies the model constraint.
    pub fn accepts_model(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| m == model)
    }
}

/// Chooses devices for a GPU request given each device's free milli-GPU, deterministically:
/// a share goes to the device with the least free milli that still fits (best fit, lowest
/// index on ties); whole devices are the lowest-indexed fully free ones.
/// Returns the device indices, or `None` if the request does not fit.
pub fn choose_devices(free_milli: &[u32], amount: GpuAmount) -> Option<Vec<u32>> {
    match amount {
        GpuAmount::None => Some(Vec::new()),
        GpuAmount::Shared(m) => free_milli
            .iter()
            .enumerate()
            .filter(|(_, f)| **f >= m)
            .min_by_key(|(i, f)| (**f, *i))
            .map(|(i, _)| vec![i as u32]),
        GpuAmount::Whole(n) => {
            let whole: Vec<u32> = free_milli
                .iter()
                .enumerate()
                .filter(|(_, f)| **f == MILLI_PER_GPU)
                .map(|(i, _)| i as u32)
                .take(n as usize)
                .collect();
            (whole.len() == n as usize).then_some(whole)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_large_shares_never_share_a_device() {
        let mut free = vec![1000, 1000];
        let a = choose_devices(&free, GpuAmount::Shared(600)).unwrap();
        free[a[0] as usize] -= 600;
        let b = choose_devices(&free, GpuAmount::Shared(600)).unwrap();
        assert_ne!(a, b);
        free[b[0] as usize] -= 600;
        assert!(choose_devices(&free, GpuAmount::Shared(600)).is_none());
        assert!(choose_devices(&free, GpuAmount::Whole(1)).is_none());
        assert_eq!(choose_devices(&free, GpuAmount::Shared(400)), Some(vec![0]));
    }

    #[test]
    fn openb_convention() {
        assert_eq!(GpuAmount::from_count_and_milli(0, 0), Ok(GpuAmount::None));
        assert_eq!(
            GpuAmount::from_count_and_milli(1, 500),
            Ok(GpuAmount::Shared(500))
        );
        assert_eq!(
            GpuAmount::from_count_and_milli(4, 1000),
            Ok(GpuAmount::Whole(4))
        );
        assert!(GpuAmount::from_count_and_milli(2, 500).is_err());
    }
}
