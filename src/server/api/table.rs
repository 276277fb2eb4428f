//! `meta.k8s.io/v1` Table rendering for `kubectl get`.
//!
//! `kubectl get` asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints the
//! columns the server sends (those with `priority: 1` only under `-o wide`). This module
//! renders those Tables with the columns, column definitions and cell values of the real
//! kube-apiserver's printers (`pkg/printers/internalversion/printers.go`, Kubernetes v1.32)
//! for the kinds the reference API server serves, and with the columns of a
//! CustomResourceDefinition's `additionalPrinterColumns` for `PodGroup`
//! (`scheduling.x-k8s.io`, kubernetes-sigs/scheduler-plugins).
//!
//! Like the apiserver (whose `TableConvertor` always prints with `Wide: true`), every row
//! carries the cells of every column, the `priority: 1` ones included; kubectl hides those
//! itself unless asked for `-o wide`.
//!
//! Objects are taken as JSON exactly as stored; any field may be missing or have the wrong
//! type, and rendering never panics: a missing field reads as the Go zero value (empty
//! string, 0, false, absent pointer) and the printers' placeholders (`<none>`,
//! `<unknown>`, ...) follow from that as they do in Go. Where the apiserver would have
//! defaulted a field before storing the object, the default is applied when the field is
//! missing (Service `type` `ClusterIP`, port `protocol` `TCP`, Deployment and ReplicaSet
//! `replicas` 1, Namespace `phase` `Active`, Secret `type` `Opaque`), so undefaulted
//! objects print as they would from a real cluster.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{json, Map, Value};

/// What each row's `object` carries (the request's `includeObject` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object: the row has no `object` field.
    None,
    /// A `meta.k8s.io/v1` `PartialObjectMetadata` with the object's metadata (the
    /// apiserver's default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter: `"None"`, `"Metadata"` or `"Object"`,
    /// spelt exactly as `metav1.IncludeObjectPolicy` spells them. Returns `None` for
    /// anything else (the caller decides whether an empty parameter means the default).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "None" => Some(IncludeObject::None),
            "Metadata" => Some(IncludeObject::Metadata),
            "Object" => Some(IncludeObject::Object),
            _ => None,
        }
    }
}

/// The Table for `objects` (whole objects as JSON, all of `kind`), rendered at `now`.
///
/// `kind` is the Kubernetes kind: `Namespace`, `Node`, `Pod`, `Service`, `Endpoints`,
/// `ConfigMap`, `Secret`, `Event`, `Deployment`, `ReplicaSet`, `Job`, `Lease`,
/// `PodGroup`; any other kind gets the default columns (`Name`, `Age`) that the
/// apiserver gives a custom resource without printer columns.
///
/// Returns `{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{},
/// "columnDefinitions":[...],"rows":[...]}`; the caller fills `metadata.resourceVersion`
/// and `metadata.continue`. Each row is `{"cells":[...],"object":...}` (plus
/// `"conditions"` for Pods that have completed, as the apiserver sends), with `object`
/// as `include` asks.
pub fn table(kind: &str, objects: &[Value], now: Timestamp, include: IncludeObject) -> Value {
    let printer = Printer::for_kind(kind);
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let row = printer.row(object, now);
            let mut out = Map::new();
            out.insert("cells".into(), Value::Array(row.cells));
            if let Some(conditions) = row.conditions {
                out.insert("conditions".into(), conditions);
            }
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    let metadata = match object.get("metadata") {
                        Some(m @ Value::Object(_)) => m.clone(),
                        _ => json!({}),
                    };
                    out.insert(
                        "object".into(),
                        json!({
                            "kind": "PartialObjectMetadata",
                            "apiVersion": "meta.k8s.io/v1",
                            "metadata": metadata,
                        }),
                    );
                }
                IncludeObject::Object => {
                    out.insert("object".into(), object.clone());
                }
            }
            Value::Object(out)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": printer.columns(),
        "rows": rows,
    })
}

/// Kubernetes' human-readable duration (apimachinery `util/duration.HumanDuration`):
/// `"5s"`, `"119s"`, `"2m"`, `"3m2s"`, `"10m"`, `"4h"`, `"7h59m"`, `"2d3h"`, `"30d"`,
/// `"3y"`, `"2y5d"`, ...
///
/// Up to 119 seconds in seconds; under 10 minutes in minutes and seconds; under 3 hours
/// in minutes; under 8 hours in hours and minutes; under 48 hours in hours; under 8 days
/// in days and hours; under 2 years in days; under 8 years in years and days; then in
/// years.
pub fn human_duration(d: Duration) -> String {
    human_duration_nanos(i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

// ---------------------------------------------------------------------------------------
// Durations and timestamps
// ---------------------------------------------------------------------------------------

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const NANOS_PER_MINUTE: i128 = 60 * NANOS_PER_SECOND;
const NANOS_PER_HOUR: i128 = 60 * NANOS_PER_MINUTE;

/// `duration.HumanDuration` of a signed duration in nanoseconds (a time in the future
/// by more than a second is `<invalid>`, by less is `0s`).
fn human_duration_nanos(d: i128) -> String {
    let seconds = d / NANOS_PER_SECOND;
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d / NANOS_PER_MINUTE;
    if minutes < 10 {
        let s = (d / NANOS_PER_SECOND) % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d / NANOS_PER_HOUR;
    if hours < 8 {
        let m = (d / NANOS_PER_MINUTE) % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{}h", hours / 24, h);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{}d", hours / 24 / 365, dy);
    }
    format!("{}y", hours / 24 / 365)
}

/// The timestamp at `path` (an RFC 3339 string); `None` when missing, unparseable or the
/// Go zero time (which `metav1.Time` treats as unset).
fn timestamp_at(v: &Value, path: &[&str]) -> Option<Timestamp> {
    parse_timestamp(get(v, path)?)
}

fn parse_timestamp(v: &Value) -> Option<Timestamp> {
    let ts: Timestamp = v.as_str()?.trim().parse().ok()?;
    // Go's zero time.Time, 0001-01-01T00:00:00Z.
    if ts.as_second() == -62_135_596_800 && ts.subsec_nanosecond() == 0 {
        return None;
    }
    Some(ts)
}

/// `translateTimestampSince`: how long ago `ts` was, or `<unknown>` when unset.
fn since(now: Timestamp, ts: Option<Timestamp>) -> String {
    match ts {
        Some(ts) => human_duration_nanos(now.as_nanosecond() - ts.as_nanosecond()),
        None => "<unknown>".to_string(),
    }
}

/// The object's age (`translateTimestampSince(obj.CreationTimestamp)`).
fn age(v: &Value, now: Timestamp) -> String {
    since(now, timestamp_at(v, &["metadata", "creationTimestamp"]))
}

// ---------------------------------------------------------------------------------------
// Lenient JSON access: every reader returns the Go zero value for missing or mistyped data
// ---------------------------------------------------------------------------------------

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.as_object()?.get(*key)?;
    }
    Some(cur)
}

/// The string at `path`, or `""`.
fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    get(v, path).and_then(Value::as_str).unwrap_or("")
}

/// The integer at `path`, if it is a number.
fn opt_int_at(v: &Value, path: &[&str]) -> Option<i64> {
    as_int(get(v, path)?)
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
            .or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}

/// The integer at `path`, or 0.
fn int_at(v: &Value, path: &[&str]) -> i64 {
    opt_int_at(v, path).unwrap_or(0)
}

/// The boolean at `path`, or false.
fn bool_at(v: &Value, path: &[&str]) -> bool {
    get(v, path).and_then(Value::as_bool).unwrap_or(false)
}

/// The array at `path`, or an empty slice.
fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    match get(v, path) {
        Some(Value::Array(a)) => a.as_slice(),
        _ => &[],
    }
}

/// The object at `path`, if there is one (a Go pointer to a struct that is non-nil).
fn obj_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    get(v, path).and_then(Value::as_object)
}

/// The number of entries of the map at `path`.
fn map_len_at(v: &Value, path: &[&str]) -> usize {
    obj_at(v, path).map_or(0, Map::len)
}

/// Whether a field holding a Go pointer is set (present and not `null`).
fn is_set(v: &Value, path: &[&str]) -> bool {
    !matches!(get(v, path), None | Some(Value::Null))
}

/// The string of a label value or the like; non-strings are written as JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn name_of(v: &Value) -> String {
    str_at(v, &["metadata", "name"]).to_string()
}

fn or_placeholder(s: &str, placeholder: &str) -> String {
    if s.is_empty() {
        placeholder.to_string()
    } else {
        s.to_string()
    }
}

// ---------------------------------------------------------------------------------------
// Column definitions
// ---------------------------------------------------------------------------------------

/// `metav1.ObjectMeta{}.SwaggerDoc()["name"]`.
const DOC_NAME: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
/// `metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]`.
const DOC_CREATION_TIMESTAMP: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const DOC_CONTAINERS: &str = "Names of each container in the template.";
const DOC_IMAGES: &str = "Images referenced by each container in the template.";

/// One `metav1.TableColumnDefinition`.
fn col(name: &str, ty: &str, format: &str, description: &str, priority: i32) -> Value {
    json!({
        "name": name,
        "type": ty,
        "format": format,
        "description": description,
        "priority": priority,
    })
}

fn name_col() -> Value {
    col("Name", "string", "name", DOC_NAME, 0)
}

fn age_col() -> Value {
    col("Age", "string", "", DOC_CREATION_TIMESTAMP, 0)
}

/// A custom resource's printer column (`additionalPrinterColumns`).
struct CrdColumn {
    name: &'static str,
    ty: &'static str,
    description: &'static str,
    path: &'static [&'static str],
    priority: i32,
}

/// The default columns of a custom resource without printer columns: the apiextensions
/// apiserver serves `Age` (`.metadata.creationTimestamp`, type `date`).
const DEFAULT_COLUMNS: &[CrdColumn] = &[CrdColumn {
    name: "Age",
    ty: "date",
    description: DOC_CREATION_TIMESTAMP,
    path: &["metadata", "creationTimestamp"],
    priority: 0,
}];

/// `podgroups.scheduling.x-k8s.io` `v1alpha1` `additionalPrinterColumns`
/// (kubernetes-sigs/scheduler-plugins, `manifests/coscheduling/crd.yaml`).
const PODGROUP_COLUMNS: &[CrdColumn] = &[
    CrdColumn {
        name: "Phase",
        ty: "string",
        description: "Current phase of PodGroup.",
        path: &["status", "phase"],
        priority: 0,
    },
    CrdColumn {
        name: "MinMember",
        ty: "integer",
        description: "MinMember defines the minimal number of members/tasks to run the pod group.",
        path: &["spec", "minMember"],
        priority: 0,
    },
    CrdColumn {
        name: "Running",
        ty: "integer",
        description: "The number of actively running pods.",
        path: &["status", "running"],
        priority: 0,
    },
    CrdColumn {
        name: "Succeeded",
        ty: "integer",
        description: "The number of pods which reached phase Succeeded.",
        path: &["status", "succeeded"],
        priority: 0,
    },
    CrdColumn {
        name: "Failed",
        ty: "integer",
        description: "The number of pods which reached phase Failed.",
        path: &["status", "failed"],
        priority: 0,
    },
    CrdColumn {
        name: "Age",
        ty: "date",
        description: "Age is the time PodGroup was created.",
        path: &["metadata", "creationTimestamp"],
        priority: 0,
    },
];

