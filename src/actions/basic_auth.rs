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
                let expected = match credential.expected(ex) {
                    Ok(expected) => expected,
                    // An error ends the request (enforced or not); the results say why.
                    Err(e) => {
                        ex.set_outcome("basic_auth", results(&presented, false), Some(&e));
                        return Err(e);
                    }
                };
                // Every configured credential is compared, whatever matched before.
                authorized |= expected.is_some_and(|expected| same(&digest, &expected));
            }
        }
        ex.set_result("basic_auth", results(&presented, authorized));
        if !authorized && self.enforce {
            return Err(GatewayError::Unauthorized {
                realm: self.realm.clone(),
            });
        }
        Ok(Step::Continue)
    }
}

/// `actions.ngrok.basic_auth.credentials.{presented, username, authorized}`, ngrok's documented
/// shape; the username is empty when no credentials were presented.
fn results<'a>(
    presented: &Option<(String, String)>,
    authorized: bool,
) -> Vec<(&'a str, cel::Value)> {
    let username = presented.as_ref().map_or("", |(user, _)| user.as_str());
    vec![(
        "credentials",
        crate::expr::map(vec![
            ("presented", cel::Value::Bool(presented.is_some())),
            ("username", cel::Value::from(username)),
            ("authorized", cel::Value::Bool(authorized)),
        ]),
    )]
}

/// A configured `user:password`: hashed once when literal, rendered per request when it reads a
/// secret or a variable.
#[derive(Debug)]
enum Credential {
    Fixed([u8; 32]),
    /// `user:password` with `${}` on either side of the literal `:`. A username that renders
    /// with a `:` of its own never matches (ngrok: "the expression itself cannot introduce
    /// another colon"; a client's first `:` would split it elsewhere).
    Split { user: Template, password: Template },
    /// `${expr}` alone: the whole credential, split at its first `:` like a client's.
    Whole(Template),
}

impl Credential {
    /// The digest of `user:password` for this request; `None` when it cannot match anything.
    fn expected(&self, ex: &mut Exchange) -> Result<Option<[u8; 32]>, GatewayError> {
        Ok(match self {
            Credential::Fixed(d) => Some(*d),
            Credential::Split { user, password } => {
                let user = ex.render(user, "basic-auth", "credentials")?;
                let password = ex.render(password, "basic-auth", "credentials")?;
                (!user.contains(':')).then(|| Sha256::digest(format!("{user}:{password}")).into())
            }
            Credential::Whole(t) => {
                let text = ex.render(t, "basic-auth", "credentials")?;
                text.contains(':')
                    .then(|| Sha256::digest(text.as_bytes()).into())
            }
        })
    }
}

/// Where a credential is split: the byte index of its first `:` outside `${}` (`Ok(None)` when
/// it has none), or `Err` for an unterminated `${` (the template compiler reports it).
fn literal_colon(text: &str) -> Result<Option<usize>, ()> {
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with("${") {
            i += 2 + crate::expr::closing_brace(&text[i + 2..]).ok_or(())? + 1;
        } else if text[i..].starts_with(':') {
            return Ok(Some(i));
        } else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    Ok(None)
}

