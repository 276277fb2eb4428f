//! Loader for the Alibaba GPU cluster trace 2023 ("openb", Weng et al., USENIX ATC 2023).
//!
//! Two CSV shapes, told apart by their header:
//! - node lists `sn,cpu_milli,memory_mib,gpu,model` ([`load_nodes`]);
//! - pod lists `name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,qos,pod_phase,
//!   creation_time,deletion_time,scheduled_time]` ([`load_pods`], [`load_pod_records`]).
//!   The `multigpuNN` lists carry only the first five columns.
//!
//! Conventions (documented in `docs/manifests.md`):
//! - memory is MiB in the file and bytes in the model;
//! - every node may hold [`OPENB_MAX_PODS`] pods (the kubelet's default `maxPods`);
//!   the trace has no ephemeral storage, so nodes and pods carry none;
//! - a GPU node gets [`NodeGpus`] `{model, count}`, and the labels
//!   `nvidia.com/gpu.product: MODEL` and `kubernetes.io/hostname: SN`; every node also
//!   gets `kubernetes.io/hostname`;
//! - pods live in namespace `default`; `(num_gpu, gpu_milli)` becomes a [`GpuAmount`] via
//!   [`GpuAmount::from_count_and_milli`]; `gpu_spec` is split on `|` into allowed models.
//!
//! By default ([`Strictness::Strict`]) any malformed row is an error naming the file and
//! line; the `*_with` functions also accept [`Strictness::Lenient`], which skips such
//! rows and counts them by reason in the [`LoadReport`] (empty optional cells are not
//! counted for openb files).
//! This module reads files only; it never decides anything about placement.

use super::{
    LoadReport, Loaded, RowError, Strictness, BAD_VALUE, EMPTY_FIELD, NOT_A_NUMBER,
    WRONG_COLUMN_COUNT,
};
use crate::model::{
    GpuAmount, GpuRequest, Labels, Node, NodeGpus, Pod, Resources, MAX_GPUS_PER_NODE,
};
use std::io::Read;
use std::path::Path;

/// Pods per node given to every openb node: the kubelet's default `maxPods` (110).
pub const OPENB_MAX_PODS: u64 = 110;

/// Bytes in one MiB.
const MIB: u64 = 1 << 20;

/// The label NVIDIA GPU feature discovery puts on GPU nodes; it names the model.
pub const GPU_PRODUCT_LABEL: &str = "nvidia.com/gpu.product";

/// The node label holding the node name.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

pub use super::DatasetError;

/// A pod of an openb pod list with the trace's timing and class columns, kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenbPod {
    /// The pod (namespace `default`, pending).
    pub pod: Pod,
    /// Creation time in seconds from the trace start (`None` in the 5-column lists).
    pub creation_time: Option<u64>,
    /// Deletion time in seconds (`None` in the 5-column lists).
    pub deletion_time: Option<u64>,
    /// Time the pod was scheduled, in seconds; `None` if never scheduled (empty cell).
    pub scheduled_time: Option<u64>,
    /// QoS class as written (`LS`, `BE`, `Burstable`, `Guaranteed`); `None` if absent.
    pub qos: Option<String>,
    /// Phase as written (`Running`, `Pending`, `Failed`, `Succeeded`); `None` if absent.
    pub phase: Option<String>,
}

/// Which kind of openb CSV a header announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenbKind {
    /// A node list.
    Nodes,
    /// A pod list.
    Pods,
}

const NODE_HEADER: [&str; 5] = ["sn", "cpu_milli", "memory_mib", "gpu", "model"];
const POD_HEADER: [&str; 11] = [
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "gpu_spec",
    "qos",
    "pod_phase",
    "creation_time",
    "deletion_time",
    "scheduled_time",
];

/// Tells a node list from a pod list by the header line. `None` if neither.
pub fn classify_header(header: &str) -> Option<OpenbKind> {
    let cols: Vec<&str> = header.trim().split(',').map(str::trim).collect();
    if cols == NODE_HEADER {
        Some(OpenbKind::Nodes)
    } else if cols == POD_HEADER[..5] || cols == POD_HEADER {
        Some(OpenbKind::Pods)
    } else {
        None
    }
}

/// Reads the header of `path` and says which kind of openb file it is.
pub fn classify_file(path: &Path) -> Result<OpenbKind, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let header = text.lines().next().unwrap_or("");
    classify_header(header).ok_or_else(|| unknown_header(path, header))
}

fn unknown_header(path: &Path, header: &str) -> DatasetError {
    DatasetError::UnknownHeader {
        path: path.to_path_buf(),
        header: header.to_string(),
        expected: format!("{:?} or {:?}", NODE_HEADER.join(","), POD_HEADER.join(",")),
    }
}

