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

/// `[name=...]`: a new item of the list at `list`, named `name`, with `key` set to `value`.
fn new_item(list: &str, name: &str, key: &str) -> FieldPath {
    FieldPath(vec![
        Segment::Key(list.into()),
        Segment::Select {
            key: "name".into(),
            value: name.into(),
        },
        Segment::Key(key.into()),
    ])
}

/// A new named item after a list item holding a block scalar (`- |`) was indented by the
/// column of the scalar's first character minus two, not at the dash: a block scalar starts
/// below its header (here, empty, at the next line), so the dash was not on its line.
#[test]
fn new_items_after_a_block_scalar_line_up_with_the_dashes() {
    let text = std::str::from_utf8(b"h\n---\ne:\n - |\ni:").unwrap();
    let (edited, _) = set_field(text, 1, &new_item("e", "", ""), &json!("512Mi")).unwrap();
    assert_eq!(
        edited,
        "h\n---\ne:\n - |\n - name: \"\"\n   \"\": 512Mi\ni:"
    );
    let docs = parse_documents(&edited).unwrap();
    assert_eq!(
        docs[1],
        json!({"e": ["", {"name": "", "": "512Mi"}], "i": null})
    );
}

/// The same with the dash away from the item's first character: extra blanks before a block
/// scalar header (`-  |`, the input the fuzzer first found) or a mapping, a header on its own
/// line or after a comment, a mapping or list starting on the line below a bare `-`. The new
/// item goes at the dash column, and everything reads back.
#[test]
fn new_items_line_up_with_dashes_far_from_the_first_item() {
    let lists = [
        "a:\n  -  |\n     set -x\n",
        "a:\n  -   >\n      folded\n",
        "a:\n  -  |+\n     kept\n\n",
        "a:\n  -  >-\n     - not an item\n",
        "a:\n  -  |\n     x\n  - y\n",
        "a:\n  -  # c\n    |\n     x\n",
        "a:\n  - |-\n    x\n",
        "a:\n  -   k: v\n      j: w\n",
        "a:\n  -\n      k: v\n",
        "a:\n  -   # c\n      k: v\n",
        "a:\n  -\n      - x\n",
        "a:\n-  |\n   x\n",
    ];
    for text in lists {
        let (edited, _) = set_field(text, 0, &new_item("a", "cache", "k"), &json!("v")).unwrap();
        let dash = text.lines().nth(1).unwrap().find('-').unwrap();
        let added = format!("\n{}- name: cache\n", " ".repeat(dash));
        assert!(edited.contains(&added), "{text:?} gave\n{edited}");
        let mut expected = parse_documents(text).unwrap().remove(0);
        expected["a"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "cache", "k": "v"}));
        assert_eq!(
            parse_documents(&edited).unwrap()[0],
            expected,
            "{text:?} gave\n{edited}"
        );
    }
}

/// Setting a whole document to null emptied it, and an empty document is no document: the file
/// read back with one document fewer, so every later document moved up one place. It is now
/// refused; any other value for the whole document is still written.
#[test]
fn a_whole_document_is_never_set_to_null() {
    let text = "ap+Version:ca\ntr  names\n---\nkind: Pod\n";
    let err = set_field(text, 0, &FieldPath(Vec::new()), &json!(null)).unwrap_err();
    assert!(matches!(err, RemedyError::Unsupported { .. }), "{err}");
    let (edited, _) = set_field(text, 0, &FieldPath(Vec::new()), &json!("x")).unwrap();
    assert_eq!(
        parse_documents(&edited).unwrap(),
        [json!("x"), json!({"kind": "Pod"})],
        "{edited}"
    );
}

/// A literal block scalar whose last line holds only spaces, more than its indentation, ends
/// with that line: the spaces are content. The editor took the line for the indentation before
/// the next key and put a new key above it, which cut the line from the scalar.
#[test]
fn a_last_line_of_spaces_stays_in_its_block_scalar() {
    let text = "data:\n  a.yaml: |\n    x: 1\n      ";
    let before = parse_documents(text).unwrap();
    assert_eq!(before[0]["data"]["a.yaml"], json!("x: 1\n  \n"));
    let (edited, _) = set_field(text, 0, &path(&["k: v"]), &json!(1)).unwrap();
    let after = parse_documents(&edited).unwrap();
    assert_eq!(after[0]["data"], before[0]["data"], "{edited:?}");
    assert_eq!(after[0]["k: v"], json!(1), "{edited:?}");
}

