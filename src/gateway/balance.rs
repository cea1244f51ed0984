//! How a pool picks among its eligible members, beyond ngrok's uniform random choice. Set with
//! annotations on the pool's AgentEndpoints (ngrok has no such settings):
//!
//! - `edge-gateway.dev/weight: "3"`: a member's share (1 to 100, default 1);
//! - `edge-gateway.dev/balance`: `random` (default), `least-requests` (the fewest requests in
//!   flight in this isolate, for their weight), or `hash` with `edge-gateway.dev/hash-key: <CEL>`
//!   (rendezvous hashing on the key: the same key keeps reaching the same member, and a member
//!   leaving moves only its own keys);
//! - `edge-gateway.dev/prefer-cluster: eks` (or a `${}` template): members of that cluster take
//!   all the traffic while any of them is eligible; the others are the failover.

use crate::expr::{Expr, Template};
use crate::source::Node;
use crate::source::{At, Diagnostics};
use sha2::{Digest, Sha256};

pub const WEIGHT: &str = "edge-gateway.dev/weight";
pub const BALANCE: &str = "edge-gateway.dev/balance";
pub const HASH_KEY: &str = "edge-gateway.dev/hash-key";
pub const PREFER_CLUSTER: &str = "edge-gateway.dev/prefer-cluster";
/// Cloudflare Access service-token credentials for a member's origin (see `origin_auth`).
pub const ACCESS_CLIENT_ID: &str = "edge-gateway.dev/access-client-id";
pub const ACCESS_CLIENT_SECRET: &str = "edge-gateway.dev/access-client-secret";

#[derive(Debug, Default)]
pub enum Balance {
    #[default]
    Random,
    LeastRequests,
    /// Rendezvous hashing on the value of the expression (random when it cannot be evaluated).
    Hash(Expr),
}

/// The pool-wide settings, read from its members' annotations.
#[derive(Debug, Default)]
pub struct PoolSettings {
    pub balance: Balance,
    pub prefer_cluster: Option<Template>,
    /// The member whose annotations set them (conflicts are reported against it).
    set_by: Option<String>,
}

impl PoolSettings {
    /// Reads one member's pool-wide annotations; a member that disagrees with an earlier one
    /// is an error (the pool must mean one thing).
    pub fn read(
        &mut self,
        member: &str,
        annotations: Option<&Node>,
        path: &str,
        d: &mut Diagnostics,
    ) {
        let Some(a) = annotations else { return };
        let text = |k: &str| a.get(k).and_then(Node::as_str).map(str::to_string);
        let (balance, key, prefer) = (text(BALANCE), text(HASH_KEY), text(PREFER_CLUSTER));
        if balance.is_none() && prefer.is_none() {
            return;
        }
        if let Some(first) = &self.set_by {
            let node = a
                .get(BALANCE)
                .or_else(|| a.get(PREFER_CLUSTER))
                .unwrap_or(a);
            d.error(
                Some("ERR_NGROK_2203"),
                At::new(path, node),
                format!("`{member}` sets the pool's balancing again; `{first}` already did (set it on one member)"),
            );
            return;
        }
        self.set_by = Some(member.to_string());
        self.balance = match (balance.as_deref(), key) {
            (None | Some("random"), _) => Balance::Random,
            (Some("least-requests"), _) => Balance::LeastRequests,
            (Some("hash"), Some(key)) => match Expr::compile(&key) {
                Ok(e) => Balance::Hash(e),
                Err(e) => {
                    let node = a.get(HASH_KEY).unwrap_or(a);
                    d.error(
                        Some("ERR_NGROK_2200"),
                        At::new(path, node),
                        format!("`{HASH_KEY}`: {}", e.0),
                    );
                    Balance::Random
                }
            },
            (Some("hash"), None) => {
                let node = a.get(BALANCE).unwrap_or(a);
                d.error(
                    Some("ERR_NGROK_2234"),
                    At::new(path, node),
                    format!("`balance: hash` needs `{HASH_KEY}` (a CEL expression)"),
                );
                Balance::Random
            }
            (Some(other), _) => {
                let node = a.get(BALANCE).unwrap_or(a);
                d.error(
                    Some("ERR_NGROK_2203"),
                    At::new(path, node),
                    format!("`{BALANCE}` is random, least-requests or hash, not `{other}`"),
                );
                Balance::Random
            }
        };
        if let Some(p) = prefer {
            match Template::compile(&p) {
                Ok(t) => self.prefer_cluster = Some(t),
                Err(e) => {
                    let node = a.get(PREFER_CLUSTER).unwrap_or(a);
                    d.error(
                        Some("ERR_NGROK_2224"),
                        At::new(path, node),
                        format!("`{PREFER_CLUSTER}`: {}", e.0),
                    );
                }
            }
        }
    }
}

