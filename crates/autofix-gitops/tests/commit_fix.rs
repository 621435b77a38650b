//! `commit_fix` and `read_base_file` against real repositories made in temporary directories.

use autofix_gitops::{
    Author, CommitOutcome, FixCommit, GitopsError, commit_fix, git_dir, read_base_file,
};
use git2::{Oid, Repository, RepositoryInitOptions, Signature, Sort, Status, StatusOptions};
use std::fs;
use std::path::Path;
use tempfile::TempDir;

const BRANCH: &str = "autofix/shop/cart-oom-killed-1a2b3c4d";
const DEPLOYMENT: &str = "apps/shop/cart/deployment.yaml";
const MESSAGE: &str = "fix(shop/cart): raise memory limit to 256Mi\n\nOOMKilled 4 times.\n\nAutofix-Incident: 1a2b3c4d\n";

/// A GitOps repository on `main` with a few committed files in nested directories.
struct Fixture {
    dir: TempDir,
    repo: Repository,
}

impl Fixture {
    fn new() -> Self {
        let dir = TempDir::new().expect("temp dir");
        let repo = Repository::init_opts(
            dir.path(),
            RepositoryInitOptions::new().initial_head("main"),
        )
        .expect("git init");
        let fixture = Fixture { dir, repo };
        fixture.commit_on_main(
            &[
                ("README.md", "# cluster config\n"),
                (DEPLOYMENT, "kind: Deployment\nmemory: 128Mi\n"),
                (
                    "apps/shop/cart/kustomization.yaml",
                    "resources: [deployment.yaml]\n",
                ),
                ("apps/shop/web/deployment.yaml", "kind: Deployment\n"),
            ],
            "initial",
        );
        fixture
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes files to the work tree, stages and commits them on the checked-out branch.
    fn commit_on_main(&self, files: &[(&str, &str)], message: &str) -> Oid {
        let mut index = self.repo.index().expect("index");
        for (path, content) in files {
            let full = self.path().join(path);
            fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
            fs::write(&full, content).expect("write");
            index.add_path(Path::new(path)).expect("stage");
        }
        index.write().expect("write index");
        let tree = self
            .repo
            .find_tree(index.write_tree().expect("tree"))
            .expect("find tree");
        let sig = Signature::now("Test", "test@example.com").expect("signature");
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<_> = parent.iter().collect();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .expect("commit")
    }

    fn main_tip(&self) -> Oid {
        self.repo.refname_to_id("refs/heads/main").expect("main")
    }

    fn fix(&self, files: &[(&str, &str)]) -> Result<CommitOutcome, GitopsError> {
        self.fix_on(BRANCH, files)
    }

    fn fix_on(&self, branch: &str, files: &[(&str, &str)]) -> Result<CommitOutcome, GitopsError> {
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect();
        commit_fix(
            self.path(),
            &FixCommit {
                branch,
                message: MESSAGE,
                files: &files,
                author: &Author::default(),
            },
        )
    }

    /// The content of a file at the tip of a branch.
    fn file_on(&self, branch: &str, path: &str) -> String {
        let commit = self
            .repo
            .find_branch(branch, git2::BranchType::Local)
            .expect("branch")
            .get()
            .peel_to_commit()
            .expect("commit");
        let entry = commit
            .tree()
            .expect("tree")
            .get_path(Path::new(path))
            .expect("entry");
        let blob = self.repo.find_blob(entry.id()).expect("blob");
        String::from_utf8(blob.content().to_vec()).expect("utf8")
    }

    /// Commits reachable from the branch but not from main.
    fn commits_on_top_of_main(&self, branch: &str) -> Vec<Oid> {
        let mut walk = self.repo.revwalk().expect("revwalk");
        walk.set_sorting(Sort::TOPOLOGICAL).expect("sorting");
        walk.push_ref(&format!("refs/heads/{branch}"))
            .expect("push");
        walk.hide_ref("refs/heads/main").expect("hide");
        walk.collect::<Result<_, _>>().expect("walk")
    }

    fn assert_untouched(&self, head_before: Oid) {
        let head = self.repo.find_reference("HEAD").expect("HEAD");
        assert_eq!(
            head.symbolic_target().expect("utf8"),
            Some("refs/heads/main")
        );
        assert_eq!(self.main_tip(), head_before);
        let mut options = StatusOptions::new();
        options.include_untracked(true).include_ignored(false);
        let statuses = self.repo.statuses(Some(&mut options)).expect("status");
        let dirty: Vec<_> = statuses
            .iter()
            .filter(|s| s.status() != Status::CURRENT)
            .map(|s| (s.path().map(str::to_string), s.status()))
            .collect();
        assert!(dirty.is_empty(), "work tree or index changed: {dirty:?}");
    }
}

const RAISED: &str = "kind: Deployment\nmemory: 256Mi\n";

#[test]
fn commits_exactly_one_commit_on_top_of_base() {
    let fx = Fixture::new();
    let base = fx.main_tip();
    let outcome = fx.fix(&[(DEPLOYMENT, RAISED)]).expect("commit");
    assert!(outcome.created);
    assert_eq!(outcome.branch, BRANCH);
    assert_eq!(outcome.base_branch, "main");
    assert_eq!(outcome.files_changed, [DEPLOYMENT]);

    let commits = fx.commits_on_top_of_main(BRANCH);
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0].to_string(), outcome.commit);
    let commit = fx.repo.find_commit(commits[0]).expect("commit");
    assert_eq!(commit.parent_ids().collect::<Vec<_>>(), [base]);
    assert_eq!(commit.message().ok(), Some(MESSAGE));
    assert_eq!(commit.author().name().ok(), Some("kube-autofix"));
    assert_eq!(commit.author().email().ok(), Some("autofix@localhost"));
    assert_eq!(fx.file_on(BRANCH, DEPLOYMENT), RAISED);
    assert_eq!(
        fx.file_on(BRANCH, "apps/shop/web/deployment.yaml"),
        "kind: Deployment\n",
        "files off the changed paths are kept"
    );
}

