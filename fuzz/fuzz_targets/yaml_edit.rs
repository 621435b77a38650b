//! The lossless YAML edit ([`autofix_remedy::set_field`], what `plan_edits` does for each write)
//! on arbitrary YAML texts.
//!
//! Input: YAML text, then optionally a NUL byte and control bytes (YAML never contains NUL)
//! that pick the edit: a document, one of the paths the document actually has (or a new key
//! below one of its mappings, or a new named list item) and a new value.
//!
//! Properties: nothing panics; the text is first read by the safe reader
//! ([`autofix_core::yaml::parse_documents`], which refuses alias bombs); when the edit succeeds,
//! the result reads back as YAML, the path holds the new value, every other value of every
//! document is unchanged, and every line outside the byte range the edit reports is kept
//! byte for byte.
#![no_main]

use autofix_core::path::{FieldPath, Segment};
use autofix_core::yaml::parse_documents;
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

/// Most paths collected from one document; the rest are not picked.
const MAX_PATHS: usize = 4096;

/// Values whose YAML spelling is easy to get wrong.
const VALUES: &[&str] = &[
    r#""512Mi""#,
    r#""250m""#,
    "1",
    "0",
    "-1",
    "1.5",
    "1e300",
    "true",
    "false",
    "null",
    r#""""#,
    r#""yes""#,
    r#""no""#,
    r#""on""#,
    r#""Off""#,
    r#""null""#,
    r#""~""#,
    r#""1""#,
    r#""0x1F""#,
    r#""0o17""#,
    r#""1e3""#,
    r#""1_000""#,
    r#"".inf""#,
    r#"".NaN""#,
    r#""a b""#,
    r#""a: b""#,
    r#""a:b""#,
    "\"#x\"",
    "\"a #x\"",
    r#""- x""#,
    r#""-""#,
    r#""?""#,
    r#"":""#,
    r#""multi\nline""#,
    r#""trailing\n""#,
    r#""'q'""#,
    r#""\"""#,
    r#""\\""#,
    r#"" lead""#,
    r#""trail ""#,
    r#""@x""#,
    r#""`x""#,
    r#""*a""#,
    r#""&a""#,
    r#""!t""#,
    r#""|""#,
    r#"">""#,
    r#""{x}""#,
    r#""[x]""#,
    r#""x,y""#,
    r#""%x""#,
    r#""---""#,
    r#""...""#,
    r#""é""#,
    r#""tab\tx""#,
    r#""\u0007""#,
    r#""\u00a0x""#,
    r#""\ufeffx""#,
    r#""2001-12-14""#,
    r#""12:30:00""#,
    r#"{"a":1}"#,
    r#"{"a":{"b":"c"}}"#,
    r#"[1,"x"]"#,
    r#"[{"name":"n"}]"#,
    "{}",
    "[]",
];

/// Keys for new fields.
const KEYS: &[&str] = &[
    "zz", "new-key", "a b", "1", "true", "null", "", "k: v", "#k", "- k", "?", "*a", "k'", "\"",
    "é", "[k]", "{k}",
];

