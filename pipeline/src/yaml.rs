//! The YAML layer: pipeline files read into a tree of [`Node`]s that keep their file, line
//! and column.
//!
//! GitLab reads `.gitlab-ci.yml` with Ruby's Psych (YAML 1.1 scalars), so this layer does
//! the same where it matters: `yes`/`no`/`on`/`off` are booleans, anchors may be redefined
//! later in the file (an alias refers to the latest definition), a mapping may hold several
//! merge keys (`<<`, a mapping or a list of mappings) processed in order, and a duplicate key
//! keeps its first position but takes the last value. The `!reference [job, key]` tag is kept
//! as [`Value::Reference`] for the resolver. Aliases are expanded by copying, each copy (and
//! each anchored node kept for its aliases) counted against the pipeline's [`TreeBudget`]
//! before it is made, so that an alias bomb ("billion laughs", or one huge string aliased
//! many times) is refused quickly.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use crate::error::Diagnostic;
use crate::limits::{Size, TreeBudget};

/// How deeply collections may nest (every later stage recurses over the tree).
pub const MAX_DEPTH: usize = 200;

/// Where a node starts: file, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub fn new(file: &Arc<str>, line: usize, column: usize) -> Self {
        Pos {
            file: Arc::clone(file),
            line,
            column,
        }
    }

    /// A diagnostic at this position.
    pub fn error(&self, job: Option<&str>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.to_string(),
            line: self.line,
            column: self.column,
            job: job.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// A YAML value, scalars already typed as Psych types them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    /// Kept as Ruby prints it (`1.10` is `1.1`), since that is what a variable receives.
    Float(String),
    Str(String),
    Seq(Vec<Node>),
    Map(Map),
    /// `!reference [job, key, ...]`, resolved after `extends`.
    Reference(Vec<Node>),
}

/// A mapping in insertion order; keys are unique.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

impl Map {
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|e| e.key == key)
    }

    /// Sets `key`, keeping the position of an existing entry (Ruby's `Hash#[]=`).
    pub fn insert(&mut self, key: String, key_pos: Pos, value: Node) {
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(existing) => existing.value = value,
            None => self.entries.push(Entry {
                key,
                key_pos,
                value,
            }),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let index = self.entries.iter().position(|e| e.key == key)?;
        Some(self.entries.remove(index).value)
    }

    /// Ruby's `Hash#deep_merge`: `other` wins; mappings found in both are merged recursively.
    pub fn deep_merge(&mut self, other: &Map) {
        for entry in &other.entries {
            match self.entries.iter_mut().find(|e| e.key == entry.key) {
                Some(mine) => match (&mut mine.value.value, &entry.value.value) {
                    (Value::Map(base), Value::Map(theirs)) => base.deep_merge(theirs),
                    _ => mine.value = entry.value.clone(),
                },
                None => self.entries.push(entry.clone()),
            }
        }
    }
}

impl Node {
    pub fn as_map(&self) -> Option<&Map> {
        match &self.value {
            Value::Map(map) => Some(map),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The text of a scalar as GitLab sees it after `to_s` (booleans and numbers included).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.clone()),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// A word for the kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
            Value::Reference(_) => "a !reference",
        }
    }
}

/// Parses `text` (the content of `file`) into its first document, counting what it
/// expands to in `budget`.
pub fn parse(file: &str, text: &str, budget: &mut TreeBudget) -> Result<Node, Diagnostic> {
    let file: Arc<str> = Arc::from(file);
    let mut builder = Builder {
        file: Arc::clone(&file),
        anchors: HashMap::new(),
        stack: Vec::new(),
        budget,
    };
    let mut parser = Parser::new_from_str(text);
    let mut documents: Vec<Node> = Vec::new();
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            Pos::new(&file, e.marker().line(), e.marker().col() + 1)
                .error(None, format!("invalid YAML: {}", e.info()))
        })?;
        if let Some(document) = builder.event(event, span)? {
            documents.push(document);
        }
    }
    // A GitLab file may open with a `spec:` header document; the pipeline is the next one.
    let mut documents = documents.into_iter();
    let first = documents.next();
    let is_header = first
        .as_ref()
        .and_then(Node::as_map)
        .is_some_and(|m| m.contains_key("spec"));
    match (first, is_header) {
        (Some(header), true) => Ok(documents.next().unwrap_or(header)),
        (Some(document), false) => Ok(document),
        (None, _) => Ok(Node {
            value: Value::Null,
            pos: Pos::new(&file, 1, 1),
        }),
    }
}

