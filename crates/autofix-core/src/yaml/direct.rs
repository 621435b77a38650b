//! JSON values built straight from the YAML parser's events, for plain data.
//!
//! Most manifests are plain data: mappings with string keys, sequences, and scalars whose
//! meaning is not in doubt (`web`, `8080`, `true`, `256Mi`). For those, building the values
//! from the events of the parser serde-saphyr itself uses (granit-parser, same options) is
//! about twice as fast as going through serde's data model. Everything else is left to
//! serde-saphyr: [`documents`] answers `None` and the caller parses the text the full way.
//! "Everything else" is anchors, aliases, tags, `%YAML` directives, merge keys, keys that are
//! not strings, repeated keys, scalars that might not be strings (`yes`, `1e3`, `0x1F`, `.5`;
//! those are resolved by serde-saphyr one at a time), syntax errors (for serde-saphyr's
//! message), scalars written with a carriage return, and texts near serde-saphyr's budget. So
//! both ways give the same values, which the tests below check over every manifest of the
//! repository and the fuzz target `yaml_parse` checks over arbitrary text.

use serde_json::{Map, Number, Value};
use serde_saphyr::granit_parser::{Event, Options, Parser, ScalarStyle};

/// Deepest nesting built here; serde-saphyr's default budget stops at 64.
const MAX_DEPTH: usize = 60;
/// Most nodes built here; serde-saphyr's default budget stops at 250,000.
const MAX_NODES: usize = 240_000;
/// Most documents built here; serde-saphyr's default budget stops at 1,024.
const MAX_DOCUMENTS: usize = 1_000;

/// Every document of `text` (an empty one is `Null`), or `None` when serde-saphyr must decide.
pub(super) fn documents(text: &str) -> Option<Vec<Value>> {
    let mut documents = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    let mut root: Option<Value> = None;
    let mut nodes = 0usize;
    // Comments carry no data. They are still checked as syntax, but not captured as events
    // (kube's client turns on granit-parser's `comments` feature for the whole build).
    let mut options = Options::default();
    options.set_emit_comments(false);
    for event in Parser::new_from_str_with_options(text, options) {
        let (event, span) = event.ok()?;
        let value = match event {
            Event::StreamStart | Event::StreamEnd => continue,
            Event::DocumentStart(_, version) => {
                if version.is_some() || documents.len() >= MAX_DOCUMENTS {
                    return None;
                }
                continue;
            }
            Event::DocumentEnd => {
                documents.push(root.take().unwrap_or(Value::Null));
                continue;
            }
            Event::SequenceStart(_, anchor, ref tag) | Event::MappingStart(_, anchor, ref tag) => {
                nodes += 1;
                if anchor != 0 || tag.is_some() || open.len() >= MAX_DEPTH || nodes > MAX_NODES {
                    return None;
                }
                open.push(match event {
                    Event::SequenceStart(..) => Open::Sequence(Vec::new()),
                    _ => Open::Mapping(Map::new(), None),
                });
                continue;
            }
            Event::SequenceEnd => match open.pop()? {
                Open::Sequence(items) => Value::Array(items),
                Open::Mapping(..) => return None,
            },
            Event::MappingEnd => match open.pop()? {
                Open::Mapping(map, None) => Value::Object(map),
                _ => return None,
            },
            Event::Scalar(value, style, anchor, tag) => {
                nodes += 1;
                if anchor != 0 || tag.is_some() || nodes > MAX_NODES {
                    return None;
                }
                // How a carriage return folds is serde-saphyr's to say (the fuzz target found
                // it keeping one more line break than the parser's value).
                let source = text.get(span.start.byte_offset()?..span.end.byte_offset()?)?;
                if source.contains('\r') {
                    return None;
                }
                scalar(&value, style)?
            }
            // Anything else (aliases) is serde-saphyr's to expand.
            _ => return None,
        };
        match open.last_mut() {
            None if root.is_none() => root = Some(value),
            None => return None,
            Some(Open::Sequence(items)) => items.push(value),
            Some(Open::Mapping(map, key)) => match key.take() {
                Some(key) => {
                    map.insert(key, value);
                }
                None => match value {
                    Value::String(new) if new != "<<" && !map.contains_key(&new) => {
                        *key = Some(new)
                    }
                    _ => return None,
                },
            },
        }
    }
    open.is_empty().then_some(documents)
}

