//! The gateway's configuration, read from the ngrok operator's Kubernetes manifests as users
//! already write them (`apiVersion: ngrok.k8s.ngrok.com/v1alpha1`):
//!
//! - `CloudEndpoint`: the public endpoint (this Worker) and its traffic policy, inline as
//!   `spec.trafficPolicy.policy` (documented) or `.inline` (current operator), or by reference.
//! - `AgentEndpoint` with `spec.bindings: [internal]` and a `.internal` `spec.url`: a member of the
//!   pool for that URL; `spec.upstream.url` is what the Worker fetches (a tunnel hostname).
//! - `NgrokTrafficPolicy`: a named policy that the endpoints above can reference.
//! - A bare traffic policy document (top-level `on_http_request` ...) is a public endpoint for
//!   every host.

use crate::actions::Cx;
use crate::compile::{compile_policy, EndpointKind};
use crate::endpoint_url::{internal_key, Origin};
use crate::gateway::{Gateway, Member, Pool, PublicEndpoint};
use crate::source::{child, At, Diagnostic, Diagnostics};
use crate::source::{Node, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

const API_VERSIONS: &[&str] = &["ngrok.k8s.ngrok.com/v1alpha1", "ngrok.com/v1"];
/// Optional annotation naming the cluster a pool member runs in (shown in logs, used by later
/// balancing choices).
pub const CLUSTER_ANNOTATION: &str = "edge-gateway.dev/cluster";

/// One document and the file it came from.
#[derive(Clone, Debug)]
pub struct SourceDoc {
    pub file: String,
    pub node: Node,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Reject the deviations ngrok rejects (§1.5) instead of normalising them.
    pub strict: bool,
}

/// A document, classified.
enum Doc<'a> {
    Cloud(&'a SourceDoc),
    Agent(&'a SourceDoc),
    Policy(&'a SourceDoc),
    Bare(&'a SourceDoc),
    /// `kind: IPIntelligence`: ranges and their categories (see [`crate::ipintel`]).
    IpIntel(&'a SourceDoc),
    /// `kind: CoreRuleSet`: the compiled OWASP CRS (see [`crate::waf::document`]).
    Crs(&'a SourceDoc),
}

/// Builds the gateway from every document given; returns it only when there is no error.
pub fn build_gateway(
    docs: &[SourceDoc],
    opts: Options,
    version: &str,
) -> (Option<Gateway>, Vec<Diagnostic>) {
    let mut all = Vec::new();
    let mut classified = Vec::new();
    for doc in docs {
        let mut d = Diagnostics::default();
        if let Some(c) = classify(doc, &mut d) {
            classified.push(c);
        }
        d.set_file(&doc.file);
        all.extend(d.items);
    }

    let named: HashMap<(String, String), &SourceDoc> = classified
        .iter()
        .filter_map(|c| match c {
            Doc::Policy(doc) => Some(((namespace(&doc.node), name(&doc.node)), *doc)),
            _ => None,
        })
        .collect();

    // Pass 1: the internal endpoints, so forward-internal targets can be checked.
    let mut agents = Vec::new();
    let mut internal = HashSet::new();
    for c in &classified {
        if let Doc::Agent(doc) = c {
            let mut d = Diagnostics::default();
            if let Some((key, origin)) = agent_target(&doc.node, &mut d) {
                internal.insert(key.clone());
                agents.push((doc, key, origin));
            }
            d.set_file(&doc.file);
            all.extend(d.items);
        }
    }

    let mut ip_intel = crate::ipintel::IpIntel::default();
    for c in &classified {
        if let Doc::IpIntel(doc) = c {
            let mut d = Diagnostics::default();
            ip_intel.read(&doc.node, &mut d);
            d.set_file(&doc.file);
            all.extend(d.items);
        }
    }

    let mut crs = None;
    for c in &classified {
        if let Doc::Crs(doc) = c {
            let mut d = Diagnostics::default();
            crs = crate::waf::document::read(&doc.node, &mut d);
            d.set_file(&doc.file);
            all.extend(d.items);
        }
    }
    // The checker has the vendored rule set; the Worker only what the bundle carries.
    #[cfg(not(target_arch = "wasm32"))]
    let crs = crs.or_else(|| Some(std::sync::Arc::clone(crate::waf::vendored_rule_set())));
    let crs = crs.as_ref();

    // Warnings that hold only if the bundle has no IP-intelligence list.
    let mut ip_intel_reads: Vec<Diagnostic> = Vec::new();
    let mut pools: BTreeMap<String, Pool> = BTreeMap::new();
    let mut public = Vec::new();
    let mut ok = true;
    for (doc, key, origin) in agents {
        let mut d = Diagnostics::default();
        let policy = endpoint_policy(&doc.node, &named, &mut d).map(|found| {
            // Named by the pool, not the member: the replicas of a pool share their rate-limit
            // buckets and replay logs, as one endpoint would.
            let (policy, diags, reads) = compile_found(
                found,
                &doc.file,
                &format!("internal endpoint {key}"),
                EndpointKind::Agent,
                opts,
                &internal,
                crs,
            );
            all.extend(diags);
            ip_intel_reads.extend(reads);
            policy
        });
        let annotations = meta(&doc.node, "annotations");
        let member = Member {
            name: format!("{}/{}", namespace(&doc.node), name(&doc.node)),
            cluster: annotation(&doc.node, CLUSTER_ANNOTATION),
            weight: crate::gateway::balance::weight(annotations, "metadata.annotations", &mut d),
            origin_auth: crate::gateway::balance::origin_auth(
                annotations,
                "metadata.annotations",
                &mut d,
            ),
            probe: crate::gateway::probe::read(annotations, "metadata.annotations", &mut d),
            origin,
            policy: match policy {
                Some(Some(p)) => Some(p),
                Some(None) => {
                    ok = false;
                    None
                }
                None => None,
            },
        };
        let url = doc
            .node
            .get("spec")
            .and_then(|s| s.get("url"))
            .and_then(Node::as_str)
            .unwrap_or_default();
        let pool = pools.entry(key).or_insert_with(|| Pool::new(url));
        pool.settings
            .read(&member.name, annotations, "metadata.annotations", &mut d);
        pool.members.push(member);
        d.set_file(&doc.file);
        all.extend(d.items);
    }

    for c in &classified {
        let (doc, bare) = match c {
            Doc::Cloud(doc) => (*doc, false),
            Doc::Bare(doc) => (*doc, true),
            _ => continue,
        };
        let mut d = Diagnostics::default();
        let found = if bare {
            Some((&doc.node, String::new(), None))
        } else {
            endpoint_policy(&doc.node, &named, &mut d)
        };
        match found {
            Some(found) => {
                let (policy, diags, reads) = compile_found(found, &doc.file, &endpoint_id(if bare { "policy" } else { "CloudEndpoint" }, &doc.node), EndpointKind::Cloud, opts, &internal, crs);
                all.extend(diags);
                ip_intel_reads.extend(reads);
                match policy {
                    Some(policy) => {
                        let (url, host) = if bare {
                            ("*".to_string(), "*".to_string())
                        } else {
                            cloud_url(&doc.node, &mut d)
                        };
                        let name = if bare { doc.file.clone() } else { name(&doc.node) };
                        let info = (!bare).then(|| {
                            std::sync::Arc::new(crate::expr::EndpointInfo::new(&name, &url))
                        });
                        public.push(PublicEndpoint { name, url, host, policy, info });
                    }
                    None => ok = false,
                }
            }
            // A reference that did not resolve has been reported already.
            None if d.has_errors() => {}
            None => d.error(
                Some("ERR_NGROK_2234"),
                At::new("spec", &doc.node),
                "a CloudEndpoint needs a traffic policy (`spec.trafficPolicy.policy`, `.inline` or `.targetRef`)",
            ),
        }
        d.set_file(&doc.file);
        all.extend(d.items);
    }
    // ngrok always has its lists, so a policy that reads them expects them. A policy shared by
    // several endpoints is compiled, and reported, once per endpoint: once here.
    if ip_intel.is_empty() {
        for read in ip_intel_reads {
            let seen = |o: &Diagnostic| {
                o.file == read.file && o.path == read.path && o.message == read.message
            };
            if !all.iter().any(seen) {
                all.push(read);
            }
        }
    }
    if public.is_empty() && !all.iter().any(is_error) {
        all.push(Diagnostic {
            severity: crate::source::Severity::Error,
            code: None,
            file: None,
            pos: None,
            path: String::new(),
            message: "no public endpoint: give a CloudEndpoint manifest or a traffic policy file"
                .into(),
            hint: None,
            span: None,
        });
    }
    let hosts: Vec<&str> = public.iter().map(|p| p.host.as_str()).collect();
    for (i, h) in hosts.iter().enumerate() {
        if hosts[..i].contains(h) {
            all.push(Diagnostic {
                severity: crate::source::Severity::Error,
                code: Some("ERR_NGROK_334"),
                file: None,
                pos: None,
                path: String::new(),
                message: format!("two public endpoints serve host `{h}`"),
                hint: None,
                span: None,
            });
        }
    }
    if !ok || all.iter().any(is_error) {
        return (None, all);
    }
    let gateway = Gateway {
        version: version.to_string(),
        public,
        pools: pools.into_iter().collect(),
        secret_refs: crate::secrets::scan(docs.iter().map(|d| &d.node)),
        secrets: Default::default(),
        routing: Default::default(),
        ip_intel: std::sync::Arc::new(ip_intel),
    };
    (Some(gateway), all)
}

/// Compiles a policy found for an endpoint. Its diagnostics name the file the policy was written
/// in: the endpoint's own, or the NgrokTrafficPolicy's when it was referenced. Last, the
/// warnings that hold only without an IP-intelligence list.
fn compile_found(
    (node, path, source): (&Node, String, Option<String>),
    endpoint_file: &str,
    endpoint: &str,
    kind: EndpointKind,
    opts: Options,
    internal: &HashSet<String>,
    crs: Option<&std::sync::Arc<crate::waf::RuleSet>>,
) -> (
    Option<crate::program::Policy>,
    Vec<Diagnostic>,
    Vec<Diagnostic>,
) {
    let mut d = Diagnostics::default();
    let mut cx = Cx {
        diags: &mut d,
        strict: opts.strict,
        internal,
        endpoint,
        crs,
    };
    let policy = compile_policy(node, &path, kind, &mut cx);
    d.set_file(source.as_deref().unwrap_or(endpoint_file));
    (policy, d.items, d.ip_intel_reads)
}

/// `Kind namespace/name`: names an endpoint stably across policy versions.
fn endpoint_id(kind: &str, node: &Node) -> String {
    format!("{kind} {}/{}", namespace(node), name(node))
}

fn is_error(d: &Diagnostic) -> bool {
    d.severity == crate::source::Severity::Error
}

fn classify<'a>(doc: &'a SourceDoc, d: &mut Diagnostics) -> Option<Doc<'a>> {
    let node = &doc.node;
    if node.value == Value::Null {
        return None;
    }
    if node.as_map().is_none() {
        d.error(
            Some("ERR_NGROK_9026"),
            At::new("", node),
            format!("a document must be a map, not {}", node.kind()),
        );
        return None;
    }
    let Some(kind) = node.get("kind").and_then(Node::as_str) else {
        let is_policy = [
            "on_http_request",
            "on_http_response",
            "on_tcp_connect",
            "inbound",
            "outbound",
        ]
        .iter()
        .any(|k| node.get(k).is_some());
        if is_policy {
            return Some(Doc::Bare(doc));
        }
        d.error(
            Some("ERR_NGROK_9026"),
            At::new("", node),
            "neither a traffic policy (no `on_http_request` / `on_http_response`) nor a Kubernetes manifest (no `kind`)",
        );
        return None;
    };
    let api = node
        .get("apiVersion")
        .and_then(Node::as_str)
        .unwrap_or_default();
    let ngrok_api = API_VERSIONS.contains(&api);
    match kind {
        "CloudEndpoint" | "AgentEndpoint" | "NgrokTrafficPolicy" if !ngrok_api => {
            let at = node.get("apiVersion").unwrap_or(node);
            d.error(
                None,
                At::new("apiVersion", at),
                format!(
                    "unsupported apiVersion `{api}` for {kind}; expected one of {}",
                    API_VERSIONS.join(", ")
                ),
            );
            None
        }
        crate::ipintel::KIND if api == crate::ipintel::API_VERSION => Some(Doc::IpIntel(doc)),
        crate::ipintel::KIND => {
            let at = node.get("apiVersion").unwrap_or(node);
            d.error(
                None,
                At::new("apiVersion", at),
                format!(
                    "unsupported apiVersion `{api}` for {kind}; expected {}",
                    crate::ipintel::API_VERSION
                ),
            );
            None
        }
        crate::waf::document::KIND if api == crate::waf::document::API_VERSION => {
            Some(Doc::Crs(doc))
        }
        "CloudEndpoint" => Some(Doc::Cloud(doc)),
        "AgentEndpoint" => Some(Doc::Agent(doc)),
        "NgrokTrafficPolicy" => Some(Doc::Policy(doc)),
        other => {
            d.warning(
                None,
                At::new("kind", node),
                format!("ignored: `{other}` is not an ngrok endpoint or policy"),
            );
            None
        }
    }
}

fn meta<'a>(node: &'a Node, key: &str) -> Option<&'a Node> {
    node.get("metadata")?.get(key)
}

fn name(node: &Node) -> String {
    meta(node, "name")
        .and_then(Node::as_str)
        .unwrap_or("(unnamed)")
        .to_string()
}

fn namespace(node: &Node) -> String {
    meta(node, "namespace")
        .and_then(Node::as_str)
        .unwrap_or("default")
        .to_string()
}

fn annotation(node: &Node, key: &str) -> Option<String> {
    meta(node, "annotations")?
        .get(key)?
        .as_str()
        .map(str::to_string)
}

/// An AgentEndpoint's pool key and origin; diagnostics for anything that keeps it out.
fn agent_target(node: &Node, d: &mut Diagnostics) -> Option<(String, Origin)> {
    let Some(spec) = node.get("spec") else {
        d.error(
            Some("ERR_NGROK_2234"),
            At::new("", node),
            "an AgentEndpoint needs a `spec`",
        );
        return None;
    };
    let url = spec.get("url");
    let key = match url.and_then(Node::as_str) {
        Some(u) => match internal_key(u) {
            Ok(k) => Some(k),
            Err(e) => {
                let at = At::new("spec.url", url.unwrap_or(spec));
                d.error(Some("ERR_NGROK_9029"), at, format!("{e}: the Worker is the public endpoint, so agent endpoints must be internal"));
                None
            }
        },
        None => {
            d.error(
                Some("ERR_NGROK_2234"),
                At::new("spec.url", spec),
                "`spec.url` is required",
            );
            None
        }
    };
    let bindings: Vec<&str> = spec
        .get("bindings")
        .and_then(Node::as_seq)
        .unwrap_or_default()
        .iter()
        .filter_map(Node::as_str)
        .collect();
    if bindings != ["internal"] {
        let at = At::new("spec.bindings", spec.get("bindings").unwrap_or(spec));
        d.error(
            None,
            at,
            "an internal endpoint needs `spec.bindings: [internal]` as well as a `.internal` URL",
        );
    }
    let upstream = spec.get("upstream").and_then(|u| u.get("url"));
    let origin = match upstream.map(|u| {
        (
            u,
            u.as_str().map(str::to_string).or_else(|| match u.value {
                Value::Int(i) => Some(i.to_string()),
                _ => None,
            }),
        )
    }) {
        Some((u, Some(text))) => match Origin::parse(&text) {
            Ok(o) => Some(o),
            Err(e) => {
                d.error(Some("ERR_NGROK_2226"), At::new("spec.upstream.url", u), e);
                None
            }
        },
        _ => {
            d.error(
                Some("ERR_NGROK_2234"),
                At::new("spec.upstream.url", spec),
                "`spec.upstream.url` is required",
            );
            None
        }
    };
    if let Some(p) = spec.get("upstream").and_then(|u| u.get("protocol")) {
        if p.as_str() == Some("http2") {
            d.warning(
                None,
                At::new("spec.upstream.protocol", p),
                "`http2` is ignored: the Worker's fetch chooses the protocol",
            );
        }
    }
    if bindings != ["internal"] {
        return None;
    }
    Some((key?, origin?))
}

/// Finds an endpoint's policy node: inline (`policy` / `inline`) or by reference.
fn endpoint_policy<'a>(
    node: &'a Node,
    named: &HashMap<(String, String), &'a SourceDoc>,
    d: &mut Diagnostics,
) -> Option<(&'a Node, String, Option<String>)> {
    let spec = node.get("spec")?;
    let by_name = |n: &str, d: &mut Diagnostics, at: &Node, path: &str| match named
        .get(&(namespace(node), n.to_string()))
    {
        Some(doc) => match doc.node.get("spec").and_then(|s| s.get("policy")) {
            Some(p) => Some((p, "spec.policy".to_string(), Some(doc.file.clone()))),
            None => {
                d.error(
                    Some("ERR_NGROK_2234"),
                    At::new(path, at),
                    format!("NgrokTrafficPolicy `{n}` has no `spec.policy`"),
                );
                None
            }
        },
        None => {
            d.error(
                Some("ERR_NGROK_2234"),
                At::new(path, at),
                format!(
                    "no NgrokTrafficPolicy named `{n}` in namespace `{}`",
                    namespace(node)
                ),
            );
            None
        }
    };
    if let Some(tp) = spec.get("trafficPolicy") {
        for form in ["policy", "inline"] {
            if let Some(p) = tp.get(form) {
                return Some((p, child("spec.trafficPolicy", form), None));
            }
        }
        if let Some(r) = tp.get("targetRef").and_then(|t| t.get("name")) {
            return by_name(
                r.as_str().unwrap_or_default(),
                d,
                r,
                "spec.trafficPolicy.targetRef.name",
            );
        }
        d.error(
            Some("ERR_NGROK_2234"),
            At::new("spec.trafficPolicy", tp),
            "expected `policy`, `inline` or `targetRef`",
        );
        return None;
    }
    let r = spec.get("trafficPolicyName")?;
    by_name(
        r.as_str().unwrap_or_default(),
        d,
        r,
        "spec.trafficPolicyName",
    )
}

/// A CloudEndpoint's URL and the host it serves.
fn cloud_url(node: &Node, d: &mut Diagnostics) -> (String, String) {
    let url = node.get("spec").and_then(|s| s.get("url"));
    let text = url.and_then(Node::as_str).unwrap_or_default();
    let authority = text
        .split_once("://")
        .map_or(text, |(_, r)| r)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("");
    match crate::http::split_host_port(authority) {
        Some((host, _)) if !host.is_empty() => (text.to_string(), host),
        _ => {
            d.error(
                Some("ERR_NGROK_2226"),
                At::new("spec.url", url.unwrap_or(node)),
                format!("`{text}` is not an endpoint URL (https://host)"),
            );
            (text.to_string(), String::new())
        }
    }
}
