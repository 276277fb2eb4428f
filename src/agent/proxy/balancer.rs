//! Which endpoint a new connection (or UDP session) of one Service port goes to: the
//! [`Balancer`], pure logic over the port's ready endpoints, its balancing [`Mode`],
//! ClientIP session affinity and, for [`Mode::Predicted`], the nodes' predicted spare
//! CPU ([`NodeCapacities`]).
//!
//! It owns no sockets and reads no clock: the caller passes the time of the pick and the
//! active connections of each endpoint, so every choice is reproducible in tests. Ties
//! are always broken in round-robin order (endpoints sorted by address, a cursor moving
//! past each choice), so equal inputs give equal picks.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The annotation of a Service that chooses its [`Mode`].
pub const MODE_ANNOTATION: &str = "plimsoll.io/load-balancing";

/// kube's default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT: Duration = Duration::from_secs(10800);

/// A predicted-mode endpoint's node counts for at least this fraction of its allocatable
/// CPU, so a node predicted full still gets a trickle of connections.
pub const SPARE_FLOOR_FRACTION: f64 = 0.05;

/// How a Service spreads new connections over its ready endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Each endpoint in turn (`round-robin`, the default).
    #[default]
    RoundRobin,
    /// The endpoint with the fewest active connections (`least-connections`).
    LeastConnections,
    /// Weighted least connections, weights from the nodes' predicted spare CPU
    /// (`predicted`); least connections until a prediction exists.
    Predicted,
}

impl Mode {
    /// Every name [`Mode::from_name`] knows.
    pub const NAMES: [&'static str; 3] = ["round-robin", "least-connections", "predicted"];

    /// The mode called `name`, if any.
    pub fn from_name(name: &str) -> Option<Mode> {
        match name {
            "round-robin" => Some(Mode::RoundRobin),
            "least-connections" => Some(Mode::LeastConnections),
            "predicted" => Some(Mode::Predicted),
            _ => None,
        }
    }

    /// The annotation value of this mode.
    pub fn name(self) -> &'static str {
        match self {
            Mode::RoundRobin => "round-robin",
            Mode::LeastConnections => "least-connections",
            Mode::Predicted => "predicted",
        }
    }
}

/// One backend of a Service port: a ready address of its Endpoints with the port's
/// number, and the node the address is on (when the Endpoints say).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// Where to connect.
    pub addr: SocketAddr,
    /// `nodeName` of the Endpoints address.
    pub node: Option<String>,
}

/// One node's CPU as the predicted mode sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeCpu {
    /// `status.allocatable.cpu` (else `capacity.cpu`), millicores.
    pub allocatable_milli: u64,
    /// Predicted peak CPU of the pods on the node, summed, millicores.
    pub predicted_milli: u64,
}

impl NodeCpu {
    /// Allocatable minus predicted, at least zero.
    pub fn spare_milli(&self) -> u64 {
        self.allocatable_milli.saturating_sub(self.predicted_milli)
    }
}

/// Predicted CPU per node name; empty while nothing is predicted.
pub type NodeCapacities = BTreeMap<String, NodeCpu>;

/// The choosing state of one Service port (see the module docs).
#[derive(Debug, Clone)]
pub struct Balancer {
    mode: Mode,
    /// Ready endpoints, sorted by address, one per address.
    endpoints: Vec<Endpoint>,
    /// Round-robin position: the index the next search starts at.
    cursor: usize,
    /// ClientIP affinity timeout; `None`: no affinity.
    affinity: Option<Duration>,
    /// Client IP → (endpoint, last use).
    sticky: HashMap<IpAddr, (SocketAddr, Instant)>,
    capacities: Arc<NodeCapacities>,
    /// Predicted-mode weight per endpoint (parallel to `endpoints`); empty when no
    /// endpoint's node has a prediction.
    weights: Vec<f64>,
}

