//! Variables: SecLang's names for [`Collection`]s, and target lists
//! (`A|B|!C:foo|&TX:x|ARGS:/regex/|XML:/*`).

use super::error::Reason;
use super::pcre::byte_escapes;
use crate::waf::program::{self, Collection, Exclusion, Selector, Target};

/// The collection a SecLang variable name (any case) stands for.
pub fn collection(name: &str) -> Option<Collection> {
    use Collection::*;
    let c = match name.to_ascii_uppercase().as_str() {
        "ARGS" => Args,
        "ARGS_NAMES" => ArgsNames,
        "ARGS_GET" => ArgsGet,
        "ARGS_GET_NAMES" => ArgsGetNames,
        "ARGS_POST" => ArgsPost,
        "ARGS_POST_NAMES" => ArgsPostNames,
        "ARGS_COMBINED_SIZE" => ArgsCombinedSize,
        "FILES" => Files,
        "FILES_NAMES" => FilesNames,
        "FILES_SIZES" => FilesSizes,
        "FILES_COMBINED_SIZE" => FilesCombinedSize,
        "MULTIPART_PART_HEADERS" => MultipartPartHeaders,
        "MULTIPART_STRICT_ERROR" => MultipartStrictError,
        "MULTIPART_UNMATCHED_BOUNDARY" => MultipartUnmatchedBoundary,
        "QUERY_STRING" => QueryString,
        "REMOTE_ADDR" => RemoteAddr,
        "REQBODY_ERROR" => ReqbodyError,
        "REQBODY_PROCESSOR" => ReqbodyProcessor,
        "REQUEST_BASENAME" => RequestBasename,
        "REQUEST_BODY" => RequestBody,
        "REQUEST_BODY_LENGTH" => RequestBodyLength,
        "REQUEST_COOKIES" => RequestCookies,
        "REQUEST_COOKIES_NAMES" => RequestCookiesNames,
        "REQUEST_FILENAME" => RequestFilename,
        "REQUEST_HEADERS" => RequestHeaders,
        "REQUEST_HEADERS_NAMES" => RequestHeadersNames,
        "REQUEST_LINE" => RequestLine,
        "REQUEST_METHOD" => RequestMethod,
        "REQUEST_PROTOCOL" => RequestProtocol,
        "REQUEST_URI" => RequestUri,
        "REQUEST_URI_RAW" => RequestUriRaw,
        "RESPONSE_BODY" => ResponseBody,
        "RESPONSE_CONTENT_TYPE" => ResponseContentType,
        "RESPONSE_HEADERS" => ResponseHeaders,
        "RESPONSE_HEADERS_NAMES" => ResponseHeadersNames,
        "RESPONSE_PROTOCOL" => ResponseProtocol,
        "RESPONSE_STATUS" => ResponseStatus,
        "TX" => Tx,
        "UNIQUE_ID" => UniqueId,
        "URLENCODED_ERROR" => UrlencodedError,
        "XML" => Xml,
        "MATCHED_VAR" => MatchedVar,
        "MATCHED_VAR_NAME" => MatchedVarName,
        "MATCHED_VARS" => MatchedVars,
        "MATCHED_VARS_NAMES" => MatchedVarsNames,
        "RULE" => Rule,
        _ => return None,
    };
    Some(c)
}

/// Whether the variable has named members (so a `:selector` means something).
fn has_members(c: Collection) -> bool {
    use Collection::*;
    matches!(
        c,
        Args | ArgsNames
            | ArgsGet
            | ArgsGetNames
            | ArgsPost
            | ArgsPostNames
            | Files
            | FilesNames
            | FilesSizes
            | MultipartPartHeaders
            | RequestCookies
            | RequestCookiesNames
            | RequestHeaders
            | RequestHeadersNames
            | ResponseHeaders
            | ResponseHeadersNames
            | Tx
            | Xml
            | MatchedVars
            | MatchedVarsNames
    )
}

/// One parsed element of a target list.
struct Element {
    exclude: bool,
    count: bool,
    collection: Collection,
    selector: Selector,
}

/// Parses a rule's target list into the targets and the exclusions (at least one target).
pub fn parse(list: &str) -> Result<(Vec<Target>, Vec<Exclusion>), Reason> {
    let (targets, exclusions) = parse_update(list)?;
    if targets.is_empty() {
        return Err(Reason::BadVariable(list.to_string()));
    }
    Ok((targets, exclusions))
}

/// Parses a target list that may hold only exclusions (`SecRuleUpdateTargetById`'s).
pub fn parse_update(list: &str) -> Result<(Vec<Target>, Vec<Exclusion>), Reason> {
    let mut targets = Vec::new();
    let mut exclusions = Vec::new();
    let mut rest = list.trim();
    if rest.is_empty() {
        return Err(Reason::BadVariable(list.to_string()));
    }
    loop {
        let (element, tail) = element(rest)?;
        if element.exclude {
            exclusions.push(Exclusion {
                collection: element.collection,
                selector: element.selector,
            });
        } else {
            targets.push(Target {
                collection: element.collection,
                selector: element.selector,
                count: element.count,
            });
        }
        match tail.strip_prefix('|') {
            Some(t) => rest = t.trim_start(),
            None if tail.trim().is_empty() => break,
            None => return Err(Reason::BadVariable(tail.to_string())),
        }
    }
    Ok((targets, exclusions))
}

