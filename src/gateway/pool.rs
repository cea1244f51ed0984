//! Pools of internal endpoints. ngrok picks a member uniformly at random; so do we.

use super::handle::Random;
use crate::endpoint_url::Origin;
use crate::program::Policy;

#[derive(Debug)]
pub struct Pool {
    /// The URL as declared (`https://catalog-eks.internal`).
    pub url: String,
    pub members: Vec<Member>,
}

/// One AgentEndpoint: where it sends traffic, and its own policy (runs on forwarded requests).
#[derive(Debug)]
pub struct Member {
    /// `namespace/name` of the AgentEndpoint.
    pub name: String,
    pub cluster: Option<String>,
    pub origin: Origin,
    pub policy: Option<Policy>,
}

impl Pool {
    // INVARIANT: a pool is only built with at least one member (manifest.rs pushes into it).
    pub fn pick(&self, rng: &mut dyn Random) -> &Member {
        &self.members[rng.below(self.members.len())]
    }
}
