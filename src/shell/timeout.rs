//! A deadline for a platform future (a fetch, a Durable Object call): `None` when it fires first.

use futures_util::future::{select, Either};
use std::future::Future;
use std::time::Duration;
use worker::Delay;

pub async fn within<T>(ms: u64, work: impl Future<Output = T>) -> Option<T> {
    let work = Box::pin(work);
    let timer = Box::pin(Delay::from(Duration::from_millis(ms)));
    match select(work, timer).await {
        Either::Left((value, _)) => Some(value),
        Either::Right(_) => None,
    }
}
