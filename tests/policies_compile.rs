//! The shipped policies: the Acme gateway compiles cleanly; ngrok's published seed policies load
//! with `ERR_NGROK_9026` warnings and are rejected under `--strict`.

mod support;

use edge_gateway::files;
use edge_gateway::manifest::{build_gateway, Options};
use edge_gateway::source::{Diagnostic, Severity};
use std::path::PathBuf;

/// Checks files as `policy-check check` does: with the shipped IP-intelligence list unless they
/// carry their own.
fn check(paths: &[&str], strict: bool) -> (bool, Vec<Diagnostic>) {
    let root = support::scenario::repo_root();
    let paths: Vec<PathBuf> = paths.iter().map(|p| root.join(p)).collect();
    let (mut docs, mut diags) = files::load(&files::expand(&paths).unwrap());
    files::with_ip_intel(&mut docs, false);
    let (gw, more) = build_gateway(&docs, Options { strict }, "t");
    diags.extend(more);
    (gw.is_some(), diags)
}

const AGENTS: [&str; 2] = ["policies/acme/eks.yaml", "policies/acme/gke.yaml"];

#[test]
fn acme_compiles_with_only_the_guides_rate_warning() {
    let (ok, diags) = check(&["policies/acme"], false);
    assert!(ok, "{diags:#?}");
    let codes: Vec<_> = diags.iter().map(|d| (d.severity, d.code)).collect();
    assert_eq!(
        codes,
        vec![(Severity::Warning, Some("ERR_NGROK_2215"))],
        "{diags:#?}"
    );
    let (ok, diags) = check(&["policies/acme"], true);
    assert!(!ok, "--strict refuses the guide's `rate: 1s`");
    assert!(
        diags.iter().all(|d| d.code == Some("ERR_NGROK_2215")),
        "{diags:#?}"
    );
}

#[test]
fn acme_declares_four_pools_of_two() {
    let root = support::scenario::repo_root();
    let (docs, _) = files::load(&files::expand(&[root.join("policies/acme")]).unwrap());
    let gw = build_gateway(&docs, Options::default(), "t").0.unwrap();
    let mut pools: Vec<(String, usize)> = gw
        .pools
        .values()
        .map(|p| (p.url.clone(), p.members.len()))
        .collect();
    pools.sort();
    let want = ["catalog-eks", "inventory-gke", "orders-eks", "webhook-gke"];
    assert_eq!(
        pools,
        want.map(|n| (format!("https://{n}.internal"), 2)).to_vec()
    );
}

#[test]
fn seed_policies_load_with_warnings_and_strict_rejects_them() {
    for seed in [
        "policies/reference/multicloud-routing.yaml",
        "policies/reference/multicloud-full.yaml",
    ] {
        let paths = [seed, AGENTS[0], AGENTS[1]];
        let (ok, diags) = check(&paths, false);
        assert!(ok, "{seed} must load: {diags:#?}");
        let normalised = diags
            .iter()
            .filter(|d| d.code == Some("ERR_NGROK_9026"))
            .count();
        assert!(normalised >= 1, "{seed}: a 9026 warning is expected");
        assert!(
            diags.iter().all(|d| d.severity == Severity::Warning),
            "{diags:#?}"
        );

        let (ok, diags) = check(&paths, true);
        assert!(!ok, "{seed} must be rejected under --strict");
        let first = diags
            .iter()
            .find(|d| d.severity == Severity::Error)
            .unwrap();
        assert_eq!(first.code, Some("ERR_NGROK_9026"));
        assert!(
            first
                .message
                .contains("received invalid value of type 'map' for traffic policy rule array"),
            "{first}"
        );
        assert_eq!(first.pos.map(|p| p.line), Some(2));
    }
}

#[test]
fn full_seed_policy_normalises_into_the_canonical_rules() {
    let paths = [
        "policies/reference/multicloud-full.yaml",
        AGENTS[0],
        AGENTS[1],
    ];
    let root = support::scenario::repo_root();
    let paths: Vec<PathBuf> = paths.iter().map(|p| root.join(p)).collect();
    let (docs, _) = files::load(&files::expand(&paths).unwrap());
    let gw = build_gateway(&docs, Options::default(), "t").0.unwrap();
    let policy = &gw.public[0].policy;
    // §1.5: [rate-limit, owasp] / [deny if category] / [forward-internal]; response: [owasp].
    let shape: Vec<(usize, usize)> = policy
        .on_http_request
        .iter()
        .map(|r| (r.expressions.len(), r.actions.len()))
        .collect();
    assert_eq!(shape, vec![(0, 2), (1, 1), (0, 1)]);
    assert_eq!(policy.on_http_response.len(), 1);
}

