//! Faults around `autofix serve`, with the real binary, a GitOps remote served over git's smart
//! HTTP protocol (the real `git http-backend`, pushed to by git2) and the fake GitHub:
//!
//! - **the git remote is unreachable** when the alert arrives: the delivery is acknowledged, the
//!   incident is retried with backoff and its `last_error` names the remote and why; once the
//!   remote answers, the incident ends with one pull request and one fix commit;
//! - **the data dir's disk is full** (a tmpfs filled with a ballast file): a delivery is refused
//!   with 503 and `Retry-After` (never acknowledged without being stored), the server stays up
//!   and says why; with a little room back, the re-delivery is stored but the clone does not
//!   fit, and the incident is retried, not lost; with room again it ends with one pull request;
//! - **SIGTERM lands during a push** (held by a `pre-receive` hook): the process gives the run
//!   back to the queue after its grace period, says so, and exits 0 without waiting for the
//!   push; a restart finishes the incident with one pull request and one fix commit.
//!
//! MLflow down, GitHub 5xx and rate limits, and kill -9 during intake have their own tests
//! (`e2e_mlflow_outage.rs`, `autofix-pipeline/tests/github_remote.rs`, `e2e_crash.rs`).

mod support;

use autofix_testkit::{FakeGithub, GitHttpServer};
use serde_json::Value;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{Fixture, PATIENCE, Serve, TOKEN, free_port, incidents, wait_until};

/// One fixable incident: catalog/redis-cache is OOM-killed, the fix raises its memory limit.
const SCENARIO: &str = "oom-statefulset-search-cache";
const GITHUB_TOKEN: &str = "ghp_e2e_faults_token";
/// The bare repository's name under the served root.
const REPO: &str = "gitops.git";

/// `support::git`'s output without the trailing newline.
fn git(repo: &Path, args: &[&str]) -> String {
    support::git(repo, args).trim().to_string()
}

/// A scenario, its GitOps repository as a bare remote (served over HTTP by [`World::http`]), the
/// fake GitHub holding `acme/gitops`, and the runtime both servers live on.
struct World {
    f: Fixture,
    github: FakeGithub,
    /// The folder served over HTTP, holding [`REPO`].
    served: PathBuf,
    /// The bare remote.
    bare: PathBuf,
    /// `main` of the remote before anything ran.
    main: String,
    /// Declared last: the servers above stop before it does.
    runtime: tokio::runtime::Runtime,
}

impl World {
    /// The scenario with `prepare` applied to its work tree (then committed), mirrored into a
    /// bare remote.
    fn new(prepare: impl FnOnce(&Path)) -> World {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let github = runtime
            .block_on(FakeGithub::start(Some(GITHUB_TOKEN)))
            .unwrap();
        github.add_repo("acme", "gitops");
        let f = Fixture::new(SCENARIO);
        prepare(&f.repo);
        if !git(&f.repo, &["status", "--porcelain"]).is_empty() {
            git(&f.repo, &["add", "-A"]);
            git(&f.repo, &["commit", "-q", "-m", "prepare"]);
        }
        let served = f.path("served");
        std::fs::create_dir_all(&served).unwrap();
        git(
            &served,
            &["clone", "-q", "--bare", f.repo.to_str().unwrap(), REPO],
        );
        let bare = served.join(REPO);
        let main = git(&bare, &["rev-parse", "main"]);
        World {
            f,
            github,
            served,
            bare,
            main,
            runtime,
        }
    }

    /// Serves the bare remote on loopback `port` (0: any), with the GitHub token as the git
    /// password, the way the service authenticates to a GitHub remote.
    fn http(&self, port: u16) -> GitHttpServer {
        self.runtime
            .block_on(GitHttpServer::start_on_port(
                port,
                &self.served,
                "x-access-token",
                GITHUB_TOKEN,
            ))
            .unwrap()
    }

