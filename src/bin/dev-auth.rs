//! `dev-auth`: a development identity provider and webhook signer for `scripts/dev.sh` and the
//! end-to-end tests. It mints JWTs with the public dev keys of `dev/keys/`, serves their JWKS
//! over HTTP (with switches to rotate keys and simulate an outage), and prints the signature
//! headers a webhook provider would send, so a developer can `curl` the gateway by hand.
//!
//! Everything here is std, clap and the crates the library already has: it must build quickly
//! next to the worker. The dev keys are public; nothing may ever trust what this tool signs.

#[path = "dev_auth/serve.rs"]
mod serve;
#[path = "dev_auth/webhook.rs"]
mod webhook;

use clap::error::ErrorKind;
use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use edge_gateway::devkeys::{self, DevKey, KIDS};
use edge_gateway::jwt::Alg;
use serde_json::{json, Map, Value};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// Development identity provider and webhook signer for scripts/dev.sh and the tests.
///
/// The keys in dev/keys/ are public: never trust anything this tool signs. Exit status: 0 done,
/// 1 a failure (a dev key or body file that cannot be read, an address that cannot be bound),
/// 2 a usage error.
#[derive(Debug, Parser)]
#[command(name = "dev-auth", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a JWT signed with a dev key
    Token(TokenOptions),
    /// Print the JWKS of dev keys
    Jwks {
        /// The keys to publish [default: rsa-1 ec-1 ed-1]
        #[arg(value_name = "KID", value_parser = known_kid)]
        kids: Vec<String>,
    },
    /// Serve the JWKS over HTTP/1.1, with routes to rotate keys and simulate an outage
    Serve(serve::ServeOptions),
    /// Print the headers a webhook provider would send with a body, one `Name: value` a line,
    /// for `curl -H`
    SignWebhook(webhook::SignOptions),
    /// Print the dev P-256 key pair for sendgrid: the private PEM (for --secret) and the
    /// base64 DER public key the verifier is configured with
    SendgridKey {
        /// Only the private key
        #[arg(long, conflicts_with = "public")]
        private: bool,
        /// Only the public key
        #[arg(long)]
        public: bool,
    },
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        // Found after parsing (a secret of the wrong form, twilio without --url): still usage,
        // reported with the subcommand's usage line.
        Err(Exit::Usage(msg)) => {
            let mut cli = Cli::command();
            cli.build();
            let sub = matches.subcommand_name().unwrap_or_default();
            match cli.find_subcommand_mut(sub) {
                Some(sub) => sub.error(ErrorKind::InvalidValue, msg).exit(),
                None => cli.error(ErrorKind::InvalidValue, msg).exit(),
            }
        }
        Err(Exit::Failed(msg)) => {
            eprintln!("dev-auth: {msg}");
            ExitCode::from(1)
        }
    }
}

/// Why a command stopped early: bad usage (exit 2) or a failure (1).
#[derive(Debug, PartialEq)]
enum Exit {
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

fn run(command: Command) -> Result<(), Exit> {
    match command {
        Command::Token(mut o) => {
            // One clock reading for all the tokens.
            o.now = Some(o.now.unwrap_or_else(unix_now));
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
        Command::Jwks { mut kids } => {
            if kids.is_empty() {
                kids = serve::DEFAULT_KIDS.map(String::from).to_vec();
            }
            let refs: Vec<&str> = kids.iter().map(String::as_str).collect();
            println!("{:#}", devkeys::jwks(&refs));
            Ok(())
        }
        Command::Serve(o) => serve::main(o),
        Command::SignWebhook(o) => webhook::main(o),
        Command::SendgridKey { private, public } => {
            // Neither flag: both keys.
            sendgrid_key(private || !public, public || !private)
        }
    }
}

fn known_kid(kid: &str) -> Result<String, String> {
    match KIDS.contains(&kid) {
        true => Ok(kid.to_string()),
        false => Err(unknown_kid(kid)),
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

#[derive(Debug, Args)]
struct TokenOptions {
    /// The dev key: rsa-1, rsa-2, ec-1 or ed-1
    #[arg(long = "key", value_name = "KID", default_value = "rsa-1", value_parser = known_kid)]
    kid: String,
    /// RS256..PS512, ES256, EdDSA [default: the key's own]; one the key cannot make gives a
    /// bad signature
    #[arg(long, value_parser = parse_alg)]
    alg: Option<Alg>,
    /// The issuer
    #[arg(long, value_name = "URL", default_value_t = serve::default_issuer())]
    iss: String,
    /// The audience; repeatable, two or more make an array
    #[arg(long, default_value = "orders-api", allow_hyphen_values = true)]
    aud: Vec<String>,
    /// The subject
    #[arg(long, default_value = "dev-user", allow_hyphen_values = true)]
    sub: String,
    /// exp = now + SECONDS; negative makes an expired token
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 3600,
        allow_negative_numbers = true
    )]
    ttl: i64,
    /// Leave exp out
    #[arg(long = "no-exp", action = ArgAction::SetFalse)]
    exp: bool,
    /// Add nbf = now + SECONDS
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    nbf_in: Option<i64>,
    /// Pin the clock (iat = now) [default: the system clock]
    #[arg(long, value_name = "UNIX_SECONDS", allow_negative_numbers = true)]
    now: Option<i64>,
    /// Set a claim, repeatable; VALUE is JSON if it parses, else a string; null removes it
    #[arg(long = "claim", value_name = "NAME=VALUE", value_parser = field)]
    claims: Vec<(String, Value)>,
    /// The same for the JOSE header (kid=null, typ=at+jwt)
    #[arg(long, value_name = "NAME=VALUE", value_parser = field)]
    header: Vec<(String, Value)>,
    /// Print N tokens, one a line, with subjects SUB-0 .. SUB-(N-1)
    #[arg(long, value_name = "N", default_value_t = 1)]
    count: u32,
}

fn parse_alg(name: &str) -> Result<Alg, String> {
    Alg::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Alg::ALL.iter().map(|a| a.name()).collect();
        format!("unknown algorithm (known: {})", names.join(", "))
    })
}