fuzz_target!(|data: &[u8]| {
    let (yaml, control) = match data.iter().rposition(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(yaml) else {
        return;
    };
    let Ok(docs) = parse_documents(text) else {
        return;
    };
    if docs.is_empty() {
        return;
    }
    let mut u = Unstructured::new(control);
    let Some((doc, path, value)) = pick(&mut u, &docs) else {
        return;
    };
    let Ok((edited, range)) = autofix_remedy::set_field(text, doc, &path, &value) else {
        return;
    };

    // Lines outside the replaced range are kept byte for byte.
    let head = text[..range.start].rfind('\n').map_or(0, |i| i + 1);
    let tail = if range.end == 0 || text.as_bytes()[range.end - 1] == b'\n' {
        range.end
    } else {
        text[range.end..]
            .find('\n')
            .map_or(text.len(), |i| range.end + i)
    };
    assert!(
        edited.starts_with(&text[..head]),
        "lines before the edit changed:\n{edited}"
    );
    assert!(
        edited.ends_with(&text[tail..]),
        "lines after the edit changed:\n{edited}"
    );
    assert!(edited.len() >= head + (text.len() - tail));

    let after = parse_documents(&edited).unwrap_or_else(|e| {
        panic!("setting {path} to {value} gave invalid YAML ({e}):\n--- before\n{text}\n--- after\n{edited}")
    });
    assert_eq!(
        after.len(),
        docs.len(),
        "setting {path} changed the number of documents:\n{edited}"
    );
    // The edit may change the very field a `[name=...]` step selects by: follow the item's
    // position in the document as it was.
    let at = by_index(&path, &docs[doc]);
    assert_eq!(
        at.get(&after[doc]),
        Some(&value),
        "setting {path} to {value} reads back otherwise:\n--- before\n{text}\n--- after\n{edited}"
    );
    let mut expected = docs.clone();
    if path.set(&mut expected[doc], value.clone()) {
        assert_eq!(
            after, expected,
            "setting {path} to {value} changed other values:\n--- before\n{text}\n--- after\n{edited}"
        );
    } else {
        // A new list item chosen by a selector, which `FieldPath::set` does not create: the
        // other documents are unchanged.
        for (i, (a, b)) in after.iter().zip(&docs).enumerate() {
            assert!(
                i == doc || a == b,
                "setting {path} changed document {i}:\n{edited}"
            );
        }
    }
});

/// `path` with each `[name=...]` step that selects an item of `root` replaced by its index.
fn by_index(path: &FieldPath, root: &Value) -> FieldPath {
    let mut node = Some(root);
    let mut out = Vec::new();
    for segment in &path.0 {
        let step = FieldPath(vec![segment.clone()]);
        let resolved = match (segment, node) {
            (Segment::Select { .. }, Some(Value::Array(items))) => step
                .get(node.unwrap_or(&Value::Null))
                .and_then(|it| items.iter().position(|i| std::ptr::eq(i, it)))
                .map_or(segment.clone(), Segment::Index),
            _ => segment.clone(),
        };
        node = node.and_then(|n| step.get(n));
        out.push(resolved);
    }
    FieldPath(out)
}

/// A document, a path in it (existing or new) and a new value.
fn pick(u: &mut Unstructured, docs: &[Value]) -> Option<(usize, FieldPath, Value)> {
    let doc = u.choose_index(docs.len()).unwrap_or(0);
    let mut paths = Vec::new();
    collect(&docs[doc], &mut Vec::new(), &mut paths);
    let mode: u8 = u.arbitrary().unwrap_or(0);
    let value = new_value(u)?;
    let candidates: Vec<&(Vec<Segment>, Shape)> = match mode % 4 {
        // An existing scalar.
        0 => paths.iter().filter(|(_, s)| *s == Shape::Scalar).collect(),
        // A new key below an existing mapping.
        1 => paths.iter().filter(|(_, s)| *s == Shape::Map).collect(),
        // A new named item of an existing list.
        2 => paths.iter().filter(|(_, s)| *s == Shape::List).collect(),
        // Any existing node.
        _ => paths.iter().collect(),
    };
    if candidates.is_empty() {
        return None;
    }
    let (segments, _) = candidates[u.choose_index(candidates.len()).unwrap_or(0)];
    let mut segments = segments.clone();
    match mode % 4 {
        1 => {
            segments.push(Segment::Key(new_key(u)));
            if u.arbitrary().unwrap_or(false) {
                segments.push(Segment::Key(new_key(u)));
            }
        }
        2 => {
            segments.push(Segment::Select {
                key: "name".into(),
                value: new_key(u),
            });
            segments.push(Segment::Key(new_key(u)));
        }
        _ => {}
    }
    Some((doc, FieldPath(segments), value))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Scalar,
    Map,
    List,
}

/// Every path of `node`, list items by index, or by `[name=...]` when they have a name.
fn collect(node: &Value, at: &mut Vec<Segment>, out: &mut Vec<(Vec<Segment>, Shape)>) {
    if out.len() >= MAX_PATHS {
        return;
    }
    match node {
        Value::Object(map) => {
            out.push((at.clone(), Shape::Map));
            for (key, child) in map {
                at.push(Segment::Key(key.clone()));
                collect(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            out.push((at.clone(), Shape::List));
            for (i, item) in items.iter().enumerate() {
                at.push(match item.get("name").and_then(Value::as_str) {
                    Some(name)
                        if items
                            .iter()
                            .filter(|it| it.get("name") == item.get("name"))
                            .count()
                            == 1 =>
                    {
                        Segment::Select {
                            key: "name".into(),
                            value: name.to_string(),
                        }
                    }
                    _ => Segment::Index(i),
                });
                collect(item, at, out);
                at.pop();
            }
        }
        _ => out.push((at.clone(), Shape::Scalar)),
    }
}

fn new_value(u: &mut Unstructured) -> Option<Value> {
    Some(match u.arbitrary::<u8>().unwrap_or(0) % 4 {
        0 | 1 => serde_json::from_str(VALUES[u.choose_index(VALUES.len()).unwrap_or(0)]).ok()?,
        2 => json!(u.arbitrary::<String>().ok()?),
        _ => match u.arbitrary::<u8>().unwrap_or(0) % 3 {
            0 => json!(u.arbitrary::<i64>().ok()?),
            1 => json!(u.arbitrary::<f64>().ok().filter(|f| f.is_finite())?),
            _ => json!(u.arbitrary::<bool>().ok()?),
        },
    })
}

fn new_key(u: &mut Unstructured) -> String {
    match u.arbitrary::<u8>().unwrap_or(0) % 3 {
        0 => u.arbitrary::<String>().unwrap_or_default(),
        _ => KEYS[u.choose_index(KEYS.len()).unwrap_or(0)].to_string(),
    }
}
