//! `apiserver_storage_objects`: how many objects the store holds per resource, kept up to
//! date from one store watch so that a scrape reads a few gauges instead of listing the
//! store.
//!
//! The counts start from one list of `/registry/` and then follow the watch from that
//! list's revision: a put that created its key adds one, a delete removes one. A watch
//! the store closes (too slow, or compacted away) is replaced by a fresh list and watch.
//! This module only counts; it never writes to the store.

use super::kinds;
use crate::server::metrics::{Metrics, ResourceLabel};
use crate::server::store::{EventKind, Store, StoreError, Watch};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The prefix every object key starts with.
const REGISTRY: &str = "/registry/";

/// The resource a key belongs to, as `apiserver_storage_objects` names it (`pods`,
/// `deployments.apps`): keys are `/registry/GROUP/PLURAL/…`, the core group `core`.
fn resource_of(key: &str) -> Option<String> {
    let mut segs = key.strip_prefix(REGISTRY)?.split('/');
    let group = segs.next().filter(|g| !g.is_empty())?;
    let plural = segs.next().filter(|p| !p.is_empty())?;
    segs.next()?;
    Some(if group == "core" {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    })
}

/// Objects per resource from a list of keys.
fn count<'a>(keys: impl IntoIterator<Item = &'a str>) -> HashMap<String, i64> {
    let mut counts = HashMap::new();
    for key in keys {
        if let Some(r) = resource_of(key) {
            *counts.entry(r).or_insert(0) += 1;
        }
    }
    counts
}

/// Keeps `metrics.api.storage_objects` equal to the store's object counts, until
/// aborted. Every served resource is reported, with 0 when it has no objects.
pub(crate) async fn keep_counts(store: Arc<dyn Store>, metrics: Arc<Metrics>) {
    let gauges = &metrics.api.storage_objects;
    loop {
        let s = store.clone();
        let listed = tokio::task::spawn_blocking(move || {
            let (entries, rev) = s.list(REGISTRY)?;
            let counts = count(entries.iter().map(|e| e.key.as_str()));
            let watch = s.watch(REGISTRY, rev)?;
            Ok::<(HashMap<String, i64>, Watch), StoreError>((counts, watch))
        })
        .await;
        let (counts, mut watch) = match listed {
            Ok(Ok(listed)) => listed,
            Ok(Err(e)) => {
                tracing::warn!("counting stored objects: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => {
                tracing::warn!("counting stored objects: task failed: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for rt in kinds::RESOURCES {
            let r = rt.qualified();
            let n = counts.get(&r).copied().unwrap_or(0);
            gauges.get_or_create(&ResourceLabel::new(&r)).set(n);
        }
        for (r, n) in &counts {
            gauges.get_or_create(&ResourceLabel::new(r)).set(*n);
        }
        while let Some(ev) = watch.events.recv().await {
            let Some(r) = resource_of(&ev.entry.key) else {
                continue;
            };
            let gauge = gauges.get_or_create(&ResourceLabel::new(&r));
            match ev.kind {
                EventKind::Put if ev.entry.create_revision == ev.entry.mod_revision => {
                    gauge.inc();
                }
                EventKind::Put => {}
                EventKind::Delete => {
                    gauge.dec();
                }
            }
        }
        tracing::debug!("object count watch closed; counting again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::EmbeddedStore;

    #[test]
    fn keys_name_their_resource_as_kube_does() {
        assert_eq!(
            resource_of("/registry/core/pods/default/p").as_deref(),
            Some("pods")
        );
        assert_eq!(
            resource_of("/registry/apps/deployments/ns/d").as_deref(),
            Some("deployments.apps")
        );
        assert_eq!(
            resource_of("/registry/core/nodes/n1").as_deref(),
            Some("nodes")
        );
        assert_eq!(resource_of("/registry/core/pods"), None);
        assert_eq!(resource_of("/other/core/pods/a"), None);
        let counts = count(["/registry/core/pods/a/x", "/registry/core/pods/b/y"]);
        assert_eq!(counts.get("pods"), Some(&2));
    }

    #[tokio::test]
    async fn counts_follow_creates_updates_and_deletes() {
        let dir =
            std::env::temp_dir().join(format!("plimsoll-object-count-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.join("s.redb")).unwrap());
        store.create("/registry/core/pods/d/a", b"{}").unwrap();
        store.create("/registry/core/pods/d/b", b"{}").unwrap();
        let metrics = Metrics::new();
        let task = tokio::spawn(keep_counts(store.clone(), metrics.clone()));
        let pods = |m: &Metrics| {
            m.api
                .storage_objects
                .get_or_create(&ResourceLabel::new("pods"))
                .get()
        };
        let wait_for = |want: i64| {
            let m = metrics.clone();
            async move {
                for _ in 0..200 {
                    if pods(&m) == want {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                panic!("pods stayed at {}, expected {want}", pods(&m));
            }
        };
        wait_for(2).await;
        // 1, 0, 1, 1 (an update), 2 (a key created again), 3, 4: 4 only at the end.
        store.delete("/registry/core/pods/d/a", None).unwrap();
        store.delete("/registry/core/pods/d/b", None).unwrap();
        store.create("/registry/core/pods/d/c", b"{}").unwrap();
        store
            .update("/registry/core/pods/d/c", b"{1}", None)
            .unwrap();
        store.create("/registry/core/pods/d/a", b"{}").unwrap();
        store.create("/registry/core/pods/e/x", b"{}").unwrap();
        store.create("/registry/core/pods/e/y", b"{}").unwrap();
        wait_for(4).await;
        let text = metrics.encode();
        assert!(text.contains("apiserver_storage_objects{resource=\"deployments.apps\"} 0"));
        task.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
