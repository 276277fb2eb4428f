//! The live state of one Service port: its [`Balancer`] and, per endpoint it has used,
//! an [`EndpointHandle`] counting active connections (or UDP sessions) and carrying the
//! endpoint's drain deadline.
//!
//! An endpoint that leaves the ready set (or whose Service port goes away) gets a
//! deadline `drain_timeout` ahead; its connections keep copying until then and are
//! closed at it. An endpoint that comes back before the deadline loses it. New
//! connections only ever go to ready endpoints (the balancer's).

use super::balancer::{Balancer, NodeCapacities};
use super::desired::{DesiredPort, PortKey};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// One endpoint as its connections see it.
#[derive(Debug)]
pub(super) struct EndpointHandle {
    addr: SocketAddr,
    active: AtomicUsize,
    /// When its connections must end (`None`: it is ready).
    drain: watch::Sender<Option<tokio::time::Instant>>,
}

impl EndpointHandle {
    fn new(addr: SocketAddr) -> Arc<Self> {
        Arc::new(EndpointHandle {
            addr,
            active: AtomicUsize::new(0),
            drain: watch::channel(None).0,
        })
    }

    fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    fn draining(&self) -> bool {
        self.drain.borrow().is_some()
    }

    /// Sets the deadline unless one is set.
    fn drain_at(&self, deadline: tokio::time::Instant) {
        self.drain.send_if_modified(|d| {
            if d.is_none() {
                *d = Some(deadline);
                true
            } else {
                false
            }
        });
    }

    fn undrain(&self) {
        self.drain.send_if_modified(|d| d.take().is_some());
    }

    /// Resolves when the endpoint's drain deadline passes (never while it is ready).
    pub(super) async fn drained(&self) {
        let mut rx = self.drain.subscribe();
        loop {
            let deadline = *rx.borrow_and_update();
            match deadline {
                Some(d) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(d) => return,
                        r = rx.changed() => if r.is_err() { std::future::pending::<()>().await },
                    }
                }
                None => {
                    if rx.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }
}

/// One active connection (or UDP session) to an endpoint; dropping it ends the count.
#[derive(Debug)]
pub(super) struct Lease {
    handle: Arc<EndpointHandle>,
}

impl Lease {
    /// The endpoint.
    pub(super) fn addr(&self) -> SocketAddr {
        self.handle.addr
    }

