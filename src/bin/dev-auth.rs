//! `dev-auth`: a development identity provider and webhook signer for `scripts/dev.sh` and the
//! end-to-end tests. It mints JWTs with the public dev keys of `dev/keys/`, serves their JWKS
//! over HTTP (with switches to rotate keys and simulate an outage), and prints the signature
//! headers a webhook provider would send, so a developer can `curl` the gateway by hand.
//!
//! Everything here is std plus the crates the library already has: it must build quickly
//! next to the worker. The dev keys are public; nothing may ever trust what this tool signs.

#[path = "dev_auth/serve.rs"]
mod serve;
#[path = "dev_auth/webhook.rs"]
mod webhook;

use edge_gateway::devkeys::{self, DevKey, KIDS};
use edge_gateway::jwt::Alg;
use serde_json::{json, Map, Value};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

const USAGE: &str = "\
usage: dev-auth COMMAND [OPTIONS]

Development identity provider and webhook signer for scripts/dev.sh and the tests.
The keys in dev/keys/ are public: never trust anything this tool signs.

dev-auth token [OPTIONS]             print a JWT signed with a dev key
    --key KID                        rsa-1 (default), rsa-2, ec-1 or ed-1
    --alg ALG                        RS256..PS512, ES256, EdDSA (default: the key's own;
                                     one the key cannot make gives a bad signature)
    --iss URL                        default https://idp.acme.example/
    --aud AUD                        repeatable, two or more make an array; default orders-api
    --sub SUB                        default dev-user
    --ttl SECONDS                    exp = now + SECONDS (default 3600; negative = expired)
    --no-exp                         leave exp out
    --nbf-in SECONDS                 add nbf = now + SECONDS
    --claim NAME=VALUE               repeatable; VALUE is JSON if it parses, else a string;
                                     null removes the claim
    --header NAME=VALUE              the same for the JOSE header (kid=null, typ=at+jwt)
    --now UNIX_SECONDS               pin the clock (iat = now)
    --count N                        N tokens, one a line, subjects SUB-0 .. SUB-(N-1)

dev-auth jwks [KID...]               print the JWKS of dev keys (default rsa-1 ec-1 ed-1)

