//! Turns the [`Desired`] state into live listeners: one [`PortState`] per Service port,
//! one accept (TCP) or forwarding (UDP) task per listener address, and the Service
//! virtual IPs added through [`VirtualIps`].
//!
//! Level-triggered: [`Proxier::apply`] is called with the whole desired state after
//! every change and on a resync tick, and converges: ports that went away are retired
//! (their endpoints drain), listeners no longer wanted are closed at once, listeners
//! wanted but not bound are bound — a bind that fails is warned about once and tried
//! again at the next apply.

use super::balancer::NodeCapacities;
use super::desired::{Desired, PortKey, Protocol};
use super::port::PortState;
use super::{tcp, udp, ProxyConfig, VirtualIps};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Most messages remembered as already logged (beyond it, the set starts over).
const MAX_WARNED: usize = 10_000;

/// The proxy's live state (see the module docs).
pub(super) struct Proxier {
    config: Arc<ProxyConfig>,
    vips: Arc<dyn VirtualIps>,
    stop: watch::Receiver<bool>,
    ports: BTreeMap<PortKey, Arc<PortState>>,
    listeners: BTreeMap<(PortKey, SocketAddr), JoinHandle<()>>,
    /// Listeners whose bind failed (warned once; retried at every apply).
    failed: BTreeSet<(PortKey, SocketAddr)>,
    /// Virtual IPs this proxy added.
    vips_added: BTreeSet<Ipv4Addr>,
    /// Messages already logged.
    warned: BTreeSet<String>,
    /// The nodes' predicted CPU, handed to every port.
    pub(super) capacities: Arc<NodeCapacities>,
}

impl Proxier {
    pub(super) fn new(
        config: Arc<ProxyConfig>,
        vips: Arc<dyn VirtualIps>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Proxier {
            config,
            vips,
            stop,
            ports: BTreeMap::new(),
            listeners: BTreeMap::new(),
            failed: BTreeSet::new(),
            vips_added: BTreeSet::new(),
            warned: BTreeSet::new(),
            capacities: Arc::new(NodeCapacities::new()),
        }
    }

    /// Logs `msg` at warn (or info) the first time it is seen.
    fn once(&mut self, msg: &str, warn: bool) {
        if self.warned.contains(msg) {
            return;
        }
        if self.warned.len() >= MAX_WARNED {
            self.warned.clear();
        }
        self.warned.insert(msg.to_string());
        if warn {
            tracing::warn!("proxy: {msg}");
        } else {
            tracing::info!("proxy: {msg}");
        }
    }

    /// Converges on `desired` (see the module docs).
    pub(super) async fn apply(&mut self, desired: Desired) {
        for w in &desired.warnings {
            self.once(w, true);
        }
        for n in &desired.notes {
            self.once(n, false);
        }
        let drain = self.config.drain_timeout;
        // Ports gone: close their listeners, drain their endpoints.
        let gone: Vec<PortKey> = self
            .ports
            .keys()
            .filter(|k| !desired.ports.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(p) = self.ports.remove(&key) {
                p.retire(drain);
                tracing::info!(service = %key, "proxy: service port removed");
            }
        }
        // Listeners no longer wanted.
        let unwanted: Vec<(PortKey, SocketAddr)> = self
            .listeners
            .keys()
            .filter(|(k, a)| {
                !desired
                    .ports
                    .get(k)
                    .is_some_and(|p| p.listeners.contains(a))
            })
            .cloned()
            .collect();
        for l in unwanted {
            if let Some(task) = self.listeners.remove(&l) {
                task.abort();
                // Closed (the task and its socket dropped) before anything rebinds.
                let _ = task.await;
                tracing::info!(service = %l.0, listen = %l.1, "proxy: stopped listening");
            }
        }
        self.failed.retain(|(k, a)| {
            desired
                .ports
                .get(k)
                .is_some_and(|p| p.listeners.contains(a))
        });
        // Ports: create or update.
        for (key, want) in &desired.ports {
            let port = self
                .ports
                .entry(key.clone())
                .or_insert_with(|| {
                    Arc::new(PortState::new(
                        key.clone(),
                        self.config.connect_timeout,
                        self.config.udp_idle,
                        self.stop.clone(),
                    ))
                })
                .clone();
            let (added, removed) = port.update(want, &self.capacities, drain);
            if added + removed > 0 {
                tracing::info!(
                    service = %key, ready = want.endpoints.len(), added, removed,
                    mode = want.mode.name(), "proxy: endpoints changed"
                );
            }
        }
        self.sync_vips(&desired).await;
        // Listeners wanted and not bound.
        for (key, want) in &desired.ports {
            for addr in &want.listeners {
                let l = (key.clone(), *addr);
                if self.listeners.contains_key(&l) {
                    continue;
                }
                if let IpAddr::V4(v4) = addr.ip() {
                    if self.is_vip(addr) && !self.vips_added.contains(&v4) {
                        continue; // its address could not be added: warned already
                    }
                }
                self.bind(l).await;
            }
        }
        self.release_vips(&desired).await;
    }

