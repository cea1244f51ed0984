//! `<string>.isPrivateIp()` (ngrok; `inCidrRange(s)` live in `expr::functions`), and CEL's
//! network extension library (`ip()`, `cidr()`, `isIP`, `isCIDR`, `ip.isCanonical`, `net.IP`
//! and `net.CIDR` values and their methods), which ngrok's reference does not list but the CEL
//! conformance tests cover; it is small, and none of its names clash with ngrok's.

use super::{err, global, member, overload, str_arg, string};
use crate::expr::parse_ip;
use cel::common::types::{Type, STRING_TYPE};
use cel::objects::Opaque;
use cel::{DeclarationError, Env, ExecutionError, Value};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

const IP_TYPE: &str = "net.IP";
const CIDR_TYPE: &str = "net.CIDR";

fn ip_type() -> Type {
    Type::new_opaque_type(IP_TYPE)
}

fn cidr_type() -> Type {
    Type::new_opaque_type(CIDR_TYPE)
}

pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    member(
        env,
        "isPrivateIp",
        STRING_TYPE,
        vec![],
        overload!(is_private_ip),
    )?;

    env.add_type(ip_type())?;
    env.add_type(cidr_type())?;
    global(env, "ip", vec![STRING_TYPE], overload!(ip_fn))?;
    global(env, "cidr", vec![STRING_TYPE], overload!(cidr_fn))?;
    global(env, "isIP", vec![STRING_TYPE], overload!(is_ip))?;
    global(env, "isCIDR", vec![STRING_TYPE], overload!(is_cidr))?;
    global(
        env,
        "ip.isCanonical",
        vec![STRING_TYPE],
        overload!(is_canonical),
    )?;
    global(env, "string", vec![ip_type()], overload!(to_string))?;
    global(env, "string", vec![cidr_type()], overload!(to_string))?;
    let ip_methods: [(&str, cel::common::functions::Function); 6] = [
        ("family", overload!(family)),
        ("isUnspecified", overload!(is_unspecified)),
        ("isLoopback", overload!(is_loopback)),
        ("isGlobalUnicast", overload!(is_global_unicast)),
        ("isLinkLocalMulticast", overload!(is_link_local_multicast)),
        ("isLinkLocalUnicast", overload!(is_link_local_unicast)),
    ];
    for (name, f) in ip_methods {
        member(env, name, ip_type(), vec![], f)?;
    }
    let contains_ip = overload!(contains_ip);
    member(env, "containsIP", cidr_type(), vec![ip_type()], contains_ip)?;
    member(
        env,
        "containsIP",
        cidr_type(),
        vec![STRING_TYPE],
        contains_ip,
    )?;
    let contains_cidr = overload!(contains_cidr);
    member(
        env,
        "containsCIDR",
        cidr_type(),
        vec![cidr_type()],
        contains_cidr,
    )?;
    member(
        env,
        "containsCIDR",
        cidr_type(),
        vec![STRING_TYPE],
        contains_cidr,
    )?;
    member(env, "ip", cidr_type(), vec![], overload!(cidr_ip))?;
    member(env, "masked", cidr_type(), vec![], overload!(masked))?;
    member(
        env,
        "prefixLength",
        cidr_type(),
        vec![],
        overload!(prefix_length),
    )?;
    Ok(())
}

/// RFC 1918 IPv4 ranges, as ngrok documents it (an IPv4-mapped IPv6 address counts as its
/// IPv4 address); anything else, an invalid address included, is not private.
fn is_private_ip(args: &[Value]) -> Result<Value, ExecutionError> {
    let ip = parse_ip(str_arg(args, 0, "isPrivateIp")?);
    Ok(Value::Bool(
        matches!(ip, Some(IpAddr::V4(v4)) if v4.is_private()),
    ))
}

/// A `net.IP`: equal to another when they are the same address, an IPv4-mapped IPv6
/// address being its IPv4 address.
#[derive(Debug)]
struct Ip(IpAddr);

impl PartialEq for Ip {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_canonical() == other.0.to_canonical()
    }
}
impl Eq for Ip {}

impl Opaque for Ip {
    fn runtime_type_name(&self) -> &str {
        IP_TYPE
    }
}

/// A `net.CIDR`, as written (its address is not masked: see `masked()`).
#[derive(Debug, PartialEq, Eq)]
struct Cidr(IpNet);

impl Opaque for Cidr {
    fn runtime_type_name(&self) -> &str {
        CIDR_TYPE
    }
}

