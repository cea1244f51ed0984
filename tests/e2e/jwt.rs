//! End to end: jwt-validation through the real Worker in `wrangler dev`, against a real local
//! identity provider (`dev-auth serve`): WebCrypto verification of RS256/ES256/EdDSA, every kind
//! of bad token refused with a 401, key rotation (a new `kid` is fetched), and an identity
//! provider outage (the cached keys keep serving). Runs when `EDGE_GATEWAY_E2E=1`.

use crate::support::stack::Stack;
use edge_gateway::devkeys::mint;
use edge_gateway::jwt::Alg;
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(
    kid: &str,
    alg: Option<Alg>,
    header: serde_json::Value,
    claims: serde_json::Value,
) -> String {
    let mut c = json!({"iss": "https://idp.acme.example/", "aud": "orders-api", "sub": "alice",
                       "iat": now(), "exp": now() + 600});
    for (k, v) in claims.as_object().unwrap() {
        c[k] = v.clone();
    }
    mint(kid, alg, &header, &c).unwrap()
}

fn orders(stack: &Stack, token: &str) -> (u16, String, Option<String>) {
    let auth = format!("Bearer {token}");
    let ip = crate::support::stack::next_client_ip();
    let r = stack
        .get(
            "/orders",
            &[
                ("X-Acme-Api", "orders-eks"),
                ("Authorization", auth.as_str()),
                ("CF-Connecting-IP", ip.as_str()),
            ],
        )
        .unwrap();
    let challenge = r.header("www-authenticate").map(str::to_string);
    (r.status, r.body, challenge)
}

fn fetches(stack: &Stack) -> u64 {
    stack.idp_admin("GET", "/admin/stats")["jwks_fetches"]
        .as_u64()
        .unwrap()
}