enum Frame {
    Seq {
        items: Vec<Node>,
        pos: Pos,
        anchor: usize,
        reference: bool,
        size: Size,
    },
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        pos: Pos,
        anchor: usize,
        size: Size,
    },
}

struct Builder<'b> {
    file: Arc<str>,
    /// Anchor id (the parser gives a fresh id to a redefined anchor) to node and its size.
    anchors: HashMap<usize, (Node, Size)>,
    stack: Vec<Frame>,
    budget: &'b mut TreeBudget,
}

impl Builder<'_> {
    fn pos(&self, span: &Span) -> Pos {
        Pos::new(&self.file, span.start.line(), span.start.col() + 1)
    }

    fn open(&mut self, frame: Frame, pos: &Pos) -> Result<(), Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(pos.error(
                None,
                format!("collections nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.stack.push(frame);
        Ok(())
    }

    fn count(&mut self, size: Size, pos: &Pos) -> Result<(), Diagnostic> {
        self.budget
            .charge(size, "aliases")
            .map_err(|message| pos.error(None, message))
    }

    /// Handles one event; returns a document when one is complete.
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<Option<Node>, Diagnostic> {
        let pos = self.pos(&span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let size = Size::one(text.len());
                self.count(size, &pos)?;
                let is_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
                let value =
                    if is_key && style == ScalarStyle::Plain && text == "<<" && tag.is_none() {
                        Value::Str(MERGE_KEY.to_owned())
                    } else {
                        scalar_value(&text, style, tag.as_deref(), &pos)?
                    };
                self.complete(Node { value, pos }, anchor, size)
            }
            Event::Alias(id) => {
                let Some(size) = self.anchors.get(&id).map(|(_, size)| *size) else {
                    return Err(pos.error(None, "alias to an unknown anchor"));
                };
                // Counted before copying, so that a bomb is refused before it expands.
                self.count(size, &pos)?;
                let node = self.anchors.get(&id).map(|(node, _)| node.clone());
                match node {
                    Some(node) => self.complete(node, 0, size),
                    None => Err(pos.error(None, "alias to an unknown anchor")),
                }
            }
            Event::SequenceStart(anchor, tag) => {
                self.count(Size::one(0), &pos)?;
                let reference = match tag.as_deref() {
                    Some(tag) if tag.handle == "!" && tag.suffix == "reference" => true,
                    Some(tag) if is_core_tag(tag) => false,
                    Some(tag) => return Err(unknown_tag(tag, &pos)),
                    None => false,
                };
                let frame = Frame::Seq {
                    items: Vec::new(),
                    pos: pos.clone(),
                    anchor,
                    reference,
                    size: Size::one(0),
                };
                self.open(frame, &pos)?;
                Ok(None)
            }
            Event::MappingStart(anchor, tag) => {
                self.count(Size::one(0), &pos)?;
                if let Some(tag) = tag.as_deref().filter(|t| !is_core_tag(t)) {
                    return Err(unknown_tag(tag, &pos));
                }
                let frame = Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    pos: pos.clone(),
                    anchor,
                    size: Size::one(0),
                };
                self.open(frame, &pos)?;
                Ok(None)
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq {
                    items,
                    pos,
                    anchor,
                    reference,
                    size,
                }) => {
                    let value = if reference {
                        Value::Reference(items)
                    } else {
                        Value::Seq(items)
                    };
                    self.complete(Node { value, pos }, anchor, size)
                }
                _ => Err(pos.error(None, "invalid YAML: unbalanced sequence")),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map {
                    entries,
                    pos,
                    anchor,
                    size,
                    ..
                }) => {
                    let map = build_map(entries)?;
                    self.complete(
                        Node {
                            value: Value::Map(map),
                            pos,
                        },
                        anchor,
                        size,
                    )
                }
                _ => Err(pos.error(None, "invalid YAML: unbalanced mapping")),
            },
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::Nothing => Ok(None),
        }
    }

    /// Places a finished node into its parent, or returns it as a finished document.
    fn complete(
        &mut self,
        node: Node,
        anchor: usize,
        size: Size,
    ) -> Result<Option<Node>, Diagnostic> {
        if anchor != 0 {
            // The copy kept for later aliases is memory too (nested anchors copy a lot).
            self.count(size, &node.pos)?;
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => Ok(Some(node)),
            Some(Frame::Seq {
                items, size: total, ..
            }) => {
                items.push(node);
                total.add(size);
                Ok(None)
            }
            Some(Frame::Map {
                entries,
                key,
                size: total,
                ..
            }) => {
                total.add(size);
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                }
                Ok(None)
            }
        }
    }
}

