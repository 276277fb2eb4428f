//! Kubernetes objects to model objects: Node, Pod, the pods of a Deployment or Job, and
//! the PriorityClass and PodGroup records that are resolved once every file is read.

use super::error::ferr;
use super::fields::{CONTAINER_FIELDS, NODE_SPEC_FIELDS, POD_SPEC_FIELDS};
use super::k8s;
use super::limits;
use super::value::*;
use crate::model::quantity::MAX_AMOUNT;
use crate::model::resources::NVIDIA_GPU;
use crate::model::{
    GpuAmount, GpuRequest, Labels, Node, NodeGpus, Pod, Resources, Taint, MAX_GPUS_PER_NODE,
    MILLI_PER_GPU,
};
use serde_yaml::{Mapping, Value};

/// Pod annotation: a share of one GPU in milli-GPU (1–999).
pub const GPU_MILLI_ANNOTATION: &str = "plimsoll.io/gpu-milli";
/// Pod annotation: allowed GPU models separated by `|`; node label: the node's GPU model.
pub const GPU_MODEL_KEY: &str = "plimsoll.io/gpu-model";
/// Node label set by NVIDIA GPU feature discovery, naming the GPU model.
pub const GPU_PRODUCT_LABEL: &str = "nvidia.com/gpu.product";
/// Pod label naming its coscheduling PodGroup (scheduler-plugins).
pub const POD_GROUP_LABEL: &str = "scheduling.x-k8s.io/pod-group";
/// The older spelling of [`POD_GROUP_LABEL`], also accepted.
pub const POD_GROUP_LABEL_LEGACY: &str = "pod-group.scheduling.sigs.k8s.io";
/// Pods a node may hold when its manifest gives no `pods` capacity (kubelet default).
pub const DEFAULT_MAX_PODS: u64 = 110;
/// Largest number of pods one Deployment (`spec.replicas`) or Job (`spec.parallelism`;
/// `completions` only lowers it) may expand into; larger values are an error naming
/// the field, before any pod is made.
pub const MAX_REPLICAS: i64 = 100_000;
/// Largest number of pods one load of manifests (every file of a `plimsoll place`, one
/// extender snapshot) may hold, Deployment and Job pods included: Kubernetes' own
/// scalability limit of 150,000 pods per cluster. With names bounded by 253
/// characters this bounds the memory a small input can claim (100,000 replicas of a
/// 253-character name: 0.7 s and 290 MB).
pub const MAX_PODS: usize = 150_000;

/// `metadata` of an object or a pod template.
#[derive(Debug, Default, Clone)]
pub(crate) struct Meta {
    pub name: String,
    pub namespace: String,
    pub labels: Labels,
    pub annotations: Labels,
}

/// Reads `metadata`; `name` is required unless `template`.
pub(crate) fn meta(v: Option<&Value>, path: &str, template: bool) -> R<Meta> {
    let m = match v {
        Some(v) => map(v, path)?,
        None => None,
    };
    let name = opt_string(m, "name", path)?.unwrap_or_default();
    if name.is_empty() && !template {
        return Err(ferr(&join(path, "name"), "required"));
    }
    limits::check_name(&name, &join(path, "name"))?;
    let namespace = opt_string(m, "namespace", path)?
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    limits::check_namespace(&namespace, &join(path, "namespace"))?;
    let lp = join(path, "labels");
    let labels = string_map(get(m, "labels"), &lp)?;
    for (k, v) in &labels {
        limits::check_label(k, v, &lp)?;
    }
    Ok(Meta {
        name,
        namespace,
        labels,
        annotations: string_map(get(m, "annotations"), &join(path, "annotations"))?,
    })
}

/// A pod before priority classes and pod groups are resolved.
#[derive(Debug, Clone)]
pub(crate) struct PodDraft {
    pub pod: Pod,
    /// `spec.priorityClassName`.
    pub priority_class: Option<String>,
    /// `spec.priority`, if written.
    pub explicit_priority: Option<i32>,
    /// Pod group named by the label, if any.
    pub group: Option<String>,
}