impl Balancer {
    /// A balancer with no endpoints.
    pub fn new(mode: Mode, affinity: Option<Duration>) -> Self {
        Balancer {
            mode,
            endpoints: Vec::new(),
            cursor: 0,
            affinity,
            sticky: HashMap::new(),
            capacities: Arc::new(NodeCapacities::new()),
            weights: Vec::new(),
        }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The ready endpoints, sorted by address.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The predicted-mode weights, parallel to [`endpoints`](Self::endpoints) (empty:
    /// no prediction, the mode acts as least connections).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Changes the mode and the affinity timeout; affinities are kept when affinity
    /// stays on.
    pub fn configure(&mut self, mode: Mode, affinity: Option<Duration>) {
        self.mode = mode;
        if affinity.is_none() {
            self.sticky.clear();
        }
        self.affinity = affinity;
    }

    /// Replaces the ready endpoints. Affinities to endpoints no longer ready are
    /// forgotten; the round-robin cursor keeps its position.
    pub fn set_endpoints(&mut self, mut endpoints: Vec<Endpoint>) {
        endpoints.sort();
        endpoints.dedup_by(|a, b| a.addr == b.addr);
        self.endpoints = endpoints;
        if self.endpoints.is_empty() {
            self.cursor = 0;
        } else {
            self.cursor %= self.endpoints.len();
        }
        let ready: Vec<SocketAddr> = self.endpoints.iter().map(|e| e.addr).collect();
        self.sticky
            .retain(|_, (addr, _)| ready.binary_search(addr).is_ok());
        self.reweigh();
    }

    /// Replaces the nodes' predicted CPU (used by [`Mode::Predicted`]).
    pub fn set_capacities(&mut self, capacities: Arc<NodeCapacities>) {
        if !Arc::ptr_eq(&self.capacities, &capacities) {
            self.capacities = capacities;
            self.reweigh();
        }
    }

    /// Whether `addr` is a ready endpoint.
    pub fn is_ready(&self, addr: SocketAddr) -> bool {
        self.index_of(addr).is_some()
    }

    fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        self.endpoints.binary_search_by(|e| e.addr.cmp(&addr)).ok()
    }

    /// Forgets affinities unused for longer than the timeout at `now`.
    pub fn sweep(&mut self, now: Instant) {
        if let Some(timeout) = self.affinity {
            self.sticky
                .retain(|_, (_, last)| now.saturating_duration_since(*last) < timeout);
        }
    }

    /// The endpoint for a new connection of `client` at `now`, given each endpoint's
    /// active connections; endpoints in `tried` (this connection's failed attempts) are
    /// passed over. `None` when no ready endpoint is left.
    ///
    /// With affinity, a client whose endpoint is still ready (and not in `tried`) and was
    /// used less than the timeout ago gets it again; otherwise the mode chooses and the
    /// choice becomes the client's endpoint.
    pub fn pick(
        &mut self,
        client: IpAddr,
        now: Instant,
        active: &dyn Fn(SocketAddr) -> usize,
        tried: &[SocketAddr],
    ) -> Option<SocketAddr> {
        if let Some(timeout) = self.affinity {
            if let Some(&(addr, last)) = self.sticky.get(&client) {
                let fresh = now.saturating_duration_since(last) < timeout;
                if fresh && self.is_ready(addr) && !tried.contains(&addr) {
                    self.sticky.insert(client, (addr, now));
                    return Some(addr);
                }
                self.sticky.remove(&client);
            }
        }
        let eligible = |i: usize, eps: &[Endpoint]| !tried.contains(&eps[i].addr);
        let i = match self.mode {
            Mode::RoundRobin => self.next_from_cursor(|i, eps| eligible(i, eps)),
            Mode::LeastConnections => self.least_connections(active, &eligible),
            Mode::Predicted if self.weights.is_empty() => self.least_connections(active, &eligible),
            Mode::Predicted => self.weighted(active, &eligible),
        }?;
        let addr = self.endpoints[i].addr;
        if self.affinity.is_some() {
            self.sticky.insert(client, (addr, now));
        }
        Some(addr)
    }

    /// The first index from the cursor on (cyclically) that `ok` accepts; the cursor
    /// moves past it.
    fn next_from_cursor(&mut self, ok: impl Fn(usize, &[Endpoint]) -> bool) -> Option<usize> {
        let (n, start) = (self.endpoints.len(), self.cursor);
        let found = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| ok(i, &self.endpoints))?;
        self.cursor = (found + 1) % n;
        Some(found)
    }

