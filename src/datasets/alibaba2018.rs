//! Loader for the machine tables of Alibaba cluster-trace-v2018: `machine_meta.csv`
//! (machine events with failure domains) and `machine_usage.csv` (utilisation samples),
//! and the conversion of the latest machine state into [`Node`]s.
//!
//! Units and conventions:
//! - times are seconds from the trace start; utilisation columns are percentages;
//! - `mem_size` is normalised to 0–100 (every machine of the trace has 100). The real size
//!   is not published; [`latest_nodes`] multiplies by a bytes-per-100 figure, by default
//!   [`DEFAULT_MEMORY_BYTES_PER_100`] (assumed: 100 = 512 GiB, a plausible size for the
//!   trace's 96-core machines);
//! - failure domains become labels. In the data `failure_domain_1` has 292 distinct values
//!   and `failure_domain_2` 21 (each value of domain 2 spans 20–30 values of domain 1, not
//!   strictly nested): domain 2 is the coarse level and becomes the zone label
//!   [`ZONE_LABEL`], domain 1 the fine level and becomes [`RACK_LABEL`]. Both also stay
//!   as raw labels ([`FAILURE_DOMAIN_1_LABEL`], [`FAILURE_DOMAIN_2_LABEL`]);
//! - `failure_domain_2` is empty in 34 rows (a few machines, transiently): the cell loads as
//!   `None` and is counted in
//!   [`LoadReport::empty_cells`](super::common::LoadReport::empty_cells); a node takes the
//!   latest non-empty value;
//! - usage samples leave many cells empty (`mem_gps` and `mkpi` in 78% of the first 100k
//!   rows): every metric is an `Option`, and empty cells are counted per column.
//!
//! Citation: Alibaba cluster-trace-v2018, GitHub `alibaba/clusterdata`.

use super::common::RowError;
use super::common::{
    parse_rows, read_text, scaled_bytes, DatasetError, Header, Loaded, Strictness, BAD_VALUE,
    DEFAULT_MAX_PODS,
};
use super::openb::HOSTNAME_LABEL;
use crate::model::{Labels, Node, Resources};
use std::collections::BTreeMap;
use std::path::Path;

/// Zone label: takes `failure_domain_2` (the coarse level, 21 values).
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Rack-like label: takes `failure_domain_1` (the fine level, 292 values). Kubernetes has
/// no well-known rack label; this one is Plimsoll's.
pub const RACK_LABEL: &str = "topology.plimsoll.io/rack";
/// Raw `failure_domain_1` label.
pub const FAILURE_DOMAIN_1_LABEL: &str = "alibaba.com/failure-domain-1";
/// Raw `failure_domain_2` label.
pub const FAILURE_DOMAIN_2_LABEL: &str = "alibaba.com/failure-domain-2";
/// Assumed bytes of memory for `mem_size` 100.
pub const DEFAULT_MEMORY_BYTES_PER_100: u64 = 512 << 30;

/// One row of `machine_meta.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineMeta {
    /// Machine id, e.g. `m_1`.
    pub machine_id: String,
    /// Seconds from the trace start.
    pub time_stamp: i64,
    /// First failure domain (fine level).
    pub failure_domain_1: String,
    /// Second failure domain (coarse level); `None` when empty.
    pub failure_domain_2: Option<String>,
    /// Number of CPUs.
    pub cpu_num: u32,
    /// Memory normalised to 0–100.
    pub mem_size: f64,
    /// Status as written (`USING`, `IMPORT_INSTALLING`, …).
    pub status: String,
}

/// One row of `machine_usage.csv`. Every metric may be empty in the trace.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineUsage {
    /// Machine id, e.g. `m_1932`.
    pub machine_id: String,
    /// Seconds from the trace start.
    pub time_stamp: i64,
    /// CPU utilisation, percent.
    pub cpu_util_percent: Option<f64>,
    /// Memory utilisation, percent.
    pub mem_util_percent: Option<f64>,
    /// Normalised memory bandwidth.
    pub mem_gps: Option<f64>,
    /// Cache misses per thousand instructions.
    pub mkpi: Option<f64>,
    /// Normalised incoming network traffic, percent.
    pub net_in: Option<f64>,
    /// Normalised outgoing network traffic, percent.
    pub net_out: Option<f64>,
    /// Disk I/O, percent.
    pub disk_io_percent: Option<f64>,
}

/// Loads `machine_meta.csv` (no header, 7 columns).
pub fn load_machine_meta(
    path: impl AsRef<Path>,
    strictness: Strictness,
) -> Result<Loaded<MachineMeta>, DatasetError> {
    let path = path.as_ref();
    parse_machine_meta(&read_text(path)?, path, strictness)
}

