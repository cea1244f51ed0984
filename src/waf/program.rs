//! The compiled form of a SecLang rule set (OWASP CRS), the contract between the bundler and
//! the Worker.
//!
//! `policy-check` translates CRS's `.conf` files into a [`Program`] (native only: see
//! `waf::seclang`) and the bundle carries it as JSON. The Worker deserializes it, so it carries
//! neither a SecLang parser nor rule text, and a new CRS release is a policy upload. Everything
//! the parser can settle is settled here: macros are split into pieces, `@pmFromFile` lists are
//! inlined, `skipAfter` markers are resolved to rule indexes, paranoia levels are read from the
//! tags, and each regex carries the literals one of which any match must contain (its
//! prefilter), so the Worker compiles a regex only once a prefilter has fired.

use serde::{Deserialize, Serialize};

/// Bumped when the shape changes: a Worker refuses a program of another format.
pub const FORMAT: u32 = 1;

/// The compiled-size limit of one `Rx` regex (the `regex` crate's `size_limit`).
pub const RX_SIZE_LIMIT: usize = 10 << 20;

/// How every `Rx` pattern is compiled, by the SecLang compiler (to reject a pattern the Worker
/// could not run, and to derive its prefilter from the same syntax tree) and by the Worker: on
/// bytes, Unicode off (PCRE without UTF mode, as ModSecurity: `\w` and `(?i)` are ASCII). The
/// Worker adds ModSecurity v3's DOTALL and MULTILINE (`waf::operate`); neither changes which
/// literals a match must contain, so the prefilter holds for both.
pub fn rx_builder(pattern: &str) -> regex::bytes::RegexBuilder {
    let mut b = regex::bytes::RegexBuilder::new(pattern);
    b.unicode(false).size_limit(RX_SIZE_LIMIT);
    b
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub format: u32,
    /// CRS's own version string (`OWASP_CRS/4.28.0-dev`), from its component signature.
    pub crs_version: String,
    /// Every `SecRule`, `SecAction` and `SecMarker`, in load order.
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// 0 for a marker.
    pub id: u32,
    /// 1 request headers, 2 request body, 3 response headers, 4 response body, 5 logging; 0 for
    /// a marker, which belongs to every phase (as in ModSecurity).
    pub phase: u8,
    /// From the `paranoia-level/N` tag; 0 when the rule has none (it always runs).
    pub paranoia: u8,
    pub kind: RuleKind,
    pub msg: Option<Expand>,
    pub logdata: Option<Expand>,
    pub severity: Option<Severity>,
    pub tags: Vec<String>,
    /// `nolog`: a match is not reported (it still scores through `setvar`).
    pub log: bool,
    pub disruptive: Disruptive,
    /// `skipAfter`: the index in [`Program::rules`] of the named marker; evaluation resumes
    /// after it.
    pub skip_after: Option<u32>,
    /// `skip:N`: the next N rules are skipped.
    pub skip: u32,
    /// `status:N` for `deny`.
    pub status: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RuleKind {
    /// `SecMarker NAME`: a skip target, does nothing.
    Marker(String),
    /// `SecAction`: its actions run unconditionally.
    Action(Actions),
    /// `SecRule`, with its chained rules: every link must match.
    Match(Vec<Link>),
}

/// One `SecRule` of a chain (the first is the rule itself).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub targets: Vec<Target>,
    /// `!COLLECTION:selector` in the target list: these members are left out of every target.
    pub exclusions: Vec<Exclusion>,
    /// In order, after `t:none` reset the list.
    pub transforms: Vec<Transform>,
    pub operator: Operator,
    /// The actions this link contributes; run (in chain order) once the whole chain matched.
    pub actions: Actions,
    /// `capture`: the operator's captures are written to `TX:0`..`TX:9`.
    pub capture: bool,
    /// `multiMatch`: the operator is run after every transformation, not only the last.
    pub multi_match: bool,
}

