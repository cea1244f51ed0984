//! `dev-auth sign-webhook`: the headers a webhook provider sends with a body. This is the
//! signing side, written from the recipes in `tests/webhooks/vectors.yaml` (each entry's
//! `notes`) and checked against the documented vectors there, independently of the gateway's
//! verifier, so that the two can catch each other's mistakes.

use crate::{unix_now, Exit};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use clap::builder::{PossibleValue, PossibleValuesParser};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

pub const PROVIDERS: [&str; 11] = [
    "github", "gitlab", "stripe", "slack", "shopify", "twilio", "svix", "standard", "zoom",
    "sendgrid", "hmac",
];

/// One delivery to sign. `id` is used only by providers that send an id header.
pub struct Delivery<'a> {
    pub body: &'a [u8],
    pub secret: &'a str,
    pub timestamp: i64,
    pub id: &'a str,
    pub url: Option<&'a str>,
}

#[derive(Debug, clap::Args)]
pub struct SignOptions {
    /// The provider whose headers to print
    #[arg(long, value_name = "P", value_parser = providers())]
    provider: String,
    /// The shared secret; svix/standard: whsec_BASE64; sendgrid: a P-256 private key, PKCS#8
    /// PEM or base64 DER (dev-auth sendgrid-key --private)
    #[arg(long, value_name = "S", allow_hyphen_values = true)]
    secret: String,
    /// The raw body [default: empty]
    #[arg(long, value_name = "STRING", allow_hyphen_values = true)]
    body: Option<String>,
    /// Read the raw body from PATH (- is stdin)
    #[arg(long, value_name = "PATH", conflicts_with = "body")]
    body_file: Option<String>,
    /// The signing time [default: now]
    #[arg(long, value_name = "UNIX", allow_negative_numbers = true)]
    timestamp: Option<i64>,
    /// The delivery/message id [default: made from the time, in the provider's style]
    #[arg(long)]
    id: Option<String>,
    /// twilio: the URL exactly as configured (required for twilio)
    #[arg(long)]
    url: Option<String>,
}

/// [`PROVIDERS`], and `standard-webhooks` (hidden) for `standard`.
fn providers() -> PossibleValuesParser {
    let alias = PossibleValue::new("standard-webhooks").hide(true);
    PossibleValuesParser::new(PROVIDERS.map(PossibleValue::new).into_iter().chain([alias]))
}

pub fn main(o: SignOptions) -> Result<(), Exit> {
    let SignOptions {
        provider,
        secret,
        body,
        body_file,
        timestamp,
        id,
        url,
    } = o;
    let body = match body_file {
        Some(path) => Some(read_body(&path)?),
        None => body.map(String::into_bytes),
    };
    let id = id.unwrap_or_else(|| default_id(&provider, clock_seed()));
    let delivery = Delivery {
        body: body.as_deref().unwrap_or_default(),
        secret: &secret,
        timestamp: timestamp.unwrap_or_else(unix_now),
        id: &id,
        url: url.as_deref(),
    };
    for (name, value) in sign(&provider, &delivery)? {
        println!("{name}: {value}");
    }
    Ok(())
}

fn read_body(path: &str) -> Result<Vec<u8>, Exit> {
    let mut bytes = Vec::new();
    let read = match path {
        "-" => std::io::stdin().read_to_end(&mut bytes).map(drop),
        _ => std::fs::read(path).map(|b| bytes = b),
    };
    read.map_err(|e| Exit::Failed(format!("--body-file {path}: {e}")))?;
    Ok(bytes)
}