    /// Writes the config: `[server]` with `server_extra`, the fake GitHub, and the remote `url`
    /// for the scenario's namespace.
    fn config(&self, url: &str, server_extra: &str) -> PathBuf {
        let (config, _) = support::serve_config(self.f.temp.path(), server_extra);
        let token_file = self.f.path("github-token");
        std::fs::write(&token_file, format!("{GITHUB_TOKEN}\n")).unwrap();
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "\n[github]\napi_url = {:?}\ntoken_file = {:?}\n\n[[gitops.repos]]\n\
             namespaces = [\"catalog\"]\nurl = {url:?}\nbase = \"main\"\n\
             github_repo = \"acme/gitops\"\n",
            self.github.url(),
            token_file.to_str().unwrap(),
        ));
        std::fs::write(&config, text).unwrap();
        config
    }

    /// Starts `autofix serve` on the snapshot with the config's remote and waits until ready.
    fn serve(&self, config: &Path, data: &Path, log: &str) -> Serve {
        Serve::launch(&self.f.scenario, None, config, data, &self.f.path(log))
    }

    /// The scenario's Alertmanager body.
    fn alert(&self) -> Vec<u8> {
        std::fs::read(self.f.scenario.join("alert.json")).unwrap()
    }

    /// The remote's fix branches.
    fn remote_branches(&self) -> Vec<String> {
        git(
            &self.bare,
            &["branch", "--list", "--format=%(refname:short)", "autofix/*"],
        )
        .lines()
        .map(str::to_string)
        .collect()
    }

    /// Asserts that nothing was published: no pull request, no fix branch on the remote.
    fn assert_nothing_published(&self) {
        assert_eq!(self.github.pulls("acme", "gitops").len(), 0, "a PR exists");
        assert_eq!(
            self.remote_branches(),
            Vec::<String>::new(),
            "a branch exists"
        );
    }

    /// Waits until the one incident is done, then asserts the fix went out exactly once: one
    /// pull request, whose head is the only fix branch, holding one commit on the untouched
    /// `main`, as the incident's report says.
    fn assert_one_fix(&self, data: &Path) -> Value {
        let incident = wait_until("the incident to be done", PATIENCE, || {
            let list = incidents(data);
            assert_eq!(list.len(), 1, "one incident: {list:#?}");
            (list[0]["state"] == "done").then(|| list[0].clone())
        });
        assert_eq!(incident["last_error"], Value::Null, "{incident:#}");
        let report = &incident["last_report"];
        assert_eq!(report["action"], "pr", "{report:#}");
        let pulls = self.github.pulls("acme", "gitops");
        assert_eq!(pulls.len(), 1, "exactly one PR: {pulls:#?}");
        let branch = report["branch"].as_str().expect("a fix branch");
        assert_eq!(pulls[0].head, branch);
        assert_eq!(report["pr"]["number"], pulls[0].number);
        assert_eq!(self.remote_branches(), vec![branch.to_string()]);
        assert_eq!(
            git(
                &self.bare,
                &["rev-list", "--count", &format!("main..{branch}")]
            ),
            "1",
            "{branch}: exactly one fix commit"
        );
        assert_eq!(
            git(&self.bare, &["rev-parse", &format!("{branch}~1")]),
            self.main
        );
        assert_eq!(
            report["commit"].as_str(),
            Some(git(&self.bare, &["rev-parse", branch]).as_str()),
            "the report names the pushed commit"
        );
        assert_eq!(
            git(&self.bare, &["rev-parse", "main"]),
            self.main,
            "main untouched"
        );
        incident
    }
}

/// Retries fast and never gives up while the test waits.
const FAST_RETRIES: &str =
    "workers = 1\nmax_attempts = 1000\nbackoff_initial_secs = 1\nbackoff_max_secs = 2";

#[test]
fn an_unreachable_git_remote_is_retried_until_it_answers_then_one_pr() {
    let w = World::new(|_| {});
    // Nobody listens on this port until the remote "comes back" on it.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/{REPO}");
    let config = w.config(&url, FAST_RETRIES);
    let data = w.f.path("data");
    let serve = w.serve(&config, &data, "serve.log");

    let (status, outcome) = serve.post(&w.alert());
    assert_eq!(
        status, 200,
        "acknowledged although the remote is down: {outcome}"
    );
    assert_eq!(outcome["incidents_queued"], 1, "{outcome}");

    // Retried with backoff, each failure recorded with the remote and the reason.
    let incident = wait_until(
        "two failed runs against the unreachable remote",
        PATIENCE,
        || {
            let list = serve.incidents();
            let incident = list.first()?;
            (incident["state"] == "queued"
                && incident["attempts"].as_u64()? >= 2
                && incident["last_error"].is_string())
            .then(|| incident.clone())
        },
    );
    eprintln!("while unreachable: {incident:#}");
    let error = incident["last_error"].as_str().unwrap();
    assert!(error.contains(&url), "last_error names the remote: {error}");
    assert!(
        error.contains("connect"),
        "last_error says the remote cannot be reached: {error}"
    );
    let backoff =
        incident["next_attempt_at"].as_i64().unwrap() - incident["updated_at"].as_i64().unwrap();
    assert!(
        backoff >= 1000,
        "the retry waits out the backoff: {incident:#}"
    );
    w.assert_nothing_published();
    assert!(serve.proc.log().contains(&url), "the log names the remote");

    // The remote comes back on the same address; the next retry gets through.
    let _remote = w.http(port);
    w.assert_one_fix(&data);
    drop(serve);
}

