//! Lossless edits: find a field's bytes with the spanned [`tree`](crate::tree) and replace or
//! insert only those, so comments, quoting, indentation and key order elsewhere stay as written.

use crate::error::RemedyError;
use crate::format::{self, Layout, NewNode};
use crate::tree::{self, Kind, Node};
use autofix_core::path::{FieldPath, Segment, selects};
use saphyr_parser::ScalarStyle;
use serde_json::Value;
use std::ops::Range;

/// Bytes `start..end` of a text replaced by `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Splice {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

impl Splice {
    /// The edited text.
    pub fn apply(&self, text: &str) -> String {
        [&text[..self.start], &self.text, &text[self.end..]].concat()
    }
}

/// Sets `path` of document `doc` (counting non-empty documents) of `text` to `value`, adding
/// missing keys and list items; `file` only names the text in errors.
pub(crate) fn set(
    text: &str,
    file: &str,
    doc: usize,
    path: &FieldPath,
    value: &Value,
) -> Result<String, RemedyError> {
    Ok(set_spanned(text, file, doc, path, value)?.0)
}

/// Like [`set`], also giving the byte range of `text` that the new bytes replace (empty for a
/// pure insertion): every byte outside it is kept.
pub(crate) fn set_spanned(
    text: &str,
    file: &str,
    doc: usize,
    path: &FieldPath,
    value: &Value,
) -> Result<(String, Range<usize>), RemedyError> {
    let splice = plan(text, file, doc, path, value)?;
    Ok((splice.apply(text), splice.start..splice.end))
}

/// Like [`set`] for a YAML text embedded in a literal block scalar (an inline kustomize patch):
/// the block at `at` in document `doc` is read, and `path` of its document `inner_doc` is set.
pub(crate) fn set_embedded(
    text: &str,
    file: &str,
    (doc, at): (usize, &FieldPath),
    inner_doc: usize,
    path: &FieldPath,
    value: &Value,
) -> Result<String, RemedyError> {
    let docs = parse(text, file)?;
    let editor = Editor::new(text, file, &docs, doc, at)?;
    let node = editor.find(at)?;
    let unsupported = |reason: &str| RemedyError::Unsupported {
        file: file.to_string(),
        reason: format!("the inline patch at {at} {reason}; edit it by hand"),
    };
    if node.is_shared() || node.tagged {
        return Err(unsupported("carries an anchor or tag"));
    }
    let Kind::Scalar {
        value: content,
        style: ScalarStyle::Literal,
    } = &node.kind
    else {
        return Err(unsupported("is not a literal block scalar (`|`)"));
    };
    let block = Block::read(text, node, content)
        .ok_or_else(|| unsupported("uses an indentation indicator or an unusual layout"))?;
    let inner = plan(&block.text, file, inner_doc, path, value)?;
    Ok(block.outer(&inner).apply(text))
}

fn parse(text: &str, file: &str) -> Result<Vec<Node>, RemedyError> {
    tree::parse(text).map_err(|source| RemedyError::Scan {
        file: file.to_string(),
        source,
    })
}

