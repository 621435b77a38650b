//! The write path end to end: a real remote (a bare repository on disk, or behind git's smart
//! HTTP with credentials), the real octocrab client against the stateful fake GitHub, and the
//! pipeline in between. One incident gives one branch, one commit and one pull request, however
//! often and however concurrently it is run; a base that moves, a human who edits, a reviewer
//! who declines and a GitHub that fails are each handled as a careful human would.

use async_trait::async_trait;
use autofix_cluster::SnapshotSource;
use autofix_core::alert::WebhookPayload;
use autofix_core::{Action, Incident};
use autofix_diagnose::RuleDiagnoser;
use autofix_forge::{
    DeclinedPr, Escalation, EscalationRecord, Forge, ForgeError, GithubAuth, GithubConfig,
    GithubForge, PrRecord, PullRequest, RetryPolicy,
};
use autofix_gitops::Credentials;
use autofix_pipeline::config::{ForgeKind, GitAuthConfig, RepoMapping};
use autofix_pipeline::{Config, GitAuth, Pipeline, Route, RunReport, Target};
use autofix_testkit::{FakeGithub, Fault, GitHttpServer, copy_dir};
use secrecy::SecretString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const OWNER: &str = "acme";
const REPO: &str = "gitops";
const TOKEN: &str = "ghp_fake_pat_for_tests";
const SCENARIO: &str = "oom-statefulset-search-cache";
const FIX_FILE: &str = "catalog/redis-cache.yaml";

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(SCENARIO)
}

/// Runs git with a fixed identity; panics with its output when it fails.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Human",
            "-c",
            "user.email=human@example.com",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A bare repository `<root>/gitops.git` holding the scenario's GitOps folder on `main`.
fn bare_remote(root: &Path) -> PathBuf {
    let seed = root.join("seed");
    copy_dir(&scenario().join("gitops"), &seed);
    git(&seed, &["init", "-q"]);
    git(&seed, &["add", "-A"]);
    git(&seed, &["commit", "-qm", "import"]);
    let bare = root.join("gitops.git");
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            seed.to_str().unwrap(),
            "gitops.git",
        ],
    );
    bare
}
/// Commits a change of `file` (text replaced) as a human on `branch` of `remote`, and pushes it.
fn human_commit(remote: &Path, work: &Path, branch: &str, file: &str, from: &str, to: &str) {
    if !work.exists() {
        git(
            work.parent().unwrap(),
            &[
                "clone",
                "-q",
                remote.to_str().unwrap(),
                work.to_str().unwrap(),
            ],
        );
    }
    git(work, &["fetch", "-q", "origin"]);
    git(
        work,
        &["checkout", "-q", "-B", branch, &format!("origin/{branch}")],
    );
    let path = work.join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        text.contains(from) || from.is_empty(),
        "{file} lacks {from:?}"
    );
    let new = if from.is_empty() {
        format!("{text}{to}")
    } else {
        text.replacen(from, to, 1)
    };
    std::fs::write(&path, new).unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "-qm", "human change"]);
    git(work, &["push", "-q", "origin", branch]);
}

/// `git log` of a remote branch: one line per commit, newest first.
fn log(remote: &Path, branch: &str) -> Vec<String> {
    git(remote, &["log", "--format=%H %P %ce", branch])
        .lines()
        .map(str::to_string)
        .collect()
}

fn branch_exists(remote: &Path, branch: &str) -> bool {
    !git(remote, &["branch", "--list", branch]).is_empty()
}

fn incident() -> Incident {
    let body = std::fs::read(scenario().join("alert.json")).unwrap();
    Incident::from_payload(&WebhookPayload::from_json(&body).unwrap()).unwrap()
}

