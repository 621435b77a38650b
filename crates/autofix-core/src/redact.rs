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
    let text = redact_assignments(&text);
    let text = redact_flags(&text);
    let text = redact_private_keys(&text);
    redact_random_tokens(&text)
}

/// PEM private keys (`-----BEGIN ... PRIVATE KEY-----` to its END line) -> one marker.
fn redact_private_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let header_end = rest[start + 11..].find("-----").map(|i| start + 11 + i + 5);
        let Some(header_end) = header_end.filter(|&e| rest[start..e].contains("PRIVATE KEY"))
        else {
            out.push_str(&rest[..start + 11]);
            rest = &rest[start + 11..];
            continue;
        };
        out.push_str(&rest[..start]);
        out.push_str(REDACTED);
        rest = match rest[header_end..].find("-----END ") {
            Some(end) => {
                let after = header_end + end + 9;
                let close = rest[after..]
                    .find("-----")
                    .map_or(rest.len(), |i| after + i + 5);
                &rest[close..]
            }
            // A key cut off (e.g. a log line): everything after the header goes.
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// `--requirepass X`, `--password=X`, `--api-token X` -> value redacted.
fn redact_flags(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut redact_next = false;
    for word in words {
        if redact_next && !word.is_empty() {
            out.push(REDACTED.to_string());
            redact_next = false;
            continue;
        }
        let flag = word.trim_start_matches('-');
        let is_secret_flag = word.starts_with('-') && {
            let lower = flag.split('=').next().unwrap_or("").to_ascii_lowercase();
            lower.contains("pass") || lower.contains("token") || lower.contains("secret")
        };
        match (is_secret_flag, flag.split_once('=')) {
            (true, Some((name, value))) if !value.is_empty() && value != REDACTED => {
                let dashes = &word[..word.len() - flag.len()];
                out.push(format!("{dashes}{name}={REDACTED}"));
            }
            (true, None) => {
                out.push(word.to_string());
                redact_next = true;
            }
            _ => out.push(word.to_string()),
        }
    }
    out.join(" ")
}

/// Shortest run of characters that can be a generated credential.
const MIN_TOKEN_LEN: usize = 16;

/// Shortest run with `+` or `/` in it that can be a base64 credential.
const MIN_JOINED_TOKEN_LEN: usize = 32;

/// Redacts runs of letters and digits (and base64's `+`/`/` inside a run) that look generated:
/// at least [`MIN_TOKEN_LEN`] long with upper case, lower case and digits mixed (API keys,
/// webhook tokens, passwords, JWT segments), and AWS access key ids. Hex hashes, UUIDs, pod
/// names, paths and words do not qualify.
fn redact_random_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run_start = None;
    let flush = |out: &mut String, run: &str| {
        let upper = run.chars().any(|c| c.is_ascii_uppercase());
        let lower = run.chars().any(|c| c.is_ascii_lowercase());
        let digit = run.chars().any(|c| c.is_ascii_digit());
        // AWS access key ids are upper case and digits only: `AKIA`/`ASIA` + 16.
        let aws_key_id = run.len() == 20 && (run.starts_with("AKIA") || run.starts_with("ASIA"));
        // A run joined by `+`/`/` must be as long as a base64 secret (AWS secret keys are 40),
        // so that paths such as `tmpAb3x9/gitops/` stay readable.
        let joined = run.contains(['/', '+']);
        let long_enough = run.len()
            >= if joined {
                MIN_JOINED_TOKEN_LEN
            } else {
                MIN_TOKEN_LEN
            };
        if (long_enough && upper && lower && digit) || aws_key_id {
            out.push_str(REDACTED);
        } else {
            out.push_str(run);
        }
    };
    for (i, c) in text.char_indices() {
        // Base64 (`+`, `/`) continues a run but never starts one, so paths stay paths.
        let in_run = c.is_ascii_alphanumeric() || (run_start.is_some() && matches!(c, '+' | '/'));
        match (in_run, run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(start)) => {
                flush(&mut out, &text[start..i]);
                out.push(c);
                run_start = None;
            }
            (false, None) => out.push(c),
            (true, Some(_)) => {}
        }
    }
    if let Some(start) = run_start {
        flush(&mut out, &text[start..]);
    }
    out
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
    fn redacts_secret_flags_and_generated_tokens() {
        let trace = "+ exec redis-server --requirepass Jx7wQ2nLr9VbK4tZ --maxmemory 900mb";
        let out = redact(trace);
        assert!(
            !out.contains("Jx7wQ2nLr9VbK4tZ") && out.contains("--maxmemory 900mb"),
            "{out}"
        );
        let hook = "posting to https://hooks.slack.com/services/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";
        assert!(!redact(hook).contains("q8Xw3nVb7LmK2pRt9YcZ4dFs"));
        assert_eq!(redact("--db-password=abc"), "--db-password=[REDACTED]");
        let harmless = "pod cart-764d7f7f78-sqswk image sha256:e1c9286a68736f7b2e3ce4e52f18eeadc3c801da ReportsApplication file:///tmp/.tmpAb3x9Q/gitops/.git/autofix/pulls/1";
        assert_eq!(redact(harmless), harmless);
    }

    #[test]
    fn redacts_cloud_keys_jwts_github_tokens_and_private_keys() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        let secrets = [
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            jwt,
            "ghp_R7x2Kq9LmZ4tWbN8vC3pY6sD1fH5jG0aE2uI",
        ];
        for secret in secrets {
            let out = redact(&format!("found {secret} in the config"));
            for part in secret.split(['.', '/', '_']).filter(|p| p.len() >= 16) {
                assert!(!out.contains(part), "{part} survived in {out}");
            }
        }
        let pem = "key: -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1\nabc\n-----END RSA PRIVATE KEY----- done";
        assert_eq!(redact(pem), "key: [REDACTED] done");
        let cert = "-----BEGIN CERTIFICATE----- public";
        assert_eq!(redact(cert), cert);
    }

    #[test]
    fn names_that_look_secret() {
        assert!(is_secret_name("DATABASE_PASSWORD"));
        assert!(is_secret_name("stripe_api_key"));
        assert!(!is_secret_name("LOG_LEVEL"));
    }
}