fn plan(
    text: &str,
    file: &str,
    doc: usize,
    path: &FieldPath,
    value: &Value,
) -> Result<Splice, RemedyError> {
    if let Some(key) = long_key(path, value) {
        return Err(RemedyError::Unsupported {
            file: file.to_string(),
            reason: format!(
                "the key {:?}... at {path} is longer than YAML allows a plain `key:` \
                 ({MAX_KEY_CHARS} characters); edit it by hand",
                key.chars().take(40).collect::<String>()
            ),
        });
    }
    if has_bare_carriage_return(text) {
        // YAML breaks lines there too, but the editor finds lines by `\n`.
        return Err(RemedyError::Unsupported {
            file: file.to_string(),
            reason: "the file breaks lines with bare carriage returns (no `\\n` after them); \
                     edit it by hand"
                .to_string(),
        });
    }
    if path.0.is_empty() && value.is_null() {
        // An empty document is no document: the file would read back with one fewer, and
        // every later document would move up one place.
        return Err(RemedyError::Unsupported {
            file: file.to_string(),
            reason: format!(
                "setting document {doc} as a whole to null would remove it; edit it by hand"
            ),
        });
    }
    let docs = parse(text, file)?;
    if docs
        .iter()
        .any(|root| root.scalar().is_some() && (root.anchored || root.tagged))
    {
        // The reader skips a document that reads as null, which an anchor or a tag can make of
        // an empty one (`--- !x`): documents would not be counted alike.
        return Err(RemedyError::Unsupported {
            file: file.to_string(),
            reason: "a document is one scalar with an anchor or a tag; edit it by hand".to_string(),
        });
    }
    let editor = Editor::new(text, file, &docs, doc, path)?;
    let mut node = editor.root;
    let mut key = None;
    let mut outer_flow = false;
    for (i, segment) in path.0.iter().enumerate() {
        if node.is_shared() {
            return Err(editor.alias());
        }
        match editor.child(node, segment)? {
            Some((child_key, child)) => {
                outer_flow |= node.flow;
                key = child_key;
                node = child;
            }
            None => return editor.insert(node, key, &path.0[i..], value, outer_flow),
        }
    }
    editor.replace(node, key, value, outer_flow)
}

/// Whether `text` has a carriage return not followed by a line feed.
fn has_bare_carriage_return(text: &str) -> bool {
    let bytes = text.as_bytes();
    (0..bytes.len()).any(|i| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
}

/// The longest implicit key YAML allows, in characters, quotes included (YAML 1.2, 7.4.2):
/// longer keys need the explicit `? key` form, which the editor does not write.
const MAX_KEY_CHARS: usize = 1024;

/// A key of `path` or of `value` too long to be written as `key:`.
fn long_key<'k>(path: &'k FieldPath, value: &'k Value) -> Option<&'k str> {
    fn in_value(value: &Value) -> Option<&str> {
        match value {
            Value::Object(map) => map
                .iter()
                .find_map(|(k, v)| too_long(k).then_some(k.as_str()).or_else(|| in_value(v))),
            Value::Array(items) => items.iter().find_map(in_value),
            _ => None,
        }
    }
    fn too_long(k: &str) -> bool {
        format::key(k, false).chars().count() > MAX_KEY_CHARS
    }
    path.0
        .iter()
        .find_map(|segment| match segment {
            Segment::Key(k) if too_long(k) => Some(k.as_str()),
            _ => None,
        })
        .or_else(|| in_value(value))
}

/// New content for a mapping (entries) or a list (items).
enum Content {
    Entries(Vec<(String, NewNode)>),
    Items(Vec<NewNode>),
}

struct Editor<'a> {
    text: &'a str,
    file: &'a str,
    root: &'a Node,
    /// The path being set, for error messages.
    path: &'a FieldPath,
    layout: Layout,
}

