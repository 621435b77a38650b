//! Writing YAML text for new values: scalars in the style of the value they replace, and new
//! keys or list items in block style with the file's indentation.

use saphyr_parser::ScalarStyle;
use serde_json::Value;

/// A scalar for `value`, written in `old` style where that keeps its meaning.
///
/// Strings keep the quoting of the scalar they replace; a plain string is quoted only when plain
/// text would read back as something else (a number, a boolean, null, a date) or is not valid
/// plain YAML there. Numbers, booleans and null are always plain.
pub(crate) fn scalar(value: &Value, old: Option<ScalarStyle>, in_flow: bool) -> String {
    match value {
        Value::String(s) => match old {
            Some(ScalarStyle::DoubleQuoted) => double_quoted(s),
            Some(ScalarStyle::SingleQuoted) => single_quoted(s).unwrap_or_else(|| double_quoted(s)),
            _ if plain_safe(s, in_flow) => s.clone(),
            _ => double_quoted(s),
        },
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|v| scalar(v, None, true)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", key(k, true), scalar(v, None, true)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
    }
}

/// A mapping key, plain where possible.
pub(crate) fn key(k: &str, in_flow: bool) -> String {
    if plain_safe(k, in_flow) {
        k.to_string()
    } else {
        double_quoted(k)
    }
}

/// True when `s` written plain reads back as the same string.
pub(crate) fn plain_safe(s: &str, in_flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let second = s.chars().nth(1);
    let bad_start = match first {
        '-' | '?' | ':' => second.is_none_or(|c| c == ' ') || s.starts_with("---"),
        ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%'
        | '@' | '`' | ' ' => true,
        _ => s.starts_with("..."),
    };
    let flow_chars = in_flow && s.contains([',', '[', ']', '{', '}']);
    !bad_start
        && !flow_chars
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
        && s.chars().all(|c| !c.is_control() && !is_yaml_break(c))
        && !resolves_to_non_string(s)
}

/// True when a plain scalar `s` is read as a number, boolean, null or timestamp by YAML 1.1
/// (Kubernetes' go-yaml) or 1.2 readers (ours).
fn resolves_to_non_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "y", "yes", "n", "no", "true", "false", "on", "off", "null", "~", ".inf", "-.inf", "+.inf",
        ".nan",
    ];
    let lower = s.to_ascii_lowercase();
    if SPECIAL.contains(&lower.as_str()) {
        return true;
    }
    let bare = lower.replace('_', "");
    let unsigned = bare.trim_start_matches(['+', '-']);
    let radix = [("0x", 16), ("0o", 8), ("0b", 2)].iter().any(|(p, r)| {
        unsigned
            .strip_prefix(p)
            .is_some_and(|d| u64::from_str_radix(d, *r).is_ok())
    });
    let sexagesimal = unsigned.contains(':')
        && unsigned
            .split(':')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    let b = s.as_bytes();
    let timestamp = b.len() >= 8
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5].is_ascii_digit();
    radix
        || sexagesimal
        || timestamp
        || bare.parse::<f64>().is_ok()
        || !matches!(
            autofix_core::yaml::parse_documents(&format!("v: {s}\n")).as_deref(),
            Ok([Value::Object(m)]) if m.get("v") == Some(&Value::String(s.to_string()))
        )
}

/// Line breaks and characters YAML does not allow raw.
fn is_yaml_break(c: char) -> bool {
    matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
}

fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || is_yaml_break(c) => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn single_quoted(s: &str) -> Option<String> {
    let printable = s.chars().all(|c| !c.is_control() && !is_yaml_break(c));
    printable.then(|| format!("'{}'", s.replace('\'', "''")))
}

/// Indentation habits of a document, copied into the lines added to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    /// Spaces per nesting level of mappings.
    pub unit: usize,
    /// `key:\n  - item` (true) or `key:\n- item` (false).
    pub indented_sequences: bool,
}

/// A value to write as new block-style lines.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NewNode {
    /// A scalar, or an empty mapping or list (written `{}` / `[]`).
    Leaf(Value),
    Map(Vec<(String, NewNode)>),
    List(Vec<NewNode>),
}