// ---------------------------------------------------------------------------------------
// Printers
// ---------------------------------------------------------------------------------------

/// One rendered row: its cells and, for Pods that completed, its row conditions.
struct Row {
    cells: Vec<Value>,
    conditions: Option<Value>,
}

impl Row {
    fn cells(cells: Vec<Value>) -> Self {
        Row {
            cells,
            conditions: None,
        }
    }
}

#[derive(Clone, Copy)]
enum Printer {
    Namespace,
    Node,
    Pod,
    Service,
    Endpoints,
    ConfigMap,
    Secret,
    Event,
    Deployment,
    ReplicaSet,
    Job,
    Lease,
    PriorityClass,
    Crd(&'static [CrdColumn]),
}

impl Printer {
    fn for_kind(kind: &str) -> Self {
        match kind {
            "Namespace" => Printer::Namespace,
            "Node" => Printer::Node,
            "Pod" => Printer::Pod,
            "Service" => Printer::Service,
            "Endpoints" => Printer::Endpoints,
            "ConfigMap" => Printer::ConfigMap,
            "Secret" => Printer::Secret,
            "Event" => Printer::Event,
            "Deployment" => Printer::Deployment,
            "ReplicaSet" => Printer::ReplicaSet,
            "Job" => Printer::Job,
            "Lease" => Printer::Lease,
            "PriorityClass" => Printer::PriorityClass,
            "PodGroup" => Printer::Crd(PODGROUP_COLUMNS),
            _ => Printer::Crd(DEFAULT_COLUMNS),
        }
    }