/// An empty list item followed by a comment (`- # note`): the value was written after the
/// comment, inside it, so the item stayed empty. It now goes right after the dash.
#[test]
fn an_empty_item_before_a_comment_gets_its_value_before_the_comment() {
    let first = FieldPath(vec![Segment::Index(0)]);
    let l_first = FieldPath(vec![Segment::Key("l".into()), Segment::Index(0)]);
    for (text, item) in [
        ("# c\n    - #secretKey: x: \n", &first),
        ("l:\n- # note\n- b\n", &l_first),
        ("-\n  # note\n", &first),
    ] {
        let (edited, _) = set_field(text, 0, item, &json!("'q'")).unwrap();
        let docs = parse_documents(&edited).unwrap();
        let list = docs[0].get("l").unwrap_or(&docs[0]);
        assert_eq!(list[0], json!("'q'"), "{text:?} -> {edited:?}");
        assert!(edited.contains("# "), "the comment is kept: {edited:?}");
    }
}

/// A carriage return alone is a line break in YAML, but the editor finds lines by `\n`: a new
/// key meant for `metadata` went below the next top-level key. Such texts are now refused;
/// `\r\n` line ends are still edited.
#[test]
fn texts_with_bare_carriage_returns_are_refused() {
    let bare = "metadata:\n a:\r\rtap:\n";
    let err = set_field(bare, 0, &path(&["metadata", "b"]), &json!("x")).unwrap_err();
    assert!(matches!(err, RemedyError::Unsupported { .. }), "{err}");
    let crlf = "metadata:\r\n a: 1\r\ntap: 2\r\n";
    let (edited, _) = set_field(crlf, 0, &path(&["metadata", "b"]), &json!("x")).unwrap();
    let docs = parse_documents(&edited).unwrap();
    assert_eq!(docs[0]["metadata"], json!({"a": 1, "b": "x"}), "{edited:?}");
}

/// An explicit key (`? key`) with no `:` after it: the editor looked for the key's colon further
/// on, found one in the next entry's key, and wrote the value there. A colon only counts when
/// nothing but blanks lies between the key and it; otherwise the edit is refused.
#[test]
fn an_explicit_key_without_a_colon_is_not_given_the_next_colon() {
    let text = "t:\n  ? tem\nnext: true\n";
    let result = set_field(text, 0, &path(&["t", "tem"]), &json!("512Mi"));
    if let Ok((edited, _)) = &result {
        let docs = parse_documents(edited).unwrap();
        assert_eq!(docs[0]["t"]["tem"], json!("512Mi"), "{edited:?}");
        assert_eq!(docs[0]["next"], json!(true), "{edited:?}");
    }
    let explicit = "t:\n  ? tem\n  :\nnext: true\n";
    let (edited, _) = set_field(explicit, 0, &path(&["t", "tem"]), &json!("512Mi")).unwrap();
    let docs = parse_documents(&edited).unwrap();
    assert_eq!(docs[0]["t"]["tem"], json!("512Mi"), "{edited:?}");
}

/// The same explicit key with no colon, given a list or a mapping (bug 23): the new block lines
/// went under `? key` with no `:` before them. Refused too.
#[test]
fn an_explicit_key_without_a_colon_gets_no_block_value() {
    let err = set_field("? ~\t'#", 0, &path(&["~\t'#"]), &json!([{"name": "n"}])).unwrap_err();
    assert!(matches!(err, RemedyError::PathNotFound { .. }), "{err}");
    // Its value on the next line is refused as well, whatever the shape.
    assert!(set_field("? k\n", 0, &path(&["k", "a"]), &json!(1)).is_err());
}

/// A mapping that holds the same key twice (here once with a tag, which changes nothing about
/// the key): readers keep one of the two, the editor changed the first. Such a key is refused.
#[test]
fn a_key_that_appears_twice_is_refused() {
    for text in ["m:\n  a: 1\n  a: 2\n", "m:\n  !t a: 1\n  a: 2\n"] {
        if parse_documents(text).is_err() {
            continue;
        }
        let err = set_field(text, 0, &path(&["m", "a"]), &json!(3)).unwrap_err();
        assert!(
            matches!(err, RemedyError::Unsupported { .. }),
            "{text:?}: {err}"
        );
    }
}

