//! The node IPAM controller, after kube-controller-manager's range allocator
//! (`pkg/controller/nodeipam`, `--allocate-node-cidrs`): every Node without a pod CIDR
//! gets one, the lowest block of `--node-cidr-mask-size` bits of `--cluster-cidr` that no
//! other Node's pod CIDR overlaps, written as `spec.podCIDR` and `spec.podCIDRs` with a
//! merge patch that carries the Node's `resourceVersion` (a Node changed meanwhile is
//! retried, never overwritten).
//!
//! A pod CIDR already set is never changed: one outside the cluster CIDR, not a CIDR, or
//! overlapping another Node's is left as it is and reported with a Warning event
//! `InvalidPodCIDR`. When no block is free the Node gets a Warning event
//! `CIDRNotAvailable` ("Node NAME status is now: CIDRNotAvailable", as the range
//! allocator words it) and waits until a Node goes away. The allocation is read from the
//! Nodes themselves (there is no other record), so a restarted controller continues
//! where it stopped. IPv4 only. Start it with [`run`].

use super::context::Context;
use super::events::EventType;
use super::runtime::{self, Action, Controller, ObjectKey};
use crate::server::cidr::Ipv4Cidr;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::ResourceExt;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reason of the event for a Node no block is left for.
pub const CIDR_NOT_AVAILABLE: &str = "CIDRNotAvailable";
/// Reason of the event for a Node whose pod CIDR is left as it is although wrong.
pub const INVALID_POD_CIDR: &str = "InvalidPodCIDR";
/// How long a Node without a block waits before the next attempt (a Node going away
/// wakes it earlier).
pub const FULL_RETRY: Duration = Duration::from_secs(300);

/// Settings of the node IPAM controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpamConfig {
    /// The range pod CIDRs are carved from (`--cluster-cidr`).
    pub cluster_cidr: Ipv4Cidr,
    /// Prefix length of each Node's block (`--node-cidr-mask-size`, 24).
    pub mask_size: u8,
}

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamConfigError {
    /// The mask is shorter than the cluster CIDR's prefix or longer than 32 bits.
    #[error("--node-cidr-mask-size {mask} must be between the cluster CIDR's prefix length ({prefix}) and 32")]
    MaskOutOfRange {
        /// The mask size.
        mask: u8,
        /// The cluster CIDR's prefix length.
        prefix: u8,
    },
    /// More than 2^16 blocks (kube refuses this too).
    #[error("--node-cidr-mask-size {mask} is more than 16 bits longer than the cluster CIDR's prefix ({prefix})")]
    TooManyBlocks {
        /// The mask size.
        mask: u8,
        /// The cluster CIDR's prefix length.
        prefix: u8,
    },
}

impl IpamConfig {
    /// A checked configuration.
    pub fn new(cluster_cidr: Ipv4Cidr, mask_size: u8) -> Result<Self, IpamConfigError> {
        let prefix = cluster_cidr.prefix();
        if mask_size < prefix || mask_size > 32 {
            return Err(IpamConfigError::MaskOutOfRange {
                mask: mask_size,
                prefix,
            });
        }
        if mask_size - prefix > 16 {
            return Err(IpamConfigError::TooManyBlocks {
                mask: mask_size,
                prefix,
            });
        }
        Ok(IpamConfig {
            cluster_cidr,
            mask_size,
        })
    }
}

/// What to do about one Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Its pod CIDR is set and fine.
    Keep,
    /// Give it this block.
    Assign(Ipv4Cidr),
    /// No block is free.
    Full,
    /// Its pod CIDR is set but wrong: leave it, say why.
    Wrong(String),
}

