//! Loader for two tables of Alibaba cluster-trace-v2017: `server_event.csv` (machines) and
//! `batch_task.csv` (batch tasks), and their conversion into [`Node`]s and [`TimedPod`]s.
//!
//! Units and conventions:
//! - times are seconds from the trace start (may be negative: some tasks were created up
//!   to a minute before it);
//! - machine memory and disk, and task memory, are normalised (the trace scales them so
//!   the largest machine has 1.0). The trace does not publish the real sizes; the
//!   conversion multiplies by a [`Scale`], by default [`DEFAULT_SCALE`] (assumed: 1.0 =
//!   256 GiB memory, 1.0 = 1 TiB disk);
//! - task CPU is written in hundredths of a core (`100` = one core); the model's CPU is
//!   millicores, so it is multiplied by 10;
//! - a task's end time of `0` means "not ended" when its status is `Running` or
//!   `Waiting` (the trace's 208 `Running` tasks with end 0); it becomes `None`;
//! - the trace leaves the request cells empty for every `Waiting` task and a few others:
//!   they load as `None` (counted in
//!   [`LoadReport::empty_cells`](super::common::LoadReport::empty_cells)) and such tasks
//!   give no pods (counted in [`ConvertReport::skipped`]).
//!
//! Citation: Alibaba cluster-trace-v2017, GitHub `alibaba/clusterdata`.

use super::common::{
    parse_rows, read_text, scaled_bytes, ConvertReport, DatasetError, Header, Loaded, RowError,
    Strictness, TimedPod, BAD_VALUE, DEFAULT_MAX_PODS,
};
use super::openb::HOSTNAME_LABEL;
use crate::model::{Labels, Node, Pod, Resources};
use std::collections::BTreeMap;
use std::path::Path;

/// How normalised sizes become bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// Bytes of memory for normalised memory 1.0.
    pub memory_bytes_per_unit: u64,
    /// Bytes of disk (ephemeral storage) for normalised disk 1.0.
    pub disk_bytes_per_unit: u64,
}

/// The assumed scale: 1.0 = 256 GiB of memory and 1 TiB of disk (not published by the
/// trace; chosen as plausible sizes for its 64-core machines).
pub const DEFAULT_SCALE: Scale = Scale {
    memory_bytes_per_unit: 256 << 30,
    disk_bytes_per_unit: 1 << 40,
};

/// What happened to a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServerEventKind {
    /// The machine joined the cluster (`add`).
    Add,
    /// A soft error (`softerror`): the machine stays, marked unhealthy.
    SoftError,
    /// A hard error (`harderror`).
    HardError,
    /// The machine left the cluster (`remove`).
    Remove,
}

/// One row of `server_event.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerEvent {
    /// Seconds from the trace start.
    pub timestamp: i64,
    /// Machine id.
    pub machine_id: u64,
    /// Event type.
    pub kind: ServerEventKind,
    /// Event detail (e.g. `agent_check`, `machine_fail`); `None` when empty (all `add`s).
    pub detail: Option<String>,
    /// Number of CPUs (0 on error events).
    pub cpus: u32,
    /// Normalised memory (largest machine = 1.0; 0 on error events).
    pub memory: f64,
    /// Normalised disk (largest machine = 1.0; 0 on error events).
    pub disk: f64,
}

/// A task's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskStatus {
    /// Not yet started.
    Waiting,
    /// Running at the trace end.
    Running,
    /// Finished.
    Terminated,
    /// Failed.
    Failed,
}

/// One row of `batch_task.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchTask {
    /// Creation time, seconds from the trace start (may be negative).
    pub create_time: i64,
    /// End time in seconds; `None` when the trace writes 0 for a `Running`/`Waiting` task.
    pub end_time: Option<i64>,
    /// Job id.
    pub job_id: u64,
    /// Task id.
    pub task_id: u64,
    /// Number of instances.
    pub instances: u64,
    /// Status.
    pub status: TaskStatus,
    /// CPUs requested per instance in hundredths of a core (100 = 1 core); `None` if empty.
    pub cpus_per_instance: Option<u32>,
    /// Normalised memory requested per instance; `None` if empty.
    pub memory_per_instance: Option<f64>,
}

