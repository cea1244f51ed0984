//! IP intelligence: `conn.client_ip.categories`, `.is_on_blocklist` and `.is_tor_node`.
//!
//! The data is configuration, shipped with the policies as `kind: IPIntelligence` documents
//! (see `policies/ip-intel/` and docs/ip-intelligence.md) and compiled once per policy version
//! into a lookup that costs one hash probe per distinct prefix length, whatever the number of
//! ranges. Categories are hierarchical, as ngrok's are: an address in a range tagged
//! `com.openai.gptbot` is in `com`, `com.openai` and `com.openai.gptbot`.

use crate::source::Node;
use crate::source::{child, At, Diagnostics};
use cel::Value;
use ipnet::IpNet;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

pub const KIND: &str = "IPIntelligence";
pub const API_VERSION: &str = "edge-gateway.dev/v1";
/// Addresses in this category (or below it) are `is_on_blocklist`.
pub const BLOCKLIST: &str = "blocklist";
/// Addresses in this category (or below it) are `is_tor_node` (ngrok's name for Tor relays).
pub const TOR: &str = "proxy.anonymous.tor";

#[derive(Debug, Default)]
pub struct IpIntel {
    v4: Family,
    v6: Family,
    /// Each tag: its hierarchy (`com`, `com.openai`, `com.openai.gptbot`), shared strings.
    tags: Vec<Vec<Arc<String>>>,
    tag_ids: HashMap<String, u32>,
}

#[derive(Debug, Default)]
struct Family {
    /// Prefix lengths present, longest first.
    lengths: Vec<u8>,
    /// (prefix length, masked network) → tags.
    nets: HashMap<(u8, u128), Vec<u32>>,
}

/// What the list says about one address.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Verdict {
    /// Every category and its parents, each once, sorted.
    pub categories: Vec<Arc<String>>,
    pub is_on_blocklist: bool,
    pub is_tor_node: bool,
}

impl Verdict {
    pub fn categories_value(&self) -> Value {
        Value::List(Arc::new(
            self.categories
                .iter()
                .map(|c| Value::String(Arc::clone(c)))
                .collect(),
        ))
    }
}

fn mask(addr: u128, len: u8, bits: u8) -> u128 {
    if len == 0 {
        return 0;
    }
    let keep = (!0u128) << (bits - len);
    addr & keep & if bits == 128 { !0 } else { (1u128 << bits) - 1 }
}

/// `a.b.c` → `a`, `a.b`, `a.b.c`.
fn hierarchy(category: &str) -> Vec<Arc<String>> {
    let mut out = Vec::new();
    for (i, c) in category.char_indices() {
        if c == '.' {
            out.push(Arc::new(category[..i].to_string()));
        }
    }
    out.push(Arc::new(category.to_string()));
    out
}

fn valid_category(c: &str) -> bool {
    !c.is_empty()
        && c.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        })
}

fn under(category: &str, root: &str) -> bool {
    category == root
        || category
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('.'))
}

impl IpIntel {
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// Tags `range` (a CIDR or one address) with `category`.
    pub fn insert(&mut self, range: &str, category: &str) -> Result<(), String> {
        let category = category.trim().to_ascii_lowercase();
        if !valid_category(&category) {
            return Err(format!(
                "`{category}` is not a category (dot-separated words: `com.openai.gptbot`)"
            ));
        }
        let range = range.trim();
        let net: IpNet = range
            .parse()
            .or_else(|_| range.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| format!("`{range}` is not a CIDR range or IP address"))?;
        let tag = match self.tag_ids.get(&category) {
            Some(t) => *t,
            None => {
                let t = self.tags.len() as u32;
                self.tags.push(hierarchy(&category));
                self.tag_ids.insert(category, t);
                t
            }
        };
        let (family, bits, len, addr) = match net {
            IpNet::V4(n) => (
                &mut self.v4,
                32,
                n.prefix_len(),
                u128::from(u32::from(n.network())),
            ),
            IpNet::V6(n) => match n.network().to_ipv4_mapped() {
                Some(v4) if n.prefix_len() >= 96 => (
                    &mut self.v4,
                    32,
                    n.prefix_len() - 96,
                    u128::from(u32::from(v4)),
                ),
                _ => (&mut self.v6, 128, n.prefix_len(), u128::from(n.network())),
            },
        };
        let tags = family.nets.entry((len, mask(addr, len, bits))).or_default();
        if !tags.contains(&tag) {
            tags.push(tag);
        }
        if !family.lengths.contains(&len) {
            family.lengths.push(len);
            family.lengths.sort_unstable_by(|a, b| b.cmp(a));
        }
        Ok(())
    }

