//! The end-to-end tests, one binary (one link instead of ten): each module was a test file of
//! its own and each test still starts a stack of its own (`support::stack::Stack`: devstack on
//! free ports), so they can run in parallel. Run when `EDGE_GATEWAY_E2E=1` (scripts/test.sh
//! sets it after building the Worker); a plain `cargo test` says they skipped.

#[path = "../support/mod.rs"]
mod support;

mod access;
mod actions;
mod bodies;
mod crs_regression;
mod failover;
mod gateway;
mod jwt;
mod ngrok_docs;
mod rate_limit;
mod subrequests;
mod variables;
mod waf;