/// A mapping written with explicit keys (`? key`): a new entry went at the column of the key's
/// text instead of the `?`'s, which does not read back. Adding to such a mapping is refused.
#[test]
fn a_new_key_in_a_mapping_of_explicit_keys_is_refused() {
    let text = "? ~\t'#\n";
    let err = set_field(text, 0, &path(&["[k]"]), &json!("`x")).unwrap_err();
    assert!(matches!(err, RemedyError::Unsupported { .. }), "{err}");
    let text = "m:\n  ? a\n  : 1\n";
    let err = set_field(text, 0, &path(&["m", "b"]), &json!(2)).unwrap_err();
    assert!(matches!(err, RemedyError::Unsupported { .. }), "{err}");
    // A tab before the `?` (bug 22): the `?` was not seen, and the new key went at the column
    // of the explicit key.
    let err = set_field("\t?  ''", 0, &path(&["[k]"]), &json!("")).unwrap_err();
    assert!(matches!(err, RemedyError::Unsupported { .. }), "{err}");
    // The `?` alone on the line before the key (bug 24), also with a comment between.
    for text in ["?\n  ''", "? # c\n  ''", "?\n\n  # c\n  ''"] {
        let err = set_field(text, 0, &path(&["k: v"]), &json!("%x")).unwrap_err();
        assert!(
            matches!(err, RemedyError::Unsupported { .. }),
            "{text:?}: {err}"
        );
    }
}

/// A key with no value in a flow mapping (`{k}`): the empty value's markers covered the
/// closing bracket, which the new value replaced (`{k512Mi`). Such a key has no colon to write
/// after, so the edit is refused; a value after a colon is still written.
#[test]
fn a_key_without_a_value_in_a_flow_mapping_keeps_its_bracket() {
    for text in ["a: {k}\n", "a: {k, j: 1}\n", "0o\tncache- winds: {k}"] {
        let first = parse_documents(text).unwrap()[0]
            .as_object()
            .unwrap()
            .clone();
        let top = first.keys().next().unwrap().as_str();
        let err = set_field(text, 0, &path(&[top, "k"]), &json!("512Mi")).unwrap_err();
        assert!(
            matches!(err, RemedyError::PathNotFound { .. }),
            "{text:?}: {err}"
        );
    }
    let (edited, _) = set_field("a: {k: , j: 1}\n", 0, &path(&["a", "k"]), &json!(1)).unwrap();
    assert_eq!(
        parse_documents(&edited).unwrap()[0],
        json!({"a": {"k": 1, "j": 1}})
    );
}

/// The single `key: value` pair of a flow list (`[a: 1]`) has no brackets of its own, and was
/// taken for a block mapping: a new key went on a line of its own below the list. It is flow,
/// so adding to it is refused; its value is still replaced in place.
#[test]
fn a_single_pair_in_a_flow_list_is_edited_as_flow() {
    let text = " [x,x0x,xx,x0x,x,x,xerror:,x,xx,&x]\n";
    let at = FieldPath(vec![Segment::Index(6), Segment::Key("k: v".into())]);
    let err = set_field(text, 0, &at, &json!("")).unwrap_err();
    assert!(matches!(err, RemedyError::FlowCollection { .. }), "{err}");
    let at = FieldPath(vec![
        Segment::Key("l".into()),
        Segment::Index(1),
        Segment::Key("a".into()),
    ]);
    let (edited, _) = set_field("l: [x, a: 1, y]\n", 0, &at, &json!(2)).unwrap();
    assert_eq!(edited, "l: [x, a: 2, y]\n");
}

/// An empty value with an anchor and a tag on the next line (`k: &a` then `!t`): bug 16's fix
/// ended it where it starts, so a new key went between the anchor and the tag. Its end stays
/// after the tag.
#[test]
fn a_new_key_goes_after_an_empty_value_whose_tag_is_on_the_next_line() {
    let text = "~a: &aapivpecdata:\n !RRRRRkustomizv";
    let (edited, _) = set_field(text, 0, &path(&["a b", "k'"]), &json!("co")).unwrap();
    assert!(edited.starts_with(text), "{edited}");
    let docs = parse_documents(&edited).unwrap();
    assert_eq!(docs[0]["a b"]["k'"], json!("co"), "{edited}");
}