/// The fake GitHub with the repository, and a forge for it that retries quickly.
async fn github() -> (FakeGithub, Arc<GithubForge>) {
    let fake = FakeGithub::start(Some(TOKEN)).await.unwrap();
    fake.add_repo(OWNER, REPO);
    let forge = GithubForge::new(GithubConfig {
        owner: OWNER.into(),
        repo: REPO.into(),
        auth: GithubAuth::Token(SecretString::from(TOKEN)),
        base_uri: fake.url().to_string(),
        retry: RetryPolicy {
            max_retries: 3,
            max_wait: Duration::from_secs(5),
            base_backoff: Duration::from_millis(20),
        },
    })
    .unwrap();
    (fake, Arc::new(forge))
}

fn mapping(url: &str) -> RepoMapping {
    RepoMapping {
        namespaces: vec!["catalog".into()],
        cluster: None,
        url: url.into(),
        base: "main".into(),
        path: None,
        forge: Some(ForgeKind::Github),
        github_repo: Some(format!("{OWNER}/{REPO}")),
        auth: GitAuthConfig::default(),
    }
}

fn pipeline(config: Config, route: Route) -> Pipeline {
    Pipeline {
        source: Arc::new(SnapshotSource::open(&scenario()).unwrap()),
        diagnoser: Arc::new(RuleDiagnoser::new(config.rule_config())),
        target: Target::Remote(vec![route]),
        dry_run: None,
        strategies: None,
        config,
    }
}

/// Everything one test needs: the remote, the fake GitHub, and the pipeline between them.
struct World {
    root: tempfile::TempDir,
    remote: PathBuf,
    fake: FakeGithub,
    pipeline: Arc<Pipeline>,
}

impl World {
    async fn new(config: Config) -> World {
        World::with_forge(config, |forge| forge).await
    }

    /// A world whose forge is `wrap(github forge)`.
    async fn with_forge(
        config: Config,
        wrap: impl FnOnce(Arc<dyn Forge>) -> Arc<dyn Forge>,
    ) -> World {
        let root = tempfile::tempdir().unwrap();
        let remote = bare_remote(root.path());
        let (fake, forge) = github().await;
        let route = Route::new(
            mapping(remote.to_str().unwrap()),
            root.path().join("cache/gitops"),
            wrap(forge.clone()),
            GitAuth::Fixed(Credentials::None),
        );
        World {
            root,
            remote,
            fake,
            pipeline: Arc::new(pipeline(config, route)),
        }
    }

    async fn run(&self) -> RunReport {
        self.pipeline
            .run(&incident())
            .await
            .unwrap_or_else(|e| panic!("run: {e}"))
    }
}

/// One alert: one branch on the remote with one commit on `main`, `main` untouched, one pull
/// request with the labels, markers and sections a reviewer needs.
#[tokio::test]
async fn an_alert_gives_one_branch_one_commit_one_pull_request() {
    let world = World::new(Config::default()).await;
    let main_before = log(&world.remote, "main");
    let report = world.run().await;
    assert_eq!(report.action, Action::Pr, "{:?}", report.escalation_reason);
    let branch = report.branch.clone().unwrap();
    assert_eq!(
        report.remote.as_deref(),
        Some(world.remote.to_str().unwrap())
    );

    assert_eq!(
        log(&world.remote, "main"),
        main_before,
        "main never changes"
    );
    let commits = log(&world.remote, &branch);
    assert_eq!(commits.len(), main_before.len() + 1);
    let fix: Vec<&str> = commits[0].split(' ').collect();
    assert_eq!(Some(fix[0]), report.commit.as_deref());
    assert_eq!(
        fix[1],
        main_before[0].split(' ').next().unwrap(),
        "parent is main"
    );
    assert_eq!(fix[2], "autofix@localhost");
    let changed = git(&world.remote, &["diff", "--stat", "main", &branch]);
    assert!(changed.contains(FIX_FILE), "{changed}");
    assert!(
        changed.contains("1 insertion(+), 1 deletion(-)"),
        "{changed}"
    );

    let pulls = world.fake.pulls(OWNER, REPO);
    assert_eq!(pulls.len(), 1);
    let pr = &pulls[0];
    assert_eq!(
        (pr.head.as_str(), pr.base.as_str()),
        (branch.as_str(), "main")
    );
    assert_eq!(
        pr.title,
        "fix(catalog/redis-cache): raise the memory limit 1Gi -> 2Gi (OOMKilled)"
    );
    let risk = report.risk.as_ref().unwrap();
    let mut labels = pr.labels.clone();
    labels.sort();
    assert_eq!(
        labels,
        [
            "autofix".to_string(),
            "category/oom_killed".to_string(),
            format!("risk/{}", risk.level)
        ]
    );
    assert!(!pr.draft, "risk {} is below review_at", risk.score);
    let body = pr.body.as_deref().unwrap();
    for part in [
        "**What broke:** KubePodCrashLooping",
        "## Diagnosis",
        "### Events",
        "| Last seen | Type | Reason |",
        "```diff",
        "-              memory: 1Gi # maxmemory",
        "+              memory: 2Gi # maxmemory",
        "## Risk:",
        "| Blast radius |",
        "## Validation: passed",
        "## Rolling back",
        &format!("<!-- autofix:incident={} -->", report.incident),
        "<!-- autofix:fix=",
    ] {
        assert!(body.contains(part), "body lacks {part:?}:\n{body}");
    }
    assert!(
        !body.contains("Jx7wQ2nLr9VbK4tZ"),
        "the Redis password leaked"
    );
}

