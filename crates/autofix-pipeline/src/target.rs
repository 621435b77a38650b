//! Where fixes go: a local work tree (offline), or remote GitOps repositories mapped by cluster
//! and namespace, each with its forge and git credentials.
//!
//! A remote repository is cloned once into the cache folder and fetched before every incident
//! ([`autofix_gitops::Mirror`]). One incident at a time works in a clone: the run holds the
//! repository's lock from the fetch to the push, so two workers never share a work tree.

use crate::PipelineError;
use crate::config::{Config, ForgeKind, GitAuthConfig, RepoMapping};
use autofix_forge::{Forge, GithubAuth, GithubConfig, GithubForge, LocalForge};
use autofix_gitops::{Credentials, Mirror, RemoteSpec};
use secrecy::SecretString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Where the GitOps repository of an incident is and where its pull requests go.
pub enum Target {
    /// A local work tree: its checked-out branch is the base; commits stay local.
    Local {
        /// The work tree.
        work_tree: PathBuf,
        /// Where pull requests and escalations go.
        forge: Arc<dyn Forge>,
    },
    /// Remote repositories, mirrored in a cache folder; fix branches are pushed.
    Remote(Vec<Route>),
}

/// One mapped remote repository: which incidents, where it is cloned, how to reach it.
pub struct Route {
    /// The mapping from the config file.
    pub mapping: RepoMapping,
    /// The clone's folder.
    pub dir: PathBuf,
    /// Where pull requests and escalations go.
    pub forge: Arc<dyn Forge>,
    /// How git authenticates.
    pub auth: GitAuth,
    /// Held from the fetch to the push: one incident at a time per clone.
    lock: Arc<Mutex<()>>,
}

/// Where a route's git credentials come from.
#[derive(Debug, Clone)]
pub enum GitAuth {
    /// Fixed credentials (a token, an SSH key, or none).
    Fixed(Credentials),
    /// The GitHub forge's token: the PAT, or a fresh App installation token per incident.
    Github(Arc<GithubForge>),
}

impl Route {
    /// A route to the repository of `mapping`, cloned in `dir`.
    pub fn new(mapping: RepoMapping, dir: PathBuf, forge: Arc<dyn Forge>, auth: GitAuth) -> Route {
        Route {
            mapping,
            dir,
            forge,
            auth,
            lock: Arc::default(),
        }
    }
}

impl GitAuth {
    /// The credentials to use now.
    async fn credentials(&self) -> Result<Credentials, PipelineError> {
        match self {
            GitAuth::Fixed(credentials) => Ok(credentials.clone()),
            GitAuth::Github(forge) => Ok(Credentials::Token {
                username: "x-access-token".into(),
                token: forge.git_token().await?,
            }),
        }
    }
}

/// The repository one incident works in, ready for the run.
pub(crate) struct Workspace {
    /// The work tree whose checked-out branch is the base.
    pub work_tree: PathBuf,
    /// The folder of the repository to search (from the mapping).
    pub path: Option<String>,
    /// Where pull requests and escalations go.
    pub forge: Arc<dyn Forge>,
    /// For a remote repository: the clone, the credentials and the held lock.
    pub remote: Option<RemoteWorkspace>,
}

/// The remote side of a [`Workspace`].
pub(crate) struct RemoteWorkspace {
    /// The synced clone.
    pub mirror: Arc<Mirror>,
    /// The credentials the fetch used, for the push.
    pub credentials: Credentials,
    /// Keeps other incidents out of this clone until the run ends.
    _lock: OwnedMutexGuard<()>,
}

impl Target {
    /// A local work tree publishing to `forge`.
    pub fn local(work_tree: impl Into<PathBuf>, forge: Arc<dyn Forge>) -> Target {
        Target::Local {
            work_tree: work_tree.into(),
            forge,
        }
    }

    /// The remote repositories of `config.gitops`, cloned below `cache_dir`; GitHub forges are
    /// built from `config.github`, credentials read from the environment and files now.
    pub fn remote(config: &Config, cache_dir: &Path) -> Result<Target, PipelineError> {
        let github = config.github.has_credentials();
        let mut routes = Vec::new();
        for mapping in &config.gitops.repos {
            let dir = cache_dir.join(clone_folder(&mapping.url));
            let (forge, auth): (Arc<dyn Forge>, GitAuth) = match mapping.forge_kind(github) {
                ForgeKind::Github => {
                    let forge = Arc::new(github_forge(config, mapping)?);
                    let auth = match fixed_credentials(&mapping.auth)? {
                        Some(credentials) => GitAuth::Fixed(credentials),
                        None => GitAuth::Github(forge.clone()),
                    };
                    (forge, auth)
                }
                ForgeKind::Local => {
                    let records = dir.join(".git").join("autofix");
                    let credentials =
                        fixed_credentials(&mapping.auth)?.unwrap_or(Credentials::None);
                    (
                        Arc::new(LocalForge::new(records)),
                        GitAuth::Fixed(credentials),
                    )
                }
            };
            routes.push(Route::new(mapping.clone(), dir, forge, auth));
        }
        Ok(Target::Remote(routes))
    }

