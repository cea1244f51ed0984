//! A `Context` for unit tests of actions and rule evaluation: no ports (every platform call
//! fails with "unused"), and request and response bodies as configured, with a read count.

use crate::error::GatewayError;
use crate::exchange::{Context, Subrequest, Subresponse};
use std::cell::Cell;
use std::rc::Rc;

pub(crate) struct TestPorts {
    request: Result<Rc<[u8]>, GatewayError>,
    response: Result<Rc<[u8]>, GatewayError>,
    /// How many times a body was read.
    pub reads: Cell<usize>,
    jwt: crate::jwt::JwtCache,
}

impl TestPorts {
    pub fn new(
        request: Result<&[u8], GatewayError>,
        response: Result<&[u8], GatewayError>,
    ) -> Self {
        TestPorts {
            request: request.map(Rc::from),
            response: response.map(Rc::from),
            reads: Cell::new(0),
            jwt: Default::default(),
        }
    }
}

/// Empty bodies.
impl Default for TestPorts {
    fn default() -> Self {
        TestPorts::new(Ok(b""), Ok(b""))
    }
}

impl Context for TestPorts {
    fn has_internal(&self, _: &str) -> bool {
        false
    }
    async fn rate_limit(
        &self,
        _: &str,
        _: &[crate::limiter::LimitCheck],
    ) -> Result<Vec<crate::limiter::Decision>, String> {
        Err("unused".into())
    }
    fn now_ms(&self) -> u64 {
        0
    }
    fn jwt_cache(&self) -> &crate::jwt::JwtCache {
        &self.jwt
    }
    async fn fetch_jwks(&self, _: &str, _: bool) -> Result<String, String> {
        Err("unused".into())
    }
    async fn verify(
        &self,
        _: crate::jwt::Alg,
        _: &crate::jwt::Jwk,
        _: &[u8],
        _: &[u8],
    ) -> Result<bool, String> {
        Err("unused".into())
    }
    async fn first_delivery(&self, _: &str, _: u64) -> Result<bool, String> {
        Err("unused".into())
    }
    async fn request_body(&self) -> Result<Rc<[u8]>, GatewayError> {
        self.reads.set(self.reads.get() + 1);
        self.request.clone()
    }
    /// The whole body: one this small is "all of it", one larger is "more than `limit`".
    async fn request_body_prefix(&self, _: usize) -> Result<Rc<[u8]>, GatewayError> {
        self.request_body().await
    }
    async fn subrequest(&self, req: Subrequest) -> Result<Subresponse, GatewayError> {
        Err(GatewayError::EndpointOffline { url: req.key })
    }
    async fn response_body(&self) -> Result<Rc<[u8]>, GatewayError> {
        self.reads.set(self.reads.get() + 1);
        self.response.clone()
    }
    async fn response_body_prefix(&self, _: usize) -> Result<Rc<[u8]>, GatewayError> {
        self.response_body().await
    }
    fn set_response_body(&self, _: Rc<[u8]>) {}
    /// As the Worker's fetch: gzip (and br) arrive decoded.
    fn decodes(&self, coding: &str) -> bool {
        matches!(coding, "gzip" | "br")
    }
}
