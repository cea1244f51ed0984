//! Action lists: `id:1,phase:2,block,t:none,msg:'a, b',setvar:'tx.x=+%{tx.y}',ctl:...`.

use super::error::Reason;
use super::macros::expand;
use super::targets::parse_exclusion;
use crate::waf::program::{
    BodyProcessor, Ctl, Disruptive, EngineMode, Expand, SetOp, SetVar, Severity, Transform,
};

/// One action as written: its name and its value, unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub value: Option<String>,
}

/// Splits an action list at the commas outside single quotes and unquotes the values
/// (`\'` is a quote and `\\` a backslash inside them; any other backslash is kept).
pub fn split(text: &str) -> Result<Vec<Item>, Reason> {
    let mut raw = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            '\'' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => raw.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if quoted {
        return Err(Reason::UnterminatedQuote);
    }
    raw.push(current);
    let mut items = Vec::new();
    for item in raw {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (name, value) = match item.split_once(':') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim()))),
            None => (item, None),
        };
        items.push(Item {
            name: name.to_string(),
            value,
        });
    }
    Ok(items)
}

fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) else {
        return value.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next_if(|n| *n == '\'' || *n == '\\') {
                out.push(next);
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// What one rule's actions say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActionSet {
    pub id: Option<u32>,
    pub phase: Option<u8>,
    pub msg: Option<Expand>,
    pub logdata: Option<Expand>,
    pub severity: Option<Severity>,
    pub tags: Vec<String>,
    pub log: Option<bool>,
    pub disruptive: Option<Disruptive>,
    pub skip_after: Option<String>,
    pub skip: Option<u32>,
    pub status: Option<u16>,
    pub capture: bool,
    pub multi_match: bool,
    pub chain: bool,
    /// `t:none` clears what came before it.
    pub transforms: Vec<Transform>,
    pub setvars: Vec<SetVar>,
    pub ctls: Vec<Ctl>,
    /// The actions present that only the first rule of a chain may carry.
    pub starter_only: Vec<String>,
}

/// The rule id, read before the rest so that every later error can name the rule.
pub fn id(items: &[Item]) -> Option<u32> {
    items
        .iter()
        .find(|i| i.name.eq_ignore_ascii_case("id"))
        .and_then(|i| i.value.as_deref())
        .and_then(|v| v.parse().ok())
}

impl ActionSet {
    pub fn from_items(items: &[Item]) -> Result<ActionSet, Reason> {
        let mut set = ActionSet::default();
        for item in items {
            set.apply(item)?;
        }
        Ok(set)
    }

    fn apply(&mut self, item: &Item) -> Result<(), Reason> {
        let name = item.name.to_ascii_lowercase();
        let value = item.value.as_deref();
        let bad = || Reason::BadActionValue {
            action: item.name.clone(),
            value: value.unwrap_or_default().to_string(),
        };
        let need = || value.ok_or_else(bad);
        let starter_only = matches!(
            name.as_str(),
            "id" | "phase"
                | "msg"
                | "logdata"
                | "severity"
                | "tag"
                | "log"
                | "nolog"
                | "pass"
                | "block"
                | "deny"
                | "drop"
                | "allow"
                | "skip"
                | "skipafter"
                | "status"
        );
        if starter_only {
            self.starter_only.push(item.name.clone());
        }
        match name.as_str() {
            "id" => {
                let id: u32 = need()?.parse().map_err(|_| bad())?;
                if id == 0 {
                    return Err(bad());
                }
                self.id = Some(id);
            }
            "phase" => {
                self.phase = Some(match need()?.to_ascii_lowercase().as_str() {
                    "1" => 1,
                    "2" | "request" => 2,
                    "3" => 3,
                    "4" | "response" => 4,
                    "5" | "logging" => 5,
                    _ => return Err(bad()),
                })
            }
            "msg" => self.msg = Some(expand(need()?)?),
            "logdata" => self.logdata = Some(expand(need()?)?),
            "severity" => self.severity = Some(severity(need()?).ok_or_else(bad)?),
            "tag" => self.tags.push(need()?.to_string()),
            "log" => self.log = Some(true),
            "nolog" => self.log = Some(false),
            // CRS runs in anomaly-scoring mode: its default action makes `block` a `pass`.
            "pass" | "block" => self.disruptive = Some(Disruptive::Pass),
            "deny" | "drop" => self.disruptive = Some(Disruptive::Deny),
            "allow" => {
                if value.is_some() {
                    return Err(Reason::Unsupported(format!(
                        "allow:{}",
                        value.unwrap_or_default()
                    )));
                }
                self.disruptive = Some(Disruptive::Allow)
            }
            "status" => self.status = Some(need()?.parse().map_err(|_| bad())?),
            "skip" => self.skip = Some(need()?.parse().map_err(|_| bad())?),
            "skipafter" => {
                let marker = need()?.trim();
                if marker.is_empty() {
                    return Err(bad());
                }
                self.skip_after = Some(marker.to_string());
            }
            "capture" => self.capture = true,
            "multimatch" => self.multi_match = true,
            "chain" => self.chain = true,
            "t" => {
                let t = need()?;
                if t.eq_ignore_ascii_case("none") {
                    self.transforms.clear();
                } else {
                    self.transforms
                        .push(transform(t).ok_or_else(|| Reason::UnknownTransform(t.into()))?);
                }
            }
            "setvar" => self.setvars.push(setvar(need()?)?),
            "ctl" => self.ctls.push(ctl(need()?)?),
            // Metadata, logging and persistence with no effect on a verdict here.
            "ver"
            | "rev"
            | "maturity"
            | "accuracy"
            | "auditlog"
            | "noauditlog"
            | "expirevar"
            | "initcol"
            | "setenv"
            | "setuid"
            | "setsid"
            | "sanitisematched"
            | "sanitisematchedbytes"
            | "sanitisearg"
            | "sanitiserequestheader"
            | "sanitiseresponseheader" => {}
            _ => return Err(Reason::UnknownAction(item.name.clone())),
        }
        Ok(())
    }
}

fn severity(value: &str) -> Option<Severity> {
    use Severity::*;
    Some(match value.trim().to_ascii_uppercase().as_str() {
        "0" | "EMERGENCY" => Emergency,
        "1" | "ALERT" => Alert,
        "2" | "CRITICAL" => Critical,
        "3" | "ERROR" => Error,
        "4" | "WARNING" => Warning,
        "5" | "NOTICE" => Notice,
        "6" | "INFO" => Info,
        "7" | "DEBUG" => Debug,
        _ => return None,
    })
}

pub fn transform(name: &str) -> Option<Transform> {
    use Transform::*;
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "base64decode" => Base64Decode,
        "base64decodeext" => Base64DecodeExt,
        "cmdline" => CmdLine,
        "compresswhitespace" => CompressWhitespace,
        "cssdecode" => CssDecode,
        "escapeseqdecode" => EscapeSeqDecode,
        "hexdecode" => HexDecode,
        "hexencode" => HexEncode,
        "htmlentitydecode" => HtmlEntityDecode,
        "jsdecode" => JsDecode,
        "length" => Length,
        "lowercase" => Lowercase,
        "normalizepath" | "normalisepath" => NormalizePath,
        "normalizepathwin" | "normalisepathwin" => NormalizePathWin,
        "removecomments" => RemoveComments,
        "removecommentschar" => RemoveCommentsChar,
        "removenulls" => RemoveNulls,
        "removewhitespace" => RemoveWhitespace,
        "replacecomments" => ReplaceComments,
        "replacenulls" => ReplaceNulls,
        "sha1" => Sha1,
        "trim" => Trim,
        "trimleft" => TrimLeft,
        "trimright" => TrimRight,
        "uppercase" => Uppercase,
        "urldecode" => UrlDecode,
        "urldecodeuni" => UrlDecodeUni,
        "urlencode" => UrlEncode,
        "utf8tounicode" => Utf8ToUnicode,
        _ => return None,
    })
}

