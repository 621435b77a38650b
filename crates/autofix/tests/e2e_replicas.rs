//! Two `autofix serve` replicas sharing one PostgreSQL database (the real server the test script
//! starts), end to end with the real binary: an alert storm, every delivery repeated many times
//! and sprayed over both replicas at once, must give every incident exactly one run and one pull
//! request (real octocrab against the fake GitHub), one pushed branch with one commit each on the
//! shared bare remote, whichever replica took which incident.
//!
//! Skipped without `AUTOFIX_TEST_POSTGRES` unless `AUTOFIX_REQUIRE_POSTGRES` is set.

mod support;

use autofix_testkit::FakeGithub;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use support::{Fixture, PATIENCE, Serve, wait_until};

/// (scenario, namespace): four workloads, each fixable by a pull request.
const SCENARIOS: [(&str, &str); 4] = [
    ("cpu-throttled-api-gateway", "mobile"),
    ("oom-statefulset-search-cache", "catalog"),
    ("command-revert-notifier", "comms"),
    ("app-env-regression-billing", "payments-eu"),
];

/// Deliveries of each alert body, spread over both replicas.
const REPEATS: usize = 25;

const GITHUB_TOKEN: &str = "ghp_replicas_fake_token";

fn git(repo: &Path, args: &[&str]) -> String {
    support::git(repo, args).trim().to_string()
}

#[test]
fn two_replicas_share_postgres_under_an_alert_storm_one_run_and_one_pr_per_incident() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(database) = runtime.block_on(autofix_testkit::fresh_postgres_database()) else {
        return;
    };
    let fake = runtime
        .block_on(FakeGithub::start(Some(GITHUB_TOKEN)))
        .unwrap();
    fake.add_repo("acme", "gitops");

    let names: Vec<&str> = SCENARIOS.iter().map(|s| s.0).collect();
    let f = Fixture::merged(&names);
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
    let (config, _) = support::serve_config(
        f.temp.path(),
        &format!("workers = 2\ndatabase_url = {database:?}"),
    );
    let token_file = f.path("github-token");
    std::fs::write(&token_file, GITHUB_TOKEN).unwrap();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[github]\napi_url = {:?}\ntoken_file = {:?}\n\n[[gitops.repos]]\nnamespaces = [\"*\"]\nurl = {:?}\nbase = \"main\"\ngithub_repo = \"acme/gitops\"\n",
        fake.url(),
        token_file.to_str().unwrap(),
        remote.to_str().unwrap()
    ));
    std::fs::write(&config, text).unwrap();

    // Each replica has its own data directory (its clone); they share only the database.
    let replicas = [
        Serve::launch(
            &f.scenario,
            None,
            &config,
            &f.path("data-a"),
            &f.path("a.log"),
        ),
        Serve::launch(
            &f.scenario,
            None,
            &config,
            &f.path("data-b"),
            &f.path("b.log"),
        ),
    ];

    let bodies: Vec<Vec<u8>> = f
        .alerts
        .iter()
        .map(|(_, path)| std::fs::read(path).unwrap())
        .collect();
    let statuses: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let senders: Vec<_> = (0..8)
            .map(|sender| {
                let (replicas, bodies) = (&replicas, &bodies);
                scope.spawn(move || {
                    let mut answers = Vec::new();
                    for n in (sender..REPEATS * bodies.len()).step_by(8) {
                        let serve = &replicas[n % 2];
                        answers.push(serve.post(&bodies[n % bodies.len()]));
                    }
                    answers
                })
            })
            .collect();
        senders
            .into_iter()
            .flat_map(|s| s.join().unwrap())
            .collect()
    });
    assert_eq!(statuses.len(), REPEATS * SCENARIOS.len());
    for (status, body) in &statuses {
        assert_eq!(*status, 200, "every delivery is accepted: {body}");
    }
    let queued: u64 = statuses
        .iter()
        .map(|(_, b)| b["incidents_queued"].as_u64().unwrap())
        .sum();
    assert_eq!(queued, SCENARIOS.len() as u64, "one incident per workload");

    let incidents = wait_until("every incident to be done", PATIENCE, || {
        let list = replicas[0].incidents();
        (list.len() == SCENARIOS.len() && list.iter().all(|i| i["state"] == "done")).then_some(list)
    });
    for incident in &incidents {
        assert_eq!(incident["attempts"], 1, "run exactly once: {incident}");
    }
    // Both replicas see the same incidents: the database is shared.
    assert_eq!(replicas[1].incidents().len(), SCENARIOS.len());

    let pulls = fake.pulls("acme", "gitops");
    assert_eq!(pulls.len(), SCENARIOS.len(), "{pulls:#?}");
    let heads: BTreeSet<&str> = pulls.iter().map(|p| p.head.as_str()).collect();
    assert_eq!(heads.len(), SCENARIOS.len(), "one branch per pull request");
    for (_, namespace) in SCENARIOS {
        assert!(
            pulls
                .iter()
                .any(|p| p.title.contains(&format!("({namespace}/"))),
            "a pull request for {namespace}: {pulls:#?}"
        );
    }
    for head in heads {
        let ahead = git(&remote, &["rev-list", "--count", &format!("main..{head}")]);
        assert_eq!(ahead, "1", "{head} holds one fix commit");
    }
    assert_eq!(
        git(&remote, &["rev-parse", "main"]),
        main_before,
        "main untouched"
    );
    drop(replicas);
}
