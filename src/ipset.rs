//! A set of CIDR ranges, built once per policy version, queried per request.
//!
//! Lookup costs one hash probe per distinct prefix length in the set (at most 33 for IPv4, 129
//! for IPv6), whatever the number of ranges: thousands of partner ranges cost the same as ten.
//! The longest matching prefix is reported, so a result can name the range that matched.
//! IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are matched as the IPv4 address they carry.

use ipnet::IpNet;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

#[derive(Debug, Default, Clone)]
pub struct IpSet {
    v4: Family,
    v6: Family,
}

#[derive(Debug, Default, Clone)]
struct Family {
    /// Prefix lengths present, longest first.
    lengths: Vec<u8>,
    /// (prefix length, masked network) → the range as written.
    nets: HashMap<(u8, u128), String>,
}

impl Family {
    fn insert(&mut self, len: u8, network: u128, text: String) {
        self.nets.entry((len, network)).or_insert(text);
        let mut lengths: BTreeSet<u8> = self.lengths.iter().copied().collect();
        lengths.insert(len);
        self.lengths = lengths.into_iter().rev().collect();
    }

    fn lookup(&self, addr: u128, bits: u8) -> Option<&str> {
        self.lengths.iter().find_map(|len| {
            let network = mask(addr, *len, bits);
            self.nets.get(&(*len, network)).map(String::as_str)
        })
    }
}

fn mask(addr: u128, len: u8, bits: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let keep = (!0u128) << (bits - len);
        addr & keep & (if bits == 128 { !0 } else { (1u128 << bits) - 1 })
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl IpSet {
    /// Adds a range (`192.0.2.0/24`, `2001:db8::/32`) or a single address.
    pub fn insert(&mut self, text: &str) -> Result<(), String> {
        let text = text.trim();
        let net: IpNet = match text.parse() {
            Ok(n) => n,
            Err(_) => match text.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => return Err(format!("`{text}` is not a CIDR range or IP address")),
            },
        };
        match net {
            IpNet::V4(n) => {
                let addr = u128::from(u32::from(n.network()));
                self.v4.insert(
                    n.prefix_len(),
                    mask(addr, n.prefix_len(), 32),
                    text.to_string(),
                );
            }
            IpNet::V6(n) => {
                // An IPv4-mapped range (::ffff:0:0/96 and longer) is the IPv4 range it maps.
                if let (Some(v4), true) = (n.network().to_ipv4_mapped(), n.prefix_len() >= 96) {
                    let len = n.prefix_len() - 96;
                    self.v4.insert(
                        len,
                        mask(u128::from(u32::from(v4)), len, 32),
                        text.to_string(),
                    );
                } else {
                    let addr = u128::from(n.network());
                    self.v6.insert(
                        n.prefix_len(),
                        mask(addr, n.prefix_len(), 128),
                        text.to_string(),
                    );
                }
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.v4.nets.is_empty() && self.v6.nets.is_empty()
    }

    pub fn len(&self) -> usize {
        self.v4.nets.len() + self.v6.nets.len()
    }

    /// The longest range containing `ip`, as written.
    pub fn lookup(&self, ip: IpAddr) -> Option<&str> {
        match canonical(ip) {
            IpAddr::V4(v4) => self.v4.lookup(u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => self.v6.lookup(u128::from(v6), 128),
        }
    }
}

impl FromIterator<&'static str> for IpSet {
    fn from_iter<T: IntoIterator<Item = &'static str>>(iter: T) -> Self {
        let mut set = IpSet::default();
        for s in iter {
            set.insert(s).expect("valid ranges in a literal list");
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_and_families() {
        let set: IpSet = [
            "10.0.0.0/8",
            "10.1.0.0/16",
            "2001:db8::/32",
            "192.0.2.7",
            "0.0.0.0/0",
        ]
        .into_iter()
        .collect();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(set.lookup(ip("10.1.2.3")), Some("10.1.0.0/16"));
        assert_eq!(set.lookup(ip("10.2.2.3")), Some("10.0.0.0/8"));
        assert_eq!(set.lookup(ip("192.0.2.7")), Some("192.0.2.7"));
        assert_eq!(set.lookup(ip("8.8.8.8")), Some("0.0.0.0/0"));
        assert_eq!(set.lookup(ip("::ffff:10.1.0.1")), Some("10.1.0.0/16"));
        assert_eq!(set.lookup(ip("2001:db8::1")), Some("2001:db8::/32"));
        assert_eq!(set.lookup(ip("2001:db9::1")), None);
    }

    #[test]
    fn mapped_ranges_are_ipv4() {
        let set: IpSet = ["::ffff:192.0.2.0/120"].into_iter().collect();
        assert_eq!(
            set.lookup("192.0.2.9".parse().unwrap()),
            Some("::ffff:192.0.2.0/120")
        );
    }

    #[test]
    fn agrees_with_a_linear_scan() {
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..200 {
            let mut set = IpSet::default();
            let mut nets: Vec<IpNet> = Vec::new();
            for _ in 0..rng.usize(1..60) {
                let text = if rng.bool() {
                    format!("{}.{}.0.0/{}", rng.u8(0..4), rng.u8(..), rng.u8(0..=32))
                } else {
                    format!("2001:db8:{:x}::/{}", rng.u16(0..8), rng.u8(16..=128))
                };
                let net: IpNet = text.parse::<IpNet>().unwrap().trunc();
                set.insert(&net.to_string()).unwrap();
                nets.push(net);
            }
            for _ in 0..200 {
                let ip: IpAddr = if rng.bool() {
                    IpAddr::from([rng.u8(0..4), rng.u8(..), rng.u8(..), rng.u8(..)])
                } else {
                    IpAddr::from([
                        0x2001,
                        0xdb8,
                        rng.u16(0..8),
                        rng.u16(..),
                        0,
                        0,
                        0,
                        rng.u16(..),
                    ])
                };
                let naive = nets
                    .iter()
                    .filter(|n| n.contains(&ip))
                    .map(|n| n.prefix_len())
                    .max();
                let got = set
                    .lookup(ip)
                    .map(|t| t.parse::<IpNet>().unwrap().prefix_len());
                assert_eq!(got, naive, "round {round}: {ip}");
            }
        }
    }
}