/// `tx.name=value`, `tx.name=+n`, `tx.name=-n`, `!tx.name`.
fn setvar(value: &str) -> Result<SetVar, Reason> {
    let bad = || Reason::BadActionValue {
        action: "setvar".into(),
        value: value.to_string(),
    };
    let (delete, spec) = match value.trim().strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, value.trim()),
    };
    let (target, assigned) = match spec.split_once('=') {
        Some((t, v)) => (t.trim(), Some(v)),
        None => (spec, None),
    };
    let (coll, name) = target.split_once('.').ok_or_else(bad)?;
    if !coll.eq_ignore_ascii_case("tx") {
        return Err(Reason::Unsupported(format!("setvar on collection {coll}")));
    }
    if name.is_empty() {
        return Err(bad());
    }
    let name = expand(name)?;
    let op = match (delete, assigned) {
        (true, None) => SetOp::Delete,
        (false, Some(v)) => {
            if let Some(n) = v.strip_prefix('+') {
                SetOp::Add(expand(n)?)
            } else if let Some(n) = v.strip_prefix('-') {
                SetOp::Sub(expand(n)?)
            } else {
                SetOp::Set(expand(v)?)
            }
        }
        _ => return Err(bad()),
    };
    Ok(SetVar { name, op })
}

/// `ctl:name=value`.
fn ctl(value: &str) -> Result<Ctl, Reason> {
    let bad = || Reason::BadActionValue {
        action: "ctl".into(),
        value: value.to_string(),
    };
    let (name, arg) = value.split_once('=').ok_or_else(bad)?;
    let arg = arg.trim();
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "ruleremovebyid" => Ctl::RuleRemoveById(id_ranges(arg).ok_or_else(bad)?),
        "ruleremovebytag" => Ctl::RuleRemoveByTag(nonempty(arg).ok_or_else(bad)?),
        "ruleremovetargetbyid" => {
            let (ids, target) = arg.split_once(';').ok_or_else(bad)?;
            Ctl::RuleRemoveTargetById {
                ids: id_ranges(ids).ok_or_else(bad)?,
                target: parse_exclusion(target)?,
            }
        }
        "ruleremovetargetbytag" => {
            let (tag, target) = arg.split_once(';').ok_or_else(bad)?;
            Ctl::RuleRemoveTargetByTag {
                tag: nonempty(tag).ok_or_else(bad)?,
                target: parse_exclusion(target)?,
            }
        }
        "requestbodyprocessor" => {
            Ctl::RequestBodyProcessor(match arg.to_ascii_uppercase().as_str() {
                "URLENCODED" => BodyProcessor::UrlEncoded,
                "JSON" => BodyProcessor::Json,
                "MULTIPART" => BodyProcessor::Multipart,
                "XML" => BodyProcessor::Xml,
                _ => return Err(bad()),
            })
        }
        "forcerequestbodyvariable" => Ctl::ForceRequestBodyVariable(on_off(arg).ok_or_else(bad)?),
        "ruleengine" => Ctl::RuleEngine(match arg.to_ascii_lowercase().as_str() {
            "on" => EngineMode::On,
            "off" => EngineMode::Off,
            "detectiononly" => EngineMode::DetectionOnly,
            _ => return Err(bad()),
        }),
        "auditengine" | "auditlogparts" | "debugloglevel" => Ctl::Ignored,
        _ => return Err(Reason::Unsupported(format!("ctl:{name}"))),
    })
}