    fn least_connections(
        &mut self,
        active: &dyn Fn(SocketAddr) -> usize,
        eligible: &dyn Fn(usize, &[Endpoint]) -> bool,
    ) -> Option<usize> {
        let counts: Vec<usize> = self.endpoints.iter().map(|e| active(e.addr)).collect();
        let least = (0..counts.len())
            .filter(|&i| eligible(i, &self.endpoints))
            .map(|i| counts[i])
            .min()?;
        self.next_from_cursor(|i, eps| eligible(i, eps) && counts[i] == least)
    }

    fn weighted(
        &mut self,
        active: &dyn Fn(SocketAddr) -> usize,
        eligible: &dyn Fn(usize, &[Endpoint]) -> bool,
    ) -> Option<usize> {
        let scores: Vec<f64> = self
            .endpoints
            .iter()
            .zip(&self.weights)
            .map(|(e, w)| (active(e.addr) as f64 + 1.0) / w)
            .collect();
        let best = (0..scores.len())
            .filter(|&i| eligible(i, &self.endpoints))
            .map(|i| scores[i])
            .fold(f64::INFINITY, f64::min);
        if !best.is_finite() {
            return None;
        }
        let tolerance = best.abs() * 1e-9;
        self.next_from_cursor(|i, eps| eligible(i, eps) && scores[i] <= best + tolerance)
    }

