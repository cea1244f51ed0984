//! `jwt-validation`: bearer tokens checked against an identity provider's JWKS.
//!
//! Order of the checks, cheapest first, so a flood of bad tokens costs no signature work: find
//! the token, parse it (algorithm allow-list, no embedded keys), type, times, issuer, audience,
//! and only then the signature, which a per-isolate cache remembers by the token's hash until it
//! expires. Keys come from the configured JWKS URLs only, through [`crate::jwt::JwtCache`].

use super::spec::{ActionSpec, ActionType, ALLOW_LIST, REQ};
use super::ConfigShape::{Any, Interpolated, Fields, ListOf};
use crate::actions::config::Config;
use crate::actions::config::{BAD_CONFIG, MISSING, TOO_MANY};
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::{Context, Step};
use crate::expr::{map, Template};
use crate::jwt::{Alg, KeyPlan, KeySet, Rejection, Token, Verified};
use crate::source::Node;
use crate::source::{child, index, At};
use cel::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

static NULL: Node = Node {
    value: crate::source::Value::Null,
    pos: None,
};

/// Default clock skew allowed on `exp`, `nbf` and `iat` (Envoy's default too).
const DEFAULT_LEEWAY_S: i64 = 60;
/// Keys tried for a token without `kid` before giving up: bounds the work a token can cause.
const MAX_CANDIDATES: usize = 4;

#[derive(Debug)]
pub struct JwtValidation {
    issuers: Vec<Template>,
    audiences: Option<Vec<Template>>,
    tokens: Vec<TokenSpec>,
    algorithms: Vec<Alg>,
    jkus: Vec<Template>,
    leeway_s: f64,
    enforce: bool,
}

#[derive(Debug)]
struct TokenSpec {
    /// `at+jwt` requires the header's `typ` to say so (RFC 9068 §4).
    access_token_type: bool,
    method: Method,
    name: Template,
    prefix: Option<Template>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Method {
    Header,
    Body,
    /// Beyond ngrok: a query parameter (`?access_token=`) or a cookie.
    Query,
    Cookie,
}

impl ActionType for JwtValidation {
    const SPEC: ActionSpec = ActionSpec {
        name: "jwt-validation",
        phases: &[REQ],
        terminating: false,
        results: Some("jwt_validation"),
        config: Fields(&[
            ("issuer", ALLOW_LIST),
            ("audience", ALLOW_LIST),
            (
                "http",
                Fields(&[(
                    "tokens",
                    ListOf(&Fields(&[
                        ("type", Any),
                        ("method", Any),
                        ("name", Interpolated),
                        ("prefix", Interpolated),
                    ])),
                )]),
            ),
            (
                "jws",
                Fields(&[
                    ("allowed_algorithms", Any),
                    (
                        "keys",
                        Fields(&[
                            ("sources", Fields(&[("additional_jkus", ListOf(&Interpolated))])),
                            ("identification", ListOf(&Fields(&[("token_claims", Any)]))),
                        ]),
                    ),
                ]),
            ),
            ("leeway", Any),
            ("enforce", Any),
        ]),
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<JwtValidation> {
        let mut c = Config::new(config, path, cx.diags);
        let issuers = allow_list(&mut c, "issuer", true);
        let audiences = c
            .field("audience")
            .map(|_| allow_list(&mut c, "audience", false));
        if audiences.is_none() {
            let path = child(&c.path, "audience");
            let node = config.unwrap_or(&NULL);
            c.diags.warning(
                None,
                At::new(&path, node),
                "no `audience`: tokens the issuer made for any other API are accepted here too",
            );
        }
        let tokens = tokens(&mut c);
        let (algorithms, jkus) = jws(&mut c);
        let leeway_s = match c.string("leeway") {
            Some((node, text)) => match super::parse_duration_ms(&text) {
                Some(ms) if ms <= 600_000 => ms as f64 / 1000.0,
                _ => {
                    let msg = "`leeway` is a duration of at most 10m, like `60s`".into();
                    c.error_at(BAD_CONFIG, "leeway", node, msg);
                    0.0
                }
            },
            None => DEFAULT_LEEWAY_S as f64,
        };
        let enforce = c.bool("enforce", true);
        c.finish();
        Some(JwtValidation {
            issuers: issuers?,
            audiences: match audiences {
                Some(a) => Some(a?),
                None => None,
            },
            tokens: tokens?,
            algorithms: algorithms?,
            jkus: jkus?,
            leeway_s,
            enforce,
        })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, cx: &C) -> Result<Step, GatewayError> {
        let mut results = Vec::new();
        let mut failure = None;
        for spec in &self.tokens {
            let (location, property, outcome) = match self.locate(spec, ex, cx).await? {
                Ok((raw, property)) => {
                    let outcome = self.check(&raw, spec, ex, cx).await?;
                    (spec.method.name(), property, outcome)
                }
                Err(rejection) => (spec.method.name(), String::new(), Err((rejection, None))),
            };
            let (token, verified) = match outcome {
                Ok(v) => (Some(v.token.clone()), true),
                Err((rejection, token)) => {
                    failure.get_or_insert(rejection);
                    (token, false)
                }
            };
            results.push(token_value(token.as_ref(), location, &property, verified));
            if failure.is_some() {
                break;
            }
        }
        let error = failure.map(|rejection| GatewayError::JwtRejected {
            rejection,
            realm: "ngrok".into(),
        });
        let fields = vec![("tokens", Value::List(Arc::new(results)))];
        ex.set_outcome("jwt_validation", fields, error.as_ref());
        match error {
            Some(e) if self.enforce => Err(e),
            _ => Ok(Step::Continue),
        }
    }
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Header => "header",
            Method::Body => "body",
            Method::Query => "query",
            Method::Cookie => "cookie",
        }
    }
}

