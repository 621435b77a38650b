//! Inputs the cargo-fuzz `yaml_edit` target (`fuzz/`, see docs/fuzzing.md) found, minimized,
//! kept so the bugs they showed stay fixed.

use autofix_core::path::{FieldPath, Segment};
use autofix_core::yaml::parse_documents;
use autofix_remedy::{RemedyError, set_field};
use serde_json::json;

fn path(segments: &[&str]) -> FieldPath {
    FieldPath(
        segments
            .iter()
            .map(|s| Segment::Key(s.to_string()))
            .collect(),
    )
}

/// Adding a key longer than YAML allows a plain `key:` (1024 characters) wrote YAML that does
/// not read back ("simple key expected ':'"); it is now refused.
#[test]
fn keys_too_long_for_an_implicit_key_are_refused() {
    let text = std::str::from_utf8(b"  l:\n   .:").unwrap();
    let key = "onfigMap:\n    nc-cnfig\n".repeat(60);
    let err = set_field(text, 0, &path(&["l", &key, "zz"]), &json!("/")).unwrap_err();
    assert!(matches!(err, RemedyError::Unsupported { .. }), "{err}");
    let err = set_field(text, 0, &path(&["l", "x"]), &json!({ key.as_str(): 1 })).unwrap_err();
    assert!(matches!(err, RemedyError::Unsupported { .. }), "{err}");
}

/// Keys up to the limit are still written, and read back.
#[test]
fn long_keys_within_the_limit_are_written() {
    let text = "l:\n  a: 1\n";
    let key = "k".repeat(1000);
    let (edited, _) = set_field(text, 0, &path(&["l", &key]), &json!("v")).unwrap();
    let docs = parse_documents(&edited).unwrap();
    assert_eq!(docs[0]["l"][key.as_str()], json!("v"), "{edited}");
}

/// Setting an empty list item (`-` with nothing after it) wrote the value against the dash
/// (`-":"`), which is no list item.
#[test]
fn empty_list_items_get_a_space_after_the_dash() {
    let text = std::str::from_utf8(b"y/:\n-\n").unwrap();
    let at = FieldPath(vec![Segment::Key("y/".into()), Segment::Index(0)]);
    let (edited, _) = set_field(text, 0, &at, &json!(":")).unwrap();
    assert_eq!(edited, "y/:\n- \":\"\n");
    assert_eq!(parse_documents(&edited).unwrap()[0], json!({"y/": [":"]}));
}