dev-auth serve [OPTIONS]             serve the JWKS over HTTP/1.1
    --addr IP:PORT                   default 127.0.0.1:18200; port 0 picks a free one
    --keys KID,KID                   keys served at first (default rsa-1,ec-1,ed-1)
    --quiet                          do not log requests to stderr
  The first stdout line is `dev-auth: serving http://IP:PORT`. Routes:
    GET  /.well-known/jwks.json      the active keys (503 while down)
    GET  /.well-known/openid-configuration
    POST /admin/keys?kids=KID,KID    switch the active keys
    POST /admin/down, /admin/up      simulate an identity-provider outage and recovery
    GET  /admin/stats                {\"jwks_fetches\", \"down\", \"kids\"}

dev-auth sign-webhook --provider P --secret S [OPTIONS]
                                     print the headers P would send with the body, one
                                     `Name: value` a line, for `curl -H`
    --provider P                     github gitlab stripe slack shopify twilio svix
                                     standard zoom sendgrid hmac
    --secret S                       the shared secret; svix/standard: whsec_BASE64;
                                     sendgrid: a P-256 private key, PKCS#8 PEM or base64 DER
    --body STRING | --body-file PATH the raw body (PATH - is stdin; default empty)
    --timestamp UNIX                 default now
    --id ID                          the delivery/message id (default: made from the time)
    --url URL                        twilio: the URL exactly as configured (required)

dev-auth sendgrid-key [--private | --public]
                                     print the dev P-256 key pair for sendgrid: the private
                                     PEM (--secret) and the base64 DER public key that the
                                     verifier is configured with
";

fn main() -> ExitCode {
    let args: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect();
    let result = match args {
        Ok(args) => run(args),
        Err(bad) => Err(Exit::Usage(format!("argument {bad:?} is not UTF-8"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit::Help) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(Exit::Usage(msg)) => {
            eprintln!("dev-auth: {msg}\ntry 'dev-auth --help'");
            ExitCode::from(2)
        }
        Err(Exit::Failed(msg)) => {
            eprintln!("dev-auth: {msg}");
            ExitCode::from(1)
        }
    }
}

/// Why a command stopped early: help asked for (exit 0), bad usage (2) or a failure (1).
#[derive(Debug, PartialEq)]
enum Exit {
    Help,
    Usage(String),
    Failed(String),
}

impl From<String> for Exit {
    fn from(msg: String) -> Exit {
        Exit::Usage(msg)
    }
}

impl From<&str> for Exit {
    fn from(msg: &str) -> Exit {
        Exit::Usage(msg.to_string())
    }
}

fn run(args: Vec<String>) -> Result<(), Exit> {
    let mut args = Args::new(args);
    let command = args.next()?.ok_or("no command given")?;
    match command.as_str() {
        "-h" | "--help" | "help" => Err(Exit::Help),
        "token" => {
            let mut o = TokenOptions::parse(&mut args)?;
            if o.count == 1 {
                println!("{}", token(&o)?);
                return Ok(());
            }
            // Many tokens at once (load tests): subjects SUB-0, SUB-1, ...
            let base = o.sub.clone();
            for i in 0..o.count {
                o.sub = format!("{base}-{i}");
                println!("{}", token(&o)?);
            }
            Ok(())
        }
        "jwks" => {
            let mut kids = Vec::new();
            while let Some(word) = args.next()? {
                match word.as_str() {
                    "-h" | "--help" => return Err(Exit::Help),
                    _ => kids.push(known_kid(&word)?),
                }
            }
            if kids.is_empty() {
                kids = serve::DEFAULT_KIDS.map(String::from).to_vec();
            }
            let refs: Vec<&str> = kids.iter().map(String::as_str).collect();
            println!("{:#}", devkeys::jwks(&refs));
            Ok(())
        }
        "serve" => serve::main(&mut args),
        "sign-webhook" => webhook::main(&mut args),
        "sendgrid-key" => sendgrid_key(&mut args),
        other => Err(Exit::Usage(format!("unknown command '{other}'"))),
    }
}

/// The command-line words, with `--flag=value` taken as `--flag value`.
struct Args {
    words: std::vec::IntoIter<String>,
    /// The value of the last `--flag=value`, until [`Args::value`] takes it.
    inline: Option<(String, String)>,
}

impl Args {
    fn new(words: Vec<String>) -> Args {
        Args {
            words: words.into_iter(),
            inline: None,
        }
    }

    /// The next flag or positional word.
    fn next(&mut self) -> Result<Option<String>, Exit> {
        if let Some((flag, _)) = self.inline.take() {
            return Err(Exit::Usage(format!("{flag} takes no value")));
        }
        let Some(word) = self.words.next() else {
            return Ok(None);
        };
        if let Some((flag, value)) = word.split_once('=').filter(|_| word.starts_with("--")) {
            self.inline = Some((flag.to_string(), value.to_string()));
            return Ok(Some(flag.to_string()));
        }
        Ok(Some(word))
    }

    /// The value of `flag`, just returned by [`Args::next`].
    fn value(&mut self, flag: &str) -> Result<String, Exit> {
        match self.inline.take() {
            Some((_, value)) => Ok(value),
            None => self
                .words
                .next()
                .ok_or_else(|| Exit::Usage(format!("{flag} needs a value"))),
        }
    }

    fn parsed<T: FromStr>(&mut self, flag: &str) -> Result<T, Exit> {
        let value = self.value(flag)?;
        value
            .parse()
            .map_err(|_| Exit::Usage(format!("{flag}: cannot read '{value}'")))
    }
}

fn known_kid(kid: &str) -> Result<String, Exit> {
    match KIDS.contains(&kid) {
        true => Ok(kid.to_string()),
        false => Err(Exit::Usage(unknown_kid(kid))),
    }
}

fn unknown_kid(kid: &str) -> String {
    format!("unknown key '{kid}' (known: {})", KIDS.join(", "))
}

/// Seconds since the Unix epoch; a clock before 1970 reads as 0 rather than failing.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

// ---------------------------------------------------------------------------
// token
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct TokenOptions {
    kid: String,
    alg: Option<Alg>,
    iss: String,
    aud: Vec<String>,
    sub: String,
    ttl: i64,
    exp: bool,
    nbf_in: Option<i64>,
    now: i64,
    /// `--claim`/`--header` overrides in order; a null value removes the field.
    claims: Vec<(String, Value)>,
    header: Vec<(String, Value)>,
    /// `--count N`: N tokens, one a line, with subjects `SUB-0` .. `SUB-(N-1)`.
    count: u32,
}

impl TokenOptions {
    fn parse(args: &mut Args) -> Result<TokenOptions, Exit> {
        let mut o = TokenOptions {
            kid: "rsa-1".into(),
            alg: None,
            iss: serve::default_issuer(),
            aud: Vec::new(),
            sub: "dev-user".into(),
            ttl: 3600,
            exp: true,
            nbf_in: None,
            now: unix_now(),
            claims: Vec::new(),
            header: Vec::new(),
            count: 1,
        };
        while let Some(flag) = args.next()? {
            match flag.as_str() {
                "-h" | "--help" => return Err(Exit::Help),
                "--key" => o.kid = known_kid(&args.value(&flag)?)?,
                "--alg" => {
                    let name = args.value(&flag)?;
                    let alg = Alg::parse(&name).ok_or_else(|| {
                        let names: Vec<&str> = Alg::ALL.iter().map(|a| a.name()).collect();
                        format!("--alg: unknown '{name}' (known: {})", names.join(", "))
                    })?;
                    o.alg = Some(alg);
                }
                "--iss" => o.iss = args.value(&flag)?,
                "--aud" => o.aud.push(args.value(&flag)?),
                "--sub" => o.sub = args.value(&flag)?,
                "--ttl" => o.ttl = args.parsed(&flag)?,
                "--no-exp" => o.exp = false,
                "--nbf-in" => o.nbf_in = Some(args.parsed(&flag)?),
                "--now" => o.now = args.parsed(&flag)?,
                "--count" => o.count = args.parsed(&flag)?,
                "--claim" => o.claims.push(field(&flag, &args.value(&flag)?)?),
                "--header" => o.header.push(field(&flag, &args.value(&flag)?)?),
                other => return Err(Exit::Usage(format!("token: unknown argument '{other}'"))),
            }
        }
        if o.aud.is_empty() {
            o.aud.push("orders-api".into());
        }
        Ok(o)
    }
}

/// `NAME=VALUE`, where VALUE is JSON if it parses and a plain string otherwise, so that
/// `--claim scope=read write` and `--claim roles=["a"]` both do what they look like.
fn field(flag: &str, spec: &str) -> Result<(String, Value), Exit> {
    match spec.split_once('=') {
        Some((name, value)) if !name.is_empty() => {
            let value = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
            Ok((name.to_string(), value))
        }
        _ => Err(Exit::Usage(format!(
            "{flag}: expected NAME=VALUE, got '{spec}'"
        ))),
    }
}

fn token(o: &TokenOptions) -> Result<String, Exit> {
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(o.iss));
    claims.insert("sub".into(), json!(o.sub));
    let aud = match o.aud.as_slice() {
        [one] => json!(one),
        many => json!(many),
    };
    claims.insert("aud".into(), aud);
    claims.insert("iat".into(), json!(o.now));
    if o.exp {
        claims.insert("exp".into(), json!(o.now.saturating_add(o.ttl)));
    }
    if let Some(n) = o.nbf_in {
        claims.insert("nbf".into(), json!(o.now.saturating_add(n)));
    }
    for (name, value) in &o.claims {
        match value {
            Value::Null => claims.remove(name),
            _ => claims.insert(name.clone(), value.clone()),
        };
    }
    // `mint` itself removes header fields set to null.
    let header: Map<String, Value> = o.header.iter().cloned().collect();
    devkeys::mint(
        &o.kid,
        o.alg,
        &Value::Object(header),
        &Value::Object(claims),
    )
    .ok_or_else(|| Exit::Failed(format!("cannot load the dev key '{}'", o.kid)))
}

// ---------------------------------------------------------------------------
// sendgrid-key
// ---------------------------------------------------------------------------

/// The dev key pair for SendGrid's ECDSA webhooks: the `ec-1` dev key, which is P-256.
fn sendgrid_key_pair() -> Result<(String, String), Exit> {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let Some(DevKey::P256(key)) = DevKey::load("ec-1") else {
        return Err(Exit::Failed("cannot load the dev key 'ec-1'".into()));
    };
    let failed = |e: &dyn std::fmt::Display| Exit::Failed(format!("cannot encode ec-1: {e}"));
    let private = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| failed(&e))?;
    let public = key
        .verifying_key()
        .to_public_key_der()
        .map_err(|e| failed(&e))?;
    let public = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, public);
    Ok((private.to_string(), public))
}