    fn columns(self) -> Vec<Value> {
        match self {
            Printer::Namespace => vec![
                name_col(),
                col("Status", "string", "", "The status of the namespace", 0),
                age_col(),
            ],
            Printer::Node => vec![
                name_col(),
                col("Status", "string", "", "The status of the node", 0),
                col("Roles", "string", "", "The roles of the node", 0),
                age_col(),
                col("Version", "string", "", "Kubelet Version reported by the node.", 0),
                col("Internal-IP", "string", "", DOC_NODE_ADDRESSES, 1),
                col("External-IP", "string", "", DOC_NODE_ADDRESSES, 1),
                col("OS-Image", "string", "", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1),
                col("Kernel-Version", "string", "", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
                col("Container-Runtime", "string", "", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).", 1),
            ],
            Printer::Pod => vec![
                name_col(),
                col("Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic.", 0),
                col("Status", "string", "", "The aggregate status of the containers in this pod.", 0),
                col("Restarts", "string", "", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.", 0),
                age_col(),
                col("IP", "string", "", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", 1),
                col("Node", "string", "", DOC_POD_NODE_NAME, 1),
                col("Nominated Node", "string", "", DOC_POD_NOMINATED_NODE_NAME, 1),
                col("Readiness Gates", "string", "", DOC_POD_READINESS_GATES, 1),
            ],
            Printer::Service => vec![
                name_col(),
                col("Type", "string", "", DOC_SERVICE_TYPE, 0),
                col("Cluster-IP", "string", "", DOC_SERVICE_CLUSTER_IP, 0),
                col("External-IP", "string", "", DOC_SERVICE_EXTERNAL_IPS, 0),
                col("Port(s)", "string", "", "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies", 0),
                age_col(),
                col("Selector", "string", "", DOC_SERVICE_SELECTOR, 1),
            ],
            Printer::Endpoints => vec![
                name_col(),
                col("Endpoints", "string", "", DOC_ENDPOINTS_SUBSETS, 0),
                age_col(),
            ],
            Printer::ConfigMap => vec![
                name_col(),
                col("Data", "string", "", DOC_CONFIGMAP_DATA, 0),
                age_col(),
            ],
            Printer::Secret => vec![
                name_col(),
                col("Type", "string", "", "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types", 0),
                col("Data", "string", "", DOC_SECRET_DATA, 0),
                age_col(),
            ],
            Printer::Event => vec![
                col("Last Seen", "string", "", "The time at which the most recent occurrence of this event was recorded.", 0),
                col("Type", "string", "", "Type of this event (Normal, Warning), new types could be added in the future", 0),
                col("Reason", "string", "", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.", 0),
                col("Object", "string", "", "The object that this event is about.", 0),
                col("Subobject", "string", "", DOC_EVENT_FIELD_PATH, 1),
                col("Source", "string", "", "The component reporting this event. Should be a short machine understandable string.", 1),
                col("Message", "string", "", "A human-readable description of the status of this operation.", 0),
                col("First Seen", "string", "", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)", 1),
                col("Count", "string", "", "The number of times this event has occurred.", 1),
                col("Name", "string", "name", DOC_NAME, 1),
            ],
            Printer::Deployment => vec![
                name_col(),
                col("Ready", "string", "", "Number of the pod with ready state", 0),
                col("Up-to-date", "string", "", "Total number of non-terminated pods targeted by this deployment that have the desired template spec.", 0),
                col("Available", "string", "", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.", 0),
                age_col(),
                col("Containers", "string", "", DOC_CONTAINERS, 1),
                col("Images", "string", "", DOC_IMAGES, 1),
                col("Selector", "string", "", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.", 1),
            ],
            Printer::ReplicaSet => vec![
                name_col(),
                col("Desired", "integer", "", DOC_REPLICASET_SPEC_REPLICAS, 0),
                col("Current", "integer", "", "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller", 0),
                col("Ready", "integer", "", "The number of ready replicas for this replica set.", 0),
                age_col(),
                col("Containers", "string", "", DOC_CONTAINERS, 1),
                col("Images", "string", "", DOC_IMAGES, 1),
                col("Selector", "string", "", DOC_REPLICASET_SELECTOR, 1),
            ],
            Printer::Job => vec![
                name_col(),
                col("Status", "string", "", "Status of the job.", 0),
                col("Completions", "string", "", "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.", 0),
                col("Duration", "string", "", "Time required to complete the job.", 0),
                age_col(),
                col("Containers", "string", "", DOC_CONTAINERS, 1),
                col("Images", "string", "", DOC_IMAGES, 1),
                col("Selector", "string", "", "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors", 1),
            ],
            Printer::PriorityClass => vec![
                name_col(),
                col("Value", "integer", "", "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.", 0),
                col("Global-Default", "boolean", "", "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority.", 0),
                age_col(),
                col("PreemptionPolicy", "string", "", "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.", 0),
            ],
            Printer::Lease => vec![
                name_col(),
                col("Holder", "string", "", "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.", 0),
                age_col(),
            ],
            Printer::Crd(columns) => {
                let mut out = vec![name_col()];
                out.extend(
                    columns
                        .iter()
                        .map(|c| col(c.name, c.ty, "", c.description, c.priority)),
                );
                out
            }
        }
    }

    fn row(self, o: &Value, now: Timestamp) -> Row {
        match self {
            Printer::Namespace => Row::cells(vec![
                name_of(o).into(),
                or_placeholder(str_at(o, &["status", "phase"]), "Active").into(),
                age(o, now).into(),
            ]),
            Printer::Node => node_row(o, now),
            Printer::Pod => pod_row(o, now),
            Printer::Service => service_row(o, now),
            Printer::Endpoints => Row::cells(vec![
                name_of(o).into(),
                format_endpoints(o).into(),
                age(o, now).into(),
            ]),
            Printer::ConfigMap => {
                let data = map_len_at(o, &["data"]) + map_len_at(o, &["binaryData"]);
                Row::cells(vec![
                    name_of(o).into(),
                    (data as i64).into(),
                    age(o, now).into(),
                ])
            }
            Printer::Secret => secret_row(o, now),
            Printer::Event => event_row(o, now),
            Printer::Deployment => deployment_row(o, now),
            Printer::ReplicaSet => replica_set_row(o, now),
            Printer::Job => job_row(o, now),
            Printer::PriorityClass => Row::cells(vec![
                name_of(o).into(),
                int_at(o, &["value"]).into(),
                bool_at(o, &["globalDefault"]).into(),
                age(o, now).into(),
                match str_at(o, &["preemptionPolicy"]) {
                    "" => "PreemptLowerPriority",
                    p => p,
                }
                .into(),
            ]),
            Printer::Lease => Row::cells(vec![
                name_of(o).into(),
                str_at(o, &["spec", "holderIdentity"]).into(),
                age(o, now).into(),
            ]),
            Printer::Crd(columns) => crd_row(columns, o, now),
        }
    }
}

const DOC_NODE_ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
const DOC_POD_NODE_NAME: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
const DOC_POD_NOMINATED_NODE_NAME: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
const DOC_POD_READINESS_GATES: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";
const DOC_SERVICE_TYPE: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
const DOC_SERVICE_CLUSTER_IP: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
const DOC_SERVICE_EXTERNAL_IPS: &str = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.";
const DOC_SERVICE_SELECTOR: &str = "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/";
const DOC_ENDPOINTS_SUBSETS: &str = "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.";
const DOC_CONFIGMAP_DATA: &str = "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.";
const DOC_SECRET_DATA: &str = "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4";
const DOC_EVENT_FIELD_PATH: &str = "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.";
const DOC_REPLICASET_SPEC_REPLICAS: &str = "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller";
const DOC_REPLICASET_SELECTOR: &str = "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";

// ---------------------------------------------------------------------------------------
// Pod
// ---------------------------------------------------------------------------------------

/// `node.NodeUnreachablePodReason`.
const NODE_UNREACHABLE_POD_REASON: &str = "NodeLost";

/// `metav1.Time.Before` with `None` as the zero time: whether `candidate` is later.
fn later(current: Option<Timestamp>, candidate: Option<Timestamp>) -> Option<Timestamp> {
    match (current, candidate) {
        (Some(c), Some(n)) if c < n => Some(n),
        (None, Some(n)) => Some(n),
        _ => current,
    }
}

fn last_termination(status: &Value) -> Option<Option<Timestamp>> {
    obj_at(status, &["lastState", "terminated"])?;
    Some(timestamp_at(
        status,
        &["lastState", "terminated", "finishedAt"],
    ))
}

fn pod_row(pod: &Value, now: Timestamp) -> Row {
    let containers = arr_at(pod, &["spec", "containers"]);
    let init_containers = arr_at(pod, &["spec", "initContainers"]);
    let init_statuses = arr_at(pod, &["status", "initContainerStatuses"]);
    let statuses = arr_at(pod, &["status", "containerStatuses"]);
    let conditions = arr_at(pod, &["status", "conditions"]);

    let is_restartable_init = |c: &Value| str_at(c, &["restartPolicy"]) == "Always";
    // Go builds a map from name to spec, so a later duplicate name wins.
    let restartable_by_name = |name: &str| -> bool {
        init_containers
            .iter()
            .rev()
            .find(|c| str_at(c, &["name"]) == name)
            .is_some_and(is_restartable_init)
    };

    let mut restarts: i64 = 0;
    let mut restartable_init_restarts: i64 = 0;
    let mut total_containers = containers.len();
    let mut ready_containers: usize = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_init_restart: Option<Timestamp> = None;

    let phase = str_at(pod, &["status", "phase"]);
    let status_reason = str_at(pod, &["status", "reason"]);
    let mut reason = if status_reason.is_empty() {
        phase.to_string()
    } else {
        status_reason.to_string()
    };

    for condition in conditions {
        if str_at(condition, &["type"]) == "PodScheduled"
            && str_at(condition, &["reason"]) == "SchedulingGated"
        {
            reason = "SchedulingGated".to_string();
        }
    }

    let row_conditions = match phase {
        "Succeeded" => Some(json!([{
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }])),
        "Failed" => Some(json!([{
            "type": "Completed",
            "status": "True",
            "reason": "Failed",
            "message": "The pod failed.",
        }])),
        _ => None,
    };

    total_containers += init_containers
        .iter()
        .filter(|c| is_restartable_init(c))
        .count();

    let mut initializing = false;
    for (i, container) in init_statuses.iter().enumerate() {
        let restart_count = int_at(container, &["restartCount"]);
        restarts = restarts.saturating_add(restart_count);
        if let Some(finished) = last_termination(container) {
            last_restart = later(last_restart, finished);
        }
        let restartable = restartable_by_name(str_at(container, &["name"]));
        if restartable {
            restartable_init_restarts = restartable_init_restarts.saturating_add(restart_count);
            if let Some(finished) = last_termination(container) {
                last_restartable_init_restart = later(last_restartable_init_restart, finished);
            }
        }
        let terminated = obj_at(container, &["state", "terminated"]).is_some();
        let waiting_reason = str_at(container, &["state", "waiting", "reason"]);
        if terminated && int_at(container, &["state", "terminated", "exitCode"]) == 0 {
            continue;
        } else if restartable && get(container, &["started"]).and_then(Value::as_bool) == Some(true)
        {
            if bool_at(container, &["ready"]) {
                ready_containers += 1;
            }
            continue;
        } else if terminated {
            // Initialization failed.
            let terminated_reason = str_at(container, &["state", "terminated", "reason"]);
            if terminated_reason.is_empty() {
                let signal = int_at(container, &["state", "terminated", "signal"]);
                if signal != 0 {
                    reason = format!("Init:Signal:{signal}");
                } else {
                    let exit_code = int_at(container, &["state", "terminated", "exitCode"]);
                    reason = format!("Init:ExitCode:{exit_code}");
                }
            } else {
                reason = format!("Init:{terminated_reason}");
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{}/{}", i, init_containers.len());
        }
        initializing = true;
        break;
    }

    let initialized = conditions
        .iter()
        .find(|c| str_at(c, &["type"]) == "Initialized")
        .is_some_and(|c| str_at(c, &["status"]) == "True");

    if !initializing || initialized {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for container in statuses.iter().rev() {
            restarts = restarts.saturating_add(int_at(container, &["restartCount"]));
            if let Some(finished) = last_termination(container) {
                last_restart = later(last_restart, finished);
            }
            let waiting_reason = str_at(container, &["state", "waiting", "reason"]);
            let terminated = obj_at(container, &["state", "terminated"]).is_some();
            let terminated_reason = str_at(container, &["state", "terminated", "reason"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if terminated && !terminated_reason.is_empty() {
                reason = terminated_reason.to_string();
            } else if terminated {
                let signal = int_at(container, &["state", "terminated", "signal"]);
                if signal != 0 {
                    reason = format!("Signal:{signal}");
                } else {
                    let exit_code = int_at(container, &["state", "terminated", "exitCode"]);
                    reason = format!("ExitCode:{exit_code}");
                }
            } else if bool_at(container, &["ready"])
                && obj_at(container, &["state", "running"]).is_some()
            {
                has_running = true;
                ready_containers += 1;
            }
        }

        // Back to "Running" if at least one container is still running.
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| str_at(c, &["type"]) == "Ready" && str_at(c, &["status"]) == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    let deleting = is_set(pod, &["metadata", "deletionTimestamp"]);
    if deleting && status_reason == NODE_UNREACHABLE_POD_REASON {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(at) if restarts != 0 => format!("{restarts} ({} ago)", since(now, Some(at))),
        _ => restarts.to_string(),
    };

    // The internal PodStatus takes podIP over podIPs[0] when they disagree.
    let mut pod_ip = str_at(pod, &["status", "podIP"]);
    if pod_ip.is_empty() {
        pod_ip = arr_at(pod, &["status", "podIPs"])
            .first()
            .map_or("", |ip| str_at(ip, &["ip"]));
    }

    let readiness_gates = arr_at(pod, &["spec", "readinessGates"]);
    let gates = if readiness_gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_conditions = readiness_gates
            .iter()
            .filter(|gate| {
                let wanted = str_at(gate, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| str_at(c, &["type"]) == wanted)
                    .is_some_and(|c| str_at(c, &["status"]) == "True")
            })
            .count();
        format!("{true_conditions}/{}", readiness_gates.len())
    };

    Row {
        cells: vec![
            name_of(pod).into(),
            format!("{ready_containers}/{total_containers}").into(),
            reason.into(),
            restarts_cell.into(),
            age(pod, now).into(),
            or_placeholder(pod_ip, "<none>").into(),
            or_placeholder(str_at(pod, &["spec", "nodeName"]), "<none>").into(),
            or_placeholder(str_at(pod, &["status", "nominatedNodeName"]), "<none>").into(),
            gates.into(),
        ],
        conditions: row_conditions,
    }
}

// ---------------------------------------------------------------------------------------
// Node
// ---------------------------------------------------------------------------------------

fn node_row(node: &Value, now: Timestamp) -> Row {
    // Only the Ready condition counts (the last one of that type, as Go's map keeps).
    let ready = arr_at(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| str_at(c, &["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if bool_at(node, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }

    let mut roles: Vec<String> = Vec::new();
    if let Some(labels) = obj_at(node, &["metadata", "labels"]) {
        for (key, value) in labels {
            if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role.to_string());
                }
            } else if key == "kubernetes.io/role" {
                if let Some(role) = value.as_str().filter(|r| !r.is_empty()) {
                    roles.push(role.to_string());
                }
            }
        }
    }
    roles.sort();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };

    let address = |ty: &str| -> String {
        arr_at(node, &["status", "addresses"])
            .iter()
            .find(|a| str_at(a, &["type"]) == ty)
            .map_or_else(
                || "<none>".to_string(),
                |a| str_at(a, &["address"]).to_string(),
            )
    };
    let info = |field: &str| -> String {
        or_placeholder(str_at(node, &["status", "nodeInfo", field]), "<unknown>")
    };

    Row::cells(vec![
        name_of(node).into(),
        status.join(",").into(),
        roles.into(),
        age(node, now).into(),
        str_at(node, &["status", "nodeInfo", "kubeletVersion"]).into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ])
}

// ---------------------------------------------------------------------------------------
// Service and Endpoints
// ---------------------------------------------------------------------------------------

fn string_list(v: &Value, path: &[&str]) -> Vec<String> {
    arr_at(v, path)
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// `getServiceExternalIP` with `wide` (the apiserver prints wide, so no clipping).
fn service_external_ip(svc: &Value, svc_type: &str) -> String {
    let external_ips = string_list(svc, &["spec", "externalIPs"]);
    match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let mut lb: Vec<String> = arr_at(svc, &["status", "loadBalancer", "ingress"])
                .iter()
                .filter_map(|ingress| {
                    let ip = str_at(ingress, &["ip"]);
                    let hostname = str_at(ingress, &["hostname"]);
                    if !ip.is_empty() {
                        Some(ip.to_string())
                    } else if !hostname.is_empty() {
                        Some(hostname.to_string())
                    } else {
                        None
                    }
                })
                .collect();
            lb.sort();
            lb.dedup();
            let lb_ips = lb.join(",");
            if !external_ips.is_empty() {
                let mut results: Vec<String> = Vec::new();
                if !lb_ips.is_empty() {
                    results.extend(lb_ips.split(',').map(str::to_string));
                }
                results.extend(external_ips);
                return results.join(",");
            }
            if !lb_ips.is_empty() {
                return lb_ips;
            }
            "<pending>".to_string()
        }
        "ExternalName" => str_at(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

fn service_row(svc: &Value, now: Timestamp) -> Row {
    let svc_type = or_placeholder(str_at(svc, &["spec", "type"]), "ClusterIP");
    let mut cluster_ip = str_at(svc, &["spec", "clusterIP"]);
    if cluster_ip.is_empty() {
        cluster_ip = arr_at(svc, &["spec", "clusterIPs"])
            .first()
            .and_then(Value::as_str)
            .unwrap_or("");
    }
    let ports: Vec<String> = arr_at(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int_at(p, &["port"]);
            let protocol = or_placeholder(str_at(p, &["protocol"]), "TCP");
            let node_port = int_at(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    let ports = ports.join(",");
    Row::cells(vec![
        name_of(svc).into(),
        svc_type.clone().into(),
        or_placeholder(cluster_ip, "<none>").into(),
        service_external_ip(svc, &svc_type).into(),
        or_placeholder(&ports, "<none>").into(),
        age(svc, now).into(),
        format_labels(obj_at(svc, &["spec", "selector"])).into(),
    ])
}

/// `net.JoinHostPort`.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `formatEndpoints(endpoints, nil)`: the first three addresses and how many more.
fn format_endpoints(endpoints: &Value) -> String {
    let subsets = arr_at(endpoints, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count: usize = 0;
    for subset in subsets {
        let addresses = arr_at(subset, &["addresses"]);
        let ports = arr_at(subset, &["ports"]);
        if ports.is_empty() {
            // Headless services with no ports.
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(address, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(
                    str_at(address, &["ip"]),
                    int_at(port, &["port"]),
                ));
            }
        }
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count.saturating_sub(MAX));
    }
    ret
}

// ---------------------------------------------------------------------------------------
// Secret, Event
// ---------------------------------------------------------------------------------------

fn secret_row(secret: &Value, now: Timestamp) -> Row {
    // The internal Secret merges stringData into data.
    let data = obj_at(secret, &["data"]);
    let extra = obj_at(secret, &["stringData"]).map_or(0, |string_data| {
        string_data
            .keys()
            .filter(|k| !data.is_some_and(|d| d.contains_key(*k)))
            .count()
    });
    let count = data.map_or(0, Map::len) + extra;
    Row::cells(vec![
        name_of(secret).into(),
        or_placeholder(str_at(secret, &["type"]), "Opaque").into(),
        (count as i64).into(),
        age(secret, now).into(),
    ])
}

fn event_row(event: &Value, now: Timestamp) -> Row {
    let first_timestamp = match timestamp_at(event, &["firstTimestamp"]) {
        Some(ts) => since(now, Some(ts)),
        None => since(now, timestamp_at(event, &["eventTime"])),
    };
    let mut last_timestamp = match timestamp_at(event, &["lastTimestamp"]) {
        Some(ts) => since(now, Some(ts)),
        None => first_timestamp.clone(),
    };
    let mut count = int_at(event, &["count"]);
    if obj_at(event, &["series"]).is_some() {
        last_timestamp = since(now, timestamp_at(event, &["series", "lastObservedTime"]));
        count = int_at(event, &["series", "count"]);
    } else if count == 0 {
        // Singleton events don't have a count set in the new API.
        count = 1;
    }

    let kind = str_at(event, &["involvedObject", "kind"]).to_lowercase();
    let involved_name = str_at(event, &["involvedObject", "name"]);
    let target = if involved_name.is_empty() {
        kind
    } else {
        format!("{kind}/{involved_name}")
    };

    let first_non_empty = |a: &str, b: &str| -> String {
        if a.is_empty() {
            b.to_string()
        } else {
            a.to_string()
        }
    };
    let component = first_non_empty(
        str_at(event, &["source", "component"]),
        str_at(event, &["reportingComponent"]),
    );
    let instance = first_non_empty(
        str_at(event, &["source", "host"]),
        str_at(event, &["reportingInstance"]),
    );
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };

    Row::cells(vec![
        last_timestamp.into(),
        str_at(event, &["type"]).into(),
        str_at(event, &["reason"]).into(),
        target.into(),
        str_at(event, &["involvedObject", "fieldPath"]).into(),
        source.into(),
        str_at(event, &["message"]).trim().into(),
        first_timestamp.into(),
        count.into(),
        name_of(event).into(),
    ])
}

// ---------------------------------------------------------------------------------------
// Deployment, ReplicaSet, Job
// ---------------------------------------------------------------------------------------

/// `layoutContainerCells`: the containers' names and images, comma-separated.
fn container_cells(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

fn template_containers(o: &Value) -> &[Value] {
    arr_at(o, &["spec", "template", "spec", "containers"])
}

/// `spec.replicas`, defaulted to 1 as the apiserver does when it is unset.
fn desired_replicas(o: &Value) -> i64 {
    opt_int_at(o, &["spec", "replicas"]).unwrap_or(1)
}

fn deployment_row(d: &Value, now: Timestamp) -> Row {
    let desired = desired_replicas(d);
    let ready = int_at(d, &["status", "readyReplicas"]);
    let (names, images) = container_cells(template_containers(d));
    let selector = label_selector_string(get(d, &["spec", "selector"]))
        .unwrap_or_else(|()| "<invalid>".to_string());
    Row::cells(vec![
        name_of(d).into(),
        format!("{ready}/{desired}").into(),
        int_at(d, &["status", "updatedReplicas"]).into(),
        int_at(d, &["status", "availableReplicas"]).into(),
        age(d, now).into(),
        names.into(),
        images.into(),
        selector.into(),
    ])
}

fn replica_set_row(rs: &Value, now: Timestamp) -> Row {
    let (names, images) = container_cells(template_containers(rs));
    Row::cells(vec![
        name_of(rs).into(),
        desired_replicas(rs).into(),
        int_at(rs, &["status", "replicas"]).into(),
        int_at(rs, &["status", "readyReplicas"]).into(),
        age(rs, now).into(),
        names.into(),
        images.into(),
        format_label_selector(get(rs, &["spec", "selector"])).into(),
    ])
}

/// `hasJobCondition`: the first condition of that type is `True`.
fn has_job_condition(job: &Value, ty: &str) -> bool {
    arr_at(job, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == ty)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

fn job_row(job: &Value, now: Timestamp) -> Row {
    let succeeded = int_at(job, &["status", "succeeded"]);
    let completions = match opt_int_at(job, &["spec", "completions"]) {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => {
            let parallelism = int_at(job, &["spec", "parallelism"]);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let start = timestamp_at(job, &["status", "startTime"]);
    let completion = timestamp_at(job, &["status", "completionTime"]);
    let duration = match (start, completion) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration_nanos(now.as_nanosecond() - start.as_nanosecond()),
        (Some(start), Some(end)) => {
            human_duration_nanos(end.as_nanosecond() - start.as_nanosecond())
        }
    };
    let status = if has_job_condition(job, "Complete") {
        "Complete"
    } else if has_job_condition(job, "Failed") {
        "Failed"
    } else if is_set(job, &["metadata", "deletionTimestamp"]) {
        "Terminating"
    } else if has_job_condition(job, "Suspended") {
        "Suspended"
    } else if has_job_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(template_containers(job));
    Row::cells(vec![
        name_of(job).into(),
        status.into(),
        completions.into(),
        duration.into(),
        age(job, now).into(),
        names.into(),
        images.into(),
        format_label_selector(get(job, &["spec", "selector"])).into(),
    ])
}

// ---------------------------------------------------------------------------------------
// Custom resources (apiextensions-apiserver's table convertor)
// ---------------------------------------------------------------------------------------

fn crd_row(columns: &[CrdColumn], o: &Value, now: Timestamp) -> Row {
    let mut cells = vec![Value::from(name_of(o))];
    for column in columns {
        let cell = match get(o, column.path) {
            None | Some(Value::Null) => Value::Null,
            Some(value) => crd_cell(column.ty, value, now),
        };
        cells.push(cell);
    }
    Row::cells(cells)
}

/// `cellForJSONValue` (and the JSONPath printing of `string` columns).
fn crd_cell(ty: &str, value: &Value, now: Timestamp) -> Value {
    match ty {
        // JSONPath prints strings as they are and other values in their JSON form.
        "string" => Value::String(plain(value)),
        "integer" => as_int(value).map_or(Value::Null, Value::from),
        "number" => value.as_f64().map_or(Value::Null, Value::from),
        "boolean" => value.as_bool().map_or(Value::Null, Value::from),
        "date" => match value {
            Value::String(_) => match parse_timestamp(value) {
                Some(ts) => Value::String(since(now, Some(ts))),
                None if value.as_str().is_some_and(is_zero_time) => "<unknown>".into(),
                None => "<invalid>".into(),
            },
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

fn is_zero_time(s: &str) -> bool {
    s.trim()
        .parse::<Timestamp>()
        .is_ok_and(|ts| ts.as_second() == -62_135_596_800 && ts.subsec_nanosecond() == 0)
}

// ---------------------------------------------------------------------------------------
// Labels and label selectors
// ---------------------------------------------------------------------------------------

/// `labels.FormatLabels`: `k=v` pairs sorted and comma-separated, or `<none>`.
fn format_labels(labels: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<String> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", plain(v)))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".to_string()
    } else {
        pairs.join(",")
    }
}

/// `metav1.FormatLabelSelector`: `app=x,tier in (a,b)`, `<none>` when it selects
/// nothing or everything, `<error>` when invalid.
fn format_label_selector(selector: Option<&Value>) -> String {
    match label_selector_string(selector) {
        Err(()) => "<error>".to_string(),
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Operator {
    Equals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// `labels.NewRequirement`'s validation.
    fn new(key: String, operator: Operator, values: Vec<String>) -> Result<Self, ()> {
        if !is_qualified_name(&key) {
            return Err(());
        }
        let count_ok = match operator {
            Operator::In | Operator::NotIn => !values.is_empty(),
            Operator::Equals => values.len() == 1,
            Operator::Exists | Operator::DoesNotExist => values.is_empty(),
        };
        if !count_ok || !values.iter().all(|v| is_valid_label_value(v)) {
            return Err(());
        }
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    /// `Requirement.String`.
    fn render(&self) -> String {
        let mut out = String::new();
        if self.operator == Operator::DoesNotExist {
            out.push('!');
        }
        out.push_str(&self.key);
        match self.operator {
            Operator::Equals => out.push('='),
            Operator::In => out.push_str(" in "),
            Operator::NotIn => out.push_str(" notin "),
            Operator::Exists | Operator::DoesNotExist => return out,
        }
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            out.push('(');
        }
        if self.values.len() == 1 {
            out.push_str(&self.values[0]);
        } else {
            let mut sorted = self.values.clone();
            sorted.sort();
            out.push_str(&sorted.join(","));
        }
        if set {
            out.push(')');
        }
        out
    }
}

/// `metav1.LabelSelectorAsSelector(selector).String()`: `""` for a missing selector
/// (nothing) and an empty one (everything), `Err` when it is invalid.
fn label_selector_string(selector: Option<&Value>) -> Result<String, ()> {
    let selector = match selector {
        Some(Value::Object(s)) => s,
        _ => return Ok(String::new()),
    };
    let match_labels = match selector.get("matchLabels") {
        Some(Value::Object(m)) => Some(m),
        None | Some(Value::Null) => None,
        Some(_) => return Err(()),
    };
    let match_expressions: &[Value] = match selector.get("matchExpressions") {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => &[],
        Some(_) => return Err(()),
    };
    let mut requirements: Vec<Requirement> = Vec::new();
    for (key, value) in match_labels.into_iter().flatten() {
        let value = value.as_str().ok_or(())?;
        requirements.push(Requirement::new(
            key.clone(),
            Operator::Equals,
            vec![value.to_string()],
        )?);
    }
    for expression in match_expressions {
        let operator = match str_at(expression, &["operator"]) {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            _ => return Err(()),
        };
        let values = match get(expression, &["values"]) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(values)) => values
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or(()))
                .collect::<Result<Vec<_>, ()>>()?,
            Some(_) => return Err(()),
        };
        requirements.push(Requirement::new(
            str_at(expression, &["key"]).to_string(),
            operator,
            values,
        )?);
    }
    requirements.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(requirements
        .iter()
        .map(Requirement::render)
        .collect::<Vec<_>>()
        .join(","))
}

/// The name part of a qualified name and a non-empty label value:
/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
fn is_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= 63
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `validation.IsDNS1123Subdomain`.
fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let bytes = label.as_bytes();
            match (bytes.first(), bytes.last()) {
                (Some(first), Some(last)) => {
                    (first.is_ascii_lowercase() || first.is_ascii_digit())
                        && (last.is_ascii_lowercase() || last.is_ascii_digit())
                        && bytes
                            .iter()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                }
                _ => false,
            }
        })
}

/// `validation.IsQualifiedName`: `[prefix/]name`.
fn is_qualified_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    match parts.as_slice() {
        [name] => is_name_part(name),
        [prefix, name] => !prefix.is_empty() && is_dns1123_subdomain(prefix) && is_name_part(name),
        _ => false,
    }
}

/// `validation.IsValidLabelValue`.
fn is_valid_label_value(s: &str) -> bool {
    s.is_empty() || is_name_part(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn now() -> Timestamp {
        "2025-06-01T12:00:00Z".parse().unwrap()
    }

    /// RFC 3339 for `secs` seconds before `now()`.
    fn ago(secs: i64) -> String {
        (now() - SignedDuration::from_secs(secs)).to_string()
    }

    fn render(kind: &str, objects: &[Value]) -> Value {
        table(kind, objects, now(), IncludeObject::None)
    }

    fn cells(kind: &str, object: Value) -> Vec<Value> {
        let t = render(kind, &[object]);
        t["rows"][0]["cells"].as_array().unwrap().clone()
    }

    fn columns(kind: &str) -> Vec<(String, String, i64)> {
        render(kind, &[])["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["type"].as_str().unwrap().to_string(),
                    c["priority"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    /// Column names and priorities, compactly: `"Name Ready ... | IP Node"` lists the
    /// priority-0 columns before the bar and the priority-1 ones after it.
    fn layout(kind: &str) -> String {
        let cols = columns(kind);
        let normal: Vec<String> = cols
            .iter()
            .filter(|c| c.2 == 0)
            .map(|c| c.0.clone())
            .collect();
        let wide: Vec<String> = cols
            .iter()
            .filter(|c| c.2 == 1)
            .map(|c| c.0.clone())
            .collect();
        format!("{} | {}", normal.join(","), wide.join(","))
    }

    const ALL_KINDS: &[&str] = &[
        "Namespace",
        "Node",
        "Pod",
        "Service",
        "Endpoints",
        "ConfigMap",
        "Secret",
        "Event",
        "Deployment",
        "ReplicaSet",
        "Job",
        "Lease",
        "PodGroup",
        "Widget",
    ];

    // ---- human_duration -------------------------------------------------------------

    #[test]
    fn human_duration_thresholds() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (1, "1s"),
            (59, "59s"),
            (60, "60s"),
            (119, "119s"),
            (120, "2m"),
            (121, "2m1s"),
            (599, "9m59s"),
            (600, "10m"),
            (659, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 30 * 60 + 59, "3h30m"),
            (8 * 3600 - 60, "7h59m"),
            (8 * 3600, "8h"),
            (47 * 3600 + 3599, "47h"),
            (48 * 3600, "2d"),
            (50 * 3600, "2d2h"),
            (8 * 86400 - 3600, "7d23h"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (731 * 86400, "2y1d"),
            (8 * 365 * 86400 - 86400, "7y364d"),
            (8 * 365 * 86400, "8y"),
            (100 * 365 * 86400, "100y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(*secs)), *want, "{secs}s");
        }
        assert_eq!(human_duration(Duration::from_millis(119_999)), "119s");
        assert_eq!(
            human_duration(Duration::MAX),
            format!("{}y", u64::MAX / 86400 / 365)
        );
    }

    #[test]
    fn human_duration_of_the_future() {
        // Up to a second or so ahead is clock skew: "0s"; more is "<invalid>".
        assert_eq!(human_duration_nanos(-999_999_999), "0s");
        assert_eq!(human_duration_nanos(-1_999_999_999), "0s");
        assert_eq!(human_duration_nanos(-2_000_000_000), "<invalid>");
        let created = json!({"metadata": {"name": "x", "creationTimestamp": ago(-60)}});
        assert_eq!(cells("Namespace", created)[2], "<invalid>");
    }

    // ---- the Table envelope and includeObject ------------------------------------------

    #[test]
    fn include_object_parses_the_three_policies() {
        assert_eq!(IncludeObject::parse("None"), Some(IncludeObject::None));
        assert_eq!(
            IncludeObject::parse("Metadata"),
            Some(IncludeObject::Metadata)
        );
        assert_eq!(IncludeObject::parse("Object"), Some(IncludeObject::Object));
        assert_eq!(IncludeObject::parse("object"), None);
        assert_eq!(IncludeObject::parse(""), None);
        assert_eq!(IncludeObject::default(), IncludeObject::Metadata);
    }

    #[test]
    fn include_object_variants() {
        let cm = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default", "resourceVersion": "7"},
            "data": {"a": "1"},
        });
        let objects = [cm.clone()];

        let t = table("ConfigMap", &objects, now(), IncludeObject::Metadata);
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"], json!({}));
        assert_eq!(
            t["rows"][0]["object"],
            json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {"name": "cfg", "namespace": "default", "resourceVersion": "7"},
            })
        );

        let t = table("ConfigMap", &objects, now(), IncludeObject::Object);
        assert_eq!(t["rows"][0]["object"], cm);

        let t = table("ConfigMap", &objects, now(), IncludeObject::None);
        assert!(t["rows"][0].get("object").is_none());
        assert_eq!(t["rows"][0]["cells"], json!(["cfg", 1, "<unknown>"]));

        // Metadata of an object without metadata is empty, not missing.
        let t = table("ConfigMap", &[json!({})], now(), IncludeObject::Metadata);
        assert_eq!(t["rows"][0]["object"]["metadata"], json!({}));
    }

    #[test]
    fn column_definitions_have_every_field() {
        let t = render("Pod", &[]);
        assert_eq!(
            t["columnDefinitions"][0],
            json!({
                "name": "Name",
                "type": "string",
                "format": "name",
                "description": DOC_NAME,
                "priority": 0,
            })
        );
        assert_eq!(
            t["columnDefinitions"][4]["description"],
            DOC_CREATION_TIMESTAMP
        );
        assert_eq!(t["rows"], json!([]));
        for kind in ALL_KINDS {
            for c in render(kind, &[])["columnDefinitions"].as_array().unwrap() {
                // Sorted: serde_json may preserve insertion order (feature `preserve_order`).
                let mut keys: Vec<&String> = c.as_object().unwrap().keys().collect();
                keys.sort();
                assert_eq!(
                    keys,
                    ["description", "format", "name", "priority", "type"],
                    "{kind}"
                );
            }
        }
    }

    #[test]
    fn columns_and_priorities_per_kind() {
        assert_eq!(
            layout("Pod"),
            "Name,Ready,Status,Restarts,Age | IP,Node,Nominated Node,Readiness Gates"
        );
        assert_eq!(
            layout("Node"),
            "Name,Status,Roles,Age,Version | Internal-IP,External-IP,OS-Image,Kernel-Version,Container-Runtime"
        );
        assert_eq!(layout("Namespace"), "Name,Status,Age | ");
        assert_eq!(
            layout("Service"),
            "Name,Type,Cluster-IP,External-IP,Port(s),Age | Selector"
        );
        assert_eq!(layout("Endpoints"), "Name,Endpoints,Age | ");
        assert_eq!(layout("ConfigMap"), "Name,Data,Age | ");
        assert_eq!(layout("Secret"), "Name,Type,Data,Age | ");
        assert_eq!(
            layout("Event"),
            "Last Seen,Type,Reason,Object,Message | Subobject,Source,First Seen,Count,Name"
        );
        assert_eq!(
            layout("Deployment"),
            "Name,Ready,Up-to-date,Available,Age | Containers,Images,Selector"
        );
        assert_eq!(
            layout("ReplicaSet"),
            "Name,Desired,Current,Ready,Age | Containers,Images,Selector"
        );
        assert_eq!(
            layout("Job"),
            "Name,Status,Completions,Duration,Age | Containers,Images,Selector"
        );
        assert_eq!(layout("Lease"), "Name,Holder,Age | ");
        assert_eq!(
            layout("PodGroup"),
            "Name,Phase,MinMember,Running,Succeeded,Failed,Age | "
        );
        assert_eq!(layout("Widget"), "Name,Age | ");

        // The order of the Event columns interleaves wide and normal ones.
        let event: Vec<String> = columns("Event").into_iter().map(|c| c.0).collect();
        assert_eq!(
            event,
            [
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject",
                "Source",
                "Message",
                "First Seen",
                "Count",
                "Name"
            ]
        );
        let types: Vec<String> = columns("ReplicaSet").into_iter().map(|c| c.1).collect();
        assert_eq!(
            types,
            ["string", "integer", "integer", "integer", "string", "string", "string", "string"]
        );
        let types: Vec<String> = columns("PodGroup").into_iter().map(|c| c.1).collect();
        assert_eq!(
            types,
            ["string", "string", "integer", "integer", "integer", "integer", "date"]
        );
    }

    // ---- Pod ----------------------------------------------------------------------------

    fn pod(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "creationTimestamp": ago(300)},
            "spec": spec,
            "status": status,
        })
    }

    fn containers(n: usize) -> Value {
        Value::Array(
            (0..n)
                .map(|i| json!({"name": format!("c{i}"), "image": "nginx"}))
                .collect(),
        )
    }

    /// READY, STATUS and RESTARTS of a pod.
    fn pod_status(p: Value) -> (String, String, String) {
        let c = cells("Pod", p);
        (
            c[1].as_str().unwrap().to_string(),
            c[2].as_str().unwrap().to_string(),
            c[3].as_str().unwrap().to_string(),
        )
    }

    fn s(a: &str, b: &str, c: &str) -> (String, String, String) {
        (a.to_string(), b.to_string(), c.to_string())
    }

    #[test]
    fn pod_pending_unscheduled() {
        let p = pod(
            json!({"containers": containers(1)}),
            json!({"phase": "Pending"}),
        );
        let c = cells("Pod", p);
        assert_eq!(
            c,
            json!(["p", "0/1", "Pending", "0", "5m", "<none>", "<none>", "<none>", "<none>"])
                .as_array()
                .unwrap()
                .clone()
        );
    }

    #[test]
    fn pod_running_ready_with_wide_cells() {
        let p = pod(
            json!({"containers": containers(2), "nodeName": "node-a",
                   "readinessGates": [{"conditionType": "c1"}, {"conditionType": "c2"}, {"conditionType": "c3"}]}),
            json!({
                "phase": "Running",
                "podIP": "10.244.1.7",
                "podIPs": [{"ip": "10.244.1.7"}, {"ip": "fd00::7"}],
                "nominatedNodeName": "node-b",
                "conditions": [
                    {"type": "c1", "status": "False"},
                    {"type": "c2", "status": "True"},
                    {"type": "Ready", "status": "True"},
                ],
                "containerStatuses": [
                    {"name": "c0", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": ago(200)}}},
                    {"name": "c1", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": ago(200)}}},
                ],
            }),
        );
        assert_eq!(
            Value::Array(cells("Pod", p)),
            json!([
                "p",
                "2/2",
                "Running",
                "0",
                "5m",
                "10.244.1.7",
                "node-a",
                "node-b",
                "1/3"
            ])
        );
        // podIPs alone also gives the IP.
        let p = pod(
            json!({"containers": containers(1)}),
            json!({"phase": "Running", "podIPs": [{"ip": "1.1.1.1"}, {"ip": "2001:db8::"}]}),
        );
        assert_eq!(cells("Pod", p)[5], "1.1.1.1");
    }

    #[test]
    fn pod_status_cases_from_printers_test() {
        // TestPrintPod test1: phase, restarts summed, ready needs running.
        let p = pod(
            json!({"containers": containers(2)}),
            json!({"phase": "podPhase", "containerStatuses": [
                {"ready": true, "restartCount": 3, "state": {"running": {}}},
                {"restartCount": 3},
            ]}),
        );
        assert_eq!(pod_status(p), s("1/2", "podPhase", "6"));
        // test2: a container's waiting reason overrides the phase.
        let p = pod(
            json!({"containers": containers(2)}),
            json!({"phase": "podPhase", "containerStatuses": [
                {"ready": true, "restartCount": 3, "state": {"running": {}}},
                {"restartCount": 3, "state": {"waiting": {"reason": "ContainerWaitingReason"}}},
            ]}),
        );
        assert_eq!(pod_status(p), s("1/2", "ContainerWaitingReason", "6"));
        // test3: the first container's reason wins.
        let p = pod(
            json!({"containers": containers(2)}),
            json!({"phase": "podPhase", "containerStatuses": [
                {"restartCount": 3, "state": {"waiting": {"reason": "ContainerWaitingReason"}}},
                {"restartCount": 3, "state": {"terminated": {"reason": "ContainerTerminatedReason"}}},
            ]}),
        );
        assert_eq!(pod_status(p), s("0/2", "ContainerWaitingReason", "6"));
        // test5: status.reason overrides the phase.
        let p = pod(
            json!({"containers": containers(2)}),
            json!({"phase": "podPhase", "reason": "podReason", "containerStatuses": [
                {"ready": true, "restartCount": 3, "state": {"running": {}}},
                {"ready": true, "restartCount": 3},
            ]}),
        );
        assert_eq!(pod_status(p), s("1/2", "podReason", "6"));
        // test6: one completed and one running container: NotReady, or Running when Ready.
        let status = json!({"phase": "Running", "containerStatuses": [
            {"ready": true, "restartCount": 3, "state": {"terminated": {"reason": "Completed", "exitCode": 0}}},
            {"ready": true, "restartCount": 3, "state": {"running": {}}},
        ]});
        let p = pod(json!({"containers": containers(2)}), status.clone());
        assert_eq!(pod_status(p), s("1/2", "NotReady", "6"));
        let mut ready = status;
        ready["conditions"] = json!([{"type": "Ready", "status": "True"}]);
        let p = pod(json!({"containers": containers(2)}), ready);
        assert_eq!(pod_status(p), s("1/2", "Running", "6"));
    }

    #[test]
    fn pod_init_containers() {
        // test7: one init container restarting.
        let p = pod(
            json!({"initContainers": containers(1), "containers": containers(1)}),
            json!({"phase": "podPhase",
                "initContainerStatuses": [{"ready": false, "restartCount": 3, "state": {"running": {}},
                    "lastState": {"terminated": {"finishedAt": ago(10)}}}],
                "containerStatuses": [{"ready": false, "restartCount": 0, "state": {"waiting": {}}}],
            }),
        );
        assert_eq!(pod_status(p), s("0/1", "Init:0/1", "3 (10s ago)"));
        // test9: the first of two init containers done.
        let p = pod(
            json!({"initContainers": containers(2), "containers": containers(1)}),
            json!({"phase": "podPhase",
                "initContainerStatuses": [
                    {"ready": false, "state": {"terminated": {}}},
                    {"ready": false, "restartCount": 3, "state": {"running": {}},
                        "lastState": {"terminated": {"finishedAt": ago(10)}}},
                ],
                "containerStatuses": [{"ready": false, "state": {"waiting": {}}}],
            }),
        );
        assert_eq!(pod_status(p), s("0/1", "Init:1/2", "3 (10s ago)"));
        // test10: restarts of every init container add up; the latest restart is shown.
        let p = pod(
            json!({"initContainers": containers(2), "containers": containers(1)}),
            json!({"phase": "podPhase",
                "initContainerStatuses": [
                    {"restartCount": 2, "state": {"terminated": {}}, "lastState": {"terminated": {"finishedAt": ago(120)}}},
                    {"restartCount": 3, "state": {"running": {}}, "lastState": {"terminated": {"finishedAt": ago(10)}}},
                ],
                "containerStatuses": [{"state": {"waiting": {}}}],
            }),
        );
        assert_eq!(pod_status(p), s("0/1", "Init:1/2", "5 (10s ago)"));
        // test11: init done, so only the app containers' restarts count.
        let p = pod(
            json!({"initContainers": containers(1), "containers": containers(1)}),
            json!({"phase": "Running",
                "initContainerStatuses": [
                    {"restartCount": 2, "state": {"terminated": {}}, "lastState": {"terminated": {"finishedAt": ago(120)}}},
                ],
                "containerStatuses": [
                    {"restartCount": 4, "state": {"running": {}}, "lastState": {"terminated": {"finishedAt": ago(20)}}},
                ],
            }),
        );
        assert_eq!(pod_status(p), s("0/1", "Running", "4 (20s ago)"));
        // Waiting init containers show their reason; PodInitializing shows progress.
        let p = pod(
            json!({"initContainers": containers(1), "containers": containers(1)}),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(30)}}}]}),
        );
        assert_eq!(
            pod_status(p),
            s("0/1", "Init:CrashLoopBackOff", "4 (30s ago)")
        );
        let p = pod(
            json!({"initContainers": containers(2), "containers": containers(1)}),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"state": {"waiting": {"reason": "PodInitializing"}}}]}),
        );
        assert_eq!(pod_status(p), s("0/1", "Init:0/2", "0"));
        // Failed init containers: reason, exit code or signal.
        for (terminated, want) in [
            (json!({"exitCode": 1}), "Init:ExitCode:1"),
            (json!({"exitCode": 1, "signal": 2}), "Init:Signal:2"),
            (json!({"exitCode": 1, "reason": "Error"}), "Init:Error"),
        ] {
            let p = pod(
                json!({"initContainers": containers(1), "containers": containers(1)}),
                json!({"phase": "Pending", "initContainerStatuses": [{"state": {"terminated": terminated}}]}),
            );
            assert_eq!(pod_status(p).1, want);
        }
    }