fn parse_ip_strict(s: &str) -> Result<IpAddr, String> {
    if s.contains('%') {
        return Err("IP Address with zone value is not allowed".into());
    }
    let ip: IpAddr = s
        .parse()
        .map_err(|_| format!("IP Address '{s}' parse error during conversion from string"))?;
    if ip.is_ipv6() && s.contains('.') {
        return Err("IPv4-mapped IPv6 address is not allowed".into());
    }
    Ok(ip)
}

fn parse_cidr_strict(s: &str) -> Result<IpNet, String> {
    if s.contains('%') {
        return Err("CIDR with zone value is not allowed".into());
    }
    let net: IpNet = s
        .parse()
        .map_err(|_| format!("network address parse error during conversion from string: {s}"))?;
    if net.addr().is_ipv6() && s.contains('.') {
        return Err("IPv4-mapped IPv6 address is not allowed".into());
    }
    Ok(net)
}

fn ip_value(ip: IpAddr) -> Value {
    Value::Opaque(Arc::new(Ip(ip)))
}

fn cidr_value(net: IpNet) -> Value {
    Value::Opaque(Arc::new(Cidr(net)))
}

/// A `net.IP` argument, or a string holding one.
fn ip_of(v: Option<&Value>, f: &str) -> Result<IpAddr, ExecutionError> {
    match v {
        Some(Value::Opaque(o)) => o
            .downcast_ref::<Ip>()
            .map(|ip| ip.0)
            .ok_or_else(|| err(f, "expected a net.IP")),
        Some(Value::String(s)) => parse_ip_strict(s).map_err(|e| err(f, e)),
        _ => Err(err(f, "expected a net.IP")),
    }
}

/// A `net.CIDR` argument, or a string holding one.
fn cidr_of(v: Option<&Value>, f: &str) -> Result<IpNet, ExecutionError> {
    match v {
        Some(Value::Opaque(o)) => o
            .downcast_ref::<Cidr>()
            .map(|c| c.0)
            .ok_or_else(|| err(f, "expected a net.CIDR")),
        Some(Value::String(s)) => parse_cidr_strict(s).map_err(|e| err(f, e)),
        _ => Err(err(f, "expected a net.CIDR")),
    }
}

fn ip_fn(args: &[Value]) -> Result<Value, ExecutionError> {
    ip_of(args.first(), "ip").map(ip_value)
}

fn cidr_fn(args: &[Value]) -> Result<Value, ExecutionError> {
    cidr_of(args.first(), "cidr").map(cidr_value)
}

fn is_ip(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(
        parse_ip_strict(str_arg(args, 0, "isIP")?).is_ok(),
    ))
}

fn is_cidr(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(
        parse_cidr_strict(str_arg(args, 0, "isCIDR")?).is_ok(),
    ))
}

/// Whether the address is written in its canonical form (RFC 5952 for IPv6).
fn is_canonical(args: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "ip.isCanonical";
    let s = str_arg(args, 0, F)?;
    let ip = parse_ip_strict(s).map_err(|e| err(F, e))?;
    Ok(Value::Bool(ip.to_string() == s))
}

fn to_string(args: &[Value]) -> Result<Value, ExecutionError> {
    let Some(Value::Opaque(o)) = args.first() else {
        return Err(err("string", "expected a net.IP or net.CIDR"));
    };
    if let Some(ip) = o.downcast_ref::<Ip>() {
        Ok(string(ip.0.to_string()))
    } else if let Some(c) = o.downcast_ref::<Cidr>() {
        Ok(string(c.0.to_string()))
    } else {
        Err(err("string", "expected a net.IP or net.CIDR"))
    }
}

fn family(args: &[Value]) -> Result<Value, ExecutionError> {
    let ip = ip_of(args.first(), "family")?;
    Ok(Value::Int(if ip.is_ipv4() { 4 } else { 6 }))
}

fn is_unspecified(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(
        ip_of(args.first(), "isUnspecified")?.is_unspecified(),
    ))
}

fn is_loopback(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(
        ip_of(args.first(), "isLoopback")?.is_loopback(),
    ))
}

fn link_local_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

fn link_local_multicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.segments()[0] & 0xff0f == 0xff02,
    }
}

/// Go's `net.IP.IsGlobalUnicast`: any unicast address but the unspecified, loopback,
/// link-local and (IPv4) limited broadcast ones; private ranges count.
fn is_global_unicast(args: &[Value]) -> Result<Value, ExecutionError> {
    let ip = ip_of(args.first(), "isGlobalUnicast")?;
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    Ok(Value::Bool(
        !(ip.is_unspecified()
            || ip.is_loopback()
            || ip.is_multicast()
            || broadcast
            || link_local_unicast(ip)),
    ))
}