/// A collection whose end has not been reached yet.
enum Open {
    Sequence(Vec<Value>),
    /// The entries so far, and the key waiting for its value.
    Mapping(Map<String, Value>, Option<String>),
}

/// The value of one scalar, or `None` when it is not certain here.
pub(super) fn scalar(text: &str, style: ScalarStyle) -> Option<Value> {
    if style != ScalarStyle::Plain {
        return Some(Value::String(text.to_string()));
    }
    match text {
        "" | "~" | "null" => return Some(Value::Null),
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        _ => {}
    }
    if let Some(number) = integer(text).or_else(|| decimal(text)) {
        return Some(Value::Number(number));
    }
    if surely_text(text) {
        return Some(Value::String(text.to_string()));
    }
    resolved_by_serde_saphyr(text)
}

/// `0`, `42`, `-7`: decimal integers without a leading zero that fit an `i64`.
fn integer(text: &str) -> Option<Number> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let plain = text != "-0"
        && matches!(digits.as_bytes(), [b'0'] | [b'1'..=b'9', ..])
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit());
    if !plain {
        return None;
    }
    text.parse::<i64>().ok().map(Number::from)
}

/// `0.5`, `-12.25`: decimals with digits on both sides of the point, nothing else.
fn decimal(text: &str) -> Option<Number> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.')?;
    let plain = integer(whole).is_some()
        && !fraction.is_empty()
        && fraction.len() <= 15
        && fraction.bytes().all(|b| b.is_ascii_digit());
    if !plain {
        return None;
    }
    Number::from_f64(text.parse().ok()?)
}

/// Plain scalars no YAML schema reads as anything but a string.
///
/// - a first character that starts no number, null, boolean or special float (not a digit,
///   `-`, `+`, `.` or `~`), in words that are not one of the YAML 1.1 or 1.2 keywords;
/// - a number followed by a unit made of letters (`256Mi`, `100m`, `1.5Gi`, `30s`), when the
///   unit cannot start an exponent, a hex, octal or binary number (`e`, `x`, `o`, `b`).
fn surely_text(text: &str) -> bool {
    let Some(&first) = text.as_bytes().first() else {
        return false;
    };
    if first.is_ascii_digit() {
        let unit_at = text
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(unit_at);
        return (integer(number).is_some() || decimal(number).is_some())
            && unit
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() && !b"eExXoObB".contains(&b))
            && unit.bytes().all(|b| b.is_ascii_alphabetic());
    }
    if b"-+.~".contains(&first) {
        return false;
    }
    !KEYWORDS.iter().any(|word| text.eq_ignore_ascii_case(word))
}

/// Words some YAML schema reads as null, a boolean or a special float.
const KEYWORDS: [&str; 12] = [
    "null", "true", "false", "yes", "no", "on", "off", "y", "n", "nan", "inf", "infinity",
];

