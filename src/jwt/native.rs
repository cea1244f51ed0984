//! Signature verification in pure Rust (RustCrypto), for native builds: the core's tests, the
//! benches and `policy-check`. The Worker verifies through WebCrypto instead (`shell::crypto`),
//! which is about 8x faster than these crates compiled to wasm.

use super::alg::Hash;
use super::{Alg, Jwk};
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

fn digest(hash: Hash, message: &[u8]) -> Vec<u8> {
    match hash {
        Hash::Sha256 => Sha256::digest(message).to_vec(),
        Hash::Sha384 => Sha384::digest(message).to_vec(),
        Hash::Sha512 => Sha512::digest(message).to_vec(),
    }
}

/// ECDSA over a pre-hashed message with the curve crate `$curve`; a signature that is not
/// `r || s` of the curve's size simply does not verify.
macro_rules! ecdsa {
    ($curve:ident, $key:expr, $hashed:expr, $signature:expr) => {{
        use $curve::ecdsa::{signature::hazmat::PrehashVerifier, Signature, VerifyingKey};
        match (
            VerifyingKey::from_sec1_bytes(&ec_point($key)),
            Signature::from_slice($signature),
        ) {
            (Err(_), _) => Err(format!("EC key is not a {} point", stringify!($curve))),
            (Ok(_), Err(_)) => Ok(false),
            (Ok(vk), Ok(sig)) => Ok(vk.verify_prehash($hashed, &sig).is_ok()),
        }
    }};
}

/// Whether `signature` over `message` verifies with `key` under `alg`. `Err` only for a key
/// that cannot be used at all.
pub fn verify(alg: Alg, key: &Jwk, message: &[u8], signature: &[u8]) -> Result<bool, String> {
    if !key.fits(alg) {
        return Ok(false);
    }
    let hashed = digest(alg.hash(), message);
    match alg {
        Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
            let n = BigUint::from_bytes_be(&Jwk::bytes(&key.n));
            let e = BigUint::from_bytes_be(&Jwk::bytes(&key.e));
            let public = RsaPublicKey::new(n, e).map_err(|e| format!("RSA key: {e}"))?;
            let scheme_ok = match (alg, alg.hash()) {
                (Alg::PS256 | Alg::PS384 | Alg::PS512, Hash::Sha256) => {
                    public.verify(Pss::new::<Sha256>(), &hashed, signature)
                }
                (Alg::PS256 | Alg::PS384 | Alg::PS512, Hash::Sha384) => {
                    public.verify(Pss::new::<Sha384>(), &hashed, signature)
                }
                (Alg::PS256 | Alg::PS384 | Alg::PS512, Hash::Sha512) => {
                    public.verify(Pss::new::<Sha512>(), &hashed, signature)
                }
                (_, Hash::Sha256) => {
                    public.verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, signature)
                }
                (_, Hash::Sha384) => {
                    public.verify(Pkcs1v15Sign::new::<Sha384>(), &hashed, signature)
                }
                (_, Hash::Sha512) => {
                    public.verify(Pkcs1v15Sign::new::<Sha512>(), &hashed, signature)
                }
            };
            Ok(scheme_ok.is_ok())
        }
        // The three curves differ only in their crate.
        Alg::ES256 => ecdsa!(p256, key, &hashed, signature),
        Alg::ES384 => ecdsa!(p384, key, &hashed, signature),
        Alg::ES512 => ecdsa!(p521, key, &hashed, signature),
        Alg::EdDSA => {
            let x: [u8; 32] = Jwk::bytes(&key.x)
                .try_into()
                .map_err(|_| "Ed25519 key of the wrong length".to_string())?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&x)
                .map_err(|e| format!("Ed25519 key: {e}"))?;
            let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
                return Ok(false);
            };
            Ok(vk.verify_strict(message, &sig).is_ok())
        }
    }
}

/// The uncompressed SEC1 point `04 || x || y`.
fn ec_point(key: &Jwk) -> Vec<u8> {
    let mut point = vec![4u8];
    point.extend(Jwk::bytes(&key.x));
    point.extend(Jwk::bytes(&key.y));
    point
}