const TOKEN_TYPES: [&str; 6] = [
    "jwt",
    "at+jwt",
    "it+jwt",
    "id_token",
    "access_token",
    "plain",
];

impl JwtValidation {


    /// Finds the token a spec names: `Ok(Err(..))` when it is not there.
    async fn locate<C: Context>(
        &self,
        spec: &TokenSpec,
        ex: &mut Exchange,
        cx: &C,
    ) -> Result<Result<(String, String), Rejection>, GatewayError> {
        let name = ex.render(&spec.name, "jwt-validation", "http.tokens.name")?;
        let location = format!("{} `{name}`", spec.method.name());
        let found = match spec.method {
            Method::Header => ex.req.headers.get(&name).map(str::to_string),
            Method::Query => crate::http::query_pairs(&ex.req.query)
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v),
            Method::Cookie => ex.req.headers.get_all("cookie").find_map(|h| {
                h.split(';').find_map(|pair| {
                    let (k, v) = pair.trim().split_once('=')?;
                    (k == name).then(|| v.trim_matches('"').to_string())
                })
            }),
            Method::Body => {
                if !matches!(ex.req.method.as_str(), "POST" | "PUT" | "PATCH") {
                    return Ok(Err(Rejection::Missing {
                        location: format!("{location} (no body for {})", ex.req.method),
                    }));
                }
                let body = cx.request_body().await?;
                body_field(&body, ex.req.headers.get("content-type"), &name)
            }
        };
        let Some(mut raw) = found.filter(|v| !v.is_empty()) else {
            return Ok(Err(Rejection::Missing { location }));
        };
        if let Some(prefix) = &spec.prefix {
            let prefix = ex.render(prefix, "jwt-validation", "http.tokens.prefix")?;
            // `Bearer ` and `bearer ` are the same scheme (RFC 7235 §2.1).
            match raw.get(..prefix.len()) {
                Some(head) if head.eq_ignore_ascii_case(&prefix) => {
                    raw = raw[prefix.len()..].trim().to_string()
                }
                _ => return Ok(Err(Rejection::NoPrefix { location })),
            }
        }
        Ok(Ok((raw, name)))
    }

    /// Validates one token. `Err` carries the parsed token, when there is one, for the result
    /// variables.
    async fn check<C: Context>(
        &self,
        raw: &str,
        spec: &TokenSpec,
        ex: &mut Exchange,
        cx: &C,
    ) -> Result<Result<Arc<Verified>, (Rejection, Option<Token>)>, GatewayError> {
        let now_ms = cx.now_ms();
        // Only base64url and dots can be a compact JWS; refusing the rest first also keeps
        // separators out of the cache key below.
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            let why = "characters outside base64url".to_string();
            return Ok(Err((Rejection::Malformed(why), None)));
        }
        let mut jkus = Vec::with_capacity(self.jkus.len());
        for t in &self.jkus {
            let url = ex.render(t, "jwt-validation", "jws.keys.sources.additional_jkus")?;
            // A URL built from secrets or variables is checked as it comes out (a literal one
            // was checked when the policy compiled).
            if t.literal().is_none() {
                if let Err(why) = jwks_url(&url) {
                    return Ok(Err((Rejection::KeysUnavailable(why), None)));
                }
            }
            jkus.push(url);
        }
        // The cache key names the key sources too, each part length-prefixed: a token verified
        // for one action's JWKS proves nothing to an action with other keys.
        let mut hasher = Sha256::new();
        for part in jkus.iter().map(String::as_str).chain([raw]) {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        let hash: [u8; 32] = hasher.finalize().into();
        let cached = cx
            .jwt_cache()
            .verified(&hash, now_ms)
            .filter(|v| jkus.contains(&v.url));
        let token = match &cached {
            Some(v) => v.token.clone(),
            None => match Token::parse(raw, &self.algorithms) {
                Ok(t) => t,
                Err(r) => return Ok(Err((r, None))),
            },
        };
        if let Err(r) = self.check_claims(&token, spec, ex, now_ms)? {
            return Ok(Err((r, Some(token))));
        }
        if let Some(v) = cached {
            return Ok(Ok(v));
        }
        match verify_signature(&token, &jkus, cx, ex).await {
            Ok(url) => Ok(Ok(cx.jwt_cache().remember(hash, token, &url, now_ms))),
            Err(r) => Ok(Err((r, Some(token)))),
        }
    }

    /// Everything but the signature: algorithm (again, for cached tokens), type, times,
    /// issuer, audience.
    fn check_claims(
        &self,
        token: &Token,
        spec: &TokenSpec,
        ex: &mut Exchange,
        now_ms: u64,
    ) -> Result<Result<(), Rejection>, GatewayError> {
        if !self.algorithms.contains(&token.alg) {
            return Ok(Err(Rejection::Algorithm(token.alg.name().into())));
        }
        if spec.access_token_type {
            let typ = token.typ.as_deref().unwrap_or("");
            let typ = typ.strip_prefix("application/").unwrap_or(typ);
            if !typ.eq_ignore_ascii_case("at+jwt") {
                return Ok(Err(Rejection::Type(typ.to_string())));
            }
        }
        if let Err(r) = token
            .claims
            .check_times(now_ms as f64 / 1000.0, self.leeway_s)
        {
            return Ok(Err(r));
        }
        let iss = token.claims.iss.clone().unwrap_or_default();
        let mut issuer_ok = false;
        for t in &self.issuers {
            // An issuer rendered empty (a variable unset) allows nothing.
            let allowed = ex.render(t, "jwt-validation", "issuer.allow_list.value")?;
            issuer_ok |= !allowed.is_empty() && allowed == iss;
        }
        if !issuer_ok {
            return Ok(Err(Rejection::Issuer(iss)));
        }
        if let Some(audiences) = &self.audiences {
            let mut audience_ok = false;
            for t in audiences {
                let allowed = ex.render(t, "jwt-validation", "audience.allow_list.value")?;
                audience_ok |= token.claims.aud.contains(&allowed);
            }
            if !audience_ok {
                return Ok(Err(Rejection::Audience));
            }
        }
        Ok(Ok(()))
    }
}

