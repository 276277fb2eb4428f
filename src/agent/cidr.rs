//! IPv4 networks (`ADDRESS/PREFIX`) as the node agent uses them: a node's pod CIDR and
//! the addresses pods get from it. A leaf module, so that the runtime contract can name
//! a CIDR without depending on the pod network's implementation.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// An IPv4 network, `ADDRESS/PREFIX` with the host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ipv4Cidr {
    /// The network address.
    pub network: Ipv4Addr,
    /// The prefix length (0–32).
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// Parses `10.42.1.0/24`; host bits must be zero (`10.42.1.5/24` is refused, as
    /// Kubernetes refuses a podCIDR that is not a network address).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR (ADDRESS/PREFIX)"))?;
        let network: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{s:?}: {addr:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("{s:?}: prefix {prefix:?} is not 0–32"))?;
        let cidr = Ipv4Cidr { network, prefix };
        if u32::from(network) & !cidr.mask() != 0 {
            return Err(format!(
                "{s:?}: host bits are set (the network is {}/{prefix})",
                Ipv4Addr::from(u32::from(network) & cidr.mask())
            ));
        }
        Ok(cidr)
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// Whether `ip` is in the network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    /// The number of addresses in the network.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// The `n`-th address of the network (0 is the network address), if inside it.
    pub fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(u32::from(self.network) + n as u32))
    }

    /// The addresses pods may get: all but the network address, the gateway (the first
    /// address) and the broadcast address.
    pub fn pod_addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        let last = self.size().saturating_sub(1);
        (2..last).filter_map(|n| self.nth(n))
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parse_and_addresses() {
        let c = Ipv4Cidr::parse("10.42.1.0/24").unwrap();
        assert_eq!(c.to_string(), "10.42.1.0/24");
        assert_eq!(c.nth(1), Some(Ipv4Addr::new(10, 42, 1, 1)));
        assert!(c.contains(Ipv4Addr::new(10, 42, 1, 255)));
        assert!(!c.contains(Ipv4Addr::new(10, 42, 2, 0)));
        let pods: Vec<_> = c.pod_addresses().collect();
        assert_eq!(pods.len(), 253);
        assert_eq!(pods[0], Ipv4Addr::new(10, 42, 1, 2));
        assert_eq!(*pods.last().unwrap(), Ipv4Addr::new(10, 42, 1, 254));
        for bad in [
            "10.42.1.5/24",
            "10.42.1.0",
            "10.42.1.0/33",
            "x/24",
            "10.42.1.0/-1",
        ] {
            assert!(Ipv4Cidr::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Ipv4Cidr::parse("0.0.0.0/0").unwrap().size(), 1 << 32);
    }
}