/// Reads CSV from `reader` (`path` names it in errors) and checks its header against
/// `accepted` layouts.
fn open<R: Read>(
    reader: R,
    path: &Path,
    accepted: &[&[&str]],
) -> Result<csv::Reader<R>, DatasetError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(reader);
    let header = rdr
        .headers()
        .map_err(|e| csv_error(path, e))?
        .iter()
        .map(str::trim)
        .collect::<Vec<_>>();
    if !accepted.contains(&header.as_slice()) {
        return Err(unknown_header(path, &header.join(",")));
    }
    Ok(rdr)
}

fn csv_error(path: &Path, e: csv::Error) -> DatasetError {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(source) => DatasetError::Io {
            path: path.to_path_buf(),
            source,
        },
        kind => DatasetError::Malformed {
            path: path.to_path_buf(),
            line,
            msg: format!("{kind:?}"),
        },
    }
}

/// One row of a pod or node list.
struct Row<'a> {
    rec: &'a csv::StringRecord,
}

fn row_err(reason: &'static str, msg: String) -> RowError {
    RowError::new(reason, msg)
}

impl Row<'_> {
    fn text(&self, i: usize) -> &str {
        self.rec.get(i).unwrap_or("").trim()
    }

    fn int(&self, i: usize, col: &str) -> Result<u64, RowError> {
        let s = self.text(i);
        if s.is_empty() {
            return Err(row_err(EMPTY_FIELD, format!("column {col} is empty")));
        }
        s.parse::<u64>().map_err(|_| {
            row_err(
                NOT_A_NUMBER,
                format!("column {col}: {s:?} is not a non-negative integer"),
            )
        })
    }

    fn opt_int(&self, i: usize, col: &str) -> Result<Option<u64>, RowError> {
        if i >= self.rec.len() || self.text(i).is_empty() {
            return Ok(None);
        }
        self.int(i, col).map(Some)
    }

    fn opt_text(&self, i: usize) -> Option<String> {
        let s = self.text(i);
        (!s.is_empty()).then(|| s.to_string())
    }

    fn name(&self, col: &str) -> Result<String, RowError> {
        let s = self.text(0);
        if s.is_empty() {
            return Err(row_err(EMPTY_FIELD, format!("column {col} is empty")));
        }
        Ok(s.to_string())
    }

    /// Column `cpu_milli`, at most [`MAX_AMOUNT`](crate::model::quantity::MAX_AMOUNT)
    /// (2^62) so that sums over pods cannot wrap.
    fn cpu_milli(&self) -> Result<u64, RowError> {
        let v = self.int(1, "cpu_milli")?;
        if v > crate::model::quantity::MAX_AMOUNT {
            return Err(row_err(
                BAD_VALUE,
                format!("column cpu_milli: {v} is too large (at most 2^62)"),
            ));
        }
        Ok(v)
    }

    fn memory_bytes(&self) -> Result<u64, RowError> {
        let mib = self.int(2, "memory_mib")?;
        mib.checked_mul(MIB)
            .filter(|b| *b <= crate::model::quantity::MAX_AMOUNT)
            .ok_or_else(|| row_err(BAD_VALUE, format!("column memory_mib: {mib} is too large")))
    }
}

