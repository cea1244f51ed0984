//! `basic-auth`: HTTP Basic credentials (RFC 7617), checked in constant time.
//!
//! Passwords may come from Worker secrets: `"admin:${secrets.get('acme', 'admin-password')}"`.
//! Every presented credential is compared with every configured one through SHA-256 digests and a
//! branch-free fold, so timing reveals neither which user exists nor how much of a password
//! matched. No credential is ever written into a message, log or result variable except the
//! presented username.

use crate::exchange::Context;
use super::spec::{ActionSpec, ActionType, REQ};
use super::ConfigShape::{Any, Interpolated, Fields, ListOf};
use crate::actions::config::Config;
use crate::actions::config::{BAD_CONFIG, MISSING, OUT_OF_RANGE, TOO_MANY};
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::Step;
use crate::expr::Template;
use crate::source::Node;
use base64::Engine;
use sha2::{Digest, Sha256};

#[derive(Debug)]
pub struct BasicAuth {
    credentials: Vec<Credential>,
    realm: String,
    enforce: bool,
}

impl ActionType for BasicAuth {
    const SPEC: ActionSpec = ActionSpec {
        name: "basic-auth",
        phases: &[REQ],
        terminating: false,
        results: Some("basic_auth"),
        config: Fields(&[
            ("credentials", ListOf(&Interpolated)),
            ("realm", Any),
            ("enforce", Any),
        ]),
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<BasicAuth> {
        let mut c = Config::new(config, path, cx.diags);
        let credentials = credentials(&mut c);
        let realm = match c.string("realm") {
            Some((n, r))
                if r.len() > 128 || !r.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"') =>
            {
                let msg =
                    "`realm` must be at most 128 printable ASCII characters, without `\"`".into();
                c.error_at(BAD_CONFIG, "realm", n, msg);
                String::new()
            }
            Some((_, r)) => r,
            None => "ngrok".to_string(),
        };
        let enforce = c.bool("enforce", true);
        c.finish();
        Some(BasicAuth {
            credentials: credentials?,
            realm,
            enforce,
        })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, _: &C) -> Result<Step, GatewayError> {
        let presented = ex.req.headers.get("authorization").and_then(decode);
        let mut authorized = false;
        if let Some((user, password)) = &presented {
            let digest = Sha256::digest(format!("{user}:{password}"));
            for credential in &self.credentials {
                let expected: [u8; 32] = match credential {
                    Credential::Fixed(d) => *d,
                    Credential::Dynamic(t) => {
                        let text = match ex.render(t, "basic-auth", "credentials") {
                            Ok(text) => text,
                            // An error ends the request (enforced or not); the results say why.
                            Err(e) => {
                                ex.set_outcome("basic_auth", Vec::new(), Some(&e));
                                return Err(e);
                            }
                        };
                        Sha256::digest(text.as_bytes()).into()
                    }
                };
                // Every configured credential is compared, whatever matched before.
                authorized |= same(&digest, &expected);
            }
        }
        let mut fields = vec![
            (
                "credentials",
                crate::expr::map(vec![("presented", cel::Value::Bool(presented.is_some()))]),
            ),
            ("authorized", cel::Value::Bool(authorized)),
        ];
        if let Some((user, _)) = &presented {
            fields.push(("username", cel::Value::from(user.as_str())));
        }
        ex.set_result("basic_auth", fields);
        if !authorized && self.enforce {
            return Err(GatewayError::Unauthorized {
                realm: self.realm.clone(),
            });
        }
        Ok(Step::Continue)
    }
}

/// A configured `user:password`: hashed once when literal, rendered per request when it reads a
/// secret or a variable.
#[derive(Debug)]
enum Credential {
    Fixed([u8; 32]),
    Dynamic(Template),
}


/// Constant-time equality of two digests.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `Basic <base64(user:password)>` → (user, password); the scheme is case-insensitive.
fn decode(header: &str) -> Option<(String, String)> {
    let (scheme, token) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// `credentials`: 1 to 10 `user:password` strings; the first `:` outside `${}` splits them.
fn credentials(c: &mut Config<'_, '_>) -> Option<Vec<Credential>> {
    let Some(node) = c.field("credentials") else {
        c.missing("credentials");
        return None;
    };
    let Some(items) = node.as_seq() else {
        c.wrong_type("credentials", node, "a list of `user:password` strings");
        return None;
    };
    if items.is_empty() || items.len() > 10 {
        c.error_at(
            TOO_MANY,
            "credentials",
            node,
            format!(
                "`credentials` must have 1 to 10 entries, not {}",
                items.len()
            ),
        );
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let key = format!("credentials[{i}]");
        let Some(text) = item.as_str() else {
            c.error_at(
                BAD_CONFIG,
                &key,
                item,
                "a credential is a `user:password` string".into(),
            );
            ok = false;
            continue;
        };
        // The `:` must be literal; a literal password is checked for ngrok's 8..128 length.
        let outside = text.split("${").next().unwrap_or(text);
        match outside.split_once(':') {
            None => {
                c.error_at(
                    MISSING,
                    &key,
                    item,
                    "a credential needs a literal `:` between user and password".into(),
                );
                ok = false;
            }
            Some((_, password))
                if !text.contains("${") && !(8..=128).contains(&password.chars().count()) =>
            {
                c.error_at(
                    OUT_OF_RANGE,
                    &key,
                    item,
                    "a password must have 8 to 128 characters".into(),
                );
                ok = false;
            }
            Some(_) => match c.template("credentials", item, text) {
                Some(t) => out.push(match t.literal() {
                    Some(fixed) => Credential::Fixed(Sha256::digest(fixed.as_bytes()).into()),
                    None => Credential::Dynamic(t),
                }),
                None => ok = false,
            },
        }
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("ada:pass:word");
        assert_eq!(
            decode(&format!("Basic {b64}")),
            Some(("ada".into(), "pass:word".into()))
        );
        assert_eq!(
            decode(&format!("basic  {b64}")),
            Some(("ada".into(), "pass:word".into()))
        );
        assert_eq!(decode(&format!("Bearer {b64}")), None);
        assert_eq!(decode("Basic !!!"), None);
        assert_eq!(decode("Basic"), None);
    }

    #[test]
    fn constant_time_compare() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}
