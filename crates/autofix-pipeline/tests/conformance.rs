//! Conformance: every scenario folder, end to end on the offline default, checked against its
//! `expected.json` (category, action, every fix check, unchanged lines, secrets never shown,
//! idempotence) by the eval harness's scoring (`autofix_eval::score`).
//!
//! Scenarios come from `examples/scenarios/` and the outside set (`AUTOFIX_SCENARIOS`, CI points
//! it at `../shared/scenarios`): see `autofix_testkit::scenario_dirs`.

use autofix_diagnose::RuleDiagnoser;
use autofix_eval::{Scenario, score};
use autofix_pipeline::Config;
use autofix_testkit::scenario_dirs;
use std::sync::Arc;

#[tokio::test]
async fn every_scenario_conforms() {
    let dirs = scenario_dirs();
    assert!(!dirs.is_empty(), "no scenarios found");
    let mut failures = Vec::new();
    for dir in &dirs {
        let scenario = Scenario::load(dir).expect("a valid scenario folder");
        let score = score(
            &scenario,
            Arc::new(RuleDiagnoser::default()),
            &Config::default(),
        )
        .await
        .expect("the harness runs");
        if score.passed {
            println!("ok   {}", dir.display());
        } else {
            let why: Vec<String> = score
                .failures()
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect();
            let why = why.join("\n    ");
            println!("FAIL {}\n    {why}", dir.display());
            failures.push(format!("{}:\n    {why}", dir.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios fail:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}
