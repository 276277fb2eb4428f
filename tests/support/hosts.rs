//! Test hosts with their own network stacks: network namespaces on one machine, joined
//! by a bridge, so that traffic between nodes really crosses a network.
//!
//! The bridge lives in a "switch" namespace of its own (the root namespace's iptables,
//! where Docker's FORWARD policy is DROP and br_netfilter is loaded, would filter
//! bridged frames); each host is a namespace with `eth0` on that bridge; the test
//! process itself (the root namespace) has a leg on it too, with the network's first
//! address, where the API server listens and from which the test reaches Services as an
//! outside client would.
//!
//! `ip` is used here, in the test harness, to build the test network; the agent itself
//! programs its pod network through netlink.
//!
//! Dropping a [`TestNet`] deletes its namespaces (and with them every interface in
//! them) and the root leg.
#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip_quiet(args: &[&str]) {
    let _ = Command::new("ip").args(args).output();
}

/// A test network: a bridge in its own namespace, the test's leg on it, and hosts.
pub struct TestNet {
    /// A short id unique to this network on this machine (pid and counter).
    pub id: String,
    /// The switch namespace.
    pub switch: String,
    /// The root namespace's leg (interface name in the root namespace).
    pub leg: String,
    /// The first three octets of the network's /24 (`10.77.N`).
    pub prefix: String,
    /// The hosts made so far, in order.
    pub hosts: Vec<Host>,
}

/// One host: a network namespace with `eth0` on the test network.
#[derive(Clone, Debug)]
pub struct Host {
    /// The node name it runs.
    pub name: String,
    /// The namespace's name (`ip netns` name, under /run/netns).
    pub netns: String,
    /// Its address on the test network.
    pub ip: String,
    /// Its port on the switch's bridge (set down to cut the host off).
    pub port: String,
}

impl TestNet {
    /// A fresh network `10.77.N.0/24` (N from the pid and a counter, so that test
    /// binaries running at once do not collide), the test's leg at `.1`.
    pub fn new() -> TestNet {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let id = format!("{:x}{n}", pid % 0xfffff);
        let third = (pid.wrapping_mul(7).wrapping_add(n * 31)) % 250 + 2;
        let prefix = format!("10.77.{third}");
        let switch = format!("plsw{id}");
        let leg = format!("plr{id}");
        let peer = format!("plrp{id}");
        // Whatever a crashed run with the same id left.
        ip_quiet(&["netns", "del", &switch]);
        ip_quiet(&["link", "del", &leg]);
        ip(&["netns", "add", &switch]);
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        ip(&["-n", &switch, "link", "set", "lo", "up"]);
        ip(&["link", "add", &leg, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &switch]);
        ip(&["-n", &switch, "link", "set", &peer, "master", "br0", "up"]);
        ip(&["addr", "add", &format!("{prefix}.1/24"), "dev", &leg]);
        ip(&["link", "set", &leg, "up"]);
        TestNet {
            id,
            switch,
            leg,
            prefix,
            hosts: Vec::new(),
        }
    }

    /// The test's own address on the network (where the server listens).
    pub fn gateway(&self) -> String {
        format!("{}.1", self.prefix)
    }

    /// The cluster CIDR for this network's pods (`10.X.0.0/16`, X from the same
    /// unique number as the network, so that the test machine's routes to pods of
    /// networks made at once do not collide).
    pub fn cluster_cidr(&self) -> String {
        let third: u32 = self.prefix.rsplit('.').next().unwrap().parse().unwrap();
        format!("10.{}.0.0/16", 100 + third % 100)
    }

    /// Routes pod CIDR `cidr` through host `via` from the test machine: the test network
    /// knows where pods are (as a router fed by BGP would), so that pods reach the API
    /// server and the test reaches pods without address translation.
    pub fn route(&self, cidr: &str, via: &str) {
        ip(&["route", "replace", cidr, "via", via, "dev", &self.leg]);
    }

    /// Adds host `name` at `.(10 + index)`.
    pub fn add_host(&mut self, name: &str) -> Host {
        let i = self.hosts.len() + 1;
        let netns = format!("plh{}-{i}", self.id);
        let port = format!("plp{}-{i}", self.id);
        let addr = format!("{}.{}", self.prefix, 10 + i);
        ip_quiet(&["netns", "del", &netns]);
        ip(&["netns", "add", &netns]);
        ip(&["-n", &netns, "link", "set", "lo", "up"]);
        ip(&[
            "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &netns,
        ]);
        ip(&["link", "set", &port, "netns", &self.switch]);
        ip(&[
            "-n",
            &self.switch,
            "link",
            "set",
            &port,
            "master",
            "br0",
            "up",
        ]);
        ip(&[
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &netns, "link", "set", "eth0", "up"]);
        let host = Host {
            name: name.to_string(),
            netns,
            ip: addr,
            port,
        };
        self.hosts.push(host.clone());
        host
    }

    /// The host running node `name`.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    /// Cuts host `name` off the network (its switch port down) or reconnects it.
    pub fn set_connected(&self, name: &str, connected: bool) {
        let h = self.host(name);
        ip(&[
            "-n",
            &self.switch,
            "link",
            "set",
            &h.port,
            if connected { "up" } else { "down" },
        ]);
    }
}

impl Host {
    /// A command that runs `program` in this host's network namespace (and nothing
    /// else of it: the mount namespace stays the machine's, so bind mounts the agent
    /// makes are seen by a restarted agent).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.netns))
            .arg("--")
            .arg(program);
        c
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for h in &self.hosts {
            ip_quiet(&["netns", "del", &h.netns]);
        }
        ip_quiet(&["netns", "del", &self.switch]);
        ip_quiet(&["link", "del", &self.leg]);
    }
}
