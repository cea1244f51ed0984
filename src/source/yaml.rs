//! YAML front end (native only: the Worker reads JSON). The only file that names the YAML crate.
//!
//! Built on `saphyr-parser`'s event stream because it reports where every value starts, which the
//! checker needs for `file:line:col` diagnostics. Scalars follow YAML 1.2's core schema.

use super::{Node, Pos, Value};
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// Parses every document of a (multi-document) YAML stream.
pub fn parse_yaml_documents(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut builder = Builder::default();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| YamlError {
            pos: Pos {
                line: e.marker().line() as u32,
                col: e.marker().col() as u32 + 1,
            },
            message: e.info().to_string(),
        })?;
        builder.event(event, span)?;
    }
    Ok(builder.documents)
}

enum Frame {
    Seq(Vec<Node>, Pos, usize),
    Map(Vec<(String, Node)>, Option<String>, Pos, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    documents: Vec<Node>,
    anchors: HashMap<usize, Node>,
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line() as u32,
        col: span.start.col() as u32 + 1,
    }
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        let pos = pos_of(&span);
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let node = Node::new(scalar(&text, style), Some(pos));
                self.push(node, anchor, pos)
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq(Vec::new(), pos, anchor));
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(Vec::new(), None, pos, anchor));
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor, pos) = match self.stack.pop() {
                    Some(Frame::Seq(items, p, a)) => (Node::new(Value::Seq(items), Some(p)), a, p),
                    Some(Frame::Map(entries, _, p, a)) => {
                        (Node::new(Value::Map(entries), Some(p)), a, p)
                    }
                    None => return Err(err(pos, "unbalanced collection end")),
                };
                self.push(node, anchor, pos)
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let node = node.clone();
                    self.push(node, 0, pos)
                }
                None => Err(err(pos, "alias to an unknown anchor")),
            },
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::Nothing => Ok(()),
        }
    }

    fn push(&mut self, node: Node, anchor: usize, pos: Pos) -> Result<(), YamlError> {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Frame::Seq(items, ..)) => items.push(node),
            Some(Frame::Map(entries, pending, ..)) => match pending.take() {
                None => match node.value {
                    Value::Str(k) => {
                        if entries.iter().any(|(existing, _)| *existing == k) {
                            return Err(err(pos, &format!("duplicate key `{k}`")));
                        }
                        *pending = Some(k);
                    }
                    Value::Int(i) => *pending = Some(i.to_string()),
                    Value::Bool(b) => *pending = Some(b.to_string()),
                    _ => return Err(err(pos, "map keys must be scalars")),
                },
                Some(key) => entries.push((key, node)),
            },
        }
        Ok(())
    }
}

fn err(pos: Pos, message: &str) -> YamlError {
    YamlError {
        pos,
        message: message.to_string(),
    }
}

/// Resolves a scalar by YAML 1.2's core schema; quoted and block scalars are always strings.
fn scalar(text: &str, style: ScalarStyle) -> Value {
    if style != ScalarStyle::Plain {
        return Value::Str(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(i) = parse_int(text) {
        return Value::Int(i);
    }
    let looks_numeric = text
        .trim_start_matches(['-', '+'])
        .starts_with(|c: char| c.is_ascii_digit() || c == '.');
    if looks_numeric {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(text.to_string())
}

fn parse_int(text: &str) -> Option<i64> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_types() {
        let docs = parse_yaml_documents("a: 1\nb:\n  - x\n  - 'true'\n  - true\n---\nc: 2.5\n")
            .expect("valid yaml");
        assert_eq!(docs.len(), 2);
        let b = docs[0].get("b").unwrap();
        assert_eq!(b.pos, Some(Pos { line: 3, col: 3 }));
        let items = b.as_seq().unwrap();
        assert_eq!(items[1].value, Value::Str("true".into()));
        assert_eq!(items[2].value, Value::Bool(true));
        assert_eq!(docs[1].get("c").unwrap().value, Value::Float(2.5));
    }

    #[test]
    fn folded_plain_scalar_is_one_string() {
        let docs = parse_yaml_documents("- a ||\n  b\n").unwrap();
        assert_eq!(docs[0].as_seq().unwrap()[0].as_str(), Some("a || b"));
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse_yaml_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.pos.line >= 1, "{e:?}");
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let e = parse_yaml_documents("a: 1\na: 2\n").unwrap_err();
        assert!(e.message.contains("duplicate key"), "{e:?}");
    }
}