/// The Node's pod CIDRs as written (`podCIDRs`, else `podCIDR`).
pub fn pod_cidrs(node: &Node) -> Vec<String> {
    let spec = node.spec.as_ref();
    let list = spec
        .and_then(|s| s.pod_cidrs.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>();
    if !list.is_empty() {
        return list;
    }
    spec.and_then(|s| s.pod_cidr.clone())
        .filter(|c| !c.is_empty())
        .into_iter()
        .collect()
}

/// The plan for a Node whose pod CIDRs are `own`, given the blocks other Nodes hold
/// (`(node, block)`).
pub fn plan(cfg: &IpamConfig, own: &[String], others: &[(String, Ipv4Cidr)]) -> Plan {
    if !own.is_empty() {
        for c in own {
            let Ok(block) = c.parse::<Ipv4Cidr>() else {
                return Plan::Wrong(format!("podCIDR {c:?} is not an IPv4 CIDR; left as it is"));
            };
            if !cfg.cluster_cidr.covers(&block) {
                return Plan::Wrong(format!(
                    "podCIDR {block} is outside the cluster CIDR {}; left as it is",
                    cfg.cluster_cidr
                ));
            }
            if let Some((other, theirs)) = others.iter().find(|(_, b)| b.overlaps(&block)) {
                return Plan::Wrong(format!(
                    "podCIDR {block} overlaps node {other}'s podCIDR {theirs}; left as it is"
                ));
            }
        }
        return Plan::Keep;
    }
    let n = cfg.cluster_cidr.subnets(cfg.mask_size);
    (0..n)
        .filter_map(|i| cfg.cluster_cidr.subnet(cfg.mask_size, i))
        .find(|b| !others.iter().any(|(_, o)| o.overlaps(b)))
        .map_or(Plan::Full, Plan::Assign)
}

/// What can go wrong in a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// An API call failed (a 409 means the Node changed: retried).
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// The controller's state: the Node cache and what this process assigned.
pub struct IpamController {
    ctx: Context,
    cfg: IpamConfig,
    nodes: Store<Node>,
    /// Blocks written by this process that the cache may not show yet (node → block).
    assigned: Mutex<BTreeMap<String, Ipv4Cidr>>,
    /// Events already recorded (node uid, reason, message), so a Node's heartbeats do
    /// not repeat them.
    reported: Mutex<HashSet<(String, String, String)>>,
    /// One allocation at a time: pick, then patch.
    alloc: tokio::sync::Mutex<()>,
}

impl IpamController {
    /// Blocks held by Nodes other than `name`: the cache's and this process's recent ones.
    fn others(&self, name: &str) -> Vec<(String, Ipv4Cidr)> {
        let mut out: Vec<(String, Ipv4Cidr)> = Vec::new();
        for n in self.nodes.state() {
            let other = n.name_any();
            if other == name {
                continue;
            }
            out.extend(
                pod_cidrs(&n)
                    .iter()
                    .filter_map(|c| c.parse().ok())
                    .map(|b| (other.clone(), b)),
            );
        }
        let assigned = self.assigned.lock().unwrap_or_else(|e| e.into_inner());
        out.extend(
            assigned
                .iter()
                .filter(|(n, _)| n.as_str() != name)
                .map(|(n, b)| (n.clone(), *b)),
        );
        out.sort();
        out
    }

    async fn report(&self, node: &Node, kind: EventType, reason: &str, message: &str) {
        let key = (
            node.uid().unwrap_or_default(),
            reason.to_string(),
            message.to_string(),
        );
        let fresh = self
            .reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
        if fresh {
            self.ctx.recorder.record(node, kind, reason, message).await;
        }
    }

    fn forget_reports(&self, node: &Node) {
        let uid = node.uid().unwrap_or_default();
        self.reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(u, _, _)| *u != uid);
    }

    /// One reconcile of the Node `key`.
    pub async fn reconcile(&self, key: &ObjectKey) -> Result<Action, IpamError> {
        let name = key.name.as_str();
        let Some(node) = self.nodes.get(&key.to_ref()) else {
            self.assigned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(name);
            return Ok(Action::Done);
        };
        let own = pod_cidrs(&node);
        if !own.is_empty() {
            // The cache shows it now.
            self.assigned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(name);
            if let Plan::Wrong(why) = plan(&self.cfg, &own, &self.others(name)) {
                self.report(&node, EventType::Warning, INVALID_POD_CIDR, &why)
                    .await;
            }
            return Ok(Action::Done);
        }
        let _one_at_a_time = self.alloc.lock().await;
        let pending = self
            .assigned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(name);
        if pending {
            // Written already; the cache has not caught up (its event requeues us).
            return Ok(Action::Done);
        }
        match plan(&self.cfg, &[], &self.others(name)) {
            Plan::Assign(block) => {
                let api: Api<Node> = Api::all(self.ctx.client.clone());
                let patch = serde_json::json!({
                    "metadata": {"resourceVersion": node.resource_version()},
                    "spec": {"podCIDR": block.to_string(), "podCIDRs": [block.to_string()]},
                });
                match api
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {
                        self.assigned
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(name.to_string(), block);
                        self.forget_reports(&node);
                        tracing::info!(node = name, pod_cidr = %block, "pod CIDR assigned");
                        Ok(Action::Done)
                    }
                    Err(kube::Error::Api(e)) if e.code == 404 => Ok(Action::Done),
                    Err(e) => Err(e.into()),
                }
            }
            Plan::Full => {
                let msg = format!("Node {name} status is now: {CIDR_NOT_AVAILABLE}");
                self.report(&node, EventType::Warning, CIDR_NOT_AVAILABLE, &msg)
                    .await;
                Ok(Action::RequeueAfter(FULL_RETRY))
            }
            Plan::Keep | Plan::Wrong(_) => Ok(Action::Done),
        }
    }
}