/// Whether the credential is one `${expr}` and nothing else.
fn whole_interpolation(text: &str) -> bool {
    text.strip_prefix("${")
        .and_then(|body| crate::expr::closing_brace(body).map(|end| end + 1 == body.len()))
        .unwrap_or(false)
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
        // ngrok's valid patterns: `${expr}` (the whole credential), or a literal `:` with
        // `${}` in the username, the password or both. A literal password has 8..128 chars.
        let colon = match literal_colon(text) {
            Ok(colon) => colon,
            Err(()) => {
                // An unterminated `${`: the template compiler says so.
                c.template("credentials", item, text);
                ok = false;
                continue;
            }
        };
        let credential = match colon {
            None if whole_interpolation(text) => {
                c.template("credentials", item, text).map(Credential::Whole)
            }
            None => {
                c.error_at(
                    MISSING,
                    &key,
                    item,
                    "a credential needs a literal `:` between user and password".into(),
                );
                None
            }
            Some(at) => {
                let (user, password) = (&text[..at], &text[at + 1..]);
                if !password.contains("${") && !(8..=128).contains(&password.chars().count()) {
                    c.error_at(
                        OUT_OF_RANGE,
                        &key,
                        item,
                        "a password must have 8 to 128 characters".into(),
                    );
                    None
                } else {
                    let user = c.template("credentials", item, user);
                    let password = c.template("credentials", item, password);
                    user.zip(password).map(|(user, password)| {
                        match (user.literal(), password.literal()) {
                            (Some(u), Some(p)) => {
                                Credential::Fixed(Sha256::digest(format!("{u}:{p}")).into())
                            }
                            _ => Credential::Split { user, password },
                        }
                    })
                }
            }
        };
        match credential {
            Some(credential) => out.push(credential),
            None => ok = false,
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

    /// ngrok's page, "Using CEL in credentials": the valid and invalid patterns.
    #[test]
    fn where_a_credential_splits() {
        let e = "${secrets.get('v', 'n')}";
        for (text, colon, whole) in [
            (e.to_string(), None, true),
            (format!("{e}:password"), Some(e.len()), false),
            (format!("{e}:{e}"), Some(e.len()), false),
            (format!("user-prefix{e}:password"), Some(11 + e.len()), false),
            (format!("admin:{e}"), Some(5), false),
            // Invalid: no colon outside `${}`, and more than the interpolation.
            (format!("{e}password"), None, false),
            (format!("user-prefix{e}password-suffix"), None, false),
            // A `:` inside the expression is not the separator.
            ("${'a:b'}x".to_string(), None, false),
            ("é:${'x'}".to_string(), Some(2), false),
        ] {
            assert_eq!(literal_colon(&text), Ok(colon), "{text}");
            assert_eq!(whole_interpolation(&text), whole, "{text}");
        }
        assert_eq!(literal_colon("a${b:c"), Err(()));
    }

    /// ngrok's valid patterns compile; its invalid ones are refused at upload.
    #[test]
    fn credential_patterns_are_checked_at_upload() {
        use crate::compile::testing::compile_json;
        use crate::compile::EndpointKind;
        let compile = |credential: &str| {
            let policy = serde_json::json!({"on_http_request": [
                {"actions": [{"type": "basic-auth", "config": {"credentials": [credential]}}]},
            ]});
            compile_json(&policy, EndpointKind::Agent)
        };
        let e = "${secrets.get('v', 'n')}";
        for valid in [
            e.to_string(),
            format!("{e}:password"),
            format!("{e}:{e}"),
            format!("user-prefix{e}:password"),
        ] {
            let (policy, diags) = compile(&valid);
            assert!(policy.is_some(), "{valid}: {:?}", diags.items);
        }
        for invalid in [format!("{e}password"), format!("user-prefix{e}password-suffix")] {
            let (policy, diags) = compile(&invalid);
            assert!(policy.is_none(), "{invalid}");
            assert!(
                diags.items.iter().any(|d| d.message.contains("literal `:`")),
                "{invalid}: {:?}",
                diags.items
            );
        }
        let (policy, _) = compile("user:short");
        assert!(policy.is_none(), "a literal password under 8 characters");
    }

    /// The checker knows ngrok's documented result shape, typed: the documented paths pass,
    /// the old top-level `authorized` / `username` and a string compared with the bool do not.
    #[test]
    fn the_checker_knows_the_documented_results() {
        use crate::compile::testing::compile_json;
        use crate::compile::EndpointKind;
        use crate::source::Severity;
        let errors = |expr: &str| -> Vec<String> {
            let policy = serde_json::json!({"on_http_request": [
                {"actions": [{"type": "basic-auth", "config": {"credentials": ["a:12345678"]}}]},
                {"expressions": [expr], "actions": [{"type": "deny"}]},
            ]});
            let (_, diags) = compile_json(&policy, EndpointKind::Agent);
            diags
                .items
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .map(|d| d.message.clone())
                .collect()
        };
        for ok in [
            "actions.ngrok.basic_auth.credentials.authorized",
            "!actions.ngrok.basic_auth.credentials.presented",
            "actions.ngrok.basic_auth.credentials.username.startsWith('a')",
        ] {
            assert_eq!(errors(ok), Vec::<String>::new(), "{ok}");
        }
        for (bad, want) in [
            ("actions.ngrok.basic_auth.authorized", "no field `authorized`"),
            ("actions.ngrok.basic_auth.username == 'a'", "no field `username`"),
            (
                "actions.ngrok.basic_auth.credentials.authorized == 'yes'",
                "compares a bool with a string",
            ),
        ] {
            let got = errors(bad);
            assert!(got.iter().any(|m| m.contains(want)), "{bad}: {got:?}");
        }
    }

    #[test]
    fn constant_time_compare() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}
