//! `policy-check`: checks Traffic Policy and endpoint files with the compiler the Worker runs,
//! and packs them into the KV bundle that `scripts/upload-policy.sh` uploads.
//!
//! ```text
//! policy-check check  [--strict] [--json] PATH...    report every problem; exit 1 if any error
//! policy-check bundle [--strict] --out FILE PATH...  the same check; when clean, write the bundle
//!                                                     and print its version on stdout
//! policy-check deploy [--strict] --out DIR PATH...   the same check; when clean, write
//!                                                     DIR/<cluster>/cloudflared.yaml for each
//!                                                     cluster's tunnel (src/deploy.rs)
//! ```
//!
//! Problems are printed like a compiler's (file:line:col, code, message, the source line with a
//! caret, a hint; docs/validation.md). `--json` prints them as one JSON document instead (on
//! stdout for `check`, on stderr otherwise). Exit status: 0 clean, 1 errors found or an output
//! not written, 2 a usage error (clap's).
//!
//! Every subcommand checks (and `bundle` packs) the shipped IP-intelligence list
//! ([`files::SHIPPED_IP_INTEL`]) with the files, as ngrok's categories are always there, unless
//! the files carry `kind: IPIntelligence` documents of their own (they replace it) or
//! `--no-ip-intel` is given (docs/ip-intelligence.md).

use clap::{Args, Parser, Subcommand};
use edge_gateway::bundle::Bundle;
use edge_gateway::compile::render::{self, Sources};
use edge_gateway::files::{self, CrsInBundle, IpIntelList};
use edge_gateway::manifest::{build_gateway, Options};
use edge_gateway::source::Severity;
use std::path::PathBuf;
use std::process::ExitCode;

/// Check Traffic Policy and endpoint files with the compiler the Worker runs, and pack them
/// for upload.
///
/// Exit status: 0 when the files are clean (warnings allowed), 1 when there are errors or an
/// output cannot be written, 2 on a usage error.
#[derive(Debug, Parser)]
#[command(name = "policy-check", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Report every problem of the files; exit 1 if any is an error
    Check {
        #[command(flatten)]
        input: Input,
    },
    /// Check, and when clean write the KV bundle to FILE and print its version on stdout
    /// (scripts/upload-policy.sh)
    Bundle {
        /// Where to write the bundle (JSON)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        input: Input,
    },
    /// Check, and when clean write DIR/<cluster>/cloudflared.yaml for each cluster's tunnel
    Deploy {
        /// The directory to write the manifests under
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        input: Input,
    },
}

