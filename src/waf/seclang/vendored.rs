//! The CRS files vendored under `crs/rules` (see `crs/PROVENANCE.md`), embedded: the request
//! and response rule files in the order ModSecurity's `Include rules/*.conf` loads them (by
//! name), and the data files their `@pmFromFile` operators read. `scripts/update-crs.sh`
//! replaces the files; `tests/crs_compile.rs` checks that these lists name every one of them.

use super::{compile, Source};
use crate::waf::program::Program;
use std::sync::OnceLock;

macro_rules! crs {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../crs/rules/", $name)))),*]
    };
}

/// `(file name, text)` of every rule file, in load order.
pub const RULE_FILES: &[(&str, &str)] = crs![
    // BEGIN rule files: written by scripts/update-crs.sh
    "REQUEST-901-INITIALIZATION.conf",
    "REQUEST-905-COMMON-EXCEPTIONS.conf",
    "REQUEST-911-METHOD-ENFORCEMENT.conf",
    "REQUEST-913-SCANNER-DETECTION.conf",
    "REQUEST-920-PROTOCOL-ENFORCEMENT.conf",
    "REQUEST-921-PROTOCOL-ATTACK.conf",
    "REQUEST-922-MULTIPART-ATTACK.conf",
    "REQUEST-930-APPLICATION-ATTACK-LFI.conf",
    "REQUEST-931-APPLICATION-ATTACK-RFI.conf",
    "REQUEST-932-APPLICATION-ATTACK-RCE.conf",
    "REQUEST-933-APPLICATION-ATTACK-PHP.conf",
    "REQUEST-934-APPLICATION-ATTACK-GENERIC.conf",
    "REQUEST-941-APPLICATION-ATTACK-XSS.conf",
    "REQUEST-942-APPLICATION-ATTACK-SQLI.conf",
    "REQUEST-943-APPLICATION-ATTACK-SESSION-FIXATION.conf",
    "REQUEST-944-APPLICATION-ATTACK-JAVA.conf",
    "REQUEST-949-BLOCKING-EVALUATION.conf",
    "REQUEST-999-COMMON-EXCEPTIONS-AFTER.conf",
    "RESPONSE-950-DATA-LEAKAGES.conf",
    "RESPONSE-951-DATA-LEAKAGES-SQL.conf",
    "RESPONSE-952-DATA-LEAKAGES-JAVA.conf",
    "RESPONSE-953-DATA-LEAKAGES-PHP.conf",
    "RESPONSE-954-DATA-LEAKAGES-IIS.conf",
    "RESPONSE-955-WEB-SHELLS.conf",
    "RESPONSE-956-DATA-LEAKAGES-RUBY.conf",
    "RESPONSE-959-BLOCKING-EVALUATION.conf",
    "RESPONSE-980-CORRELATION.conf",
    // END rule files
];

/// `(file name, text)` of every data file.
pub const DATA_FILES: &[(&str, &str)] = crs![
    // BEGIN data files: written by scripts/update-crs.sh
    "ai-critical-artifacts.data",
    "asp-dotnet-errors.data",
    "iis-errors.data",
    "java-classes.data",
    "lfi-os-files.data",
    "php-errors.data",
    "php-function-names-933150.data",
    "php-variables.data",
    "restricted-files.data",
    "restricted-upload.data",
    "ruby-errors.data",
    "scanners-user-agents.data",
    "sql-errors.data",
    "ssrf-no-scheme.data",
    "ssrf.data",
    "unix-shell-aliases.data",
    "unix-shell-builtins.data",
    "unix-shell.data",
    "web-shells-asp.data",
    "web-shells-php.data",
    "windows-powershell-commands.data",
    // END data files
];

/// Loaded before CRS, as a ModSecurity setup loads its recommended configuration first: the
/// engine's rule 200002 (see the file). Ours, not CRS's: `update-crs.sh` leaves it alone.
pub const ENGINE_SETUP: (&str, &str) = ("engine-setup.conf", include_str!("engine-setup.conf"));

/// The engine setup and the vendored rule files as compiler sources, in load order.
pub fn vendored_sources() -> Vec<Source<'static>> {
    std::iter::once(&ENGINE_SETUP)
        .chain(RULE_FILES)
        .map(|(file, text)| Source { file, text })
        .collect()
}

/// A vendored data file by the name a rule gives it.
pub fn vendored_data(name: &str) -> Option<&'static str> {
    DATA_FILES
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, text)| *text)
}

/// The vendored CRS, compiled once. It is fixed at build time and `tests/crs_compile.rs`
/// checks that it compiles, so a failure here is a build defect, not an input error.
pub fn vendored() -> &'static Program {
    static PROGRAM: OnceLock<Program> = OnceLock::new();
    PROGRAM.get_or_init(|| {
        match compile(&vendored_sources(), &|name| {
            vendored_data(name).map(str::to_string)
        }) {
            Ok(program) => program,
            Err(errors) => {
                let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
                panic!("the vendored CRS does not compile:\n{}", list.join("\n"))
            }
        }
    })
}