    /// Recomputes the predicted-mode weights: an endpoint's weight is its node's spare
    /// CPU (at least [`SPARE_FLOOR_FRACTION`] of its allocatable, at least 1 millicore)
    /// shared by this port's ready endpoints on that node. An endpoint whose node is
    /// unknown or has no prediction gets the mean weight of the others; when none has
    /// one, there are no weights (least connections).
    fn reweigh(&mut self) {
        self.weights.clear();
        if self.capacities.is_empty() {
            return;
        }
        let mut per_node: HashMap<&str, usize> = HashMap::new();
        for e in &self.endpoints {
            if let Some(n) = e.node.as_deref() {
                *per_node.entry(n).or_default() += 1;
            }
        }
        let known: Vec<Option<f64>> = self
            .endpoints
            .iter()
            .map(|e| {
                let node = e.node.as_deref()?;
                let cpu = self.capacities.get(node)?;
                let floor = cpu.allocatable_milli as f64 * SPARE_FLOOR_FRACTION;
                let spare = (cpu.spare_milli() as f64).max(floor).max(1.0);
                Some(spare / per_node[node] as f64)
            })
            .collect();
        let (sum, count) = known
            .iter()
            .flatten()
            .fold((0.0, 0usize), |(s, c), w| (s + w, c + 1));
        if count == 0 {
            return;
        }
        let mean = sum / count as f64;
        self.weights = known.into_iter().map(|w| w.unwrap_or(mean)).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ep(port: u16, node: &str) -> Endpoint {
        Endpoint {
            addr: SocketAddr::from(([10, 0, 0, 1], port)),
            node: (!node.is_empty()).then(|| node.to_string()),
        }
    }

    fn client(last: u8) -> IpAddr {
        IpAddr::from([192, 168, 0, last])
    }

    fn none(_: SocketAddr) -> usize {
        0
    }

    #[test]
    fn round_robin_takes_each_endpoint_in_address_order() {
        let mut b = Balancer::new(Mode::RoundRobin, None);
        b.set_endpoints(vec![ep(3, ""), ep(1, ""), ep(2, "")]);
        let now = Instant::now();
        let picks: Vec<u16> = (0..7)
            .map(|_| b.pick(client(1), now, &none, &[]).unwrap().port())
            .collect();
        assert_eq!(picks, [1, 2, 3, 1, 2, 3, 1]);
    }

    #[test]
    fn a_failed_endpoint_is_passed_over_then_none_is_left() {
        let mut b = Balancer::new(Mode::RoundRobin, None);
        b.set_endpoints(vec![ep(1, ""), ep(2, "")]);
        let now = Instant::now();
        let first = b.pick(client(1), now, &none, &[]).unwrap();
        let second = b.pick(client(1), now, &none, &[first]).unwrap();
        assert_ne!(first, second);
        assert_eq!(b.pick(client(1), now, &none, &[first, second]), None);
    }

    #[test]
    fn least_connections_avoids_the_busy_endpoint_and_ties_go_round() {
        let mut b = Balancer::new(Mode::LeastConnections, None);
        b.set_endpoints(vec![ep(1, ""), ep(2, ""), ep(3, "")]);
        let busy = |a: SocketAddr| if a.port() == 1 { 5 } else { 0 };
        let now = Instant::now();
        let picks: Vec<u16> = (0..4)
            .map(|_| b.pick(client(1), now, &busy, &[]).unwrap().port())
            .collect();
        assert_eq!(picks, [2, 3, 2, 3]);
        let counts = |a: SocketAddr| [0, 2, 1, 3][a.port() as usize];
        assert_eq!(b.pick(client(1), now, &counts, &[]).unwrap().port(), 2);
    }

    /// Picks `n` times, every pick staying active (connections never close).
    fn fill(b: &mut Balancer, n: usize) -> BTreeMap<u16, usize> {
        let mut active: BTreeMap<u16, usize> = BTreeMap::new();
        let now = Instant::now();
        for _ in 0..n {
            let snapshot = active.clone();
            let count = move |a: SocketAddr| snapshot.get(&a.port()).copied().unwrap_or(0);
            let a = b.pick(client(1), now, &count, &[]).unwrap();
            *active.entry(a.port()).or_default() += 1;
        }
        active
    }

    #[test]
    fn predicted_weights_follow_spare_cpu_per_endpoint() {
        let mut b = Balancer::new(Mode::Predicted, None);
        // n1: 4000m allocatable, 1000m predicted → 3000m spare, two endpoints (1500m
        // each); n2: 2000m, 500m predicted → 1500m, one endpoint.
        b.set_endpoints(vec![ep(1, "n1"), ep(2, "n1"), ep(3, "n2")]);
        let caps: NodeCapacities = [
            (
                "n1".to_string(),
                NodeCpu {
                    allocatable_milli: 4000,
                    predicted_milli: 1000,
                },
            ),
            (
                "n2".to_string(),
                NodeCpu {
                    allocatable_milli: 2000,
                    predicted_milli: 500,
                },
            ),
        ]
        .into();
        b.set_capacities(Arc::new(caps));
        assert_eq!(b.weights(), [1500.0, 1500.0, 1500.0]);
        assert_eq!(fill(&mut b, 300), [(1, 100), (2, 100), (3, 100)].into());

        // n2 predicted full: its floor is 5 % of 2000m = 100m against n1's 1500m each.
        let caps: NodeCapacities = [
            (
                "n1".to_string(),
                NodeCpu {
                    allocatable_milli: 4000,
                    predicted_milli: 1000,
                },
            ),
            (
                "n2".to_string(),
                NodeCpu {
                    allocatable_milli: 2000,
                    predicted_milli: 9000,
                },
            ),
        ]
        .into();
        let mut b = Balancer::new(Mode::Predicted, None);
        b.set_endpoints(vec![ep(1, "n1"), ep(2, "n1"), ep(3, "n2")]);
        b.set_capacities(Arc::new(caps));
        assert_eq!(b.weights(), [1500.0, 1500.0, 100.0]);
        let got = fill(&mut b, 310);
        assert_eq!(got, [(1, 150), (2, 150), (3, 10)].into());
        // Deterministic: the same inputs, the same picks.
        let mut again = Balancer::new(Mode::Predicted, None);
        again.set_endpoints(vec![ep(3, "n2"), ep(2, "n1"), ep(1, "n1")]);
        again.set_capacities(Arc::new(
            [
                (
                    "n1".to_string(),
                    NodeCpu {
                        allocatable_milli: 4000,
                        predicted_milli: 1000,
                    },
                ),
                (
                    "n2".to_string(),
                    NodeCpu {
                        allocatable_milli: 2000,
                        predicted_milli: 9000,
                    },
                ),
            ]
            .into(),
        ));
        assert_eq!(fill(&mut again, 310), got);
    }

    #[test]
    fn predicted_without_prediction_is_least_connections() {
        let mut b = Balancer::new(Mode::Predicted, None);
        b.set_endpoints(vec![ep(1, "n1"), ep(2, "n2")]);
        assert!(b.weights().is_empty());
        let busy = |a: SocketAddr| if a.port() == 1 { 1 } else { 0 };
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(b.pick(client(1), now, &busy, &[]).unwrap().port(), 2);
        }
        // Capacities for other nodes only: still no weights.
        b.set_capacities(Arc::new(
            [(
                "n9".to_string(),
                NodeCpu {
                    allocatable_milli: 1000,
                    predicted_milli: 0,
                },
            )]
            .into(),
        ));
        assert!(b.weights().is_empty());
    }

