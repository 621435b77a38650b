//! `autofix serve` with GitHub configured, end to end with the real binary: the GitOps
//! repository is a bare remote on disk (cloned and pushed to by git2), GitHub is the stateful
//! fake speaking its REST API (the real octocrab inside the binary), and the config file alone
//! says where fixes go. An alert gives one pushed branch and one pull request; its re-delivery
//! changes nothing.

mod support;

use autofix_testkit::FakeGithub;
use std::path::Path;
use std::time::Duration;
use support::{Fixture, PATIENCE, Serve, wait_until};

/// `support::git`'s output without the trailing newline.
fn git(repo: &Path, args: &[&str]) -> String {
    support::git(repo, args).trim().to_string()
}

const SCENARIO: &str = "oom-statefulset-search-cache";
const GITHUB_TOKEN: &str = "ghp_e2e_fake_token";

#[test]
fn serve_with_github_configured_goes_from_alert_to_pull_request() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime
        .block_on(FakeGithub::start(Some(GITHUB_TOKEN)))
        .unwrap();
    fake.add_repo("acme", "gitops");

    let f = Fixture::new(SCENARIO);
    let remote = f.path("gitops.git");
    git(
        f.temp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            f.repo.to_str().unwrap(),
            "gitops.git",
        ],
    );
    let main_before = git(&remote, &["rev-parse", "main"]);
    let (config, _) = support::serve_config(f.temp.path(), "workers = 1");
    let token_file = f.path("github-token");
    std::fs::write(&token_file, format!("{GITHUB_TOKEN}\n")).unwrap();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[github]\napi_url = {:?}\ntoken_file = {:?}\n\n[[gitops.repos]]\nnamespaces = [\"catalog\"]\nurl = {:?}\nbase = \"main\"\ngithub_repo = \"acme/gitops\"\n",
        fake.url(),
        token_file.to_str().unwrap(),
        remote.to_str().unwrap()
    ));
    std::fs::write(&config, text).unwrap();

    let data = f.path("data");
    let serve = Serve::launch(&f.scenario, None, &config, &data, &f.path("serve.log"));
    let alert = std::fs::read(f.scenario.join("alert.json")).unwrap();
    let (status, body) = serve.post(&alert);
    assert_eq!(status, 200, "{body}");

    wait_until("the incident to be done", PATIENCE, || {
        let list = serve.incidents();
        (!list.is_empty() && list.iter().all(|i| i["state"] == "done")).then_some(())
    });
    let pulls = fake.pulls("acme", "gitops");
    assert_eq!(pulls.len(), 1, "{pulls:#?}");
    let pull = &pulls[0];
    assert!(
        pull.title
            .starts_with("fix(catalog/redis-cache): raise the memory limit")
    );
    assert!(pull.labels.contains(&"category/oom_killed".to_string()));
    let branch = git(
        &remote,
        &["branch", "--list", "--format=%(refname:short)", "autofix/*"],
    );
    assert_eq!(branch, pull.head, "the PR's head is the pushed branch");
    assert_eq!(
        git(&remote, &["rev-parse", &format!("{branch}~1")]),
        main_before
    );
    assert_eq!(
        git(&remote, &["rev-parse", "main"]),
        main_before,
        "main untouched"
    );
    let clone = data.join("repos");
    assert!(clone.is_dir(), "the clone lives in the data dir");

    // A re-delivery is recognised; nothing new is opened.
    let (status, _) = serve.post(&alert);
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(fake.pulls("acme", "gitops").len(), 1);
    let incidents = serve.incidents();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(serve.incidents()[0]["state"], "done");
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.credential.as_deref() == Some(GITHUB_TOKEN)),
        "every GitHub call carries the configured token"
    );
    drop(serve);
}