    /// Everything the list says about `ip` (nothing, for an address it does not know).
    pub fn lookup(&self, ip: IpAddr) -> Verdict {
        let (family, bits, addr) = match ip {
            IpAddr::V4(v4) => (&self.v4, 32, u128::from(u32::from(v4))),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => (&self.v4, 32, u128::from(u32::from(v4))),
                None => (&self.v6, 128, u128::from(v6)),
            },
        };
        let mut tags: BTreeSet<u32> = BTreeSet::new();
        for len in &family.lengths {
            if let Some(t) = family.nets.get(&(*len, mask(addr, *len, bits))) {
                tags.extend(t);
            }
        }
        if tags.is_empty() {
            return Verdict::default();
        }
        let mut seen: BTreeSet<&Arc<String>> = BTreeSet::new();
        for t in &tags {
            seen.extend(self.tags[*t as usize].iter());
        }
        let categories: Vec<Arc<String>> = seen.into_iter().cloned().collect();
        Verdict {
            is_on_blocklist: categories.iter().any(|c| under(c, BLOCKLIST)),
            is_tor_node: categories.iter().any(|c| under(c, TOR)),
            categories,
        }
    }

    /// Reads one `kind: IPIntelligence` document:
    ///
    /// ```yaml
    /// spec:
    ///   ranges:
    ///     - category: com.openai.gptbot
    ///       source: https://openai.com/gptbot.json   # where the ranges come from (kept for people)
    ///       retrieved: "2026-11-26"
    ///       cidrs: [192.0.2.0/24, "2001:db8::/32"]
    /// ```
    pub fn read(&mut self, doc: &Node, d: &mut Diagnostics) {
        let Some(ranges) = doc.get("spec").and_then(|s| s.get("ranges")) else {
            d.error(
                None,
                At::new("spec", doc),
                "an IPIntelligence document needs `spec.ranges` (a list of {category, cidrs})",
            );
            return;
        };
        let Some(items) = ranges.as_seq() else {
            d.error(None, At::new("spec.ranges", ranges), "must be a list");
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("spec.ranges[{i}]");
            let Some(category) = item.get("category").and_then(Node::as_str) else {
                d.error(None, At::new(&path, item), "needs a `category` string");
                continue;
            };
            let Some(cidrs) = item.get("cidrs").and_then(Node::as_seq) else {
                d.error(
                    None,
                    At::new(&path, item),
                    "needs `cidrs`, a list of ranges",
                );
                continue;
            };
            for (j, c) in cidrs.iter().enumerate() {
                let at = child(&path, &format!("cidrs[{j}]"));
                match c.as_str().map(|s| self.insert(s, category)) {
                    Some(Ok(())) => {}
                    Some(Err(e)) => d.error(None, At::new(&at, c), e),
                    None => d.error(None, At::new(&at, c), "must be a string"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn names(v: &Verdict) -> Vec<&str> {
        v.categories.iter().map(|c| c.as_str()).collect()
    }

    #[test]
    fn hierarchical_overlapping_and_mapped() {
        let mut t = IpIntel::default();
        t.insert("192.0.2.0/24", "com.openai.gptbot").unwrap();
        t.insert("192.0.2.128/25", "Blocklist.spamhaus.drop")
            .unwrap();
        t.insert("2001:db8::/32", "proxy.anonymous.tor").unwrap();
        t.insert("198.51.100.7", "com.openai.chatgpt-user").unwrap();
        let v = t.lookup(ip("192.0.2.200"));
        assert_eq!(
            names(&v),
            vec![
                "blocklist",
                "blocklist.spamhaus",
                "blocklist.spamhaus.drop",
                "com",
                "com.openai",
                "com.openai.gptbot"
            ]
        );
        assert!(v.is_on_blocklist && !v.is_tor_node);
        assert_eq!(names(&t.lookup(ip("192.0.2.1"))).len(), 3);
        assert_eq!(names(&t.lookup(ip("::ffff:192.0.2.1"))).len(), 3);
        let tor = t.lookup(ip("2001:db8::1"));
        assert!(tor.is_tor_node && !tor.is_on_blocklist);
        assert_eq!(t.lookup(ip("198.51.100.7")).categories.len(), 3);
        assert_eq!(t.lookup(ip("198.51.100.8")), Verdict::default());
        assert_eq!(t.lookup(ip("2001:db9::1")), Verdict::default());
    }

    #[test]
    fn refuses_bad_input() {
        let mut t = IpIntel::default();
        assert!(t.insert("300.0.0.0/8", "a").is_err());
        assert!(t.insert("10.0.0.0/8", "a..b").is_err());
        assert!(t.insert("10.0.0.0/8", "").is_err());
        assert!(!under("blocklister", BLOCKLIST));
        assert!(under("proxy.anonymous.tor.exit", TOR));
    }
}

/// The ranges in a provider's published file: the JSON that Google, Bing, OpenAI, Perplexity
/// and Apple publish (`{"prefixes": [{"ipv4Prefix": ...}, {"ipv6Prefix": ...}]}`), or plain text
/// with one range per line (Tor exit lists, DROP-style blocklists; text after `;` or `#` is a
/// comment). Only well-formed ranges are kept; the rest are returned as rejected lines.
pub fn parse_published(text: &str) -> (Vec<String>, Vec<String>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    let mut take = |s: &str| {
        let s = s.trim();
        if s.parse::<IpNet>().is_ok() || s.parse::<IpAddr>().is_ok() {
            ok.push(s.to_string());
        } else {
            bad.push(s.to_string());
        }
    };
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        let prefixes = json
            .get("prefixes")
            .and_then(|p| p.as_array())
            .cloned()
            .unwrap_or_default();
        for p in &prefixes {
            for key in ["ipv4Prefix", "ipv6Prefix"] {
                if let Some(s) = p.get(key).and_then(|v| v.as_str()) {
                    take(s);
                }
            }
        }
        return (ok, bad);
    }
    for line in text.lines() {
        let line = line.split([';', '#']).next().unwrap_or("").trim();
        if let Some(first) = line.split_whitespace().next() {
            take(first);
        }
    }
    (ok, bad)
}

/// One `spec.ranges` entry of an IPIntelligence document, as YAML text.
pub fn range_yaml(category: &str, source: &str, retrieved: &str, cidrs: &[String]) -> String {
    let mut out = format!(
        "    - category: {category}\n      source: {source}\n      retrieved: \"{retrieved}\"\n      cidrs:\n"
    );
    for c in cidrs {
        out.push_str(&format!("        - \"{c}\"\n"));
    }
    out
}

#[cfg(test)]
mod published {
    use super::*;

    #[test]
    fn provider_json_and_plain_lists() {
        let sample = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/ip-intel/sample-provider.json"
        ))
        .unwrap();
        let (ok, bad) = parse_published(&sample);
        assert_eq!(
            ok,
            vec!["192.0.2.0/28", "2001:db8:1::/48", "198.51.100.16/28"]
        );
        assert_eq!(bad, vec!["not-a-range"]);
        let (ok, bad) = parse_published("# exits\n203.0.113.5\n203.0.113.0/25 ; SBL1\n\n");
        assert_eq!(ok, vec!["203.0.113.5", "203.0.113.0/25"]);
        assert!(bad.is_empty());
        let yaml = range_yaml("com.example.bot", "https://x/bot.json", "2026-11-26", &ok);
        let doc = format!(
            "apiVersion: {API_VERSION}\nkind: {KIND}\nmetadata: {{name: t}}\nspec:\n  ranges:\n{yaml}"
        );
        let node = crate::source::parse_yaml_documents(&doc).unwrap().remove(0);
        let mut t = IpIntel::default();
        let mut d = Diagnostics::default();
        t.read(&node, &mut d);
        assert!(d.items.is_empty(), "{:?}", d.items);
        assert!(t
            .lookup("203.0.113.7".parse().unwrap())
            .categories
            .iter()
            .any(|c| c.as_str() == "com.example.bot"));
    }
}