/// Runs the node IPAM controller until `shutdown` completes. A Node is reconciled when
/// it changes; any Node's change (its deletion above all) also wakes the Nodes still
/// waiting for a block. One worker: allocations are serial anyway.
pub async fn run(ctx: Context, cfg: IpamConfig, shutdown: impl Future<Output = ()> + Send) {
    let nodes = runtime::watch(
        Api::<Node>::all(ctx.client.clone()),
        watcher::Config::default(),
    );
    let state = Arc::new(IpamController {
        ctx: ctx.clone(),
        cfg,
        nodes: nodes.store.clone(),
        assigned: Mutex::default(),
        reported: Mutex::default(),
        alloc: tokio::sync::Mutex::new(()),
    });
    let store = nodes.store.clone();
    Controller::<IpamError>::new("nodeipam", ctx)
        .watches(nodes, move |n| {
            let mut keys = vec![ObjectKey::new(None, &n.name_any())];
            keys.extend(
                store
                    .state()
                    .iter()
                    .filter(|o| pod_cidrs(o).is_empty())
                    .map(|o| ObjectKey::new(None, &o.name_any())),
            );
            keys.sort();
            keys.dedup();
            keys
        })
        .workers(1)
        .run(
            state,
            |key, st| async move { st.reconcile(&key).await },
            shutdown,
        )
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> IpamConfig {
        IpamConfig::new("10.200.0.0/22".parse().unwrap(), 24).unwrap()
    }

    fn block(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn the_lowest_free_block_is_assigned_until_none_is_left() {
        let mut others: Vec<(String, Ipv4Cidr)> = Vec::new();
        let mut got = Vec::new();
        for i in 0..5 {
            match plan(&cfg(), &[], &others) {
                Plan::Assign(b) => {
                    got.push(b.to_string());
                    others.push((format!("n{i}"), b));
                }
                Plan::Full => got.push("full".into()),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            got,
            [
                "10.200.0.0/24",
                "10.200.1.0/24",
                "10.200.2.0/24",
                "10.200.3.0/24",
                "full"
            ]
        );
        // A hole left by a deleted node is filled first.
        others.retain(|(n, _)| n != "n1");
        assert_eq!(
            plan(&cfg(), &[], &others),
            Plan::Assign(block("10.200.1.0/24"))
        );
        // A foreign block of another size still counts.
        let others = vec![("x".to_string(), block("10.200.0.0/23"))];
        assert_eq!(
            plan(&cfg(), &[], &others),
            Plan::Assign(block("10.200.2.0/24"))
        );
    }

    #[test]
    fn set_cidrs_are_kept_even_when_wrong() {
        let others = vec![("a".to_string(), block("10.200.0.0/24"))];
        assert_eq!(plan(&cfg(), &["10.200.1.0/24".into()], &others), Plan::Keep);
        for (own, says) in [
            ("10.9.0.0/24", "outside the cluster CIDR"),
            ("10.200.0.0/24", "overlaps node a's podCIDR"),
            ("nonsense", "not an IPv4 CIDR"),
        ] {
            match plan(&cfg(), &[own.to_string()], &others) {
                Plan::Wrong(why) => assert!(why.contains(says), "{why}"),
                other => panic!("{own}: {other:?}"),
            }
        }
    }

    #[test]
    fn configurations_are_checked() {
        let c = block("10.0.0.0/16");
        assert!(IpamConfig::new(c, 24).is_ok());
        assert!(matches!(
            IpamConfig::new(c, 8),
            Err(IpamConfigError::MaskOutOfRange { .. })
        ));
        assert!(matches!(
            IpamConfig::new(c, 33),
            Err(IpamConfigError::MaskOutOfRange { .. })
        ));
        assert!(matches!(
            IpamConfig::new(block("10.0.0.0/8"), 28),
            Err(IpamConfigError::TooManyBlocks { .. })
        ));
    }
}