impl NewNode {
    /// The block form of a JSON value.
    pub fn from_json(value: &Value) -> NewNode {
        match value {
            Value::Object(map) if !map.is_empty() => NewNode::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), NewNode::from_json(v)))
                    .collect(),
            ),
            Value::Array(items) if !items.is_empty() => {
                NewNode::List(items.iter().map(NewNode::from_json).collect())
            }
            leaf => NewNode::Leaf(leaf.clone()),
        }
    }

    /// Lines for mapping entries whose keys start at column `col`.
    pub fn entries_text(entries: &[(String, NewNode)], col: usize, layout: Layout) -> String {
        let mut out = String::new();
        for (k, v) in entries {
            let pad = " ".repeat(col);
            let k = key(k, false);
            match v {
                NewNode::Leaf(value) => {
                    out.push_str(&format!("{pad}{k}: {}\n", scalar(value, None, false)))
                }
                NewNode::Map(inner) => {
                    out.push_str(&format!("{pad}{k}:\n"));
                    out.push_str(&NewNode::entries_text(inner, col + layout.unit, layout));
                }
                NewNode::List(items) => {
                    out.push_str(&format!("{pad}{k}:\n"));
                    let dash = col
                        + if layout.indented_sequences {
                            layout.unit
                        } else {
                            0
                        };
                    out.push_str(&NewNode::items_text(items, dash, layout));
                }
            }
        }
        out
    }

    /// Lines for list items whose dash is at column `dash`.
    pub fn items_text(items: &[NewNode], dash: usize, layout: Layout) -> String {
        let mut out = String::new();
        let pad = " ".repeat(dash);
        for item in items {
            match item {
                NewNode::Leaf(value) => {
                    out.push_str(&format!("{pad}- {}\n", scalar(value, None, false)))
                }
                NewNode::Map(entries) => {
                    let inner = " ".repeat(dash + 2);
                    let body = NewNode::entries_text(entries, dash + 2, layout);
                    // The first key goes on the dash line: `- name: x`.
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(body.strip_prefix(&inner).unwrap_or(&body));
                }
                NewNode::List(inner) => {
                    out.push_str(&format!("{pad}-\n"));
                    out.push_str(&NewNode::items_text(inner, dash + 2, layout));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_quoting_style_of_strings() {
        let d = Some(ScalarStyle::DoubleQuoted);
        let s = Some(ScalarStyle::SingleQuoted);
        let p = Some(ScalarStyle::Plain);
        assert_eq!(scalar(&json!("3500m"), d, false), "\"3500m\"");
        assert_eq!(scalar(&json!("it's"), s, false), "'it''s'");
        assert_eq!(scalar(&json!("256Mi"), p, false), "256Mi");
        assert_eq!(scalar(&json!("/ready"), p, false), "/ready");
        assert_eq!(
            scalar(&json!("registry.example.com/storefront:2.14.0"), p, false),
            "registry.example.com/storefront:2.14.0"
        );
        assert_eq!(scalar(&json!(8080), d, false), "8080");
    }

    #[test]
    fn quotes_strings_that_would_change_type() {
        for s in [
            "1",
            "8",
            "0777",
            "1e3",
            "yes",
            "on",
            "null",
            "~",
            "true",
            "12:30",
            "0x1F",
            "2024-01-01",
            "1_000",
            "",
            " x",
            "a: b",
            "a #b",
            "#x",
            "- x",
            "*a",
            "x\ny",
        ] {
            assert!(!plain_safe(s, false), "{s:?} must be quoted");
        }
        for s in [
            "250m",
            "2.14.0",
            "1Gi",
            "/ready",
            "database_url",
            "--max-old-space-size=384",
            "-XX:+ExitOnOutOfMemoryError",
            "http://a.b:80/c",
            "a,b",
        ] {
            assert!(plain_safe(s, false), "{s:?} can stay plain");
        }
        assert!(!plain_safe("a,b", true));
        assert_eq!(scalar(&json!("a\"\n"), None, false), "\"a\\\"\\n\"");
    }

    #[test]
    fn renders_block_entries_in_both_list_styles() {
        let node = NewNode::from_json(&json!({"httpGet": {"path": "/x", "port": 80}}));
        let NewNode::Map(entries) = node else {
            panic!()
        };
        let layout = Layout {
            unit: 2,
            indented_sequences: true,
        };
        assert_eq!(
            NewNode::entries_text(&entries, 4, layout),
            "    httpGet:\n      path: /x\n      port: 80\n"
        );
        let items = vec![NewNode::from_json(&json!({"name": "A", "value": "1"}))];
        let entries = vec![("env".to_string(), NewNode::List(items))];
        assert_eq!(
            NewNode::entries_text(&entries, 2, layout),
            "  env:\n    - name: A\n      value: \"1\"\n"
        );
        let flat = Layout {
            unit: 2,
            indented_sequences: false,
        };
        assert_eq!(
            NewNode::entries_text(&entries, 2, flat),
            "  env:\n  - name: A\n    value: \"1\"\n"
        );
    }
}
