//! Shared pieces of the end-to-end tests: scenario fixtures, child processes that die with the
//! test (even on panic), `autofix serve` over a real socket, bounded polling, and readers for
//! what a run leaves behind (branches, pull request and issue records, incidents, metrics).
//!
//! Every wait is a poll with a deadline; nothing sleeps to "let things settle".

#![allow(dead_code)] // each test binary uses its own subset

pub mod mlflow;

pub use autofix_testkit::copy_dir;
use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Bound of every wait: far above what any step needs on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// How often a poll looks again.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// The examples folder of the repository.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(name)
}

/// The `autofix` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_autofix")
}

/// Runs `autofix ARGS` to completion.
pub fn autofix(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("AUTOFIX_CONFIG")
        .env_remove("AUTOFIX_DATA_DIR")
        .env_remove("AUTOFIX_MLFLOW_URI")
        .env_remove("AUTOFIX_WEBHOOK_TOKEN")
        .output()
        .expect("the autofix binary runs")
}

/// Panics with both output streams unless the command succeeded.
pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `probe` until it answers `Some`, at most `timeout`; panics naming `what` otherwise.
pub fn wait_until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(POLL_EVERY);
    }
}

/// A loopback port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// A blocking HTTP client (rustls needs its crypto provider chosen first in this workspace).
pub fn http() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}

/// `time` as RFC 3339 UTC with milliseconds, the way Alertmanager writes it.
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// A child process killed (SIGKILL) and reaped when dropped, panics included. Its stdout and
/// stderr go to a log file, whose tail is printed when the test is failing.
pub struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    /// Starts `command` with its output in `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Proc {
        let out = File::create(log).expect("create the log file");
        let err = out.try_clone().unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics (with the log) when the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!("{} exited ({status}):\n{}", self.name, self.log());
        }
    }

    /// Sends SIGTERM (a pod being stopped), then waits at most `timeout` for the process to
    /// exit; answers its exit status, panicking (with the log) when it is still running.
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {} failed", self.id());
        let child = self.child.as_mut().expect("the process was started");
        let exited = wait_until(&format!("{} to exit", self.name), timeout, || {
            child.try_wait().expect("wait for the child")
        });
        self.child = None;
        exited
    }

    /// `kill -9` and reap: the process gets no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL on Unix
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let was_running = self.child.is_some();
        self.kill9();
        if was_running && std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last lines of {} ({}):", self.name, self.log.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Runs git in `repo`, panicking on failure; answers stdout.
pub fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A temporary folder with a snapshot (`scenario/`: cluster, logs, alert bodies) and its GitOps
/// repository (`gitops/`, a git repo with one commit on `main`).
pub struct Fixture {
    /// The temporary folder; everything else lives in it.
    pub temp: tempfile::TempDir,
    /// The snapshot folder.
    pub scenario: PathBuf,
    /// The GitOps work tree.
    pub repo: PathBuf,
    /// One Alertmanager body per merged scenario (just `scenario/alert.json` for one).
    pub alerts: Vec<(String, PathBuf)>,
}

impl Fixture {
    /// A copy of one example scenario.
    pub fn new(name: &str) -> Fixture {
        Fixture::merged(&[name])
    }

    /// Several example scenarios in one snapshot and one GitOps repo: cluster files are
    /// prefixed with the scenario name, logs and GitOps trees are laid over each other (the
    /// chosen scenarios share no GitOps path and no pod), and each alert body is kept apart as
    /// `alerts/<scenario>.json`.
    pub fn merged(names: &[&str]) -> Fixture {
        let temp = tempfile::tempdir().unwrap();
        let scenario = temp.path().join("scenario");
        let repo = temp.path().join("gitops");
        let cluster = scenario.join("cluster");
        std::fs::create_dir_all(&cluster).unwrap();
        std::fs::create_dir_all(scenario.join("alerts")).unwrap();
        let mut alerts = Vec::new();
        for name in names {
            let source = example(name);
            for e in std::fs::read_dir(source.join("cluster")).unwrap().flatten() {
                let target = if names.len() == 1 {
                    cluster.join(e.file_name())
                } else {
                    cluster.join(format!("{name}-{}", e.file_name().to_string_lossy()))
                };
                assert!(!target.exists(), "{} twice", target.display());
                std::fs::copy(e.path(), target).unwrap();
            }
            copy_dir(&source.join("logs"), &scenario.join("logs"));
            copy_dir(&source.join("gitops"), &repo);
            let alert = scenario.join("alerts").join(format!("{name}.json"));
            std::fs::copy(source.join("alert.json"), &alert).unwrap();
            alerts.push((name.to_string(), alert));
        }
        if let [(_, only)] = alerts.as_slice() {
            std::fs::copy(only, scenario.join("alert.json")).unwrap();
        }
        git(&repo, &["init", "-q", "-b", "main"]);
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "import"]);
        Fixture {
            temp,
            scenario,
            repo,
            alerts,
        }
    }

    /// A path inside the temporary folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.temp.path().join(name)
    }

    /// The local forge's records: `<repo>/.git/autofix`.
    pub fn forge_dir(&self) -> PathBuf {
        self.repo.join(".git").join("autofix")
    }

    /// Local branches.
    pub fn branches(&self) -> Vec<String> {
        git(&self.repo, &["branch", "--format=%(refname:short)"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Local branches other than `main`.
    pub fn fix_branches(&self) -> Vec<String> {
        self.branches()
            .into_iter()
            .filter(|b| b != "main")
            .collect()
    }

    /// Commits on `branch` that are not on `main`.
    pub fn commits_ahead(&self, branch: &str) -> usize {
        git(
            &self.repo,
            &["rev-list", "--count", &format!("main..{branch}")],
        )
        .trim()
        .parse()
        .unwrap()
    }

    /// Every pull request record (`pulls/<N>/pr.json`), by number.
    pub fn pulls(&self) -> Vec<Value> {
        records(&self.forge_dir().join("pulls"), "pr.json")
    }

    /// Every issue record (`issues/<N>/issue.json`), by number.
    pub fn issues(&self) -> Vec<Value> {
        records(&self.forge_dir().join("issues"), "issue.json")
    }
}

/// The JSON records `<dir>/<N>/<file>`, by number.
fn records(dir: &Path, file: &str) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut numbered: Vec<(u64, Value)> = entries
        .flatten()
        .filter_map(|e| {
            let number: u64 = e.file_name().to_str()?.parse().ok()?;
            let text = std::fs::read(e.path().join(file)).ok()?;
            Some((number, serde_json::from_slice(&text).unwrap()))
        })
        .collect();
    numbered.sort_by_key(|(n, _)| *n);
    numbered.into_iter().map(|(_, v)| v).collect()
}

/// `autofix incidents list --data-dir DIR --json`.
pub fn incidents(data_dir: &Path) -> Vec<Value> {
    let out = autofix(&[
        "incidents",
        "list",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--json",
    ]);
    assert_success("autofix incidents list", &out);
    serde_json::from_slice(&out.stdout).expect("incidents list prints JSON")
}

/// The bearer token the tests give `autofix serve` (with the trailing newline `openssl rand`
/// leaves, as in docs/operations.md).
pub const TOKEN: &str = "e2e-0f3c9a1b7d2e4c6a8b0d1f3e5a7c9b2d";

/// Writes the token file and a config file with `[server]` and `[server.auth]` sections;
/// `server_extra` adds keys to `[server]`. Returns (config, token file).
pub fn serve_config(dir: &Path, server_extra: &str) -> (PathBuf, PathBuf) {
    let token = dir.join("webhook-token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let config = dir.join("autofix.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\n{server_extra}\n\n[server.auth]\nbearer_token_file = {:?}\n",
            token.to_str().unwrap()
        ),
    )
    .unwrap();
    (config, token)
}

