//! Kubernetes manifests (YAML or JSON, multi-document, `List` kinds) and openb CSV traces
//! read into model [`Node`]s and [`Pod`]s.
//!
//! Supported kinds: v1 `Node`, `Pod`, `List`, `NodeList`, `PodList`; apps/v1 `Deployment`
//! (expanded into `spec.replicas` pods named `NAME-0`, `NAME-1`, …); batch/v1 `Job`
//! (`spec.parallelism` pods, at most `completions`); scheduling.k8s.io/v1
//! `PriorityClass` (resolves `priorityClassName`, `globalDefault`); and the
//! coscheduling `PodGroup` (scheduling.x-k8s.io/v1alpha1, `spec.minMember`; pods join with
//! the label `scheduling.x-k8s.io/pod-group`). The conventions, GPU annotations and
//! every error case are described in `docs/manifests.md`.
//!
//! This module owns reading and validating input at the edge; it never places pods.
//! Every error names the file, the 1-based document, the object, the line where it can
//! be found, and the field path in Kubernetes spelling.

mod affinity;
mod convert;
mod depth;
mod error;
mod fields;
mod k8s;
mod limits;
mod resolve;
mod value;

pub use convert::{
    DEFAULT_MAX_PODS, GPU_MILLI_ANNOTATION, GPU_MODEL_KEY, GPU_PRODUCT_LABEL, MAX_PODS,
    MAX_REPLICAS, MAX_USER_PRIORITY, POD_GROUP_LABEL, POD_GROUP_LABEL_LEGACY,
};
pub use depth::MAX_NESTING_DEPTH;
pub use error::{InvalidManifest, ManifestError};
pub use fields::{CONTAINER_FIELDS, NODE_SPEC_FIELDS, POD_SPEC_FIELDS};
pub use limits::{MAX_LABEL_VALUE_LEN, MAX_NAME_LEN};

use crate::model::{Node, Pod};
use crate::records::openb::{self, OpenbKind};
use convert::{PodDraft, PodGroup, PriorityClass};
use error::{doc_spans, find_line, DocSpan, FieldError};
use serde::Deserialize;
use serde_yaml::Value;
use std::path::Path;
use std::sync::Arc;
use value::{get, index, join, map, opt_string, seq};

/// Nodes and pods read from files (pods with `node_name` are bound, the rest pending).
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Nodes in input order.
    pub nodes: Vec<Node>,
    /// Pods in input order (Deployment and Job pods in index order).
    pub pods: Vec<Pod>,
    /// Things accepted but worth knowing (skipped finished pods, unknown GPU models, …),
    /// each naming its file and document.
    pub warnings: Vec<String>,
}

/// Kinds Plimsoll reads, with the apiVersions accepted for each.
pub const SUPPORTED_KINDS: &[(&str, &[&str])] = &[
    ("Node", &["v1"]),
    ("Pod", &["v1"]),
    ("Deployment", &["apps/v1"]),
    ("Job", &["batch/v1"]),
    ("PriorityClass", &["scheduling.k8s.io/v1"]),
    (
        "PodGroup",
        &[
            "scheduling.x-k8s.io/v1alpha1",
            "scheduling.sigs.k8s.io/v1alpha1",
        ],
    ),
    ("List", &["v1"]),
    ("NodeList", &["v1"]),
    ("PodList", &["v1"]),
];

/// Priority classes every cluster has.
const BUILTIN_CLASSES: &[(&str, i32)] = &[
    ("system-cluster-critical", 2_000_000_000),
    ("system-node-critical", 2_000_001_000),
];

/// Reads Kubernetes YAML/JSON manifests and openb CSV files (`*.csv`: node or pod list,
/// told apart by the header), then resolves priority classes and pod groups across all
/// of them.
pub fn load_files<P: AsRef<Path>>(paths: &[P]) -> Result<Loaded, ManifestError> {
    let mut c = Collector::default();
    for p in paths {
        let path = p.as_ref();
        let file: Arc<str> = path.display().to_string().into();
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            let origin = Origin::file(file);
            match openb::classify_file(path)? {
                OpenbKind::Nodes => {
                    for n in openb::load_nodes(path)? {
                        c.nodes.push((n, origin.clone()));
                    }
                }
                OpenbKind::Pods => {
                    for p in openb::load_pods(path)? {
                        let d = PodDraft {
                            pod: p,
                            priority_class: None,
                            explicit_priority: None,
                            group: None,
                        };
                        c.pods.push((d, origin.clone()));
                    }
                }
            }
        } else {
            let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
                file: file.to_string(),
                source,
            })?;
            c.parse_text(&text, file)?;
        }
    }
    c.resolve()
}

/// Reads manifests (YAML or JSON) from a string; `source_name` names it in errors.
pub fn load_str(text: &str, source_name: &str) -> Result<Loaded, ManifestError> {
    let mut c = Collector::default();
    c.parse_text(text, source_name.into())?;
    c.resolve()
}