const SERVER_COLS: usize = 7;
const TASK_HEADER: [&str; 8] = [
    "task_create_time",
    "task_end_time",
    "job_id",
    "task_id",
    "number_of_instances",
    "status",
    "number_of_cpus_requested_per_instance_in_the_task",
    "normalized_memory_requested_per_instance_in_the_task",
];

/// Loads `server_event.csv` (no header, 7 columns).
pub fn load_server_events(
    path: impl AsRef<Path>,
    strictness: Strictness,
) -> Result<Loaded<ServerEvent>, DatasetError> {
    let path = path.as_ref();
    parse_server_events(&read_text(path)?, path, strictness)
}

/// Parses the text of a `server_event.csv`; `path` names it in errors and the report.
pub fn parse_server_events(
    text: &str,
    path: &Path,
    strictness: Strictness,
) -> Result<Loaded<ServerEvent>, DatasetError> {
    parse_rows(
        text,
        path,
        ",",
        Header::None,
        SERVER_COLS,
        strictness,
        |r| {
            let kind = match r.req(2, "event_type")? {
                "add" => ServerEventKind::Add,
                "softerror" => ServerEventKind::SoftError,
                "harderror" => ServerEventKind::HardError,
                "remove" => ServerEventKind::Remove,
                s => {
                    return Err(RowError::new(
                        BAD_VALUE,
                        format!("column event_type: unknown {s:?}"),
                    ))
                }
            };
            let ev = ServerEvent {
                timestamp: r.num(0, "timestamp")?,
                machine_id: r.num(1, "machine_id")?,
                kind,
                detail: r.opt_text(3, "event_detail").map(str::to_string),
                cpus: r.num(4, "cpus")?,
                memory: r.f64(5, "memory")?,
                disk: r.f64(6, "disk")?,
            };
            if ev.memory < 0.0 || ev.disk < 0.0 {
                return Err(RowError::new(BAD_VALUE, "negative memory or disk".into()));
            }
            Ok(ev)
        },
    )
}

/// Loads `batch_task.csv` (with its header row, 8 columns).
pub fn load_batch_tasks(
    path: impl AsRef<Path>,
    strictness: Strictness,
) -> Result<Loaded<BatchTask>, DatasetError> {
    let path = path.as_ref();
    parse_batch_tasks(&read_text(path)?, path, strictness)
}

/// Parses the text of a `batch_task.csv`; `path` names it in errors and the report.
pub fn parse_batch_tasks(
    text: &str,
    path: &Path,
    strictness: Strictness,
) -> Result<Loaded<BatchTask>, DatasetError> {
    let header = Header::Expect(&TASK_HEADER);
    parse_rows(
        text,
        path,
        ",",
        header,
        TASK_HEADER.len(),
        strictness,
        |r| {
            let status = match r.req(5, "status")? {
                "Waiting" => TaskStatus::Waiting,
                "Running" => TaskStatus::Running,
                "Terminated" => TaskStatus::Terminated,
                "Failed" => TaskStatus::Failed,
                s => {
                    return Err(RowError::new(
                        BAD_VALUE,
                        format!("column status: unknown {s:?}"),
                    ))
                }
            };
            let end: i64 = r.num(1, "task_end_time")?;
            let unfinished = matches!(status, TaskStatus::Running | TaskStatus::Waiting);
            let cpus = r.opt_num(6, "cpus_per_instance")?;
            let memory = r.opt_f64(7, "memory_per_instance")?;
            if memory.is_some_and(|m| m < 0.0) {
                return Err(RowError::new(BAD_VALUE, "negative memory".into()));
            }
            Ok(BatchTask {
                create_time: r.num(0, "task_create_time")?,
                end_time: (!(end == 0 && unfinished)).then_some(end),
                job_id: r.num(2, "job_id")?,
                task_id: r.num(3, "task_id")?,
                instances: r.num(4, "number_of_instances")?,
                status,
                cpus_per_instance: cpus,
                memory_per_instance: memory,
            })
        },
    )
}

