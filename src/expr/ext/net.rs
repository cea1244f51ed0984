//! `<string>.isPrivateIp()`. (`inCidrRange(s)` live in `expr::functions`.)

use super::{member, overload, str_arg};
use crate::expr::parse_ip;
use cel::common::types::STRING_TYPE;
use cel::{DeclarationError, Env, ExecutionError, Value};
use std::net::IpAddr;

pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    member(
        env,
        "isPrivateIp",
        STRING_TYPE,
        vec![],
        overload!(is_private_ip),
    )
}

/// RFC 1918 IPv4 ranges, as ngrok documents it (an IPv4-mapped IPv6 address counts as its
/// IPv4 address); anything else, an invalid address included, is not private.
fn is_private_ip(args: &[Value]) -> Result<Value, ExecutionError> {
    let ip = parse_ip(str_arg(args, 0, "isPrivateIp")?);
    Ok(Value::Bool(
        matches!(ip, Some(IpAddr::V4(v4)) if v4.is_private()),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::ok;
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
}