/// Reads a pod spec plus its metadata into a draft pod named `meta.name`.
pub(crate) fn pod(meta: &Meta, spec: Option<&Value>, base: &str) -> R<PodDraft> {
    let sp = join(base, "spec");
    let spec = spec.ok_or_else(|| ferr(&sp, "required"))?;
    let m = map(spec, &sp)?;
    check_keys(m, &sp, POD_SPEC_FIELDS)?;
    if get(m, "resources").is_some() {
        return Err(ferr(
            &join(&sp, "resources"),
            "pod-level resources are not supported; set them per container",
        ));
    }
    let host_network = opt_bool(m, "hostNetwork", &sp)?.unwrap_or(false);
    let mut host_ports = Vec::new();
    let cp = join(&sp, "containers");
    let containers = seq(get(m, "containers"), &cp)?;
    if containers.is_empty() {
        return Err(ferr(&cp, "at least one container is required"));
    }
    let mut sum = Resources::default();
    for (i, c) in containers.iter().enumerate() {
        let (r, ports) = container(c, &index(&cp, i), host_network)?;
        add_checked(&mut sum, &r, &index(&cp, i))?;
        host_ports.extend(ports);
    }
    let ip = join(&sp, "initContainers");
    let mut init_max = Resources::default();
    let mut sidecars = Resources::default();
    for (i, c) in seq(get(m, "initContainers"), &ip)?.iter().enumerate() {
        let p = index(&ip, i);
        let (r, ports) = container(c, &p, host_network)?;
        host_ports.extend(ports);
        let restart = opt_string(map(c, &p)?, "restartPolicy", &p)?;
        // Kubernetes' PodRequests: a restartable init container (sidecar) runs beside
        // everything after it; a plain one runs alone with the sidecars started before it.
        let candidate = if restart.as_deref() == Some("Always") {
            add_checked(&mut sum, &r, &p)?;
            add_checked(&mut sidecars, &r, &p)?;
            sidecars.clone()
        } else {
            let mut c = r;
            add_checked(&mut c, &sidecars, &p)?;
            c
        };
        init_max = k8s::max_resources(&init_max, &candidate);
    }
    let mut requests = k8s::max_resources(&sum, &init_max);
    let op = join(&sp, "overhead");
    let overhead = k8s::resource_list(get(m, "overhead"), &op, false)?;
    add_checked(&mut requests, &overhead, &op)?;
    requests.pods = 1;
    let whole = requests.extended.remove(NVIDIA_GPU).unwrap_or(0);
    let gpu = gpu_request(meta, whole, &sp, base)?;
    let affinity = super::affinity::affinity(get(m, "affinity"), &join(&sp, "affinity"))?;
    let labels = meta.labels.clone();
    let group = labels
        .get(POD_GROUP_LABEL)
        .or_else(|| labels.get(POD_GROUP_LABEL_LEGACY))
        .cloned();
    let pod = Pod {
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        labels,
        requests,
        gpu,
        node_name: opt_string(m, "nodeName", &sp)?.filter(|n| !n.is_empty()),
        gpu_devices: Vec::new(),
        node_selector: string_map(get(m, "nodeSelector"), &join(&sp, "nodeSelector"))?,
        required_node_affinity: affinity.required,
        preferred_node_affinity: affinity.preferred,
        tolerations: k8s::tolerations(get(m, "tolerations"), &join(&sp, "tolerations"))?,
        pod_affinity: affinity.pod_affinity,
        pod_anti_affinity: affinity.pod_anti_affinity,
        topology_spread: k8s::spread(
            get(m, "topologySpreadConstraints"),
            &join(&sp, "topologySpreadConstraints"),
        )?,
        host_ports,
        priority: 0,
        gang: None,
    };
    Ok(PodDraft {
        pod,
        priority_class: opt_string(m, "priorityClassName", &sp)?.filter(|n| !n.is_empty()),
        explicit_priority: opt_int_in(
            m,
            "priority",
            &sp,
            i64::from(i32::MIN),
            i64::from(i32::MAX),
        )?
        .map(|p| p as i32),
        group,
    })
}

/// Adds one container's (or the overhead's) requests to a pod's running sum; a sum
/// beyond [`MAX_AMOUNT`] (2^62 of the resource's unit) is an error naming the resource,
/// so no later sum over pods can wrap.
fn add_checked(sum: &mut Resources, r: &Resources, path: &str) -> R<()> {
    sum.checked_add(r).map_err(|name| {
        ferr(
            &join(path, "resources"),
            format!("the pod's total {name} request is larger than {MAX_AMOUNT} (2^62) units"),
        )
    })
}

/// One container's requests (limits standing in for missing requests) and host ports.
fn container(
    v: &Value,
    path: &str,
    host_network: bool,
) -> R<(Resources, Vec<crate::model::HostPort>)> {
    let m = map(v, path)?;
    check_keys(m, path, CONTAINER_FIELDS)?;
    if opt_string(m, "name", path)?
        .filter(|n| !n.is_empty())
        .is_none()
    {
        return Err(ferr(&join(path, "name"), "required"));
    }
    let r = k8s::container_resources(get(m, "resources"), &join(path, "resources"))?;
    let ports = k8s::host_ports(get(m, "ports"), &join(path, "ports"), host_network)?;
    Ok((r, ports))
}