/// A remote that takes the connection and then says nothing (a hung proxy, a black-holed
/// route) does not hold the worker: the fetch times out after `AUTOFIX_GIT_TIMEOUT_SECS`, the
/// run is retried with the reason recorded, and once a real remote answers there, one PR.
#[test]
fn a_silent_git_remote_times_out_and_the_run_is_retried() {
    let w = World::new(|_| {});
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    // Accepts every connection and keeps it open without a word.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            held.push(stream);
        }
    });
    let url = format!("http://127.0.0.1:{port}/{REPO}");
    let config = w.config(&url, FAST_RETRIES);
    let data = w.f.path("data");
    let serve = Serve::launch_with(
        &w.f.scenario,
        None,
        &config,
        &data,
        &w.f.path("serve.log"),
        &[("AUTOFIX_GIT_TIMEOUT_SECS", "2")],
    );

    let (status, outcome) = serve.post(&w.alert());
    assert_eq!(status, 200, "{outcome}");
    let incident = wait_until(
        "a run that timed out on the silent remote",
        PATIENCE,
        || {
            let list = serve.incidents();
            let incident = list.first()?;
            (incident["state"] == "queued" && incident["last_error"].is_string())
                .then(|| incident.clone())
        },
    );
    let error = incident["last_error"].as_str().unwrap();
    assert!(error.contains(&url), "last_error names the remote: {error}");
    assert!(error.contains("timed out"), "last_error says why: {error}");
    w.assert_nothing_published();
    drop(serve);
}

/// A tmpfs mounted on a folder for the life of the guard.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`16m`) on `dir`; `None` when mounting is not permitted.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a process killed a moment ago may still hold a file open.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until its filesystem has no room left; answers how many bytes it took.
fn fill(path: &Path) -> u64 {
    let mut file = File::create(path).unwrap();
    let chunk = vec![0xa5u8; 1 << 20];
    let mut written = 0;
    for size in [1 << 20, 4096, 1] {
        while let Ok(n @ 1..) = file.write(&chunk[..size]) {
            written += n as u64;
        }
    }
    written
}

/// `len` bytes that do not compress (xorshift), so a clone needs that much room.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Posts the alert; answers the status, the `Retry-After` header and the body.
fn post(serve: &Serve, body: &[u8]) -> (u16, Option<String>, String) {
    let response = support::http()
        .post(format!("{}/webhooks/alertmanager", serve.base))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .expect("the webhook answers");
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (
        response.status().as_u16(),
        retry_after,
        response.text().unwrap_or_default(),
    )
}

/// Body limit of the disk-full test: room for a delivery bigger than the log SQLite has already.
const BIG_BODY_LIMIT: usize = 16 << 20;

/// The Alertmanager body `body` with its first alert repeated `count` times, each a distinct
/// alert (its own fingerprint) of the same pod.
fn many_alerts(body: &[u8], count: usize) -> Vec<u8> {
    let mut payload: Value = serde_json::from_slice(body).unwrap();
    let first = payload["alerts"][0].clone();
    let alerts: Vec<Value> = (0..count)
        .map(|n| {
            let mut alert = first.clone();
            alert["fingerprint"] = Value::String(format!("{n:016x}"));
            alert
        })
        .collect();
    payload["alerts"] = Value::Array(alerts);
    serde_json::to_vec(&payload).unwrap()
}

/// Size of the file the GitOps repository carries, so its clone cannot fit in [`ROOM`].
const BLOB: usize = 4 << 20;
/// Room given back for the worker phase: plenty for the store, not for the clone.
const ROOM: u64 = 1 << 20;

