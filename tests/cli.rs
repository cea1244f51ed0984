//! The command-line tools of `src/bin` behave like tools: `--help` and `--version` answer with
//! exit status 0, an unknown subcommand or flag is a usage error (2), and `policy-check check`
//! exits 1 when it finds errors and 0 when it finds none (issue 13).

use std::path::Path;
use std::process::{Command, Output};

const POLICY_CHECK: &str = env!("CARGO_BIN_EXE_policy-check");
const DEMO_ORIGINS: &str = env!("CARGO_BIN_EXE_demo-origins");
const DEV_AUTH: &str = env!("CARGO_BIN_EXE_dev-auth");
const IP_INTEL: &str = env!("CARGO_BIN_EXE_ip-intel");

/// Every binary, with the subcommands its `--help` must list.
const TOOLS: [(&str, &str, &[&str]); 4] = [
    (POLICY_CHECK, "policy-check", &["check", "bundle", "deploy"]),
    (DEMO_ORIGINS, "demo-origins", &[]),
    (
        DEV_AUTH,
        "dev-auth",
        &["token", "jwks", "serve", "sign-webhook", "sendgrid-key"],
    ),
    (IP_INTEL, "ip-intel", &[]),
];

/// Runs `bin` from the crate root, so that relative policy paths resolve.
fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("{bin} runs: {e}"))
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_exits_0_and_lists_the_subcommands() {
    for (bin, name, subcommands) in TOOLS {
        for flag in ["--help", "-h"] {
            let out = run(bin, &[flag]);
            assert_eq!(code(&out), 0, "{name} {flag}: {}", stderr(&out));
            let text = stdout(&out);
            assert!(
                text.contains(&format!("Usage: {name}")),
                "{name} {flag}:\n{text}"
            );
            for sub in subcommands {
                assert!(text.contains(sub), "{name} {flag} lists {sub}:\n{text}");
            }
        }
        // Subcommand help, both ways.
        for sub in subcommands {
            for args in [&["help", sub][..], &[sub, "--help"]] {
                let out = run(bin, args);
                assert_eq!(code(&out), 0, "{name} {args:?}: {}", stderr(&out));
                let text = stdout(&out);
                assert!(
                    text.contains(&format!("Usage: {name} {sub}")),
                    "{name} {args:?}:\n{text}"
                );
            }
        }
    }
}

#[test]
fn version_prints_the_crate_version() {
    for (bin, name, _) in TOOLS {
        let out = run(bin, &["--version"]);
        assert_eq!(code(&out), 0, "{name} --version: {}", stderr(&out));
        assert_eq!(
            stdout(&out).trim(),
            format!("{name} {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[(&str, &[&str])] = &[
        (POLICY_CHECK, &["frobnicate", "policies/acme"]),
        (POLICY_CHECK, &["check", "--frobnicate", "policies/acme"]),
        (POLICY_CHECK, &["check"]),
        (POLICY_CHECK, &["bundle", "policies/acme"]),
        (POLICY_CHECK, &[]),
        (DEMO_ORIGINS, &["--frobnicate"]),
        (DEMO_ORIGINS, &["--origin", "127.0.0.1:1=a/b"]),
        (DEV_AUTH, &["frobnicate"]),
        (DEV_AUTH, &["token", "--frobnicate"]),
        (DEV_AUTH, &["token", "--key", "rsa-9"]),
        (DEV_AUTH, &["sign-webhook", "--provider", "github"]),
        // Found after parsing: twilio signs the URL, so it needs --url.
        (
            DEV_AUTH,
            &["sign-webhook", "--provider", "twilio", "--secret", "s"],
        ),
        (DEV_AUTH, &[]),
        (IP_INTEL, &["--frobnicate"]),
        (
            IP_INTEL,
            &["--name", "x", "--retrieved", "2025-01-01", "nofile"],
        ),
        (IP_INTEL, &[]),
    ];
    for (bin, args) in cases {
        let out = run(bin, args);
        assert_eq!(code(&out), 2, "{bin} {args:?}: {}", stderr(&out));
        // An error, or the help when nothing was asked (clap's arg_required_else_help).
        let err = stderr(&out);
        assert!(
            err.contains("error:") || err.contains("Usage:"),
            "{bin} {args:?}"
        );
        assert!(stdout(&out).is_empty(), "{bin} {args:?}: {}", stdout(&out));
    }
}

#[test]
fn policy_check_exits_1_on_errors_and_0_when_clean() {
    let bad = run(
        POLICY_CHECK,
        &["check", "tests/diagnostics/many-problems.yaml"],
    );
    assert_eq!(code(&bad), 1, "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("error[ERR_NGROK_"),
        "{}",
        stderr(&bad)
    );

    // `--strict` turns the Acme policy's one deviation (the guide's `rate: 1s`) into an error.
    let strict = run(POLICY_CHECK, &["check", "--strict", "policies/acme"]);
    assert_eq!(code(&strict), 1, "{}", stderr(&strict));

    let ok = run(POLICY_CHECK, &["check", "policies/acme"]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert!(stderr(&ok).contains("policy-check: ok:"), "{}", stderr(&ok));

    // `--json` prints one document on stdout for `check`, flags after the paths too.
    let json = run(POLICY_CHECK, &["check", "policies/acme", "--json"]);
    assert_eq!(code(&json), 0, "{}", stderr(&json));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON on stdout");
    assert_eq!(doc["errors"], 0);
}

#[test]
fn policy_check_bundle_writes_the_bundle_and_prints_its_version() {
    let dir = std::env::temp_dir().join(format!("cli-bundle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bundle.json");
    let file_arg = file.to_str().unwrap();
    // scripts/upload-policy.sh's form: `bundle [--strict] --out FILE PATH...`.
    let out = run(
        POLICY_CHECK,
        &["bundle", "--out", file_arg, "policies/acme"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let version = stdout(&out);
    let version = version.trim();
    assert!(
        !version.is_empty() && !version.contains('\n'),
        "{version:?}"
    );
    assert!(Path::new(&file).is_file());
    let failed = run(
        POLICY_CHECK,
        &["bundle", "--strict", "--out", file_arg, "policies/acme"],
    );
    assert_eq!(code(&failed), 1, "{}", stderr(&failed));
    assert!(stdout(&failed).is_empty());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dev_auth_keeps_its_callers_forms() {
    // scripts/dev.sh and the README: a token, and a webhook's headers for `curl -H`.
    let token = run(DEV_AUTH, &["token", "--sub", "alice"]);
    assert_eq!(code(&token), 0, "{}", stderr(&token));
    assert_eq!(stdout(&token).trim().split('.').count(), 3);
    let tokens = run(
        DEV_AUTH,
        &["token", "--ttl", "-60", "--sub", "u", "--count", "3"],
    );
    assert_eq!(stdout(&tokens).lines().count(), 3, "{}", stderr(&tokens));
    let signed = run(
        DEV_AUTH,
        &[
            "sign-webhook",
            "--provider",
            "github",
            "--secret",
            "dev-webhook-secret",
            "--body",
            r#"{"zen":"hi"}"#,
        ],
    );
    assert_eq!(code(&signed), 0, "{}", stderr(&signed));
    assert!(stdout(&signed).contains("X-Hub-Signature-256: sha256="));
    // A body file that cannot be read is a failure, not a usage error.
    let missing = run(
        DEV_AUTH,
        &[
            "sign-webhook",
            "--provider",
            "github",
            "--secret",
            "s",
            "--body-file",
            "/nonexistent/body",
        ],
    );
    assert_eq!(code(&missing), 1, "{}", stderr(&missing));
}
