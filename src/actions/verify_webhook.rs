//! `verify-webhook`: only deliveries signed by the provider get through (403 otherwise). The
//! body is read once, verified byte for byte, and forwarded unchanged (the shell sends the very
//! bytes it buffered).
//!
//! Beyond ngrok: `replay_protection: true` remembers each delivery in the global rate-limit
//! objects for the replay window and refuses a second one; `tolerance` sets how far a signed
//! timestamp may be from now; provider `hmac` verifies any HMAC-of-the-body scheme.

use super::spec::{ActionSpec, ActionType, REQ};
use super::ConfigShape::{Any, Interpolated, Fields};
use crate::actions::config::Config;
use crate::actions::config::{BAD_CONFIG, MISSING};
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::{Context, Step};
use crate::expr::Template;
use crate::http::Headers;
use crate::http::Synthetic;
use crate::jwt::Alg;
use crate::source::At;
use crate::source::Node;
use crate::webhook::{Check, Delivery, Failure, Generic, HashKind, Provider, Signed, PROVIDERS};
use cel::Value;
use sha2::{Digest, Sha256};

/// Stripe, Slack and the Svix libraries all default to five minutes.
const DEFAULT_TOLERANCE_MS: u64 = 5 * 60_000;

/// Providers ngrok verifies that this gateway does not (yet): they load, and fail closed.
const NGROK_ONLY: [&str; 60] = [
    "aftership",
    "airship",
    "alchemy",
    "sns",
    "autodesk",
    "bitbucket",
    "bolt",
    "box",
    "brex",
    "buildkite",
    "calendly",
    "castle",
    "chargify",
    "circleci",
    "clearbit",
    "clerk",
    "coinbase",
    "contentful",
    "docusign",
    "dropbox",
    "facebook_graph_api",
    "facebook_messenger",
    "frameio",
    "go1",
    "heroku",
    "hostedhooks",
    "hubspot",
    "graphcms",
    "instagram",
    "intercom",
    "jira",
    "launch_darkly",
    "linear",
    "mailchimp",
    "mailgun",
    "microsoft_teams",
    "modern_treasury",
    "mongodb",
    "mux",
    "orb",
    "orbit",
    "pagerduty",
    "pinwheel",
    "plivo",
    "pusher",
    "sentry",
    "signal_sciences",
    "sonatype",
    "square",
    "terraform",
    "tiktok",
    "trendmicro_conformity",
    "twitter",
    "typeform",
    "vmware",
    "webex",
    "whatsapp",
    "worldline",
    "xero",
    "zendesk",
];

#[derive(Debug)]
pub struct VerifyWebhook {
    /// `Err(name)`: a provider ngrok knows and this gateway does not verify.
    provider: Result<Provider, String>,
    secret: Template,
    enforce: bool,
    tolerance_ms: u64,
    replay_protection: bool,
    /// Where the action is written (`endpoint#path`): replay logs of different actions are apart.
    scope: String,
}


/// The replay-log key of a delivery: signed content only, so a replayer cannot vary it. The
/// provider's delivery id where the signature covers it, else the body's hash; with the signed
/// timestamp, so a provider's own retry (new timestamp, new signature) is not a replay but a
/// captured delivery sent again is.
fn delivery_key(provider: &Provider, signed: &Signed, body: &[u8]) -> String {
    let id = match &signed.id {
        Some(id) => id.clone(),
        None => format!("{:x}", Sha256::digest(body)),
    };
    match signed.timestamp {
        Some(t) => format!("{}:{id}:{t}", provider.name()),
        None => format!("{}:{id}", provider.name()),
    }
}