impl<'a> Editor<'a> {
    fn new(
        text: &'a str,
        file: &'a str,
        docs: &'a [Node],
        doc: usize,
        path: &'a FieldPath,
    ) -> Result<Editor<'a>, RemedyError> {
        let root = docs.get(doc).ok_or_else(|| RemedyError::PathNotFound {
            file: file.to_string(),
            path: path.clone(),
            reason: format!("the file has no document #{doc}"),
        })?;
        let mut editor = Editor {
            text,
            file,
            root,
            path,
            layout: Layout {
                unit: 2,
                indented_sequences: true,
            },
        };
        editor.layout = editor.detect_layout();
        Ok(editor)
    }

    fn alias(&self) -> RemedyError {
        RemedyError::Alias {
            file: self.file.to_string(),
            path: self.path.clone(),
        }
    }

    fn not_found(&self, reason: impl Into<String>) -> RemedyError {
        RemedyError::PathNotFound {
            file: self.file.to_string(),
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn flow(&self) -> RemedyError {
        RemedyError::FlowCollection {
            file: self.file.to_string(),
            path: self.path.clone(),
        }
    }

    /// The node at `path`, which must exist.
    fn find(&self, path: &FieldPath) -> Result<&'a Node, RemedyError> {
        let mut node = self.root;
        for segment in &path.0 {
            if node.is_shared() {
                return Err(self.alias());
            }
            node = self
                .child(node, segment)?
                .ok_or_else(|| self.not_found("it does not exist"))?
                .1;
        }
        Ok(node)
    }

    /// One step down; `None` when the step does not exist yet and may be added.
    #[allow(clippy::type_complexity)]
    fn child(
        &self,
        node: &'a Node,
        segment: &Segment,
    ) -> Result<Option<(Option<&'a Node>, &'a Node)>, RemedyError> {
        match (segment, &node.kind) {
            (Segment::Key(k), Kind::Mapping(entries))
                if entries
                    .iter()
                    .filter(|(key, _)| key.scalar() == Some(k))
                    .count()
                    > 1 =>
            {
                // Readers keep one of the two (which one, and whether they refuse the text,
                // differs); the edit could land in the other.
                Err(RemedyError::Unsupported {
                    file: self.file.to_string(),
                    reason: format!("the key {k:?} appears twice in one mapping; edit it by hand"),
                })
            }
            (Segment::Key(k), Kind::Mapping(_)) => match node.entry(k) {
                Some((key, value)) => Ok(Some((Some(key), value))),
                // A `<<: *base` merge may define the key through an alias.
                None if node.entry("<<").is_some() => Err(self.alias()),
                None => Ok(None),
            },
            (Segment::Index(i), Kind::Sequence(items)) => Ok(items.get(*i).map(|n| (None, n))),
            (Segment::Select { key, value }, Kind::Sequence(items)) => {
                // Matched the way the reader matches it, by the field's value: `name:` is null
                // and `[name=null]` selects it.
                let found = items.iter().find(|item| {
                    item.entry(key)
                        .and_then(|(_, field)| field.typed())
                        .is_some_and(|field| selects(&field, value))
                });
                match found {
                    Some(item) => Ok(Some((None, item))),
                    None if items
                        .iter()
                        .any(|i| i.is_shared() || i.entry("<<").is_some()) =>
                    {
                        Err(self.alias())
                    }
                    None => Ok(None),
                }
            }
            _ if node.is_null() => Ok(None),
            (Segment::Key(_), _) => {
                Err(self.not_found("a list or scalar is where a mapping should be"))
            }
            _ => Err(self.not_found("a mapping or scalar is where a list should be")),
        }
    }

    /// Replaces an existing value.
    fn replace(
        &self,
        node: &Node,
        key: Option<&Node>,
        value: &Value,
        outer_flow: bool,
    ) -> Result<Splice, RemedyError> {
        if node.is_shared() {
            return Err(self.alias());
        }
        if node.tagged {
            return Err(RemedyError::Unsupported {
                file: self.file.to_string(),
                reason: format!("{} carries an explicit tag; edit it by hand", self.path),
            });
        }
        let composite = value.is_object() || value.is_array();
        match &node.kind {
            Kind::Scalar {
                style: ScalarStyle::Literal | ScalarStyle::Folded,
                ..
            } => Err(RemedyError::BlockScalar {
                file: self.file.to_string(),
                path: self.path.clone(),
            }),
            Kind::Scalar { .. } if composite => match (node.is_null(), key) {
                (true, Some(key)) if !outer_flow => match NewNode::from_json(value) {
                    NewNode::Map(entries) => self.fill_empty(key, node, Content::Entries(entries)),
                    NewNode::List(items) => self.fill_empty(key, node, Content::Items(items)),
                    NewNode::Leaf(_) => Err(self.not_found("nothing to add")),
                },
                _ => Err(self.not_found("a scalar cannot be replaced by a mapping or list")),
            },
            Kind::Scalar { style, .. } => {
                let text = format::scalar(value, Some(*style), outer_flow);
                match key {
                    // `key:` with nothing after it: the empty scalar sits on the colon.
                    Some(key) if node.start == node.end => {
                        let colon = self.colon_after(key)?;
                        Ok(Splice {
                            start: colon,
                            end: colon,
                            text: format!(" {text}"),
                        })
                    }
                    // `-` with nothing after it but blanks and comments: the value goes right
                    // after the dash (after a comment, it would be part of the comment).
                    None if node.start == node.end && !outer_flow => {
                        let at = self
                            .empty_item_dash(node)
                            .map_or(node.start, |dash| dash + 1);
                        Ok(Splice {
                            start: at,
                            end: at,
                            text: format!(" {text}"),
                        })
                    }
                    _ => Ok(Splice {
                        start: node.start,
                        end: node.end,
                        text,
                    }),
                }
            }
            Kind::Mapping(_) | Kind::Sequence(_) if node.flow => {
                if composite && !self.text[node.start..node.end].contains('\n') {
                    Ok(Splice {
                        start: node.start,
                        end: node.end,
                        text: format::scalar(value, None, true),
                    })
                } else {
                    Err(self.flow())
                }
            }
            Kind::Mapping(_) | Kind::Sequence(_) => Err(RemedyError::Unsupported {
                file: self.file.to_string(),
                reason: format!(
                    "replacing the whole block mapping or list at {} is not supported; \
                     change its fields one by one",
                    self.path
                ),
            }),
            Kind::Alias => Err(self.alias()),
        }
    }

    /// Adds `rest` (the segments that do not exist yet) below `parent`.
    fn insert(
        &self,
        parent: &Node,
        key: Option<&Node>,
        rest: &[Segment],
        value: &Value,
        outer_flow: bool,
    ) -> Result<Splice, RemedyError> {
        let content = self.content(parent, rest, value)?;
        match (&parent.kind, content) {
            (Kind::Mapping(entries), Content::Entries(new)) if !parent.flow => {
                let (first_key, _) = entries.first().ok_or_else(|| self.flow())?;
                if self.is_explicit_key(first_key) {
                    // New entries go at the key's column, which is right of the `?`.
                    return Err(RemedyError::Unsupported {
                        file: self.file.to_string(),
                        reason: format!(
                            "the mapping at {} is written with explicit `? key` entries; \
                             edit it by hand",
                            self.path
                        ),
                    });
                }
                let Some((_, last)) = entries.last() else {
                    return Err(self.flow());
                };
                let text = NewNode::entries_text(&new, first_key.col, self.layout);
                Ok(self.insertion(self.line_after(last.end), text))
            }
            (Kind::Sequence(items), Content::Items(new)) if !parent.flow => {
                let (Some(first), Some(last)) = (items.first(), items.last()) else {
                    return Err(self.flow());
                };
                let text = NewNode::items_text(&new, self.dash_col(first), self.layout);
                Ok(self.insertion(self.line_after(last.end), text))
            }
            (Kind::Mapping(_), Content::Items(_)) if !parent.flow => {
                Err(self.not_found("a mapping is where a list should be"))
            }
            (Kind::Sequence(_), Content::Entries(_)) if !parent.flow => {
                Err(self.not_found("a list is where a mapping should be"))
            }
            (_, content) => {
                let empty = match &parent.kind {
                    Kind::Mapping(entries) => entries.is_empty(),
                    Kind::Sequence(items) => items.is_empty(),
                    Kind::Scalar { .. } => parent.is_null(),
                    Kind::Alias => false,
                };
                match key {
                    Some(key) if empty && !outer_flow => self.fill_empty(key, parent, content),
                    _ if parent.flow || outer_flow => Err(self.flow()),
                    _ => Err(self.not_found("a scalar is in the way")),
                }
            }
        }
    }

    /// What to write below `parent` for the missing segments `rest`.
    fn content(
        &self,
        parent: &Node,
        rest: &[Segment],
        value: &Value,
    ) -> Result<Content, RemedyError> {
        let Some((first, tail)) = rest.split_first() else {
            return Err(self.not_found("nothing to add"));
        };
        match first {
            Segment::Key(k) => Ok(Content::Entries(vec![(k.clone(), self.wrap(tail, value)?)])),
            Segment::Select { key, value: name } => Ok(Content::Items(vec![
                self.select_item(key, name, tail, value)?,
            ])),
            Segment::Index(i) => {
                let len = match &parent.kind {
                    Kind::Sequence(items) => items.len(),
                    _ => 0,
                };
                if *i == len {
                    Ok(Content::Items(vec![self.wrap(tail, value)?]))
                } else {
                    Err(self.not_found(format!(
                        "list item [{i}] does not exist (the list has {len})"
                    )))
                }
            }
        }
    }

    /// The new node holding `value` at the end of `segments`.
    fn wrap(&self, segments: &[Segment], value: &Value) -> Result<NewNode, RemedyError> {
        let Some((first, tail)) = segments.split_first() else {
            return Ok(NewNode::from_json(value));
        };
        match first {
            Segment::Key(k) => Ok(NewNode::Map(vec![(k.clone(), self.wrap(tail, value)?)])),
            Segment::Select { key, value: name } => Ok(NewNode::List(vec![
                self.select_item(key, name, tail, value)?,
            ])),
            Segment::Index(0) => Ok(NewNode::List(vec![self.wrap(tail, value)?])),
            Segment::Index(i) => Err(self.not_found(format!("list item [{i}] does not exist"))),
        }
    }

    /// A new list item `{key: name, ...}` holding `value` at `tail`.
    fn select_item(
        &self,
        key: &str,
        name: &str,
        tail: &[Segment],
        value: &Value,
    ) -> Result<NewNode, RemedyError> {
        let mut entries = match self.wrap(tail, value)? {
            NewNode::Map(entries) => entries,
            _ => {
                return Err(
                    self.not_found(format!("a new [{key}={name}] list item must be a mapping"))
                );
            }
        };
        if !entries.iter().any(|(k, _)| k == key) {
            entries.insert(
                0,
                (
                    key.to_string(),
                    NewNode::Leaf(Value::String(name.to_string())),
                ),
            );
        }
        Ok(NewNode::Map(entries))
    }

    /// Gives content to `key: {}`, `key: []`, `key: ~` or a bare `key:` on one line: the value is
    /// dropped (a trailing comment stays) and block lines follow.
    fn fill_empty(
        &self,
        key: &Node,
        value: &Node,
        content: Content,
    ) -> Result<Splice, RemedyError> {
        let value_end = value.end.max(key.end);
        if self.text[key.end..value_end].contains('\n') {
            return Err(self.flow());
        }
        if value.start == value.end {
            // The new lines go after `key:`; `? key` with no colon has nothing to go after.
            self.colon_after(key)?;
        }
        let eol = self.line_after(value_end);
        let mut text = String::from(if value.start == value.end { "" } else { ":" });
        text.push_str(&self.text[value_end..eol]);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&match content {
            Content::Entries(entries) => {
                NewNode::entries_text(&entries, key.col + self.layout.unit, self.layout)
            }
            Content::Items(items) => {
                let indent = if self.layout.indented_sequences {
                    self.layout.unit
                } else {
                    0
                };
                NewNode::items_text(&items, key.col + indent, self.layout)
            }
        });
        let start = if value.start == value.end {
            value_end
        } else {
            key.end
        };
        Ok(Splice {
            start,
            end: eol,
            text,
        })
    }

    /// The byte after the colon of `key: ...`. Only blanks may lie between the key and its
    /// colon: `? key` with no `:` has none, and the next colon belongs to another key.
    fn colon_after(&self, key: &Node) -> Result<usize, RemedyError> {
        self.text[key.end..]
            .find(':')
            .map(|i| key.end + i)
            .filter(|&at| self.text[key.end..at].trim().is_empty())
            .map(|at| at + 1)
            .ok_or_else(|| self.not_found("no `:` after the key"))
    }

    /// Inserting whole lines at `at` (a line start, or the end of a text with no final newline).
    fn insertion(&self, at: usize, text: String) -> Splice {
        let text = if at == self.text.len() && !self.text.is_empty() && !self.text.ends_with('\n') {
            format!("\n{text}")
        } else {
            text
        };
        Splice {
            start: at,
            end: at,
            text,
        }
    }

    /// The start of the line after the one holding the last byte before `end`.
    fn line_after(&self, end: usize) -> usize {
        let from = end.saturating_sub(1);
        self.text.as_bytes()[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.text.len(), |i| from + i + 1)
    }

    /// Whether `key` is written in the explicit form, after a `?` on its line or on a line
    /// before it with only blanks and comments between.
    fn is_explicit_key(&self, key: &Node) -> bool {
        self.code_before(key.start)
            .map(|(_, code)| code.trim_end())
            .find(|code| !code.is_empty())
            // Only indicators before it (`?`, `- ?`), the last one a `?`.
            .is_some_and(|code| {
                code.ends_with('?')
                    && code
                        .split_whitespace()
                        .all(|word| word == "?" || word == "-")
            })
    }

    /// The code (comments cut off) of the line holding `at`, up to `at`, then of each line
    /// before it, nearest first, each with the offset where its line starts.
    fn code_before(&self, at: usize) -> impl Iterator<Item = (usize, &'a str)> {
        let text = self.text;
        let mut end = Some(at);
        std::iter::from_fn(move || {
            let line_end = end?;
            let line_start = text[..line_end].rfind('\n').map_or(0, |i| i + 1);
            end = line_start.checked_sub(1);
            Some((line_start, uncommented(&text[line_start..line_end])))
        })
    }

    /// The column of the `-` in front of a block list item.
    ///
    /// The dash need not be on the item's line, nor right before it: a block scalar starts at
    /// its content (or, when empty, at the next line), below its `|` or `>` header (`-  |`), and
    /// `-` may end its line (before a comment, or an item on the next lines). Only blanks,
    /// comments and such a header can lie between the dash and the item, so the dash is the last
    /// free-standing `-` outside comments before the item (the `-` of `|-` is not).
    fn dash_col(&self, item: &Node) -> usize {
        match self.dash_of(item) {
            Some(dash) => {
                let line_start = self.text[..dash].rfind('\n').map_or(0, |i| i + 1);
                self.text[line_start..dash].chars().count()
            }
            None => item.col.saturating_sub(2),
        }
    }

    /// The byte offset of the `-` in front of a block list item: the last free-standing `-`
    /// outside comments before it (see [`Editor::dash_col`]).
    fn dash_of(&self, item: &Node) -> Option<usize> {
        self.code_before(item.start)
            .find_map(|(line_start, code)| lone_dash(code).map(|i| line_start + i))
    }

    /// The dash of an empty list item, when only blanks and comments lie between the two.
    fn empty_item_dash(&self, item: &Node) -> Option<usize> {
        let dash = self.dash_of(item)?;
        let between = &self.text[dash + 1..item.start];
        between
            .split('\n')
            .all(|line| uncommented(line).trim().is_empty())
            .then_some(dash)
    }

    /// The document's own indentation step and list style, for the lines it gets.
    fn detect_layout(&self) -> Layout {
        let mut unit: Option<usize> = None;
        let mut indented = None;
        let mut stack = vec![self.root];
        while let Some(node) = stack.pop() {
            match &node.kind {
                Kind::Mapping(entries) if !node.flow => {
                    for (key, value) in entries {
                        match &value.kind {
                            Kind::Mapping(inner) if !value.flow => {
                                if let Some((first, _)) = inner.first() {
                                    let step = first.col.saturating_sub(key.col);
                                    if step > 0 && unit.is_none_or(|u| step < u) {
                                        unit = Some(step);
                                    }
                                }
                            }
                            Kind::Sequence(items) if !value.flow => {
                                if let Some(first) = items.first() {
                                    indented.get_or_insert(self.dash_col(first) > key.col);
                                }
                            }
                            _ => {}
                        }
                        stack.push(value);
                    }
                }
                Kind::Sequence(items) if !node.flow => stack.extend(items),
                _ => {}
            }
        }
        Layout {
            unit: unit.unwrap_or(2),
            indented_sequences: indented.unwrap_or(true),
        }
    }
}

