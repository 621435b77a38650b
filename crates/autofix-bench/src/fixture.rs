//! What the benchmarks run against: the example scenario (compiled in, so `autofix bench` runs
//! from anywhere), git repositories made from it, and a real `autofix serve` child process.

use crate::BenchError;
use crate::machine::{Memory, memory_of};
use autofix_testkit::{try_copy_dir, try_git_repo_from};
use include_dir::{Dir, include_dir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The scenario every benchmark uses unless told otherwise: an OOM-killed StatefulSet whose fix
/// is a memory limit raised in a kustomize base.
pub static SCENARIO: Dir<'static> =
    include_dir!("$CARGO_MANIFEST_DIR/../../examples/scenarios/oom-statefulset-search-cache");

/// The bearer token the benchmarks give `autofix serve`.
pub const TOKEN: &str = "bench-0b9e3f27c4d84a6e9d1f5c2a7b8e4d60";

/// How long `autofix serve` may take to answer `/readyz`.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// How often a poll looks again.
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// A temporary folder with the scenario (`scenario/`) and its GitOps folder as a git work tree
/// with one commit on `main` (`gitops/`).
pub struct Fixture {
    /// Deleted on drop.
    pub temp: tempfile::TempDir,
    /// The snapshot folder (cluster, logs, alert.json).
    pub scenario: PathBuf,
    /// The GitOps work tree.
    pub repo: PathBuf,
}

impl Fixture {
    /// Copies `scenario` (default: the compiled-in [`SCENARIO`]) and makes its GitOps repo.
    pub fn new(scenario: Option<&Path>) -> Result<Fixture, BenchError> {
        let temp = tempfile::Builder::new()
            .prefix("autofix-bench-")
            .tempdir()
            .map_err(BenchError::io(std::env::temp_dir()))?;
        let copy = temp.path().join("scenario");
        match scenario {
            Some(dir) => try_copy_dir(dir, &copy)?,
            None => {
                std::fs::create_dir_all(&copy).map_err(BenchError::io(&copy))?;
                SCENARIO.extract(&copy).map_err(BenchError::io(&copy))?;
            }
        }
        let repo = temp.path().join("gitops");
        try_git_repo_from(&copy.join("gitops"), &repo)?;
        Ok(Fixture {
            temp,
            scenario: copy,
            repo,
        })
    }

    /// A path inside the temporary folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.temp.path().join(name)
    }

    /// The scenario's `alert.json`.
    pub fn alert(&self) -> Result<Vec<u8>, BenchError> {
        let path = self.scenario.join("alert.json");
        std::fs::read(&path).map_err(BenchError::io(path))
    }

    /// Pull requests the local forge recorded in the work tree (`.git/autofix/pulls/<N>`).
    pub fn local_pulls(&self) -> usize {
        std::fs::read_dir(self.repo.join(".git/autofix/pulls"))
            .map(|entries| entries.flatten().count())
            .unwrap_or(0)
    }

    /// Writes the token file and a config file whose `[server]` section holds `server`.
    pub fn serve_config(&self, server: &str) -> Result<PathBuf, BenchError> {
        let token = self.path("webhook-token");
        std::fs::write(&token, format!("{TOKEN}\n")).map_err(BenchError::io(&token))?;
        let config = self.path("autofix.toml");
        let text = format!("[server]\n{server}\n\n[server.auth]\nbearer_token_file = {token:?}\n");
        std::fs::write(&config, text).map_err(BenchError::io(&config))?;
        Ok(config)
    }
}

/// A bare clone of the work tree `from` at `to`: a GitOps remote on disk.
pub fn bare_remote(from: &Path, to: &Path) -> Result<(), BenchError> {
    let url = from.to_str().ok_or_else(|| BenchError::Io {
        path: from.to_path_buf(),
        source: std::io::Error::other("not UTF-8"),
    })?;
    git2::build::RepoBuilder::new().bare(true).clone(url, to)?;
    Ok(())
}

/// A running `autofix serve` (the binary at `exe`), killed when dropped.
pub struct ServeProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its stdout and stderr.
    pub log: PathBuf,
    client: reqwest::Client,
}

