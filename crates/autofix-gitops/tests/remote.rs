//! `Mirror::sync` and `Mirror::push_fix` against real bare repositories on disk, reached by path
//! and over HTTP through `git http-backend`; "someone else" works with the `git` CLI.

use autofix_gitops::{
    Author, CommitOutcome, Credentials, FixCommit, GitopsError, Mirror, PushOutcome, RemoteSpec,
    commit_fix,
};
use autofix_testkit::GitHttpServer;
use git2::{Oid, Repository};
use secrecy::SecretString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

const BASE: &str = "main";
const BRANCH: &str = "autofix/shop/cart-oom-killed-1a2b3c4d";
const DEPLOYMENT: &str = "apps/shop/cart/deployment.yaml";
const MESSAGE: &str = "fix(shop/cart): raise memory limit\n\nAutofix-Incident: 1a2b3c4d\n";
/// Replicas at the top and the memory limit at the bottom, far enough apart that changing one
/// does not conflict with changing the other.
const INITIAL: &str = "kind: Deployment\nreplicas: 2\nname: cart\nimage: cart:1.0\nport: 8080\nprobe: /healthz\nlabel: shop\nmemory: 128Mi\n";
const TOKEN: &str = "ghs_s3cr3t-token";

fn bot() -> Author {
    Author {
        name: "kube-autofix".to_string(),
        email: "autofix@example.com".to_string(),
    }
}

fn memory(limit: &str) -> String {
    INITIAL.replace("memory: 128Mi", &format!("memory: {limit}"))
}

/// Runs the `git` CLI in `dir` as `name <email>`, panicking with its stderr on failure.
fn git(dir: &Path, who: (&str, &str), args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", who.0)
        .env("GIT_AUTHOR_EMAIL", who.1)
        .env("GIT_COMMITTER_NAME", who.0)
        .env("GIT_COMMITTER_EMAIL", who.1)
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const JANE: (&str, &str) = ("Jane Doe", "jane@example.com");

/// A bare GitOps repository `remote/gitops.git` with `main` holding the deployment, and a
/// mirror dir next to it.
struct World {
    dir: TempDir,
}

impl World {
    fn new() -> Self {
        let world = World {
            dir: TempDir::new().expect("temp dir"),
        };
        fs::create_dir_all(world.root()).expect("mkdir");
        git(
            world.dir.path(),
            JANE,
            &[
                "init",
                "-q",
                "--bare",
                "-b",
                BASE,
                world.bare().to_str().expect("utf-8"),
            ],
        );
        world.someone_commits(
            BASE,
            &[(DEPLOYMENT, INITIAL), ("README.md", "# cluster\n")],
            "initial",
        );
        world
    }

    /// The dir served over HTTP.
    fn root(&self) -> PathBuf {
        self.dir.path().join("remote")
    }

    fn bare(&self) -> PathBuf {
        self.root().join("gitops.git")
    }

    fn url(&self) -> String {
        self.bare().to_str().expect("utf-8").to_string()
    }

    fn spec(&self) -> RemoteSpec {
        RemoteSpec {
            url: self.url(),
            base: BASE.to_string(),
        }
    }

    fn mirror_dir(&self) -> PathBuf {
        self.dir.path().join("data/mirror")
    }

    fn sync(&self) -> Mirror {
        Mirror::sync(&self.mirror_dir(), &self.spec(), &Credentials::None).expect("sync")
    }

    /// Jane commits `files` on `branch` of the remote from her own clone and pushes.
    fn someone_commits(&self, branch: &str, files: &[(&str, &str)], message: &str) -> Oid {
        let scratch = TempDir::new().expect("temp dir");
        let clone = scratch.path().join("clone");
        git(scratch.path(), JANE, &["clone", "-q", &self.url(), "clone"]);
        if self.remote_tip(branch).is_some() {
            git(
                &clone,
                JANE,
                &["checkout", "-q", "-B", branch, &format!("origin/{branch}")],
            );
        } else {
            git(&clone, JANE, &["checkout", "-q", "-B", branch]);
        }
        for (path, content) in files {
            let full = clone.join(path);
            fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
            fs::write(full, content).expect("write");
        }
        git(&clone, JANE, &["add", "-A"]);
        git(&clone, JANE, &["commit", "-q", "-m", message]);
        git(
            &clone,
            JANE,
            &["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")],
        );
        self.remote_tip(branch).expect("pushed")
    }

    fn remote_tip(&self, branch: &str) -> Option<Oid> {
        let repo = Repository::open_bare(self.bare()).expect("open bare");
        repo.refname_to_id(&format!("refs/heads/{branch}")).ok()
    }

    fn remote_file(&self, branch: &str, path: &str) -> String {
        let repo = Repository::open_bare(self.bare()).expect("open bare");
        let tip = repo
            .find_reference(&format!("refs/heads/{branch}"))
            .and_then(|r| r.peel_to_tree())
            .expect("branch tree");
        let entry = tip.get_path(Path::new(path)).expect("file");
        let blob = repo.find_blob(entry.id()).expect("blob");
        String::from_utf8(blob.content().to_vec()).expect("utf-8")
    }

    /// The remote branch's parents.
    fn remote_parents(&self, branch: &str) -> Vec<Oid> {
        let repo = Repository::open_bare(self.bare()).expect("open bare");
        let commit = repo
            .find_commit(self.remote_tip(branch).expect("branch"))
            .expect("commit");
        commit.parent_ids().collect()
    }
}

