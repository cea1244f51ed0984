//! A compact JWS (`header.payload.signature`) read strictly: base64url without padding, JSON
//! objects, an allowed algorithm, no key material in the header, claims of the right types.
//! Everything that can be refused without a key is refused here.

use super::{Alg, Rejection};
use base64::Engine;
use serde_json::{Map, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
/// Larger than any identity provider's token with groups; a bound on the work a request can ask.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Header fields through which a token could bring its own key (RFC 7515 §4.1). Honouring any
/// of them lets the sender choose the key that verifies it.
const KEY_FIELDS: [&str; 5] = ["jwk", "jku", "x5u", "x5c", "x5t#S256"];

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub alg: Alg,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub header: Map<String, Value>,
    pub payload: Map<String, Value>,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
    /// The third part as sent (for the `signature` result variable).
    pub signature_text: String,
    pub claims: Claims,
}

/// The registered claims the action checks, typed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Claims {
    pub iss: Option<String>,
    pub aud: Vec<String>,
    pub exp: Option<f64>,
    pub nbf: Option<f64>,
    pub iat: Option<f64>,
}

fn malformed(why: impl Into<String>) -> Rejection {
    Rejection::Malformed(why.into())
}

fn json_part(part: &str, name: &str) -> Result<Map<String, Value>, Rejection> {
    let bytes = B64
        .decode(part)
        .map_err(|_| malformed(format!("the {name} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(malformed(format!("the {name} is not a JSON object"))),
    }
}

impl Token {
    /// Parses `raw` and checks its algorithm against `allowed`.
    pub fn parse(raw: &str, allowed: &[Alg]) -> Result<Token, Rejection> {
        if raw.len() > MAX_TOKEN_BYTES {
            return Err(malformed(format!("longer than {MAX_TOKEN_BYTES} bytes")));
        }
        let parts: Vec<&str> = raw.split('.').collect();
        match parts.len() {
            3 => {}
            5 => return Err(malformed("encrypted tokens (JWE) are not accepted")),
            n => return Err(malformed(format!("{n} parts; a JWS has 3"))),
        }
        let header = json_part(parts[0], "header")?;
        let alg_name = match header.get("alg") {
            Some(Value::String(a)) => a.as_str(),
            _ => return Err(malformed("the header has no `alg`")),
        };
        let alg = Alg::parse(alg_name)
            .filter(|a| allowed.contains(a))
            .ok_or_else(|| Rejection::Algorithm(alg_name.to_string()))?;
        if let Some(field) = KEY_FIELDS.iter().find(|f| header.contains_key(**f)) {
            return Err(Rejection::EmbeddedKey(field));
        }
        if header.contains_key("crit") {
            return Err(malformed(
                "critical header extensions (`crit`) are not understood",
            ));
        }
        let text = |name: &str| -> Result<Option<String>, Rejection> {
            match header.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(malformed(format!("header `{name}` is not a string"))),
            }
        };
        let kid = text("kid")?;
        let typ = text("typ")?;
        let payload = json_part(parts[1], "payload")?;
        let signature = B64
            .decode(parts[2])
            .map_err(|_| malformed("the signature is not base64url"))?;
        if signature.is_empty() {
            return Err(malformed("the signature is empty"));
        }
        let claims = Claims::read(&payload)?;
        Ok(Token {
            alg,
            kid,
            typ,
            header,
            payload,
            signing_input: format!("{}.{}", parts[0], parts[1]),
            signature,
            signature_text: parts[2].to_string(),
            claims,
        })
    }
}

impl Claims {
    fn read(payload: &Map<String, Value>) -> Result<Claims, Rejection> {
        let date = |name: &str| match payload.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(malformed(format!("`{name}` is not a number"))),
        };
        let iss = match payload.get("iss") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(malformed("`iss` is not a string")),
        };
        let aud = match payload.get("aud") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| malformed("`aud` holds a non-string"))?,
            Some(_) => return Err(malformed("`aud` is neither a string nor a list")),
        };
        Ok(Claims {
            iss,
            aud,
            exp: date("exp")?,
            nbf: date("nbf")?,
            iat: date("iat")?,
        })
    }

    /// Checks the time claims at `now_s` with `leeway_s` of clock skew either way. `exp` is
    /// required: a token without one would be good forever.
    pub fn check_times(&self, now_s: f64, leeway_s: f64) -> Result<(), Rejection> {
        let exp = self.exp.ok_or(Rejection::MissingExp)?;
        if now_s >= exp + leeway_s {
            return Err(Rejection::Expired);
        }
        if self.nbf.is_some_and(|nbf| now_s + leeway_s < nbf) {
            return Err(Rejection::NotYetValid);
        }
        if self.iat.is_some_and(|iat| now_s + leeway_s < iat) {
            return Err(Rejection::IssuedInFuture);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &str) -> String {
        B64.encode(v)
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(payload))
    }

    const ALL: &[Alg] = &Alg::ALL;

    #[test]
    fn refuses_none_and_unknown_algorithms_before_anything_else() {
        for alg in ["none", "None", "NONE", "HS256", "HS512", "RS1", ""] {
            let t = token(&format!(r#"{{"alg":"{alg}","jwk":{{}}}}"#), "{}");
            assert_eq!(
                Token::parse(&t, ALL).unwrap_err(),
                Rejection::Algorithm(alg.to_string())
            );
        }
        let t = token(r#"{"alg":"ES256"}"#, r#"{"exp":1}"#);
        assert_eq!(
            Token::parse(&t, &[Alg::RS256]).unwrap_err(),
            Rejection::Algorithm("ES256".into())
        );
        // `alg: none` with an empty signature is refused as `none`, not as malformed.
        let t = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64("{}"));
        assert_eq!(
            Token::parse(&t, ALL).unwrap_err(),
            Rejection::Algorithm("none".into())
        );
    }

    #[test]
    fn refuses_keys_in_the_header() {
        for field in KEY_FIELDS {
            let t = token(&format!(r#"{{"alg":"RS256","{field}":"x"}}"#), "{}");
            assert_eq!(
                Token::parse(&t, ALL).unwrap_err(),
                Rejection::EmbeddedKey(field)
            );
        }
    }

    #[test]
    fn refuses_malformed_tokens() {
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        let cases = [
            "".to_string(),
            "abc".to_string(),
            "a.b".to_string(),
            "a.b.c.d".to_string(),
            "a.b.c.d.e".to_string(),
            long,
            format!("{}.{}.c2ln", "%%%", b64("{}")),
            format!("{}.{}.c2ln", b64("[1]"), b64("{}")),
            token(r#"{"alg":"RS256"}"#, "not json"),
            token(r#"{"alg":"RS256"}"#, "[]"),
            token(r#"{"alg":"RS256","crit":["exp"]}"#, "{}"),
            token(r#"{"alg":"RS256","kid":7}"#, "{}"),
            token(r#"{"alg":"RS256"}"#, r#"{"exp":"tomorrow"}"#),
            token(r#"{"alg":"RS256"}"#, r#"{"aud":[1]}"#),
            token(r#"{"alg":"RS256"}"#, r#"{"iss":{}}"#),
            format!("{}.{}.", b64(r#"{"alg":"RS256"}"#), b64("{}")),
            format!("{}=.{}.c2ln", b64(r#"{"alg":"RS256"}"#), b64("{}")),
        ];
        for t in cases {
            assert!(
                matches!(Token::parse(&t, ALL), Err(Rejection::Malformed(_))),
                "{t:.60} was not refused as malformed: {:?}",
                Token::parse(&t, ALL)
            );
        }
    }

    #[test]
    fn reads_claims() {
        let t = token(
            r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#,
            r#"{"iss":"https://idp/","aud":["a","b"],"exp":100.5,"nbf":10,"iat":9}"#,
        );
        let t = Token::parse(&t, ALL).unwrap();
        assert_eq!(t.kid.as_deref(), Some("k1"));
        assert_eq!(t.claims.aud, vec!["a", "b"]);
        assert_eq!(t.claims.exp, Some(100.5));
        assert_eq!(t.signature, b"sig");
        assert!(t.claims.check_times(50.0, 0.0).is_ok());
        assert_eq!(t.claims.check_times(100.5, 0.0), Err(Rejection::Expired));
        assert!(t.claims.check_times(110.0, 60.0).is_ok());
        assert_eq!(t.claims.check_times(5.0, 0.0), Err(Rejection::NotYetValid));
        assert!(t.claims.check_times(5.0, 5.0).is_ok());
        let no_exp = Claims::default();
        assert_eq!(no_exp.check_times(0.0, 0.0), Err(Rejection::MissingExp));
        let future = Claims {
            exp: Some(1e9),
            iat: Some(500.0),
            ..Claims::default()
        };
        assert_eq!(
            future.check_times(100.0, 60.0),
            Err(Rejection::IssuedInFuture)
        );
    }
}