/// The machines present at time `at` as nodes, sorted by machine id.
///
/// Events at or before `at` are replayed in (timestamp, file) order: `add` makes the
/// machine present with the event's capacity (and schedulable); `softerror` and
/// `harderror` cordon it (`unschedulable = true`) until the next `add`; `remove` takes it
/// out. Use `i64::MAX` for the state at the trace end. Nodes are named `m_ID`, carry the
/// `kubernetes.io/hostname` label and [`DEFAULT_MAX_PODS`] pods.
pub fn nodes_at(events: &[ServerEvent], at: i64, scale: Scale) -> Vec<Node> {
    let mut order: Vec<&ServerEvent> = events.iter().filter(|e| e.timestamp <= at).collect();
    order.sort_by_key(|e| e.timestamp); // stable: ties keep file order
    let mut state: BTreeMap<u64, Node> = BTreeMap::new();
    for e in order {
        match e.kind {
            ServerEventKind::Add => {
                state.insert(e.machine_id, machine_node(e, scale));
            }
            ServerEventKind::SoftError | ServerEventKind::HardError => {
                if let Some(n) = state.get_mut(&e.machine_id) {
                    n.unschedulable = true;
                }
            }
            ServerEventKind::Remove => {
                state.remove(&e.machine_id);
            }
        }
    }
    state.into_values().collect()
}

fn machine_node(e: &ServerEvent, scale: Scale) -> Node {
    let name = format!("m_{}", e.machine_id);
    let res = Resources {
        cpu_milli: u64::from(e.cpus) * 1000,
        memory_bytes: scaled_bytes(e.memory, scale.memory_bytes_per_unit),
        ephemeral_storage_bytes: scaled_bytes(e.disk, scale.disk_bytes_per_unit),
        pods: DEFAULT_MAX_PODS,
        ..Default::default()
    };
    let mut labels = Labels::new();
    labels.insert(HOSTNAME_LABEL.into(), name.clone());
    Node {
        name,
        capacity: res.clone(),
        allocatable: res,
        labels,
        ..Default::default()
    }
}

impl BatchTask {
    /// One pod per instance, named `jJOB-tTASK-I` (namespace `default`, label `job` =
    /// job id), requesting the task's per-instance CPU (×10 → millicores) and memory
    /// (scaled), arriving at the task's creation time and leaving at its end time
    /// (clamped to be no earlier than the arrival). `None` if the task has no request.
    pub fn instance_pods(&self, scale: Scale) -> Option<impl Iterator<Item = TimedPod> + '_> {
        let cpu = u64::from(self.cpus_per_instance?) * 10;
        let mem = scaled_bytes(self.memory_per_instance?, scale.memory_bytes_per_unit);
        let arrival = self.create_time;
        let departure = self.end_time.map(|e| e.max(arrival));
        Some((0..self.instances).map(move |i| {
            let mut labels = Labels::new();
            labels.insert("job".into(), self.job_id.to_string());
            TimedPod {
                pod: Pod {
                    name: format!("j{}-t{}-{i}", self.job_id, self.task_id),
                    namespace: "default".into(),
                    labels,
                    requests: Resources {
                        cpu_milli: cpu,
                        memory_bytes: mem,
                        pods: 1,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                arrival,
                departure,
            }
        }))
    }
}

/// Reason key: a task has an empty CPU or memory request, so it gives no pods.
pub const NO_REQUEST: &str = "task without request";
/// Reason key: instances beyond the `max_pods` budget of [`task_pods`].
pub const OVER_LIMIT: &str = "over the pod limit";

/// Per-instance pods of `tasks`, in task order, at most `max_pods` of them (the whole
/// file has 11.9 million instances: mind the memory). The report counts the pods made,
/// the tasks without a request (under [`NO_REQUEST`], counted per task) and the
/// instances cut by the limit (under [`OVER_LIMIT`]).
pub fn task_pods(
    tasks: &[BatchTask],
    scale: Scale,
    max_pods: usize,
) -> (Vec<TimedPod>, ConvertReport) {
    let mut out = Vec::new();
    let mut rep = ConvertReport::default();
    for t in tasks {
        let Some(pods) = t.instance_pods(scale) else {
            *rep.skipped.entry(NO_REQUEST).or_default() += 1;
            continue;
        };
        let room = max_pods - out.len();
        let n = usize::try_from(t.instances).unwrap_or(usize::MAX);
        if n > room {
            *rep.skipped.entry(OVER_LIMIT).or_default() += n - room;
        }
        out.extend(pods.take(room));
    }
    rep.converted = out.len();
    (out, rep)
}
