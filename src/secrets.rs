//! ngrok's `secrets.get(vault, name)`, backed by Worker secrets.
//!
//! A policy version names its secrets literally (`secrets.get('acme', 'orders-password')`). The
//! documents are scanned once per version for those names; the shell resolves each from the Worker
//! secret `ACME__ORDERS_PASSWORD` ([`binding_name`]) and gives the gateway a snapshot. A version
//! that names a secret the Worker lacks is rejected (the last good version keeps serving). Secrets
//! never live in KV or git, and no message ever contains a secret's value.

use crate::source::{Node, Value};
use std::collections::{BTreeSet, HashMap};

/// `(vault, name)` as written in the policy.
pub type SecretRef = (String, String);

/// The resolved secrets of one policy version.
pub type Secrets = HashMap<SecretRef, String>;

/// The Worker secret that holds `secrets.get(vault, name)`: both upper-cased, every character
/// other than a letter or digit turned into `_`, joined with `__`.
pub fn binding_name(vault: &str, name: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}__{}", clean(vault), clean(name))
}

/// Every `secrets.get('vault', 'name')` with literal arguments in the documents' strings.
pub fn scan<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> BTreeSet<SecretRef> {
    let mut out = BTreeSet::new();
    for node in nodes {
        walk(node, &mut out);
    }
    out
}

fn walk(node: &Node, out: &mut BTreeSet<SecretRef>) {
    match &node.value {
        Value::Str(s) => out.extend(refs_in(s)),
        Value::Seq(items) => items.iter().for_each(|n| walk(n, out)),
        Value::Map(entries) => entries.iter().for_each(|(_, n)| walk(n, out)),
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
}

/// The literal `(vault, name)` pairs of `secrets.get(...)` calls in one string.
pub fn refs_in(text: &str) -> Vec<SecretRef> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("secrets.get(") {
        rest = &rest[i + "secrets.get(".len()..];
        let Some((vault, after)) = string_literal(rest) else {
            continue;
        };
        let Some(after) = after.trim_start().strip_prefix(',') else {
            continue;
        };
        let Some((name, after)) = string_literal(after) else {
            continue;
        };
        if after.trim_start().starts_with(')') {
            out.push((vault, name));
        }
    }
    out
}

fn string_literal(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &s[1..];
    let end = body.find(quote)?;
    Some((body[..end].to_string(), &body[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_literal_references() {
        let refs =
            refs_in("admin:${secrets.get('acme', \"orders-pw\")} and ${secrets.get( 'v' , 'n' )}");
        assert_eq!(
            refs,
            vec![
                ("acme".into(), "orders-pw".into()),
                ("v".into(), "n".into())
            ]
        );
        assert!(refs_in("${secrets.get(vault, 'n')}").is_empty());
        assert!(refs_in("no secrets here").is_empty());
    }

    #[test]
    fn binding_names() {
        assert_eq!(binding_name("acme", "orders-pw"), "ACME__ORDERS_PW");
        assert_eq!(
            binding_name("Beta.Tech", "hook secret"),
            "BETA_TECH__HOOK_SECRET"
        );
    }
}
