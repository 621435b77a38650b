//! The local forge against a temporary directory.

use autofix_forge::{
    Escalation, Forge, ForgeError, LocalForge, PullRequest, RecordState, StoredPull,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

/// A forge in a temporary directory with a clock the test moves by hand.
struct Fixture {
    _dir: TempDir,
    forge: LocalForge,
    clock: Arc<AtomicU64>,
}

impl Fixture {
    fn new() -> Self {
        let dir = TempDir::new().expect("temp dir");
        let clock = Arc::new(AtomicU64::new(1_700_000_000));
        let seconds = Arc::clone(&clock);
        let forge = LocalForge::new(dir.path().join("autofix"))
            .with_clock(move || UNIX_EPOCH + Duration::from_secs(seconds.load(Ordering::SeqCst)));
        Fixture {
            _dir: dir,
            forge,
            clock,
        }
    }

    fn advance(&self, seconds: u64) {
        self.clock.fetch_add(seconds, Ordering::SeqCst);
    }

    fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.forge.dir().join(relative)).expect(relative)
    }
}

fn pr(head: &str, body: &str) -> PullRequest {
    PullRequest {
        head: head.to_string(),
        base: "main".to_string(),
        title: format!("fix: {head}"),
        body: body.to_string(),
        labels: vec!["autofix".to_string(), "risk/low".to_string()],
        ..PullRequest::default()
    }
}

fn escalation(key: &str, body: &str) -> Escalation {
    Escalation {
        key: key.to_string(),
        title: format!("cannot fix {key}"),
        body: body.to_string(),
        labels: vec!["autofix/escalation".to_string()],
    }
}

/// Every path under `dir`, relative to it.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in fs::read_dir(&next).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            out.push(path.strip_prefix(dir).expect("prefix").to_path_buf());
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn create_then_update_keeps_the_number() {
    let fx = Fixture::new();
    let first = fx
        .forge
        .open_or_update_pr(&pr("autofix/shop/cart", "first body"))
        .await
        .expect("create");
    assert_eq!(first.number, 1);
    assert!(first.created);

    fx.advance(60);
    let mut changed = pr("autofix/shop/cart", "second body");
    changed.labels = vec!["autofix".to_string(), "risk/medium".to_string()];
    let second = fx.forge.open_or_update_pr(&changed).await.expect("update");
    assert_eq!(second.number, 1);
    assert!(!second.created);
    assert_eq!(second.url, first.url);

    assert_eq!(fx.read("pulls/1/body.md"), "second body");
    assert_eq!(fx.read("pulls/1/labels.txt"), "autofix\nrisk/medium\n");
    let pulls = fx.forge.list_pulls().expect("list");
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].body, "second body");
    assert_eq!(pulls[0].created_at, "2023-11-14T22:13:20Z");
    assert_eq!(pulls[0].updated_at, "2023-11-14T22:14:20Z");
}

#[tokio::test]
async fn different_heads_or_bases_get_different_numbers() {
    let fx = Fixture::new();
    let cart = fx
        .forge
        .open_or_update_pr(&pr("autofix/shop/cart", "b"))
        .await
        .expect("cart");
    let web = fx
        .forge
        .open_or_update_pr(&pr("autofix/shop/web", "b"))
        .await
        .expect("web");
    let mut release = pr("autofix/shop/cart", "b");
    release.base = "release".to_string();
    let release = fx.forge.open_or_update_pr(&release).await.expect("release");
    assert_eq!([cart.number, web.number, release.number], [1, 2, 3]);
    assert!(cart.created && web.created && release.created);
    assert_eq!(fx.forge.list_pulls().expect("list").len(), 3);
}

#[tokio::test]
async fn escalations_are_deduplicated_by_key() {
    let fx = Fixture::new();
    let first = fx
        .forge
        .escalate(&escalation("1a2b3c4d", "one"))
        .await
        .expect("first");
    let again = fx
        .forge
        .escalate(&escalation("1a2b3c4d", "two"))
        .await
        .expect("again");
    let other = fx
        .forge
        .escalate(&escalation("5e6f7a8b", "x"))
        .await
        .expect("other");
    assert_eq!((first.number, first.created), (1, true));
    assert_eq!((again.number, again.created), (1, false));
    assert_eq!((other.number, other.created), (2, true));
    assert_eq!(fx.read("issues/1/body.md"), "two");
    let issues = fx.forge.list_issues().expect("list");
    assert_eq!(
        issues.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(),
        ["1a2b3c4d", "5e6f7a8b"]
    );
}