    /// Prepares the repository for an incident of `namespace` on `cluster`. With `sync`, a
    /// remote's lock is taken and its clone fetched with the base checked out; without, only
    /// its forge is wanted (an escalation).
    pub(crate) async fn checkout(
        &self,
        cluster: &str,
        namespace: &str,
        sync: bool,
    ) -> Result<Workspace, PipelineError> {
        let routes = match self {
            Target::Local { work_tree, forge } => {
                return Ok(Workspace {
                    work_tree: work_tree.clone(),
                    path: None,
                    forge: forge.clone(),
                    remote: None,
                });
            }
            Target::Remote(routes) => routes,
        };
        let route = routes
            .iter()
            .find(|r| r.mapping.matches(cluster, namespace))
            .ok_or_else(|| PipelineError::NoRepository {
                cluster: cluster.to_string(),
                namespace: namespace.to_string(),
            })?;
        if !sync {
            return Ok(Workspace {
                work_tree: route.dir.clone(),
                path: route.mapping.path.clone(),
                forge: route.forge.clone(),
                remote: None,
            });
        }
        let lock = route.lock.clone().lock_owned().await;
        let credentials = route.auth.credentials().await?;
        let spec = RemoteSpec {
            url: route.mapping.url.clone(),
            base: route.mapping.base.clone(),
        };
        let dir = route.dir.clone();
        let fetch_with = credentials.clone();
        let mirror =
            tokio::task::spawn_blocking(move || Mirror::sync(&dir, &spec, &fetch_with)).await??;
        Ok(Workspace {
            work_tree: mirror.work_tree().to_path_buf(),
            path: route.mapping.path.clone(),
            forge: route.forge.clone(),
            remote: Some(RemoteWorkspace {
                mirror: Arc::new(mirror),
                credentials,
                _lock: lock,
            }),
        })
    }
}

/// The clone's folder name: the URL's last segment and a hash of the whole URL.
fn clone_folder(url: &str) -> String {
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo")
        .trim_end_matches(".git");
    let name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{name}-{}", autofix_core::short_digest(url.as_bytes()))
}

/// The GitHub forge of a mapping, with `[github]`'s credentials.
fn github_forge(config: &Config, mapping: &RepoMapping) -> Result<GithubForge, PipelineError> {
    let settings = &config.github;
    let (owner, repo) = mapping
        .github_repo()
        .ok_or_else(|| PipelineError::Credentials {
            what: format!("the GitHub owner/name of {}", mapping.url),
            reason: "set `github_repo`".into(),
        })?;
    let auth = match (settings.app_id, &settings.private_key_file) {
        (Some(app_id), Some(key)) => GithubAuth::App {
            app_id,
            private_key: GithubConfig::private_key_from_file(key)?,
            installation_id: settings.installation_id,
        },
        _ => GithubAuth::Token(match (&settings.token_env, &settings.token_file) {
            (Some(var), _) => GithubConfig::token_from_env(var)?,
            (None, Some(file)) => GithubConfig::token_from_file(file)?,
            (None, None) => {
                return Err(PipelineError::Credentials {
                    what: "[github]".into(),
                    reason: "no token or App configured".into(),
                });
            }
        }),
    };
    let config = GithubConfig {
        owner,
        repo,
        auth,
        base_uri: settings.api_url.clone(),
        retry: Default::default(),
    };
    Ok(GithubForge::new(config)?)
}

/// Credentials given in a mapping's `auth`, read now; `None` when it gives none.
fn fixed_credentials(auth: &GitAuthConfig) -> Result<Option<Credentials>, PipelineError> {
    let token = match (&auth.token_env, &auth.token_file) {
        (Some(var), _) => Some(GithubConfig::token_from_env(var)?),
        (None, Some(file)) => Some(GithubConfig::token_from_file(file)?),
        (None, None) => None,
    };
    if let Some(token) = token {
        return Ok(Some(Credentials::Token {
            username: auth
                .username
                .clone()
                .unwrap_or_else(|| "x-access-token".into()),
            token,
        }));
    }
    let Some(key) = &auth.ssh_key else {
        return Ok(None);
    };
    let passphrase = auth
        .ssh_passphrase_env
        .as_deref()
        .map(|var| {
            std::env::var(var)
                .map(SecretString::from)
                .map_err(|_| PipelineError::Credentials {
                    what: format!("the SSH key passphrase ({var})"),
                    reason: "the environment variable is not set".into(),
                })
        })
        .transpose()?;
    Ok(Some(Credentials::SshKey {
        username: auth.username.clone().unwrap_or_else(|| "git".into()),
        private_key: key.clone(),
        passphrase,
    }))
}