/// The same alert 200 times, 100 in a row and 100 at once: still one branch with one commit
/// and one pull request, updated rather than duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_alert_200_times_keeps_one_pull_request() {
    let world = World::new(Config::default()).await;
    let first = world.run().await;
    let branch = first.branch.clone().unwrap();
    for _ in 0..99 {
        let again = world.run().await;
        assert_eq!(again.commit, first.commit, "same fix, same commit");
        assert!(!again.pr.as_ref().unwrap().created);
    }
    let runs: Vec<_> = (0..100)
        .map(|_| {
            let pipeline = world.pipeline.clone();
            tokio::spawn(async move { pipeline.run(&incident()).await })
        })
        .collect();
    for run in runs {
        let report = run.await.unwrap().unwrap();
        assert_eq!(report.pr.as_ref().unwrap().number, 1);
    }
    let pulls = world.fake.pulls(OWNER, REPO);
    assert_eq!(pulls.len(), 1, "{pulls:#?}");
    assert_eq!(pulls[0].state, "open");
    assert_eq!(
        log(&world.remote, &branch).len(),
        log(&world.remote, "main").len() + 1
    );
}

/// A forge that, the first time the pipeline asks it anything after committing (between the
/// clone and the push), lets a human push a commit to `main` first.
struct MovesBase {
    inner: Arc<dyn Forge>,
    remote: PathBuf,
    work: PathBuf,
    from: &'static str,
    to: &'static str,
    file: &'static str,
    done: AtomicBool,
}

#[async_trait]
impl Forge for MovesBase {
    async fn open_or_update_pr(&self, pr: &PullRequest) -> Result<PrRecord, ForgeError> {
        self.inner.open_or_update_pr(pr).await
    }

    async fn escalate(&self, escalation: &Escalation) -> Result<EscalationRecord, ForgeError> {
        self.inner.escalate(escalation).await
    }

    async fn declined(&self, head: &str, base: &str) -> Result<Vec<DeclinedPr>, ForgeError> {
        if !self.done.swap(true, Ordering::SeqCst) {
            human_commit(
                &self.remote,
                &self.work,
                "main",
                self.file,
                self.from,
                self.to,
            );
        }
        self.inner.declined(head, base).await
    }
}

