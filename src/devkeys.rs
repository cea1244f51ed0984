//! The development keys in `dev/keys/` (public, never to be trusted anywhere): minting tokens
//! and serving their JWKS for `scripts/dev.sh`, the tests and the benches. Native only.

use crate::jwt::Alg;
use base64::Engine;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The key ids of `dev/keys/`.
pub const KIDS: [&str; 4] = ["rsa-1", "rsa-2", "ec-1", "ed-1"];

pub enum DevKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

fn pem(kid: &str) -> Option<&'static str> {
    Some(match kid {
        "rsa-1" => include_str!("../dev/keys/rsa-1.pem"),
        "rsa-2" => include_str!("../dev/keys/rsa-2.pem"),
        "ec-1" => include_str!("../dev/keys/ec-1.pem"),
        "ed-1" => include_str!("../dev/keys/ed-1.pem"),
        _ => return None,
    })
}

impl DevKey {
    pub fn load(kid: &str) -> Option<DevKey> {
        let pem = pem(kid)?;
        Some(match kid {
            "ec-1" => DevKey::P256(p256::ecdsa::SigningKey::from_pkcs8_pem(pem).ok()?),
            "ed-1" => {
                use ed25519_dalek::pkcs8::DecodePrivateKey as _;
                DevKey::Ed25519(ed25519_dalek::SigningKey::from_pkcs8_pem(pem).ok()?)
            }
            _ => DevKey::Rsa(Box::new(rsa::RsaPrivateKey::from_pkcs8_pem(pem).ok()?)),
        })
    }

    /// The algorithm a token signed with this key uses by default.
    pub fn default_alg(&self) -> Alg {
        match self {
            DevKey::Rsa(_) => Alg::RS256,
            DevKey::P256(_) => Alg::ES256,
            DevKey::Ed25519(_) => Alg::EdDSA,
        }
    }

    /// The public key as a JWK with `kid`, `use: sig`.
    pub fn jwk(&self, kid: &str) -> Value {
        match self {
            DevKey::Rsa(k) => json!({
                "kty": "RSA", "kid": kid, "use": "sig",
                "n": B64.encode(k.n().to_bytes_be()),
                "e": B64.encode(k.e().to_bytes_be()),
            }),
            DevKey::P256(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                json!({
                    "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                    "x": B64.encode(point.x().expect("uncompressed point")),
                    "y": B64.encode(point.y().expect("uncompressed point")),
                })
            }
            DevKey::Ed25519(k) => json!({
                "kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig",
                "x": B64.encode(k.verifying_key().as_bytes()),
            }),
        }
    }

    /// Signs `input` with `alg`. An algorithm this key cannot make yields a signature over
    /// nothing useful (tests use that for mismatches), never a panic.
    pub fn sign(&self, alg: Alg, input: &[u8]) -> Vec<u8> {
        match self {
            DevKey::Rsa(k) => {
                let (hashed, scheme_pss) = match alg {
                    Alg::RS384 | Alg::PS384 => (Sha384::digest(input).to_vec(), 384),
                    Alg::RS512 | Alg::PS512 => (Sha512::digest(input).to_vec(), 512),
                    _ => (Sha256::digest(input).to_vec(), 256),
                };
                let pss = matches!(alg, Alg::PS256 | Alg::PS384 | Alg::PS512);
                let mut rng = CountingRng(7);
                let signed = match (pss, scheme_pss) {
                    (true, 384) => k.sign_with_rng(&mut rng, rsa::Pss::new::<Sha384>(), &hashed),
                    (true, 512) => k.sign_with_rng(&mut rng, rsa::Pss::new::<Sha512>(), &hashed),
                    (true, _) => k.sign_with_rng(&mut rng, rsa::Pss::new::<Sha256>(), &hashed),
                    (false, 384) => k.sign(rsa::Pkcs1v15Sign::new::<Sha384>(), &hashed),
                    (false, 512) => k.sign(rsa::Pkcs1v15Sign::new::<Sha512>(), &hashed),
                    (false, _) => k.sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &hashed),
                };
                signed.unwrap_or_default()
            }
            DevKey::P256(k) => {
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = k.sign(input);
                sig.to_bytes().to_vec()
            }
            DevKey::Ed25519(k) => {
                use ed25519_dalek::Signer;
                k.sign(input).to_bytes().to_vec()
            }
        }
    }
}

/// A JWKS of the named dev keys.
pub fn jwks(kids: &[&str]) -> Value {
    let keys: Vec<Value> = kids
        .iter()
        .filter_map(|kid| DevKey::load(kid).map(|k| k.jwk(kid)))
        .collect();
    json!({ "keys": keys })
}

/// A compact JWS over `header` (merged over `{"alg", "typ": "JWT", "kid"}`) and `claims`,
/// signed with the dev key `kid`.
pub fn mint(kid: &str, alg: Option<Alg>, header: &Value, claims: &Value) -> Option<String> {
    let key = DevKey::load(kid)?;
    let alg = alg.unwrap_or(key.default_alg());
    let mut h = json!({ "alg": alg.name(), "typ": "JWT", "kid": kid });
    if let (Some(base), Some(extra)) = (h.as_object_mut(), header.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    let input = format!(
        "{}.{}",
        B64.encode(h.to_string()),
        B64.encode(claims.to_string())
    );
    let signature = key.sign(alg, input.as_bytes());
    Some(format!("{input}.{}", B64.encode(signature)))
}

/// Deterministic bytes for RSA-PSS salts and blinding: dev signatures need no secrecy.
struct CountingRng(u64);

impl rsa::rand_core::RngCore for CountingRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = (self.next_u64() >> 33) as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for CountingRng {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{native, KeySet, Token};

    #[test]
    fn every_dev_key_round_trips_through_jwks_and_the_native_verifier() {
        let set = KeySet::parse(&jwks(&KIDS).to_string()).unwrap();
        assert_eq!(set.keys.len(), 4, "dropped: {:?}", set.dropped);
        let claims = json!({"sub": "ada", "exp": 2_000_000_000});
        for (kid, algs) in [
            ("rsa-1", &Alg::ALL[..6]),
            ("ec-1", &[Alg::ES256][..]),
            ("ed-1", &[Alg::EdDSA][..]),
        ] {
            for alg in algs {
                let t = mint(kid, Some(*alg), &json!({}), &claims).unwrap();
                let token = Token::parse(&t, &Alg::ALL).unwrap();
                let key = set.candidates(Some(kid), *alg).next().unwrap();
                let ok =
                    native::verify(*alg, key, token.signing_input.as_bytes(), &token.signature);
                assert_eq!(ok, Ok(true), "{kid} {alg:?}");
                // One flipped bit in the signed input fails.
                let mut input = token.signing_input.clone().into_bytes();
                input[3] ^= 1;
                assert_eq!(
                    native::verify(*alg, key, &input, &token.signature),
                    Ok(false)
                );
                // Another key of the same type does not verify it.
                if kid == "rsa-1" {
                    let other = KeySet::parse(&jwks(&["rsa-2"]).to_string()).unwrap();
                    let k2 = &other.keys[0];
                    assert_eq!(
                        native::verify(*alg, k2, token.signing_input.as_bytes(), &token.signature),
                        Ok(false)
                    );
                }
            }
        }
    }
}
