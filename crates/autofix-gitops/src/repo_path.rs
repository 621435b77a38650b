//! Paths of files inside the repository, as callers give them: relative, `/`-separated, plain.

use crate::GitopsError;

/// Splits a repository path into its components, refusing anything that could leave the tree
/// or reach into git's own data: absolute paths, `..`, `.`, empty components, backslashes, NUL
/// bytes and `.git` (git compares that one case-insensitively, so this does too).
pub fn components(path: &str) -> Result<Vec<&str>, GitopsError> {
    let invalid = |reason| GitopsError::InvalidPath {
        path: path.to_string(),
        reason,
    };
    if path.is_empty() {
        return Err(invalid("empty path"));
    }
    if path.starts_with('/') {
        return Err(invalid("absolute path"));
    }
    if path.contains('\\') {
        return Err(invalid("backslash in path (use `/`)"));
    }
    if path.contains('\0') {
        return Err(invalid("NUL byte in path"));
    }
    path.split('/')
        .map(|part| match part {
            "" => Err(invalid("empty component (`//` or trailing `/`)")),
            "." => Err(invalid("`.` component")),
            ".." => Err(invalid("`..` component escapes the repository")),
            git if git.eq_ignore_ascii_case(".git") => Err(invalid("`.git` component")),
            part => Ok(part),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_relative_paths() {
        let parts = components("apps/shop/cart/deployment.yaml").expect("valid");
        assert_eq!(parts, ["apps", "shop", "cart", "deployment.yaml"]);
        assert_eq!(components(".env").expect("valid"), [".env"]);
    }

    #[test]
    fn refuses_paths_leaving_the_tree() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "apps/../../x",
            "apps/./x",
            "apps//x",
            "apps/",
            "apps\\x",
            ".git/config",
            "sub/.GIT/hooks/pre-commit",
            "a\0b",
        ] {
            assert!(
                matches!(components(bad), Err(GitopsError::InvalidPath { .. })),
                "{bad:?}"
            );
        }
    }
}