#[test]
fn leaves_work_tree_index_and_head_untouched() {
    let fx = Fixture::new();
    let base = fx.main_tip();
    fx.fix(&[
        (DEPLOYMENT, RAISED),
        ("apps/shop/cart/pdb.yaml", "kind: PDB\n"),
    ])
    .expect("commit");
    fx.assert_untouched(base);
    assert_eq!(
        fs::read_to_string(fx.path().join(DEPLOYMENT)).expect("read"),
        "kind: Deployment\nmemory: 128Mi\n"
    );
    assert!(!fx.path().join("apps/shop/cart/pdb.yaml").exists());
}

#[test]
fn running_twice_answers_the_same_commit() {
    let fx = Fixture::new();
    let first = fx.fix(&[(DEPLOYMENT, RAISED)]).expect("first");
    let second = fx.fix(&[(DEPLOYMENT, RAISED)]).expect("second");
    assert!(!second.created);
    assert_eq!(second.commit, first.commit);
    assert_eq!(second.files_changed, [DEPLOYMENT]);
    assert_eq!(fx.commits_on_top_of_main(BRANCH).len(), 1);
}

#[test]
fn different_content_recreates_the_single_commit() {
    let fx = Fixture::new();
    let base = fx.main_tip();
    let first = fx.fix(&[(DEPLOYMENT, RAISED)]).expect("first");
    let bigger = "kind: Deployment\nmemory: 512Mi\n";
    let second = fx.fix(&[(DEPLOYMENT, bigger)]).expect("second");
    assert!(second.created);
    assert_ne!(second.commit, first.commit);
    let commits = fx.commits_on_top_of_main(BRANCH);
    assert_eq!(commits.len(), 1);
    let commit = fx.repo.find_commit(commits[0]).expect("commit");
    assert_eq!(commit.parent_ids().collect::<Vec<_>>(), [base]);
    assert_eq!(fx.file_on(BRANCH, DEPLOYMENT), bigger);
    fx.assert_untouched(base);
}

#[test]
fn moved_base_rebases_the_fix_onto_the_new_tip() {
    let fx = Fixture::new();
    let first = fx.fix(&[(DEPLOYMENT, RAISED)]).expect("first");
    let new_base = fx.commit_on_main(&[("README.md", "# cluster config, v2\n")], "docs");
    let second = fx.fix(&[(DEPLOYMENT, RAISED)]).expect("second");
    assert!(second.created);
    assert_ne!(second.commit, first.commit);
    let commits = fx.commits_on_top_of_main(BRANCH);
    assert_eq!(commits.len(), 1);
    let commit = fx.repo.find_commit(commits[0]).expect("commit");
    assert_eq!(commit.parent_ids().collect::<Vec<_>>(), [new_base]);
    assert_eq!(fx.file_on(BRANCH, "README.md"), "# cluster config, v2\n");
    assert_eq!(fx.file_on(BRANCH, DEPLOYMENT), RAISED);
}

