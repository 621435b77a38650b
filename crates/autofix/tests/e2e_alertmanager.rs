//! End to end with a real Prometheus Alertmanager (Debian package `prometheus-alertmanager`).
//!
//! Alerts of two example scenarios (two crash-looping StatefulSet pods, two CPU-throttled
//! Deployment pods) are posted to Alertmanager's own API. Alertmanager groups them
//! (`group_by: [alertname, namespace]`), delivers them to `autofix serve` with the bearer token
//! from its `credentials_file`, re-sends them every repeat interval and sends them resolved,
//! exactly as it does in production. The service must turn that into exactly one incident and one
//! pipeline run per workload, one fix branch with one commit and one pull request each, count the
//! repeats as duplicates without new work, and mark the incidents resolved.
//!
//! Skipped with a note when Alertmanager is not installed (the test script installs it).

mod support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};
use support::{Fixture, PATIENCE, Proc, Serve, free_port, http, incidents, wait_until};

/// The scenarios whose alerts are posted, with the workload each must become.
const SCENARIOS: [(&str, &str, &str, &str); 2] = [
    // (scenario, namespace, workload kind, workload name)
    ("cpu-throttled-api-gateway", "mobile", "Deployment", "api"),
    (
        "oom-statefulset-search-cache",
        "catalog",
        "StatefulSet",
        "redis-cache",
    ),
];

/// Alertmanager's binary: the Debian path, else `prometheus-alertmanager` on PATH.
fn alertmanager_binary() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/bin/prometheus-alertmanager");
    if debian.is_file() {
        return Some(debian);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("prometheus-alertmanager"))
        .find(|p| p.is_file())
}

/// A running Alertmanager on loopback, clustering off.
struct Alertmanager {
    proc: Proc,
    base: String,
}