/// The signature and id headers `provider` sends with `d`, in the order it sends them.
pub fn sign(provider: &str, d: &Delivery) -> Result<Vec<(&'static str, String)>, String> {
    let ts = d.timestamp.to_string();
    let body = d.body;
    let key = d.secret.as_bytes();
    Ok(match provider {
        "github" => vec![
            ("X-GitHub-Delivery", d.id.to_string()),
            (
                "X-Hub-Signature-256",
                format!("sha256={}", hex(&hmac_sha256(key, &[body]))),
            ),
        ],
        // GitLab signs nothing: the secret token travels as is.
        "gitlab" => vec![("X-Gitlab-Token", d.secret.to_string())],
        "stripe" => {
            let mac = hmac_sha256(key, &[ts.as_bytes(), b".", body]);
            vec![("Stripe-Signature", format!("t={ts},v1={}", hex(&mac)))]
        }
        // Zoom copied Slack's recipe under its own header names.
        "slack" | "zoom" => {
            let mac = hmac_sha256(key, &[b"v0:", ts.as_bytes(), b":", body]);
            let [ts_name, sig_name] = match provider {
                "slack" => ["X-Slack-Request-Timestamp", "X-Slack-Signature"],
                _ => ["x-zm-request-timestamp", "x-zm-signature"],
            };
            vec![(ts_name, ts), (sig_name, format!("v0={}", hex(&mac)))]
        }
        "shopify" => vec![
            ("X-Shopify-Webhook-Id", d.id.to_string()),
            (
                "X-Shopify-Hmac-Sha256",
                B64.encode(hmac_sha256(key, &[body])),
            ),
        ],
        "twilio" => vec![("X-Twilio-Signature", twilio(d)?)],
        "svix" | "standard" | "standard-webhooks" => {
            let signature = standard_webhooks(d, &ts)?;
            let [id, ts_name, sig] = match provider {
                "svix" => ["svix-id", "svix-timestamp", "svix-signature"],
                _ => ["webhook-id", "webhook-timestamp", "webhook-signature"],
            };
            vec![(id, d.id.to_string()), (ts_name, ts), (sig, signature)]
        }
        "sendgrid" => {
            let signature = sendgrid(d.secret, &[ts.as_bytes(), body])?;
            vec![
                ("X-Twilio-Email-Event-Webhook-Timestamp", ts),
                ("X-Twilio-Email-Event-Webhook-Signature", signature),
            ]
        }
        "hmac" => vec![(
            "X-Signature",
            format!("sha256={}", hex(&hmac_sha256(key, &[body]))),
        )],
        other => {
            return Err(format!(
                "unknown provider '{other}' (known: {})",
                PROVIDERS.join(", ")
            ))
        }
    })
}

/// Svix and Standard Webhooks: `v1,` + base64 HMAC-SHA256 of `id.ts.body`, keyed with the
/// base64-decoded secret (its `whsec_` prefix is optional, as in the SDKs).
fn standard_webhooks(d: &Delivery, ts: &str) -> Result<String, String> {
    let encoded = d.secret.strip_prefix("whsec_").unwrap_or(d.secret);
    let key = B64
        .decode(encoded)
        .map_err(|_| "the secret must be whsec_ followed by base64".to_string())?;
    let mac = hmac_sha256(&key, &[d.id.as_bytes(), b".", ts.as_bytes(), b".", d.body]);
    Ok(format!("v1,{}", B64.encode(mac)))
}

/// Twilio: base64 HMAC-SHA1 of the URL followed by the form parameters sorted by name then
/// value, each name+value with no separator. A JSON body is signed through the URL instead,
/// whose `bodySHA256` query parameter must then hold the body's SHA-256.
fn twilio(d: &Delivery) -> Result<String, String> {
    let url = d.url.ok_or("twilio signs the URL too: give --url")?;
    let body_hash = hex(&Sha256::digest(d.body));
    let mut message = url.as_bytes().to_vec();
    match query_param(url, "bodySHA256") {
        Some(given) if !given.eq_ignore_ascii_case(&body_hash) => {
            return Err(format!(
                "the URL's bodySHA256 must be {body_hash}, the body's SHA-256"
            ));
        }
        Some(_) => {}
        None if d.body.trim_ascii_start().starts_with(b"{") => {
            let sep = if url.contains('?') { '&' } else { '?' };
            return Err(format!(
                "twilio signs a JSON body through the URL: use --url '{url}{sep}bodySHA256={body_hash}'"
            ));
        }
        None => {
            let mut params = form_params(d.body);
            params.sort();
            for (name, value) in params {
                message.extend(name);
                message.extend(value);
            }
        }
    }
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(d.secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(&message);
    Ok(B64.encode(mac.finalize().into_bytes()))
}

fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1.split('#').next()?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// `application/x-www-form-urlencoded` pairs, decoded (`+` is a space).
fn form_params(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (form_decode(&pair[..eq]), form_decode(&pair[eq + 1..])),
            None => (form_decode(pair), Vec::new()),
        })
        .collect()
}

