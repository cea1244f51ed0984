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
//! stdout for `check`, on stderr otherwise).

use edge_gateway::bundle::Bundle;
use edge_gateway::compile::render::{self, Sources};
use edge_gateway::files;
use edge_gateway::manifest::{build_gateway, Options};
use edge_gateway::source::Severity;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: policy-check check [--strict] [--json] PATH...\n       policy-check bundle [--strict] --out FILE PATH...\n       policy-check deploy [--strict] --out DIR PATH...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first().map(String::as_str) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let mut strict = false;
    let mut json = false;
    let mut out = None;
    let mut paths = Vec::new();
    let mut rest = args[1..].iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--strict" => strict = true,
            "--json" => json = true,
            "--out" => match rest.next() {
                Some(f) => out = Some(PathBuf::from(f)),
                None => return usage("--out needs a file"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            flag if flag.starts_with('-') => return usage(&format!("unknown flag `{flag}`")),
            path => paths.push(PathBuf::from(path)),
        }
    }
    match (command, &out) {
        ("check", None) | ("bundle", Some(_)) | ("deploy", Some(_)) => {}
        ("bundle", None) => return usage("bundle needs --out FILE"),
        ("deploy", None) => return usage("deploy needs --out DIR"),
        _ => return usage(&format!("unknown command `{command}`")),
    }
    if paths.is_empty() {
        return usage("no files given");
    }
    let files = match files::expand(&paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("policy-check: {e}");
            return ExitCode::from(1);
        }
    };
    let (docs, mut diags) = files::load(&files);
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
        if command == "check" {
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
    if let (Some(dir), "deploy") = (&out, command) {
        return write_deploy(&docs, dir);
    }
    if let Some(out) = out {
        let json = serde_json::to_string(&bundle).expect("a bundle serialises");
        if let Err(e) = std::fs::write(&out, json) {
            eprintln!("policy-check: cannot write {}: {e}", out.display());
            return ExitCode::from(1);
        }
        println!("{}", bundle.version);
    }
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

fn usage(why: &str) -> ExitCode {
    eprintln!("policy-check: {why}\n{USAGE}");
    ExitCode::from(2)
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
    fn stamps_are_utc_civil_time() {
        assert_eq!(super::stamp_of(0), "19700101T000000Z");
        assert_eq!(super::stamp_of(951_782_400), "20000229T000000Z");
        assert_eq!(super::stamp_of(1_764_115_200), "20251126T000000Z");
        assert_eq!(super::stamp_of(4_102_444_799), "20991231T235959Z");
    }
}