impl Alertmanager {
    fn start(binary: &Path, dir: &Path, webhook_url: &str, token_file: &Path) -> Alertmanager {
        let config = dir.join("am.yml");
        std::fs::write(
            &config,
            format!(
                "global:
  resolve_timeout: 5m
route:
  receiver: autofix
  group_by: [alertname, namespace]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 5s
receivers:
  - name: autofix
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: {}
",
                token_file.display()
            ),
        )
        .unwrap();
        let storage = dir.join("am-data");
        std::fs::create_dir_all(&storage).unwrap();
        let port = free_port();
        let mut command = Command::new(binary);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=debug");
        let mut am = Alertmanager {
            proc: Proc::spawn("alertmanager", command, &dir.join("alertmanager.log")),
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = http();
        wait_until("Alertmanager to be ready", PATIENCE, || {
            am.proc.assert_running();
            client
                .get(format!("{}/-/ready", am.base))
                .send()
                .is_ok_and(|r| r.status() == 200)
                .then_some(())
        });
        am
    }

    /// `POST /api/v2/alerts`.
    fn post_alerts(&self, alerts: &[Value]) {
        let response = http()
            .post(format!("{}/api/v2/alerts", self.base))
            .json(alerts)
            .send()
            .expect("Alertmanager answers");
        let status = response.status();
        assert!(
            status.is_success(),
            "Alertmanager refused the alerts: {status} {}",
            response.text().unwrap_or_default()
        );
    }
}

/// The alerts of the fixture's scenario bodies as Alertmanager's API takes them: labels and
/// annotations as captured, `startsAt` a few minutes ago (the captured times lie in the future
/// of this machine's clock, which Alertmanager would refuse), no `endsAt` (firing).
fn api_alerts(f: &Fixture) -> Vec<Value> {
    let started = SystemTime::now() - Duration::from_secs(600);
    let mut out = Vec::new();
    for (_, path) in &f.alerts {
        let body: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for (i, alert) in body["alerts"].as_array().unwrap().iter().enumerate() {
            out.push(json!({
                "labels": alert["labels"],
                "annotations": alert["annotations"],
                "generatorURL": alert["generatorURL"],
                "startsAt": support::rfc3339(started + Duration::from_secs(i as u64)),
            }));
        }
    }
    out
}

/// Runs of every outcome so far.
fn runs_total(serve: &Serve) -> f64 {
    serve.metric("autofix_runs_total", "")
}

#[test]
fn alertmanager_groups_repeats_and_resolves_into_one_incident_per_workload() {
    let Some(binary) = alertmanager_binary() else {
        eprintln!(
            "note: skipping the Alertmanager end-to-end test: /usr/bin/prometheus-alertmanager \
             is not installed (apt-get install prometheus-alertmanager)"
        );
        return;
    };
    let t0 = Instant::now();
    let names: Vec<&str> = SCENARIOS.iter().map(|s| s.0).collect();
    let f = Fixture::merged(&names);
    let (config, token) = support::serve_config(f.temp.path(), "workers = 2");
    let data = f.path("data");
    let serve = Serve::start(&f, &config, &data, &f.path("serve.log"));
    let am = Alertmanager::start(
        &binary,
        f.temp.path(),
        &format!("{}/webhooks/alertmanager", serve.base),
        &token,
    );

    let alerts = api_alerts(&f);
    assert_eq!(alerts.len(), 4, "two pods of each workload");
    am.post_alerts(&alerts);

    // Alertmanager delivers both groups; each becomes one incident that runs to a pull request.
    // On a loaded machine a group's second alert can miss the first notification and come with
    // the next one (after group_interval), which runs the incident again: wait for both pods.
    let listed = wait_until(
        "both incidents done with both pods after Alertmanager's notifications",
        PATIENCE,
        || {
            let list = incidents(&data);
            (list.len() == SCENARIOS.len()
                && list
                    .iter()
                    .all(|i| i["state"] == "done" && i["alerts_firing"] == 2))
            .then_some(list)
        },
    );
    eprintln!("first notifications handled after {:?}", t0.elapsed());
    assert_eq!(
        serve.metric(
            "autofix_webhook_deliveries_total",
            "result=\"unauthorized\""
        ),
        0.0,
        "Alertmanager's credentials_file token was refused"
    );
    assert!(serve.metric("autofix_webhook_deliveries_total", "result=\"accepted\"") >= 2.0);
    let branches = f.fix_branches();
    assert_eq!(
        branches.len(),
        SCENARIOS.len(),
        "one fix branch per workload: {branches:?}"
    );
    for (_, namespace, kind, name) in SCENARIOS {
        let incident = listed
            .iter()
            .find(|i| i["namespace"] == namespace && i["workload_name"] == name)
            .unwrap_or_else(|| panic!("no incident for {namespace}/{name}: {listed:#?}"));
        assert_eq!(incident["cluster"], "prod-eu-1");
        assert_eq!(
            incident["alerts_firing"], 2,
            "both pods in one incident: {incident:#}"
        );
        assert_eq!(incident["attempts"], 1);
        assert_eq!(incident["resolved"], false);
        let report = &incident["last_report"];
        assert_eq!(report["action"], "pr", "{report:#}");
        assert_eq!(report["workload"]["kind"], kind);
        assert_eq!(report["workload"]["name"], name);
        let branch = report["branch"].as_str().expect("a fix branch");
        assert!(
            branches.iter().any(|b| b == branch),
            "{branch} not in {branches:?}"
        );
        assert_eq!(f.commits_ahead(branch), 1, "{branch}: one fix commit");
    }
    let pulls = f.pulls();
    assert_eq!(
        pulls.len(),
        SCENARIOS.len(),
        "one PR record per workload: {pulls:#?}"
    );
    for pull in &pulls {
        assert!(
            branches.iter().any(|b| pull["head"] == b.as_str()),
            "{pull:#}"
        );
        assert_eq!(pull["base"], "main");
    }
    // The service's own view agrees with the CLI's.
    let over_http = serve.incidents();
    let ids = |list: &[Value]| {
        let mut ids: Vec<i64> = list.iter().map(|i| i["id"].as_i64().unwrap()).collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(ids(&over_http), ids(&listed));
    assert_eq!(runs_total(&serve), SCENARIOS.len() as f64);

    // Alertmanager re-sends the groups after repeat_interval: duplicates, no new work.
    wait_until("a repeat notification from Alertmanager", PATIENCE, || {
        (serve.metric("autofix_alerts_duplicate_total", "") > 0.0).then_some(())
    });
    eprintln!("repeat notification seen after {:?}", t0.elapsed());
    assert_eq!(
        runs_total(&serve),
        SCENARIOS.len() as f64,
        "a repeat started a run"
    );
    assert_eq!(
        serve.metric("autofix_runs_total", "outcome=\"done\""),
        SCENARIOS.len() as f64
    );
    assert_eq!(
        serve.metric("autofix_published_total", "kind=\"pull_request\""),
        SCENARIOS.len() as f64
    );
    let after_repeat = incidents(&data);
    assert_eq!(after_repeat.len(), SCENARIOS.len(), "{after_repeat:#?}");
    for incident in &after_repeat {
        assert_eq!(incident["state"], "done", "{incident:#}");
        assert_eq!(incident["attempts"], 1, "{incident:#}");
    }
    assert_eq!(f.pulls().len(), SCENARIOS.len());
    assert_eq!(f.fix_branches(), branches);

    // Resolve: the same alerts with endsAt in the past; Alertmanager sends them resolved.
    let ended = support::rfc3339(SystemTime::now() - Duration::from_secs(1));
    let resolved: Vec<Value> = alerts
        .iter()
        .map(|a| {
            let mut a = a.clone();
            a["endsAt"] = Value::String(ended.clone());
            a
        })
        .collect();
    am.post_alerts(&resolved);
    let final_list = wait_until("both incidents marked resolved", PATIENCE, || {
        let list = incidents(&data);
        list.iter()
            .all(|i| i["resolved"] == true && i["alerts_resolved"].as_u64() == Some(2))
            .then_some(list)
    });
    eprintln!("resolved notifications handled after {:?}", t0.elapsed());
    assert!(serve.metric("autofix_alerts_received_total", "status=\"resolved\"") >= 4.0);
    assert_eq!(final_list.len(), SCENARIOS.len(), "{final_list:#?}");
    for incident in &final_list {
        assert_eq!(
            incident["state"], "done",
            "resolving starts no work: {incident:#}"
        );
        assert_eq!(incident["alerts_firing"], 0, "{incident:#}");
    }
    assert_eq!(runs_total(&serve), SCENARIOS.len() as f64);
    assert_eq!(f.pulls().len(), SCENARIOS.len());
    assert_eq!(f.fix_branches(), branches);
    drop(am);
    drop(serve);
    eprintln!("done in {:?}", t0.elapsed());
}