/// The GPU request from `nvidia.com/gpu` and the `plimsoll.io/` annotations.
fn gpu_request(meta: &Meta, whole: u64, spec_path: &str, base: &str) -> R<GpuRequest> {
    let ap = |k: &str| format!("{}[\"{k}\"]", join(base, "metadata.annotations"));
    for k in meta.annotations.keys() {
        if k.starts_with("plimsoll.io/") && k != GPU_MILLI_ANNOTATION && k != GPU_MODEL_KEY {
            return Err(ferr(&ap(k), format!("unknown Plimsoll annotation; expected {GPU_MILLI_ANNOTATION} or {GPU_MODEL_KEY}")));
        }
    }
    let whole = u32::try_from(whole)
        .ok()
        .filter(|w| *w <= 1024)
        .ok_or_else(|| {
            ferr(
                &join(spec_path, "containers"),
                format!("{whole} GPUs ({NVIDIA_GPU}) is more than any node has"),
            )
        })?;
    let amount = match meta.annotations.get(GPU_MILLI_ANNOTATION) {
        Some(s) => {
            let milli: u32 = s
                .trim()
                .parse()
                .ok()
                .filter(|m| (1..MILLI_PER_GPU).contains(m))
                .ok_or_else(|| {
                    let msg = format!(
                        "{s:?} must be an integer from 1 to 999 (a share of one GPU; \
                         request whole GPUs with {NVIDIA_GPU})"
                    );
                    ferr(&ap(GPU_MILLI_ANNOTATION), msg)
                })?;
            if whole > 1 {
                return Err(ferr(
                    &ap(GPU_MILLI_ANNOTATION),
                    format!("a GPU share cannot be combined with {NVIDIA_GPU}: {whole}"),
                ));
            }
            GpuAmount::Shared(milli)
        }
        None if whole > 0 => GpuAmount::Whole(whole),
        None => GpuAmount::None,
    };
    let models = match meta.annotations.get(GPU_MODEL_KEY) {
        None => Vec::new(),
        Some(s) => {
            let models: Vec<String> = s.split('|').map(|m| m.trim().to_string()).collect();
            if models.iter().any(String::is_empty) {
                return Err(ferr(&ap(GPU_MODEL_KEY), format!("{s:?}: empty model name")));
            }
            if !amount.is_some() {
                return Err(ferr(
                    &ap(GPU_MODEL_KEY),
                    "a GPU model constraint needs a GPU request",
                ));
            }
            models
        }
    };
    Ok(GpuRequest { amount, models })
}