/// The shipped IP-intelligence lists load beside the Acme gateway without a new diagnostic, and
/// a bad range in such a list is an error that names its place.
#[test]
fn ip_intelligence_lists_load_and_bad_ranges_are_errors() {
    let (ok, diags) = check(&["policies/acme", "policies/ip-intel"], false);
    assert!(ok, "{diags:#?}");
    assert!(
        diags.iter().all(|d| d.code == Some("ERR_NGROK_2215")),
        "{diags:#?}"
    );
    let yaml = "apiVersion: edge-gateway.dev/v1\nkind: IPIntelligence\nmetadata: {name: x}\nspec:\n  ranges:\n    - category: com.example\n      cidrs: [10.0.0.0/8, 10.0.0.300/32]\n---\non_http_request:\n  - actions: [{type: deny}]\n";
    let docs: Vec<_> = edge_gateway::source::parse_yaml_documents(yaml)
        .unwrap()
        .into_iter()
        .map(|node| edge_gateway::manifest::SourceDoc {
            file: "intel.yaml".into(),
            node,
        })
        .collect();
    let (gw, diags) = build_gateway(&docs, Options::default(), "t");
    assert!(gw.is_none());
    assert!(
        diags.iter().any(|d| d.severity == Severity::Error
            && d.path == "spec.ranges[0].cidrs[1]"
            && d.message.contains("10.0.0.300/32")),
        "{diags:#?}"
    );
}

/// The shipped list is every provider-published list in policies/ip-intel (each range's
/// `source` a URL), embedded as the file is; the documentation-range examples are not in it.
#[test]
fn the_shipped_ip_intelligence_list_is_the_published_files() {
    let root = support::scenario::repo_root();
    let found = files::expand(&[root.join("policies/ip-intel")]).unwrap();
    let mut published = Vec::new();
    for path in &found {
        let text = std::fs::read_to_string(path).unwrap();
        let doc = edge_gateway::source::parse_yaml_documents(&text)
            .unwrap()
            .remove(0);
        let ranges = doc.get("spec").unwrap().get("ranges").unwrap();
        let from_urls = ranges.as_seq().unwrap().iter().all(|r| {
            r.get("source")
                .and_then(|s| s.as_str())
                .is_some_and(|s| s.starts_with("https://"))
        });
        let rel = path.strip_prefix(&root).unwrap().display().to_string();
        if from_urls {
            published.push(rel.clone());
        }
        let shipped = files::SHIPPED_IP_INTEL.iter().find(|(f, _)| *f == rel);
        assert_eq!(shipped.is_some(), from_urls, "{rel}");
        if let Some((_, embedded)) = shipped {
            assert_eq!(*embedded, text, "{rel} is embedded as it is on disk");
        }
    }
    assert_eq!(published, vec!["policies/ip-intel/openai.yaml"]);
}