/// Non-disruptive actions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Actions {
    pub setvars: Vec<SetVar>,
    pub ctls: Vec<Ctl>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    pub collection: Collection,
    pub selector: Selector,
    /// `&COLLECTION`: the number of members is the value.
    pub count: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Exclusion {
    pub collection: Collection,
    pub selector: Selector,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Selector {
    /// Every member.
    All,
    /// Members with this name (lowercased: names match without regard to case). For
    /// [`Collection::Xml`], an XPath expression as written (`/*`, `//@*`).
    Key(String),
    /// Members whose name the regex (`/.../`) matches; matched without regard to case
    /// ([`rx_builder`] with `case_insensitive`).
    Regex(String),
}

/// SecLang's variables: the ones CRS v4's request and response rules read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Collection {
    Args,
    ArgsNames,
    ArgsGet,
    ArgsGetNames,
    ArgsPost,
    ArgsPostNames,
    ArgsCombinedSize,
    Files,
    FilesNames,
    FilesSizes,
    FilesCombinedSize,
    MultipartPartHeaders,
    MultipartStrictError,
    MultipartUnmatchedBoundary,
    QueryString,
    RemoteAddr,
    ReqbodyError,
    ReqbodyProcessor,
    RequestBasename,
    RequestBody,
    RequestBodyLength,
    RequestCookies,
    RequestCookiesNames,
    RequestFilename,
    RequestHeaders,
    RequestHeadersNames,
    RequestLine,
    RequestMethod,
    RequestProtocol,
    RequestUri,
    RequestUriRaw,
    ResponseBody,
    ResponseContentType,
    ResponseHeaders,
    ResponseHeadersNames,
    ResponseProtocol,
    ResponseStatus,
    Tx,
    UniqueId,
    UrlencodedError,
    Xml,
    MatchedVar,
    MatchedVarName,
    MatchedVars,
    MatchedVarsNames,
    /// `%{rule.id}` and friends, only in macros.
    Rule,
}

/// A string with macros (`%{tx.anomaly_score}`), split when compiled.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Expand(pub Vec<Piece>);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Piece {
    Text(String),
    /// `%{COLLECTION.key}` (key lowercased) or `%{COLLECTION}`.
    Var(Collection, Option<String>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operator {
    pub negated: bool,
    pub kind: OperatorKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OperatorKind {
    Rx {
        /// For [`rx_builder`]: PCRE's byte escapes `\x{hh}` are already written `\xhh`.
        pattern: String,
        /// Lowercase literals one of which every match contains (after ASCII lowercasing of
        /// the value); `None` when no such set was found and the regex always runs.
        prefilter: Option<Vec<String>>,
    },
    /// `@pm` and `@pmFromFile` (the file's phrases inlined): case-insensitive phrases.
    Pm(Vec<String>),
    Eq(Expand),
    Ge(Expand),
    Gt(Expand),
    Le(Expand),
    Lt(Expand),
    StrEq(Expand),
    Contains(Expand),
    BeginsWith(Expand),
    EndsWith(Expand),
    /// ModSecurity's meaning: the value occurs in the expanded parameter (CRS writes the
    /// parameter as delimited words, `|GET| |POST|`, or space-separated ones).
    Within(Expand),
    /// Ranges of allowed bytes; a value with any other byte matches.
    ValidateByteRange(Vec<(u8, u8)>),
    ValidateUrlEncoding,
    ValidateUtf8Encoding,
    /// Addresses and CIDR ranges.
    IpMatch(Vec<String>),
    DetectSqli,
    DetectXss,
    UnconditionalMatch,
    NoMatch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Transform {
    Base64Decode,
    Base64DecodeExt,
    CmdLine,
    CompressWhitespace,
    CssDecode,
    EscapeSeqDecode,
    HexDecode,
    HexEncode,
    HtmlEntityDecode,
    JsDecode,
    Length,
    Lowercase,
    NormalizePath,
    NormalizePathWin,
    RemoveComments,
    RemoveCommentsChar,
    RemoveNulls,
    RemoveWhitespace,
    ReplaceComments,
    ReplaceNulls,
    Sha1,
    Trim,
    TrimLeft,
    TrimRight,
    Uppercase,
    UrlDecode,
    UrlDecodeUni,
    UrlEncode,
    Utf8ToUnicode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Disruptive {
    /// `pass` and `block` (CRS runs in anomaly-scoring mode: `block` is the default action,
    /// `pass`).
    Pass,
    /// `deny` / `drop`: the transaction is refused.
    Deny,
    /// `allow`: the rest of the phase (and of the transaction's inspection) is skipped.
    Allow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Info,
    Debug,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetVar {
    /// The key in `TX` (the `tx.` prefix is dropped); lowercased after expansion. Only `tx` is
    /// supported (CRS v4's request and response rules write nothing else).
    pub name: Expand,
    pub op: SetOp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SetOp {
    Set(Expand),
    Add(Expand),
    Sub(Expand),
    Delete,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Ctl {
    RuleRemoveById(Vec<(u32, u32)>),
    RuleRemoveByTag(String),
    RuleRemoveTargetById {
        ids: Vec<(u32, u32)>,
        target: Exclusion,
    },
    RuleRemoveTargetByTag {
        tag: String,
        target: Exclusion,
    },
    RequestBodyProcessor(BodyProcessor),
    ForceRequestBodyVariable(bool),
    /// `ctl:ruleEngine=Off|DetectionOnly`: the rest is not enforced.
    RuleEngine(EngineMode),
    /// Controls with no effect here (`auditEngine`, `auditLogParts`).
    Ignored,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BodyProcessor {
    UrlEncoded,
    Json,
    Multipart,
    Xml,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EngineMode {
    On,
    DetectionOnly,
    Off,
}
