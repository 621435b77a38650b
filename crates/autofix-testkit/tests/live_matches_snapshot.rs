//! For every scenario: the real kube client against [`FakeKube`] yields the same evidence and the
//! same diagnosis as the snapshot reader, with GET requests only; and a snapshot written from the
//! fake reads back as the same evidence.

use autofix_cluster::{EvidenceSource, LiveOptions, LiveSource, SnapshotSource, write_snapshot};
use autofix_core::alert::WebhookPayload;
use autofix_core::{Evidence, Incident};
use autofix_diagnose::RuleDiagnoser;
use autofix_testkit::{FakeKube, scenario_dirs};
use serde_json::{Value, json};
use std::path::Path;

fn incident(dir: &Path) -> Incident {
    let body = std::fs::read(dir.join("alert.json")).unwrap();
    Incident::from_payload(&WebhookPayload::from_json(&body).unwrap()).unwrap()
}

/// The parts of evidence diagnosis reads, as JSON; events as a sorted set.
fn parts(e: &Evidence) -> Vec<(&'static str, Value)> {
    let mut events: Vec<Value> = e.events.iter().map(|ev| json!(ev)).collect();
    events.sort_by_key(|ev| ev.to_string());
    vec![
        ("workload", json!(e.workload)),
        ("container", json!(e.container)),
        ("workload_object", e.workload_object.clone()),
        ("namespace_labels", json!(e.namespace_labels)),
        ("pods", json!(e.pods)),
        ("replica_sets", json!(e.replica_sets)),
        ("events", json!(events)),
        ("nodes", json!(e.nodes)),
        ("config_maps", json!(e.config_maps)),
        ("secrets", json!(e.secrets)),
        ("claims", json!(e.claims)),
        ("logs", json!(e.logs)),
    ]
}

/// Differences between two evidences, one line per differing part.
fn differences(snapshot: &Evidence, live: &Evidence) -> Vec<String> {
    parts(snapshot)
        .into_iter()
        .zip(parts(live))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((name, a), (_, b))| {
            let (a, b) = (a.to_string(), b.to_string());
            let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
            let from = at.saturating_sub(80);
            let excerpt = |s: &str| {
                s.get(from..(at + 80).min(s.len()))
                    .unwrap_or("")
                    .to_string()
            };
            format!(
                "{name}: snapshot ...{}... live ...{}...",
                excerpt(&a),
                excerpt(&b)
            )
        })
        .collect()
}

/// Option sets that take different request paths: paged lists with per-object event queries,
/// and one namespace-wide event list.
fn option_sets() -> [(&'static str, LiveOptions); 2] {
    [
        (
            "paged, events by involvedObject",
            LiveOptions {
                read_secrets: true,
                page_size: 2,
                ..LiveOptions::default()
            },
        ),
        (
            "events listed per namespace",
            LiveOptions {
                read_secrets: true,
                max_event_queries: 0,
                ..LiveOptions::default()
            },
        ),
    ]
}

#[tokio::test]
async fn live_evidence_and_diagnosis_match_the_snapshot_for_every_scenario() {
    let dirs = scenario_dirs();
    assert!(!dirs.is_empty(), "no scenarios found");
    let mut failures = Vec::new();
    let mut compared = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let incident = incident(dir);
        let snapshot = SnapshotSource::open(dir).unwrap().collect(&incident).await;
        let fake = FakeKube::start(dir).await.unwrap();
        for (variant, options) in option_sets() {
            let source = LiveSource::new(fake.client()).with_options(options);
            let live = source.collect(&incident).await;
            let (snapshot, live) = match (&snapshot, live) {
                (Ok(s), Ok(l)) => (s, l),
                (Err(s), Err(l)) => {
                    // Both refuse: the same kind of refusal is the same answer.
                    if std::mem::discriminant(s) != std::mem::discriminant(&l) {
                        failures.push(format!("{name} [{variant}]: snapshot {s}, live {l}"));
                    }
                    continue;
                }
                (s, l) => {
                    failures.push(format!(
                        "{name} [{variant}]: snapshot {:?}, live {:?}",
                        s.as_ref().err().map(ToString::to_string),
                        l.err().map(|e| e.to_string())
                    ));
                    continue;
                }
            };
            compared += 1;
            for d in differences(snapshot, &live) {
                failures.push(format!("{name} [{variant}]: {d}"));
            }
            let rules = RuleDiagnoser::default();
            let (want, got) = (rules.analyze(snapshot), rules.analyze(&live));
            if want != got {
                failures.push(format!(
                    "{name} [{variant}]: diagnosis differs: snapshot {} {} ({}), live {} {} ({})",
                    want.category, want.action, want.summary, got.category, got.action, got.summary
                ));
            }
        }
        let requests = fake.requests();
        let writes: Vec<_> = requests.iter().filter(|r| r.method != "GET").collect();
        if !writes.is_empty() {
            failures.push(format!("{name}: non-GET requests {writes:?}"));
        }
        let by_involved_object = requests.iter().any(|r| {
            r.path.ends_with("/events")
                && r.query
                    .as_deref()
                    .is_some_and(|q| q.contains("fieldSelector=involvedObject.kind"))
        });
        if snapshot.is_ok() && !by_involved_object {
            failures.push(format!("{name}: events were never asked by involvedObject"));
        }
    }
    println!(
        "{compared} live collections compared over {} scenarios",
        dirs.len()
    );
    assert!(compared > 0, "no scenario gave evidence");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_snapshot_written_from_the_api_reads_back_as_the_same_evidence() {
    let mut failures = Vec::new();
    let mut written = 0;
    for dir in scenario_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let incident = incident(&dir);
        let Ok(original) = SnapshotSource::open(&dir).unwrap().collect(&incident).await else {
            continue;
        };
        let Some(pod) = original.pods.first().and_then(|p| p.metadata.name.clone()) else {
            continue;
        };
        let fake = FakeKube::start(&dir).await.unwrap();
        let out = tempfile::tempdir().unwrap();
        let options = LiveOptions {
            read_secrets: true,
            ..LiveOptions::default()
        };
        let summary = write_snapshot(
            fake.client(),
            &incident.namespace,
            &pod,
            out.path(),
            &options,
        )
        .await
        .unwrap();
        written += 1;
        if summary.workload != original.workload {
            failures.push(format!("{name}: wrote {:?}", summary.workload));
        }
        let replayed = SnapshotSource::open(out.path())
            .unwrap()
            .collect(&incident)
            .await
            .unwrap();
        for d in differences(&original, &replayed) {
            failures.push(format!("{name}: {d}"));
        }
        let rules = RuleDiagnoser::default();
        if rules.analyze(&original) != rules.analyze(&replayed) {
            failures.push(format!("{name}: diagnosis differs after the round trip"));
        }
    }
    assert!(written > 0, "no scenario was written");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