    #[test]
    fn an_endpoint_on_an_unknown_node_gets_the_mean_weight() {
        let mut b = Balancer::new(Mode::Predicted, None);
        b.set_endpoints(vec![ep(1, "n1"), ep(2, "n2"), ep(3, "")]);
        b.set_capacities(Arc::new(
            [
                (
                    "n1".to_string(),
                    NodeCpu {
                        allocatable_milli: 1000,
                        predicted_milli: 0,
                    },
                ),
                (
                    "n2".to_string(),
                    NodeCpu {
                        allocatable_milli: 3000,
                        predicted_milli: 0,
                    },
                ),
            ]
            .into(),
        ));
        assert_eq!(b.weights(), [1000.0, 3000.0, 2000.0]);
    }

    #[test]
    fn affinity_keeps_a_client_on_its_endpoint_until_the_timeout() {
        let timeout = Duration::from_secs(10);
        let mut b = Balancer::new(Mode::RoundRobin, Some(timeout));
        b.set_endpoints(vec![ep(1, ""), ep(2, ""), ep(3, "")]);
        let t0 = Instant::now();
        let a = b.pick(client(1), t0, &none, &[]).unwrap();
        let other = b.pick(client(2), t0, &none, &[]).unwrap();
        assert_ne!(a, other);
        // Used every 9 s: the timeout counts from the last use.
        for k in 1..=5 {
            let at = t0 + Duration::from_secs(9 * k);
            assert_eq!(b.pick(client(1), at, &none, &[]).unwrap(), a);
        }
        // Unused for 10 s: expired, round robin chooses again (the cursor is past 2).
        let late = t0 + Duration::from_secs(45 + 10);
        assert_eq!(b.pick(client(1), late, &none, &[]).unwrap().port(), 3);
        // Sweeping forgets expired clients.
        b.sweep(late + timeout);
        assert!(b.sticky.is_empty());
    }