/// Tries the keys of each JWKS URL that fit the token; returns the URL whose key verified it.
async fn verify_signature<C: Context>(
    token: &Token,
    jkus: &[String],
    cx: &C,
    ex: &mut Exchange,
) -> Result<String, Rejection> {
    let mut unavailable = None;
    let mut had_candidate = false;
    for url in jkus {
        let keys = match key_set(url, token.kid.as_deref(), cx, ex).await {
            Ok(keys) => keys,
            Err(why) => {
                unavailable = Some(format!("{url}: {why}"));
                continue;
            }
        };
        for key in keys
            .candidates(token.kid.as_deref(), token.alg)
            .take(MAX_CANDIDATES)
        {
            had_candidate = true;
            let input = token.signing_input.as_bytes();
            match cx.verify(token.alg, key, input, &token.signature).await {
                Ok(true) => return Ok(url.clone()),
                Ok(false) => {}
                Err(e) => ex.note(format!("jwt-validation: key from {url} unusable: {e}")),
            }
        }
    }
    Err(match (had_candidate, unavailable) {
        (true, _) => Rejection::Signature,
        (false, Some(why)) => Rejection::KeysUnavailable(why),
        (false, None) => Rejection::UnknownKey(token.kid.clone().unwrap_or_default()),
    })
}