/// `NAME=VALUE`, where VALUE is JSON if it parses and a plain string otherwise, so that
/// `--claim scope=read write` and `--claim roles=["a"]` both do what they look like.
fn field(spec: &str) -> Result<(String, Value), String> {
    match spec.split_once('=') {
        Some((name, value)) if !name.is_empty() => {
            let value = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
            Ok((name.to_string(), value))
        }
        _ => Err("expected NAME=VALUE".to_string()),
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
    let now = o.now.unwrap_or_else(unix_now);
    claims.insert("iat".into(), json!(now));
    if o.exp {
        claims.insert("exp".into(), json!(now.saturating_add(o.ttl)));
    }
    if let Some(n) = o.nbf_in {
        claims.insert("nbf".into(), json!(now.saturating_add(n)));
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

fn sendgrid_key(private: bool, public: bool) -> Result<(), Exit> {
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

    fn parse(line: &str) -> Result<Command, clap::Error> {
        let words = ["dev-auth"].into_iter().chain(line.split_whitespace());
        Cli::try_parse_from(words).map(|cli| cli.command)
    }

    fn mint(line: &str) -> Token {
        let Ok(Command::Token(o)) = parse(&format!("token {line}")) else {
            panic!("token {line}")
        };
        let raw = token(&o).unwrap();
        assert_eq!(raw.split('.').count(), 3, "{raw}");
        Token::parse(&raw, &Alg::ALL).unwrap()
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
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
    fn bad_arguments_are_usage_errors() {
        for line in [
            "token --key nope",
            "token --alg HS256",
            "token --ttl soon",
            "token --claim novalue",
            "token --no-exp=1",
            "token --iss",
            "token --frobnicate",
            "",
            "mint",
            "jwks rsa-9",
            "serve --addr localhost",
            "serve --keys rsa-1,rsa-9",
            "sign-webhook --provider github",
            "sign-webhook --provider nope --secret s",
            "sign-webhook --provider github --secret s --body a --body-file b",
            "sendgrid-key --private --public",
        ] {
            let err = parse(line).expect_err(line);
            assert_eq!(err.exit_code(), 2, "{line}: {err}");
        }
        for line in ["--help", "token -h", "help sign-webhook", "--version"] {
            let err = parse(line).expect_err(line);
            assert_eq!(err.exit_code(), 0, "{line}: {err}");
        }
    }

    #[test]
    fn the_callers_command_lines_parse() {
        // scripts/dev.sh, scripts/bench-access.sh, tests/support (stack.rs, scenario.rs), e2e.rs.
        for line in [
            "serve --addr 127.0.0.1:18200",
            "serve --addr 127.0.0.1:0 --quiet",
            "serve --keys rsa-1,ec-1 -q",
            "token --sub alice",
            "token --key ec-1 --sub u --count 100",
            "sign-webhook --provider github --secret dev-webhook-secret --body {\"a\":1}",
            "sign-webhook --provider twilio --secret s --body b=1 --timestamp 1 --id x --url u",
            "sign-webhook --provider github --secret s --body-file -",
            "jwks",
            "jwks rsa-2 ed-1",
            "sendgrid-key --public",
        ] {
            if let Err(e) = parse(line) {
                panic!("{line}: {e}");
            }
        }
    }
}