/// Opens `path` for reading.
fn open_file(path: &Path) -> Result<std::fs::File, DatasetError> {
    std::fs::File::open(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Iterates the rows read from `reader` (`path` names it), checking the header and the
/// column count, calling `f` on each; malformed rows are errors or skipped and counted,
/// per `strictness`.
fn for_rows<R: Read>(
    reader: R,
    path: &Path,
    accepted: &[&[&str]],
    strictness: Strictness,
    mut f: impl FnMut(&Row<'_>) -> Result<(), RowError>,
) -> Result<LoadReport, DatasetError> {
    let mut rdr = open(reader, path, accepted)?;
    let ncols = rdr.headers().map_err(|e| csv_error(path, e))?.len();
    let mut report = LoadReport::new(path);
    let mut rec = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut rec) {
            Ok(false) => return Ok(report),
            Ok(true) => {
                report.rows += 1;
                let line = rec.position().map_or(0, |p| p.line());
                let res = if rec.len() != ncols {
                    Err(row_err(
                        WRONG_COLUMN_COUNT,
                        format!("{} columns, expected {ncols}", rec.len()),
                    ))
                } else {
                    f(&Row { rec: &rec })
                };
                match (res, strictness) {
                    (Ok(()), _) => report.kept += 1,
                    (Err(e), Strictness::Strict) => {
                        return Err(DatasetError::Malformed {
                            path: path.to_path_buf(),
                            line,
                            msg: e.msg,
                        })
                    }
                    (Err(e), Strictness::Lenient) => {
                        *report.skipped.entry(e.reason).or_default() += 1
                    }
                }
            }
            Err(e) => return Err(csv_error(path, e)),
        }
    }
}

/// Loads an openb node list. Node names must be unique.
pub fn load_nodes(path: impl AsRef<Path>) -> Result<Vec<Node>, DatasetError> {
    Ok(load_nodes_with(path, Strictness::Strict)?.records)
}

/// Loads an openb node list with a report; `strictness` says what malformed rows do (a
/// duplicate name is malformed).
pub fn load_nodes_with(
    path: impl AsRef<Path>,
    strictness: Strictness,
) -> Result<Loaded<Node>, DatasetError> {
    let path = path.as_ref();
    load_nodes_from_reader(open_file(path)?, path, strictness)
}

/// Reads an openb node list from `reader`; `source_name` names it in errors and the
/// report (as the path does for [`load_nodes_with`]).
pub fn load_nodes_from_reader(
    reader: impl Read,
    source_name: impl AsRef<Path>,
    strictness: Strictness,
) -> Result<Loaded<Node>, DatasetError> {
    let path = source_name.as_ref();
    let mut nodes = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let report = for_rows(reader, path, &[&NODE_HEADER], strictness, |row| {
        let name = row.name("sn")?;
        if seen.contains(&name) {
            return Err(row_err(BAD_VALUE, format!("duplicate node name {name:?}")));
        }
        let cpu_milli = row.cpu_milli()?;
        let memory_bytes = row.memory_bytes()?;
        let gpu = row.int(3, "gpu")?;
        let gpu = u32::try_from(gpu)
            .ok()
            .filter(|g| *g <= MAX_GPUS_PER_NODE)
            .ok_or_else(|| {
                let msg = format!("column gpu: {gpu} devices; at most {MAX_GPUS_PER_NODE}");
                row_err(BAD_VALUE, msg)
            })?;
        let model = row.text(4).to_string();
        let mut labels = Labels::new();
        labels.insert(HOSTNAME_LABEL.into(), name.clone());
        let gpus = match (gpu, model.is_empty()) {
            (0, true) => None,
            (0, false) => {
                return Err(row_err(
                    BAD_VALUE,
                    format!("model {model:?} given for a node with 0 GPUs"),
                ))
            }
            (_, true) => return Err(row_err(BAD_VALUE, format!("{gpu} GPUs but no model"))),
            (count, false) => {
                labels.insert(GPU_PRODUCT_LABEL.into(), model.clone());
                Some(NodeGpus { model, count })
            }
        };
        let res = Resources {
            cpu_milli,
            memory_bytes,
            pods: OPENB_MAX_PODS,
            ..Default::default()
        };
        seen.insert(name.clone());
        nodes.push(Node {
            name,
            capacity: res.clone(),
            allocatable: res,
            gpus,
            labels,
            taints: Vec::new(),
            unschedulable: false,
        });
        Ok(())
    })?;
    Ok(Loaded {
        records: nodes,
        report,
    })
}

/// Loads an openb pod list with its timing and class columns. Pod names must be unique.
pub fn load_pod_records(path: impl AsRef<Path>) -> Result<Vec<OpenbPod>, DatasetError> {
    Ok(load_pod_records_with(path, Strictness::Strict)?.records)
}

/// Loads an openb pod list with a report; `strictness` says what malformed rows do (a
/// duplicate name is malformed).
pub fn load_pod_records_with(
    path: impl AsRef<Path>,
    strictness: Strictness,
) -> Result<Loaded<OpenbPod>, DatasetError> {
    let path = path.as_ref();
    load_pod_records_from_reader(open_file(path)?, path, strictness)
}

/// Reads an openb pod list from `reader`; `source_name` names it in errors and the
/// report (as the path does for [`load_pod_records_with`]).
pub fn load_pod_records_from_reader(
    reader: impl Read,
    source_name: impl AsRef<Path>,
    strictness: Strictness,
) -> Result<Loaded<OpenbPod>, DatasetError> {
    let path = source_name.as_ref();
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let report = for_rows(
        reader,
        path,
        &[&POD_HEADER[..5], &POD_HEADER],
        strictness,
        |row| {
            let name = row.name("name")?;
            if seen.contains(&name) {
                return Err(row_err(BAD_VALUE, format!("duplicate pod name {name:?}")));
            }
            let cpu_milli = row.cpu_milli()?;
            let memory_bytes = row.memory_bytes()?;
            let num_gpu = u32::try_from(row.int(3, "num_gpu")?)
                .map_err(|_| row_err(BAD_VALUE, "column num_gpu: too many devices".into()))?;
            let gpu_milli = u32::try_from(row.int(4, "gpu_milli")?)
                .map_err(|_| row_err(BAD_VALUE, "column gpu_milli: too large".into()))?;
            let amount = GpuAmount::from_count_and_milli(num_gpu, gpu_milli)
                .map_err(|m| row_err(BAD_VALUE, m))?;
            let models: Vec<String> = row
                .opt_text(5)
                .map(|s| s.split('|').map(|m| m.trim().to_string()).collect())
                .unwrap_or_default();
            if models.iter().any(String::is_empty) {
                return Err(row_err(
                    BAD_VALUE,
                    format!("column gpu_spec: empty model in {:?}", row.text(5)),
                ));
            }
            let pod = Pod {
                name,
                namespace: "default".into(),
                requests: Resources {
                    cpu_milli,
                    memory_bytes,
                    pods: 1,
                    ..Default::default()
                },
                gpu: GpuRequest { amount, models },
                ..Default::default()
            };
            let rec = OpenbPod {
                qos: row.opt_text(6),
                phase: row.opt_text(7),
                creation_time: row.opt_int(8, "creation_time")?,
                deletion_time: row.opt_int(9, "deletion_time")?,
                scheduled_time: row.opt_int(10, "scheduled_time")?,
                pod,
            };
            seen.insert(rec.pod.name.clone());
            out.push(rec);
            Ok(())
        },
    )?;
    Ok(Loaded {
        records: out,
        report,
    })
}

/// Loads an openb pod list as pending pods (see [`load_pod_records`] for the times).
pub fn load_pods(path: impl AsRef<Path>) -> Result<Vec<Pod>, DatasetError> {
    Ok(load_pod_records(path)?.into_iter().map(|r| r.pod).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("plimsoll-openb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn nodes_and_pods_small() {
        let n = write(
            "n.csv",
            "sn,cpu_milli,memory_mib,gpu,model\na,32000,1024,0,\nb,64000,2048,8,V100M16\n",
        );
        let nodes = load_nodes(&n).unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].gpus, None);
        assert_eq!(nodes[1].allocatable.memory_bytes, 2048 * MIB);
        assert_eq!(nodes[1].gpu_count(), 8);
        assert_eq!(nodes[1].labels[GPU_PRODUCT_LABEL], "V100M16");
        let p = write(
            "p.csv",
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n\
             p0,1000,10,1,500,T4|P100,LS,Running,1,2,\n",
        );
        let recs = load_pod_records(&p).unwrap();
        assert_eq!(recs[0].pod.gpu.amount, GpuAmount::Shared(500));
        assert_eq!(recs[0].pod.gpu.models, vec!["T4", "P100"]);
        assert_eq!(recs[0].scheduled_time, None);
        assert_eq!(recs[0].deletion_time, Some(2));
    }

    #[test]
    fn openb_values_beyond_the_bounds_are_errors() {
        let n = write(
            "huge-cpu.csv",
            "sn,cpu_milli,memory_mib,gpu,model\nn1,18446744073709551615,1024,0,\n",
        );
        let e = load_nodes(&n).unwrap_err().to_string();
        assert!(e.contains("huge-cpu.csv: line 2: column cpu_milli"), "{e}");
        let p = write(
            "huge-pods.csv",
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,10000000000000000000,1,0,0\n",
        );
        let e = load_pods(&p).unwrap_err().to_string();
        assert!(e.contains("line 2: column cpu_milli"), "{e}");
        let n = write(
            "huge-gpu.csv",
            "sn,cpu_milli,memory_mib,gpu,model\nn1,1000,1024,4294967295,T4\n",
        );
        let e = load_nodes(&n).unwrap_err().to_string();
        assert!(e.contains("line 2: column gpu: 4294967295 devices"), "{e}");
    }

    #[test]
    fn bad_rows_name_the_line() {
        let p = write(
            "bad.csv",
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1,1,0,0\np1,x,1,0,0\n",
        );
        let e = load_pods(&p).unwrap_err().to_string();
        assert!(e.contains("bad.csv: line 3: column cpu_milli"), "{e}");
        let p = write(
            "bad2.csv",
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1,1,2,500\n",
        );
        let e = load_pods(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("num_gpu 2"), "{e}");
        let p = write("bad3.csv", "name,cpu\np0,1\n");
        assert!(matches!(
            load_pods(&p),
            Err(DatasetError::UnknownHeader { .. })
        ));
        let p = write("bad4.csv", "sn,cpu_milli,memory_mib,gpu,model\na,1,1,2,\n");
        assert!(load_nodes(&p).unwrap_err().to_string().contains("no model"));
    }
}