/// A running `autofix serve` over the fixture's snapshot and repo.
pub struct Serve {
    /// The process.
    pub proc: Proc,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The port.
    pub port: u16,
    client: reqwest::blocking::Client,
}

impl Serve {
    /// Starts the service on the fixture's snapshot and local repo, and waits until `/readyz`
    /// answers 200.
    pub fn start(f: &Fixture, config: &Path, data_dir: &Path, log: &Path) -> Serve {
        Serve::launch(&f.scenario, Some(&f.repo), config, data_dir, log)
    }

    /// Starts the service on a snapshot, with a local repo or (without) the config's remote
    /// repositories, and waits until `/readyz` answers 200.
    pub fn launch(
        snapshot: &Path,
        gitops: Option<&Path>,
        config: &Path,
        data_dir: &Path,
        log: &Path,
    ) -> Serve {
        Serve::launch_with(snapshot, gitops, config, data_dir, log, &[])
    }

    /// [`Serve::launch`] with extra environment variables for the process.
    pub fn launch_with(
        snapshot: &Path,
        gitops: Option<&Path>,
        config: &Path,
        data_dir: &Path,
        log: &Path,
        env: &[(&str, &str)],
    ) -> Serve {
        let port = free_port();
        let mut command = Command::new(bin());
        command.args(["serve", "--snapshot"]).arg(snapshot);
        if let Some(repo) = gitops {
            command.arg("--gitops").arg(repo);
        }
        command
            .arg("--config")
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .env("AUTOFIX_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("AUTOFIX_WEBHOOK_TOKEN")
            .env_remove("AUTOFIX_MLFLOW_URI")
            .envs(env.iter().copied());
        let mut serve = Serve {
            proc: Proc::spawn("autofix serve", command, log),
            base: format!("http://127.0.0.1:{port}"),
            port,
            client: http(),
        };
        wait_until("autofix serve to be ready", PATIENCE, || {
            serve.proc.assert_running();
            let ready = serve
                .client
                .get(format!("{}/readyz", serve.base))
                .send()
                .is_ok_and(|r| r.status() == 200);
            ready.then_some(())
        });
        serve
    }

    /// Posts an Alertmanager body with the bearer token; answers the status and JSON body.
    pub fn post(&self, body: &[u8]) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/webhooks/alertmanager", self.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .expect("the webhook answers");
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `GET /incidents` with the token.
    pub fn incidents(&self) -> Vec<Value> {
        let response = self
            .client
            .get(format!("{}/incidents", self.base))
            .bearer_auth(TOKEN)
            .send()
            .expect("GET /incidents answers");
        assert_eq!(response.status(), 200);
        response.json().expect("GET /incidents is JSON")
    }

    /// The `GET /metrics` text.
    pub fn metrics(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .expect("GET /metrics answers");
        assert_eq!(response.status(), 200);
        response.text().unwrap()
    }

    /// The sum of the samples of `name` (exact metric name) whose labels contain `labels`.
    pub fn metric(&self, name: &str, labels: &str) -> f64 {
        metric_sum(&self.metrics(), name, labels)
    }
}

/// Sums the samples of metric `name` whose label set contains `labels` ("" for any).
pub fn metric_sum(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (label_set, value) = if let Some(inner) = rest.strip_prefix('{') {
                let (set, value) = inner.split_once('}')?;
                (set, value)
            } else if rest.starts_with(' ') {
                ("", rest)
            } else {
                return None;
            };
            if !label_set.contains(labels) {
                return None;
            }
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}
