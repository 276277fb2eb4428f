//! The pod network (the job a CNI bridge plugin and a host-gateway router do for the
//! kubelet): every pod gets its own network namespace and an address from its node's
//! pod CIDR (`spec.podCIDR`, allocated by the control plane from `--cluster-cidr`).
//!
//! On the node: one Linux bridge (`pl` + 8 hex digits of the node name) holding the
//! CIDR's first address, the pods' default gateway; per pod a veth pair, one end on the
//! bridge, the other moved into the pod's namespace as `eth0` with the pod's address and
//! a default route through the bridge. Containers of one pod join the same namespace, so
//! they reach each other on `localhost`. The namespace outlives its containers: it is a
//! bind mount of the namespace file at `STATE/network/netns/<pod uid>` (what `ip netns`
//! does under `/run/netns`), removed when the pod goes.
//!
//! Between nodes: a route per other node, its pod CIDR through its `InternalIP` (the
//! "host-gw" design of flannel and kube-router: nodes share a network segment, no
//! encapsulation). Packets between pods on different nodes really cross that network.
//!
//! Service addresses (ClusterIPs) go on a dummy interface (`ps` + 8 hex digits), as
//! kube-proxy's IPVS mode puts them on `kube-ipvs0`, so the agent's service proxy can
//! bind them and pods reach them through their default route; on a kernel without dummy
//! interfaces, on the loopback interface (as local either way).
//!
//! Everything is done through netlink (rtnetlink); nothing shells out to `ip`. All
//! operations are idempotent: an agent restarted on the same state directory finds its
//! bridge, pods and routes and repairs what is missing.
//!
//! IPv4 only.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::{Handle, LinkBridge, LinkDummy, LinkUnspec, LinkVeth, RouteMessageBuilder};
use serde::{Deserialize, Serialize};

use crate::agent::runtime::{BoxFuture, PodRef};

pub use super::cidr::Ipv4Cidr;

/// A pod's place on the network, as recorded under `STATE/network/pods/<uid>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodAttachment {
    /// The pod's uid.
    pub uid: String,
    /// The pod's namespace and name (for logs).
    pub pod: String,
    /// The pod's address.
    pub ip: Ipv4Addr,
    /// The network namespace file containers join (`setns`).
    pub netns: PathBuf,
    /// The host end of the pod's veth pair (on the bridge).
    pub host_veth: String,
}

/// A short, stable interface-name suffix for `s` (FNV-1a, 8 hex digits: names must fit
/// the kernel's 15 bytes).
pub fn short_hash(s: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// The bridge of node `node`.
pub fn bridge_name(node: &str) -> String {
    format!("pl{}", short_hash(node))
}

/// The dummy interface holding node `node`'s Service addresses.
pub fn services_interface(node: &str) -> String {
    format!("ps{}", short_hash(node))
}

fn nl(what: impl std::fmt::Display, e: rtnetlink::Error) -> String {
    format!("{what}: {e}")
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -errno || m.raw_code() == errno)
}

/// A netlink connection in the calling thread's network namespace (its socket stays
/// in that namespace whatever thread uses it later).
fn connect() -> Result<Handle, String> {
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(|e| format!("netlink socket: {e}"))?;
    tokio::spawn(conn);
    Ok(handle)
}

/// A netlink handle in another network namespace: the one at `enter`, or a new one
/// bind-mounted at `create_at` (made on a fresh thread, as `unshare` acts per thread).
async fn in_netns(enter: Option<PathBuf>, create_at: Option<PathBuf>) -> Result<Handle, String> {
    let rt = tokio::runtime::Handle::current();
    let join = std::thread::spawn(move || -> Result<Handle, String> {
        let _guard = rt.enter();
        if let Some(path) = &enter {
            let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {}: {e}", path.display()))?;
        } else if let Some(path) = &create_at {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
            File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                path,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| {
                format!(
                    "bind-mounting the network namespace on {}: {e}",
                    path.display()
                )
            })?;
        }
        connect()
    });
    tokio::task::spawn_blocking(move || join.join())
        .await
        .map_err(|e| format!("network namespace thread: {e}"))?
        .map_err(|_| "network namespace thread panicked".to_string())?
}

/// Unmounts and removes a namespace file (missing is fine).
fn remove_netns(path: &Path) {
    let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}

async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, String> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
        Err(e) => Err(nl(format!("looking up interface {name}"), e)),
    }
}