/// Reads a v1 Node. Warnings go to `warn`.
pub(crate) fn node(obj: &Mapping, base: &str, warn: &mut Vec<String>) -> R<Node> {
    let meta = meta(obj.get("metadata"), &join(base, "metadata"), false)?;
    let sp = join(base, "spec");
    let spec = match get(Some(obj), "spec") {
        Some(v) => map(v, &sp)?,
        None => None,
    };
    check_keys(spec, &sp, NODE_SPEC_FIELDS)?;
    let tp = join(&sp, "taints");
    let mut taints = Vec::new();
    for (i, t) in seq(get(spec, "taints"), &tp)?.iter().enumerate() {
        let p = index(&tp, i);
        let m = map(t, &p)?;
        check_keys(m, &p, &["effect", "key", "timeAdded", "value"])?;
        let key = opt_string(m, "key", &p)?
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ferr(&join(&p, "key"), "required"))?;
        let effect =
            opt_string(m, "effect", &p)?.ok_or_else(|| ferr(&join(&p, "effect"), "required"))?;
        taints.push(Taint {
            key,
            value: opt_string(m, "value", &p)?.unwrap_or_default(),
            effect: k8s::taint_effect(&effect, &join(&p, "effect"))?,
        });
    }
    let stp = join(base, "status");
    let status = match get(Some(obj), "status") {
        Some(v) => map(v, &stp)?,
        None => None,
    };
    let cap_v = get(status, "capacity");
    let alloc_v = get(status, "allocatable");
    let mut capacity = k8s::resource_list(cap_v, &join(&stp, "capacity"), true)?;
    let pods_written = |v: Option<&Value>| {
        v.and_then(Value::as_mapping)
            .is_some_and(|m| m.contains_key("pods"))
    };
    k8s::resource_list(alloc_v, &join(&stp, "allocatable"), true)?;
    // Allocatable falls back to capacity resource by resource.
    let mut merged = cap_v
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    for (k, v) in alloc_v.and_then(Value::as_mapping).into_iter().flatten() {
        merged.insert(k.clone(), v.clone());
    }
    let mut allocatable = k8s::resource_list(
        Some(&Value::Mapping(merged)),
        &join(&stp, "allocatable"),
        true,
    )?;
    // Only an absent `pods` defaults; an explicit "0" means no pod fits.
    if !pods_written(cap_v) {
        capacity.pods = DEFAULT_MAX_PODS;
    }
    if !pods_written(cap_v) && !pods_written(alloc_v) {
        allocatable.pods = DEFAULT_MAX_PODS;
    }
    capacity.extended.remove(NVIDIA_GPU);
    let count = allocatable.extended.remove(NVIDIA_GPU).unwrap_or(0);
    let count = u32::try_from(count)
        .ok()
        .filter(|c| *c <= MAX_GPUS_PER_NODE)
        .ok_or_else(|| {
            let written = if alloc_v.and_then(|v| v.get(NVIDIA_GPU)).is_some() {
                "allocatable"
            } else {
                "capacity"
            };
            ferr(
                &format!("{}[\"{NVIDIA_GPU}\"]", join(&stp, written)),
                format!("{count} GPUs; a node may have at most {MAX_GPUS_PER_NODE}"),
            )
        })?;
    let gpus = (count > 0).then(|| {
        let model = meta
            .labels
            .get(GPU_MODEL_KEY)
            .or_else(|| meta.labels.get(GPU_PRODUCT_LABEL))
            .cloned()
            .unwrap_or_else(|| {
                warn.push(format!("node has {count} GPUs but no {GPU_PRODUCT_LABEL} or {GPU_MODEL_KEY} label; model set to \"unknown\""));
                "unknown".into()
            });
        NodeGpus { model, count }
    });
    Ok(Node {
        name: meta.name,
        capacity,
        allocatable,
        gpus,
        labels: meta.labels,
        taints,
        unschedulable: opt_bool(spec, "unschedulable", &sp)?.unwrap_or(false),
    })
}

/// Reads a pod template (`metadata`, `spec`) and stamps out `n` pods named `NAME-i`.
fn expand(
    owner: &Meta,
    template: Option<&Value>,
    tp: &str,
    n: i64,
    extra_labels: &[(&str, &str)],
) -> R<Vec<PodDraft>> {
    let t = template.ok_or_else(|| ferr(tp, "required"))?;
    let tm = map(t, tp)?;
    check_keys(tm, tp, &["metadata", "spec"])?;
    let mut m = meta(get(tm, "metadata"), &join(tp, "metadata"), true)?;
    m.namespace = owner.namespace.clone();
    for (k, v) in extra_labels {
        m.labels.insert((*k).into(), (*v).into());
    }
    let draft = pod(&m, get(tm, "spec"), tp)?;
    Ok((0..n)
        .map(|i| {
            let mut d = draft.clone();
            d.pod.name = format!("{}-{i}", owner.name);
            d
        })
        .collect())
}

/// Reads an apps/v1 Deployment into `spec.replicas` pods (default 1).
pub(crate) fn deployment(obj: &Mapping, base: &str) -> R<Vec<PodDraft>> {
    let owner = meta(obj.get("metadata"), &join(base, "metadata"), false)?;
    let sp = join(base, "spec");
    let spec = map(
        get(Some(obj), "spec").ok_or_else(|| ferr(&sp, "required"))?,
        &sp,
    )?;
    check_keys(
        spec,
        &sp,
        &[
            "minReadySeconds",
            "paused",
            "progressDeadlineSeconds",
            "replicas",
            "revisionHistoryLimit",
            "selector",
            "strategy",
            "template",
        ],
    )?;
    let n = opt_int_in(spec, "replicas", &sp, 0, MAX_REPLICAS)?.unwrap_or(1);
    let selp = join(&sp, "selector");
    let sel = super::affinity::label_selector(
        get(spec, "selector").ok_or_else(|| ferr(&selp, "required"))?,
        &selp,
    )?;
    let pods = expand(
        &owner,
        get(spec, "template"),
        &join(&sp, "template"),
        n.max(1),
        &[],
    )?;
    if !sel.matches(&pods[0].pod.labels) {
        return Err(ferr(
            &selp,
            "does not match the template's labels (spec.template.metadata.labels)",
        ));
    }
    Ok(pods.into_iter().take(n as usize).collect())
}