/// A member's `edge-gateway.dev/weight` (1 to 100).
pub fn weight(annotations: Option<&Node>, path: &str, d: &mut Diagnostics) -> u32 {
    let Some(node) = annotations.and_then(|a| a.get(WEIGHT)) else {
        return 1;
    };
    match node.as_str().and_then(|t| t.trim().parse::<u32>().ok()) {
        Some(w) if (1..=100).contains(&w) => w,
        _ => {
            d.error(
                Some("ERR_NGROK_2215"),
                At::new(path, node),
                format!("`{WEIGHT}` is a whole number from 1 to 100, in quotes"),
            );
            1
        }
    }
}

/// Weighted rendezvous hashing: the candidate with the lowest `-ln(u) / weight`, where `u` is
/// the hash of (key, member) mapped into (0, 1).
pub fn rendezvous<'a>(
    key: &str,
    candidates: impl Iterator<Item = (usize, &'a str, u32)>,
) -> Option<usize> {
    candidates
        .map(|(i, name, w)| {
            let h = Sha256::new()
                .chain_update((key.len() as u64).to_le_bytes())
                .chain_update(key.as_bytes())
                .chain_update(name.as_bytes())
                .finalize();
            let x = u64::from_le_bytes(h[..8].try_into().expect("8 bytes"));
            let u = (x as f64 + 1.0) / (u64::MAX as f64 + 2.0);
            (i, -u.ln() / f64::from(w.max(1)))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// A member's origin credentials: `edge-gateway.dev/access-client-id` and
/// `edge-gateway.dev/access-client-secret` become the `CF-Access-Client-Id` and
/// `CF-Access-Client-Secret` headers (Cloudflare Access service token). Both or neither; the
/// secret must come from a Worker secret (`${secrets.get(...)}`), never be written in the file.
pub fn origin_auth(
    annotations: Option<&Node>,
    path: &str,
    d: &mut Diagnostics,
) -> Vec<(&'static str, Template)> {
    let Some(a) = annotations else {
        return Vec::new();
    };
    let (id, secret) = (a.get(ACCESS_CLIENT_ID), a.get(ACCESS_CLIENT_SECRET));
    let (Some(id), Some(secret)) = (id, secret) else {
        if let Some(one) = id.or(secret) {
            d.error(
                Some("ERR_NGROK_2234"),
                At::new(path, one),
                format!("set both `{ACCESS_CLIENT_ID}` and `{ACCESS_CLIENT_SECRET}`"),
            );
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for (header, node, must_be_secret) in [
        ("cf-access-client-id", id, false),
        ("cf-access-client-secret", secret, true),
    ] {
        let text = node.as_str().unwrap_or_default();
        if must_be_secret && !text.contains("secrets.get(") {
            d.error(
                Some("ERR_NGROK_2203"),
                At::new(path, node),
                format!("`{ACCESS_CLIENT_SECRET}` must read a Worker secret: \"${{secrets.get('vault', 'name')}}\""),
            );
            continue;
        }
        match Template::compile(text) {
            Ok(t) => out.push((header, t)),
            Err(e) => d.error(Some("ERR_NGROK_2224"), At::new(path, node), e.0),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_is_stable_and_moves_only_the_leavers_keys() {
        let all = [(0, "a", 1), (1, "b", 1), (2, "c", 1)];
        let keys: Vec<String> = (0..300).map(|i| format!("user-{i}")).collect();
        let before: Vec<usize> = keys
            .iter()
            .map(|k| rendezvous(k, all.iter().copied()).unwrap())
            .collect();
        // Spread: each member gets a fair part.
        for m in 0..3 {
            let n = before.iter().filter(|x| **x == m).count();
            assert!((60..=140).contains(&n), "member {m}: {n}");
        }
        // Member 1 leaves: only its keys move.
        let after: Vec<usize> = keys
            .iter()
            .map(|k| rendezvous(k, all.iter().copied().filter(|c| c.0 != 1)).unwrap())
            .collect();
        for (b, a) in before.iter().zip(&after) {
            if *b != 1 {
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn weights_shift_the_share() {
        let members = [(0, "a", 1), (1, "b", 3)];
        let to_b = (0..1000)
            .filter(|i| rendezvous(&i.to_string(), members.iter().copied()) == Some(1))
            .count();
        assert!((680..=820).contains(&to_b), "{to_b}");
    }
}