fn is_link_local_multicast(args: &[Value]) -> Result<Value, ExecutionError> {
    let ip = ip_of(args.first(), "isLinkLocalMulticast")?;
    Ok(Value::Bool(link_local_multicast(ip)))
}

fn is_link_local_unicast(args: &[Value]) -> Result<Value, ExecutionError> {
    let ip = ip_of(args.first(), "isLinkLocalUnicast")?;
    Ok(Value::Bool(link_local_unicast(ip)))
}

fn contains_ip(args: &[Value]) -> Result<Value, ExecutionError> {
    let net = cidr_of(args.first(), "containsIP")?;
    let ip = ip_of(args.get(1), "containsIP")?;
    Ok(Value::Bool(net.contains(&ip)))
}

fn contains_cidr(args: &[Value]) -> Result<Value, ExecutionError> {
    let net = cidr_of(args.first(), "containsCIDR")?;
    let other = cidr_of(args.get(1), "containsCIDR")?;
    Ok(Value::Bool(net.contains(&other)))
}

fn cidr_ip(args: &[Value]) -> Result<Value, ExecutionError> {
    cidr_of(args.first(), "ip").map(|n| ip_value(n.addr()))
}

fn masked(args: &[Value]) -> Result<Value, ExecutionError> {
    cidr_of(args.first(), "masked").map(|n| cidr_value(n.trunc()))
}

fn prefix_length(args: &[Value]) -> Result<Value, ExecutionError> {
    cidr_of(args.first(), "prefixLength").map(|n| Value::Int(i64::from(n.prefix_len())))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{eval, ok, s};
    use cel::Value;

    #[test]
    fn rfc1918_only() {
        for (ip, want) in [
            ("10.1.2.3", true),
            ("172.16.0.1", true),
            ("172.31.255.255", true),
            ("172.32.0.1", false),
            ("192.168.1.1", true),
            ("::ffff:192.168.1.1", true),
            ("8.8.8.8", false),
            ("127.0.0.1", false),
            ("fd00::1", false),
            ("not an ip", false),
        ] {
            assert_eq!(
                ok(&format!("'{ip}'.isPrivateIp()")),
                Value::Bool(want),
                "{ip}"
            );
        }
    }

    #[test]
    fn network_library() {
        let t = Value::Bool(true);
        let f = Value::Bool(false);
        assert_eq!(s("string(ip('2001:db8::68'))"), "2001:db8::68");
        assert_eq!(s("string(cidr('10.0.0.0/8'))"), "10.0.0.0/8");
        assert_eq!(ok("ip('::ffff:c0a8:1') == ip('192.168.0.1')"), t);
        assert_eq!(ok("type(ip('10.0.0.1')) == net.IP"), t);
        assert_eq!(ok("type(cidr('10.0.0.0/8')) == net.CIDR"), t);
        assert_eq!(ok("cidr('10.0.0.0/8').containsIP('10.2.3.4')"), t);
        assert_eq!(ok("cidr('10.0.0.0/8').containsIP(ip('11.2.3.4'))"), f);
        assert_eq!(ok("cidr('10.0.0.0/8').containsCIDR('11.0.0.0/16')"), f);
        assert_eq!(
            ok("cidr('192.168.0.1/24').masked() == cidr('192.168.0.0/24')"),
            t
        );
        assert_eq!(ok("cidr('10.0.0.0/8').prefixLength()"), Value::Int(8));
        assert_eq!(ok("ip('192.168.0.1').isGlobalUnicast()"), t);
        assert_eq!(ok("ip('255.255.255.255').isGlobalUnicast()"), f);
        assert_eq!(ok("ip('ff02::1').isLinkLocalMulticast()"), t);
        assert_eq!(ok("ip('fe80::1').isLinkLocalUnicast()"), t);
        assert_eq!(ok("ip('2001:db8::1').family()"), Value::Int(6));
        assert_eq!(ok("ip.isCanonical('2001:DB8::68')"), f);
        assert_eq!(ok("isIP('1.2.3')"), f);
        assert!(eval("ip('::ffff:192.168.0.1')").is_err());
        assert!(eval("ip('fe80::1%en0')").is_err());
        assert!(eval("cidr('192.168.0.0/')").is_err());
    }
}