/// Provider `hmac`: `header` (default `x-signature`), `algorithm` (`sha1`, `sha256`, `sha512`),
/// `encoding` (`hex` or `base64`) and `prefix` (e.g. `sha256=`).
fn generic(c: &mut Config<'_, '_>) -> Option<Generic> {
    let header = c
        .string("header")
        .map_or("x-signature".to_string(), |(_, h)| h.to_ascii_lowercase());
    let hash = match c.string("algorithm") {
        None => HashKind::Sha256,
        Some((_, a)) if a == "sha1" => HashKind::Sha1,
        Some((_, a)) if a == "sha256" => HashKind::Sha256,
        Some((_, a)) if a == "sha512" => HashKind::Sha512,
        Some((node, a)) => {
            let msg = format!("`algorithm` is sha1, sha256 or sha512, not `{a}`");
            c.error_at(BAD_CONFIG, "algorithm", node, msg);
            return None;
        }
    };
    let base64 = match c.string("encoding") {
        None => false,
        Some((_, e)) if e == "hex" => false,
        Some((_, e)) if e == "base64" => true,
        Some((node, e)) => {
            let msg = format!("`encoding` is hex or base64, not `{e}`");
            c.error_at(BAD_CONFIG, "encoding", node, msg);
            return None;
        }
    };
    let prefix = c.string("prefix").map(|(_, p)| p).unwrap_or_default();
    Some(Generic {
        header,
        hash,
        base64,
        prefix,
    })
}
impl ActionType for VerifyWebhook {
    const SPEC: ActionSpec = ActionSpec {
        name: "verify-webhook",
        phases: &[REQ],
        terminating: false,
        results: Some("verify_webhook"),
        config: Fields(&[
            ("provider", Any),
            ("secret", Interpolated),
            ("enforce", Any),
            ("replay_protection", Any),
            ("tolerance", Any),
            ("header", Any),
            ("algorithm", Any),
            ("encoding", Any),
            ("prefix", Any),
        ]),
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<VerifyWebhook> {
        let scope = format!("{}#{}", cx.endpoint, path.trim_end_matches(".config"));
        let mut c = Config::new(config, path, cx.diags);
        let provider = c.string("provider");
        let secret = c.string("secret");
        let enforce = c.bool("enforce", true);
        let replay_protection = c.bool("replay_protection", false);
        let tolerance_ms = match c.string("tolerance") {
            Some((node, text)) => match super::parse_duration_ms(&text) {
                Some(ms) if (1_000..=3_600_000).contains(&ms) => ms,
                _ => {
                    let msg = "`tolerance` is a duration from 1s to 1h, like `5m`".into();
                    c.error_at(BAD_CONFIG, "tolerance", node, msg);
                    DEFAULT_TOLERANCE_MS
                }
            },
            None => DEFAULT_TOLERANCE_MS,
        };
        let provider = match provider {
            None => {
                c.missing("provider");
                None
            }
            Some((_, name)) if name == "hmac" => generic(&mut c).map(|g| Ok(Provider::Generic(g))),
            Some((node, name)) => match Provider::parse(&name) {
                Some(p) => Some(Ok(p)),
                None if NGROK_ONLY.contains(&name.as_str()) => {
                    c.diags.warning(
                        None,
                        At::new(&crate::source::child(&c.path, "provider"), node),
                        format!("provider `{name}` is not verified by this gateway yet; its deliveries will be refused (501). Verified: {PROVIDERS:?}"),
                    );
                    Some(Err(name))
                }
                None => {
                    let msg =
                        format!("unknown provider `{name}`; this gateway verifies {PROVIDERS:?}");
                    c.error_at(BAD_CONFIG, "provider", node, msg);
                    None
                }
            },
        };
        let secret = match secret {
            Some((node, text)) if !text.is_empty() => match c.template("secret", node, &text) {
                // A secret the request can choose verifies anything the sender signs with it.
                Some(t) if t.reads_request() => {
                    let msg = "`secret` must not depend on the request".into();
                    c.error_at(BAD_CONFIG, "secret", node, msg);
                    None
                }
                other => other,
            },
            Some((node, _)) => {
                c.error_at(MISSING, "secret", node, "`secret` must not be empty".into());
                None
            }
            None => {
                c.missing("secret");
                None
            }
        };
        c.finish();
        Some(VerifyWebhook {
            provider: provider?,
            secret: secret?,
            enforce,
            tolerance_ms,
            replay_protection,
            scope,
        })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, cx: &C) -> Result<Step, GatewayError> {
        let provider = match &self.provider {
            Ok(p) => p,
            Err(name) => {
                return Err(GatewayError::ActionNotImplemented {
                    action: format!("verify-webhook provider `{name}`"),
                })
            }
        };
        let body = cx.request_body().await?;
        let secret = ex.render(&self.secret, "verify-webhook", "secret")?;
        // Only Twilio signs the URL: build it for Twilio alone.
        let url = match provider {
            Provider::Twilio => {
                format!("{}://{}{}", ex.req.scheme, ex.req.authority(), ex.req.uri())
            }
            _ => String::new(),
        };
        let delivery = Delivery {
            headers: &ex.req.headers,
            body: &body,
            url: &url,
            now_s: (cx.now_ms() / 1000) as i64,
            tolerance_s: (self.tolerance_ms / 1000) as i64,
        };
        let mut outcome = match provider.verify(&secret, &delivery) {
            Ok(Check::Verified(signed)) => Ok(signed),
            Ok(Check::Ecdsa {
                key,
                message,
                signature,
                signed,
            }) => match cx.verify(Alg::ES256, &key, &message, &signature).await {
                Ok(true) => Ok(signed),
                Ok(false) => Err(Failure::Mismatch),
                Err(_) => Err(Failure::BadSecret("the verification key was refused")),
            },
            Err(f) => Err(f),
        };
        if let (true, Ok(signed)) = (self.replay_protection, &outcome) {
            let id = format!("{}|{}", self.scope, delivery_key(provider, signed, &body));
            // Twice the tolerance: a timestamp may be `tolerance` old or ahead.
            match cx.first_delivery(&id, 2 * self.tolerance_ms).await {
                Ok(true) => {}
                Ok(false) => outcome = Err(Failure::Replayed),
                Err(reason) => return Err(GatewayError::ReplayLogUnavailable { reason }),
            }
        }
        let fields = vec![("verified", Value::Bool(outcome.is_ok()))];
        let error = outcome.err().map(|reason| GatewayError::WebhookRejected {
            provider: provider.name(),
            reason,
        });
        ex.set_outcome("verify_webhook", fields, error.as_ref());
        match error {
            Some(e) if self.enforce => return Err(e),
            Some(_) => return Ok(Step::Continue),
            None => {}
        }
        // Zoom asks the endpoint to prove it holds the secret; the gateway answers for it.
        if let Some(answer) = provider.challenge(&secret, &body) {
            let mut headers = Headers::new();
            headers.set("content-type", "application/json");
            return Ok(Step::Respond(Synthetic {
                status: 200,
                headers,
                body: answer,
            }));
        }
        Ok(Step::Continue)
    }
}

