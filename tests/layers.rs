//! The module graph of `src/` has no cycle: at every level of the module tree, the modules that
//! share a parent depend on each other in one direction only, so the layers follow the data
//! (README, "How the code is built").
//!
//! A module depends on another when its code names a path into it (`crate::…` or `super::…`,
//! in `use` trees or in expressions). Comments and string literals are skipped. References
//! between a module and its own ancestors or descendants are not edges: a parent declares and
//! re-exports its children. `src/bin/*` are crates of their own and are not part of the graph.
//! Test code (`#[cfg(test)]` items and modules) is left out, as `cargo modules` does by
//! default: a unit test may build its fixture with a higher layer (the compiler, say).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type ModPath = Vec<String>;

/// A reference from one module (by the file it is written in) to a path.
struct Reference {
    from: ModPath,
    path: ModPath,
    file: PathBuf,
    line: usize,
}

#[test]
fn src_has_no_module_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&root, &mut files);
    let mut modules = BTreeSet::new();
    let mut refs = Vec::new();
    let mut test_only = BTreeSet::new();
    for file in &files {
        let module = module_of(&root, file);
        modules.insert(module.clone());
        let text = fs::read_to_string(file).unwrap();
        let code = code_only(&text);
        test_only.extend(scan(&module, file, &code, &mut refs, &mut modules));
    }
    // Files of `#[cfg(test)] mod name;` modules are test code too.
    refs.retain(|r| !test_only.iter().any(|t: &ModPath| r.from.starts_with(t)));
    assert!(modules.len() > 50, "found only {} modules", modules.len());

    // parent → (from child, to child) → where
    let mut graph: BTreeMap<ModPath, BTreeMap<(String, String), Vec<String>>> = BTreeMap::new();
    for r in &refs {
        let Some(target) = longest_module(&modules, &r.path) else {
            continue;
        };
        let common = r
            .from
            .iter()
            .zip(&target)
            .take_while(|(a, b)| a == b)
            .count();
        if common == r.from.len() || common == target.len() {
            continue; // an ancestor or a descendant
        }
        let parent = r.from[..common].to_vec();
        let edge = (r.from[common].clone(), target[common].clone());
        let rel = r.file.strip_prefix(&root).unwrap().display().to_string();
        graph
            .entry(parent)
            .or_default()
            .entry(edge)
            .or_default()
            .push(format!("src/{rel}:{}", r.line));
    }
    assert!(
        graph.get(&Vec::new()).is_some_and(|g| g.len() > 20),
        "too few top-level edges: the scan is broken"
    );

    let mut problems = Vec::new();
    for (parent, edges) in &graph {
        let name = |m: &str| {
            let mut p = parent.clone();
            p.push(m.to_string());
            p.join("::")
        };
        for component in tangles(edges) {
            let mut text = format!(
                "cycle among {{{}}}:",
                component
                    .iter()
                    .map(|m| name(m))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for ((a, b), at) in edges {
                if component.contains(a) && component.contains(b) {
                    let shown: Vec<&str> = at.iter().take(3).map(String::as_str).collect();
                    text.push_str(&format!(
                        "\n    {} → {}: {}{}",
                        name(a),
                        name(b),
                        shown.join(", "),
                        if at.len() > 3 { ", …" } else { "" }
                    ));
                }
            }
            problems.push(text);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The scanner itself: grouped `use` trees, `super`, inline modules, comments and strings.
#[test]
fn scanner_reads_paths_as_rustc_would() {
    let src = r#"
        use crate::{a::X, b::{c::Y, Z}};
        // use crate::commented::Out;
        const S: &str = "crate::in_string::No";
        fn f<'a>(x: &'a str) -> char { crate::e::call(); 'c' }
        mod tests { use super::super::sib::T; }
        #[cfg(test)]
        mod unit { use crate::a::Skipped; }
        #[cfg(test)]
        #[allow(dead_code)]
        fn helper() { crate::a::AlsoSkipped::new(); }
        #[cfg(test)]
        mod testing;
    "#;
    let mut modules: BTreeSet<ModPath> = ["a", "b", "e", "m", "sib"]
        .iter()
        .map(|m| vec![m.to_string()])
        .collect();
    modules.insert(vec!["b".into(), "c".into()]);
    modules.insert(vec!["m".into(), "n".into()]);
    let mut refs = Vec::new();
    let from = vec!["m".to_string(), "n".to_string()];
    let test_only = scan(
        &from,
        Path::new("x.rs"),
        &code_only(src),
        &mut refs,
        &mut modules,
    );
    assert_eq!(
        test_only,
        [vec!["m".to_string(), "n".into(), "testing".into()]]
    );
    let mut seen: Vec<String> = refs.iter().map(|r| r.path.join("::")).collect();
    seen.sort();
    assert_eq!(seen, ["a::X", "b::Z", "b::c::Y", "e::call", "m::sib::T"]);
    assert!(refs.iter().all(|r| r.from == from));
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().unwrap() != "bin" || dir.file_name().unwrap() != "src" {
                collect(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(root: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: ModPath = rel.iter().map(|p| p.to_string_lossy().into()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn longest_module(modules: &BTreeSet<ModPath>, path: &[String]) -> Option<ModPath> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
}

/// The code with comments and the contents of string and char literals blanked (newlines kept,
/// so line numbers hold).
fn code_only(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('"' | '#'))
            && !b.get(i.wrapping_sub(1)).is_some_and(|p| is_ident(*p))
            && raw_string_start(&b, i).is_some()
        {
            let (hashes, body) = raw_string_start(&b, i).unwrap();
            i = body;
            out.push('"');
            loop {
                if i >= b.len() {
                    break;
                }
                if b[i] == '"' && (0..hashes).all(|k| b.get(i + 1 + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(b[i]));
                i += 1;
            }
            out.push('"');
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || b.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\u{..}'); a lifetime ('a) is code.
            out.push_str("' '");
            i += 1;
            if b.get(i) == Some(&'\\') {
                i += 1;
            }
            i += 1;
            while i < b.len() && b[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// `r"`, `r#"`, …: the number of hashes and where the body starts.
fn raw_string_start(b: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i + 1;
    while b.get(j) == Some(&'#') {
        j += 1;
    }
    (b.get(j) == Some(&'"')).then_some((j - i - 1, j + 1))
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Colons,
    Punct(char),
}

fn tokens(code: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = code.chars().collect();
    let (mut out, mut line, mut i) = (Vec::new(), 1, 0);
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if is_ident(c) {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            out.push((Tok::Ident(b[start..i].iter().collect()), line));
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push((Tok::Colons, line));
            i += 2;
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

/// Finds every `crate::…` and `super::…` path, tracking inline `mod name { … }` blocks (whose
/// `super` is the file's own module) and registering them as modules. Skips `#[cfg(test)]`
/// items; returns the modules declared `#[cfg(test)] mod name;` (test code in files of their own).
fn scan(
    file_module: &ModPath,
    file: &Path,
    code: &str,
    refs: &mut Vec<Reference>,
    modules: &mut BTreeSet<ModPath>,
) -> Vec<ModPath> {
    let toks = tokens(code);
    let mut test_only = Vec::new();
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let here = |inline: &[(String, usize)]| {
            let mut m = file_module.clone();
            m.extend(inline.iter().map(|(n, _)| n.clone()));
            m
        };
        if let Some(after) = cfg_test_attribute(&toks, i) {
            let (end, declared) = skip_item(&toks, after);
            if let Some(name) = declared {
                let mut m = here(&inline);
                m.push(name);
                modules.insert(m.clone());
                test_only.push(m);
            }
            i = end;
            continue;
        }
        match &toks[i].0 {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Punct('{'), _))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    inline.push((name.clone(), depth));
                    modules.insert(here(&inline));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(kw) if kw == "crate" || kw == "super" => {
                let preceded_by_colons = i > 0 && toks[i - 1].0 == Tok::Colons;
                if !preceded_by_colons && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Colons) {
                    let mut base = if kw == "crate" {
                        Vec::new()
                    } else {
                        here(&inline)
                    };
                    let mut j = i;
                    while let Some((Tok::Ident(s), _)) = toks.get(j) {
                        if s != "super" || (kw == "crate" && j == i) {
                            if s == "crate" {
                                j += 2;
                            }
                            break;
                        }
                        base.pop();
                        j += 2; // `super` `::`
                    }
                    let line = toks[i].1;
                    let mut paths = Vec::new();
                    let end = use_tree(&toks, j, base, &mut paths);
                    for path in paths {
                        refs.push(Reference {
                            from: file_module.clone(),
                            path,
                            file: file.to_path_buf(),
                            line,
                        });
                    }
                    i = end.max(i + 1);
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    test_only
}

/// At `#[cfg(test)]`: the index after it and any other attributes that follow.
fn cfg_test_attribute(toks: &[(Tok, usize)], i: usize) -> Option<usize> {
    let want = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    let matches = want
        .iter()
        .enumerate()
        .all(|(k, t)| toks.get(i + k).is_some_and(|(have, _)| have == t));
    if !matches {
        return None;
    }
    let mut j = i + want.len();
    while toks.get(j).map(|t| &t.0) == Some(&Tok::Punct('#')) {
        j = balanced(toks, j + 1); // `#[...]`
    }
    Some(j)
}

/// The index after the bracketed group that opens at `i`.
fn balanced(toks: &[(Tok, usize)], i: usize) -> usize {
    let mut depth = 0i32;
    let mut j = i;
    while let Some((t, _)) = toks.get(j) {
        match t {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth <= 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    j
}

/// Skips one item from `i`: to its `;` or the end of its first `{ … }` block. Returns where
/// it ends and, for `mod name;`, the module's name.
fn skip_item(toks: &[(Tok, usize)], i: usize) -> (usize, Option<String>) {
    let mut j = i;
    let mut is_mod = false;
    while let Some((t, _)) = toks.get(j) {
        match t {
            Tok::Ident(s) if s == "mod" => is_mod = true,
            Tok::Punct(';') => {
                let name = match toks.get(j - 1) {
                    Some((Tok::Ident(n), _)) if is_mod => Some(n.clone()),
                    _ => None,
                };
                return (j + 1, name);
            }
            Tok::Punct('{') if !matches!(&toks[i].0, Tok::Ident(s) if s == "use") => {
                return (balanced(toks, j), None);
            }
            Tok::Punct('(' | '[') => {
                j = balanced(toks, j);
                continue;
            }
            _ => {}
        }
        j += 1;
    }
    (j, None)
}

/// Reads a use tree (`a::b::{c, d::e}`, `a::*`, or an expression path `a::B::new`) at `i`;
/// pushes each full path and returns the index after it.
fn use_tree(
    toks: &[(Tok, usize)],
    mut i: usize,
    mut prefix: ModPath,
    out: &mut Vec<ModPath>,
) -> usize {
    loop {
        match toks.get(i).map(|t| &t.0) {
            Some(Tok::Ident(s)) => {
                prefix.push(s.clone());
                i += 1;
                if toks.get(i).map(|t| &t.0) == Some(&Tok::Colons) {
                    i += 1;
                    continue;
                }
                out.push(prefix);
                return i;
            }
            Some(Tok::Punct('{')) => {
                i += 1;
                loop {
                    match toks.get(i).map(|t| &t.0) {
                        Some(Tok::Punct('}')) | None => return i + 1,
                        Some(Tok::Punct(',')) => i += 1,
                        Some(Tok::Ident(s)) if s == "self" => {
                            out.push(prefix.clone());
                            i += 1;
                        }
                        _ => {
                            let before = i;
                            i = use_tree(toks, i, prefix.clone(), out);
                            // skip `as alias`
                            if let Some((Tok::Ident(a), _)) = toks.get(i) {
                                if a == "as" {
                                    i += 2;
                                }
                            }
                            if i == before {
                                i += 1;
                            }
                        }
                    }
                }
            }
            _ => {
                // `*` or something unexpected: the prefix itself is the reference.
                if !prefix.is_empty() {
                    out.push(prefix);
                }
                return i + 1;
            }
        }
    }
}

/// The strongly connected components of more than one module (Tarjan's algorithm): each is a
/// set of modules that all reach each other, so no order of layers can hold them.
fn tangles(edges: &BTreeMap<(String, String), Vec<String>>) -> Vec<BTreeSet<String>> {
    struct Tarjan<'a> {
        next: BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, (usize, usize)>,
        stack: Vec<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, n: &'a str) {
            let i = self.index.len();
            self.index.insert(n, (i, i));
            self.stack.push(n);
            for m in self.next.get(n).cloned().unwrap_or_default() {
                if !self.index.contains_key(m) {
                    self.visit(m);
                    let low = self.index[m].1.min(self.index[n].1);
                    self.index.get_mut(n).unwrap().1 = low;
                } else if self.stack.contains(&m) {
                    let low = self.index[m].0.min(self.index[n].1);
                    self.index.get_mut(n).unwrap().1 = low;
                }
            }
            if self.index[n].0 == self.index[n].1 {
                let mut component = BTreeSet::new();
                while let Some(m) = self.stack.pop() {
                    component.insert(m.to_string());
                    if m == n {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        next: BTreeMap::new(),
        index: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for (a, b) in edges.keys() {
        t.next.entry(a.as_str()).or_default().push(b.as_str());
        t.next.entry(b.as_str()).or_default();
    }
    let nodes: Vec<&str> = t.next.keys().copied().collect();
    for n in nodes {
        if !t.index.contains_key(n) {
            t.visit(n);
        }
    }
    t.found
}