    #[test]
    fn pod_restartable_init_containers() {
        let spec = json!({
            "initContainers": [
                {"name": "restartable-init-1", "restartPolicy": "Always"},
                {"name": "restartable-init-2", "restartPolicy": "Always"},
            ],
            "containers": containers(1),
        });
        // The first sidecar started, the second running but not started.
        let p = pod(
            spec.clone(),
            json!({"phase": "Pending",
                "initContainerStatuses": [
                    {"name": "restartable-init-1", "restartCount": 3, "started": true, "state": {"running": {}},
                     "lastState": {"terminated": {"finishedAt": ago(10)}}},
                    {"name": "restartable-init-2", "started": false, "state": {"running": {}}},
                ],
                "containerStatuses": [{"state": {"waiting": {}}}],
                "conditions": [{"type": "Initialized", "status": "False"}],
            }),
        );
        assert_eq!(pod_status(p), s("0/3", "Init:1/2", "3 (10s ago)"));
        // Both sidecars started and the app running.
        let p = pod(
            spec.clone(),
            json!({"phase": "Running",
                "initContainerStatuses": [
                    {"name": "restartable-init-1", "restartCount": 3, "started": true, "state": {"running": {}},
                     "lastState": {"terminated": {"finishedAt": ago(10)}}},
                    {"name": "restartable-init-2", "started": true, "state": {"running": {}}},
                ],
                "containerStatuses": [{"ready": true, "restartCount": 4, "state": {"running": {}},
                    "lastState": {"terminated": {"finishedAt": ago(20)}}}],
                "conditions": [{"type": "Initialized", "status": "True"}],
            }),
        );
        assert_eq!(pod_status(p), s("1/3", "Running", "7 (10s ago)"));
        // Sidecars killed after the app completed.
        let p = pod(
            spec,
            json!({"phase": "Succeeded",
                "initContainerStatuses": [
                    {"name": "restartable-init-1", "restartCount": 3, "started": false,
                     "state": {"terminated": {"reason": "Error", "exitCode": 137}},
                     "lastState": {"terminated": {"finishedAt": ago(10)}}},
                    {"name": "restartable-init-2", "started": false, "state": {"terminated": {"reason": "Error", "exitCode": 137}}},
                ],
                "containerStatuses": [{"restartCount": 4, "state": {"terminated": {"reason": "Completed", "exitCode": 0}},
                    "lastState": {"terminated": {"finishedAt": ago(20)}}}],
                "conditions": [{"type": "Initialized", "status": "True"}],
            }),
        );
        let t = render("Pod", &[p]);
        assert_eq!(t["rows"][0]["cells"][1], "0/3");
        assert_eq!(t["rows"][0]["cells"][2], "Completed");
        assert_eq!(t["rows"][0]["cells"][3], "7 (10s ago)");
        assert_eq!(
            t["rows"][0]["conditions"],
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                    "message": "The pod has completed successfully."}])
        );
        // Statuses of containers that are not in the spec.
        let p = pod(
            json!({"initContainers": [{"name": "init1"}, {"name": "sidecar1", "restartPolicy": "Always"}],
                   "containers": [{"name": "container1"}]}),
            json!({"phase": "Running",
                "initContainerStatuses": [{"name": "initinvalid"}, {"name": "init1"}, {"name": "sidecar1"}],
                "containerStatuses": [{"name": "containerinvalid"}, {"name": "container1"}]}),
        );
        assert_eq!(pod_status(p), s("0/2", "Init:0/2", "0"));
    }

    #[test]
    fn pod_crashloop_terminated_completed() {
        let p = pod(
            json!({"containers": containers(1)}),
            json!({"phase": "Running", "containerStatuses": [
                {"ready": false, "restartCount": 5, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                 "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(150)}}}]}),
        );
        assert_eq!(pod_status(p), s("0/1", "CrashLoopBackOff", "5 (2m30s ago)"));
        let p = pod(
            json!({"containers": containers(1)}),
            json!({"phase": "Running", "containerStatuses": [
                {"restartCount": 0, "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
        );
        assert_eq!(pod_status(p), s("0/1", "OOMKilled", "0"));
        for (terminated, want) in [
            (json!({"exitCode": 3}), "ExitCode:3"),
            (json!({"exitCode": 0, "signal": 9}), "Signal:9"),
        ] {
            let p = pod(
                json!({"containers": containers(1)}),
                json!({"phase": "Running", "containerStatuses": [{"state": {"terminated": terminated}}]}),
            );
            assert_eq!(pod_status(p).1, want);
        }
        // test16/test17: completed pods carry a row condition.
        let p = pod(
            json!({"containers": containers(1)}),
            json!({"phase": "Succeeded", "containerStatuses": [
                {"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]}),
        );
        let t = render("Pod", &[p]);
        assert_eq!(t["rows"][0]["cells"][2], "Completed");
        assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");
        let p = pod(
            json!({"containers": containers(1)}),
            json!({"phase": "Failed", "containerStatuses": [
                {"state": {"terminated": {"reason": "Error", "exitCode": 1}}}]}),
        );
        let t = render("Pod", &[p]);
        assert_eq!(t["rows"][0]["cells"][2], "Error");
        assert_eq!(
            t["rows"][0]["conditions"],
            json!([{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}])
        );
        // A running pod has no conditions field.
        let p = pod(
            json!({"containers": containers(1)}),
            json!({"phase": "Running"}),
        );
        assert!(render("Pod", &[p])["rows"][0].get("conditions").is_none());
    }

    #[test]
    fn pod_terminating_node_lost_and_gated() {
        let mut p = pod(
            json!({"containers": containers(1)}),
            json!({"phase": "Running", "containerStatuses": [{"state": {"running": {}}}]}),
        );
        p["metadata"]["deletionTimestamp"] = json!(ago(10));
        assert_eq!(pod_status(p.clone()).1, "Terminating");
        p["status"]["phase"] = json!("Pending");
        assert_eq!(pod_status(p.clone()).1, "Terminating");
        // test18: a completed pod being deleted stays Completed.
        p["status"] = json!({"phase": "Succeeded", "containerStatuses": [
            {"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]});
        assert_eq!(pod_status(p.clone()).1, "Completed");
        // NodeLost: shown as the reason, and as Unknown once deleted.
        p["status"] = json!({"phase": "Running", "reason": "NodeLost"});
        assert_eq!(pod_status(p.clone()).1, "Unknown");
        p["metadata"]["deletionTimestamp"] = Value::Null;
        assert_eq!(pod_status(p.clone()).1, "NodeLost");
        // test15: SchedulingGated.
        let p = pod(
            json!({"containers": containers(2)}),
            json!({"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
        );
        assert_eq!(pod_status(p), s("0/2", "SchedulingGated", "0"));
    }

    #[test]
    fn pod_restart_age_uses_latest_termination() {
        // test14: 6 restarts 5d ago and 3 restarts 20d ago.
        let p = pod(
            json!({"containers": containers(2)}),
            json!({"phase": "Running", "containerStatuses": [
                {"ready": true, "restartCount": 6, "state": {"running": {}},
                 "lastState": {"terminated": {"finishedAt": ago(5 * 86400)}}},
                {"ready": true, "restartCount": 3, "state": {"running": {}},
                 "lastState": {"terminated": {"finishedAt": ago(20 * 86400)}}},
            ]}),
        );
        assert_eq!(pod_status(p), s("2/2", "Running", "9 (5d ago)"));
        // Restarts without a termination time print just the count.
        let p = pod(
            json!({"containers": containers(1)}),
            json!({"phase": "Running", "containerStatuses": [{"restartCount": 2, "state": {"running": {}}}]}),
        );
        assert_eq!(pod_status(p).2, "2");
    }

    // ---- Node ---------------------------------------------------------------------------

    #[test]
    fn node_rows() {
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "cp-1", "creationTimestamp": ago(3 * 86400 + 7200), "labels": {
                "node-role.kubernetes.io/control-plane": "",
                "node-role.kubernetes.io/master": "",
                "kubernetes.io/role": "infra",
                "kubernetes.io/hostname": "cp-1",
            }},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [
                    {"type": "MemoryPressure", "status": "False"},
                    {"type": "Ready", "status": "True"},
                ],
                "addresses": [
                    {"type": "Hostname", "address": "cp-1"},
                    {"type": "InternalIP", "address": "192.168.0.10"},
                    {"type": "InternalIP", "address": "192.168.0.11"},
                ],
                "nodeInfo": {
                    "kubeletVersion": "v1.32.0",
                    "osImage": "Ubuntu 24.04 LTS",
                    "kernelVersion": "6.8.0-31-generic",
                    "containerRuntimeVersion": "containerd://1.7.12",
                },
            },
        });
        assert_eq!(
            Value::Array(cells("Node", node)),
            json!([
                "cp-1",
                "Ready,SchedulingDisabled",
                "control-plane,infra,master",
                "3d2h",
                "v1.32.0",
                "192.168.0.10",
                "<none>",
                "Ubuntu 24.04 LTS",
                "6.8.0-31-generic",
                "containerd://1.7.12"
            ])
        );
        let not_ready = json!({
            "metadata": {"name": "w-1", "labels": {"node-role.kubernetes.io/": "x", "kubernetes.io/role": ""}},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}],
                       "addresses": [{"type": "ExternalIP", "address": "203.0.113.5"}]},
        });
        assert_eq!(
            Value::Array(cells("Node", not_ready)),
            json!([
                "w-1",
                "NotReady",
                "<none>",
                "<unknown>",
                "",
                "<none>",
                "203.0.113.5",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ])
        );
        let unknown = json!({"metadata": {"name": "w-2"}, "spec": {"unschedulable": true}});
        assert_eq!(cells("Node", unknown)[1], "Unknown,SchedulingDisabled");
    }

    // ---- Namespace, ConfigMap, Secret, Lease ---------------------------------------------

    #[test]
    fn namespace_rows() {
        let ns = json!({"metadata": {"name": "kube-system", "creationTimestamp": ago(40 * 86400)},
                        "status": {"phase": "Active"}});
        assert_eq!(
            Value::Array(cells("Namespace", ns)),
            json!(["kube-system", "Active", "40d"])
        );
        let ns = json!({"metadata": {"name": "old", "creationTimestamp": ago(30),
                                     "deletionTimestamp": ago(1)},
                        "status": {"phase": "Terminating"}});
        assert_eq!(
            Value::Array(cells("Namespace", ns)),
            json!(["old", "Terminating", "30s"])
        );
        // An undefaulted namespace is Active, as the apiserver would have stored it.
        let ns = json!({"metadata": {"name": "new"}});
        assert_eq!(
            Value::Array(cells("Namespace", ns)),
            json!(["new", "Active", "<unknown>"])
        );
    }

    #[test]
    fn config_map_and_secret_rows() {
        let cm = json!({"metadata": {"name": "kube-root-ca.crt", "creationTimestamp": ago(7200)},
                        "data": {"ca.crt": "..."}, "binaryData": {"blob": "AAAA", "other": "AA=="}});
        assert_eq!(
            Value::Array(cells("ConfigMap", cm)),
            json!(["kube-root-ca.crt", 3, "120m"])
        );
        let empty = json!({"metadata": {"name": "e"}});
        assert_eq!(cells("ConfigMap", empty)[1], json!(0));

        let secret = json!({"metadata": {"name": "tls", "creationTimestamp": ago(90)},
                            "type": "kubernetes.io/tls", "data": {"tls.crt": "x", "tls.key": "y"}});
        assert_eq!(
            Value::Array(cells("Secret", secret)),
            json!(["tls", "kubernetes.io/tls", 2, "90s"])
        );
        let secret = json!({"metadata": {"name": "s"}, "data": {"a": "x"},
                            "stringData": {"a": "1", "b": "2"}});
        assert_eq!(
            Value::Array(cells("Secret", secret)),
            json!(["s", "Opaque", 2, "<unknown>"])
        );
    }

    #[test]
    fn lease_rows() {
        let lease = json!({"metadata": {"name": "kube-scheduler", "creationTimestamp": ago(600)},
                           "spec": {"holderIdentity": "plimsoll_1234", "leaseDurationSeconds": 15}});
        assert_eq!(
            Value::Array(cells("Lease", lease)),
            json!(["kube-scheduler", "plimsoll_1234", "10m"])
        );
        let lease = json!({"metadata": {"name": "free"}, "spec": {}});
        assert_eq!(
            Value::Array(cells("Lease", lease)),
            json!(["free", "", "<unknown>"])
        );
    }

    // ---- Service and Endpoints ---------------------------------------------------------

    #[test]
    fn service_rows() {
        // printers_test.go's service4 (LoadBalancer with three ingress points).
        let svc = json!({
            "metadata": {"name": "service4"},
            "spec": {"type": "LoadBalancer", "clusterIP": "1.5.6.7", "clusterIPs": ["1.5.6.7"],
                     "ports": [{"port": 80, "protocol": "TCP"}, {"port": 8090, "protocol": "UDP"},
                               {"port": 8000, "protocol": "TCP"}],
                     "selector": {"foo": "bar"}},
            "status": {"loadBalancer": {"ingress": [{"ip": "2.3.4.5"}, {"ip": "3.4.5.6"},
                                                    {"ip": "5.6.7.8", "hostname": "host5678"}]}},
        });
        assert_eq!(
            Value::Array(cells("Service", svc)),
            json!([
                "service4",
                "LoadBalancer",
                "1.5.6.7",
                "2.3.4.5,3.4.5.6,5.6.7.8",
                "80/TCP,8090/UDP,8000/TCP",
                "<unknown>",
                "foo=bar"
            ])
        );
        let svc = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(45)},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.20",
                     "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}],
                     "selector": {"tier": "front", "app": "web"}},
        });
        assert_eq!(
            Value::Array(cells("Service", svc)),
            json!([
                "web",
                "NodePort",
                "10.96.0.20",
                "<none>",
                "80:30080/TCP",
                "45s",
                "app=web,tier=front"
            ])
        );
        let pending = json!({"metadata": {"name": "lb"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.30", "ports": [{"port": 443}]}});
        let c = cells("Service", pending);
        assert_eq!(c[3], "<pending>");
        assert_eq!(c[4], "443/TCP");
        let lb_and_external = json!({"metadata": {"name": "lb"},
            "spec": {"type": "LoadBalancer", "externalIPs": ["9.9.9.9"]},
            "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}});
        assert_eq!(
            cells("Service", lb_and_external)[3],
            "lb.example.com,9.9.9.9"
        );
        let external_name = json!({"metadata": {"name": "db"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        assert_eq!(
            Value::Array(cells("Service", external_name)),
            json!([
                "db",
                "ExternalName",
                "<none>",
                "db.example.com",
                "<none>",
                "<unknown>",
                "<none>"
            ])
        );
        let headless = json!({"metadata": {"name": "h"},
            "spec": {"clusterIP": "None", "externalIPs": ["1.2.3.4", "5.6.7.8"]}});
        let c = cells("Service", headless);
        assert_eq!(
            (c[1].clone(), c[2].clone(), c[3].clone()),
            (json!("ClusterIP"), json!("None"), json!("1.2.3.4,5.6.7.8"))
        );
        let odd = json!({"metadata": {"name": "o"}, "spec": {"type": "Weird"}});
        assert_eq!(cells("Service", odd)[3], "<unknown>");
    }

    #[test]
    fn endpoints_rows() {
        let ep = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(61)},
            "subsets": [{
                "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}],
                "ports": [{"port": 8080, "protocol": "TCP"}],
            }],
        });
        assert_eq!(
            Value::Array(cells("Endpoints", ep)),
            json!([
                "web",
                "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 1 more...",
                "61s"
            ])
        );
        // Every port counts every address.
        let ep = json!({"metadata": {"name": "multi"}, "subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::2"}],
            "ports": [{"port": 80}, {"port": 443}],
        }]});
        assert_eq!(
            cells("Endpoints", ep)[1],
            "10.0.0.1:80,[fd00::2]:80,10.0.0.1:443 + 1 more..."
        );
        let headless =
            json!({"metadata": {"name": "h"}, "subsets": [{"addresses": [{"ip": "10.0.0.9"}]}]});
        assert_eq!(cells("Endpoints", headless)[1], "10.0.0.9");
        let empty = json!({"metadata": {"name": "none"}});
        assert_eq!(cells("Endpoints", empty)[1], "<none>");
        let not_ready = json!({"metadata": {"name": "nr"},
            "subsets": [{"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]});
        assert_eq!(cells("Endpoints", not_ready)[1], "");
    }

    // ---- Event --------------------------------------------------------------------------

    #[test]
    fn event_rows() {
        let ev = json!({
            "metadata": {"name": "web-1.17d0", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{app}"},
            "reason": "BackOff",
            "message": "  Back-off restarting failed container\n",
            "source": {"component": "kubelet", "host": "node-a"},
            "firstTimestamp": ago(3600),
            "lastTimestamp": ago(30),
            "count": 12,
            "type": "Warning",
        });
        assert_eq!(
            Value::Array(cells("Event", ev)),
            json!([
                "30s",
                "Warning",
                "BackOff",
                "pod/web-1",
                "spec.containers{app}",
                "kubelet, node-a",
                "Back-off restarting failed container",
                "60m",
                12,
                "web-1.17d0"
            ])
        );
        // events.k8s.io-style: eventTime, series, reporting controller; no count.
        let ev = json!({
            "metadata": {"name": "sched.1"},
            "involvedObject": {"kind": "Node"},
            "reason": "Scheduled",
            "message": "ok",
            "eventTime": "2025-06-01T11:50:00.000000Z",
            "reportingComponent": "plimsoll-scheduler",
            "series": {"count": 4, "lastObservedTime": "2025-06-01T11:59:00.123456Z"},
            "type": "Normal",
        });
        assert_eq!(
            Value::Array(cells("Event", ev)),
            json!([
                "59s",
                "Normal",
                "Scheduled",
                "node",
                "",
                "plimsoll-scheduler",
                "ok",
                "10m",
                4,
                "sched.1"
            ])
        );
        // A singleton without timestamps.
        let ev = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"},
                        "reportingInstance": "host-1"});
        let c = cells("Event", ev);
        assert_eq!(c[0], "<unknown>");
        assert_eq!(c[5], ", host-1");
        assert_eq!(c[7], "<unknown>");
        assert_eq!(c[8], json!(1));
    }

    // ---- Deployment, ReplicaSet, Job ---------------------------------------------------

    fn workload(kind_spec: Value, status: Value) -> Value {
        json!({
            "metadata": {"name": "web", "creationTimestamp": ago(5 * 86400)},
            "spec": kind_spec,
            "status": status,
        })
    }

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"},
                                       {"name": "sidecar", "image": "envoy:1.30"}]}})
    }

    #[test]
    fn deployment_rows() {
        let d = workload(
            json!({"replicas": 3, "selector": {"matchLabels": {"app": "web"},
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "api"]}]},
                   "template": template()}),
            json!({"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2}),
        );
        assert_eq!(
            Value::Array(cells("Deployment", d)),
            json!([
                "web",
                "2/3",
                3,
                2,
                "5d",
                "nginx,sidecar",
                "nginx:1.27,envoy:1.30",
                "app=web,tier in (api,front)"
            ])
        );
        // Unset replicas default to 1; an empty status is zero; a missing selector is "".
        let d = workload(json!({}), json!({}));
        assert_eq!(
            Value::Array(cells("Deployment", d)),
            json!(["web", "0/1", 0, 0, "5d", "", "", ""])
        );
        let d = workload(
            json!({"replicas": 0, "selector": {"matchExpressions": [
            {"key": "app", "operator": "Bogus"}]}}),
            json!({}),
        );
        let c = cells("Deployment", d);
        assert_eq!(c[1], "0/0");
        assert_eq!(c[7], "<invalid>");
    }

    #[test]
    fn replica_set_rows() {
        let rs = workload(
            json!({"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4f"}},
                   "template": template()}),
            json!({"replicas": 2, "readyReplicas": 1}),
        );
        assert_eq!(
            Value::Array(cells("ReplicaSet", rs)),
            json!([
                "web",
                2,
                2,
                1,
                "5d",
                "nginx,sidecar",
                "nginx:1.27,envoy:1.30",
                "app=web,pod-template-hash=5d4f"
            ])
        );
        let rs = workload(json!({"selector": {}}), json!({}));
        assert_eq!(
            Value::Array(cells("ReplicaSet", rs)),
            json!(["web", 1, 0, 0, "5d", "", "", "<none>"])
        );
    }

    #[test]
    fn job_rows() {
        let selector = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}});
        let done = workload(
            json!({"completions": 3, "parallelism": 2, "selector": selector, "template": template()}),
            json!({"succeeded": 3, "startTime": ago(600), "completionTime": ago(470),
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                  {"type": "Complete", "status": "True"}]}),
        );
        assert_eq!(
            Value::Array(cells("Job", done)),
            json!([
                "web",
                "Complete",
                "3/3",
                "2m10s",
                "5d",
                "nginx,sidecar",
                "nginx:1.27,envoy:1.30",
                "batch.kubernetes.io/controller-uid=abc"
            ])
        );
        let running = workload(
            json!({"parallelism": 4}),
            json!({"succeeded": 1, "startTime": ago(75)}),
        );
        let c = cells("Job", running);
        assert_eq!(
            (c[1].clone(), c[2].clone(), c[3].clone()),
            (json!("Running"), json!("1/1 of 4"), json!("75s"))
        );
        let c = cells("Job", workload(json!({}), json!({})));
        assert_eq!(
            (c[1].clone(), c[2].clone(), c[3].clone(), c[7].clone()),
            (json!("Running"), json!("0/1"), json!(""), json!("<none>"))
        );
        for (conditions, want) in [
            (json!([{"type": "Failed", "status": "True"}]), "Failed"),
            (
                json!([{"type": "Suspended", "status": "True"}]),
                "Suspended",
            ),
            (
                json!([{"type": "FailureTarget", "status": "True"}]),
                "FailureTarget",
            ),
            (
                json!([{"type": "Complete", "status": "False"}, {"type": "Complete", "status": "True"}]),
                "Running",
            ),
        ] {
            let job = workload(json!({"completions": 1}), json!({"conditions": conditions}));
            assert_eq!(cells("Job", job)[1], want);
        }
        let mut deleting = workload(
            json!({}),
            json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
        );
        deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(cells("Job", deleting)[1], "Terminating");
    }

    // ---- label selectors -----------------------------------------------------------------

    #[test]
    fn label_selectors_format_like_metav1() {
        let f = |v: Value| format_label_selector(Some(&v));
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(f(json!({})), "<none>");
        assert_eq!(f(json!({"matchLabels": {"b": "2", "a": "1"}})), "a=1,b=2");
        assert_eq!(
            f(json!({"matchExpressions": [
                {"key": "z", "operator": "Exists"},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "gpu", "operator": "DoesNotExist"},
                {"key": "tier", "operator": "In", "values": ["b", "a", "c"]},
            ]})),
            "env notin (prod),!gpu,tier in (a,b,c),z"
        );
        assert_eq!(
            f(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})),
            "<error>"
        );
        assert_eq!(
            f(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})),
            "<error>"
        );
        assert_eq!(f(json!({"matchLabels": {"bad key": "x"}})), "<error>");
        assert_eq!(f(json!({"matchLabels": {"a": "-bad"}})), "<error>");
        assert_eq!(
            f(json!({"matchLabels": {"example.com/app": "web", "Ex.com/a": "b"}})),
            "<error>"
        );
        assert_eq!(
            f(json!({"matchLabels": {"example.com/app": "web"}})),
            "example.com/app=web"
        );
        assert_eq!(f(json!({"matchLabels": {"a": ""}})), "a=");
        assert_eq!(f(json!({"matchLabels": {"a": 1}})), "<error>");
        assert_eq!(f(json!("garbage")), "<none>");
        // labels.FormatLabels sorts the "k=v" strings, not the keys.
        let m = json!({"a": "1", "a.b": "2"});
        assert_eq!(format_labels(m.as_object()), "a.b=2,a=1");
        assert_eq!(format_labels(None), "<none>");
    }

    // ---- custom resources ----------------------------------------------------------------

    #[test]
    fn pod_group_and_default_columns() {
        let pg = json!({
            "apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
            "metadata": {"name": "train", "creationTimestamp": ago(3 * 3600)},
            "spec": {"minMember": 4, "scheduleTimeoutSeconds": 60},
            "status": {"phase": "Running", "running": 4, "succeeded": 0},
        });
        assert_eq!(
            Value::Array(cells("PodGroup", pg)),
            json!(["train", "Running", 4, 4, 0, null, "3h"])
        );
        let t = render("PodGroup", &[]);
        assert_eq!(
            t["columnDefinitions"][2],
            json!({"name": "MinMember", "type": "integer", "format": "",
                   "description": "MinMember defines the minimal number of members/tasks to run the pod group.",
                   "priority": 0})
        );
        let bare = json!({"metadata": {"name": "pg"}, "status": {"phase": 3, "running": "x"}});
        assert_eq!(
            Value::Array(cells("PodGroup", bare)),
            json!(["pg", "3", null, null, null, null, null])
        );
        let bad_date = json!({"metadata": {"name": "pg", "creationTimestamp": "yesterday"}});
        assert_eq!(cells("PodGroup", bad_date)[6], "<invalid>");

        let widget = json!({"metadata": {"name": "w", "creationTimestamp": ago(42)}});
        assert_eq!(Value::Array(cells("Widget", widget)), json!(["w", "42s"]));
        assert_eq!(Value::Array(cells("Widget", json!({}))), json!(["", null]));
        let age_col = &render("Widget", &[])["columnDefinitions"][1];
        assert_eq!(age_col["type"], "date");
        assert_eq!(age_col["description"], DOC_CREATION_TIMESTAMP);
    }

    // ---- garbage in, rows out ------------------------------------------------------------

    #[test]
    fn garbage_gives_rows_not_panics() {
        let garbage = [
            json!(null),
            json!(42),
            json!("pod"),
            json!([1, 2, 3]),
            json!({}),
            json!({"metadata": "x", "spec": [1], "status": "y"}),
            json!({"metadata": {"name": 7, "creationTimestamp": 5, "deletionTimestamp": false,
                                "labels": ["a"]},
                   "spec": {"containers": {"a": 1}, "initContainers": [null, 3, {"restartPolicy": 1}],
                            "replicas": "three", "completions": "x", "selector": [],
                            "ports": [{"port": "80", "nodePort": -5}, null], "type": 5,
                            "readinessGates": [7], "unschedulable": "yes", "holderIdentity": 9,
                            "template": {"spec": {"containers": [null, {"name": 1}]}}},
                   "status": {"containerStatuses": [null, 1, {"state": "run", "lastState": {"terminated": 1}}],
                              "initContainerStatuses": [{"state": {"terminated": {"exitCode": "1"}}}],
                              "conditions": {"type": "Ready"}, "podIPs": [5], "phase": ["x"],
                              "loadBalancer": {"ingress": "x"}, "addresses": [{"type": 1}],
                              "nodeInfo": 4, "startTime": "not a time", "series": 5},
                   "subsets": [{"addresses": "x", "ports": [{}]}, 4],
                   "data": ["a"], "binaryData": 3, "involvedObject": 5,
                   "firstTimestamp": "garbage", "count": -3}),
            json!({"metadata": {"name": "big"}, "status": {"containerStatuses": [
                {"restartCount": 1e300, "lastState": {"terminated": {"finishedAt": "0001-01-01T00:00:00Z"}}},
                {"restartCount": u64::MAX}]},
                "spec": {"replicas": -1e300, "completions": 1.5}}),
        ];
        for kind in ALL_KINDS {
            let width = columns(kind).len();
            for include in [
                IncludeObject::None,
                IncludeObject::Metadata,
                IncludeObject::Object,
            ] {
                let t = table(kind, &garbage, now(), include);
                let rows = t["rows"].as_array().unwrap();
                assert_eq!(rows.len(), garbage.len(), "{kind}");
                for row in rows {
                    assert_eq!(
                        row["cells"].as_array().unwrap().len(),
                        width,
                        "{kind}: {row}"
                    );
                }
            }
        }
        // A few concrete readings of nonsense.
        let c = cells("Pod", garbage[0].clone());
        assert_eq!(
            Value::Array(c),
            json!([
                "",
                "0/0",
                "",
                "0",
                "<unknown>",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ])
        );
        // Init statuses with a non-numeric exit code read as 0 (done); the pod's
        // deletionTimestamp is set (to something), so it is Terminating.
        let c = cells("Pod", garbage[6].clone());
        assert_eq!(c[1], "0/0");
        assert_eq!(c[2], "Terminating");
        assert_eq!(c[3], "0");
        let c = cells("Pod", garbage[7].clone());
        assert_eq!(c[3], i64::MAX.to_string());
    }

    #[test]
    fn every_cell_matches_its_column_count_for_realistic_objects() {
        let pod = pod(
            json!({"containers": containers(1)}),
            json!({"phase": "Running"}),
        );
        for kind in ALL_KINDS {
            let t = render(kind, &[pod.clone(), pod.clone()]);
            assert_eq!(t["rows"].as_array().unwrap().len(), 2);
            let width = t["columnDefinitions"].as_array().unwrap().len();
            assert_eq!(
                t["rows"][1]["cells"].as_array().unwrap().len(),
                width,
                "{kind}"
            );
        }
    }
}