/// Reads a batch/v1 Job into `spec.parallelism` pods (default 1), at most `completions`.
pub(crate) fn job(obj: &Mapping, base: &str) -> R<Vec<PodDraft>> {
    let owner = meta(obj.get("metadata"), &join(base, "metadata"), false)?;
    let sp = join(base, "spec");
    let spec = map(
        get(Some(obj), "spec").ok_or_else(|| ferr(&sp, "required"))?,
        &sp,
    )?;
    check_keys(
        spec,
        &sp,
        &[
            "activeDeadlineSeconds",
            "backoffLimit",
            "backoffLimitPerIndex",
            "completionMode",
            "completions",
            "managedBy",
            "manualSelector",
            "maxFailedIndexes",
            "parallelism",
            "podFailurePolicy",
            "podReplacementPolicy",
            "selector",
            "successPolicy",
            "suspend",
            "template",
            "ttlSecondsAfterFinished",
        ],
    )?;
    let mut n = opt_int_in(spec, "parallelism", &sp, 0, MAX_REPLICAS)?.unwrap_or(1);
    if let Some(c) = opt_int_in(spec, "completions", &sp, 0, i64::from(i32::MAX))? {
        n = n.min(c);
    }
    if opt_bool(spec, "suspend", &sp)?.unwrap_or(false) {
        n = 0;
    }
    let name = owner.name.clone();
    let extra = [
        ("job-name", name.as_str()),
        ("batch.kubernetes.io/job-name", name.as_str()),
    ];
    let pods = expand(
        &owner,
        get(spec, "template"),
        &join(&sp, "template"),
        n.max(1),
        &extra,
    )?;
    Ok(pods.into_iter().take(n as usize).collect())
}

/// A scheduling.k8s.io/v1 PriorityClass.
#[derive(Debug, Clone)]
pub(crate) struct PriorityClass {
    pub name: String,
    pub value: i32,
    pub global_default: bool,
}

/// The largest value a user-defined PriorityClass may have (Kubernetes).
pub const MAX_USER_PRIORITY: i64 = 1_000_000_000;

/// Reads a PriorityClass (fields at the top level, as Kubernetes has them).
pub(crate) fn priority_class(obj: &Mapping, base: &str) -> R<PriorityClass> {
    check_keys(
        Some(obj),
        base,
        &[
            "apiVersion",
            "description",
            "globalDefault",
            "kind",
            "metadata",
            "preemptionPolicy",
            "value",
        ],
    )?;
    let m = meta(obj.get("metadata"), &join(base, "metadata"), false)?;
    let value = opt_int_in(
        Some(obj),
        "value",
        base,
        i64::from(i32::MIN),
        MAX_USER_PRIORITY,
    )?
    .ok_or_else(|| ferr(&join(base, "value"), "required"))?;
    if let Some(p) = opt_string(Some(obj), "preemptionPolicy", base)? {
        if p != "PreemptLowerPriority" && p != "Never" {
            return Err(ferr(
                &join(base, "preemptionPolicy"),
                format!("invalid value {p:?}; expected PreemptLowerPriority or Never"),
            ));
        }
    }
    Ok(PriorityClass {
        name: m.name,
        value: value as i32,
        global_default: opt_bool(Some(obj), "globalDefault", base)?.unwrap_or(false),
    })
}

/// A coscheduling PodGroup.
#[derive(Debug, Clone)]
pub(crate) struct PodGroup {
    pub namespace: String,
    pub name: String,
    pub min_member: u32,
}

/// Reads a PodGroup (`spec.minMember`).
pub(crate) fn pod_group(obj: &Mapping, base: &str) -> R<PodGroup> {
    let m = meta(obj.get("metadata"), &join(base, "metadata"), false)?;
    let sp = join(base, "spec");
    let spec = map(
        get(Some(obj), "spec").ok_or_else(|| ferr(&sp, "required"))?,
        &sp,
    )?;
    check_keys(
        spec,
        &sp,
        &["minMember", "minResources", "scheduleTimeoutSeconds"],
    )?;
    let min_member = opt_int_in(spec, "minMember", &sp, 1, MAX_REPLICAS)?
        .ok_or_else(|| ferr(&join(&sp, "minMember"), "required"))?;
    Ok(PodGroup {
        namespace: m.namespace,
        name: m.name,
        min_member: min_member as u32,
    })
}