#[tokio::test]
async fn numbers_are_shared_by_pulls_and_issues() {
    let fx = Fixture::new();
    let forge: Box<dyn Forge> = Box::new(fx.forge.clone());
    let pull = forge.open_or_update_pr(&pr("a", "b")).await.expect("pull");
    let issue = forge.escalate(&escalation("k", "b")).await.expect("issue");
    let pull2 = forge
        .open_or_update_pr(&pr("c", "b"))
        .await
        .expect("pull 2");
    assert_eq!([pull.number, issue.number, pull2.number], [1, 2, 3]);
    assert!(fx.forge.dir().join("issues/2/issue.json").is_file());
    assert!(fx.forge.dir().join("pulls/3/pr.json").is_file());
}

#[tokio::test]
async fn writes_leave_no_temporary_files() {
    let fx = Fixture::new();
    fx.forge
        .open_or_update_pr(&pr("a", "one"))
        .await
        .expect("create");
    fx.forge
        .open_or_update_pr(&pr("a", "two"))
        .await
        .expect("update");
    fx.forge
        .escalate(&escalation("k", "one"))
        .await
        .expect("issue");
    fx.forge
        .escalate(&escalation("k", "two"))
        .await
        .expect("issue update");
    let expected: Vec<PathBuf> = [
        "issues",
        "issues/2",
        "issues/2/body.md",
        "issues/2/issue.json",
        "issues/2/labels.txt",
        "issues/2/title.txt",
        "pulls",
        "pulls/1",
        "pulls/1/body.md",
        "pulls/1/labels.txt",
        "pulls/1/pr.json",
        "pulls/1/title.txt",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(tree(fx.forge.dir()), expected);
}

#[tokio::test]
async fn records_read_back_from_disk() {
    let fx = Fixture::new();
    let record = fx
        .forge
        .open_or_update_pr(&pr("autofix/shop/cart", "## Why\n\nOOMKilled.\n"))
        .await
        .expect("create");
    let record_dir = fx.forge.dir().join("pulls/1");
    assert_eq!(record.url, format!("file://{}", record_dir.display()));
    assert!(record_dir.is_absolute());

    let pulls = LocalForge::new(fx.forge.dir()).list_pulls().expect("list");
    assert_eq!(
        pulls,
        [StoredPull {
            number: 1,
            state: RecordState::Open,
            head: "autofix/shop/cart".to_string(),
            base: "main".to_string(),
            title: "fix: autofix/shop/cart".to_string(),
            body: "## Why\n\nOOMKilled.\n".to_string(),
            labels: vec!["autofix".to_string(), "risk/low".to_string()],
            draft: false,
            reviewers: Vec::new(),
            team_reviewers: Vec::new(),
            created_at: "2023-11-14T22:13:20Z".to_string(),
            updated_at: "2023-11-14T22:13:20Z".to_string(),
        }]
    );
    assert_eq!(fx.read("pulls/1/title.txt"), "fix: autofix/shop/cart\n");
    assert_eq!(fx.read("pulls/1/body.md"), "## Why\n\nOOMKilled.\n");
    assert_eq!(fx.read("pulls/1/labels.txt"), "autofix\nrisk/low\n");
    assert!(fx.read("pulls/1/pr.json").contains("\"state\": \"open\""));
    assert!(
        LocalForge::new(fx.forge.dir())
            .list_issues()
            .expect("issues")
            .is_empty()
    );
}

#[tokio::test]
async fn a_closed_record_is_not_reused() {
    let fx = Fixture::new();
    fx.forge
        .open_or_update_pr(&pr("a", "one"))
        .await
        .expect("create");
    let json = fx.read("pulls/1/pr.json").replace("\"open\"", "\"closed\"");
    fs::write(fx.forge.dir().join("pulls/1/pr.json"), json).expect("close by hand");
    let reopened = fx
        .forge
        .open_or_update_pr(&pr("a", "two"))
        .await
        .expect("reopen");
    assert_eq!((reopened.number, reopened.created), (2, true));
    assert_eq!(fx.read("pulls/1/body.md"), "one");
}

impl Fixture {
    /// Sets the state of a pull request record by hand, as a human would.
    fn set_pull_state(&self, number: u64, state: &str) {
        let path = self.forge.dir().join(format!("pulls/{number}/pr.json"));
        let json = fs::read_to_string(&path)
            .expect("record")
            .replace("\"state\": \"open\"", &format!("\"state\": \"{state}\""));
        fs::write(path, json).expect("set state by hand");
    }
}

#[tokio::test]
async fn declined_lists_closed_unmerged_pulls_newest_first() {
    let fx = Fixture::new();
    for (body, state) in [
        ("first", "closed"),
        ("merged", "merged"),
        ("second", "closed"),
    ] {
        let record = fx
            .forge
            .open_or_update_pr(&pr("autofix/cart", body))
            .await
            .expect("create");
        fx.set_pull_state(record.number, state);
    }
    // Neither an open one, nor one for another head or base, is declined.
    fx.forge
        .open_or_update_pr(&pr("autofix/cart", "open"))
        .await
        .expect("create");
    let other = fx
        .forge
        .open_or_update_pr(&pr("autofix/api", "elsewhere"))
        .await
        .expect("create");
    fx.set_pull_state(other.number, "closed");

    let declined = fx
        .forge
        .declined("autofix/cart", "main")
        .await
        .expect("declined");
    let seen: Vec<(u64, &str)> = declined
        .iter()
        .map(|d| (d.number, d.body.as_str()))
        .collect();
    assert_eq!(seen, [(3, "second"), (1, "first")]);
    assert_eq!(
        declined[0].url,
        format!("file://{}", fx.forge.dir().join("pulls/3").display())
    );
    assert!(
        fx.forge
            .declined("autofix/cart", "release")
            .await
            .expect("declined")
            .is_empty()
    );
    // A merged record takes no more updates either.
    let pulls = fx.forge.list_pulls().expect("list");
    assert_eq!(pulls[1].state, RecordState::Merged);
    assert_eq!(pulls[1].body, "merged");
}

#[tokio::test]
async fn draft_and_reviewers_are_kept_and_old_records_still_read() {
    let fx = Fixture::new();
    let mut request = pr("autofix/cart", "x");
    request.draft = true;
    request.reviewers = vec!["alice".into()];
    request.team_reviewers = vec!["sre".into()];
    fx.forge.open_or_update_pr(&request).await.expect("create");
    let stored = &fx.forge.list_pulls().expect("list")[0];
    assert!(stored.draft);
    assert_eq!(stored.reviewers, ["alice"]);
    assert_eq!(stored.team_reviewers, ["sre"]);

    // A record written before drafts and reviewers existed.
    let path = fx.forge.dir().join("pulls/1/pr.json");
    let mut old: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("json");
    let fields = old.as_object_mut().expect("object");
    for field in ["draft", "reviewers", "team_reviewers"] {
        fields.remove(field).expect(field);
    }
    fs::write(&path, old.to_string()).expect("write");
    let stored = &fx.forge.list_pulls().expect("list")[0];
    assert!(!stored.draft);
    assert!(stored.reviewers.is_empty() && stored.team_reviewers.is_empty());
}

#[tokio::test]
async fn a_staging_directory_left_by_a_crash_is_replaced() {
    let fx = Fixture::new();
    let staging = fx.forge.dir().join(".staging-pulls-1");
    fs::create_dir_all(&staging).expect("mkdir");
    fs::write(staging.join("title.txt"), "half").expect("write");
    let record = fx
        .forge
        .open_or_update_pr(&pr("a", "b"))
        .await
        .expect("create");
    assert_eq!(record.number, 1);
    assert!(!staging.exists());
    assert_eq!(fx.read("pulls/1/title.txt"), "fix: a\n");
}

#[tokio::test]
async fn a_malformed_record_names_its_file() {
    let fx = Fixture::new();
    fx.forge
        .open_or_update_pr(&pr("a", "b"))
        .await
        .expect("create");
    fs::write(fx.forge.dir().join("pulls/1/pr.json"), "{").expect("corrupt");
    let err = fx
        .forge
        .open_or_update_pr(&pr("a", "c"))
        .await
        .expect_err("malformed");
    assert!(matches!(err, ForgeError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("pulls/1/pr.json"), "{err}");
}

#[test]
fn for_git_dir_keeps_records_in_the_git_directory() {
    let git_dir = TempDir::new().expect("temp dir");
    let forge = LocalForge::for_git_dir(git_dir.path());
    assert_eq!(forge.dir(), git_dir.path().join("autofix"));
    assert!(forge.list_pulls().expect("no records yet").is_empty());
}

#[tokio::test]
async fn default_clock_stamps_the_present() {
    let dir = TempDir::new().expect("temp dir");
    let forge = LocalForge::new(dir.path());
    forge.escalate(&escalation("k", "b")).await.expect("issue");
    let issue = forge.list_issues().expect("list").remove(0);
    let year = issue
        .created_at
        .get(..4)
        .and_then(|y| y.parse::<u64>().ok());
    let now_year = 1970
        + SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            / 31_557_600;
    assert!(
        year.is_some_and(|y| y.abs_diff(now_year) <= 1),
        "{}",
        issue.created_at
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_one_head_make_one_pull() {
    let fx = Fixture::new();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let forge = fx.forge.clone();
            tokio::spawn(async move {
                forge
                    .open_or_update_pr(&pr("a", &format!("body {i}")))
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        let record = task.await.expect("join").expect("publish");
        assert_eq!(record.number, 1);
        created += usize::from(record.created);
    }
    assert_eq!(created, 1);
    assert_eq!(fx.forge.list_pulls().expect("list").len(), 1);
}