/// Where an object came from, enough to build an error pointing at a field of it.
#[derive(Debug, Clone)]
struct Origin {
    file: Arc<str>,
    document: Option<usize>,
    object: Option<String>,
    /// Path prefix of the object (`items[2]` inside a list).
    base: String,
    /// Path prefix of the pod (`spec.template` for a Deployment's pods).
    pod_base: String,
    lines: Option<(Arc<Vec<String>>, DocSpan)>,
}

impl Origin {
    fn file(file: Arc<str>) -> Self {
        Origin {
            file,
            document: None,
            object: None,
            base: String::new(),
            pod_base: String::new(),
            lines: None,
        }
    }

    fn error(&self, e: FieldError) -> ManifestError {
        let line = self.lines.as_ref().and_then(|(lines, span)| {
            let l: Vec<&str> = lines.iter().map(String::as_str).collect();
            // A missing field has no line of its own: point at the object holding it.
            let at = if e.msg.starts_with("required") {
                e.path.rsplit_once('.').map_or("", |(parent, _)| parent)
            } else {
                e.path.as_str()
            };
            find_line(&l, *span, at)
                .or_else(|| find_line(&l, *span, &self.base).filter(|_| !self.base.is_empty()))
        });
        InvalidManifest {
            file: self.file.to_string(),
            document: self.document,
            object: self.object.clone(),
            line,
            field: Some(e.path).filter(|p| !p.is_empty()),
            message: e.msg,
        }
        .into()
    }

    fn describe(&self) -> String {
        let mut s = self.file.to_string();
        if let Some(d) = self.document {
            s.push_str(&format!(": document {d}"));
        }
        if let Some(o) = &self.object {
            s.push_str(&format!(" ({o})"));
        }
        s
    }
}

#[derive(Default)]
struct Collector {
    nodes: Vec<(Node, Origin)>,
    pods: Vec<(PodDraft, Origin)>,
    classes: Vec<(PriorityClass, Origin)>,
    groups: Vec<(PodGroup, Origin)>,
    warnings: Vec<String>,
}