#[test]
fn nested_new_file_in_a_new_directory() {
    let fx = Fixture::new();
    let path = "apps/payments/api/overlays/prod/patch.yaml";
    let outcome = fx
        .fix(&[(path, "kind: Patch\n"), (DEPLOYMENT, RAISED)])
        .expect("commit");
    assert_eq!(outcome.files_changed, [path, DEPLOYMENT]);
    assert_eq!(fx.file_on(BRANCH, path), "kind: Patch\n");
    assert_eq!(fx.file_on(BRANCH, DEPLOYMENT), RAISED);
    let tree = fx
        .repo
        .find_commit(fx.commits_on_top_of_main(BRANCH)[0])
        .expect("commit")
        .tree()
        .expect("tree");
    let entry = tree.get_path(Path::new(path)).expect("entry");
    assert_eq!(entry.filemode(), 0o100644);
}

#[cfg(unix)]
#[test]
fn existing_file_modes_are_kept() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    let script = "scripts/check.sh";
    let full = fx.path().join(script);
    fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
    fs::write(&full, "#!/bin/sh\n").expect("write");
    fs::set_permissions(&full, fs::Permissions::from_mode(0o755)).expect("chmod");
    fx.commit_on_main(&[(script, "#!/bin/sh\n")], "add script");

    fx.fix(&[(script, "#!/bin/sh\nexit 0\n")]).expect("fix");
    let tree = fx
        .repo
        .find_commit(fx.commits_on_top_of_main(BRANCH)[0])
        .expect("commit")
        .tree()
        .expect("tree");
    assert_eq!(
        tree.get_path(Path::new(script)).expect("entry").filemode(),
        0o100755
    );
    assert_eq!(
        tree.get_path(Path::new(DEPLOYMENT))
            .expect("entry")
            .filemode(),
        0o100644
    );
}

#[test]
fn unchanged_files_are_not_counted() {
    let fx = Fixture::new();
    let outcome = fx
        .fix(&[("README.md", "# cluster config\n"), (DEPLOYMENT, RAISED)])
        .expect("commit");
    assert_eq!(outcome.files_changed, [DEPLOYMENT]);
}

#[test]
fn nothing_to_commit_when_every_file_matches_the_base() {
    let fx = Fixture::new();
    let err = fx
        .fix(&[("README.md", "# cluster config\n")])
        .expect_err("nothing changes");
    assert!(matches!(err, GitopsError::NothingToCommit { .. }), "{err}");
    assert!(
        fx.repo
            .find_reference(&format!("refs/heads/{BRANCH}"))
            .is_err()
    );
}

