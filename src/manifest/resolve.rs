//! Cross-object checks once every file is read: duplicate names, priority classes
//! (`priorityClassName`, `globalDefault`, built-in classes) and coscheduling pod groups.

use super::convert::PriorityClass;
use super::error;
use super::value::join;
use super::{Collector, Loaded, ManifestError, Origin, BUILTIN_CLASSES, POD_GROUP_LABEL};
use crate::model::Gang;
use std::collections::BTreeMap;

impl Collector {
    /// Resolves names across all objects read: duplicates, priority classes, pod groups.
    pub(super) fn resolve(self) -> Result<Loaded, ManifestError> {
        let Collector {
            nodes,
            mut pods,
            classes,
            groups,
            mut warnings,
        } = self;
        let dup = |what: &str, name: &str, first: &Origin, o: &Origin, field: &str| {
            o.error(error::ferr(
                &join(&o.base, field),
                format!(
                    "duplicate {what} {name:?} (first defined in {})",
                    first.describe()
                ),
            ))
        };
        let mut seen: BTreeMap<&str, &Origin> = BTreeMap::new();
        for (n, o) in &nodes {
            if let Some(first) = seen.insert(&n.name, o) {
                return Err(dup("node name", &n.name, first, o, "metadata.name"));
            }
        }
        let mut seen: BTreeMap<String, &Origin> = BTreeMap::new();
        for (d, o) in &pods {
            if let Some(first) = seen.insert(d.pod.key(), o) {
                return Err(dup("pod", &d.pod.key(), first, o, "metadata.name"));
            }
        }
        let mut class_values: BTreeMap<String, (i32, Option<&Origin>)> = BUILTIN_CLASSES
            .iter()
            .map(|(n, v)| (n.to_string(), (*v, None)))
            .collect();
        let mut global_default: Option<(&PriorityClass, &Origin)> = None;
        for (c, o) in &classes {
            if let Some((_, first)) = class_values.get(&c.name) {
                let msg = match first {
                    Some(f) => format!(
                        "duplicate PriorityClass {:?} (first defined in {})",
                        c.name,
                        f.describe()
                    ),
                    None => format!("PriorityClass {:?} is built into Kubernetes", c.name),
                };
                return Err(o.error(error::ferr(&join(&o.base, "metadata.name"), msg)));
            }
            class_values.insert(c.name.clone(), (c.value, Some(o)));
            if c.global_default {
                if let Some((g, go)) = global_default {
                    let msg = format!(
                        "only one PriorityClass may be the global default; {:?} already is ({})",
                        g.name,
                        go.describe()
                    );
                    return Err(o.error(error::ferr(&join(&o.base, "globalDefault"), msg)));
                }
                global_default = Some((c, o));
            }
        }
        let mut group_index: BTreeMap<(String, String), (usize, u32)> = BTreeMap::new();
        for (i, (g, o)) in groups.iter().enumerate() {
            if group_index
                .insert((g.namespace.clone(), g.name.clone()), (i, 0))
                .is_some()
            {
                return Err(o.error(error::ferr(
                    &join(&o.base, "metadata.name"),
                    format!("duplicate PodGroup {}/{}", g.namespace, g.name),
                )));
            }
        }
        for (d, o) in &mut pods {
            let sp = join(&o.pod_base, "spec");
            d.pod.priority = match (&d.priority_class, d.explicit_priority) {
                (Some(c), explicit) => match (class_values.get(c), explicit) {
                    (Some((v, _)), Some(p)) if *v != p => {
                        return Err(o.error(error::ferr(
                            &join(&sp, "priority"),
                            format!("{p} differs from the value {v} of PriorityClass {c:?}"),
                        )));
                    }
                    (Some((v, _)), _) => *v,
                    (None, Some(p)) => {
                        warnings.push(format!("{}: PriorityClass {c:?} is not defined in the input; using spec.priority {p}", o.describe()));
                        p
                    }
                    (None, None) => {
                        let mut known: Vec<&str> =
                            class_values.keys().map(String::as_str).collect();
                        known.sort_unstable();
                        return Err(o.error(error::ferr(
                            &join(&sp, "priorityClassName"),
                            format!(
                                "PriorityClass {c:?} does not exist; defined: {}",
                                known.join(", ")
                            ),
                        )));
                    }
                },
                (None, Some(p)) => p,
                (None, None) => global_default.map_or(0, |(g, _)| g.value),
            };
            if let Some(gname) = &d.group {
                let key = (d.pod.namespace.clone(), gname.clone());
                let Some((gi, count)) = group_index.get_mut(&key) else {
                    let path = format!(
                        "{}[\"{POD_GROUP_LABEL}\"]",
                        join(&o.pod_base, "metadata.labels")
                    );
                    return Err(o.error(error::ferr(
                        &path,
                        format!("PodGroup {}/{gname} is not defined", d.pod.namespace),
                    )));
                };
                *count += 1;
                d.pod.gang = Some(Gang {
                    name: gname.clone(),
                    min_member: groups[*gi].0.min_member,
                });
            }
        }
        for (gi, count) in group_index.values() {
            let (g, o) = &groups[*gi];
            if g.min_member > *count {
                let msg = format!(
                    "{} is larger than the group: {count} pod(s) carry the label \
                     {POD_GROUP_LABEL}: {}",
                    g.min_member, g.name
                );
                return Err(o.error(error::ferr(&join(&o.base, "spec.minMember"), msg)));
            }
        }
        Ok(Loaded {
            nodes: nodes.into_iter().map(|(n, _)| n).collect(),
            pods: pods.into_iter().map(|(d, _)| d.pod).collect(),
            warnings,
        })
    }
}
