//! Pod shapes of the synthetic generator: the milli-GPU of sharing pods, the device count
//! of multi-GPU pods and (CPU, memory) request tables, each weighted, derived from the
//! request distribution of openb's `openb_pod_list_default.csv` (Alibaba GPU cluster trace
//! 2023, Weng et al., USENIX ATC 2023). Computed once, offline; never read at run time.

/// Milli-GPU of sharing pods with their counts among openb's sharing pods
/// (`openb_pod_list_default.csv`, `num_gpu == 1`, `gpu_milli < 1000`; values with at
/// least 40 pods).
pub const SHARE_MILLI_TABLE: &[(u32, u32)] = &[
    (810, 1078),
    (470, 750),
    (320, 328),
    (650, 253),
    (230, 140),
    (460, 128),
    (590, 75),
    (160, 74),
    (550, 72),
    (220, 62),
    (370, 47),
];

/// Whole devices per multi-GPU pod with openb's counts (2: 16 pods, 4: 15, 8: 44).
pub const MULTI_GPU_TABLE: &[(u32, u32)] = &[(2, 16), (4, 15), (8, 44)];

/// (CPU millicores, memory MiB, weight) of GPU-sharing pods, approximating openb's
/// quantiles for them (CPU p10 3.2, p50 4, p90 11.9 cores; memory p10 5.6, p50 15,
/// p90 46 GiB).
pub const SHARE_SHAPE_TABLE: &[(u64, u64, u32)] = &[
    (2_000, 6_144, 15),
    (4_000, 8_192, 20),
    (4_000, 16_384, 35),
    (8_000, 32_768, 15),
    (12_000, 46_080, 15),
];

/// (CPU millicores, memory MiB, weight) per whole GPU of training pods, approximating
/// openb's quantiles for one-GPU pods (CPU p10 3.2, p50 11.4, p90 16 cores; memory p10
/// 5.6, p50 47, p90 63 GiB).
pub const WHOLE_SHAPE_TABLE: &[(u64, u64, u32)] = &[
    (4_000, 8_192, 15),
    (8_000, 32_768, 25),
    (12_000, 49_152, 35),
    (16_000, 65_536, 25),
];

/// (CPU millicores, memory MiB, weight) of service pods: small web-style containers.
pub const SERVICE_SHAPE_TABLE: &[(u64, u64, u32)] = &[
    (250, 512, 15),
    (500, 1_024, 30),
    (1_000, 2_048, 30),
    (2_000, 4_096, 15),
    (4_000, 8_192, 10),
];

/// (CPU millicores, memory MiB, weight) of CPU batch pods, approximating openb's quantiles
/// for CPU-only pods (CPU p10 8, p50 12.5, p90 32 cores; memory p10 30, p50 50, p90 56 GiB).
pub const BATCH_SHAPE_TABLE: &[(u64, u64, u32)] = &[
    (4_000, 16_384, 10),
    (8_000, 32_768, 25),
    (12_000, 51_200, 35),
    (16_000, 57_344, 15),
    (32_000, 65_536, 15),
];
