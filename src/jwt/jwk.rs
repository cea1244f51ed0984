//! Public keys from a JWKS document (RFC 7517). A key that cannot safely verify anything is
//! dropped when the document is read, not when a token arrives: symmetric (`oct`) keys, keys
//! that carry private parts, keys not meant for signatures, RSA keys under 2048 bits.

use super::Alg;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
/// More keys than this in one JWKS is a misconfiguration (and a cost to every unknown `kid`).
const MAX_KEYS: usize = 100;

/// One usable public key. Components stay base64url text: WebCrypto imports the JWK as is,
/// the native verifier decodes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    pub kty: String,
    pub crv: Option<String>,
    /// The algorithm the key is restricted to, when the JWKS says so.
    pub alg: Option<Alg>,
    pub n: Option<String>,
    pub e: Option<String>,
    pub x: Option<String>,
    pub y: Option<String>,
    /// SHA-256 of the key material: a stable name for caching imported keys.
    pub fingerprint: [u8; 32],
}

/// The usable keys of one JWKS document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySet {
    pub keys: Vec<Arc<Jwk>>,
    /// Why keys were dropped, for the log.
    pub dropped: Vec<String>,
}

impl KeySet {
    /// Reads a JWKS document; `Err` when it is not one at all (ngrok's `ERR_NGROK_7186`).
    pub fn parse(text: &str) -> Result<KeySet, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("not a JWKS: no `keys` array")?;
        if keys.len() > MAX_KEYS {
            return Err(format!("{} keys; at most {MAX_KEYS} are read", keys.len()));
        }
        let mut set = KeySet::default();
        for (i, key) in keys.iter().enumerate() {
            match Jwk::parse(key) {
                Ok(k) => set.keys.push(Arc::new(k)),
                Err(why) => set.dropped.push(format!("keys[{i}]: {why}")),
            }
        }
        Ok(set)
    }

    /// The keys that may verify a token signed with `alg` and naming `kid`. Without a `kid`
    /// every key of the right type is a candidate.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Alg,
    ) -> impl Iterator<Item = &'a Arc<Jwk>> + 'a {
        self.keys
            .iter()
            .filter(move |k| kid.is_none() || k.kid.as_deref() == kid)
            .filter(move |k| k.fits(alg))
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

impl Jwk {
    fn parse(v: &Value) -> Result<Jwk, String> {
        let text = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_string);
        let kty = text("kty").ok_or("no `kty`")?;
        if v.get("d").is_some() {
            return Err("carries a private key (`d`); refused".into());
        }
        if let Some(u) = text("use") {
            if u != "sig" {
                return Err(format!("`use` is `{u}`, not `sig`"));
            }
        }
        if let Some(ops) = v.get("key_ops").and_then(Value::as_array) {
            if !ops.iter().any(|o| o.as_str() == Some("verify")) {
                return Err("`key_ops` lacks `verify`".into());
            }
        }
        let alg = match text("alg") {
            None => None,
            Some(a) => Some(Alg::parse(&a).ok_or(format!("algorithm `{a}` is not supported"))?),
        };
        let decoded = |name: &str| -> Result<Vec<u8>, String> {
            let t = text(name).ok_or(format!("no `{name}`"))?;
            B64.decode(t.trim_end_matches('='))
                .map_err(|_| format!("`{name}` is not base64url"))
        };
        let mut key = Jwk {
            kid: text("kid"),
            kty: kty.clone(),
            crv: text("crv"),
            alg,
            n: None,
            e: None,
            x: None,
            y: None,
            fingerprint: [0; 32],
        };
        let mut material = Material(Sha256::new());
        match kty.as_str() {
            "RSA" => {
                let n = decoded("n")?;
                let e = decoded("e")?;
                // Leading zero bytes do not make a key longer.
                let significant = &n[n.iter().take_while(|b| **b == 0).count()..];
                let bits = match significant.first() {
                    Some(top) => significant.len() * 8 - top.leading_zeros() as usize,
                    None => 0,
                };
                if bits < 2048 {
                    return Err(format!(
                        "RSA key of {bits} bits; at least 2048 are required"
                    ));
                }
                let e_value = e.iter().skip_while(|b| **b == 0).try_fold(0u64, |acc, b| {
                    acc.checked_mul(256).map(|a| a + u64::from(*b))
                });
                if !e_value.is_some_and(|v| v >= 3 && v % 2 == 1) {
                    return Err("the RSA exponent must be odd and at least 3".into());
                }
                material.update(significant);
                material.update(&e);
                key.n = text("n");
                key.e = text("e");
            }
            "EC" => {
                let size = match key.crv.as_deref() {
                    Some("P-256") => 32,
                    Some("P-384") => 48,
                    Some("P-521") => 66,
                    other => return Err(format!("curve {other:?} is not supported")),
                };
                let (x, y) = (decoded("x")?, decoded("y")?);
                if x.len() != size || y.len() != size {
                    return Err("EC coordinates of the wrong length".into());
                }
                material.update(&x);
                material.update(&y);
                key.x = text("x");
                key.y = text("y");
            }
            "OKP" => {
                if key.crv.as_deref() != Some("Ed25519") {
                    return Err(format!("curve {:?} is not supported", key.crv));
                }
                let x = decoded("x")?;
                if x.len() != 32 {
                    return Err("Ed25519 key of the wrong length".into());
                }
                material.update(&x);
                key.x = text("x");
            }
            "oct" => return Err("symmetric (`oct`) keys are refused in a JWKS".into()),
            other => return Err(format!("key type `{other}` is not supported")),
        }
        material.update(kty.as_bytes());
        material.update(key.crv.as_deref().unwrap_or("").as_bytes());
        key.fingerprint = material.0.finalize().into();
        Ok(key)
    }

    /// Whether this key can verify `alg` (its type and curve match, and any `alg` it is
    /// restricted to is the same).
    pub fn fits(&self, alg: Alg) -> bool {
        let (kty, crv) = alg.key_type();
        self.kty == kty
            && (crv.is_none() || self.crv.as_deref() == crv)
            && self.alg.is_none_or(|a| a == alg)
    }

    /// The JWK as JSON (public parts only), as WebCrypto's `importKey("jwk")` takes it.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("kty".into(), self.kty.clone().into());
        for (name, v) in [
            ("crv", &self.crv),
            ("n", &self.n),
            ("e", &self.e),
            ("x", &self.x),
            ("y", &self.y),
        ] {
            if let Some(v) = v {
                m.insert(name.into(), v.trim_end_matches('=').into());
            }
        }
        Value::Object(m)
    }

    /// A base64url component, decoded (the parser already checked it decodes).
    pub fn bytes(component: &Option<String>) -> Vec<u8> {
        component
            .as_deref()
            .and_then(|t| B64.decode(t.trim_end_matches('=')).ok())
            .unwrap_or_default()
    }
}

