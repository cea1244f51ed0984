//! edge-gateway: ngrok's Cloud Endpoints and Traffic Policy on Cloudflare Workers.
//!
//! Everything but [`shell`] is the platform-free core: it builds and tests natively. The shell
//! (wasm32 only) wires it to the Worker runtime: KV, fetch, clock and randomness.
//!
//! The path of a request: [`reload::PolicyCache`] gives the compiled [`gateway::Gateway`] of the
//! live policy version; [`gateway::Gateway::handle`] runs the public endpoint's `on_http_request`
//! ([`eval`], [`actions`]), follows `forward-internal` into a pool, runs the chosen member's own
//! policy, fetches its upstream through the [`gateway::Upstream`] port, then runs the
//! `on_http_response` phases. Errors become responses in [`error::GatewayError::rescue`] only.

pub mod actions;
pub mod breaker;
pub mod bundle;
pub mod compile;
pub mod conn;
pub mod endpoint_url;
pub mod error;
pub mod eval;
pub mod exchange;
pub mod expr;
pub mod gateway;
pub mod http;
pub mod ipintel;
pub mod ipset;
pub mod jwt;
pub mod limiter;
pub mod manifest;
pub mod program;
pub mod proxy;
pub mod reload;
pub mod secrets;
pub mod source;
pub mod waf;
pub mod webhook;

// Native only: tools and tests, never the Worker.
#[cfg(not(target_arch = "wasm32"))]
pub mod deploy;
#[cfg(not(target_arch = "wasm32"))]
pub mod devkeys;
#[cfg(not(target_arch = "wasm32"))]
pub mod files;

#[cfg(target_arch = "wasm32")]
mod shell;