/// Parses the text of a `machine_meta.csv`; `path` names it in errors and the report.
pub fn parse_machine_meta(
    text: &str,
    path: &Path,
    strictness: Strictness,
) -> Result<Loaded<MachineMeta>, DatasetError> {
    parse_rows(text, path, ",", Header::None, 7, strictness, |r| {
        let mem_size = r.f64(5, "mem_size")?;
        if !(0.0..=100.0).contains(&mem_size) {
            return Err(RowError::new(
                BAD_VALUE,
                format!("column mem_size: {mem_size} is outside 0–100"),
            ));
        }
        Ok(MachineMeta {
            machine_id: r.req(0, "machine_id")?.to_string(),
            time_stamp: r.num(1, "time_stamp")?,
            failure_domain_1: r.req(2, "failure_domain_1")?.to_string(),
            failure_domain_2: r.opt_text(3, "failure_domain_2").map(str::to_string),
            cpu_num: r.num(4, "cpu_num")?,
            mem_size,
            status: r.req(6, "status")?.to_string(),
        })
    })
}

/// Loads `machine_usage.csv` or a head of it (no header, 9 columns).
pub fn load_machine_usage(
    path: impl AsRef<Path>,
    strictness: Strictness,
) -> Result<Loaded<MachineUsage>, DatasetError> {
    let path = path.as_ref();
    parse_machine_usage(&read_text(path)?, path, strictness)
}

/// Parses the text of a `machine_usage.csv`; `path` names it in errors and the report.
pub fn parse_machine_usage(
    text: &str,
    path: &Path,
    strictness: Strictness,
) -> Result<Loaded<MachineUsage>, DatasetError> {
    parse_rows(text, path, ",", Header::None, 9, strictness, |r| {
        Ok(MachineUsage {
            machine_id: r.req(0, "machine_id")?.to_string(),
            time_stamp: r.num(1, "time_stamp")?,
            cpu_util_percent: r.opt_f64(2, "cpu_util_percent")?,
            mem_util_percent: r.opt_f64(3, "mem_util_percent")?,
            mem_gps: r.opt_f64(4, "mem_gps")?,
            mkpi: r.opt_f64(5, "mkpi")?,
            net_in: r.opt_f64(6, "net_in")?,
            net_out: r.opt_f64(7, "net_out")?,
            disk_io_percent: r.opt_f64(8, "disk_io_percent")?,
        })
    })
}

/// Sort key for machine ids: `m_12` by its number, others after, by text.
fn machine_key(id: &str) -> (u64, &str) {
    let n = id.strip_prefix("m_").and_then(|s| s.parse().ok());
    (n.unwrap_or(u64::MAX), id)
}

/// One node per machine from its latest row (largest `time_stamp`, ties: the later row),
/// sorted by machine number. Failure domains become labels (see the module docs; domain
/// 2 takes the latest non-empty value); a machine whose latest status is not `USING` is
/// cordoned (`unschedulable = true`). CPU is `cpu_num` cores; memory is
/// `mem_size / 100 × memory_bytes_per_100`; pods [`DEFAULT_MAX_PODS`].
pub fn latest_nodes(meta: &[MachineMeta], memory_bytes_per_100: u64) -> Vec<Node> {
    struct Latest<'a> {
        row: &'a MachineMeta,
        domain_2: Option<(i64, &'a str)>,
    }
    let mut latest: BTreeMap<(u64, &str), Latest<'_>> = BTreeMap::new();
    for m in meta {
        let entry = latest.entry(machine_key(&m.machine_id)).or_insert(Latest {
            row: m,
            domain_2: None,
        });
        if m.time_stamp >= entry.row.time_stamp {
            entry.row = m;
        }
        if let Some(d2) = &m.failure_domain_2 {
            if entry.domain_2.is_none_or(|(t, _)| m.time_stamp >= t) {
                entry.domain_2 = Some((m.time_stamp, d2));
            }
        }
    }
    latest
        .into_values()
        .map(
            |Latest {
                 row: m,
                 domain_2: d2,
             }| {
                let mut labels = Labels::new();
                labels.insert(HOSTNAME_LABEL.into(), m.machine_id.clone());
                labels.insert(RACK_LABEL.into(), m.failure_domain_1.clone());
                labels.insert(FAILURE_DOMAIN_1_LABEL.into(), m.failure_domain_1.clone());
                if let Some((_, d2)) = d2 {
                    labels.insert(ZONE_LABEL.into(), d2.to_string());
                    labels.insert(FAILURE_DOMAIN_2_LABEL.into(), d2.to_string());
                }
                let res = Resources {
                    cpu_milli: u64::from(m.cpu_num) * 1000,
                    memory_bytes: scaled_bytes(m.mem_size / 100.0, memory_bytes_per_100),
                    pods: DEFAULT_MAX_PODS,
                    ..Default::default()
                };
                Node {
                    name: m.machine_id.clone(),
                    capacity: res.clone(),
                    allocatable: res,
                    labels,
                    unschedulable: m.status != "USING",
                    ..Default::default()
                }
            },
        )
        .collect()
}