/// Commits `content` for the deployment on the fix branch of the mirror, as the bot.
fn fix(mirror: &Mirror, content: &str) -> CommitOutcome {
    let files = [(DEPLOYMENT.to_string(), content.to_string())];
    commit_fix(
        mirror.work_tree(),
        &FixCommit {
            branch: BRANCH,
            message: MESSAGE,
            files: &files,
            author: &bot(),
        },
    )
    .expect("commit fix")
}

fn push(mirror: &Mirror) -> Result<PushOutcome, GitopsError> {
    mirror.push_fix(BRANCH, &bot(), &Credentials::None)
}

fn oid(hex: &str) -> Oid {
    Oid::from_str(hex).expect("oid")
}

#[test]
fn sync_clones_once_then_fetches_and_resets_the_work_tree() {
    let world = World::new();
    let mirror = world.sync();
    let work_tree = mirror.work_tree().to_path_buf();
    assert_eq!(
        fs::read_to_string(work_tree.join(DEPLOYMENT)).expect("read"),
        INITIAL
    );
    assert_eq!(
        oid(&mirror.base_commit().expect("base")),
        world.remote_tip(BASE).expect("main")
    );

    let marker = work_tree.join(".git/autofix-marker");
    fs::write(&marker, "kept unless re-cloned").expect("marker");
    fs::write(work_tree.join(DEPLOYMENT), "scribbled\n").expect("modify");
    fs::write(work_tree.join("stray.txt"), "untracked\n").expect("untracked");
    let moved = world.someone_commits(BASE, &[("README.md", "# cluster v2\n")], "docs");

    let mirror = world.sync();
    assert_eq!(oid(&mirror.base_commit().expect("base")), moved);
    assert!(marker.exists(), "the mirror was cloned again");
    assert_eq!(
        fs::read_to_string(work_tree.join("README.md")).expect("read"),
        "# cluster v2\n"
    );
    assert_eq!(
        fs::read_to_string(work_tree.join(DEPLOYMENT)).expect("read"),
        INITIAL
    );
    assert!(!work_tree.join("stray.txt").exists(), "untracked file left");
    let repo = Repository::open(&work_tree).expect("open");
    assert_eq!(repo.head().expect("head").name(), Ok("refs/heads/main"));
    assert_eq!(repo.head().expect("head").target(), Some(moved));
    assert!(
        repo.statuses(None).expect("status").is_empty(),
        "work tree differs from base"
    );
}

#[test]
fn sync_clones_again_when_the_dir_holds_another_url() {
    let first = World::new();
    let second = World::new();
    second.someone_commits(BASE, &[("README.md", "# second\n")], "second");
    let dir = first.mirror_dir();
    fs::create_dir_all(dir.join("half-written")).expect("leftover");
    Mirror::sync(&dir, &first.spec(), &Credentials::None).expect("sync over a leftover dir");
    assert!(!dir.join("half-written").exists(), "leftover dir kept");
    let mirror = Mirror::sync(&dir, &second.spec(), &Credentials::None).expect("second sync");
    assert_eq!(
        fs::read_to_string(dir.join("README.md")).expect("read"),
        "# second\n"
    );
    assert_eq!(
        oid(&mirror.base_commit().expect("base")),
        second.remote_tip(BASE).expect("main")
    );
    let repo = Repository::open(&dir).expect("open");
    assert_eq!(
        repo.find_remote("origin").expect("origin").url(),
        Ok(second.url().as_str())
    );
    assert_eq!(mirror.spec(), &second.spec());
}

