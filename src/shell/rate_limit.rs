//! Rate-limit buckets on Durable Objects: one object per bucket (named by the action and the key's
//! values), holding every limit of the bucket. The arithmetic is `crate::limiter`; this file is
//! storage and transport.
//!
//! Exactness: an object handles its requests one at a time for the part that matters, because
//! `Bucket::apply` is synchronous and the state is in memory; storage writes are awaited before
//! the answer leaves (and the runtime's output gate holds it anyway), so an evicted object
//! resumes from exactly what it answered.

use super::timeout::within;
use crate::gateway::RateLimiter;
use crate::limiter::{Bucket, Decision, LimitCheck};
use std::cell::RefCell;
use worker::{
    durable_object, Date, DurableObject, Env, Method, Request, RequestInit, Response, Result, State,
};

const BINDING: &str = "RATE_LIMITER";
const STATE_KEY: &str = "bucket";
/// How long a request waits for its bucket before the action's `on_error` decides.
const CALL_TIMEOUT_MS: u64 = 2_000;

#[durable_object]
pub struct RateLimitBucket {
    state: State,
    bucket: RefCell<Option<Bucket>>,
}

impl DurableObject for RateLimitBucket {
    fn new(state: State, _env: Env) -> Self {
        RateLimitBucket {
            state,
            bucket: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let checks: Vec<LimitCheck> = match req.json().await {
            Ok(c) => c,
            Err(e) => return Response::error(format!("bad limit checks: {e}"), 400),
        };
        let storage = self.state.storage();
        if self.bucket.borrow().is_none() {
            let stored: Option<Bucket> = storage.get(STATE_KEY).await?;
            // Another request may have loaded it while this one waited: keep the newer state.
            self.bucket
                .borrow_mut()
                .get_or_insert(stored.unwrap_or_default());
        }
        let now = Date::now().as_millis();
        let (decisions, snapshot) = {
            let mut guard = self.bucket.borrow_mut();
            let bucket = guard.get_or_insert_with(Bucket::default);
            (bucket.apply(&checks, now), bucket.clone())
        };
        storage.put(STATE_KEY, &snapshot).await?;
        Response::from_json(&decisions)
    }
}

/// The [`RateLimiter`] port over the bucket objects: one call per bucket per request.
pub struct DurableLimiter<'a> {
    pub env: &'a Env,
}

impl RateLimiter for DurableLimiter<'_> {
    async fn check(
        &self,
        bucket: &str,
        checks: &[LimitCheck],
    ) -> std::result::Result<Vec<Decision>, String> {
        let call = async {
            let namespace = self.env.durable_object(BINDING)?;
            let stub = namespace.id_from_name(bucket)?.get_stub()?;
            let body = serde_json::to_string(checks)
                .map_err(|e| worker::Error::RustError(e.to_string()))?;
            let mut init = RequestInit::new();
            init.with_method(Method::Post).with_body(Some(body.into()));
            let req = Request::new_with_init("https://rate-limit.bucket/check", &init)?;
            let mut resp = stub.fetch_with_request(req).await?;
            if resp.status_code() != 200 {
                let text = resp.text().await.unwrap_or_default();
                return Err(worker::Error::RustError(format!(
                    "bucket answered {}: {text}",
                    resp.status_code()
                )));
            }
            resp.json::<Vec<Decision>>().await
        };
        match within(CALL_TIMEOUT_MS, call).await {
            Some(Ok(decisions)) => Ok(decisions),
            Some(Err(e)) => Err(e.to_string()),
            None => Err(format!(
                "no answer from the bucket within {CALL_TIMEOUT_MS} ms"
            )),
        }
    }
}