#[test]
fn jwt_validation_end_to_end() {
    if !crate::support::stack::e2e_enabled() {
        return;
    }
    let stack = Stack::start(&[
        ("POLICY_REFRESH_SECONDS", "1"),
        ("JWKS_REFRESH_SECONDS", "2"),
    ]);
    stack.upload(&[&stack.acme_copy("acme-jwt", |t| t)]);
    let good = token("rsa-1", None, json!({}), json!({}));
    stack.wait_until("the policy is live", Duration::from_secs(30), |s| {
        orders(s, &good).0 == 200
    });

    // Valid tokens of each key type, verified by WebCrypto in workerd.
    for (kid, alg) in [
        ("rsa-1", None),
        ("ec-1", None),
        ("ed-1", None),
        ("rsa-1", Some(Alg::PS256)),
    ] {
        let t = token(kid, alg, json!({}), json!({"sub": kid}));
        let (status, body, _) = orders(&stack, &t);
        if alg == Some(Alg::PS256) {
            // PS256 is not in policies/acme's allow-list.
            assert_eq!(status, 401, "{body}");
            assert!(body.contains("token_algorithm_refused"), "{body}");
            continue;
        }
        assert_eq!(status, 200, "{kid}: {body}");
        let echo: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            echo["headers"]["x-acme-user"], kid,
            "the origin learns the caller"
        );
    }
    // The same token again is served from the verification cache: no JWKS fetch per request
    // (at most the scheduled background refresh, due every 1.5 s here).
    let before = fetches(&stack);
    for _ in 0..5 {
        assert_eq!(orders(&stack, &good).0, 200);
    }
    assert!(
        fetches(&stack) <= before + 1,
        "keys and verifications are cached"
    );

    // Background refresh: past three quarters of JWKS_REFRESH_SECONDS, a request (served from
    // the caches) schedules a fetch that runs after its response.
    std::thread::sleep(Duration::from_millis(1600));
    let before = fetches(&stack);
    assert_eq!(orders(&stack, &good).0, 200);
    // Requests keep coming (each may find a refresh due; one at a time per URL).
    stack.wait_until("the background refresh ran", Duration::from_secs(15), |s| {
        let _ = orders(s, &good);
        fetches(s) > before
    });

    // Every kind of bad token is a 401 with a Bearer challenge, never a 500.
    let b64 = |v: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
    };
    let parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    let forged_payload = format!(
        "{}.{}.{}",
        parts[0],
        b64(&format!(
            r#"{{"iss":"https://idp.acme.example/","aud":"orders-api","sub":"admin","exp":{}}}"#,
            now() + 600
        )),
        parts[2]
    );
    let hs256 = {
        use hmac::Mac;
        let n = edge_gateway::devkeys::jwks(&["rsa-1"])["keys"][0]["n"]
            .as_str()
            .unwrap()
            .to_string();
        let input = format!("{}.{}", b64(r#"{"alg":"HS256","kid":"rsa-1"}"#), parts[1]);
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(n.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", b64_bytes(&mac.finalize().into_bytes()))
    };
    let cases = [
        ("alg none", none, "token_algorithm_refused"),
        (
            "HS256 with the public key",
            hs256,
            "token_algorithm_refused",
        ),
        (
            "RS384, not allowed",
            token("rsa-1", Some(Alg::RS384), json!({}), json!({})),
            "token_algorithm_refused",
        ),
        (
            "embedded jwk",
            token(
                "rsa-1",
                None,
                json!({"jwk": {"kty": "oct", "k": "c2VjcmV0"}}),
                json!({}),
            ),
            "token_embedded_key",
        ),
        (
            "tampered payload",
            forged_payload,
            "token_signature_invalid",
        ),
        (
            "wrong issuer",
            token(
                "rsa-1",
                None,
                json!({}),
                json!({"iss": "https://evil.example/"}),
            ),
            "token_issuer_refused",
        ),
        (
            "wrong audience",
            token("rsa-1", None, json!({}), json!({"aud": "billing-api"})),
            "token_audience_refused",
        ),
        (
            "expired",
            token("rsa-1", None, json!({}), json!({"exp": now() - 3600})),
            "token_expired",
        ),
        (
            "not yet valid",
            token("rsa-1", None, json!({}), json!({"nbf": now() + 3600})),
            "token_not_yet_valid",
        ),
        ("malformed", "not.a.token".to_string(), "token_malformed"),
    ];
    for (what, t, reason) in cases {
        let (status, body, challenge) = orders(&stack, &t);
        assert_eq!(status, 401, "{what}: {body}");
        assert!(body.contains(reason), "{what}: {body}");
        let challenge = challenge.unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer realm=\"ngrok\", error=\"invalid_token\""),
            "{what}: {challenge}"
        );
    }

    // Rotation: a token from a key the JWKS does not list yet is refused ...
    let rotated = token("rsa-2", None, json!({}), json!({"sub": "rotated"}));
    let (status, body, _) = orders(&stack, &rotated);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("token_key_unknown"), "{body}");
    // ... and accepted once the identity provider publishes it (the unknown kid triggers a
    // fetch past the caches, at most once per window).
    stack.idp_admin("POST", "/admin/keys?kids=rsa-1,rsa-2,ec-1,ed-1");
    stack.wait_until("the new key is fetched", Duration::from_secs(20), |s| {
        orders(s, &rotated).0 == 200
    });

    // Outage: the identity provider answers 503; the cached keys keep serving past refresh.
    stack.idp_admin("POST", "/admin/down");
    let during = fetches(&stack);
    std::thread::sleep(Duration::from_secs(3));
    let fresh = token("rsa-2", None, json!({}), json!({"sub": "during-outage"}));
    let (status, body, _) = orders(&stack, &fresh);
    assert_eq!(
        status, 200,
        "stale keys must serve while the IdP is down: {body}"
    );
    println!(
        "fetches: {during} before the outage request, {} after",
        fetches(&stack)
    );
    stack.wait_until("the refresh was attempted", Duration::from_secs(20), |s| {
        let _ = orders(s, &fresh);
        fetches(s) > during
    });
    let log = stack.log_text();
    assert!(
        log.contains("serving cached keys"),
        "the outage is logged: {}",
        log.lines()
            .filter(|l| l.contains("edge-gateway") || l.contains("jwks"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    stack.idp_admin("POST", "/admin/up");
}

fn b64_bytes(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
