//! The bundle stored in KV: every checked document (as JSON) and the version it goes live as.
//!
//! KV layout (written by `scripts/upload-policy.sh`): `bundle/<version>` holds a bundle and is
//! never rewritten; `current` holds the live version. Writing the bundle first and the pointer
//! last makes an upload switch atomically: a reader sees the old version or the new one, whole.

use crate::gateway::Gateway;
use crate::manifest::{build_gateway, Options, SourceDoc};
use crate::source::from_json;
use crate::source::{Diagnostic, Severity};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const FORMAT: u32 = 1;
/// The KV key holding the live version.
pub const CURRENT_KEY: &str = "current";

/// The KV key of a version's bundle.
pub fn bundle_key(version: &str) -> String {
    format!("bundle/{version}")
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Bundle {
    pub format: u32,
    pub version: String,
    pub documents: Vec<BundleDoc>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BundleDoc {
    pub file: String,
    pub document: serde_json::Value,
}

impl Bundle {
    /// Packs checked documents; the version is `<stamp>-<first 8 hex of the content's SHA-256>`,
    /// `stamp` being the caller's UTC time (`20261126T071500Z`): the core has no clock.
    pub fn pack(docs: &[SourceDoc], stamp: &str) -> Bundle {
        let documents: Vec<BundleDoc> = docs
            .iter()
            .map(|d| BundleDoc {
                file: d.file.clone(),
                document: d.node.to_json(),
            })
            .collect();
        let digest = Sha256::digest(serde_json::to_vec(&documents).unwrap_or_default());
        let hash = &format!("{digest:x}")[..8];
        Bundle {
            format: FORMAT,
            version: format!("{stamp}-{hash}"),
            documents,
        }
    }

    pub fn source_docs(&self) -> Vec<SourceDoc> {
        self.documents
            .iter()
            .map(|d| SourceDoc {
                file: d.file.clone(),
                node: from_json(&d.document),
            })
            .collect()
    }
}

/// Parses and compiles a bundle read from KV (what the Worker does for each new version).
pub fn load(text: &str) -> Result<Gateway, String> {
    let bundle: Bundle = serde_json::from_str(text).map_err(|e| format!("corrupt bundle: {e}"))?;
    if bundle.format != FORMAT {
        return Err(format!("bundle format {} is not {FORMAT}", bundle.format));
    }
    let (gateway, diags) =
        build_gateway(&bundle.source_docs(), Options::default(), &bundle.version);
    gateway.ok_or_else(|| {
        let errors: Vec<String> = diags
            .iter()
            .filter(|d: &&Diagnostic| d.severity == Severity::Error)
            .take(3)
            .map(ToString::to_string)
            .collect();
        format!(
            "bundle {} does not compile: {}",
            bundle.version,
            errors.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::from_json;

    fn doc(v: serde_json::Value) -> SourceDoc {
        SourceDoc {
            file: "p.yaml".into(),
            node: from_json(&v),
        }
    }

    fn policy() -> serde_json::Value {
        serde_json::json!({"on_http_request": [{"actions": [{"type": "deny"}]}]})
    }

    #[test]
    fn round_trip_and_content_addressed_version() {
        let a = Bundle::pack(&[doc(policy())], "20261126T000000Z");
        let b = Bundle::pack(&[doc(policy())], "20261126T000000Z");
        assert_eq!(a.version, b.version);
        assert!(
            a.version.starts_with("20261126T000000Z-") && a.version.len() == 25,
            "{}",
            a.version
        );
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(load(&text).unwrap().version, a.version);
        let other = Bundle::pack(
            &[doc(
                serde_json::json!({"on_http_request": [{"actions": [{"type": "deny", "config": {"status_code": 404}}]}]}),
            )],
            "20261126T000000Z",
        );
        assert_ne!(other.version, a.version);
    }

    #[test]
    fn corrupt_or_foreign_bundles_are_refused_with_a_reason() {
        assert!(load("{not json").unwrap_err().contains("corrupt bundle"));
        let wrong = serde_json::json!({"format": 9, "version": "v", "documents": []}).to_string();
        assert!(load(&wrong).unwrap_err().contains("format 9"));
        let bad = Bundle::pack(
            &[doc(
                serde_json::json!({"on_http_request": [{"actions": [{"type": "nope"}]}]}),
            )],
            "s",
        );
        let err = load(&serde_json::to_string(&bad).unwrap()).unwrap_err();
        assert!(
            err.contains("does not compile") && err.contains("ERR_NGROK_2201"),
            "{err}"
        );
    }
}