/// A plain scalar resolved by serde-saphyr alone, as it would be inside a document.
///
/// The value is read again as a document of its own, which is only the same scalar when it
/// reads back unchanged: a value with a line break (kept from a blank line) would be folded
/// again, so it is left to serde-saphyr with its document, as is any text that does not come
/// back as itself.
fn resolved_by_serde_saphyr(text: &str) -> Option<Value> {
    if text.contains('\n') {
        return None;
    }
    match serde_saphyr::from_str::<Value>(text).ok()? {
        Value::Array(_) | Value::Object(_) => None,
        Value::String(read) if read != text => None,
        scalar => Some(scalar),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// The reference: what serde-saphyr makes of the whole text.
    fn reference(text: &str) -> Option<Vec<Value>> {
        serde_saphyr::from_multiple(text).ok()
    }

    #[test]
    fn scalars_decided_here_mean_what_serde_saphyr_says() {
        let decided_here = [
            "",
            "~",
            "null",
            "true",
            "false",
            "0",
            "7",
            "-7",
            "8080",
            "123456789012345678",
            "0.5",
            "-12.25",
            "1.0",
            "web",
            "nginx:1.25",
            "/healthz",
            "$(POD_IP)",
            "_x",
            "256Mi",
            "100m",
            "1.5Gi",
            "30s",
            "1h",
            "Always",
            "ClusterIP",
            "éclair",
            "a b c",
            "=",
        ];
        for text in decided_here {
            assert!(
                integer(text).is_some()
                    || decimal(text).is_some()
                    || surely_text(text)
                    || ["", "~", "null", "true", "false"].contains(&text),
                "{text:?} should be decided without serde-saphyr"
            );
            assert_eq!(
                scalar(text, ScalarStyle::Plain),
                resolved_by_serde_saphyr(text).or(Some(Value::Null)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn doubtful_scalars_are_left_to_serde_saphyr() {
        let doubtful = [
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "N",
            "True",
            "NULL",
            "nan",
            ".nan",
            ".inf",
            "-.inf",
            "Infinity",
            "1e3",
            "1E3",
            "1.5e3",
            "0x1F",
            "0o17",
            "0b101",
            "0777",
            "-0",
            "+1",
            "1_000",
            "10.0.0.1",
            "12:30",
            "2001-12-14",
            "1.",
            ".5",
            "1234567890123456789",
            "-foo",
        ];
        for text in doubtful {
            assert!(
                integer(text).is_none() && decimal(text).is_none() && !surely_text(text),
                "{text:?} must not be decided here"
            );
            assert_eq!(
                scalar(text, ScalarStyle::Plain),
                resolved_by_serde_saphyr(text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn quoted_and_block_scalars_are_strings() {
        let docs = documents("a: '1'\nb: \"true\"\nc: |\n  x\nd: >-\n  y\n").unwrap();
        assert_eq!(
            docs,
            vec![serde_json::json!({"a": "1", "b": "true", "c": "x\n", "d": "y"})]
        );
    }

    #[test]
    fn what_needs_serde_saphyr_is_left_to_it() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: !custom {}\n",
            "base: &b {x: 1}\nc:\n  <<: *b\n",
            "a: 1\na: 2\n",
            "1: one\n",
            "? [a]\n: b\n",
            "%YAML 1.1\n---\na: yes\n",
            "a: [1,\n b: }",
            "a: \"one\rtwo\"\n",
            // Found by the fuzz target: serde-saphyr keeps one more break here.
            "# b\r\r\r9h\r\r9h9# b\r\r9\r\r9\r",
            // Found by the fuzz target: a plain scalar keeps the line break of a blank line
            // ("1000\n}"), which reading its value again as a document would fold away.
            "a: 1000\n  \n  }\n",
            &"[".repeat(70),
        ] {
            assert_eq!(documents(text), None, "{text:?}");
        }
    }

    #[test]
    fn documents_match_serde_saphyr_on_every_manifest_of_the_repository() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut folders = vec![
            root.join("examples"),
            root.join("deploy"),
            root.join("tests"),
        ];
        folders.extend(std::env::var_os("AUTOFIX_SCENARIOS").map(PathBuf::from));
        folders.push(root.join("../shared/scenarios"));
        let mut files = Vec::new();
        for folder in &folders {
            yaml_files(folder, &mut files);
        }
        assert!(
            files.len() >= 20,
            "too few YAML files found: {}",
            files.len()
        );
        let mut direct = 0;
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            if let Some(built) = documents(&text) {
                direct += 1;
                assert_eq!(Some(built), reference(&text), "{}", file.display());
            }
        }
        // Nearly every manifest is plain data: the fast way must be the usual one.
        assert!(
            direct * 10 >= files.len() * 9,
            "only {direct} of {} files were built directly",
            files.len()
        );
    }

    fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                yaml_files(&path, out);
            } else if path
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
            {
                out.push(path);
            }
        }
    }
}