async fn add_address(handle: &Handle, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<(), String> {
    match handle
        .address()
        .add(index, IpAddr::V4(ip), prefix)
        .execute()
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
        Err(e) => Err(nl(format!("adding {ip}/{prefix}"), e)),
    }
}

async fn addresses_of(handle: &Handle, index: u32) -> Result<Vec<(Ipv4Addr, u8)>, String> {
    let mut out = Vec::new();
    let mut stream = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    while let Some(msg) = stream
        .try_next()
        .await
        .map_err(|e| nl("listing addresses", e))?
    {
        for attr in &msg.attributes {
            if let AddressAttribute::Local(IpAddr::V4(ip))
            | AddressAttribute::Address(IpAddr::V4(ip)) = attr
            {
                if !out.iter().any(|(a, _)| a == ip) {
                    out.push((*ip, msg.header.prefix_len));
                }
            }
        }
    }
    Ok(out)
}

async fn set_up(handle: &Handle, index: u32) -> Result<(), String> {
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| nl(format!("setting interface {index} up"), e))
}

/// The node's pod network (see the module docs).
pub struct PodNetwork {
    handle: Handle,
    cidr: Ipv4Cidr,
    gateway: Ipv4Addr,
    address: Ipv4Addr,
    bridge: String,
    bridge_index: u32,
    services_index: u32,
    /// The Service interface is this node's dummy (deleted with the node's network),
    /// not the loopback interface.
    services_owned: bool,
    dir: PathBuf,
    lock: tokio::sync::Mutex<()>,
    routes: tokio::sync::Mutex<BTreeMap<Ipv4Cidr, Ipv4Addr>>,
}

impl std::fmt::Debug for PodNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodNetwork")
            .field("cidr", &self.cidr)
            .field("bridge", &self.bridge)
            .finish_non_exhaustive()
    }
}