    #[test]
    fn affinity_moves_when_the_endpoint_leaves_or_fails() {
        let mut b = Balancer::new(Mode::RoundRobin, Some(DEFAULT_AFFINITY_TIMEOUT));
        b.set_endpoints(vec![ep(1, ""), ep(2, "")]);
        let now = Instant::now();
        let a = b.pick(client(1), now, &none, &[]).unwrap();
        let moved = b.pick(client(1), now, &none, &[a]).unwrap();
        assert_ne!(a, moved);
        assert_eq!(b.pick(client(1), now, &none, &[]).unwrap(), moved);
        b.set_endpoints(
            vec![ep(1, ""), ep(3, "")]
                .into_iter()
                .filter(|e| e.addr != moved)
                .collect(),
        );
        let after = b.pick(client(1), now, &none, &[]).unwrap();
        assert_ne!(after, moved);
        assert!(b.is_ready(after));
    }

    #[test]
    fn removed_endpoints_are_never_picked() {
        for mode in [Mode::RoundRobin, Mode::LeastConnections, Mode::Predicted] {
            let mut b = Balancer::new(mode, Some(Duration::from_secs(60)));
            b.set_endpoints(vec![ep(1, ""), ep(2, ""), ep(3, "")]);
            let now = Instant::now();
            for c in 0..6 {
                b.pick(client(c), now, &none, &[]);
            }
            b.set_endpoints(vec![ep(2, "")]);
            for c in 0..6 {
                assert_eq!(
                    b.pick(client(c), now, &none, &[]).unwrap().port(),
                    2,
                    "{mode:?}"
                );
            }
            b.set_endpoints(Vec::new());
            assert_eq!(b.pick(client(0), now, &none, &[]), None);
        }
    }

    proptest! {
        /// Whatever the mode, capacities, loads, affinities and failed attempts, a pick is
        /// a ready endpoint not yet tried, and there is one whenever one is left.
        #[test]
        fn a_pick_is_always_a_ready_untried_endpoint(
            ports in proptest::collection::vec(1u16..20, 0..8),
            later in proptest::collection::vec(1u16..20, 0..8),
            nodes in proptest::collection::vec(0usize..3, 8),
            mode in 0usize..3,
            loads in proptest::collection::vec(0usize..5, 20),
            caps in proptest::collection::vec((0u64..4000, 0u64..6000), 3),
            with_caps in any::<bool>(),
            affinity in any::<bool>(),
            steps in proptest::collection::vec((0u8..4, 0u64..30, proptest::collection::vec(1u16..20, 0..3)), 1..30),
        ) {
            let mode = [Mode::RoundRobin, Mode::LeastConnections, Mode::Predicted][mode];
            let names = ["n0", "n1", ""];
            let mk = |ps: &[u16]| -> Vec<Endpoint> {
                ps.iter().enumerate().map(|(i, p)| ep(*p, names[nodes[i % nodes.len()]])).collect()
            };
            let mut b = Balancer::new(mode, affinity.then_some(Duration::from_secs(10)));
            b.set_endpoints(mk(&ports));
            if with_caps {
                b.set_capacities(Arc::new(
                    caps.iter().enumerate().map(|(i, (a, p))| {
                        (format!("n{i}"), NodeCpu { allocatable_milli: *a, predicted_milli: *p })
                    }).collect(),
                ));
            }
            let t0 = Instant::now();
            let load = |a: SocketAddr| loads[a.port() as usize];
            for (k, (c, secs, tried)) in steps.iter().enumerate() {
                if k == steps.len() / 2 {
                    b.set_endpoints(mk(&later));
                }
                let tried: Vec<SocketAddr> =
                    tried.iter().map(|p| SocketAddr::from(([10, 0, 0, 1], *p))).collect();
                let got = b.pick(client(*c), t0 + Duration::from_secs(*secs), &load, &tried);
                let left = b.endpoints().iter().any(|e| !tried.contains(&e.addr));
                match got {
                    Some(a) => {
                        prop_assert!(b.is_ready(a));
                        prop_assert!(!tried.contains(&a));
                    }
                    None => prop_assert!(!left),
                }
            }
        }
    }
}
