//! Webhook signatures, provider by provider (`verify-webhook`). Platform-free: HMACs are
//! computed here (pure Rust is fast enough for bodies; see docs/performance.md); SendGrid's
//! ECDSA key and signature are decoded here and verified through the same port as JWTs.
//!
//! Each provider's scheme is the provider's own documentation; `tests/webhooks/vectors.yaml`
//! holds their published examples, which the tests below reproduce.

mod der;
mod providers;

pub use providers::{Check, Generic, HashKind, Provider, Signed, PROVIDERS};

use crate::http::Headers;
use std::fmt;

/// A delivery as the provider sent it.
pub struct Delivery<'a> {
    pub headers: &'a Headers,
    /// The raw body, byte for byte.
    pub body: &'a [u8],
    /// The URL the provider called (Twilio signs it).
    pub url: &'a str,
    pub now_s: i64,
    /// How far a signed timestamp may be from now, either way.
    pub tolerance_s: i64,
}

/// Why a delivery was refused (all are ngrok's `ERR_NGROK_3204`, 403).
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    MissingHeader(&'static str),
    Malformed(&'static str),
    Mismatch,
    Stale {
        skew_s: i64,
    },
    Replayed,
    /// The configured secret is unusable (e.g. not a SendGrid public key).
    BadSecret(&'static str),
}

impl Failure {
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::MissingHeader(_) => "webhook_signature_missing",
            Failure::Malformed(_) => "webhook_signature_malformed",
            Failure::Mismatch => "webhook_signature_mismatch",
            Failure::Stale { .. } => "webhook_timestamp_outside_tolerance",
            Failure::Replayed => "webhook_replayed",
            Failure::BadSecret(_) => "webhook_secret_invalid",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::MissingHeader(h) => write!(f, "no `{h}` header"),
            Failure::Malformed(what) => write!(f, "malformed {what}"),
            Failure::Mismatch => write!(f, "the signature does not match the body"),
            Failure::Stale { skew_s } => {
                write!(
                    f,
                    "the signed timestamp is {skew_s} s from now, outside the tolerance"
                )
            }
            Failure::Replayed => write!(f, "this delivery was already received"),
            Failure::BadSecret(why) => write!(f, "the configured secret is unusable: {why}"),
        }
    }
}
