//! `[gitops]` and `[github]`: which remote repository an incident's fix goes to, and as whom.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Remote GitOps repositories and how incidents map to them. Without any mapping, fixes go to
/// the local work tree given on the command line.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitopsConfig {
    /// Where the clones are kept and fetched before each incident (default
    /// `<server.data_dir>/repos`).
    pub cache_dir: Option<PathBuf>,
    /// The repositories; an incident goes to the first whose cluster and namespaces match.
    pub repos: Vec<RepoMapping>,
}

/// One remote GitOps repository and the incidents whose fixes go there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoMapping {
    /// Namespaces (names, or patterns where `*` matches any run of characters) whose incidents
    /// go here; empty means every namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Only incidents from this cluster (the alerts' `cluster` label); unset means any.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Clone URL: `https://...`, `ssh://...`, `git@host:owner/repo.git`, or a local path.
    pub url: String,
    /// The branch fixes are proposed against (default `main`). Never pushed to.
    #[serde(default = "default_base")]
    pub base: String,
    /// Folder of the repository holding this cluster's manifests or entry points (default: the
    /// whole repository).
    #[serde(default)]
    pub path: Option<String>,
    /// Where pull requests go (default: `github` when `[github]` has credentials, else `local`).
    #[serde(default)]
    pub forge: Option<ForgeKind>,
    /// The GitHub repository as `owner/name` (default: read from `url`).
    #[serde(default)]
    pub github_repo: Option<String>,
    /// Git credentials (default: the GitHub token for a GitHub forge, else none).
    #[serde(default)]
    pub auth: GitAuthConfig,
}

fn default_base() -> String {
    "main".to_string()
}

/// Where a repository's pull requests and escalations are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForgeKind {
    /// GitHub (or GitHub Enterprise), through `[github]`.
    Github,
    /// Records in the clone's `.git/autofix/`, as offline runs keep them.
    Local,
}

/// How git authenticates to a remote. Secrets come from the environment or files, never from
/// the config file itself.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitAuthConfig {
    /// User name for HTTPS tokens (default `x-access-token`) or SSH (default `git`).
    pub username: Option<String>,
    /// Environment variable holding an HTTPS token.
    pub token_env: Option<String>,
    /// File holding an HTTPS token.
    pub token_file: Option<PathBuf>,
    /// SSH private key file.
    pub ssh_key: Option<PathBuf>,
    /// Environment variable holding the SSH key's passphrase.
    pub ssh_passphrase_env: Option<String>,
}

/// GitHub API access: a personal access token or a GitHub App, and who reviews.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubSettings {
    /// API root (default `https://api.github.com`; `https://<host>/api/v3` for Enterprise).
    pub api_url: String,
    /// Environment variable holding a personal access token.
    pub token_env: Option<String>,
    /// File holding a personal access token.
    pub token_file: Option<PathBuf>,
    /// GitHub App id (with `private_key_file`): installation tokens are minted per repository.
    pub app_id: Option<u64>,
    /// The GitHub App's private key (PEM).
    pub private_key_file: Option<PathBuf>,
    /// The App installation (default: looked up for each repository).
    pub installation_id: Option<u64>,
    /// Users asked to review every new pull request.
    pub reviewers: Vec<String>,
    /// Teams (slugs) asked to review every new pull request.
    pub team_reviewers: Vec<String>,
}

impl Default for GithubSettings {
    fn default() -> Self {
        GithubSettings {
            api_url: "https://api.github.com".to_string(),
            token_env: None,
            token_file: None,
            app_id: None,
            private_key_file: None,
            installation_id: None,
            reviewers: Vec::new(),
            team_reviewers: Vec::new(),
        }
    }
}

impl GithubSettings {
    /// True when a token or an App is configured.
    pub fn has_credentials(&self) -> bool {
        self.token_env.is_some() || self.token_file.is_some() || self.app_id.is_some()
    }

    /// Checks that exactly one kind of credentials is given, completely.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        let token = self.token_env.is_some() || self.token_file.is_some();
        if self.token_env.is_some() && self.token_file.is_some() {
            return Err((
                "token_file",
                "give `token_env` or `token_file`, not both".into(),
            ));
        }
        if token && (self.app_id.is_some() || self.private_key_file.is_some()) {
            return Err((
                "app_id",
                "give a token or a GitHub App (`app_id` + `private_key_file`), not both".into(),
            ));
        }
        if self.app_id.is_some() != self.private_key_file.is_some() {
            return Err((
                "private_key_file",
                "a GitHub App needs both `app_id` and `private_key_file`".into(),
            ));
        }
        if !(self.api_url.starts_with("https://") || self.api_url.starts_with("http://")) {
            return Err((
                "api_url",
                format!("{:?} is not an http(s) URL", self.api_url),
            ));
        }
        Ok(())
    }
}

