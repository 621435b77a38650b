//! The whole eval: every scenario's score and the totals, with accuracy per category.

use crate::ScenarioScore;
use serde::Serialize;
use std::collections::BTreeMap;

/// How one expected category fared.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CategoryStats {
    /// Scenarios expecting this category.
    pub scenarios: usize,
    /// Of those, diagnosed with this category.
    pub correct: usize,
    /// Of those, passing every check.
    pub passed: usize,
    /// `correct / scenarios`.
    pub accuracy: f64,
}

/// Totals over all scenarios.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Scenarios run.
    pub scenarios: usize,
    /// Scenarios passing every check.
    pub scenarios_passed: usize,
    /// `scenarios_passed / scenarios`.
    pub accuracy: f64,
    /// Share of scenarios with the right category.
    pub category_accuracy: f64,
    /// Share of scenarios with the right action.
    pub action_accuracy: f64,
    /// Fix checks met, over all scenarios.
    pub fix_checks_passed: usize,
    /// Fix checks listed, over all scenarios.
    pub fix_checks_total: usize,
    /// Scenarios where a `must_not_contain` string showed.
    pub leaked: usize,
    /// Mean latency of a scenario's first run, in milliseconds.
    pub mean_latency_ms: f64,
    /// 95th percentile (nearest rank) of that latency, in milliseconds.
    pub p95_latency_ms: f64,
    /// LLM tokens over all scenarios.
    pub total_tokens: u64,
    /// Accuracy per expected category.
    pub per_category: BTreeMap<String, CategoryStats>,
}

impl Summary {
    /// The totals of these scores.
    pub fn of(scores: &[ScenarioScore]) -> Summary {
        let n = scores.len();
        let share = |count: usize| if n == 0 { 0.0 } else { count as f64 / n as f64 };
        let count = |f: &dyn Fn(&ScenarioScore) -> bool| scores.iter().filter(|s| f(s)).count();
        let mut per_category: BTreeMap<String, CategoryStats> = BTreeMap::new();
        for s in scores {
            let stats = per_category.entry(s.expected_category.clone()).or_default();
            stats.scenarios += 1;
            stats.correct += usize::from(s.category_correct());
            stats.passed += usize::from(s.passed);
        }
        for stats in per_category.values_mut() {
            stats.accuracy = stats.correct as f64 / stats.scenarios as f64;
        }
        let mut latencies: Vec<f64> = scores.iter().map(|s| s.latency_ms).collect();
        latencies.sort_by(f64::total_cmp);
        let p95 = match latencies.len() {
            0 => 0.0,
            len => latencies[(len * 95).div_ceil(100).clamp(1, len) - 1],
        };
        let passed = count(&|s| s.passed);
        Summary {
            scenarios: n,
            scenarios_passed: passed,
            accuracy: share(passed),
            category_accuracy: share(count(&|s| s.category_correct())),
            action_accuracy: share(count(&|s| s.action_correct())),
            fix_checks_passed: scores.iter().map(|s| s.fix_checks_passed).sum(),
            fix_checks_total: scores.iter().map(|s| s.fix_checks_total).sum(),
            leaked: count(&|s| s.leaked()),
            mean_latency_ms: if n == 0 {
                0.0
            } else {
                latencies.iter().sum::<f64>() / n as f64
            },
            p95_latency_ms: p95,
            total_tokens: scores.iter().map(|s| s.tokens).sum(),
            per_category,
        }
    }
}

/// An eval's results: what ran it, every score, and the totals (the `--json` output and the
/// `results.json` artifact).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// The diagnoser mode, e.g. `rules` or `rules-then-llm`.
    pub diagnoser: String,
    /// The LLM model, when an LLM is asked.
    pub model: Option<String>,
    /// kube-autofix version.
    pub version: String,
    /// Every scenario, in the order run.
    pub scenarios: Vec<ScenarioScore>,
    /// Totals.
    pub summary: Summary,
}

impl EvalReport {
    /// The report of these scores.
    pub fn new(
        diagnoser: impl Into<String>,
        model: Option<String>,
        version: impl Into<String>,
        scenarios: Vec<ScenarioScore>,
    ) -> EvalReport {
        let summary = Summary::of(&scenarios);
        EvalReport {
            diagnoser: diagnoser.into(),
            model,
            version: version.into(),
            scenarios,
            summary,
        }
    }

    /// True when every scenario passed.
    pub fn passed(&self) -> bool {
        self.summary.scenarios_passed == self.summary.scenarios
    }
}