#[test]
fn sync_fails_clearly_when_the_base_is_missing() {
    let world = World::new();
    let spec = RemoteSpec {
        url: world.url(),
        base: "production".to_string(),
    };
    let err = Mirror::sync(&world.mirror_dir(), &spec, &Credentials::None).expect_err("no base");
    assert!(
        matches!(&err, GitopsError::BaseMissing { base, .. } if base == "production"),
        "{err:?}"
    );
    assert!(err.to_string().contains("production"), "{err}");
}

#[test]
fn push_publishes_one_commit_on_the_base_then_is_up_to_date() {
    let world = World::new();
    let base = world.remote_tip(BASE).expect("main");
    let mirror = world.sync();
    let committed = fix(&mirror, &memory("256Mi"));

    let outcome = push(&mirror).expect("push");
    assert_eq!(
        outcome,
        PushOutcome::Pushed {
            commit: committed.commit.clone(),
            base_commit: base.to_string(),
            rebased: false,
        }
    );
    assert_eq!(world.remote_tip(BRANCH), Some(oid(&committed.commit)));
    assert_eq!(world.remote_parents(BRANCH), [base]);
    assert_eq!(world.remote_file(BRANCH, DEPLOYMENT), memory("256Mi"));
    assert_eq!(world.remote_tip(BASE), Some(base), "base touched");

    assert_eq!(
        push(&mirror).expect("push again"),
        PushOutcome::UpToDate {
            commit: committed.commit
        }
    );
}

#[test]
fn push_rebuilds_the_fix_on_a_moved_base() {
    let world = World::new();
    let mirror = world.sync();
    let committed = fix(&mirror, &memory("256Mi"));
    let moved = world.someone_commits(
        BASE,
        &[(DEPLOYMENT, &INITIAL.replace("replicas: 2", "replicas: 3"))],
        "scale up",
    );

    let PushOutcome::Pushed {
        commit,
        base_commit,
        rebased: true,
    } = push(&mirror).expect("push")
    else {
        panic!("expected a rebased push");
    };
    assert_ne!(commit, committed.commit);
    assert_eq!(oid(&base_commit), moved);
    assert_eq!(world.remote_tip(BRANCH), Some(oid(&commit)));
    assert_eq!(world.remote_parents(BRANCH), [moved]);
    assert_eq!(
        world.remote_file(BRANCH, DEPLOYMENT),
        memory("256Mi").replace("replicas: 2", "replicas: 3")
    );
    let repo = Repository::open(mirror.work_tree()).expect("open");
    assert_eq!(
        repo.refname_to_id(&format!("refs/heads/{BRANCH}"))
            .expect("local branch"),
        oid(&commit)
    );
    let pushed = repo.find_commit(oid(&commit)).expect("commit");
    assert_eq!(pushed.message(), Ok(MESSAGE));
    assert_eq!(pushed.committer().email(), Ok("autofix@example.com"));
    assert_eq!(
        push(&mirror).expect("again"),
        PushOutcome::UpToDate { commit }
    );
}

#[test]
fn push_reports_a_conflict_when_the_base_changed_the_same_lines() {
    let world = World::new();
    let mirror = world.sync();
    fix(&mirror, &memory("256Mi"));
    let moved = world.someone_commits(BASE, &[(DEPLOYMENT, &memory("512Mi"))], "by hand");

    assert_eq!(
        push(&mirror).expect("push"),
        PushOutcome::Conflict {
            base_commit: moved.to_string(),
            files: vec![DEPLOYMENT.to_string()],
        }
    );
    assert_eq!(world.remote_tip(BRANCH), None, "something was pushed");
}

#[test]
fn push_answers_already_on_base_when_the_base_has_the_fix() {
    let world = World::new();
    let mirror = world.sync();
    fix(&mirror, &memory("256Mi"));
    let moved = world.someone_commits(BASE, &[(DEPLOYMENT, &memory("256Mi"))], "same fix by hand");
    assert_eq!(
        push(&mirror).expect("push"),
        PushOutcome::AlreadyOnBase {
            base_commit: moved.to_string()
        }
    );
    assert_eq!(world.remote_tip(BRANCH), None);
}