impl RepoMapping {
    /// True when incidents of `namespace` on `cluster` go to this repository.
    pub fn matches(&self, cluster: &str, namespace: &str) -> bool {
        self.cluster.as_deref().is_none_or(|c| c == cluster)
            && (self.namespaces.is_empty()
                || self
                    .namespaces
                    .iter()
                    .any(|p| autofix_policy::glob_match(p, namespace)))
    }

    /// The forge, given whether `[github]` has credentials.
    pub fn forge_kind(&self, github_configured: bool) -> ForgeKind {
        self.forge.unwrap_or(if github_configured {
            ForgeKind::Github
        } else {
            ForgeKind::Local
        })
    }

    /// `(owner, name)` of the GitHub repository: `github_repo`, else read from the URL
    /// (`https://host/owner/name.git`, `ssh://git@host/owner/name`, `git@host:owner/name.git`).
    pub fn github_repo(&self) -> Option<(String, String)> {
        let text = match &self.github_repo {
            Some(given) => given.as_str(),
            None => {
                let url = self.url.trim_end_matches('/');
                let path = match url.split_once("://") {
                    Some((_, rest)) => rest.split_once('/')?.1,
                    None => url.split_once(':')?.1,
                };
                path.strip_suffix(".git").unwrap_or(path)
            }
        };
        let mut parts = text.rsplitn(3, '/');
        let name = parts.next().filter(|s| !s.is_empty())?;
        let owner = parts.next().filter(|s| !s.is_empty())?;
        Some((owner.to_string(), name.to_string()))
    }

    /// Checks the mapping; `github_configured` tells whether `[github]` has credentials.
    pub(crate) fn check(&self, github_configured: bool) -> Result<(), (&'static str, String)> {
        if self.url.trim().is_empty() {
            return Err(("url", "is empty".into()));
        }
        if self.url.contains('@') && self.url.contains("://") {
            let userinfo = self.url.split_once("://").map(|(_, r)| r).unwrap_or("");
            if userinfo
                .split('/')
                .next()
                .is_some_and(|h| h.contains(':') && h.contains('@'))
            {
                return Err((
                    "url",
                    "must not carry a password; use `auth.token_env` or `auth.token_file`".into(),
                ));
            }
        }
        if self.base.trim().is_empty() {
            return Err(("base", "is empty".into()));
        }
        let auth = &self.auth;
        if auth.token_env.is_some() as u8
            + auth.token_file.is_some() as u8
            + auth.ssh_key.is_some() as u8
            > 1
        {
            return Err((
                "auth",
                "give one of `token_env`, `token_file` or `ssh_key`".into(),
            ));
        }
        if self.forge_kind(github_configured) == ForgeKind::Github {
            if !github_configured {
                return Err((
                    "forge",
                    "is `github` but [github] has no token or App credentials".into(),
                ));
            }
            if self.github_repo().is_none() {
                return Err((
                    "github_repo",
                    format!(
                        "cannot read owner/name from url {:?}; set `github_repo`",
                        self.url
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(url: &str) -> RepoMapping {
        RepoMapping {
            namespaces: vec!["shop".into(), "team-*".into()],
            cluster: Some("prod".into()),
            url: url.into(),
            base: "main".into(),
            path: None,
            forge: None,
            github_repo: None,
            auth: GitAuthConfig::default(),
        }
    }

    #[test]
    fn reads_owner_and_name_from_every_url_form() {
        for url in [
            "https://github.com/acme/gitops.git",
            "https://github.com/acme/gitops",
            "ssh://git@github.com/acme/gitops.git",
            "git@github.com:acme/gitops.git",
        ] {
            assert_eq!(
                mapping(url).github_repo(),
                Some(("acme".into(), "gitops".into())),
                "{url}"
            );
        }
        assert_eq!(mapping("/srv/git/gitops.git").github_repo(), None);
    }

    #[test]
    fn matches_cluster_and_namespace_patterns() {
        let m = mapping("https://github.com/acme/gitops.git");
        assert!(m.matches("prod", "shop"));
        assert!(m.matches("prod", "team-a"));
        assert!(!m.matches("prod", "web"));
        assert!(!m.matches("staging", "shop"));
    }

    #[test]
    fn refuses_passwords_in_urls_and_github_without_credentials() {
        let m = mapping("https://bot:s3cret@github.com/acme/gitops.git");
        assert_eq!(m.check(true).map_err(|e| e.0), Err("url"));
        let m = mapping("https://github.com/acme/gitops.git");
        assert_eq!(m.check(false), Ok(()));
        let github = RepoMapping {
            forge: Some(ForgeKind::Github),
            ..m
        };
        assert_eq!(github.check(false).map_err(|e| e.0), Err("forge"));
        assert_eq!(github.check(true), Ok(()));
    }
}
