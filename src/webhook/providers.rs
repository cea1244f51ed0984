//! One scheme per provider. Every comparison of a computed MAC with a presented one is constant
//! time; every signed timestamp is checked against the tolerance.

use super::{der, Delivery, Failure};
use crate::jwt::Jwk;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Clone, Debug, PartialEq)]
pub enum Provider {
    Github,
    Gitlab,
    Stripe,
    Slack,
    Shopify,
    Twilio,
    /// Svix and Standard Webhooks (`svix-*` or `webhook-*` headers).
    Svix,
    Sendgrid,
    Zoom,
    /// Beyond ngrok: an HMAC of the body in a header of your choice.
    Generic(Generic),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Generic {
    pub header: String,
    pub hash: HashKind,
    pub base64: bool,
    /// Text before the signature in the header, e.g. `sha256=`.
    pub prefix: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HashKind {
    Sha1,
    Sha256,
    Sha512,
}

/// What a good signature tells about the delivery.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Signed {
    /// The provider's delivery id when the signature covers it (Stripe's event id, Svix's
    /// message id), for replay protection; `None`: the body's hash serves. Unsigned id headers
    /// (`X-GitHub-Delivery`, ...) are never used: a replayer could simply change them.
    pub id: Option<String>,
    /// The signed timestamp, when the scheme signs one.
    pub timestamp: Option<i64>,
}

#[derive(Debug)]
pub enum Check {
    Verified(Signed),
    /// SendGrid: an ECDSA P-256 signature over `message` for the platform's verifier.
    Ecdsa {
        key: Box<Jwk>,
        message: Vec<u8>,
        signature: [u8; 64],
        signed: Signed,
    },
}

/// The providers this gateway verifies, by ngrok identifier.
pub const PROVIDERS: [&str; 11] = [
    "github",
    "gitlab",
    "stripe",
    "slack",
    "shopify",
    "twilio",
    "svix",
    "standard_webhooks",
    "sendgrid",
    "zoom",
    "hmac",
];

impl Provider {
    /// A provider by ngrok identifier (`hmac` is built by the action from its options).
    pub fn parse(name: &str) -> Option<Provider> {
        Some(match name {
            "github" => Provider::Github,
            "gitlab" => Provider::Gitlab,
            "stripe" => Provider::Stripe,
            "slack" => Provider::Slack,
            "shopify" => Provider::Shopify,
            "twilio" => Provider::Twilio,
            "svix" | "standard_webhooks" => Provider::Svix,
            "sendgrid" => Provider::Sendgrid,
            "zoom" => Provider::Zoom,
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::Stripe => "stripe",
            Provider::Slack => "slack",
            Provider::Shopify => "shopify",
            Provider::Twilio => "twilio",
            Provider::Svix => "svix",
            Provider::Sendgrid => "sendgrid",
            Provider::Zoom => "zoom",
            Provider::Generic(_) => "hmac",
        }
    }

    /// Checks a delivery's signature with `secret`.
    pub fn verify(&self, secret: &str, d: &Delivery<'_>) -> Result<Check, Failure> {
        let header = |name: &'static str| d.headers.get(name).ok_or(Failure::MissingHeader(name));
        let key = secret.as_bytes();
        let signed = match self {
            Provider::Github => {
                let sig = header("x-hub-signature-256")?;
                let hex = sig
                    .strip_prefix("sha256=")
                    .ok_or(Failure::Malformed("x-hub-signature-256"))?;
                let want = decode_hex(hex).ok_or(Failure::Malformed("x-hub-signature-256"))?;
                check(&mac(HashKind::Sha256, key, &[d.body]), &[want])?;
                Signed::default()
            }
            Provider::Gitlab => {
                let token = header("x-gitlab-token")?;
                // Digests first: the comparison then takes the same time whatever the lengths.
                let same = eq(&Sha256::digest(token), &Sha256::digest(secret));
                if !same {
                    return Err(Failure::Mismatch);
                }
                Signed::default()
            }
            Provider::Stripe => {
                let sig = header("stripe-signature")?;
                let mut t = None;
                let mut v1 = Vec::new();
                for part in sig.split(',') {
                    match part.trim().split_once('=') {
                        Some(("t", v)) => t = v.parse::<i64>().ok(),
                        Some(("v1", v)) => v1.extend(decode_hex(v)),
                        _ => {}
                    }
                }
                let t = t.ok_or(Failure::Malformed("stripe-signature timestamp"))?;
                if v1.is_empty() {
                    return Err(Failure::Malformed("stripe-signature: no v1 signature"));
                }
                let ts = t.to_string();
                check(
                    &mac(HashKind::Sha256, key, &[ts.as_bytes(), b".", d.body]),
                    &v1,
                )?;
                fresh(t, d)?;
                let event: Option<serde_json::Value> = serde_json::from_slice(d.body).ok();
                Signed {
                    id: event
                        .as_ref()
                        .and_then(|e| e.get("id"))
                        .and_then(|v| v.as_str())
                        .map(str::to_string),
                    timestamp: Some(t),
                }
            }
            Provider::Slack | Provider::Zoom => {
                let (ts_name, sig_name) = match self {
                    Provider::Slack => ("x-slack-request-timestamp", "x-slack-signature"),
                    _ => ("x-zm-request-timestamp", "x-zm-signature"),
                };
                let ts = header(ts_name)?;
                let t: i64 = ts.parse().map_err(|_| Failure::Malformed(ts_name))?;
                let want = header(sig_name)?
                    .strip_prefix("v0=")
                    .and_then(decode_hex)
                    .ok_or(Failure::Malformed(sig_name))?;
                let parts: [&[u8]; 4] = [b"v0:", ts.as_bytes(), b":", d.body];
                check(&mac(HashKind::Sha256, key, &parts), &[want])?;
                fresh(t, d)?;
                Signed {
                    id: None,
                    timestamp: Some(t),
                }
            }
            Provider::Shopify => {
                let want = B64
                    .decode(header("x-shopify-hmac-sha256")?)
                    .map_err(|_| Failure::Malformed("x-shopify-hmac-sha256"))?;
                check(&mac(HashKind::Sha256, key, &[d.body]), &[want])?;
                Signed::default()
            }
            Provider::Twilio => {
                let want = B64
                    .decode(header("x-twilio-signature")?)
                    .map_err(|_| Failure::Malformed("x-twilio-signature"))?;
                twilio(key, d, &want)?;
                Signed::default()
            }
            Provider::Svix => {
                let (id_h, ts_h, sig_h) = if d.headers.contains("svix-signature") {
                    ("svix-id", "svix-timestamp", "svix-signature")
                } else {
                    ("webhook-id", "webhook-timestamp", "webhook-signature")
                };
                let msg_id = header(id_h)?;
                let ts = header(ts_h)?;
                let t: i64 = ts.parse().map_err(|_| Failure::Malformed(ts_h))?;
                let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
                let key = B64
                    .decode(encoded)
                    .map_err(|_| Failure::BadSecret("a whsec_ secret is base64"))?;
                let candidates: Vec<Vec<u8>> = header(sig_h)?
                    .split(' ')
                    .filter_map(|s| s.strip_prefix("v1,"))
                    .filter_map(|s| B64.decode(s).ok())
                    .collect();
                let parts: [&[u8]; 5] = [msg_id.as_bytes(), b".", ts.as_bytes(), b".", d.body];
                check(&mac(HashKind::Sha256, &key, &parts), &candidates)?;
                fresh(t, d)?;
                Signed {
                    id: Some(msg_id.to_string()),
                    timestamp: Some(t),
                }
            }
            Provider::Sendgrid => {
                const SIG: &str = "x-twilio-email-event-webhook-signature";
                const TS: &str = "x-twilio-email-event-webhook-timestamp";
                let spki = B64
                    .decode(secret.trim())
                    .map_err(|_| Failure::BadSecret("the SendGrid verification key is base64"))?;
                let (x, y) = der::p256_spki(&spki)
                    .ok_or(Failure::BadSecret("not a P-256 public key (SPKI)"))?;
                let signature = B64
                    .decode(header(SIG)?)
                    .ok()
                    .and_then(|der_sig| der::ecdsa_p256(&der_sig))
                    .ok_or(Failure::Malformed(SIG))?;
                let ts = header(TS)?;
                let t: i64 = ts.parse().map_err(|_| Failure::Malformed(TS))?;
                fresh(t, d)?;
                let mut message = ts.as_bytes().to_vec();
                message.extend_from_slice(d.body);
                return Ok(Check::Ecdsa {
                    key: Box::new(Jwk::p256(&x, &y)),
                    message,
                    signature,
                    signed: Signed {
                        id: None,
                        timestamp: Some(t),
                    },
                });
            }
            Provider::Generic(g) => {
                let name = g.header.as_str();
                let value = d
                    .headers
                    .get(name)
                    .ok_or(Failure::MissingHeader("the configured signature header"))?;
                let text = value
                    .strip_prefix(g.prefix.as_str())
                    .ok_or(Failure::Malformed("signature prefix"))?;
                let want = if g.base64 {
                    B64.decode(text).ok()
                } else {
                    decode_hex(text)
                }
                .ok_or(Failure::Malformed("signature encoding"))?;
                check(&mac(g.hash, key, &[d.body]), &[want])?;
                Signed::default()
            }
        };
        Ok(Check::Verified(signed))
    }

    /// Zoom's endpoint validation: for a verified `endpoint.url_validation` event, the JSON the
    /// gateway answers with itself.
    pub fn challenge(&self, secret: &str, body: &[u8]) -> Option<String> {
        if *self != Provider::Zoom {
            return None;
        }
        let event: serde_json::Value = serde_json::from_slice(body).ok()?;
        if event.get("event")?.as_str()? != "endpoint.url_validation" {
            return None;
        }
        let plain = event.get("payload")?.get("plainToken")?.as_str()?;
        let encrypted = hex(&mac(
            HashKind::Sha256,
            secret.as_bytes(),
            &[plain.as_bytes()],
        ));
        Some(serde_json::json!({ "plainToken": plain, "encryptedToken": encrypted }).to_string())
    }
}

/// Twilio signs the URL it called plus the sorted form parameters; for JSON bodies the URL
/// carries `bodySHA256` instead. Its SDKs accept the URL with and without the default port.
fn twilio(key: &[u8], d: &Delivery<'_>, want: &[u8]) -> Result<(), Failure> {
    let json = d
        .headers
        .get("content-type")
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
    let query = d.url.split_once('?').map_or("", |(_, q)| q);
    let claimed = crate::http::query_pairs(query)
        .find(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| v);
    let mut params = String::new();
    // Whenever the signed URL names the body's hash, the body must have it, whatever the
    // content type says (else a signed URL would carry any body).
    if let Some(claimed) = &claimed {
        if !eq(claimed.as_bytes(), hex(&Sha256::digest(d.body)).as_bytes()) {
            return Err(Failure::Mismatch);
        }
    } else if json {
        return Err(Failure::Malformed(
            "twilio URL: no bodySHA256 for a JSON body",
        ));
    } else {
        let text = std::str::from_utf8(d.body).map_err(|_| Failure::Malformed("form body"))?;
        let mut pairs: Vec<(String, String)> = crate::http::query_pairs(text).collect();
        pairs.sort();
        for (k, v) in pairs {
            params.push_str(&k);
            params.push_str(&v);
        }
    }
    for url in url_variants(d.url) {
        let computed = mac(HashKind::Sha1, key, &[url.as_bytes(), params.as_bytes()]);
        if eq(&computed, want) {
            return Ok(());
        }
    }
    Err(Failure::Mismatch)
}

/// The URL as given, and with the scheme's default port added or removed.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return out,
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    match authority.strip_suffix(port) {
        Some(bare) => out.push(format!("{scheme}://{bare}{tail}")),
        None if !authority.contains(':') || authority.ends_with(']') => {
            out.push(format!("{scheme}://{authority}{port}{tail}"))
        }
        None => {}
    }
    out
}

fn fresh(t: i64, d: &Delivery<'_>) -> Result<(), Failure> {
    let skew_s = d.now_s.saturating_sub(t);
    if skew_s.abs() > d.tolerance_s {
        return Err(Failure::Stale { skew_s });
    }
    Ok(())
}

/// Ok when any candidate equals the computed MAC (each compared in constant time).
fn check(computed: &[u8], candidates: &[Vec<u8>]) -> Result<(), Failure> {
    let mut ok = false;
    for c in candidates {
        ok |= eq(computed, c);
    }
    if ok {
        Ok(())
    } else {
        Err(Failure::Mismatch)
    }
}

/// Constant-time equality (the length is not secret).
fn eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn mac(hash: HashKind, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    macro_rules! run {
        ($h:ty) => {{
            let mut m = <Hmac<$h>>::new_from_slice(key).expect("HMAC takes any key length");
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }};
    }
    match hash {
        HashKind::Sha1 => run!(sha1::Sha1),
        HashKind::Sha256 => run!(Sha256),
        HashKind::Sha512 => run!(Sha512),
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    // Hex digits only: `from_str_radix` alone would take "+8" as 0x08.
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}
