//! A small tree of YAML nodes with byte spans, built from saphyr-parser events.
//!
//! saphyr-parser's markers count characters, and the end markers of quoted scalars, flow
//! collections and block scalars can run past the node (over a trailing comment, or the next
//! line's indentation), so those ends are found from the text, and ends of block collections are
//! the ends of their last child.

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Span};

/// One node of a YAML document.
#[derive(Debug)]
pub(crate) struct Node {
    pub kind: Kind,
    /// Byte offset of the node's first character, anchor and tag included.
    pub start: usize,
    /// Byte offset just after the node's last character (closing quote or bracket included).
    pub end: usize,
    /// Column of `start`, in characters.
    pub col: usize,
    /// The node carries an anchor (`&name`): editing it would change its aliases too.
    pub anchored: bool,
    /// The node carries an explicit tag (`!!str`).
    pub tagged: bool,
    /// A collection written in flow style (`{...}` or `[...]`).
    pub flow: bool,
}

/// What a node holds.
#[derive(Debug)]
pub(crate) enum Kind {
    Scalar {
        value: String,
        style: ScalarStyle,
    },
    /// Key and value nodes, in text order.
    Mapping(Vec<(Node, Node)>),
    Sequence(Vec<Node>),
    Alias,
}

impl Node {
    /// The value of the entry whose key is the plain or quoted scalar `key`, with its key node.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.kind {
            Kind::Mapping(entries) => entries
                .iter()
                .find(|(k, _)| k.scalar() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// The text of a scalar node.
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The value of a scalar node as the reader gives it (null, a boolean, a number or a
    /// string).
    pub fn typed(&self) -> Option<serde_json::Value> {
        match &self.kind {
            Kind::Scalar { value, style } => Some(autofix_core::yaml::scalar_value(
                value,
                *style == ScalarStyle::Plain,
            )),
            _ => None,
        }
    }

    /// True for an empty value, `~` or `null` written plain: a key with nothing under it yet.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, style: ScalarStyle::Plain }
            if !self.anchored && !self.tagged
                && matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// True when the node is an alias or its own content is shared through an anchor.
    pub fn is_shared(&self) -> bool {
        self.anchored || matches!(self.kind, Kind::Alias)
    }
}

/// Parses every document of `text`; empty documents (and `null` ones) are skipped, the same way
/// [`autofix_core::yaml::parse_documents`] skips them, so indexes agree.
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, ScanError> {
    let offsets = Offsets::new(text);
    let mut docs = Vec::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Node> = None;
    let mut parser = Parser::new_from_str(text);
    while let Some(event) = parser.next_event() {
        let (event, span) = event?;
        let node = match event {
            Event::DocumentStart(_) => {
                root = None;
                continue;
            }
            Event::DocumentEnd => {
                if let Some(node) = root.take().filter(|n| !n.is_null()) {
                    docs.push(node);
                }
                continue;
            }
            Event::Scalar(value, style, anchor, tag) => {
                let ends_in_spaces = last_line_is_spaces(&value);
                let mut node = offsets.node(
                    span,
                    Kind::Scalar {
                        value: value.into_owned(),
                        style,
                    },
                    anchor,
                    tag.is_some(),
                );
                match style {
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                        node.end = quoted_end(text, node.start).unwrap_or(node.end);
                    }
                    // The end marker of a block scalar can sit after the next line's indentation,
                    // unless that line of spaces is the scalar's own last line: spaces beyond
                    // its indentation are content.
                    ScalarStyle::Literal | ScalarStyle::Folded => {
                        let line_start = text[..node.end].rfind('\n').map_or(0, |i| i + 1);
                        if text[line_start..node.end].trim().is_empty() && !ends_in_spaces {
                            node.end = line_start;
                            // An empty one (`k: |` over a line indented less) can have its start
                            // there too, past the line it belongs to: it ends where that ends.
                            if node.start > line_start {
                                node.start = line_start;
                                node.col = 0;
                            }
                        }
                    }
                    // An empty value has no characters, but its markers can cover the next
                    // ones (`}` in `{k}`): where it starts is all that is known of it. With an
                    // anchor or a tag it has characters, which can go on over lines.
                    ScalarStyle::Plain
                        if node.scalar() == Some("") && !node.anchored && !node.tagged =>
                    {
                        node.end = node.start;
                    }
                    ScalarStyle::Plain => {}
                }
                node
            }
            Event::Alias(_) => offsets.node(span, Kind::Alias, 0, false),
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                let kind = if matches!(event, Event::MappingStart(..)) {
                    Kind::Mapping(Vec::new())
                } else {
                    Kind::Sequence(Vec::new())
                };
                let mut node = offsets.node(span, kind, anchor, tag.is_some());
                let bracketed = text[node.start..node.end]
                    .trim_end()
                    .ends_with(['{', '['].as_slice());
                // Inside a flow collection everything is flow, also the single `key: value`
                // pair of a flow list (`[a: 1]`), which has no brackets of its own.
                node.flow = bracketed || stack.last().is_some_and(|open| open.node.flow);
                stack.push(Open {
                    node,
                    key: None,
                    bracketed,
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(Open {
                    mut node,
                    bracketed,
                    ..
                }) = stack.pop()
                else {
                    continue;
                };
                node.end = if bracketed {
                    // The end event starts at the closing bracket; its end may run over a comment.
                    offsets.byte(span.start) + 1
                } else {
                    last_child_end(&node).unwrap_or(node.end)
                };
                node
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => continue,
        };
        match stack.last_mut() {
            None => root = Some(node),
            Some(open) => open.attach(node),
        }
    }
    Ok(docs)
}

/// A collection whose children are still being read.
struct Open {
    node: Node,
    /// A mapping key waiting for its value.
    key: Option<Node>,
    /// Written with its own `{` or `[`.
    bracketed: bool,
}

impl Open {
    fn attach(&mut self, child: Node) {
        match &mut self.node.kind {
            Kind::Mapping(entries) => match self.key.take() {
                Some(key) => entries.push((key, child)),
                None => self.key = Some(child),
            },
            Kind::Sequence(items) => items.push(child),
            Kind::Scalar { .. } | Kind::Alias => {}
        }
    }
}

/// Whether a block scalar's content ends with a line of nothing but spaces (or tabs).
fn last_line_is_spaces(value: &str) -> bool {
    let last = value.trim_end_matches('\n').rsplit('\n').next();
    last.is_some_and(|line| !line.is_empty() && line.trim().is_empty())
}

fn last_child_end(node: &Node) -> Option<usize> {
    match &node.kind {
        Kind::Mapping(entries) => entries.last().map(|(_, v)| v.end),
        Kind::Sequence(items) => items.last().map(|i| i.end),
        Kind::Scalar { .. } | Kind::Alias => None,
    }
}

/// The byte just after the closing quote of the quoted scalar starting at `start` (after any
/// anchor or tag).
fn quoted_end(text: &str, start: usize) -> Option<usize> {
    let rest = &text[start..];
    let open = rest.find(['"', '\''])?;
    let quote = rest[open..].chars().next()?;
    let mut chars = rest[open + 1..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if quote == '"' && c == '\\' {
            chars.next();
        } else if c == quote {
            if quote == '\'' && chars.peek().map(|(_, n)| *n) == Some('\'') {
                chars.next();
                continue;
            }
            return Some(start + open + 1 + i + 1);
        }
    }
    None
}

/// Converts saphyr-parser's character indexes to byte offsets.
struct Offsets {
    /// Byte offset of each character, plus the text length; empty for ASCII text.
    bytes: Vec<usize>,
    len: usize,
    /// Character index of each line's first character, and of the end of the text.
    lines: Vec<usize>,
}

impl Offsets {
    fn new(text: &str) -> Offsets {
        let bytes = if text.is_ascii() {
            Vec::new()
        } else {
            text.char_indices()
                .map(|(i, _)| i)
                .chain([text.len()])
                .collect()
        };
        let lines = std::iter::once(0)
            .chain(
                text.chars()
                    .enumerate()
                    .filter(|(_, c)| *c == '\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        Offsets {
            bytes,
            len: text.len(),
            lines,
        }
    }

    /// The byte offset of a marker, from its line and column: saphyr's character index runs
    /// ahead after a directive it does not know (`%a é`: it counts that line's bytes).
    fn byte(&self, at: Marker) -> usize {
        let line = at.line().saturating_sub(1);
        let char_index = match self.lines.get(line) {
            Some(start) => start + at.col(),
            None => usize::MAX,
        };
        if self.bytes.is_empty() {
            char_index.min(self.len)
        } else {
            self.bytes.get(char_index).copied().unwrap_or(self.len)
        }
    }

    fn node(&self, span: Span, kind: Kind, anchor: usize, tagged: bool) -> Node {
        Node {
            kind,
            start: self.byte(span.start),
            end: self.byte(span.end),
            col: span.start.col(),
            anchored: anchor != 0,
            tagged,
            flow: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span_text<'a>(text: &'a str, node: &Node) -> &'a str {
        &text[node.start..node.end]
    }

    #[test]
    fn quoted_scalars_end_at_their_quote() {
        let text = "a: \"q\\\"x\" # c\nb: 'it''s' # d\nc: é # e\n";
        let docs = parse(text).unwrap();
        let (_, a) = docs[0].entry("a").unwrap();
        let (_, b) = docs[0].entry("b").unwrap();
        let (_, c) = docs[0].entry("c").unwrap();
        assert_eq!(span_text(text, a), "\"q\\\"x\"");
        assert_eq!(span_text(text, b), "'it''s'");
        assert_eq!(span_text(text, c), "é");
    }

    #[test]
    fn block_collections_end_at_their_last_child() {
        let text = "a:\n  b: 1\n  c: [1, 2] # x\n# after\nd: {e: f}\n";
        let docs = parse(text).unwrap();
        let (_, a) = docs[0].entry("a").unwrap();
        assert!(!a.flow);
        assert!(span_text(text, a).ends_with("c: [1, 2]"));
        let (_, d) = docs[0].entry("d").unwrap();
        assert!(d.flow);
        assert_eq!(span_text(text, d), "{e: f}");
    }

    #[test]
    fn skips_empty_documents_like_the_safe_reader() {
        let text = "---\n---\na: 1\n---\n# only a comment\n---\nb: 2\n";
        let docs = parse(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(
            autofix_core::yaml::parse_documents(text).unwrap().len(),
            docs.len()
        );
    }

    #[test]
    fn marks_anchors_and_aliases() {
        let docs = parse("a: &x {b: 1}\nc: *x\n").unwrap();
        assert!(docs[0].entry("a").unwrap().1.is_shared());
        assert!(docs[0].entry("c").unwrap().1.is_shared());
    }
}
