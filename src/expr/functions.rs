//! ngrok's request helpers and IP macros, bound to the request they read.

use super::vars::{query_pairs, RequestData};
use crate::secrets::Secrets;
use cel::{Context, ExecutionError, Value};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

type Result<T> = std::result::Result<T, ExecutionError>;

/// Adds the request helpers (closures over this request's data) and the IP macros to `ctx`.
pub fn register(ctx: &mut Context<'static, 'static>, req: RequestData, secrets: Arc<Secrets>) {
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
    add(ctx, "hasQueryParam", move |name: Arc<String>| -> bool {
        query_pairs(&req.query).any(|(k, _)| k == *name)
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