/// `line` up to its comment: a `#` at its start or after a blank.
fn uncommented(line: &str) -> &str {
    let bytes = line.as_bytes();
    let end = (0..bytes.len())
        .find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()))
        .unwrap_or(bytes.len());
    &line[..end]
}

/// The byte offset of the last `-` of `code` with a blank (or nothing) on both sides, as a list
/// item's dash has.
fn lone_dash(code: &str) -> Option<usize> {
    let bytes = code.as_bytes();
    (0..bytes.len()).rev().find(|&i| {
        bytes[i] == b'-'
            && (i == 0 || bytes[i - 1].is_ascii_whitespace())
            && bytes.get(i + 1).is_none_or(u8::is_ascii_whitespace)
    })
}

/// How a block scalar treats its final line breaks.
enum Chomp {
    Clip,
    Strip,
    Keep,
}

/// The content of a literal block scalar, de-indented, with the map back to the outer text.
struct Block {
    text: String,
    /// Per content line: (offset in `text`, offset of the line in the outer text, bytes of
    /// indentation removed).
    lines: Vec<(usize, usize, usize)>,
    indent: usize,
}

impl Block {
    /// Reads the block whose first non-blank character is `node.start`; `None` when the header
    /// has an indentation indicator or the de-indented text is not exactly the parsed value.
    fn read(outer: &str, node: &Node, value: &str) -> Option<Block> {
        let mut content_start = outer[..node.start].rfind('\n').map_or(0, |i| i + 1);
        let header = loop {
            let prev = outer[..content_start.checked_sub(1)?]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            let line = &outer[prev..content_start];
            if !line.trim().is_empty() {
                break line;
            }
            content_start = prev;
        };
        // Only `|`, `|-` and `|+`: an indentation indicator (`|2`) would change the de-indenting.
        let header = header.split(" #").next().unwrap_or(header).trim_end();
        let chomp = match header.rsplit(' ').next()? {
            "|" => Chomp::Clip,
            "|-" => Chomp::Strip,
            "|+" => Chomp::Keep,
            _ => return None,
        };
        let indent = node.col;
        let mut block = Block {
            text: String::new(),
            lines: Vec::new(),
            indent,
        };
        let mut offset = content_start;
        for line in outer[content_start..node.end].split_inclusive('\n') {
            let body = line.trim_end_matches('\n');
            let stripped =
                if body.len() >= indent && body.as_bytes()[..indent].iter().all(|&b| b == b' ') {
                    indent
                } else if body.bytes().all(|b| b == b' ') {
                    body.len()
                } else {
                    return None;
                };
            block.lines.push((block.text.len(), offset, stripped));
            block.text.push_str(&line[stripped..]);
            offset += line.len();
        }
        let trimmed = block.text.trim_end_matches('\n');
        let expected = match chomp {
            Chomp::Strip => trimmed.to_string(),
            Chomp::Keep => block.text.clone(),
            Chomp::Clip if trimmed.is_empty() => String::new(),
            Chomp::Clip => format!("{trimmed}\n"),
        };
        (expected == value).then_some(block)
    }

    /// Where offset `at` of the de-indented text lies in the outer text.
    fn outer_offset(&self, at: usize) -> usize {
        let index = self
            .lines
            .partition_point(|(inner, _, _)| *inner <= at)
            .saturating_sub(1);
        match self.lines.get(index) {
            Some(&(inner, outer, _)) if inner == at => outer,
            Some(&(inner, outer, stripped)) => outer + stripped + (at - inner),
            None => 0,
        }
    }

    /// The splice of the outer text doing what `inner` does to the de-indented text; new lines
    /// get the block's indentation.
    fn outer(&self, inner: &Splice) -> Splice {
        let at_line_start = inner.start == 0 || self.text.as_bytes()[inner.start - 1] == b'\n';
        let pad = " ".repeat(self.indent);
        let mut text = String::new();
        for (i, piece) in inner.text.split_inclusive('\n').enumerate() {
            if (i > 0 || at_line_start) && piece != "\n" {
                text.push_str(&pad);
            }
            text.push_str(piece);
        }
        Splice {
            start: self.outer_offset(inner.start),
            end: self.outer_offset(inner.end),
            text,
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