fn is_core_tag(tag: &Tag) -> bool {
    tag.is_yaml_core_schema()
}

fn unknown_tag(tag: &Tag, pos: &Pos) -> Diagnostic {
    pos.error(
        None,
        format!(
            "unknown YAML tag '{}{}' (only !reference is supported)",
            tag.handle, tag.suffix
        ),
    )
}

/// Builds a mapping from its raw pairs the way Psych revives a hash: in order, later wins,
/// a merge key merges a mapping (or a list of mappings, earlier ones winning) over what is
/// already there.
fn build_map(pairs: Vec<(Node, Node)>) -> Result<Map, Diagnostic> {
    let mut map = Map::default();
    for (key, value) in pairs {
        let is_merge = matches!(&key.value, Value::Str(s) if s == MERGE_KEY);
        if is_merge {
            match value.value {
                Value::Map(merged) => merge_over(&mut map, merged),
                Value::Seq(items) => {
                    let mut combined = Map::default();
                    for item in items.into_iter().rev() {
                        match item.value {
                            Value::Map(merged) => merge_over(&mut combined, merged),
                            _ => {
                                return Err(item
                                    .pos
                                    .error(None, "a merge key `<<` takes mappings only"));
                            }
                        }
                    }
                    merge_over(&mut map, combined);
                }
                _ => {
                    return Err(value.pos.error(
                        None,
                        "a merge key `<<` takes a mapping or a list of mappings",
                    ));
                }
            }
            continue;
        }
        let Some(name) = key.scalar_text() else {
            let text = if key.is_null() {
                Some(String::new())
            } else {
                None
            };
            match text {
                Some(empty) => {
                    map.insert(empty, key.pos, value);
                    continue;
                }
                None => {
                    return Err(key.pos.error(
                        None,
                        format!("a mapping key must be a scalar, not {}", key.kind()),
                    ));
                }
            }
        };
        map.insert(name, key.pos, value);
    }
    Ok(map)
}

/// Key text marking a merge: only a plain `<<` in key position, so a quoted `"<<"` is an
/// ordinary key.
const MERGE_KEY: &str = "\u{0}<<";

fn merge_over(map: &mut Map, merged: Map) {
    for entry in merged.entries {
        map.insert(entry.key, entry.key_pos, entry.value);
    }
}

/// Types a scalar as YAML 1.1 (Psych) does; quoted scalars are always strings.
fn scalar_value(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    pos: &Pos,
) -> Result<Value, Diagnostic> {
    if let Some(tag) = tag {
        if !is_core_tag(tag) {
            return Err(unknown_tag(tag, pos));
        }
        if tag.suffix == "str" {
            return Ok(Value::Str(text.to_owned()));
        }
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::Str(text.to_owned()));
    }
    Ok(plain_scalar(text))
}

fn plain_scalar(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        _ => {}
    }
    match text.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" => return Value::Bool(true),
        "no" | "false" | "off" => return Value::Bool(false),
        _ => {}
    }
    if let Some(int) = parse_int(text) {
        return Value::Int(int);
    }
    if let Some(float) = parse_float(text) {
        return Value::Float(float);
    }
    Value::Str(text.to_owned())
}

fn parse_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = digits.replace('_', "");
    let value = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(bin) = digits.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(digits.trim_start_matches("0o").trim_start_matches('0'), 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if negative { -value } else { value })
}

