//! Redaction of secrets in free text (logs, event messages, env values).
//!
//! Evidence is redacted once, when it is built; every later stage only sees redacted text.

/// What replaces a redacted secret.
pub const REDACTED: &str = "[REDACTED]";

/// Words that mark the value after them as a secret (`password=...`, `"token": "..."`).
const SECRET_WORDS: [&str; 10] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "credentials",
    "authorization",
];

/// True when an environment variable or key name suggests a secret value.
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_WORDS
        .iter()
        .any(|w| lower.contains(&w.replace('_', "")) || lower.contains(w))
        || lower.ends_with("_key")
        || lower == "key"
}

/// Redacts credentials in a line of text: URL user-info passwords, `Bearer` tokens, and values
/// of `password=`/`token:`-style assignments.
pub fn redact(text: &str) -> String {
    let text = redact_url_passwords(text);
    let text = redact_bearer(&text);
    redact_assignments(&text)
}

/// `scheme://user:password@host` -> `scheme://user:[REDACTED]@host`.
fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '/' | '<' | '>'))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon + 1]);
                        out.push_str(REDACTED);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn redact_bearer(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = find_ci(rest, "bearer ") {
        let (head, tail) = rest.split_at(i + 7);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\''))
            .unwrap_or(tail.len());
        if end > 0 {
            out.push_str(REDACTED);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `password=hunter2`, `"token": "abc"`, `PGPASSWORD: x` -> value redacted.
fn redact_assignments(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for word in SECRET_WORDS {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(word) {
            let key_end = from + pos + word.len();
            from = key_end;
            // Skip the rest of an identifier (`password_file`, `tokens`) and closing quotes.
            let after = &text[key_end..];
            let ident = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(after.len());
            let after = &after[ident..];
            let sep = after
                .find(|c: char| !matches!(c, '"' | '\'' | ' '))
                .unwrap_or(after.len());
            let rest = &after[sep..];
            let Some(op) = rest.chars().next().filter(|c| matches!(c, '=' | ':')) else {
                continue;
            };
            let value_text = &rest[op.len_utf8()..];
            let lead = value_text
                .find(|c: char| !matches!(c, ' ' | '"' | '\''))
                .unwrap_or(value_text.len());
            let start = key_end + ident + sep + op.len_utf8() + lead;
            let len = text[start..]
                .find(|c: char| {
                    c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '&' | ';' | '}')
                })
                .unwrap_or(text.len() - start);
            let value = &text[start..start + len];
            if len > 0 && value != REDACTED && !value.starts_with(REDACTED) {
                cuts.push((start, start + len));
            }
        }
    }
    cuts.sort();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in cuts {
        if start < at {
            continue;
        }
        out.push_str(&text[at..start]);
        out.push_str(REDACTED);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

fn find_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack.to_ascii_lowercase().find(needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_url_passwords() {
        let line = r#"{"url":"redis://default:Rk7pQ2vX9mLs4TbW@redis-master:6379/0"}"#;
        let out = redact(line);
        assert!(!out.contains("Rk7pQ2vX9mLs4TbW"), "{out}");
        assert!(
            out.contains("redis://default:[REDACTED]@redis-master:6379/0"),
            "{out}"
        );
    }

    #[test]
    fn redacts_dsn_in_shell_trace() {
        let line = "+ export 'DATABASE_URL=postgresql+psycopg2://migrator:Xq7mT2vL9pR4wZ8k@pg:5432/app?sslmode=require'";
        assert!(!redact(line).contains("Xq7mT2vL9pR4wZ8k"));
    }

    #[test]
    fn redacts_assignments_and_bearer() {
        let out = redact(r#"password=hunter2 "api_token": "abc123" Authorization: Bearer eyJhbGc"#);
        for secret in ["hunter2", "abc123", "eyJhbGc"] {
            assert!(!out.contains(secret), "{out}");
        }
        assert_eq!(
            redact("no secrets here: status=200"),
            "no secrets here: status=200"
        );
    }

    #[test]
    fn names_that_look_secret() {
        assert!(is_secret_name("DATABASE_PASSWORD"));
        assert!(is_secret_name("stripe_api_key"));
        assert!(!is_secret_name("LOG_LEVEL"));
    }
}