#[derive(Debug, Args)]
struct Input {
    /// Reject the deviations ngrok's validator rejects (e.g. a map for `on_http_request`)
    /// instead of normalising them with a warning
    #[arg(long)]
    strict: bool,
    /// Print the problems as one JSON document (on stdout for `check`, else on stderr)
    #[arg(long)]
    json: bool,
    /// Leave the shipped IP-intelligence list out: `conn.client_ip.categories` is then empty
    /// for every address. (Giving `kind: IPIntelligence` documents replaces the list instead.)
    #[arg(long)]
    no_ip_intel: bool,
    /// Policy and endpoint files, or directories to read them from
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let (input, out, check) = match Cli::parse().command {
        Command::Check { input } => (input, None, true),
        Command::Bundle { out, input } => (input, Some(Output::Bundle(out)), false),
        Command::Deploy { out, input } => (input, Some(Output::Deploy(out)), false),
    };
    let Input {
        strict,
        json,
        no_ip_intel,
        paths,
    } = input;
    let files = match files::expand(&paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("policy-check: {e}");
            return ExitCode::from(1);
        }
    };
    let (mut docs, mut diags) = files::load(&files);
    match files::with_ip_intel(&mut docs, no_ip_intel) {
        IpIntelList::Shipped => eprintln!(
            "policy-check: IP intelligence: the shipped list ({}); give IPIntelligence documents to replace it, --no-ip-intel to leave it out",
            files::SHIPPED_IP_INTEL
                .iter()
                .map(|(f, _)| *f)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        IpIntelList::Given => {
            eprintln!("policy-check: IP intelligence: the IPIntelligence documents given")
        }
        IpIntelList::None => eprintln!("policy-check: IP intelligence: none (--no-ip-intel)"),
    }
    match files::with_crs(&mut docs) {
        CrsInBundle::Vendored => eprintln!(
            "policy-check: OWASP CRS: the vendored rule set ({}), compiled into the bundle",
            edge_gateway::waf::vendored_rule_set().program().crs_version
        ),
        CrsInBundle::Given => eprintln!("policy-check: OWASP CRS: the CoreRuleSet document given"),
        CrsInBundle::NotNeeded => {}
    }
    let stamp = utc_stamp();
    let bundle = Bundle::pack(&docs, &stamp);
    let (gateway, more) = build_gateway(&docs, Options { strict }, &bundle.version);
    diags.extend(more);
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    let mut sources = Sources::default();
    render::sort(&mut diags);
    if json {
        let doc = serde_json::json!({
            "errors": errors,
            "warnings": warnings,
            "diagnostics": diags.iter().map(|d| render::to_json(d, &mut sources)).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&doc).expect("diagnostics serialise");
        if check {
            println!("{text}");
        } else {
            eprintln!("{text}");
        }
    } else {
        for d in &diags {
            eprintln!("{}", render::render(d, &mut sources));
        }
    }
    let gateway = match gateway {
        Some(g) if errors == 0 => g,
        _ => {
            eprintln!(
                "policy-check: {errors} error(s), {warnings} warning(s) in {} file(s)",
                files.len()
            );
            return ExitCode::from(1);
        }
    };
    let members: usize = gateway.pools.values().map(|p| p.members.len()).sum();
    eprintln!(
        "policy-check: ok: {} file(s), {} public endpoint(s), {} internal endpoint(s) in {} pool(s), {warnings} warning(s)",
        files.len(),
        gateway.public.len(),
        members,
        gateway.pools.len()
    );
    match out {
        None => ExitCode::SUCCESS,
        Some(Output::Deploy(dir)) => write_deploy(&docs, &dir),
        Some(Output::Bundle(out)) => write_bundle(&bundle, &out),
    }
}

enum Output {
    Bundle(PathBuf),
    Deploy(PathBuf),
}

/// The bundle at `out`, its version on stdout.
fn write_bundle(bundle: &Bundle, out: &std::path::Path) -> ExitCode {
    let json = serde_json::to_string(bundle).expect("a bundle serialises");
    if let Err(e) = std::fs::write(out, json) {
        eprintln!("policy-check: cannot write {}: {e}", out.display());
        return ExitCode::from(1);
    }
    println!("{}", bundle.version);
    ExitCode::SUCCESS
}

/// `DIR/<cluster>/cloudflared.yaml` for every cluster whose AgentEndpoints name tunnel hostnames.
fn write_deploy(docs: &[edge_gateway::manifest::SourceDoc], dir: &std::path::Path) -> ExitCode {
    let clusters = match edge_gateway::deploy::routes(docs) {
        Ok(c) => c,
        Err(problems) => {
            for p in problems {
                eprintln!("policy-check: {p}");
            }
            return ExitCode::from(1);
        }
    };
    for (cluster, routes) in &clusters {
        let path = dir.join(cluster).join("cloudflared.yaml");
        let written = std::fs::create_dir_all(dir.join(cluster)).and_then(|()| {
            std::fs::write(&path, edge_gateway::deploy::cloudflared(cluster, routes))
        });
        if let Err(e) = written {
            eprintln!("policy-check: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
        println!("{} ({} route(s))", path.display(), routes.len());
    }
    ExitCode::SUCCESS
}

/// `YYYYMMDDTHHMMSSZ` from the system clock (native tool only: the core never reads a clock).
fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    stamp_of(secs)
}

fn stamp_of(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), valid for the Unix era.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn stamps_are_utc_civil_time() {
        assert_eq!(super::stamp_of(0), "19700101T000000Z");
        assert_eq!(super::stamp_of(951_782_400), "20000229T000000Z");
        assert_eq!(super::stamp_of(1_764_115_200), "20251126T000000Z");
        assert_eq!(super::stamp_of(4_102_444_799), "20991231T235959Z");
    }
}
