//! Safe reading of YAML text into JSON values.
//!
//! serde-saphyr enforces a budget on events, nodes and alias expansion, so a YAML bomb (deeply
//! nested aliases) fails with an error instead of exhausting memory. Plain data (no anchors,
//! tags or doubtful scalars: nearly every manifest) is built straight from the events of the
//! same parser, about twice as fast, with the same values (see `direct`).

use serde_json::Value;

mod direct;

/// The largest YAML file kube-autofix reads (bytes); Kubernetes objects are far smaller.
pub const MAX_YAML_BYTES: usize = 8 * 1024 * 1024;

/// A YAML text that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// The text is larger than [`MAX_YAML_BYTES`].
    #[error("YAML is {0} bytes, more than the {MAX_YAML_BYTES}-byte limit")]
    TooLarge(usize),
    /// The text is not valid YAML, or breaks the parser's budget (e.g. an alias bomb).
    #[error("{0}")]
    Syntax(String),
}

/// Parses every document of a YAML stream; empty documents are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, YamlError> {
    if text.len() > MAX_YAML_BYTES {
        return Err(YamlError::TooLarge(text.len()));
    }
    let docs = match direct::documents(text) {
        Some(docs) => docs,
        None => from_serde_saphyr(text)?,
    };
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// The value a scalar written `text` has in a document: null, a boolean, a number or a string
/// when `plain`; always the string when quoted or a block scalar.
pub fn scalar_value(text: &str, plain: bool) -> Value {
    let style = if plain {
        serde_saphyr::granit_parser::ScalarStyle::Plain
    } else {
        serde_saphyr::granit_parser::ScalarStyle::DoubleQuoted
    };
    // What cannot be told on its own (a plain scalar over lines, say) is a string.
    direct::scalar(text, style).unwrap_or_else(|| Value::String(text.to_string()))
}

/// Every document of `text` through serde-saphyr, the reference for what YAML means.
fn from_serde_saphyr(text: &str) -> Result<Vec<Value>, YamlError> {
    serde_saphyr::from_multiple(text).map_err(|e| {
        // The first line holds the position and the reason; the rest is a source excerpt.
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        YamlError::Syntax(first.trim_start_matches("error: ").to_string())
    })
}

/// Parses a YAML stream and flattens `kind: List` documents into their items.
pub fn parse_objects(text: &str) -> Result<Vec<Value>, YamlError> {
    let mut out = Vec::new();
    for doc in parse_documents(text)? {
        match doc.get("items") {
            Some(Value::Array(items))
                if doc.get("kind").and_then(Value::as_str) == Some("List") =>
            {
                out.extend(items.iter().cloned())
            }
            Some(Value::Array(items))
                if doc
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List")) =>
            {
                out.extend(items.iter().cloned())
            }
            _ => out.push(doc),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_alias_bombs() {
        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for pair in names.windows(2) {
            let refs = vec![format!("*{}", pair[0]); 10].join(",");
            bomb.push_str(&format!("{}: &{} [{refs}]\n", pair[1], pair[1]));
        }
        assert!(matches!(parse_documents(&bomb), Err(YamlError::Syntax(_))));
    }

    #[test]
    fn flattens_lists() {
        let objs =
            parse_objects("kind: List\nitems:\n- kind: Pod\n- kind: Event\n---\nkind: Node\n")
                .unwrap();
        assert_eq!(objs.len(), 3);
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let err = parse_documents("a: [1,\n b: }").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