fn policy_check(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_policy-check"))
        .current_dir(support::scenario::repo_root())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The categories an address has in a bundle policy-check wrote.
fn categories_in(bundle: &std::path::Path, ip: &str) -> Vec<String> {
    let text = std::fs::read_to_string(bundle).unwrap();
    let gw = edge_gateway::bundle::load(&text).unwrap();
    gw.ip_intel
        .lookup(ip.parse().unwrap())
        .categories
        .iter()
        .map(|c| c.to_string())
        .collect()
}

/// `policy-check bundle` (what upload-policy.sh and dev.sh run) packs the shipped list with
/// policies/acme alone; IPIntelligence documents given replace it; `--no-ip-intel` leaves it
/// out, and then the Acme bot rule is warned about where it reads the categories.
#[test]
fn bundles_carry_the_shipped_list_unless_replaced_or_left_out() {
    let dir = std::env::temp_dir().join(format!("eg-ip-intel-bundle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("bundle.json");
    let out_s = out.display().to_string();
    let gptbot = "20.171.206.7";

    let (ok, err) = policy_check(&["bundle", "--out", &out_s, "policies/acme"]);
    assert!(ok, "{err}");
    assert!(err.contains("the shipped list"), "{err}");
    assert!(!err.contains("no IP-intelligence list"), "{err}");
    assert!(
        categories_in(&out, gptbot).contains(&"com.openai".to_string()),
        "{:?}",
        categories_in(&out, gptbot)
    );

    let own = dir.join("own.yaml");
    std::fs::write(
        &own,
        "apiVersion: edge-gateway.dev/v1\nkind: IPIntelligence\nmetadata: {name: own}\nspec:\n  ranges:\n    - {category: org.example.bot, cidrs: [203.0.113.0/28]}\n",
    )
    .unwrap();
    let (ok, err) = policy_check(&[
        "bundle",
        "--out",
        &out_s,
        "policies/acme",
        &own.display().to_string(),
    ]);
    assert!(ok, "{err}");
    assert!(
        categories_in(&out, gptbot).is_empty(),
        "replaced, not added to"
    );
    assert!(categories_in(&out, "203.0.113.1").contains(&"org.example".to_string()));

    let (ok, err) = policy_check(&["bundle", "--no-ip-intel", "--out", &out_s, "policies/acme"]);
    assert!(ok, "a warning, not an error: {err}");
    assert!(categories_in(&out, gptbot).is_empty());
    assert!(
        err.contains("`conn.client_ip.categories` is `[]` for every client here")
            && err.contains("policies/acme/cloud-endpoint.yaml:45:15"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn inline(yaml: &str) -> Vec<edge_gateway::manifest::SourceDoc> {
    edge_gateway::source::parse_yaml_documents(yaml)
        .unwrap()
        .into_iter()
        .map(|node| edge_gateway::manifest::SourceDoc {
            file: "p.yaml".into(),
            node,
        })
        .collect()
}

/// "severity code line:col path" of each diagnostic (the compile_errors.yaml form).
fn lines(diags: &[Diagnostic]) -> Vec<String> {
    diags.iter().map(support::diag::line).collect()
}

/// Each read of an IP-intelligence variable, in expressions, `${}` and bucket keys, in a
/// nested rule too, is warned about once at its place when the bundle has no list; a string
/// that only mentions one is not; with a list there is nothing to say.
#[test]
fn reading_ip_intelligence_without_a_list_is_warned_where_it_is_read() {
    let policy = r#"on_http_request:
  - expressions: ["'com.openai' in conn.client_ip.categories", "conn.client_ip.is_tor_node || conn.client_ip.is_tor_node"]
    actions:
      - type: add-headers
        config:
          headers:
            x-blocklisted: "${conn.client_ip.is_on_blocklist}"
            x-mention: "${'conn.client_ip.categories'}"
      - type: rate-limit
        config: {name: n, algorithm: sliding_window, capacity: 10, rate: 60s, bucket_key: ["conn.client_ip.categories.size()"]}
  - actions:
      - expressions: ["has(conn.client_ip.is_on_blocklist)"]
        actions: [{type: deny}]
      - type: deny
"#;
    let (gw, diags) = build_gateway(&inline(policy), Options::default(), "t");
    assert!(gw.is_some(), "{diags:#?}");
    let got: Vec<String> = lines(&diags)
        .into_iter()
        .filter(|l| !l.contains("ERR_NGROK_9026"))
        .collect();
    assert_eq!(
        got,
        vec![
            "warning - 2:19 on_http_request[0].expressions[0]",
            "warning - 2:64 on_http_request[0].expressions[1]",
            "warning - 7:28 on_http_request[0].actions[0].config.headers.x-blocklisted",
            "warning - 10:92 on_http_request[0].actions[1].config.bucket_key[0]",
            "warning - 12:23 on_http_request[1].actions[0].expressions[0]",
        ],
        "{diags:#?}"
    );
    assert!(diags.iter().any(|d| d
        .message
        .contains("`conn.client_ip.is_tor_node` is `false`")));

    let list = "---\napiVersion: edge-gateway.dev/v1\nkind: IPIntelligence\nmetadata: {name: l}\nspec:\n  ranges: [{category: com.openai.gptbot, cidrs: [192.0.2.0/24]}]\n";
    let (gw, diags) = build_gateway(&inline(&format!("{policy}{list}")), Options::default(), "t");
    assert!(gw.is_some());
    assert!(
        diags.iter().all(|d| d.code == Some("ERR_NGROK_9026")),
        "{diags:#?}"
    );
}

/// Platform differences the checker names where a policy depends on them: `add-headers` of
/// `host` on a request never reaches the upstream (in a map-shaped phase and a nested rule
/// too, on any endpoint); a `compress-response` under expressions cannot keep Cloudflare from
/// compressing what it does not match. Response headers named `host`, another header, and an
/// unconditional `compress-response` are not warned about.
#[test]
fn platform_differences_are_warned_where_a_policy_depends_on_them() {
    let policy = r#"on_http_request:
  - actions:
      - type: add-headers
        config: {headers: {Host: "api.acme.example", x-host: "${req.host}"}}
      - expressions: ["req.url.path == '/a'"]
        actions:
          - type: add-headers
            config: {headers: {host: "${req.host}"}}
  - actions: [{type: deny}]
on_http_response:
  - actions:
      - type: add-headers
        config: {headers: {host: x}}
      - type: compress-response
  - expressions: ["res.status_code == 200"]
    actions:
      - type: compress-response
        config: {algorithms: [gzip, br]}
"#;
    let (gw, diags) = build_gateway(&inline(policy), Options::default(), "t");
    assert!(gw.is_some(), "{diags:#?}");
    assert_eq!(
        lines(&diags)
            .into_iter()
            .filter(|l| !l.contains("ERR_NGROK_9026"))
            .collect::<Vec<_>>(),
        vec![
            "warning - 4:34 on_http_request[0].actions[0].config.headers.Host",
            "warning - 8:38 on_http_request[0].actions[1].actions[0].config.headers.host",
            "warning - 17:15 on_http_response[1].actions[0]",
        ],
        "{diags:#?}"
    );
    let host = diags
        .iter()
        .find(|d| d.path.ends_with("headers.Host"))
        .unwrap();
    assert!(
        host.message.contains("does not reach the upstream")
            && host.hint.as_deref().unwrap().contains("X-Forwarded-Host"),
        "{host:#?}"
    );

    // On an AgentEndpoint's own policy too; and its upstream's `protocol: http2` is not
    // honoured (the Worker's fetch chooses).
    let agent = r#"apiVersion: ngrok.k8s.ngrok.com/v1alpha1
kind: AgentEndpoint
metadata: {name: a}
spec:
  url: https://a.internal
  bindings: [internal]
  upstream: {url: "https://a.tunnel.example", protocol: http2}
  trafficPolicy:
    policy:
      on_http_request:
        - actions: [{type: add-headers, config: {headers: {host: public.example}}}]
---
on_http_request:
  - actions: [{type: forward-internal, config: {url: "https://a.internal"}}]
"#;
    let (gw, diags) = build_gateway(&inline(agent), Options::default(), "t");
    assert!(gw.is_some(), "{diags:#?}");
    assert_eq!(
        lines(&diags),
        vec![
            "warning - 7:57 spec.upstream.protocol",
            "warning - 11:66 spec.trafficPolicy.policy.on_http_request[0].actions[0].config.headers.host",
        ],
        "{diags:#?}"
    );
}

/// A variable ngrok fills that a Worker is never told fails its rule on every request: warned
/// at each read, below it too; an expression that tests it with `has()` is written for its
/// absence and is left alone; a neighbour with a similar name is not confused with it.
#[test]
fn variables_a_worker_is_never_told_are_warned_where_read() {
    let policy = r#"on_http_request:
  - expressions:
      - "conn.client_port > 1024"
      - "has(conn.client_port) && conn.client_port > 1024"
      - "conn.tls.client.san.dns_names.exists(n, n.endsWith('.acme.example'))"
      - "conn.server_region == 'FRA'"
    actions:
      - type: custom-response
        config: {body: "${conn.tls.server.subject.common_name}"}
  - actions: [{type: deny}]
"#;
    let (gw, diags) = build_gateway(&inline(policy), Options::default(), "t");
    assert!(gw.is_some(), "{diags:#?}");
    assert_eq!(
        lines(&diags),
        vec![
            "warning - 3:9 on_http_request[0].expressions[0]",
            "warning - 5:9 on_http_request[0].expressions[2]",
            "warning - 9:24 on_http_request[0].actions[0].config.body",
        ],
        "{diags:#?}"
    );
    assert!(
        diags[0].message.contains(
            "`conn.client_port` is documented by ngrok, but a Cloudflare Worker cannot know it"
        ),
        "{diags:#?}"
    );
    assert!(diags[1].message.contains("`conn.tls.client.san`"));
}