#[test]
fn push_leaves_a_branch_a_human_committed_on_alone() {
    let world = World::new();
    let mirror = world.sync();
    fix(&mirror, &memory("256Mi"));
    push(&mirror).expect("first push");
    let human = world.someone_commits(BRANCH, &[("NOTES.md", "tuned by Jane\n")], "notes");

    fix(&mirror, &memory("384Mi"));
    assert_eq!(
        push(&mirror).expect("push"),
        PushOutcome::HumanEdited {
            remote_commit: human.to_string(),
            author: "Jane Doe <jane@example.com>".to_string(),
        }
    );
    assert_eq!(
        world.remote_tip(BRANCH),
        Some(human),
        "the human's branch was overwritten"
    );
    assert_eq!(world.remote_file(BRANCH, DEPLOYMENT), memory("256Mi"));
}

#[test]
fn push_force_updates_the_bots_own_older_fix() {
    let world = World::new();
    let base = world.remote_tip(BASE).expect("main");
    let mirror = world.sync();
    let first = fix(&mirror, &memory("256Mi"));
    push(&mirror).expect("first push");
    let second = fix(&mirror, &memory("512Mi"));
    assert_ne!(first.commit, second.commit);

    assert_eq!(
        push(&mirror).expect("second push"),
        PushOutcome::Pushed {
            commit: second.commit.clone(),
            base_commit: base.to_string(),
            rebased: false,
        }
    );
    assert_eq!(world.remote_tip(BRANCH), Some(oid(&second.commit)));
    assert_eq!(world.remote_parents(BRANCH), [base]);
    assert_eq!(world.remote_file(BRANCH, DEPLOYMENT), memory("512Mi"));
}

#[test]
fn push_refuses_the_base_branch_and_invalid_names() {
    let world = World::new();
    let mirror = world.sync();
    for branch in [BASE, "bad..name", "-x"] {
        let err = mirror
            .push_fix(branch, &bot(), &Credentials::None)
            .expect_err("refused");
        assert!(
            matches!(err, GitopsError::InvalidBranch { .. }),
            "{branch}: {err:?}"
        );
    }
    assert_eq!(
        world.remote_tip(BASE),
        Some(oid(&mirror.base_commit().expect("base")))
    );
}

fn token(token: &str) -> Credentials {
    Credentials::Token {
        username: "x-access-token".to_string(),
        token: SecretString::from(token),
    }
}