/// A float printed the way Ruby's `Float#to_s` does for the usual cases.
fn parse_float(text: &str) -> Option<String> {
    let looks_numeric = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+' | b'_'))
        && text.contains('.');
    if !looks_numeric {
        return None;
    }
    let value: f64 = text.replace('_', "").parse().ok()?;
    if value.fract() == 0.0 && value.abs() < 1e16 {
        Some(format!("{value:.1}"))
    } else {
        Some(format!("{value}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Node {
        parse_alone(text).unwrap()
    }

    fn parse_alone(text: &str) -> Result<Node, Diagnostic> {
        parse("ci.yml", text, &mut TreeBudget::default())
    }

    fn get<'a>(node: &'a Node, key: &str) -> &'a Node {
        node.as_map().unwrap().get(key).unwrap()
    }

    #[test]
    fn keeps_positions() {
        let doc = load("a:\n  b: [1, 2]\n");
        let b = get(get(&doc, "a"), "b");
        assert_eq!((b.pos.line, b.pos.column), (2, 6));
        let entry = get(&doc, "a").as_map().unwrap().entry("b").unwrap();
        assert_eq!((entry.key_pos.line, entry.key_pos.column), (2, 3));
    }

    #[test]
    fn yaml_1_1_booleans_and_numbers() {
        let doc = load("a: yes\nb: off\nc: '1'\nd: 010\ne: 1.10\nf: ~\ng: 2.0\n");
        assert_eq!(get(&doc, "a").value, Value::Bool(true));
        assert_eq!(get(&doc, "b").value, Value::Bool(false));
        assert_eq!(get(&doc, "c").value, Value::Str("1".into()));
        assert_eq!(get(&doc, "d").value, Value::Int(8));
        assert_eq!(get(&doc, "e").value, Value::Float("1.1".into()));
        assert_eq!(get(&doc, "f").value, Value::Null);
        assert_eq!(get(&doc, "g").value, Value::Float("2.0".into()));
    }

    #[test]
    fn duplicate_keys_last_value_first_position() {
        let doc = load("a: 1\nb: 2\na: 3\n");
        let map = doc.as_map().unwrap();
        assert_eq!(map.entries[0].key, "a");
        assert_eq!(map.entries[0].value.value, Value::Int(3));
    }

    #[test]
    fn merge_keys_in_order_and_lists() {
        let doc = load(
            "x: &x {a: 1, b: 1}\ny: &y {b: 2, c: 2}\n\
             m: {<<: *x, b: 9}\nn: {<<: [*x, *y]}\no: {<<: *x, <<: *y}\n",
        );
        let m = get(&doc, "m");
        assert_eq!(get(m, "b").value, Value::Int(9));
        assert_eq!(get(m, "a").value, Value::Int(1));
        // In a list of merged mappings, the earlier one wins.
        assert_eq!(get(get(&doc, "n"), "b").value, Value::Int(1));
        // Two merge keys in one mapping: processed in order, the later overrides.
        assert_eq!(get(get(&doc, "o"), "b").value, Value::Int(2));
    }

    #[test]
    fn anchors_redefined_later_take_the_new_value() {
        let doc = load("a: &v 1\nb: *v\nc: &v 2\nd: *v\n");
        assert_eq!(get(&doc, "b").value, Value::Int(1));
        assert_eq!(get(&doc, "d").value, Value::Int(2));
    }

    #[test]
    fn reference_tag() {
        let doc = load("a: !reference [.x, script]\n");
        assert!(matches!(get(&doc, "a").value, Value::Reference(ref v) if v.len() == 2));
    }

    #[test]
    fn unknown_tag_is_an_error() {
        let err = parse_alone("a: !secret x\n").unwrap_err();
        assert!(err.message.contains("unknown YAML tag"), "{}", err.message);
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let prev = level - 1;
            text.push_str(&format!("a{level}: &a{level} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
        }
        let err = parse_alone(&text).unwrap_err();
        assert!(err.message.contains("alias bomb"), "{}", err.message);
    }

    #[test]
    fn syntax_error_has_a_position() {
        let err = parse_alone("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.line >= 1 && err.message.starts_with("invalid YAML"));
    }
}
