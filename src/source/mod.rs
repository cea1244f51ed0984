//! What the user wrote, as a tree that remembers where each value was written.
//!
//! Policies and endpoint manifests arrive as YAML (from files, natively) or JSON (the KV bundle, in
//! the Worker). Both become a [`Node`] tree so that one compiler serves both and every diagnostic
//! can name a line and column when the source had them.

mod diag;
mod json;
mod node;
#[cfg(not(target_arch = "wasm32"))]
mod yaml;

pub use diag::{
    child, closest, edit_distance, index, At, Diagnostic, Diagnostics, ExprCost, Severity,
};
pub use json::from_json;
pub use node::{Node, Pos, Value};
#[cfg(not(target_arch = "wasm32"))]
pub use yaml::{parse_yaml_documents, YamlError};