/// A hash of length-prefixed parts: `(n, e)` and `(n', e')` never collide by moving bytes
/// from one part to the other.
struct Material(Sha256);

impl Material {
    fn update(&mut self, part: &[u8]) {
        self.0.update((part.len() as u64).to_le_bytes());
        self.0.update(part);
    }
}

impl Jwk {
    /// A P-256 public key from its coordinates (SendGrid's webhook key arrives as SPKI DER).
    pub fn p256(x: &[u8], y: &[u8]) -> Jwk {
        let mut material = Material(Sha256::new());
        material.update(x);
        material.update(y);
        material.update(b"EC");
        material.update(b"P-256");
        Jwk {
            kid: None,
            kty: "EC".into(),
            crv: Some("P-256".into()),
            alg: Some(Alg::ES256),
            n: None,
            e: None,
            x: Some(B64.encode(x)),
            y: Some(B64.encode(y)),
            fingerprint: material.0.finalize().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa(n: &[u8], e: &[u8]) -> Result<Jwk, String> {
        Jwk::parse(&serde_json::json!({"kty": "RSA", "n": B64.encode(n), "e": B64.encode(e)}))
    }

    #[test]
    fn rsa_keys_must_be_long_with_a_sane_exponent() {
        let n = [0xc5u8; 256];
        assert!(rsa(&n, &[1, 0, 1]).is_ok());
        // 456 significant bits padded with zero bytes are still 456 bits.
        let mut padded = vec![0u8; 200];
        padded.extend([0xc5u8; 57]);
        assert!(rsa(&padded, &[1, 0, 1]).unwrap_err().contains("456 bits"));
        assert!(rsa(&[], &[1, 0, 1]).is_err());
        assert!(rsa(&n, &[1]).is_err(), "e = 1");
        assert!(rsa(&n, &[2]).is_err(), "even e");
        assert!(rsa(&n, &[]).is_err());
        assert!(rsa(&n, &[1; 9]).is_err(), "e overflows");
    }

    #[test]
    fn fingerprints_do_not_collide_by_moving_bytes_between_parts() {
        let n = [0xc5u8; 256];
        let mut n2 = n.to_vec();
        n2.push(3);
        let a = rsa(&n2, &[1, 0, 1]).unwrap();
        let b = rsa(&n, &[3, 1, 0, 1]).unwrap();
        assert_ne!(a.fingerprint, b.fingerprint);
    }
}