async fn base_moving_world(file: &'static str, from: &'static str, to: &'static str) -> World {
    let root = tempfile::tempdir().unwrap();
    let remote = bare_remote(root.path());
    let work = root.path().join("human");
    let (fake, forge) = github().await;
    let moves = Arc::new(MovesBase {
        inner: forge,
        remote: remote.clone(),
        work,
        from,
        to,
        file,
        done: AtomicBool::new(false),
    });
    let route = Route::new(
        mapping(remote.to_str().unwrap()),
        root.path().join("cache/gitops"),
        moves,
        GitAuth::Fixed(Credentials::None),
    );
    World {
        root,
        remote,
        fake,
        pipeline: Arc::new(pipeline(Config::default(), route)),
    }
}

/// `main` moves between the clone and the push (another file changes): the fix is rebuilt on
/// the new `main`, and the pull request holds both.
#[tokio::test]
async fn base_moved_between_clone_and_push_gives_a_pr_on_the_new_base() {
    let world = base_moving_world(
        "catalog/redis-cache-config.yaml",
        "maxmemory-policy allkeys-lru",
        "maxmemory-policy volatile-lru",
    )
    .await;
    let report = world.run().await;
    assert_eq!(report.action, Action::Pr, "{:?}", report.escalation_reason);
    let branch = report.branch.unwrap();
    let main_tip = log(&world.remote, "main")[0]
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let fix = log(&world.remote, &branch)[0].clone();
    assert_eq!(
        fix.split(' ').nth(1),
        Some(main_tip.as_str()),
        "fix sits on the moved main"
    );
    let changed = git(&world.remote, &["diff", "--name-only", "main", &branch]);
    assert_eq!(changed, FIX_FILE, "only the fix differs from the new main");
    let config = git(
        &world.remote,
        &["show", &format!("{branch}:catalog/redis-cache-config.yaml")],
    );
    assert!(
        config.contains("volatile-lru"),
        "the human's change is kept"
    );
    assert_eq!(world.fake.pulls(OWNER, REPO).len(), 1);
}

/// `main` changes the very line the fix edits before the push: nothing is overwritten; the
/// incident is escalated as an issue, and no branch or pull request appears.
#[tokio::test]
async fn conflicting_human_edit_escalates_instead_of_overwriting() {
    let world = base_moving_world(
        FIX_FILE,
        "memory: 1Gi # maxmemory is 900mb",
        "memory: 1536Mi # maxmemory is 900mb",
    )
    .await;
    let report = world.run().await;
    assert_eq!(report.action, Action::Escalate);
    let reason = report.escalation_reason.clone().unwrap();
    assert!(reason.contains(FIX_FILE), "{reason}");
    assert!(report.pr.is_none() && report.files_changed.is_empty());
    assert!(!branch_exists(
        &world.remote,
        &report.branch.clone().unwrap()
    ));
    assert!(world.fake.pulls(OWNER, REPO).is_empty());
    let issues = world.fake.issues(OWNER, REPO);
    assert_eq!(issues.len(), 1);
    assert!(
        issues[0]
            .body
            .as_deref()
            .unwrap()
            .contains("changed the lines")
    );
}

/// Once a human pushed to the bot's branch, the bot neither pushes there nor touches the pull
/// request again.
#[tokio::test]
async fn a_branch_a_human_pushed_to_is_left_alone() {
    let world = World::new(Config::default()).await;
    let first = world.run().await;
    let branch = first.branch.clone().unwrap();
    let work = world.root.path().join("human");
    human_commit(
        &world.remote,
        &work,
        &branch,
        "NOTES.md",
        "",
        "tuned by hand\n",
    );
    let human_tip = log(&world.remote, &branch)[0].clone();
    let updates = world.fake.pulls(OWNER, REPO)[0].updates;

    let again = world.run().await;
    assert!(again.pr.is_none());
    let note = again.note.unwrap();
    assert!(note.contains("human@example.com"), "{note}");
    assert_eq!(
        log(&world.remote, &branch)[0],
        human_tip,
        "branch untouched"
    );
    assert_eq!(
        world.fake.pulls(OWNER, REPO)[0].updates,
        updates,
        "PR untouched"
    );
}