    /// Resolves when the endpoint's drain deadline passes.
    pub(super) async fn drained(&self) {
        self.handle.drained().await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.handle.active.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Inner {
    balancer: Balancer,
    handles: HashMap<SocketAddr, Arc<EndpointHandle>>,
}

/// The live state of one Service port, shared by its listeners and connections.
#[derive(Debug)]
pub(super) struct PortState {
    pub(super) key: PortKey,
    inner: Mutex<Inner>,
    /// Connect timeout of TCP attempts.
    pub(super) connect_timeout: Duration,
    /// Idle time after which a UDP session ends.
    pub(super) udp_idle: Duration,
    /// Turns `true` when the proxy stops: every connection ends.
    pub(super) stop: watch::Receiver<bool>,
}

impl PortState {
    pub(super) fn new(
        key: PortKey,
        connect_timeout: Duration,
        udp_idle: Duration,
        stop: watch::Receiver<bool>,
    ) -> Self {
        PortState {
            key,
            inner: Mutex::new(Inner {
                balancer: Balancer::new(Default::default(), None),
                handles: HashMap::new(),
            }),
            connect_timeout,
            udp_idle,
            stop,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Picks an endpoint for `client` (passing over `tried`) and counts a connection to
    /// it; `None` when no ready endpoint is left.
    pub(super) fn choose(&self, client: IpAddr, tried: &[SocketAddr]) -> Option<Lease> {
        let mut inner = self.lock();
        let Inner { balancer, handles } = &mut *inner;
        let active = |a: SocketAddr| handles.get(&a).map_or(0, |h| h.active());
        let addr = balancer.pick(client, Instant::now(), &active, tried)?;
        let handle = handles
            .entry(addr)
            .or_insert_with(|| EndpointHandle::new(addr))
            .clone();
        handle.active.fetch_add(1, Ordering::Relaxed);
        Some(Lease { handle })
    }

    /// Takes the port's new desired state: mode, affinity, ready endpoints; endpoints
    /// that left start draining. Returns (added, removed) endpoint counts.
    pub(super) fn update(
        &self,
        desired: &DesiredPort,
        capacities: &Arc<NodeCapacities>,
        drain_timeout: Duration,
    ) -> (usize, usize) {
        let mut inner = self.lock();
        let Inner { balancer, handles } = &mut *inner;
        balancer.configure(desired.mode, desired.affinity);
        balancer.set_capacities(capacities.clone());
        let before: Vec<SocketAddr> = balancer.endpoints().iter().map(|e| e.addr).collect();
        balancer.set_endpoints(desired.endpoints.clone());
        let after: Vec<SocketAddr> = balancer.endpoints().iter().map(|e| e.addr).collect();
        let added = after.iter().filter(|a| !before.contains(a)).count();
        let removed = before.iter().filter(|a| !after.contains(a)).count();
        let deadline = tokio::time::Instant::now() + drain_timeout;
        for (addr, h) in handles.iter() {
            if balancer.is_ready(*addr) {
                h.undrain();
            } else {
                h.drain_at(deadline);
            }
        }
        // A handle without connections that is draining has nothing left to do.
        handles.retain(|_, h| !(h.draining() && h.active() == 0));
        balancer.sweep(Instant::now());
        (added, removed)
    }

    /// The port is gone: every endpoint drains.
    pub(super) fn retire(&self, drain_timeout: Duration) {
        let mut inner = self.lock();
        let deadline = tokio::time::Instant::now() + drain_timeout;
        for h in inner.handles.values() {
            h.drain_at(deadline);
        }
        inner.balancer.set_endpoints(Vec::new());
        inner.handles.clear();
    }

    /// Active connections (or sessions) per endpoint the port knows, draining ones
    /// included, sorted by address.
    #[cfg(test)]
    pub(super) fn active(&self) -> Vec<(SocketAddr, usize)> {
        let inner = self.lock();
        let mut v: Vec<_> = inner
            .handles
            .values()
            .map(|h| (h.addr, h.active()))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::super::balancer::{Endpoint, Mode};
    use super::super::desired::Protocol;
    use super::*;

    fn port() -> PortState {
        let key = PortKey {
            namespace: "ns".into(),
            service: "web".into(),
            port_name: String::new(),
            protocol: Protocol::Tcp,
        };
        PortState::new(
            key,
            Duration::from_secs(1),
            Duration::from_secs(1),
            watch::channel(false).1,
        )
    }

    fn want(ports: &[u16]) -> DesiredPort {
        DesiredPort {
            mode: Mode::LeastConnections,
            affinity: None,
            endpoints: ports
                .iter()
                .map(|p| Endpoint {
                    addr: SocketAddr::from(([127, 0, 0, 1], *p)),
                    node: None,
                })
                .collect(),
            listeners: Default::default(),
        }
    }

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    const DRAIN: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn a_removed_endpoint_drains_then_its_connections_end() {
        let p = port();
        let caps = Arc::new(NodeCapacities::new());
        p.update(&want(&[1, 2]), &caps, DRAIN);
        let a = p.choose(CLIENT, &[]).unwrap();
        let b = p.choose(CLIENT, &[]).unwrap();
        assert_eq!((a.addr().port(), b.addr().port()), (1, 2));
        let start = tokio::time::Instant::now();
        assert_eq!(p.update(&want(&[2]), &caps, DRAIN), (0, 1));
        // New connections never go to the draining endpoint, whatever its load.
        drop(b);
        for _ in 0..3 {
            assert_eq!(p.choose(CLIENT, &[]).unwrap().addr().port(), 2);
        }
        a.drained().await;
        let waited = start.elapsed();
        assert!(waited >= DRAIN && waited < DRAIN * 3, "{waited:?}");
        // The ready endpoint never drains.
        let c = p.choose(CLIENT, &[]).unwrap();
        let waited = tokio::time::timeout(DRAIN * 2, c.drained()).await;
        assert!(waited.is_err());
        assert_eq!(
            p.active(),
            [(SocketAddr::from(([127, 0, 0, 1], 1)), 1), (c.addr(), 1)]
        );
        drop(a);
        p.update(&want(&[2]), &caps, DRAIN);
        assert_eq!(p.active(), [(c.addr(), 1)]);
    }

    #[tokio::test]
    async fn an_endpoint_back_before_its_deadline_keeps_its_connections() {
        let p = port();
        let caps = Arc::new(NodeCapacities::new());
        p.update(&want(&[1]), &caps, DRAIN);
        let a = p.choose(CLIENT, &[]).unwrap();
        p.update(&want(&[]), &caps, DRAIN);
        assert!(p.choose(CLIENT, &[]).is_none());
        tokio::time::sleep(DRAIN / 3).await;
        p.update(&want(&[1]), &caps, DRAIN);
        assert!(tokio::time::timeout(DRAIN * 2, a.drained()).await.is_err());
        // Retiring the port drains everything.
        p.retire(DRAIN / 3);
        assert!(tokio::time::timeout(DRAIN, a.drained()).await.is_ok());
    }
}
