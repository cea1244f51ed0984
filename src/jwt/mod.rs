//! JSON Web Tokens for `jwt-validation`: parsing (RFC 7515/7519), public keys from JWKS
//! (RFC 7517), the per-isolate key and verification caches, and the closed set of reasons a
//! token is refused. Signatures are checked through the actions' `Context` port (`exchange::Context`):
//! WebCrypto in the Worker, [`native`] everywhere else.

mod alg;
mod cache;
mod jwk;
mod token;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;

pub use alg::Alg;
pub use cache::{CacheSettings, JwtCache, KeyPlan, Verified};
pub use jwk::{Jwk, KeySet};
pub use token::Token;

use std::fmt;

/// Why a token was refused. Each maps to a 401 with a `WWW-Authenticate: Bearer error=...`
/// challenge, except [`Rejection::KeysUnavailable`] (503: the gateway, not the token, failed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A configured token location held nothing (`ERR_NGROK_3406`/`3408`).
    Missing {
        location: String,
    },
    /// The configured prefix (e.g. `Bearer `) was not there (`ERR_NGROK_3413`).
    NoPrefix {
        location: String,
    },
    /// Not three base64url parts of JSON, too long, or claims of the wrong type (`3416`).
    Malformed(String),
    /// `alg: none`, or an algorithm the policy does not allow.
    Algorithm(String),
    /// The header carries its own key (`jwk`, `jku`, `x5u`, `x5c`) or unknown `crit` extensions.
    EmbeddedKey(&'static str),
    /// `typ` does not match the configured token type.
    Type(String),
    /// No key in the JWKS matches the token's `kid` and algorithm.
    UnknownKey(String),
    /// The signature does not verify.
    Signature,
    Expired,
    NotYetValid,
    IssuedInFuture,
    MissingExp,
    Issuer(String),
    Audience,
    /// No keys could be had from the JWKS URLs (`ERR_NGROK_3422`).
    KeysUnavailable(String),
}

impl Rejection {
    /// RFC 6750 error code for the `WWW-Authenticate` challenge.
    pub fn bearer_error(&self) -> Option<&'static str> {
        match self {
            Rejection::Missing { .. } | Rejection::NoPrefix { .. } => None,
            Rejection::KeysUnavailable(_) => None,
            _ => Some("invalid_token"),
        }
    }

    /// ngrok's runtime code, where one exists.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Missing { .. } => "ERR_NGROK_3406",
            Rejection::NoPrefix { .. } => "ERR_NGROK_3413",
            Rejection::Malformed(_) => "ERR_NGROK_3416",
            Rejection::KeysUnavailable(_) => "ERR_NGROK_3422",
            _ => "ERR_NGROK_3401",
        }
    }

    /// A short machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Missing { .. } => "token_missing",
            Rejection::NoPrefix { .. } => "token_prefix_missing",
            Rejection::Malformed(_) => "token_malformed",
            Rejection::Algorithm(_) => "token_algorithm_refused",
            Rejection::EmbeddedKey(_) => "token_embedded_key",
            Rejection::Type(_) => "token_type_refused",
            Rejection::UnknownKey(_) => "token_key_unknown",
            Rejection::Signature => "token_signature_invalid",
            Rejection::Expired => "token_expired",
            Rejection::NotYetValid => "token_not_yet_valid",
            Rejection::IssuedInFuture => "token_issued_in_future",
            Rejection::MissingExp => "token_without_exp",
            Rejection::Issuer(_) => "token_issuer_refused",
            Rejection::Audience => "token_audience_refused",
            Rejection::KeysUnavailable(_) => "jwks_unavailable",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Missing { location } => write!(f, "no token in {location}"),
            Rejection::NoPrefix { location } => {
                write!(f, "the token in {location} lacks the configured prefix")
            }
            Rejection::Malformed(why) => write!(f, "malformed token: {why}"),
            Rejection::Algorithm(alg) => write!(f, "algorithm `{alg}` is not allowed"),
            Rejection::EmbeddedKey(field) => {
                write!(
                    f,
                    "the token header carries `{field}`; keys come only from the JWKS"
                )
            }
            Rejection::Type(typ) => write!(f, "token type `{typ}` is not the configured type"),
            Rejection::UnknownKey(kid) => write!(f, "no JWKS key matches kid `{kid}`"),
            Rejection::Signature => write!(f, "the signature does not verify"),
            Rejection::Expired => write!(f, "the token has expired"),
            Rejection::NotYetValid => write!(f, "the token is not valid yet (nbf)"),
            Rejection::IssuedInFuture => write!(f, "the token was issued in the future (iat)"),
            Rejection::MissingExp => write!(f, "the token has no `exp` claim"),
            Rejection::Issuer(iss) => write!(f, "issuer `{iss}` is not allowed"),
            Rejection::Audience => write!(f, "no allowed audience in `aud`"),
            Rejection::KeysUnavailable(why) => write!(f, "signing keys unavailable: {why}"),
        }
    }
}