impl PodNetwork {
    /// Sets up (or finds) node `node`'s bridge with the first address of `cidr`, the
    /// Service-address interface, and IPv4 forwarding, in the agent's network namespace;
    /// state under `state_dir/network`. `address` is the node's own address (routes are
    /// not installed towards it).
    pub async fn setup(
        node: &str,
        cidr: Ipv4Cidr,
        address: Ipv4Addr,
        state_dir: &Path,
    ) -> Result<Self, String> {
        if cidr.size() < 4 {
            return Err(format!("pod CIDR {cidr} is too small for pods"));
        }
        let dir = state_dir.join("network");
        for sub in ["pods", "ips", "netns"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|e| format!("{}: {e}", dir.join(sub).display()))?;
        }
        let handle = connect()?;
        let bridge = bridge_name(node);
        let gateway = cidr.nth(1).expect("size checked");
        let bridge_index = match link_index(&handle, &bridge).await? {
            Some(i) => i,
            None => {
                match handle
                    .link()
                    .add(LinkBridge::new(&bridge).up().build())
                    .execute()
                    .await
                {
                    Ok(()) => {}
                    Err(e) if is_errno(&e, libc::EEXIST) => {}
                    Err(e) => return Err(nl(format!("creating bridge {bridge}"), e)),
                }
                link_index(&handle, &bridge)
                    .await?
                    .ok_or_else(|| format!("bridge {bridge} vanished after its creation"))?
            }
        };
        add_address(&handle, bridge_index, gateway, cidr.prefix).await?;
        set_up(&handle, bridge_index).await?;
        let services = services_interface(node);
        let (services_index, services_owned) = match link_index(&handle, &services).await? {
            Some(i) => (i, true),
            None => {
                let created = handle
                    .link()
                    .add(LinkDummy::new(&services).up().build())
                    .execute()
                    .await;
                match (created, link_index(&handle, &services).await?) {
                    (_, Some(i)) => (i, true),
                    // No dummy interfaces in this kernel: Service addresses go on the
                    // loopback interface, where they are as local.
                    (Err(e), None) if is_errno(&e, libc::EOPNOTSUPP) => {
                        tracing::info!("no dummy interfaces here: Service addresses go on lo");
                        let lo = link_index(&handle, "lo")
                            .await?
                            .ok_or("no loopback interface")?;
                        (lo, false)
                    }
                    (Err(e), None) => return Err(nl(format!("creating interface {services}"), e)),
                    (Ok(()), None) => {
                        return Err(format!("interface {services} vanished after its creation"))
                    }
                }
            }
        };
        set_up(&handle, services_index).await?;
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
            .map_err(|e| format!("enabling IPv4 forwarding: {e}"))?;
        tracing::info!(%cidr, %bridge, %gateway, "pod network ready");
        Ok(PodNetwork {
            handle,
            cidr,
            gateway,
            address,
            bridge,
            bridge_index,
            services_index,
            services_owned,
            dir,
            lock: tokio::sync::Mutex::new(()),
            routes: tokio::sync::Mutex::new(BTreeMap::new()),
        })
    }

    /// The node's pod CIDR.
    pub fn cidr(&self) -> Ipv4Cidr {
        self.cidr
    }

    /// The pods' gateway (the bridge's address).
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// The bridge's name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    fn record_path(&self, uid: &str) -> PathBuf {
        self.dir.join("pods").join(format!(
            "{}.json",
            crate::agent::process::path_component(uid)
        ))
    }

    fn netns_path(&self, uid: &str) -> PathBuf {
        self.dir
            .join("netns")
            .join(crate::agent::process::path_component(uid))
    }

    /// The recorded attachment of pod `uid`, if any.
    pub fn lookup(&self, uid: &str) -> Option<PodAttachment> {
        let bytes = std::fs::read(self.record_path(uid)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every recorded attachment (pods this node gave an address to).
    pub fn attachments(&self) -> Vec<PodAttachment> {
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.join("pods")) {
            for entry in entries.flatten() {
                if let Ok(bytes) = std::fs::read(entry.path()) {
                    if let Ok(a) = serde_json::from_slice::<PodAttachment>(&bytes) {
                        out.push(a);
                    }
                }
            }
        }
        out.sort_by(|a, b| a.uid.cmp(&b.uid));
        out
    }

    /// Reserves a free address for `uid` (a file per address under `ips/`, created
    /// exclusively, so two pods never get one address even across agent restarts).
    fn allocate(&self, uid: &str) -> Result<Ipv4Addr, String> {
        let ips = self.dir.join("ips");
        for ip in self.cidr.pod_addresses() {
            let path = ips.join(ip.to_string());
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(uid.as_bytes())
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    return Ok(ip);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if std::fs::read_to_string(&path).ok().as_deref() == Some(uid) {
                        return Ok(ip);
                    }
                }
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
        Err(format!(
            "no free address left in the pod CIDR {} ({} pods have one)",
            self.cidr,
            self.cidr.size().saturating_sub(3)
        ))
    }

    /// Gives pod `pod` its namespace, veth pair and address, or answers the ones it has
    /// (repairing a half-made attachment).
    pub async fn attach(&self, pod: &PodRef) -> Result<PodAttachment, String> {
        let _guard = self.lock.lock().await;
        if let Some(a) = self.lookup(&pod.uid) {
            if a.netns.exists() && link_index(&self.handle, &a.host_veth).await?.is_some() {
                return Ok(a);
            }
            tracing::info!(pod = %a.pod, "repairing the pod's network attachment");
        }
        let uid = &pod.uid;
        let hash = short_hash(uid);
        let host_veth = format!("pv{hash}");
        let peer = format!("pp{hash}");
        let netns = self.netns_path(uid);
        // A half-made attachment from before: start over.
        if let Some(i) = link_index(&self.handle, &host_veth).await? {
            let _ = self.handle.link().del(i).execute().await;
        }
        if let Some(i) = link_index(&self.handle, &peer).await? {
            let _ = self.handle.link().del(i).execute().await;
        }
        remove_netns(&netns);
        let ip = self.allocate(uid)?;
        let result = self.make(pod, ip, &host_veth, &peer, &netns).await;
        match result {
            Ok(a) => {
                let bytes = serde_json::to_vec_pretty(&a).map_err(|e| e.to_string())?;
                let path = self.record_path(uid);
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
                std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
                tracing::info!(pod = %a.pod, ip = %a.ip, "pod attached to the network");
                Ok(a)
            }
            Err(e) => {
                if let Ok(Some(i)) = link_index(&self.handle, &host_veth).await {
                    let _ = self.handle.link().del(i).execute().await;
                }
                remove_netns(&netns);
                let _ = std::fs::remove_file(self.dir.join("ips").join(ip.to_string()));
                Err(e)
            }
        }
    }

    async fn make(
        &self,
        pod: &PodRef,
        ip: Ipv4Addr,
        host_veth: &str,
        peer: &str,
        netns: &Path,
    ) -> Result<PodAttachment, String> {
        let pod_handle = in_netns(None, Some(netns.to_path_buf())).await?;
        self.handle
            .link()
            .add(LinkVeth::new(host_veth, peer).build())
            .execute()
            .await
            .map_err(|e| nl(format!("creating veth pair {host_veth}/{peer}"), e))?;
        let host_index = link_index(&self.handle, host_veth)
            .await?
            .ok_or_else(|| format!("veth {host_veth} vanished"))?;
        let peer_index = link_index(&self.handle, peer)
            .await?
            .ok_or_else(|| format!("veth {peer} vanished"))?;
        let ns_file = File::open(netns).map_err(|e| format!("{}: {e}", netns.display()))?;
        use std::os::fd::AsRawFd;
        self.handle
            .link()
            .set(
                LinkUnspec::new_with_index(peer_index)
                    .setns_by_fd(ns_file.as_raw_fd())
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| nl(format!("moving {peer} into the pod's namespace"), e))?;
        drop(ns_file);
        self.handle
            .link()
            .set(
                LinkUnspec::new_with_index(host_index)
                    .controller(self.bridge_index)
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| nl(format!("attaching {host_veth} to {}", self.bridge), e))?;
        // Inside the pod's namespace: lo up, the peer renamed eth0 with the address, a
        // default route through the bridge.
        if let Some(lo) = link_index(&pod_handle, "lo").await? {
            set_up(&pod_handle, lo).await?;
        }
        let eth = link_index(&pod_handle, peer)
            .await?
            .ok_or_else(|| format!("{peer} is not in the pod's namespace"))?;
        pod_handle
            .link()
            .set(LinkUnspec::new_with_index(eth).name("eth0").build())
            .execute()
            .await
            .map_err(|e| nl("renaming the pod's interface to eth0", e))?;
        add_address(&pod_handle, eth, ip, self.cidr.prefix).await?;
        set_up(&pod_handle, eth).await?;
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(self.gateway)
            .build();
        match pod_handle.route().add(route).execute().await {
            Ok(()) => {}
            Err(e) if is_errno(&e, libc::EEXIST) => {}
            Err(e) => return Err(nl("adding the pod's default route", e)),
        }
        Ok(PodAttachment {
            uid: pod.uid.clone(),
            pod: format!("{}/{}", pod.namespace, pod.name),
            ip,
            netns: netns.to_path_buf(),
            host_veth: host_veth.to_string(),
        })
    }

    /// Takes pod `uid` off the network: its veth pair, namespace and address go.
    /// Detaching a pod that has nothing is fine.
    pub async fn detach(&self, uid: &str) -> Result<(), String> {
        let _guard = self.lock.lock().await;
        let host_veth = self
            .lookup(uid)
            .map(|a| a.host_veth)
            .unwrap_or_else(|| format!("pv{}", short_hash(uid)));
        if let Some(i) = link_index(&self.handle, &host_veth).await? {
            match self.handle.link().del(i).execute().await {
                Ok(()) => {}
                Err(e) if is_errno(&e, libc::ENODEV) => {}
                Err(e) => return Err(nl(format!("deleting {host_veth}"), e)),
            }
        }
        remove_netns(&self.netns_path(uid));
        if let Ok(entries) = std::fs::read_dir(self.dir.join("ips")) {
            for entry in entries.flatten() {
                if std::fs::read_to_string(entry.path()).ok().as_deref() == Some(uid) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let _ = std::fs::remove_file(self.record_path(uid));
        Ok(())
    }

    /// Makes the routes to other nodes' pod CIDRs exactly `peers` (`(cidr, node
    /// address)`), skipping this node's own CIDR and address; removes routes it added
    /// before that are no longer wanted.
    pub async fn sync_routes(&self, peers: &[(Ipv4Cidr, Ipv4Addr)]) -> Result<(), String> {
        let mut routes = self.routes.lock().await;
        let wanted: BTreeMap<Ipv4Cidr, Ipv4Addr> = peers
            .iter()
            .filter(|(cidr, via)| *cidr != self.cidr && *via != self.address)
            .copied()
            .collect();
        let mut errors = Vec::new();
        for (cidr, via) in &wanted {
            if routes.get(cidr) == Some(via) {
                continue;
            }
            let msg = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(cidr.network, cidr.prefix)
                .gateway(*via)
                .build();
            match self.handle.route().add(msg).replace().execute().await {
                Ok(()) => {
                    tracing::info!(%cidr, %via, "route to a node's pods");
                    routes.insert(*cidr, *via);
                }
                Err(e) => errors.push(nl(format!("route {cidr} via {via}"), e)),
            }
        }
        let stale: Vec<(Ipv4Cidr, Ipv4Addr)> = routes
            .iter()
            .filter(|(c, v)| wanted.get(c) != Some(v))
            .map(|(c, v)| (*c, *v))
            .collect();
        for (cidr, via) in stale {
            if !wanted.contains_key(&cidr) {
                let msg = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(cidr.network, cidr.prefix)
                    .gateway(via)
                    .build();
                match self.handle.route().del(msg).execute().await {
                    Ok(()) => {}
                    Err(e) if is_errno(&e, libc::ESRCH) => {}
                    Err(e) => errors.push(nl(format!("removing route {cidr} via {via}"), e)),
                }
            }
            routes.remove(&cidr);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// Adds a Service address to the node (the proxy binds it).
    pub async fn add_service_ip(&self, ip: Ipv4Addr) -> Result<(), String> {
        add_address(&self.handle, self.services_index, ip, 32).await
    }

    /// Removes a Service address from the node (absent is fine).
    pub async fn remove_service_ip(&self, ip: Ipv4Addr) -> Result<(), String> {
        let present = addresses_of(&self.handle, self.services_index).await?;
        if !present.iter().any(|(a, _)| *a == ip) {
            return Ok(());
        }
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(self.services_index)
            .set_address_filter(IpAddr::V4(ip))
            .execute();
        while let Some(msg) = stream
            .try_next()
            .await
            .map_err(|e| nl("listing addresses", e))?
        {
            match self.handle.address().del(msg).execute().await {
                Ok(()) => {}
                Err(e) if is_errno(&e, libc::EADDRNOTAVAIL) => {}
                Err(e) => return Err(nl(format!("removing {ip}"), e)),
            }
        }
        Ok(())
    }

    /// Removes everything of this node's network: every pod attachment, the bridge and
    /// the Service interface (`plimsoll agent cleanup`).
    pub async fn destroy(&self) -> Result<(), String> {
        for a in self.attachments() {
            self.detach(&a.uid).await?;
        }
        if !self.services_owned {
            for ip in addresses_of(&self.handle, self.services_index).await? {
                if ip.1 == 32 && !ip.0.is_loopback() {
                    self.remove_service_ip(ip.0).await?;
                }
            }
        }
        let owned = self.services_owned.then_some(self.services_index);
        for index in std::iter::once(self.bridge_index).chain(owned) {
            match self.handle.link().del(index).execute().await {
                Ok(()) => {}
                Err(e) if is_errno(&e, libc::ENODEV) => {}
                Err(e) => return Err(nl("deleting the node's interfaces", e)),
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

/// Removes what [`PodNetwork::setup`] and [`PodNetwork::attach`] left for node `node`
/// under `state_dir` without knowing its CIDR: pod namespaces and veth pairs, the
/// bridge and the Service interface.
pub async fn destroy_all(node: &str, state_dir: &Path) -> Result<(), String> {
    let handle = connect()?;
    let dir = state_dir.join("network");
    if let Ok(entries) = std::fs::read_dir(dir.join("pods")) {
        for entry in entries.flatten() {
            if let Ok(bytes) = std::fs::read(entry.path()) {
                if let Ok(a) = serde_json::from_slice::<PodAttachment>(&bytes) {
                    if let Some(i) = link_index(&handle, &a.host_veth).await? {
                        let _ = handle.link().del(i).execute().await;
                    }
                    remove_netns(&a.netns);
                }
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("netns")) {
        for entry in entries.flatten() {
            remove_netns(&entry.path());
        }
    }
    for name in [bridge_name(node), services_interface(node)] {
        if let Some(i) = link_index(&handle, &name).await? {
            let _ = handle.link().del(i).execute().await;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The service proxy's Service addresses go on the node's Service interface.
impl crate::agent::proxy::VirtualIps for PodNetwork {
    fn add(&self, ip: Ipv4Addr) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.add_service_ip(ip))
    }

    fn remove(&self, ip: Ipv4Addr) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.remove_service_ip(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_fit_the_kernel_limit() {
        for node in [
            "n1",
            "a-very-long-node-name-that-goes-on-and-on.example.com",
        ] {
            assert!(bridge_name(node).len() <= 15);
            assert!(services_interface(node).len() <= 15);
            assert_ne!(bridge_name(node), services_interface(node));
        }
        assert_ne!(bridge_name("n1"), bridge_name("n2"));
    }
}
