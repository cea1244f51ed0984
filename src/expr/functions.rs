//! ngrok's request helpers and IP macros, bound to the request they read.

use super::{cookies, RequestData};
use crate::http::{query_pairs, ResponseHead};
use crate::secrets::Secrets;
use cel::extractors::Arguments;
use cel::{Context, ExecutionError, Value};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

type Result<T> = std::result::Result<T, ExecutionError>;

/// The functions [`register`] binds to a request, by name: an expression that calls one needs
/// them in its scope ([`super::Needs::helpers`]).
pub const HELPERS: &[&str] = &[
    "secrets.get",
    "getReqHeader",
    "hasReqHeader",
    "getQueryParam",
    "hasQueryParam",
    "getReqCookie",
    "hasReqCookie",
    "getResHeader",
    "hasResHeader",
    "getResCookie",
    "hasResCookie",
    "inCidrRange",
    "inCidrRanges",
];

/// Adds the request and response helpers (closures over this exchange's data) and the IP macros
/// to `ctx`. `res` is `None` in on_http_request, where the checker refuses the response helpers;
/// they still exist (no header, no cookie) so nothing the checker passes is undeclared here.
pub fn register(
    ctx: &mut Context<'static, 'static>,
    req: RequestData,
    res: Option<Arc<ResponseHead>>,
    secrets: Arc<Secrets>,
) {
    add(
        ctx,
        "secrets.get",
        move |vault: Arc<String>, name: Arc<String>| -> Result<Value> {
            // The message names the secret, never its value.
            secrets
                .get(&(vault.to_string(), name.to_string()))
                .map(|v| Value::String(Arc::new(v.clone())))
                .ok_or_else(|| {
                    let msg = format!("secret `{vault}/{name}` is not available");
                    ExecutionError::function_error("secrets.get", msg)
                })
        },
    );
    let r = Arc::clone(&req);
    add(ctx, "getReqHeader", move |name: Arc<String>| -> Value {
        strings(r.headers.get_all(&name).map(str::to_string))
    });
    let r = Arc::clone(&req);
    add(ctx, "hasReqHeader", move |name: Arc<String>| -> bool {
        r.headers.contains(&name)
    });
    let r = Arc::clone(&req);
    add(ctx, "getQueryParam", move |name: Arc<String>| -> Value {
        strings(
            query_pairs(&r.query)
                .filter(|(k, _)| *k == *name)
                .map(|(_, v)| v),
        )
    });
    let r = Arc::clone(&req);
    add(ctx, "hasQueryParam", move |name: Arc<String>| -> bool {
        query_pairs(&r.query).any(|(k, _)| k == *name)
    });
    let r = Arc::clone(&req);
    add(ctx, "getReqCookie", move |name: Arc<String>| -> Value {
        cookies::find_request_cookie(&r.headers, &name).unwrap_or(Value::Null)
    });
    add(ctx, "hasReqCookie", move |name: Arc<String>| -> bool {
        cookies::request_cookies(&req.headers)
            .iter()
            .any(|(n, _)| *n == *name)
    });
    let res = res.unwrap_or_else(|| {
        Arc::new(ResponseHead {
            status: 0,
            headers: Default::default(),
        })
    });
    let h = Arc::clone(&res);
    add(ctx, "getResHeader", move |name: Arc<String>| -> Value {
        strings(h.headers.get_all(&name).map(str::to_string))
    });
    let h = Arc::clone(&res);
    add(ctx, "hasResHeader", move |name: Arc<String>| -> bool {
        h.headers.contains(&name)
    });
    let h = Arc::clone(&res);
    add(ctx, "getResCookie", move |name: Arc<String>| -> Value {
        cookies::find_response_cookie(&h.headers, &name).unwrap_or(Value::Null)
    });
    add(ctx, "hasResCookie", move |name: Arc<String>| -> bool {
        cookies::response_cookies(&res.headers)
            .iter()
            .any(|c| *c.name == *name)
    });
    add(
        ctx,
        "inCidrRange",
        |ip: Arc<String>, cidr: Arc<String>| -> Result<bool> {
            Ok(match (parse_ip(&ip), cidr.parse::<IpNet>()) {
                (Some(ip), Ok(net)) => contains(&net, ip),
                _ => false,
            })
        },
    );
    add(
        ctx,
        "inCidrRanges",
        |ip: Arc<String>, cidrs: Arc<Vec<Value>>| -> Result<bool> {
            let Some(ip) = parse_ip(&ip) else {
                return Ok(false);
            };
            Ok(cidrs.iter().any(|c| match c {
                Value::String(s) => s.parse::<IpNet>().is_ok_and(|net| contains(&net, ip)),
                _ => false,
            }))
        },
    );
}

fn add<T: 'static, F>(ctx: &mut Context<'static, 'static>, name: &str, f: F)
where
    F: cel::extractors::IntoFunction<T> + 'static + Send + Sync,
{
    // Names are ours and distinct from the standard library's, so this cannot conflict.
    let _ = ctx.add_function(name, f);
}

fn strings(values: impl Iterator<Item = String>) -> Value {
    Value::List(Arc::new(
        values.map(|v| Value::String(Arc::new(v))).collect(),
    ))
}

/// Parses an address; an IPv4-mapped IPv6 address is treated as the IPv4 address it carries.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.trim().parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

fn contains(net: &IpNet, ip: IpAddr) -> bool {
    net.contains(&ip)
}

/// `rand.double()` in [0, 1) and `rand.int([min, max])` (defaults 0 and 1, both included), drawn
/// from the request's stream: the gateway seeds `state` once per request from its injected
/// randomness, so a test's seed gives the same numbers every run.
pub fn register_rand(ctx: &mut Context<'static, 'static>, state: Arc<AtomicU64>) {
    let s = Arc::clone(&state);
    add(ctx, "rand.double", move || -> f64 {
        // The top 53 bits make an evenly spread double below 1.
        (next(&s) >> 11) as f64 / (1u64 << 53) as f64
    });
    add(
        ctx,
        "rand.int",
        move |Arguments(args): Arguments| -> Result<Value> {
            let (min, max) = match args.as_slice() {
                [] => (0, 1),
                [Value::Int(a), Value::Int(b)] => (*a.min(b), *a.max(b)),
                _ => {
                    return Err(ExecutionError::function_error(
                        "rand.int",
                        "expects no arguments or two ints (min, max)",
                    ))
                }
            };
            let span = (max as i128 - min as i128 + 1) as u128;
            let pick = (u128::from(next(&state)) * span) >> 64;
            Ok(Value::Int((min as i128 + pick as i128) as i64))
        },
    );
}

/// splitmix64: one step of the request's random stream.
fn next(state: &AtomicU64) -> u64 {
    let mut z = state
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