fn form_decode(text: &[u8]) -> Vec<u8> {
    let digit = |at: usize| text.get(at).and_then(|&b| char::from(b).to_digit(16));
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let (byte, width) = match (text[i], digit(i + 1), digit(i + 2)) {
            (b'%', Some(hi), Some(lo)) => ((hi * 16 + lo) as u8, 3),
            (b'+', ..) => (b' ', 1),
            (b, ..) => (b, 1),
        };
        out.push(byte);
        i += width;
    }
    out
}

/// SendGrid: base64 DER ECDSA P-256/SHA-256 signature over the concatenated `parts`.
fn sendgrid(secret: &str, parts: &[&[u8]]) -> Result<String, String> {
    use p256::ecdsa::{signature::Signer, Signature, SigningKey};
    use p256::pkcs8::DecodePrivateKey;
    let secret = secret.trim();
    let key = if secret.starts_with("-----BEGIN") {
        SigningKey::from_pkcs8_pem(secret).ok()
    } else {
        let compact: String = secret.split_whitespace().collect();
        B64.decode(compact)
            .ok()
            .and_then(|der| SigningKey::from_pkcs8_der(&der).ok())
    };
    let key = key.ok_or(
        "sendgrid: the secret must be a P-256 private key, PKCS#8 PEM or base64 DER \
         (see dev-auth sendgrid-key)",
    )?;
    let signature: Signature = key.sign(&parts.concat());
    // Low-S form: valid everywhere, and strict verifiers refuse the high-S twin.
    let signature = signature.normalize_s().unwrap_or(signature);
    Ok(B64.encode(signature.to_der().as_bytes()))
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}