    /// Whether `addr` is a ClusterIP listener (not on the node's own address).
    fn is_vip(&self, addr: &SocketAddr) -> bool {
        self.config.cluster_ips && addr.ip() != self.config.node_address
    }

    /// The ClusterIPs the desired listeners need.
    fn needed_vips(&self, desired: &Desired) -> BTreeSet<Ipv4Addr> {
        desired
            .ports
            .values()
            .flat_map(|p| p.listeners.iter())
            .filter(|a| self.is_vip(a))
            .filter_map(|a| match a.ip() {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
            .collect()
    }

    async fn sync_vips(&mut self, desired: &Desired) {
        for ip in self.needed_vips(desired) {
            if self.vips_added.contains(&ip) {
                continue;
            }
            match self.vips.add(ip).await {
                Ok(()) => {
                    self.vips_added.insert(ip);
                    self.warned.remove(&format!("virtual IP {ip} not added"));
                    tracing::info!(%ip, "proxy: virtual IP added");
                }
                Err(e) => {
                    let msg = format!("virtual IP {ip} not added");
                    if !self.warned.contains(&msg) {
                        tracing::warn!(%ip, error = %e, "proxy: virtual IP not added (retrying)");
                        self.warned.insert(msg);
                    }
                }
            }
        }
    }

    async fn release_vips(&mut self, desired: &Desired) {
        let needed = self.needed_vips(desired);
        let extra: Vec<Ipv4Addr> = self.vips_added.difference(&needed).copied().collect();
        for ip in extra {
            match self.vips.remove(ip).await {
                Ok(()) => {
                    self.vips_added.remove(&ip);
                    tracing::info!(%ip, "proxy: virtual IP removed");
                }
                Err(e) => {
                    let msg = format!("virtual IP {ip} not removed");
                    if !self.warned.contains(&msg) {
                        tracing::warn!(%ip, error = %e, "proxy: virtual IP not removed (retrying)");
                        self.warned.insert(msg);
                    }
                }
            }
        }
    }

    async fn bind(&mut self, l: (PortKey, SocketAddr)) {
        let Some(port) = self.ports.get(&l.0).cloned() else {
            return;
        };
        let (key, addr) = &l;
        let task = match key.protocol {
            Protocol::Tcp => match tokio::net::TcpListener::bind(*addr).await {
                Ok(listener) => Ok(tokio::spawn(tcp::serve(listener, port))),
                Err(e) => Err(e),
            },
            Protocol::Udp => match tokio::net::UdpSocket::bind(*addr).await {
                Ok(socket) => Ok(tokio::spawn(udp::serve(socket, port))),
                Err(e) => Err(e),
            },
        };
        match task {
            Ok(task) => {
                tracing::info!(service = %key, listen = %addr, "proxy: listening");
                self.failed.remove(&l);
                self.listeners.insert(l, task);
            }
            Err(e) => {
                if self.failed.insert(l.clone()) {
                    tracing::warn!(service = %key, listen = %addr, error = %e, "proxy: cannot listen (retrying)");
                } else {
                    tracing::debug!(service = %key, listen = %addr, error = %e, "proxy: cannot listen");
                }
            }
        }
    }

    /// Closes every listener, ends every connection (through the stop signal the ports
    /// hold) and removes the virtual IPs this proxy added.
    pub(super) async fn shutdown(&mut self) {
        for (_, task) in std::mem::take(&mut self.listeners) {
            task.abort();
            let _ = task.await;
        }
        self.ports.clear();
        self.release_vips(&Desired::default()).await;
    }
}