#[test]
fn a_full_data_dir_refuses_deliveries_and_delays_runs_but_loses_nothing() {
    let w = World::new(|repo| {
        std::fs::create_dir_all(repo.join("assets")).unwrap();
        std::fs::write(repo.join("assets/blob.bin"), noise(BLOB)).unwrap();
    });
    let data = w.f.path("data");
    let Some(_tmpfs) = Tmpfs::mount(&data, "16m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs on the data dir (needs root or CAP_SYS_ADMIN); the \
             disk-full test did not run"
        );
        return;
    };
    let remote = w.http(0);
    let config = w.config(
        &remote.url_for(REPO),
        &format!("{FAST_RETRIES}\nretry_after_secs = 7\nbody_limit_bytes = {BIG_BODY_LIMIT}"),
    );
    let mut serve = w.serve(&config, &data, "serve.log");
    let alert = w.alert();

    // Intake: the disk is full; a delivery that needs room must not be acknowledged. (A small
    // one may still fit in the space SQLite's log already holds, and then it is on disk.)
    let ballast = data.join("ballast");
    let filled = fill(&ballast);
    eprintln!("ballast: {filled} bytes");
    let (status, retry_after, body) = post(&serve, &many_alerts(&alert, 5000));
    assert_eq!(
        status, 503,
        "a delivery that cannot be stored is refused: {body}"
    );
    assert_eq!(retry_after.as_deref(), Some("7"), "{body}");
    assert!(
        body.contains("disk is full"),
        "the refusal says why: {body}"
    );
    serve.proc.assert_running();
    assert!(
        serve.proc.log().contains("disk is full"),
        "the log says why:\n{}",
        serve.proc.log()
    );
    assert_eq!(serve.incidents().len(), 0, "nothing half-stored");

    // Worker: room for the store, not for the clone. Alertmanager's retry is stored; the run
    // fails for want of space and is retried, the incident kept.
    let file = File::options().write(true).open(&ballast).unwrap();
    file.set_len(filled - ROOM).unwrap();
    drop(file);
    let (status, _, body) = post(&serve, &alert);
    assert_eq!(status, 200, "the re-delivery is stored: {body}");
    let incident = wait_until("a run failed for want of space", PATIENCE, || {
        let list = serve.incidents();
        let incident = list.first()?;
        (incident["attempts"].as_u64()? >= 1 && incident["last_error"].is_string())
            .then(|| incident.clone())
    });
    eprintln!("while full: {incident:#}");
    let error = incident["last_error"].as_str().unwrap();
    assert!(
        error.contains("No space left on device"),
        "last_error says the disk is full: {error}"
    );
    assert_ne!(incident["state"], "parked", "{incident:#}");
    w.assert_nothing_published();

    // Room again: the next attempt works over whatever the failed one left in the clone.
    std::fs::remove_file(&ballast).unwrap();
    w.assert_one_fix(&data);
    serve.proc.assert_running();
    drop(serve);
}

#[test]
fn sigterm_during_a_push_gives_the_run_back_and_a_restart_opens_one_pr() {
    let w = World::new(|_| {});
    // The remote holds every push while the gate file exists, so SIGTERM lands mid-push.
    let gate = w.f.path("hold-pushes");
    let started = w.f.path("push-started");
    std::fs::write(&gate, "").unwrap();
    let hook = w.bare.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n# Holds the push while the gate exists (two minutes at most).\n\
             touch '{started}'\nn=0\n\
             while [ -e '{gate}' ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n+1)); done\nexit 0\n",
            started = started.display(),
            gate = gate.display()
        ),
    )
    .unwrap();
    assert!(
        Command::new("chmod")
            .arg("+x")
            .arg(&hook)
            .status()
            .unwrap()
            .success()
    );
    let remote = w.http(0);
    // A short grace, so the held push outlasts it; a long lease, so a restart that had to wait
    // for it to expire would time out.
    let config = w.config(
        &remote.url_for(REPO),
        "workers = 1\nshutdown_grace_secs = 1\nlease_secs = 600",
    );
    let data = w.f.path("data");
    let mut first = w.serve(&config, &data, "serve-1.log");
    let (status, outcome) = first.post(&w.alert());
    assert_eq!(status, 200, "{outcome}");
    wait_until("the push to reach the remote's hook", PATIENCE, || {
        first.proc.assert_running();
        started.exists().then_some(())
    });

    let exit = first.proc.terminate(PATIENCE);
    let log = first.proc.log();
    assert!(exit.success(), "graceful shutdown exits 0 ({exit}):\n{log}");
    assert!(
        log.contains("interrupted"),
        "the log says the run was interrupted:\n{log}"
    );
    let list = incidents(&data);
    assert_eq!(list.len(), 1, "{list:#?}");
    let incident = &list[0];
    eprintln!("after SIGTERM: {incident:#}");
    assert_eq!(incident["state"], "queued", "given back: {incident:#}");
    assert_eq!(
        incident["lease_owner"],
        Value::Null,
        "lease released: {incident:#}"
    );
    assert_eq!(
        incident["attempts"], 0,
        "the interrupted run is not counted"
    );
    let error = incident["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("interrupted"),
        "the record says so: {incident:#}"
    );
    assert_eq!(w.github.pulls("acme", "gitops").len(), 0, "no PR yet");

    // The held push is let go: it may still land after the process gave up on it. Either way
    // the restart ends with one PR and one commit.
    std::fs::remove_file(&gate).unwrap();
    eprintln!(
        "fix branches on the remote at the restart: {:?}",
        w.remote_branches()
    );
    let second = w.serve(&config, &data, "serve-2.log");
    let incident = w.assert_one_fix(&data);
    eprintln!("after the restart: attempts {}", incident["attempts"]);
    drop(second);
}
