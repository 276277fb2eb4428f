//! The node type mix of the synthetic generator, derived from the real openb cluster.
//!
//! Counted once, offline, from `openb/openb_node_list_all_node.csv` (Alibaba GPU cluster
//! trace 2023, Weng et al., USENIX ATC 2023): the number of nodes per
//! `(cpu_milli, memory_mib, gpu, model)`. 1,523 nodes in all, 310 of them CPU-only. The
//! file is never read at run time; these counts are the weights with which the generator
//! draws node types. Model names (`G2`, `G3`, …) are the trace's own (anonymised) names.

/// One node type: its resources and how many nodes of it openb has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeType {
    /// CPU in millicores.
    pub cpu_milli: u64,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// GPU devices.
    pub gpus: u32,
    /// GPU model (empty for CPU-only nodes).
    pub model: &'static str,
    /// Nodes of this type in `openb_node_list_all_node.csv` (the weight).
    pub openb_count: u32,
}

const fn t(cpu_milli: u64, memory_mib: u64, gpus: u32, model: &'static str, n: u32) -> NodeType {
    NodeType {
        cpu_milli,
        memory_mib,
        gpus,
        model,
        openb_count: n,
    }
}

/// Every node type of openb, most frequent first (ties in the order of the file's
/// `sort | uniq -c | sort -rn`).
pub const OPENB_NODE_TYPES: &[NodeType] = &[
    t(96_000, 393_216, 8, "G2", 549),
    t(104_000, 524_288, 2, "T4", 387),
    t(32_000, 262_144, 0, "", 129),
    t(16_000, 122_880, 2, "P100", 107),
    t(96_000, 524_288, 0, "", 59),
    t(128_000, 786_432, 8, "G3", 39),
    t(96_000, 393_216, 0, "", 30),
    t(32_000, 131_072, 4, "V100M16", 28),
    t(32_000, 131_072, 0, "", 23),
    t(64_000, 524_288, 0, "", 22),
    t(64_000, 262_144, 2, "P100", 22),
    t(96_000, 786_432, 8, "V100M32", 21),
    t(104_000, 524_288, 0, "", 20),
    t(8_000, 32_768, 1, "V100M16", 19),
    t(96_000, 393_216, 4, "T4", 17),
    t(32_000, 65_536, 0, "", 10),
    t(48_000, 376_832, 4, "V100M32", 9),
    t(64_000, 262_144, 0, "", 8),
    t(64_000, 262_144, 8, "V100M16", 7),
    t(64_000, 131_072, 0, "", 4),
    t(8_000, 61_440, 1, "P100", 3),
    t(104_000, 786_432, 0, "", 3),
    t(8_000, 61_440, 2, "P100", 2),
    t(128_000, 1_048_576, 1, "A10", 2),
    t(96_000, 786_432, 0, "", 1),
    t(82_000, 344_064, 8, "V100M16", 1),
    t(104_000, 196_608, 0, "", 1),
];

/// How many nodes of each type (index into [`OPENB_NODE_TYPES`]) a cluster of `total`
/// nodes gets: proportional to openb's counts, rounded by largest remainder (ties to the
/// more frequent type), so the sum is exactly `total`.
pub fn apportion(total: usize) -> Vec<usize> {
    let weight_sum: u64 = OPENB_NODE_TYPES
        .iter()
        .map(|t| u64::from(t.openb_count))
        .sum();
    let mut counts = Vec::with_capacity(OPENB_NODE_TYPES.len());
    let mut remainders = Vec::with_capacity(OPENB_NODE_TYPES.len());
    for (i, ty) in OPENB_NODE_TYPES.iter().enumerate() {
        let exact = total as u64 * u64::from(ty.openb_count);
        counts.push((exact / weight_sum) as usize);
        remainders.push((exact % weight_sum, i));
    }
    let assigned: usize = counts.iter().sum();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders.iter().take(total - assigned) {
        counts[i] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_openb_totals() {
        let nodes: u32 = OPENB_NODE_TYPES.iter().map(|t| t.openb_count).sum();
        let gpus: u32 = OPENB_NODE_TYPES
            .iter()
            .map(|t| t.openb_count * t.gpus)
            .sum();
        let cpu_cores: u64 = OPENB_NODE_TYPES
            .iter()
            .map(|t| u64::from(t.openb_count) * t.cpu_milli / 1000)
            .sum();
        let cpu_only: u32 = OPENB_NODE_TYPES
            .iter()
            .filter(|t| t.gpus == 0)
            .map(|t| t.openb_count)
            .sum();
        // The totals the datasets README states for the file.
        assert_eq!(
            (nodes, gpus, cpu_cores, cpu_only),
            (1523, 6212, 125_514, 310)
        );
    }

    #[test]
    fn apportion_sums_exactly_and_follows_the_weights() {
        for total in [1, 7, 40, 200, 1523, 5000] {
            let c = apportion(total);
            assert_eq!(c.iter().sum::<usize>(), total);
        }
        let c = apportion(1523);
        for (ty, n) in OPENB_NODE_TYPES.iter().zip(&c) {
            assert_eq!(*n as u32, ty.openb_count);
        }
        assert_eq!(
            apportion(1)[0],
            1,
            "a one-node cluster gets the most common type"
        );
    }
}
