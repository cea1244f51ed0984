//! The compiled gateway (public endpoints + internal pools) and the request path through it.
//!
//! The request path, one room each: [`Gateway::handle`] and the hops between endpoints
//! (`handle`), forwarding to a pool (`forward`: choose a member, one attempt, decide whether to
//! try another), the attempt itself (`attempt`), what the answer is ([`Reply`], `reply`), the
//! platform ports ([`Upstream`], [`Trust`], [`RateLimiter`], [`Random`]: `ports`), and the
//! [`crate::exchange::Context`] actions see (`context`).

mod attempt;
pub mod balance;
mod context;
mod forward;
mod handle;
pub mod health;
#[cfg(not(target_arch = "wasm32"))]
mod local;
mod pool;
mod ports;
pub mod probe;
mod reply;
mod subrequest;

pub use handle::MAX_HOPS;
#[cfg(not(target_arch = "wasm32"))]
pub use local::LocalTrust;
pub use pool::{Member, Pool, Want};
pub use ports::{BodyError, Outbound, Random, RateLimiter, Trust, Upstream, UpstreamError};
pub use reply::{Body, Reply};

use crate::error::GatewayError;
use crate::program::Policy;

/// One policy version, compiled: immutable and shared by every request of an isolate.
#[derive(Debug)]
pub struct Gateway {
    pub version: String,
    pub public: Vec<PublicEndpoint>,
    /// Internal endpoints by key (`scheme://host:port`); several members form a pool.
    pub pools: std::collections::HashMap<String, Pool>,
    /// The `secrets.get(vault, name)` the policies name; the shell resolves them.
    pub secret_refs: std::collections::BTreeSet<crate::secrets::SecretRef>,
    /// Their values, set once per version by the shell ([`Gateway::set_secrets`]).
    pub secrets: std::sync::Arc<crate::secrets::Secrets>,
    /// How requests reach pool members: health, retries, the member header.
    pub routing: Routing,
    /// The IP-intelligence list (`kind: IPIntelligence` documents) for `conn.client_ip.*`.
    pub ip_intel: std::sync::Arc<crate::ipintel::IpIntel>,
}

/// Failover settings (each pool keeps its own retry budget).
#[derive(Debug)]
pub struct Routing {
    pub health: health::HealthPolicy,
    /// Attempts per request at most (the first one included), and never more than the pool has
    /// members.
    pub max_attempts: usize,
    /// The response header naming the member that answered (`None`: not sent).
    pub member_header: Option<String>,
}

impl Default for Routing {
    fn default() -> Self {
        Routing {
            health: Default::default(),
            max_attempts: 3,
            member_header: Some("x-edge-gateway-member".into()),
        }
    }
}

/// A public (cloud) endpoint: the host it answers and its traffic policy.
#[derive(Debug)]
pub struct PublicEndpoint {
    pub name: String,
    pub url: String,
    /// `api.acme.example`, `*.acme.example`, or `*` (any host).
    pub host: String,
    pub policy: Policy,
    /// `endpoint.*` while its policy runs (`None` for a policy serving any host: taken from
    /// the request).
    pub info: Option<std::sync::Arc<crate::expr::EndpointInfo>>,
}

impl Gateway {
    pub fn set_secrets(&mut self, secrets: crate::secrets::Secrets) {
        self.secrets = std::sync::Arc::new(secrets);
    }

    /// The public endpoint for a request's host: an exact match, then a wildcard, then, when only
    /// one public endpoint is declared, that one (so `wrangler dev` on 127.0.0.1 just works).
    pub fn public_for(&self, host: &str) -> Result<&PublicEndpoint, GatewayError> {
        let host = host.to_ascii_lowercase();
        let exact = self.public.iter().find(|p| p.host == host);
        let wildcard = || {
            self.public.iter().find(|p| {
                p.host
                    .strip_prefix("*.")
                    .is_some_and(|suffix| host.ends_with(&format!(".{suffix}")))
            })
        };
        let any = || self.public.iter().find(|p| p.host == "*");
        let only = || (self.public.len() == 1).then(|| &self.public[0]);
        exact
            .or_else(wildcard)
            .or_else(any)
            .or_else(only)
            .ok_or(GatewayError::NoPublicEndpoint { host })
    }
}