/// The keys of one JWKS URL, through the isolate's cache.
async fn key_set<C: Context>(
    url: &str,
    kid: Option<&str>,
    cx: &C,
    ex: &mut Exchange,
) -> Result<Arc<KeySet>, String> {
    let cache = cx.jwt_cache();
    let bypass = match cache.plan(url, kid, cx.now_ms()) {
        KeyPlan::Use(keys) => return Ok(keys),
        KeyPlan::Fail(why) => return Err(why),
        KeyPlan::Fetch { bypass_edge_cache } => bypass_edge_cache,
    };
    let fetched = cx
        .fetch_jwks(url, bypass)
        .await
        .and_then(|text| KeySet::parse(&text));
    if let Ok(set) = &fetched {
        for why in &set.dropped {
            ex.note(format!("jwt-validation: {url}: ignored {why}"));
        }
    }
    let (keys, stale) = cache.store(url, fetched.clone(), cx.now_ms())?;
    if stale {
        let why = fetched.err().unwrap_or_default();
        ex.note(format!(
            "jwt-validation: {url} failed ({why}); serving cached keys"
        ));
    }
    Ok(keys)
}

/// A field of a JSON or form body (ngrok's `method: body`).
fn body_field(body: &[u8], content_type: Option<&str>, name: &str) -> Option<String> {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("application/json") {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        return v.get(name)?.as_str().map(str::to_string);
    }
    if ct.starts_with("application/x-www-form-urlencoded") {
        let text = std::str::from_utf8(body).ok()?;
        return crate::http::query_pairs(text)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v);
    }
    None
}

/// One entry of `actions.ngrok.jwt_validation.tokens`.
fn token_value(token: Option<&Token>, location: &str, property: &str, verified: bool) -> Value {
    let json = |m: Option<&serde_json::Map<String, serde_json::Value>>| {
        m.and_then(|m| cel::to_value(serde_json::Value::Object(m.clone())).ok())
            .unwrap_or_else(|| map(Vec::new()))
    };
    map(vec![
        ("header", json(token.map(|t| &t.header))),
        ("payload", json(token.map(|t| &t.payload))),
        (
            "signature",
            Value::from(token.map_or("", |t| t.signature_text.as_str())),
        ),
        ("location", Value::from(location)),
        ("location_property", Value::from(property)),
        ("verified", Value::Bool(verified)),
    ])
}