impl ServeProcess {
    /// Starts `exe serve --snapshot .. --gitops .. --config .. --listen 127.0.0.1:PORT
    /// --data-dir ..` (and `--database-url`), then waits until `/readyz` answers 200.
    pub async fn start(
        exe: &Path,
        fixture: &Fixture,
        config: &Path,
        database_url: Option<&str>,
    ) -> Result<ServeProcess, BenchError> {
        let port = free_port()?;
        let log = fixture.path("serve.log");
        let out = std::fs::File::create(&log).map_err(BenchError::io(&log))?;
        let err = out.try_clone().map_err(BenchError::io(&log))?;
        let mut command = Command::new(exe);
        command
            .arg("serve")
            .arg("--snapshot")
            .arg(&fixture.scenario)
            .arg("--gitops")
            .arg(&fixture.repo)
            .arg("--config")
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(fixture.path("data"))
            .env("AUTOFIX_LOG", "error")
            .env("NO_COLOR", "1")
            .env_remove("AUTOFIX_WEBHOOK_TOKEN")
            .env_remove("AUTOFIX_MLFLOW_URI")
            .env_remove("AUTOFIX_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        if let Some(url) = database_url {
            command.env("AUTOFIX_DATABASE_URL", url);
        }
        let child = command.spawn().map_err(|e| BenchError::Serve {
            reason: format!("cannot start {}: {e}", exe.display()),
            log: log.clone(),
        })?;
        let mut serve = ServeProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Ok(Some(status)) = serve.child.try_wait() {
                return Err(BenchError::Serve {
                    reason: format!("exited before it was ready ({status})"),
                    log: serve.log.clone(),
                });
            }
            let ready = serve
                .client
                .get(format!("{}/readyz", serve.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(serve);
            }
            if Instant::now() > deadline {
                return Err(BenchError::Timeout {
                    what: "autofix serve to answer /readyz".into(),
                    after: READY_WITHIN,
                });
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident memory now and at peak.
    pub fn memory(&self) -> Memory {
        memory_of(self.pid()).unwrap_or_default()
    }

    /// Fails when the process has exited.
    pub fn check_running(&mut self) -> Result<(), BenchError> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(BenchError::Serve {
                reason: format!("exited during the benchmark ({status})"),
                log: self.log.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// `GET path` with the bearer token, as JSON.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, BenchError> {
        let url = format!("{}{path}", self.base);
        let http = |source| BenchError::Http {
            url: url.clone(),
            source,
        };
        let response = self
            .client
            .get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .map_err(http)?;
        let bytes = response.bytes().await.map_err(http)?;
        serde_json::from_slice(&bytes).map_err(|e| BenchError::Serve {
            reason: format!("GET {path} is not JSON: {e}"),
            log: self.log.clone(),
        })
    }

    /// The sum of the samples of metric `name` in `GET /metrics`.
    pub async fn metric(&self, name: &str) -> Result<f64, BenchError> {
        let url = format!("{}/metrics", self.base);
        let http = |source| BenchError::Http {
            url: url.clone(),
            source,
        };
        let text = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(http)?
            .text()
            .await
            .map_err(http)?;
        Ok(metric_sum(&text, name))
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sums the samples of metric `name` (exact name, any labels) in OpenMetrics text.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(inner) => inner.split_once('}')?.1,
                None if rest.starts_with(' ') => rest,
                None => return None,
            };
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16, BenchError> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(BenchError::io("127.0.0.1:0"))?;
    Ok(listener
        .local_addr()
        .map_err(BenchError::io("127.0.0.1:0"))?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_samples_are_summed_across_labels() {
        let text = "# TYPE autofix_runs_total counter\n\
                    autofix_runs_total{outcome=\"done\"} 2\n\
                    autofix_runs_total{outcome=\"parked\"} 3\n\
                    autofix_runs_total_created 1\n";
        assert_eq!(metric_sum(text, "autofix_runs_total"), 5.0);
    }

    #[test]
    fn the_fixture_is_a_git_work_tree_with_the_scenario() {
        let fixture = Fixture::new(None).unwrap();
        assert!(fixture.scenario.join("alert.json").is_file());
        let repo = git2::Repository::open(&fixture.repo).unwrap();
        assert!(repo.find_branch("main", git2::BranchType::Local).is_ok());
    }
}
