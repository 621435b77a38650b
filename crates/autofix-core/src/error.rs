//! Error messages for people: an error together with the causes behind it.

/// An error followed by its causes, `error: cause: cause`, leaving out a cause its parent
/// already shows. Libraries often keep the useful part in the source chain (reqwest's
/// "operation timed out", git's "Connection refused"), so a record of what went wrong
/// says why and not only what.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::with_causes;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot fetch from http://git.example/repo.git")]
    struct Fetch(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("fetch failed: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn causes_follow_the_error_once() {
        let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            with_causes(&Fetch(refused())),
            "cannot fetch from http://git.example/repo.git: refused"
        );
        assert_eq!(with_causes(&Repeats(refused())), "fetch failed: refused");
    }
}