/// Runs blocking git2 work off the runtime's workers, so the HTTP server keeps serving.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("blocking task")
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_and_push_over_https_style_token_auth() {
    let world = World::new();
    let server = GitHttpServer::start(&world.root(), "x-access-token", TOKEN)
        .await
        .expect("server");
    let spec = RemoteSpec {
        url: server.url_for("gitops.git"),
        base: BASE.to_string(),
    };
    let dir = world.mirror_dir();
    let outcome = blocking(move || {
        let mirror = Mirror::sync(&dir, &spec, &token(TOKEN)).expect("sync");
        let committed = fix(&mirror, &memory("256Mi"));
        let outcome = mirror
            .push_fix(BRANCH, &bot(), &token(TOKEN))
            .expect("push");
        (committed, outcome)
    })
    .await;
    let (committed, outcome) = outcome;
    assert!(
        matches!(outcome, PushOutcome::Pushed { rebased: false, .. }),
        "{outcome:?}"
    );
    assert_eq!(world.remote_tip(BRANCH), Some(oid(&committed.commit)));
    assert!(server.authorized_count() > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_token_fails_fast_without_looping() {
    let world = World::new();
    let server = GitHttpServer::start(&world.root(), "x-access-token", TOKEN)
        .await
        .expect("server");
    let spec = RemoteSpec {
        url: server.url_for("gitops.git"),
        base: BASE.to_string(),
    };
    let dir = world.mirror_dir();
    let err = blocking(move || {
        Mirror::sync(&dir, &spec, &token("ghs_wrong-token")).expect_err("auth fails")
    })
    .await;
    assert!(
        matches!(&err, GitopsError::Auth { url, .. } if url.ends_with("/gitops.git")),
        "{err:?}"
    );
    let shown = format!("{err} {err:?} {:?}", std::error::Error::source(&err));
    assert!(!shown.contains("wrong-token"), "{shown}");
    assert_eq!(server.authorized_count(), 0);
    assert!(
        (1..=3).contains(&server.unauthorized_count()),
        "401s: {}",
        server.unauthorized_count()
    );

    let spec = RemoteSpec {
        url: server.url_for("gitops.git"),
        base: BASE.to_string(),
    };
    let dir = world.mirror_dir();
    let err =
        blocking(move || Mirror::sync(&dir, &spec, &Credentials::None).expect_err("no creds"))
            .await;
    assert!(matches!(err, GitopsError::Auth { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ref_rejected_by_the_remote_is_an_error() {
    let world = World::new();
    pre_receive(
        &world,
        "echo 'branch protection: no bot branches' >&2\nexit 1\n",
    );
    let server = GitHttpServer::start(&world.root(), "x-access-token", TOKEN)
        .await
        .expect("server");
    let spec = RemoteSpec {
        url: server.url_for("gitops.git"),
        base: BASE.to_string(),
    };
    let dir = world.mirror_dir();
    let err = blocking(move || {
        let mirror = Mirror::sync(&dir, &spec, &token(TOKEN)).expect("sync");
        fix(&mirror, &memory("256Mi"));
        mirror
            .push_fix(BRANCH, &bot(), &token(TOKEN))
            .expect_err("rejected")
    })
    .await;
    let GitopsError::PushRejected {
        branch, message, ..
    } = &err
    else {
        panic!("expected PushRejected, got {err:?}");
    };
    assert_eq!(branch, BRANCH);
    assert!(message.contains("declined"), "{message}");
    assert_eq!(world.remote_tip(BRANCH), None);
}

/// Installs a `pre-receive` hook running `script` in the bare repository.
fn pre_receive(world: &World, script: &str) {
    let hook = world.bare().join("hooks/pre-receive");
    fs::write(&hook, format!("#!/bin/sh\n{script}")).expect("hook");
    let status = Command::new("chmod")
        .arg("+x")
        .arg(&hook)
        .status()
        .expect("chmod");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_rejected_once_is_retried_from_a_new_fetch() {
    let world = World::new();
    let flag = world.dir.path().join("rejected-once");
    pre_receive(
        &world,
        &format!(
            "[ -e '{0}' ] && exit 0\ntouch '{0}'\necho 'try again' >&2\nexit 1\n",
            flag.display()
        ),
    );
    let server = GitHttpServer::start(&world.root(), "x-access-token", TOKEN)
        .await
        .expect("server");
    let spec = RemoteSpec {
        url: server.url_for("gitops.git"),
        base: BASE.to_string(),
    };
    let dir = world.mirror_dir();
    let (committed, outcome) = blocking(move || {
        let mirror = Mirror::sync(&dir, &spec, &token(TOKEN)).expect("sync");
        let committed = fix(&mirror, &memory("256Mi"));
        (committed, mirror.push_fix(BRANCH, &bot(), &token(TOKEN)))
    })
    .await;
    assert!(flag.exists(), "the hook never rejected");
    assert!(
        matches!(outcome, Ok(PushOutcome::Pushed { .. })),
        "{outcome:?}"
    );
    assert_eq!(world.remote_tip(BRANCH), Some(oid(&committed.commit)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_with_a_wrong_token_is_an_auth_error() {
    let world = World::new();
    let server = GitHttpServer::start(&world.root(), "x-access-token", TOKEN)
        .await
        .expect("server");
    let spec = RemoteSpec {
        url: server.url_for("gitops.git"),
        base: BASE.to_string(),
    };
    let dir = world.mirror_dir();
    let err = blocking(move || {
        let mirror = Mirror::sync(&dir, &spec, &token(TOKEN)).expect("sync");
        fix(&mirror, &memory("256Mi"));
        mirror
            .push_fix(BRANCH, &bot(), &token("ghs_revoked"))
            .expect_err("auth fails")
    })
    .await;
    assert!(matches!(err, GitopsError::Auth { .. }), "{err:?}");
    assert_eq!(world.remote_tip(BRANCH), None);
}
