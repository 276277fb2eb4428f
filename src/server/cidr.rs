//! IPv4 CIDR blocks and port ranges, the little address arithmetic the control plane
//! needs: the node IPAM controller carves the cluster CIDR into per-node pod CIDRs and
//! the API server hands out Service cluster IPs and node ports. Hand-written (a `u32`
//! and a prefix length) rather than a crate, since this is all of it. IPv4 only.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Why a CIDR or a port range could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not `a.b.c.d/n` with `n` in 0..=32.
    #[error("invalid CIDR {0:?}: expected an IPv4 block such as 10.42.0.0/16")]
    Syntax(String),
    /// Host bits are set (`10.42.0.1/16`).
    #[error("invalid CIDR {given:?}: host bits are set (the block is {block})")]
    HostBits {
        /// What was given.
        given: String,
        /// The block it lies in.
        block: Ipv4Cidr,
    },
    /// Not `low-high` with `low <= high`.
    #[error("invalid port range {0:?}: expected LOW-HIGH such as 30000-32767")]
    PortRange(String),
}

/// An IPv4 block: a network address and a prefix length (host bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    network: u32,
    prefix: u8,
}

impl Ipv4Cidr {
    /// The block of `prefix` bits containing `addr` (host bits cleared).
    pub fn containing(addr: Ipv4Addr, prefix: u8) -> Ipv4Cidr {
        let prefix = prefix.min(32);
        Ipv4Cidr {
            network: u32::from(addr) & mask(prefix),
            prefix,
        }
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// How many addresses the block spans (2^(32 − prefix)).
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// The first and last address as numbers.
    pub fn bounds(&self) -> (u32, u32) {
        let last = u64::from(self.network) + self.size() - 1;
        (self.network, last as u32)
    }

    /// Whether `addr` lies in the block.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix) == self.network
    }

    /// Whether `other` lies entirely in this block.
    pub fn covers(&self, other: &Ipv4Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.network())
    }

    /// Whether the two blocks share an address.
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.covers(other) || other.covers(self)
    }

    /// The `index`-th block of `prefix` bits inside this one (`None` past the end or if
    /// `prefix` is shorter than this block's).
    pub fn subnet(&self, prefix: u8, index: u64) -> Option<Ipv4Cidr> {
        if prefix < self.prefix || prefix > 32 || index >= self.subnets(prefix) {
            return None;
        }
        let step = 1u64 << (32 - u32::from(prefix));
        Some(Ipv4Cidr {
            network: (u64::from(self.network) + index * step) as u32,
            prefix,
        })
    }

    /// How many blocks of `prefix` bits this one holds (0 if `prefix` is shorter).
    pub fn subnets(&self, prefix: u8) -> u64 {
        if prefix < self.prefix || prefix > 32 {
            return 0;
        }
        1u64 << (u32::from(prefix) - u32::from(self.prefix))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    /// `a.b.c.d/n`; host bits must be zero (as Go's `net.ParseCIDR` users check).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || CidrError::Syntax(s.to_string());
        let (addr, prefix) = s.trim().split_once('/').ok_or_else(syntax)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| syntax())?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        let prefix: u8 = prefix.parse().map_err(|_| syntax())?;
        if prefix > 32 {
            return Err(syntax());
        }
        let block = Ipv4Cidr::containing(addr, prefix);
        if block.network() != addr {
            return Err(CidrError::HostBits {
                given: s.to_string(),
                block,
            });
        }
        Ok(block)
    }
}

/// An inclusive range of ports (`--service-node-port-range`, `30000-32767`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// The first port.
    pub low: u16,
    /// The last port.
    pub high: u16,
}

impl PortRange {
    /// Whether `port` is in the range.
    pub fn contains(&self, port: i64) -> bool {
        (i64::from(self.low)..=i64::from(self.high)).contains(&port)
    }

    /// How many ports the range holds.
    pub fn size(&self) -> u32 {
        u32::from(self.high) - u32::from(self.low) + 1
    }
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange {
            low: 30000,
            high: 32767,
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.low, self.high)
    }
}

impl FromStr for PortRange {
    type Err = CidrError;

    /// `LOW-HIGH` (or a single port), 1 ≤ LOW ≤ HIGH ≤ 65535.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CidrError::PortRange(s.to_string());
        let t = s.trim();
        let (low, high) = t.split_once('-').unwrap_or((t, t));
        let low: u16 = low.trim().parse().map_err(|_| bad())?;
        let high: u16 = high.trim().parse().map_err(|_| bad())?;
        if low == 0 || low > high {
            return Err(bad());
        }
        Ok(PortRange { low, high })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_blocks() {
        let c: Ipv4Cidr = "10.200.0.0/22".parse().unwrap();
        assert_eq!(c.to_string(), "10.200.0.0/22");
        assert_eq!(c.size(), 1024);
        assert_eq!(c.subnets(24), 4);
        assert_eq!(c.subnet(24, 3).unwrap().to_string(), "10.200.3.0/24");
        assert_eq!(c.subnet(24, 4), None);
        assert_eq!(c.subnet(21, 0), None);
        assert!(c.contains("10.200.3.255".parse().unwrap()));
        assert!(!c.contains("10.200.4.0".parse().unwrap()));
        assert_eq!(
            "0.0.0.0/0".parse::<Ipv4Cidr>().unwrap().bounds(),
            (0, u32::MAX)
        );
        assert_eq!("1.2.3.4/32".parse::<Ipv4Cidr>().unwrap().size(), 1);
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/",
            "::/0",
        ] {
            assert!(matches!(bad.parse::<Ipv4Cidr>(), Err(CidrError::Syntax(_))));
        }
        assert!(matches!(
            "10.0.0.1/8".parse::<Ipv4Cidr>(),
            Err(CidrError::HostBits { .. })
        ));
    }

    #[test]
    fn overlap_is_symmetric_and_covers_nesting() {
        let a: Ipv4Cidr = "10.0.0.0/16".parse().unwrap();
        let b: Ipv4Cidr = "10.0.4.0/24".parse().unwrap();
        let c: Ipv4Cidr = "10.1.0.0/24".parse().unwrap();
        assert!(a.covers(&b) && !b.covers(&a));
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c) && !c.overlaps(&a));
    }

    #[test]
    fn port_ranges() {
        let r: PortRange = "30000-32767".parse().unwrap();
        assert_eq!(r, PortRange::default());
        assert_eq!(r.size(), 2768);
        assert!(r.contains(30000) && r.contains(32767) && !r.contains(32768));
        assert_eq!("8080".parse::<PortRange>().unwrap().size(), 1);
        for bad in ["", "0-10", "10-5", "a-b", "1-70000"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }
}