/// Parses one variable named by a `ctl:ruleRemoveTarget*` or written `!VAR:sel` (the `!` is
/// optional here).
pub fn parse_exclusion(text: &str) -> Result<Exclusion, Reason> {
    let text = text.trim();
    let (element, tail) = element(text)?;
    if !tail.trim().is_empty() || element.count {
        return Err(Reason::BadVariable(text.to_string()));
    }
    Ok(Exclusion {
        collection: element.collection,
        selector: element.selector,
    })
}

/// Reads one element from the start of `s`; returns it and what follows it.
fn element(s: &str) -> Result<(Element, &str), Reason> {
    let mut rest = s;
    let exclude = match rest.strip_prefix('!') {
        Some(r) => {
            rest = r;
            true
        }
        None => false,
    };
    let count = match rest.strip_prefix('&') {
        Some(r) => {
            rest = r;
            true
        }
        None => false,
    };
    let name_end = rest.find([':', '|']).unwrap_or(rest.len());
    let (name, after) = rest.split_at(name_end);
    let name = name.trim();
    let collection = collection(name)
        .filter(|c| *c != Collection::Rule)
        .ok_or_else(|| Reason::UnknownVariable(name.to_string()))?;
    let Some(after) = after.strip_prefix(':') else {
        return Ok((
            Element {
                exclude,
                count,
                collection,
                selector: Selector::All,
            },
            after,
        ));
    };
    if !has_members(collection) {
        return Err(Reason::BadVariable(format!(
            "{name} has no members to select"
        )));
    }
    let (selector, tail) = if collection == Collection::Xml {
        // An XPath expression (`/*`, `//@*`), not a regex.
        let end = after.find('|').unwrap_or(after.len());
        let (path, tail) = after.split_at(end);
        (Selector::Key(path.trim().to_string()), tail)
    } else if let Some(body) = after.strip_prefix('/') {
        let end = regex_end(body).ok_or_else(|| Reason::BadVariable(s.to_string()))?;
        let pattern = byte_escapes(body.get(..end).unwrap_or_default());
        let tail = body.get(end + 1..).unwrap_or_default();
        check_selector_regex(&pattern)?;
        (Selector::Regex(pattern), tail)
    } else if let Some(body) = after.strip_prefix('\'') {
        let end = body.find('\'').ok_or(Reason::UnterminatedQuote)?;
        let key = body.get(..end).unwrap_or_default();
        (
            Selector::Key(key.to_ascii_lowercase()),
            body.get(end + 1..).unwrap_or_default(),
        )
    } else {
        let end = after.find('|').unwrap_or(after.len());
        let (key, tail) = after.split_at(end);
        let key = key.trim();
        if key.is_empty() {
            return Err(Reason::BadVariable(s.to_string()));
        }
        (Selector::Key(key.to_ascii_lowercase()), tail)
    };
    Ok((
        Element {
            exclude,
            count,
            collection,
            selector,
        },
        tail,
    ))
}

/// The index of the `/` closing a regex selector (a backslash escapes the next character).
fn regex_end(body: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '/' => return Some(i),
            _ => {}
        }
    }
    None
}

/// Selector regexes match member names without regard to case, as the runtime will run them
/// (with [`program::rx_builder`], case-insensitive; PCRE's `\x{hh}` already written `\xhh`).
fn check_selector_regex(pattern: &str) -> Result<(), Reason> {
    program::rx_builder(pattern)
        .case_insensitive(true)
        .build()
        .map(|_| ())
        .map_err(|e| Reason::BadRegex {
            pattern: pattern.to_string(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_list() {
        let (t, e) = parse(
            "REQUEST_HEADERS|!REQUEST_HEADERS:User-Agent|&TX:x|ARGS:/^a|b$/|XML://@*|tx:/x_*/",
        )
        .expect("parses");
        assert_eq!(t.len(), 5);
        assert_eq!(t[0].collection, Collection::RequestHeaders);
        assert_eq!(t[0].selector, Selector::All);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].selector, Selector::Key("user-agent".into()));
        assert!(t[1].count);
        assert_eq!(t[1].selector, Selector::Key("x".into()));
        assert_eq!(t[2].selector, Selector::Regex("^a|b$".into()));
        assert_eq!(t[3].collection, Collection::Xml);
        assert_eq!(t[3].selector, Selector::Key("//@*".into()));
        assert_eq!(t[4].selector, Selector::Regex("x_*".into()));
    }

    #[test]
    fn bad_targets() {
        assert_eq!(
            parse("ARGS|NOPE").map(|_| ()),
            Err(Reason::UnknownVariable("NOPE".into()))
        );
        assert!(matches!(parse("ARGS:/(/"), Err(Reason::BadRegex { .. })));
        assert!(matches!(
            parse("REQUEST_METHOD:x"),
            Err(Reason::BadVariable(_))
        ));
        assert!(matches!(parse("ARGS:/abc"), Err(Reason::BadVariable(_))));
        assert!(matches!(parse("!ARGS:x"), Err(Reason::BadVariable(_))));
    }
}