/// `issuer.allow_list[].value` / `audience.allow_list[].value`.
fn allow_list(c: &mut Config<'_, '_>, key: &'static str, required: bool) -> Option<Vec<Template>> {
    let Some(block) = c.field(key) else {
        if required {
            c.missing(&format!("{key}.allow_list"));
        }
        return required.then_some(None)?;
    };
    let path = child(&child(&c.path, key), "allow_list");
    let Some(items) = block.get("allow_list").and_then(Node::as_seq) else {
        c.diags.error(
            MISSING,
            At::new(&path, block),
            format!("`{key}.allow_list` must be a list of `{{value: ...}}`"),
        );
        return None;
    };
    if items.is_empty() {
        c.diags.error(
            MISSING,
            At::new(&path, block),
            format!("`{key}.allow_list` needs at least one value"),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = child(&index(&path, i), "value");
        let Some(text) = item.get("value").and_then(Node::as_str) else {
            c.diags
                .error(MISSING, At::new(&p, item), "`value` must be a string");
            return None;
        };
        if seen.contains(&text) {
            let code = if key == "issuer" {
                Some("ERR_NGROK_7187")
            } else {
                BAD_CONFIG
            };
            c.diags
                .error(code, At::new(&p, item), format!("`{text}` is listed twice"));
        }
        seen.push(text);
        if key == "issuer" && !text.contains("${") && !text.contains("://") {
            c.diags.error(
                Some("ERR_NGROK_7173"),
                At::new(&p, item),
                format!("issuer `{text}` must be a URL"),
            );
        }
        match Template::compile(text) {
            Ok(t) => out.push(t),
            Err(e) => {
                c.diags.error(
                    crate::actions::config::BAD_TEMPLATE,
                    At::new(&p, item),
                    format!("invalid CEL interpolation: {}", e.0),
                );
                return None;
            }
        }
    }
    Some(out)
}

/// `http.tokens[]`.
fn tokens(c: &mut Config<'_, '_>) -> Option<Vec<TokenSpec>> {
    let Some(http) = c.field("http") else {
        c.missing("http.tokens");
        return None;
    };
    let path = child(&child(&c.path, "http"), "tokens");
    let Some(items) = http
        .get("tokens")
        .and_then(Node::as_seq)
        .filter(|s| !s.is_empty())
    else {
        c.diags.error(
            MISSING,
            At::new(&path, http),
            "`http.tokens` must list at least one token",
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let p = index(&path, i);
        let mut t = Config::new(Some(item), p, c.diags);
        let kind = t.string("type");
        let method = t.string("method");
        let name = t.string("name");
        let prefix = t.string("prefix");
        let spec = (|| {
            let (kind_node, kind) = kind.or_else(|| {
                t.missing("type");
                None
            })?;
            if !TOKEN_TYPES.contains(&kind.as_str()) {
                let msg = format!("token type `{kind}` is not one of {TOKEN_TYPES:?}");
                t.error_at(Some("ERR_NGROK_7169"), "type", kind_node, msg);
                return None;
            }
            let (method_node, method) = method.or_else(|| {
                t.missing("method");
                None
            })?;
            let method = match method.as_str() {
                "header" => Method::Header,
                "body" => Method::Body,
                "query" => Method::Query,
                "cookie" => Method::Cookie,
                other => {
                    let msg =
                        format!("`method` is `header`, `body`, `query` or `cookie`, not `{other}`");
                    t.error_at(BAD_CONFIG, "method", method_node, msg);
                    return None;
                }
            };
            let (name_node, name) = name.or_else(|| {
                t.missing("name");
                None
            })?;
            let name = t.template("name", name_node, &name)?;
            let prefix = match &prefix {
                Some((n, text)) => Some(t.template("prefix", n, text)?),
                None => None,
            };
            Some(TokenSpec {
                access_token_type: kind == "at+jwt",
                method,
                name,
                prefix,
            })
        })();
        t.finish();
        match spec {
            Some(s) => out.push(s),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

type Jws = (Option<Vec<Alg>>, Option<Vec<Template>>);

/// `jws.allowed_algorithms` and `jws.keys.sources.additional_jkus` (`keys` may be a map or,
/// as ngrok's reference types it, a list of maps).
fn jws(c: &mut Config<'_, '_>) -> Jws {
    let Some(jws) = c.field("jws") else {
        c.missing("jws");
        return (None, None);
    };
    let path = child(&c.path, "jws");
    let mut j = Config::new(Some(jws), path.clone(), c.diags);
    let algorithms = algorithms(&mut j);
    let keys = j.field("keys");
    j.finish();
    let keys_path = child(&path, "keys");
    let key_blocks: Vec<(String, &Node)> = match keys {
        Some(k) => match k.as_seq() {
            Some(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| (index(&keys_path, i), n))
                .collect(),
            None => vec![(keys_path.clone(), k)],
        },
        None => Vec::new(),
    };
    let mut urls = Vec::new();
    let mut ok = true;
    for (p, block) in &key_blocks {
        let mut k = Config::new(Some(block), p.clone(), c.diags);
        let sources = k.field("sources");
        if let Some(ident) = k.field("identification") {
            let claims_ok = ident.as_seq().is_some_and(|items| {
                items.iter().all(|i| {
                    i.get("token_claims")
                        .and_then(Node::as_seq)
                        .is_some_and(|cl| cl.iter().all(|c| c.as_str() == Some("kid")))
                })
            });
            if !claims_ok {
                let msg = "`identification` supports only `token_claims: [kid]`".into();
                k.error_at(BAD_CONFIG, "identification", ident, msg);
            }
        }
        k.finish();
        let src_path = child(p, "sources");
        let Some(list) = sources
            .and_then(|s| s.get("additional_jkus"))
            .and_then(Node::as_seq)
        else {
            let at = sources.unwrap_or(block);
            c.diags.error(
                MISSING,
                At::new(&child(&src_path, "additional_jkus"), at),
                "`sources.additional_jkus` must list the JWKS URLs",
            );
            ok = false;
            continue;
        };
        for (i, item) in list.iter().enumerate() {
            let ip = index(&child(&src_path, "additional_jkus"), i);
            match item.as_str().map(|u| (u, jwks_url(u))) {
                Some((u, Ok(()))) => match Template::compile(u) {
                    Ok(t) if !t.reads_request() => urls.push(t),
                    Ok(_) => {
                        c.diags.error(
                            BAD_CONFIG,
                            At::new(&ip, item),
                            "a JWKS URL must not depend on the request: the sender would choose the key that verifies its own token",
                        );
                        ok = false;
                    }
                    Err(e) => {
                        c.diags.error(
                            crate::actions::config::BAD_TEMPLATE,
                            At::new(&ip, item),
                            format!("invalid CEL interpolation: {}", e.0),
                        );
                        ok = false;
                    }
                },
                Some((_, Err(why))) => {
                    c.diags.error(BAD_CONFIG, At::new(&ip, item), why);
                    ok = false;
                }
                None => {
                    c.diags
                        .error(BAD_CONFIG, At::new(&ip, item), "a JWKS URL is a string");
                    ok = false;
                }
            }
        }
    }
    if ok && urls.is_empty() {
        c.diags.error(
            MISSING,
            At::new(&keys_path, jws),
            "`jws.keys.sources.additional_jkus` must list at least one JWKS URL",
        );
        ok = false;
    }
    if urls.len() > 100 {
        c.diags.error(
            Some("ERR_NGROK_7193"),
            At::new(&keys_path, jws),
            format!("{} JWKS URLs; at most 100", urls.len()),
        );
        ok = false;
    }
    (algorithms, ok.then_some(urls))
}

/// HTTPS, or plain HTTP to the local machine (the dev JWKS server); no credentials in the
/// authority (`http://localhost@evil.example/` is not local). A template is checked again once
/// rendered, at run time.
fn jwks_url(url: &str) -> Result<(), String> {
    if url.contains("${") {
        return Ok(());
    }
    let bad = || {
        Err(format!(
            "JWKS URL `{url}` must be https:// (plain http only to 127.0.0.1 or localhost)"
        ))
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let Some((host, _)) = crate::http::split_host_port(authority) else {
        return bad();
    };
    match scheme {
        "https" if !host.is_empty() => Ok(()),
        "http" if ["127.0.0.1", "localhost", "::1"].contains(&host.as_str()) => Ok(()),
        _ => bad(),
    }
}

fn algorithms(j: &mut Config<'_, '_>) -> Option<Vec<Alg>> {
    let Some(node) = j.field("allowed_algorithms") else {
        j.missing("allowed_algorithms");
        return None;
    };
    let Some(items) = node.as_seq().filter(|s| !s.is_empty()) else {
        j.wrong_type(
            "allowed_algorithms",
            node,
            "a non-empty list of algorithm names",
        );
        return None;
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("allowed_algorithms[{i}]");
        match item.as_str() {
            Some(name) => match Alg::parse(name) {
                Some(a) => out.push(a),
                None => {
                    let why = match name.to_ascii_lowercase().as_str() {
                        "none" => "`none` is never allowed: it means an unsigned token".to_string(),
                        n if n.starts_with("hs") => format!(
                            "`{name}` needs a shared secret, and keys come only from JWKS (public keys); refused to rule out algorithm confusion"
                        ),
                        _ => format!(
                            "`{name}` is not supported; use one of RS256..512, PS256..512, ES256..512, EdDSA"
                        ),
                    };
                    j.error_at(BAD_CONFIG, &key, item, why);
                }
            },
            None => j.error_at(
                BAD_CONFIG,
                &key,
                item,
                "an algorithm name is a string".into(),
            ),
        }
    }
    if items.len() > 20 {
        j.error_at(
            TOO_MANY,
            "allowed_algorithms",
            node,
            "too many algorithms".into(),
        );
    }
    (out.len() == items.len()).then_some(out)
}