fn nonempty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn on_off(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// `920540`, `1-100`, several separated by spaces or commas.
pub fn id_ranges(text: &str) -> Option<Vec<(u32, u32)>> {
    let mut out = Vec::new();
    for item in text.split([' ', ',']).filter(|s| !s.is_empty()) {
        let range = match item.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let id = item.parse().ok()?;
                (id, id)
            }
        };
        if range.0 > range.1 {
            return None;
        }
        out.push(range);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waf::program::{Collection, Exclusion, Piece, Selector};

    fn set(text: &str) -> Result<ActionSet, Reason> {
        ActionSet::from_items(&split(text)?)
    }

    #[test]
    fn split_and_unquote() {
        let items = split("id:1, msg:'a, b \\'c\\' \\d',t:none,,nolog").expect("splits");
        assert_eq!(items.len(), 4);
        assert_eq!(items[1].value.as_deref(), Some("a, b 'c' \\d"));
        assert_eq!(items[3].value, None);
        assert_eq!(split("msg:'abc"), Err(Reason::UnterminatedQuote));
    }

    #[test]
    fn actions() {
        let a = set(
            "id:942100,phase:request,block,capture,t:lowercase,t:none,t:urlDecodeUni,\
             severity:'CRITICAL',tag:'paranoia-level/2',nolog,\
             setvar:'tx.a_%{tx.0}=+%{tx.critical_anomaly_score}',setvar:'!tx.b',\
             setvar:tx.c=-1,setvar:'tx.d=x y',ctl:ruleRemoveTargetById=1-3 9;ARGS:foo,\
             ctl:auditEngine=Off,ver:'x',skipAfter:END",
        )
        .expect("parses");
        assert_eq!(a.id, Some(942100));
        assert_eq!(a.phase, Some(2));
        assert_eq!(a.disruptive, Some(Disruptive::Pass));
        assert!(a.capture);
        assert_eq!(a.transforms, [Transform::UrlDecodeUni]);
        assert_eq!(a.severity, Some(Severity::Critical));
        assert_eq!(a.log, Some(false));
        assert_eq!(a.skip_after.as_deref(), Some("END"));
        assert_eq!(
            a.setvars[0],
            SetVar {
                name: Expand(vec![
                    Piece::Text("a_".into()),
                    Piece::Var(Collection::Tx, Some("0".into()))
                ]),
                op: SetOp::Add(Expand(vec![Piece::Var(
                    Collection::Tx,
                    Some("critical_anomaly_score".into())
                )])),
            }
        );
        assert_eq!(a.setvars[1].op, SetOp::Delete);
        assert_eq!(
            a.setvars[2].op,
            SetOp::Sub(Expand(vec![Piece::Text("1".into())]))
        );
        assert_eq!(
            a.setvars[3].op,
            SetOp::Set(Expand(vec![Piece::Text("x y".into())]))
        );
        assert_eq!(
            a.ctls,
            [
                Ctl::RuleRemoveTargetById {
                    ids: vec![(1, 3), (9, 9)],
                    target: Exclusion {
                        collection: Collection::Args,
                        selector: Selector::Key("foo".into())
                    }
                },
                Ctl::Ignored
            ]
        );
    }

    #[test]
    fn bad_actions() {
        assert_eq!(
            set("id:1,frobnicate"),
            Err(Reason::UnknownAction("frobnicate".into()))
        );
        assert_eq!(set("t:md5"), Err(Reason::UnknownTransform("md5".into())));
        assert!(matches!(set("phase:6"), Err(Reason::BadActionValue { .. })));
        assert!(matches!(set("id:x"), Err(Reason::BadActionValue { .. })));
        assert!(matches!(set("setvar:ip.x=1"), Err(Reason::Unsupported(_))));
        assert!(matches!(
            set("ctl:requestBodyAccess=On"),
            Err(Reason::Unsupported(_))
        ));
        assert!(matches!(
            set("severity:LOUD"),
            Err(Reason::BadActionValue { .. })
        ));
    }
}