/// Nanoseconds since the epoch: distinct for every run, to seed default ids.
fn clock_seed() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A fresh-looking id in the provider's style: a UUID for GitHub and Shopify deliveries,
/// `msg_` + hex for Svix-style messages.
fn default_id(provider: &str, seed: u128) -> String {
    let h = Sha256::digest(seed.to_le_bytes());
    match provider {
        "github" | "shopify" => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&h[..16]);
            b[6] = (b[6] & 0x0f) | 0x40; // version 4
            b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
            let x = hex(&b);
            [&x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..]].join("-")
        }
        _ => format!("msg_{}", hex(&h[..12])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks a SendGrid signature the way a verifier configured with `public_b64` would.
    fn sendgrid_verifies(public_b64: &str, signature_b64: &str, ts: &str, body: &[u8]) -> bool {
        use p256::ecdsa::{signature::Verifier, Signature, VerifyingKey};
        use p256::pkcs8::DecodePublicKey;
        let key = VerifyingKey::from_public_key_der(&B64.decode(public_b64).unwrap()).unwrap();
        let signature = Signature::from_der(&B64.decode(signature_b64).unwrap()).unwrap();
        key.verify(&[ts.as_bytes(), body].concat(), &signature)
            .is_ok()
    }

    fn sign_one(provider: &str, d: Delivery) -> Vec<(&'static str, String)> {
        sign(provider, &d).unwrap_or_else(|e| panic!("{provider}: {e}"))
    }

    fn delivery<'a>(body: &'a str, secret: &'a str, timestamp: i64) -> Delivery<'a> {
        Delivery {
            body: body.as_bytes(),
            secret,
            timestamp,
            id: "",
            url: None,
        }
    }

    // The expected values below are copied from `tests/webhooks/vectors.yaml`, the entries
    // with `reproduces: true`, named by provider (and source, where there are several).

    #[test]
    fn github_vector() {
        let h = sign_one(
            "github",
            delivery("Hello, World!", "It's a Secret to Everybody", 0),
        );
        assert_eq!(
            h[1],
            (
                "X-Hub-Signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".into()
            )
        );
    }

    /// The stripe-dotnet vector: `body_base64` is authoritative (note the trailing LF).
    #[test]
    fn stripe_vector() {
        let body = B64.decode(STRIPE_BODY_BASE64).unwrap();
        let body = std::str::from_utf8(&body).unwrap();
        let h = sign_one("stripe", delivery(body, "webhook_secret", 1533204620));
        // The documented header also has a legacy v0= entry, which we do not make.
        assert_eq!(
            h,
            [(
                "Stripe-Signature",
                "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7"
                    .into()
            )]
        );
    }

    #[test]
    fn slack_vector() {
        let h = sign_one(
            "slack",
            delivery(SLACK_BODY, "8f742231b10e8888abcd99yyyzzz85a5", 1531420618),
        );
        assert_eq!(
            h,
            [
                ("X-Slack-Request-Timestamp", "1531420618".into()),
                (
                    "X-Slack-Signature",
                    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503".into()
                ),
            ]
        );
    }

    /// All three twilio entries: the SDK and docs form vectors and the JSON-body variant.
    #[test]
    fn twilio_vectors() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        for (phone, expected) in [
            ("5309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            ("5310", "GvWf1cFY/Q7PnoempGyD5oXAezc="),
        ] {
            let body = format!(
                "CallSid=CA1234567890ABCDE&Caller=%2B1415867{phone}&Digits=1234\
                 &From=%2B1415867{phone}&To=%2B18005551212"
            );
            // Any order and encoding of the same params signs the same.
            let shuffled = format!(
                "To=%2b18005551212&From=%2B1415867{phone}&Digits=1234&CallSid=CA1234567890ABCDE\
                 &Caller=%2B1415867{phone}"
            );
            for body in [&body, &shuffled] {
                let d = Delivery {
                    url: Some(url),
                    ..delivery(body, "12345", 0)
                };
                assert_eq!(
                    sign_one("twilio", d),
                    [("X-Twilio-Signature", expected.into())]
                );
            }
        }
        // The JSON variant signs the URL, which carries the body's SHA-256.
        let json_url = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=\
                        0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let body = r#"{"property": "value", "boolean": true}"#;
        let d = Delivery {
            url: Some(json_url),
            ..delivery(body, "12345", 0)
        };
        assert_eq!(
            sign_one("twilio", d),
            [("X-Twilio-Signature", "a9nBmqA0ju/hNViExpshrM61xv4=".into())]
        );
        // Without it, or with a wrong one, the error says which URL to use.
        let d = Delivery {
            url: Some(url),
            ..delivery(body, "12345", 0)
        };
        let err = sign("twilio", &d).unwrap_err();
        assert!(err.contains("&bodySHA256=0a1ff7634d9ab3b9"), "{err}");
        let d = Delivery {
            url: Some(json_url),
            ..delivery("{}", "12345", 0)
        };
        assert!(sign("twilio", &d).is_err());
        assert!(
            sign("twilio", &delivery("a=b", "12345", 0)).is_err(),
            "needs --url"
        );
    }

    /// The svix and standard-webhooks entries share one vector.
    #[test]
    fn svix_and_standard_webhooks_vector() {
        for (provider, prefix) in [("svix", "svix"), ("standard", "webhook")] {
            let d = Delivery {
                id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
                ..delivery(
                    r#"{"test": 2432232314}"#,
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    1614265330,
                )
            };
            let names: Vec<String> = ["id", "timestamp", "signature"]
                .map(|n| format!("{prefix}-{n}"))
                .to_vec();
            let h = sign_one(provider, d);
            let got: Vec<(String, String)> =
                h.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
            assert_eq!(
                got,
                [
                    (names[0].clone(), "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
                    (names[1].clone(), "1614265330".into()),
                    (
                        names[2].clone(),
                        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into()
                    ),
                ]
            );
        }
        // The SDKs also take the secret without its prefix; a non-base64 one is an error.
        let bare = Delivery {
            id: "m",
            ..delivery("x", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1)
        };
        let prefixed = Delivery {
            id: "m",
            ..delivery("x", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1)
        };
        assert_eq!(sign("svix", &bare), sign("svix", &prefixed));
        assert!(sign("svix", &delivery("x", "whsec_not base64!", 1)).is_err());
    }

    /// The sendgrid entry has a public key only, so its vector checks the recipe (base64 DER
    /// ECDSA over timestamp + body) rather than our signer; our own signature must verify.
    #[test]
    fn sendgrid_vector_recipe_and_round_trip() {
        let public = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
        let signature = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=";
        let body =
            br#"{"category":"example_payload","event":"test_event","message_id":"message_id"}"#;
        assert!(sendgrid_verifies(public, signature, "1588788367", body));
        assert!(!sendgrid_verifies(public, signature, "1588788368", body));

        let (private, public) = crate::sendgrid_key_pair().unwrap();
        let der = {
            use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
            let key = p256::ecdsa::SigningKey::from_pkcs8_pem(&private).unwrap();
            B64.encode(key.to_pkcs8_der().unwrap().as_bytes())
        };
        for secret in [private.as_str(), der.as_str()] {
            let h = sign_one("sendgrid", delivery("{}", secret, 1588788367));
            let (ts, signature) = (&h[0].1, &h[1].1);
            assert_eq!(h[0].0, "X-Twilio-Email-Event-Webhook-Timestamp");
            assert!(sendgrid_verifies(&public, signature, ts, b"{}"));
            let der = B64.decode(signature).unwrap();
            let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
            assert!(sig.normalize_s().is_none(), "low-S form");
        }
        assert!(sign("sendgrid", &delivery("x", "not a key", 1)).is_err());
    }

    /// Providers without a reproducible vector: the recipe, on the github vector's inputs.
    #[test]
    fn recipes_without_vectors() {
        let d = || delivery("Hello, World!", "It's a Secret to Everybody", 1658940994);
        let github_hex = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            sign_one("hmac", d()),
            [("X-Signature", format!("sha256={github_hex}"))]
        );
        let shopify = sign_one("shopify", d());
        let raw: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&github_hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert_eq!(shopify[1], ("X-Shopify-Hmac-Sha256", B64.encode(raw)));
        assert_eq!(
            sign_one("gitlab", d()),
            [("X-Gitlab-Token", "It's a Secret to Everybody".into())]
        );
        // Zoom's recipe is Slack's under other header names.
        let zoom = sign_one("zoom", d());
        let slack = sign_one("slack", d());
        assert_eq!(
            (zoom[0].0, zoom[1].0),
            ("x-zm-request-timestamp", "x-zm-signature")
        );
        assert_eq!((&zoom[0].1, &zoom[1].1), (&slack[0].1, &slack[1].1));
        assert!(sign("paypal", &d()).is_err());
    }

    #[test]
    fn default_ids_look_like_the_providers() {
        let uuid = default_id("github", 1);
        assert_eq!(uuid.len(), 36);
        assert_eq!(
            uuid.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert_eq!(&uuid[14..15], "4");
        let msg = default_id("svix", 1);
        assert!(msg.starts_with("msg_") && msg.len() == 28, "{msg}");
        assert_ne!(default_id("svix", 2), msg);
    }

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode(b"a+b%2Bc%2x%"), b"a b+c%2x%");
        let params = form_params(b"b=2&&a&c=%3D=");
        assert_eq!(
            params,
            [
                (b"b".to_vec(), b"2".to_vec()),
                (b"a".to_vec(), vec![]),
                (b"c".to_vec(), b"==".to_vec())
            ]
        );
    }

    const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

    const STRIPE_BODY_BASE64: &str = "ewogICJpZCI6ICJldnRfMTIzIiwKICAib2JqZWN0IjogImV2ZW50IiwKICAiYWNjb3VudCI6ICJhY2N0XzEyMyIsCiAgImFwaV92ZXJzaW9uIjogIjIwMTctMDUtMjUiLAogICJjcmVhdGVkIjogMTUzMzIwNDYyMCwKICAiZGF0YSI6IHsKICAgICJvYmplY3QiOiB7CiAgICAgICJpZCI6ICJjdXNfMTIzIiwKICAgICAgIm9iamVjdCI6ICJjdXN0b21lciIsCiAgICAgICJjcmVhdGVkIjogMTIzNDU2Nzg5LAogICAgICAiZW1haWwiOiAidGVzdEBzdHJpcGUuY29tIiwKICAgICAgImxpdmVtb2RlIjogZmFsc2UsCiAgICAgICJtZXRhZGF0YSI6IHt9CiAgICB9CiAgfSwKICAibGl2ZW1vZGUiOiBmYWxzZSwKICAicGVuZGluZ193ZWJob29rcyI6IDEsCiAgInJlcXVlc3QiOiB7CiAgICAiaWQiOiAicmVxXzEyMyIsCiAgICAiaWRlbXBvdGVuY3lfa2V5IjogImlkZW1wb3RlbmN5LWtleS0xMjMiCiAgfSwKICAidHlwZSI6ICJjdXN0b21lci5jcmVhdGVkIgp9Cg==";
}