/// An empty block scalar (`k: |` over a line indented less, which is not its content) has both
/// markers past the indentation of that next line: the mapping holding it seemed to end there,
/// and a new key went below the next line, into another mapping. It now ends with its own line.
#[test]
fn a_new_key_goes_right_after_an_empty_block_scalar() {
    for (text, at) in [
        ("a:\n  m:\n    k: |\n  l: 1\n", ["a", "m", "t"]),
        ("a:\n  m:\n    k: >-\n  l:\n    s: 1\n", ["a", "m", "t"]),
        ("m:\n  k: |\nl: 1\n", ["m", "t", "u"]),
    ] {
        let (edited, _) = set_field(text, 0, &path(&at), &json!("x")).unwrap();
        let mut expected = parse_documents(text).unwrap();
        FieldPath(at.iter().map(|k| Segment::Key(k.to_string())).collect())
            .set(&mut expected[0], json!("x"));
        assert_eq!(parse_documents(&edited).unwrap(), expected, "{edited}");
    }
}

/// `[name=null]` selects the item whose `name` is null (`- name:`), as the reader does; the
/// editor compared the text (empty), found nothing, and added a second item that the path
/// then did not reach. Numbers, booleans and `~` are matched by their value the same way.
#[test]
fn a_selector_matches_an_item_by_its_value_as_the_reader_does() {
    let select = |list: &str, value: &str| {
        FieldPath(vec![
            Segment::Key(list.into()),
            Segment::Select {
                key: "name".into(),
                value: value.into(),
            },
            Segment::Key("zz".into()),
        ])
    };
    for (text, value, expected) in [
        ("l:\n  - name:\n", "null", "l:\n  - name:\n    zz: 1\n"),
        ("l:\n  - name: ~\n", "null", "l:\n  - name: ~\n    zz: 1\n"),
        (
            "l:\n  - name: 0x1F\n",
            "31",
            "l:\n  - name: 0x1F\n    zz: 1\n",
        ),
        (
            "l:\n  - name: 'null'\n",
            "null",
            "l:\n  - name: 'null'\n    zz: 1\n",
        ),
    ] {
        let at = select("l", value);
        let (edited, _) = set_field(text, 0, &at, &json!(1)).unwrap();
        assert_eq!(edited, expected, "{text:?}");
        let docs = parse_documents(&edited).unwrap();
        assert_eq!(at.get(&docs[0]), Some(&json!(1)), "{edited}");
    }
}

/// After a directive saphyr does not know, holding a character of more than one byte (`%a é`),
/// its character index counts that line's bytes, so every later node seemed to start further
/// on and a new value went into the middle of the old one (`er512Mi`). Positions now come from
/// line and column.
#[test]
fn a_directive_with_wide_characters_does_not_shift_the_edit() {
    let text = "%a é &é\n---\nname: old\nkind: ConfigMap\n";
    let (edited, _) = set_field(text, 0, &path(&["name"]), &json!("512Mi")).unwrap();
    assert_eq!(edited, "%a é &é\n---\nname: 512Mi\nkind: ConfigMap\n");
    let text = "%a é\n---\nabc\n";
    let (edited, _) = set_field(text, 0, &FieldPath(Vec::new()), &json!("512Mi")).unwrap();
    assert_eq!(edited, "%a é\n---\n512Mi\n");
}

/// A document that is only a tag (`--- !p`) is an empty scalar the reader reads as null and
/// skips, but the editor counted it: every later document was one off, and the edit went into
/// the document before the one asked for. Such texts are refused.
#[test]
fn a_document_that_is_only_a_tag_or_an_anchor_is_refused() {
    for first in ["!p111d", "&a", "!p111d x"] {
        let text = format!("{first}\n---\na: 1\n---\nb: 2\n");
        let err = set_field(&text, 0, &path(&["c"]), &json!(3)).unwrap_err();
        assert!(
            matches!(err, RemedyError::Unsupported { .. }),
            "{text:?}: {err}"
        );
    }
    let (edited, _) = set_field("x\n---\na: 1\n", 1, &path(&["c"]), &json!(3)).unwrap();
    assert_eq!(edited, "x\n---\na: 1\nc: 3\n");
}
