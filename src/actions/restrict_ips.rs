//! `restrict-ips`: allow and deny lists of CIDR ranges, matched on the platform's client address
//! (`CF-Connecting-IP`), never on `X-Forwarded-For`.
//!
//! Literal ranges are compiled once into an [`IpSet`]; entries with `${...}` are rendered per
//! request. A deny match always wins; with an allow list, an address must also match it; with only
//! a deny list, every other address is allowed.

use crate::exchange::Context;
use super::spec::{ActionSpec, ActionType, TCP, REQ, RES};
use super::ConfigShape::{Any, Interpolated, Fields, ListOf};
use crate::actions::config::Config;
use crate::actions::config::{BAD_CONFIG, MISSING};
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::Step;
use crate::expr::Template;
use crate::ipset::IpSet;
use crate::source::Node;

const BAD_CIDR: Option<&str> = Some("ERR_NGROK_2217");

#[derive(Debug, Default)]
struct List {
    fixed: IpSet,
    dynamic: Vec<Template>,
}

impl ActionType for RestrictIps {
    const SPEC: ActionSpec = ActionSpec {
        name: "restrict-ips",
        // The hub says request only; the action's page adds on_http_response (CONFLICT §4.1).
        phases: &[TCP, REQ, RES],
        terminating: false,
        results: Some("restrict_ips"),
        config: Fields(&[
            ("enforce", Any),
            ("allow", ListOf(&Interpolated)),
            ("deny", ListOf(&Interpolated)),
            ("ip_policies", Any),
        ]),
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<RestrictIps> {
        let mut c = Config::new(config, path, cx.diags);
        let allow = list(&mut c, "allow");
        let deny = list(&mut c, "deny");
        let enforce = c.bool("enforce", true);
        if let Some(n) = c.field("ip_policies") {
            let msg = "`ip_policies` name ngrok IP Policy objects, which live in ngrok's cloud: \
                       list their ranges in `allow` / `deny` instead"
                .to_string();
            c.error_at(BAD_CONFIG, "ip_policies", n, msg);
        }
        let (allow, deny) = (allow?, deny?);
        if allow.is_empty() && deny.is_empty() {
            let node = config;
            if let Some(n) = node {
                c.error_at(MISSING, "allow", n, "give `allow`, `deny` or both".into());
            } else {
                c.missing("allow");
            }
        }
        c.finish();
        Some(RestrictIps {
            allow,
            deny,
            enforce,
        })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, _: &C) -> Result<Step, GatewayError> {
        let ip = ex.req.client_ip;
        let looked_up = self.deny.lookup(ex, ip).and_then(|denied| match denied {
            Some(range) => Ok((false, Some(range))),
            None if self.allow.is_empty() => Ok((true, None)),
            None => Ok(match self.allow.lookup(ex, ip)? {
                Some(range) => (true, Some(range)),
                None => (false, None),
            }),
        });
        let (allowed, matched) = match looked_up {
            Ok(found) => found,
            // An error ends the request (enforced or not); the results say why.
            Err(e) => {
                ex.set_outcome("restrict_ips", Vec::new(), Some(&e));
                return Err(e);
            }
        };
        let action = if allowed { "allow" } else { "deny" };
        let mut fields = vec![("action", cel::Value::from(action))];
        if let Some(range) = &matched {
            fields.push(("matched_cidr", cel::Value::from(range.as_str())));
        }
        ex.set_result("restrict_ips", fields);
        if !allowed && self.enforce {
            return Err(GatewayError::IpRestricted { ip, matched });
        }
        Ok(Step::Continue)
    }
}

impl List {
    fn is_empty(&self) -> bool {
        self.fixed.is_empty() && self.dynamic.is_empty()
    }

    /// The range that matches `ip`, if any (rendered entries that are not ranges never match).
    fn lookup(
        &self,
        ex: &mut Exchange,
        ip: std::net::IpAddr,
    ) -> Result<Option<String>, GatewayError> {
        if let Some(hit) = self.fixed.lookup(ip) {
            return Ok(Some(hit.to_string()));
        }
        for t in &self.dynamic {
            let text = ex.render(t, "restrict-ips", "allow/deny")?;
            let mut one = IpSet::default();
            if one.insert(&text).is_ok() && one.lookup(ip).is_some() {
                return Ok(Some(text));
            }
        }
        Ok(None)
    }
}

#[derive(Debug)]
pub struct RestrictIps {
    allow: List,
    deny: List,
    enforce: bool,
}


/// Reads `allow` or `deny`: literal ranges into the set, `${...}` entries as templates.
fn list(c: &mut Config<'_, '_>, key: &'static str) -> Option<List> {
    let mut out = List::default();
    let Some(node) = c.field(key) else {
        return Some(out);
    };
    let Some(items) = node.as_seq() else {
        c.wrong_type(key, node, "a list of CIDR ranges");
        return None;
    };
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let entry = format!("{key}[{i}]");
        let Some(text) = item.as_str() else {
            c.error_at(
                BAD_CIDR,
                &entry,
                item,
                "a range must be a string such as `192.0.2.0/24`".into(),
            );
            ok = false;
            continue;
        };
        if text.contains("${") {
            match c.template(key, item, text) {
                Some(t) => out.dynamic.push(t),
                None => ok = false,
            }
        } else if let Err(e) = out.fixed.insert(text) {
            c.error_at(BAD_CIDR, &entry, item, e);
            ok = false;
        }
    }
    ok.then_some(out)
}
