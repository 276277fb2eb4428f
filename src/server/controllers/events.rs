//! Core `v1` Events for what the control plane does, as client-go's recorder writes them:
//! `kubectl describe` and `kubectl get events` show them. A repeat of the same event
//! (same object, type, reason and message) within the recorder's memory bumps `count`
//! and `lastTimestamp` of the existing Event instead of creating another.

use crate::server::clock::OrchClock;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Events remembered for aggregation; past this the memory is cleared.
const REMEMBERED: usize = 4096;

/// An event written earlier: its namespace, name and count.
type Recorded = (String, String, i32);

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something went wrong.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Writes Events on behalf of one component (`deployment-controller`, `plimsoll-scheduler`…).
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    component: String,
    clock: OrchClock,
    seen: Arc<Mutex<HashMap<String, Recorded>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("component", &self.component)
            .finish()
    }
}

/// A reference to `obj` for an Event's `involvedObject`.
pub fn reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: obj.meta().name.clone(),
        namespace: obj.meta().namespace.clone(),
        uid: obj.meta().uid.clone(),
        resource_version: obj.meta().resource_version.clone(),
        field_path: None,
    }
}

impl Recorder {
    /// A recorder writing as `component`.
    pub fn new(client: kube::Client, component: &str, clock: OrchClock) -> Self {
        Recorder {
            client,
            component: component.to_string(),
            clock,
            seen: Arc::default(),
        }
    }

    /// The same recorder writing as another component.
    pub fn with_component(&self, component: &str) -> Self {
        Recorder {
            component: component.to_string(),
            ..self.clone()
        }
    }

    /// Records an event about `obj`. Failures are logged, never returned: an event is
    /// worth a try, not a failed reconcile.
    pub async fn record<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        kind: EventType,
        reason: &str,
        message: &str,
    ) {
        self.record_ref(reference(obj), kind, reason, message).await
    }

    /// [`Recorder::record`] for an object reference.
    pub async fn record_ref(
        &self,
        involved: ObjectReference,
        kind: EventType,
        reason: &str,
        message: &str,
    ) {
        let namespace = involved
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let key = format!(
            "{}/{}/{}/{}/{}",
            involved.uid.as_deref().unwrap_or_default(),
            involved.name.as_deref().unwrap_or_default(),
            kind.as_str(),
            reason,
            message
        );
        let now = self.clock.now_k8s();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let previous = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some((ns, name, count)) = previous {
            if ns == namespace {
                let patch = serde_json::json!({"count": count + 1, "lastTimestamp": now});
                let pp = PatchParams::default();
                if api.patch(&name, &pp, &Patch::Merge(&patch)).await.is_ok() {
                    self.remember(key, namespace, name, count + 1);
                    return;
                }
            }
        }
        let base = involved.name.clone().unwrap_or_else(|| "event".to_string());
        let name = format!("{base}.{:016x}", rand::random::<u64>());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: involved,
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(kind.as_str().to_string()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.component.clone()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(e) => self.remember(key, namespace, e.name_any(), 1),
            Err(e) => {
                tracing::debug!(component = %self.component, %reason, error = %e, "event not recorded")
            }
        }
    }

    fn remember(&self, key: String, namespace: String, name: String, count: i32) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        seen.insert(key, (namespace, name, count));
    }
}