fn supported_list() -> String {
    SUPPORTED_KINDS
        .iter()
        .map(|(k, v)| format!("{k} ({})", v.join(" or ")))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Collector {
    fn parse_text(&mut self, text: &str, file: Arc<str>) -> Result<(), ManifestError> {
        // Bounded before the YAML parser, whose cost grows with the square of the depth.
        if let Some((line, depth)) = depth::too_deep(text) {
            return Err(InvalidManifest {
                file: file.to_string(),
                document: None,
                object: None,
                line: Some(line),
                field: None,
                message: format!(
                    "nested {depth} levels deep; at most {MAX_NESTING_DEPTH} levels of \
                     mappings and lists are read"
                ),
            }
            .into());
        }
        let lines: Arc<Vec<String>> = Arc::new(text.lines().map(str::to_string).collect());
        let spans = doc_spans(text);
        let mut doc = 0;
        for de in serde_yaml::Deserializer::from_str(text) {
            // YAML merge keys (`<<: *defaults`) are resolved before anything is read.
            let v = Value::deserialize(de)
                .and_then(|mut v| v.apply_merge().map(|()| v))
                .map_err(|e| -> ManifestError {
                    InvalidManifest {
                        file: file.to_string(),
                        document: Some(doc + 1),
                        object: None,
                        line: e.location().map(|l| l.line()),
                        field: None,
                        message: format!("malformed YAML/JSON: {e}"),
                    }
                    .into()
                })?;
            if v.is_null() {
                continue;
            }
            doc += 1;
            let origin = Origin {
                file: file.clone(),
                document: Some(doc),
                object: None,
                base: String::new(),
                pod_base: String::new(),
                lines: spans.get(doc - 1).map(|s| (lines.clone(), *s)),
            };
            self.object(&v, origin, None)?;
        }
        Ok(())
    }

    /// Reads one object (or a list of them). `default_kind` is the item kind of a
    /// `NodeList`/`PodList`, whose items may omit `kind` and `apiVersion`.
    fn object(
        &mut self,
        v: &Value,
        mut origin: Origin,
        default_kind: Option<&str>,
    ) -> Result<(), ManifestError> {
        let base = origin.base.clone();
        let m = map(v, &base)
            .map_err(|e| origin.error(e))?
            .ok_or_else(|| origin.error(error::ferr(&base, "expected an object, found null")))?;
        let kind = opt_string(Some(m), "kind", &base)
            .map_err(|e| origin.error(e))?
            .or(default_kind.map(str::to_string));
        let Some(kind) = kind else {
            return Err(origin.error(error::ferr(
                &join(&base, "kind"),
                format!("required; supported kinds: {}", supported_list()),
            )));
        };
        let Some((_, versions)) = SUPPORTED_KINDS.iter().find(|(k, _)| *k == kind) else {
            return Err(origin.error(error::ferr(
                &join(&base, "kind"),
                format!(
                    "unknown kind {kind:?}; supported kinds: {}",
                    supported_list()
                ),
            )));
        };
        let api = opt_string(Some(m), "apiVersion", &base).map_err(|e| origin.error(e))?;
        let api = match (api, default_kind) {
            (Some(a), _) => a,
            (None, Some(_)) => versions[0].to_string(),
            (None, None) => {
                return Err(origin.error(error::ferr(
                    &join(&base, "apiVersion"),
                    format!("required; {kind} needs {}", versions.join(" or ")),
                )))
            }
        };
        if !versions.contains(&api.as_str()) {
            return Err(origin.error(error::ferr(
                &join(&base, "apiVersion"),
                format!(
                    "{kind} needs apiVersion {}, found {api:?}",
                    versions.join(" or ")
                ),
            )));
        }
        let md = get(Some(m), "metadata").and_then(Value::as_mapping);
        let name = md
            .and_then(|md| md.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>");
        let ns = md
            .and_then(|md| md.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        // An over-long name is reported by its field; the object is named by its head.
        let head: String;
        let name = if name.len() > MAX_NAME_LEN || ns.len() > MAX_NAME_LEN {
            head = format!("{}…", name.chars().take(40).collect::<String>());
            head.as_str()
        } else {
            name
        };
        let ns = if ns.len() > MAX_NAME_LEN { "…" } else { ns };
        origin.object = Some(match kind.as_str() {
            "Node" | "PriorityClass" => format!("{kind} {name}"),
            k if k.ends_with("List") => kind.clone(),
            _ => format!("{kind} {ns}/{name}"),
        });
        let err = |e: FieldError| origin.error(e);
        match kind.as_str() {
            "List" | "NodeList" | "PodList" => {
                if !base.is_empty() {
                    return Err(err(error::ferr(&base, "lists cannot be nested")));
                }
                let item_kind = match kind.as_str() {
                    "NodeList" => Some("Node"),
                    "PodList" => Some("Pod"),
                    _ => None,
                };
                let ip = join(&base, "items");
                for (i, item) in seq(get(Some(m), "items"), &ip)
                    .map_err(err)?
                    .iter()
                    .enumerate()
                {
                    let mut o = origin.clone();
                    o.base = index(&ip, i);
                    o.pod_base = o.base.clone();
                    if let (Some(k), Some(im)) = (item_kind, item.as_mapping()) {
                        if im
                            .get("kind")
                            .and_then(Value::as_str)
                            .is_some_and(|ik| ik != k)
                        {
                            return Err(o.error(error::ferr(
                                &join(&o.base, "kind"),
                                format!("a {kind} holds only {k} objects"),
                            )));
                        }
                    }
                    self.object(item, o, item_kind)?;
                }
            }
            "Node" => {
                let mut w = Vec::new();
                let n = convert::node(m, &base, &mut w).map_err(err)?;
                self.warnings
                    .extend(w.into_iter().map(|w| format!("{}: {w}", origin.describe())));
                self.nodes.push((n, origin));
            }
            "Pod" => {
                let meta = convert::meta(m.get("metadata"), &join(&base, "metadata"), false)
                    .map_err(err)?;
                let d = convert::pod(&meta, m.get("spec"), &base).map_err(err)?;
                let phase = get(Some(m), "status")
                    .and_then(|s| s.get("phase"))
                    .and_then(Value::as_str);
                if let Some(p @ ("Succeeded" | "Failed")) = phase {
                    self.warnings.push(format!(
                        "{}: skipped: status.phase is {p} (finished pods hold no resources)",
                        origin.describe()
                    ));
                } else if self.pods.len() >= MAX_PODS {
                    return Err(err(error::ferr(
                        &join(&base, "metadata.name"),
                        format!("more than {MAX_PODS} pods in the input"),
                    )));
                } else {
                    self.pods.push((d, origin));
                }
            }
            "Deployment" | "Job" => {
                let drafts = if kind == "Job" {
                    convert::job(m, &base)
                } else {
                    convert::deployment(m, &base)
                }
                .map_err(err)?;
                if self.pods.len() + drafts.len() > MAX_PODS {
                    let field = if kind == "Job" {
                        "parallelism"
                    } else {
                        "replicas"
                    };
                    return Err(err(error::ferr(
                        &join(&base, &format!("spec.{field}")),
                        format!(
                            "{} pods would make more than {MAX_PODS} pods in the input",
                            drafts.len()
                        ),
                    )));
                }
                origin.pod_base = join(&base, "spec.template");
                for d in drafts {
                    self.pods.push((d, origin.clone()));
                }
            }
            "PriorityClass" => {
                let pc = convert::priority_class(m, &base).map_err(err)?;
                self.classes.push((pc, origin));
            }
            "PodGroup" => {
                let g = convert::pod_group(m, &base).map_err(err)?;
                self.groups.push((g, origin));
            }
            _ => unreachable!("kind checked against SUPPORTED_KINDS"),
        }
        Ok(())
    }
}