fn sendgrid_key(args: &mut Args) -> Result<(), Exit> {
    let (mut private, mut public) = (true, true);
    while let Some(flag) = args.next()? {
        match flag.as_str() {
            "-h" | "--help" => return Err(Exit::Help),
            "--private" => public = false,
            "--public" => private = false,
            other => {
                return Err(Exit::Usage(format!(
                    "sendgrid-key: unknown argument '{other}'"
                )))
            }
        }
    }
    let (private_pem, public_b64) = sendgrid_key_pair()?;
    if private {
        print!("{private_pem}");
    }
    if public {
        println!("{public_b64}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_gateway::jwt::{native, KeySet, Token};

    fn words(line: &str) -> Args {
        Args::new(line.split_whitespace().map(String::from).collect())
    }

    fn mint(line: &str) -> Token {
        let o = TokenOptions::parse(&mut words(line)).unwrap();
        let raw = token(&o).unwrap();
        assert_eq!(raw.split('.').count(), 3, "{raw}");
        Token::parse(&raw, &Alg::ALL).unwrap()
    }

    #[test]
    fn default_token_is_rs256_with_rsa_1_and_the_documented_claims() {
        let t = mint("--now 1700000000");
        assert_eq!((t.alg, t.kid.as_deref()), (Alg::RS256, Some("rsa-1")));
        let p = Value::Object(t.payload.clone());
        assert_eq!(
            p,
            json!({"iss": "https://idp.acme.example/", "aud": "orders-api", "sub": "dev-user",
                   "iat": 1700000000, "exp": 1700003600})
        );
        // It verifies against the JWKS that `jwks`/`serve` publish.
        let set = KeySet::parse(&devkeys::jwks(&["rsa-1"]).to_string()).unwrap();
        let key = set.candidates(Some("rsa-1"), Alg::RS256).next().unwrap();
        let ok = native::verify(Alg::RS256, key, t.signing_input.as_bytes(), &t.signature);
        assert_eq!(ok, Ok(true));
    }

    #[test]
    fn options_shape_the_header_and_claims() {
        let t = mint(
            "--key ec-1 --aud a --aud=b --ttl -60 --nbf-in 30 --now 100 --sub ada \
             --claim scope=read --claim n=5 --claim iss=null --header kid=null --header typ=at+jwt",
        );
        assert_eq!(
            (t.alg, t.kid, t.typ.as_deref()),
            (Alg::ES256, None, Some("at+jwt"))
        );
        let p = Value::Object(t.payload);
        assert_eq!(
            p,
            json!({"aud": ["a", "b"], "sub": "ada", "iat": 100, "exp": 40, "nbf": 130,
                   "scope": "read", "n": 5})
        );
        let t = mint("--key ed-1 --no-exp --alg EdDSA");
        assert_eq!((t.alg, t.kid.as_deref()), (Alg::EdDSA, Some("ed-1")));
        assert!(!t.payload.contains_key("exp"));
        // A forced alg the key cannot make still yields a token (for negative tests).
        assert_eq!(mint("--key rsa-2 --alg PS384").alg, Alg::PS384);
    }

    #[test]
    fn bad_token_arguments_are_usage_errors() {
        for line in [
            "--key nope",
            "--alg HS256",
            "--ttl soon",
            "--claim novalue",
            "--no-exp=1",
            "--iss",
            "--frobnicate",
        ] {
            let err = TokenOptions::parse(&mut words(line)).unwrap_err();
            assert!(matches!(err, Exit::Usage(_)), "{line}: {err:?}");
        }
        assert_eq!(run(vec!["token".into(), "-h".into()]), Err(Exit::Help));
        assert!(matches!(run(vec![]), Err(Exit::Usage(_))));
        assert!(matches!(run(vec!["mint".into()]), Err(Exit::Usage(_))));
        assert!(matches!(
            run(vec!["jwks".into(), "rsa-9".into()]),
            Err(Exit::Usage(_))
        ));
    }
}