#[test]
fn detached_head_is_refused() {
    let fx = Fixture::new();
    fx.repo.set_head_detached(fx.main_tip()).expect("detach");
    let err = fx.fix(&[(DEPLOYMENT, RAISED)]).expect_err("detached");
    assert!(matches!(err, GitopsError::DetachedHead { .. }), "{err}");
    assert!(
        err.to_string().contains(&fx.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn unborn_head_is_refused() {
    let dir = TempDir::new().expect("temp dir");
    Repository::init_opts(
        dir.path(),
        RepositoryInitOptions::new().initial_head("main"),
    )
    .expect("git init");
    let files = [(DEPLOYMENT.to_string(), RAISED.to_string())];
    let fix = FixCommit {
        branch: BRANCH,
        message: MESSAGE,
        files: &files,
        author: &Author::default(),
    };
    let err = commit_fix(dir.path(), &fix).expect_err("unborn");
    assert!(
        matches!(err, GitopsError::UnbornBranch { ref branch, .. } if branch == "main"),
        "{err}"
    );
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn not_a_repository_is_refused() {
    let dir = TempDir::new().expect("temp dir");
    let err = read_base_file(dir.path(), "README.md").expect_err("no repo");
    assert!(matches!(err, GitopsError::Open { .. }), "{err}");
}

#[test]
fn invalid_branch_names_are_refused() {
    let fx = Fixture::new();
    for bad in [
        "",
        "bad..name",
        "has space",
        "ends/",
        "x.lock",
        "a~1",
        "-f",
        "HEAD",
        "main",
    ] {
        let err = fx.fix_on(bad, &[(DEPLOYMENT, RAISED)]).expect_err(bad);
        assert!(
            matches!(err, GitopsError::InvalidBranch { .. }),
            "{bad:?}: {err}"
        );
    }
    assert_eq!(
        fx.file_on("main", DEPLOYMENT),
        "kind: Deployment\nmemory: 128Mi\n"
    );
}

#[test]
fn paths_leaving_the_repository_are_refused() {
    let fx = Fixture::new();
    for bad in [
        "../outside.yaml",
        "/etc/passwd",
        "apps/../../x",
        ".git/config",
        "apps//x",
    ] {
        let err = fx.fix(&[(bad, "x")]).expect_err(bad);
        assert!(
            matches!(err, GitopsError::InvalidPath { .. }),
            "{bad:?}: {err}"
        );
    }
    assert!(
        !fx.path()
            .parent()
            .expect("parent")
            .join("outside.yaml")
            .exists()
    );
}

#[test]
fn conflicting_paths_are_refused() {
    let fx = Fixture::new();
    let err = fx
        .fix(&[("apps/shop", "x")])
        .expect_err("directory at base");
    assert!(
        matches!(
            err,
            GitopsError::NotAFile {
                found: "a directory",
                ..
            }
        ),
        "{err}"
    );
    let err = fx
        .fix(&[("README.md/inner", "x")])
        .expect_err("file at base");
    assert!(
        matches!(err, GitopsError::NotADirectory { ref path } if path == "README.md"),
        "{err}"
    );
    let err = fx
        .fix(&[(DEPLOYMENT, "a"), (DEPLOYMENT, "b")])
        .expect_err("twice");
    assert!(matches!(err, GitopsError::DuplicatePath { .. }), "{err}");
    let err = fx
        .fix(&[("new/x", "a"), ("new/x/y", "b")])
        .expect_err("file and dir");
    assert!(matches!(err, GitopsError::DuplicatePath { .. }), "{err}");
}

#[test]
fn read_base_file_reads_the_base_tip_not_the_work_tree() {
    let fx = Fixture::new();
    fs::write(fx.path().join(DEPLOYMENT), "uncommitted edit\n").expect("write");
    assert_eq!(
        read_base_file(fx.path(), DEPLOYMENT)
            .expect("read")
            .as_deref(),
        Some("kind: Deployment\nmemory: 128Mi\n")
    );
    assert_eq!(
        read_base_file(fx.path(), "apps/missing.yaml").expect("read"),
        None
    );
    assert_eq!(
        read_base_file(fx.path(), "README.md/inner").expect("read"),
        None
    );
    let err = read_base_file(fx.path(), "apps/shop").expect_err("directory");
    assert!(matches!(err, GitopsError::NotAFile { .. }), "{err}");
    let err = read_base_file(fx.path(), "../x").expect_err("traversal");
    assert!(matches!(err, GitopsError::InvalidPath { .. }), "{err}");
}

#[test]
fn linked_worktrees_use_their_own_head_and_the_shared_git_dir() {
    let fx = Fixture::new();
    let outer = TempDir::new().expect("temp dir");
    let wt_path = outer.path().join("wt");
    fx.repo.worktree("wt", &wt_path, None).expect("worktree");
    let outcome = commit_fix(
        &wt_path,
        &FixCommit {
            branch: BRANCH,
            message: MESSAGE,
            files: &[(DEPLOYMENT.to_string(), RAISED.to_string())],
            author: &Author::default(),
        },
    )
    .expect("commit from worktree");
    assert_eq!(outcome.base_branch, "wt");
    assert_eq!(fx.file_on(BRANCH, DEPLOYMENT), RAISED);
    assert_eq!(
        git_dir(&wt_path)
            .expect("git dir")
            .canonicalize()
            .expect("canonical"),
        fx.path().join(".git").canonicalize().expect("canonical")
    );
}

#[test]
fn git_dir_is_the_repositorys_git_directory() {
    let fx = Fixture::new();
    let found = git_dir(fx.path()).expect("git dir");
    assert_eq!(
        found.canonicalize().expect("canonical"),
        fx.path().join(".git").canonicalize().expect("canonical")
    );
}

/// A process killed while updating the branch ref leaves `<ref>.lock` behind; the next commit
/// must not fail on it forever.
#[test]
fn a_lock_left_by_a_killed_process_does_not_block_the_branch() {
    let f = Fixture::new();
    f.fix(&[(DEPLOYMENT, "kind: Deployment\nmemory: 256Mi\n")])
        .expect("first fix");
    let lock = f
        .path()
        .join(".git/refs/heads")
        .join(format!("{BRANCH}.lock"));
    fs::write(&lock, "0000000000000000000000000000000000000000\n").expect("plant lock");
    let outcome = f
        .fix(&[(DEPLOYMENT, "kind: Deployment\nmemory: 512Mi\n")])
        .expect("the stale lock is cleared");
    assert!(outcome.created);
    assert!(!lock.exists());
    assert_eq!(
        f.file_on(BRANCH, DEPLOYMENT),
        "kind: Deployment\nmemory: 512Mi\n"
    );
}