/// A pull request closed without merging is remembered: the same fix is not proposed again.
#[tokio::test]
async fn a_declined_fix_is_not_proposed_again() {
    let world = World::new(Config::default()).await;
    let first = world.run().await;
    let number = first.pr.unwrap().number;
    world.fake.close_pull(OWNER, REPO, number);
    let again = world.run().await;
    assert!(again.pr.is_none());
    assert!(again.note.unwrap().contains(&format!("#{number}")));
    let pulls = world.fake.pulls(OWNER, REPO);
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].state, "closed");
}

/// GitHub answering the create with a secondary rate limit, then with a lost 500 after the pull
/// request was made: still exactly one pull request.
#[tokio::test]
async fn rate_limits_and_lost_answers_still_give_one_pull_request() {
    let world = World::new(Config::default()).await;
    let path = format!("/repos/{OWNER}/{REPO}/pulls");
    world
        .fake
        .inject(Fault::secondary_rate_limit("POST", &path, 1));
    let first = world.run().await;
    assert!(first.pr.unwrap().created);
    assert_eq!(world.fake.pulls(OWNER, REPO).len(), 1);

    let second = World::new(Config::default()).await;
    second
        .fake
        .inject(Fault::new("POST", &path, 500).after_handling());
    let report = second.run().await;
    assert_eq!(report.pr.unwrap().number, 1);
    assert_eq!(second.fake.pulls(OWNER, REPO).len(), 1);
}

/// A risky fix opens as a draft with reviewers asked; one at the block threshold is escalated.
#[tokio::test]
async fn risk_thresholds_make_drafts_and_escalations() {
    let mut config = Config::default();
    config.risk.review_at = 0.01;
    config.github.reviewers = vec!["alice".into()];
    config.github.team_reviewers = vec!["sre".into()];
    let world = World::new(config).await;
    world.run().await;
    let pr = world.fake.pulls(OWNER, REPO).remove(0);
    assert!(pr.draft);
    assert_eq!(pr.requested_reviewers, ["alice"]);
    assert_eq!(pr.requested_teams, ["sre"]);

    let mut config = Config::default();
    config.risk.review_at = 0.01;
    config.risk.block_at = 0.02;
    let world = World::new(config).await;
    let report = world.run().await;
    assert_eq!(report.action, Action::Escalate);
    assert!(
        report
            .escalation_reason
            .unwrap()
            .contains("block threshold")
    );
    assert!(world.fake.pulls(OWNER, REPO).is_empty());
    assert_eq!(world.fake.issues(OWNER, REPO).len(), 1);
    assert!(!branch_exists(
        &world.remote,
        &report.branch.unwrap_or_default()
    ));
}

/// Over git's smart HTTP with basic auth, the `[github]` token configured in a file is the git
/// password too (user `x-access-token`), and the whole job works from the config alone.
#[tokio::test]
async fn the_github_token_pushes_over_smart_http() {
    let root = tempfile::tempdir().unwrap();
    let served = root.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let remote = bare_remote(&served);
    let http = GitHttpServer::start(&served, "x-access-token", TOKEN)
        .await
        .unwrap();
    let (fake, _) = github().await;
    let token_file = root.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();

    let mut config = Config::default();
    config.github.api_url = fake.url().to_string();
    config.github.token_file = Some(token_file);
    config.gitops.repos = vec![mapping(&http.url_for("gitops.git"))];
    let target = Target::remote(&config, &root.path().join("cache")).unwrap();
    let pipeline = Pipeline {
        source: Arc::new(SnapshotSource::open(&scenario()).unwrap()),
        diagnoser: Arc::new(RuleDiagnoser::new(config.rule_config())),
        target,
        dry_run: None,
        strategies: None,
        config,
    };
    let report = pipeline.run(&incident()).await.unwrap();
    let branch = report.branch.clone().unwrap();
    assert!(branch_exists(&remote, &branch), "pushed over HTTP");
    assert_eq!(fake.pulls(OWNER, REPO).len(), 1);
    assert!(http.authorized_count() > 0);
}
