//! Teaching the pipeline which strategy's fixes work: every recorded outcome, folded per fix
//! (one incident's one pull request), into the strategy statistics the pipeline picks with.
//!
//! A fix worked when it was merged or its alerts resolved, and nothing bad followed; it did not
//! when it was rejected, reverted or its alert came back. Outcomes without a known strategy
//! (recorded before strategies were) teach nothing.

use autofix_choose::{Strategy, StrategyBandit};
use autofix_pipeline::LearnedStrategies;
use autofix_store::{Outcome, OutcomeRecord, Store, StoreError};
use std::collections::BTreeMap;
use std::sync::PoisonError;

/// The statistics `outcomes` teach, with `min_outcomes` as the cold-start threshold.
pub fn bandit_from(outcomes: &[OutcomeRecord], min_outcomes: u32) -> StrategyBandit {
    // (incident, pull request) -> (category, strategy, worked so far).
    let mut fixes: BTreeMap<(i64, u64), (String, Strategy, bool)> = BTreeMap::new();
    for o in outcomes {
        let (Some(category), Some(strategy)) = (
            o.category.as_deref(),
            o.source.as_deref().and_then(|s| s.parse::<Strategy>().ok()),
        ) else {
            continue;
        };
        let worked = matches!(o.outcome, Outcome::Merged | Outcome::Resolved);
        fixes
            .entry((o.incident_id, o.pr_number))
            .and_modify(|fix| fix.2 &= worked)
            .or_insert_with(|| (category.to_string(), strategy, worked));
    }
    let mut bandit = StrategyBandit::new(min_outcomes);
    for (category, strategy, worked) in fixes.into_values() {
        bandit.record(&category, strategy, worked);
    }
    bandit
}

/// Rebuilds `strategies` from every outcome in the store.
pub async fn relearn(store: &Store, strategies: &LearnedStrategies) -> Result<(), StoreError> {
    let outcomes = store.list_outcomes().await?;
    let mut bandit = strategies.write().unwrap_or_else(PoisonError::into_inner);
    *bandit = bandit_from(&outcomes, bandit.min_outcomes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn record(id: i64, pr: u64, source: &str, outcome: Outcome) -> OutcomeRecord {
        OutcomeRecord {
            id,
            incident_id: id,
            incident_hash: format!("{id:08x}"),
            branch: format!("autofix/{id}"),
            outcome,
            risk_score: Some(0.3),
            pr_number: pr,
            commit_sha: None,
            delivery_id: format!("d{id}-{outcome}"),
            recorded_at: 0,
            source: Some(source.into()),
            category: Some("oom_killed".into()),
        }
    }

    #[test]
    fn a_fix_counts_once_and_a_later_revert_or_recurrence_makes_it_a_failure() {
        let outcomes = [
            // Merged then resolved: worked.
            record(1, 10, "rule", Outcome::Merged),
            record(1, 10, "rule", Outcome::Resolved),
            // Merged then reverted: did not.
            record(2, 20, "rule", Outcome::Merged),
            record(2, 20, "rule", Outcome::Reverted),
            // Merged then recurred: did not.
            record(3, 30, "revert-to-last-good", Outcome::Merged),
            record(3, 30, "revert-to-last-good", Outcome::Recurred),
            record(4, 40, "revert-to-last-good", Outcome::Rejected),
        ];
        let bandit = bandit_from(&outcomes, 1);
        let stats = bandit.stats("oom_killed");
        let of = |s: Strategy| {
            let arm = stats.iter().find(|a| a.strategy == s).unwrap();
            (arm.successes, arm.failures)
        };
        assert_eq!(of(Strategy::Rule), (1, 1));
        assert_eq!(of(Strategy::RevertToLastGood), (0, 2));
    }

    #[test]
    fn outcomes_without_a_strategy_teach_nothing() {
        let mut old = record(1, 10, "rule", Outcome::Merged);
        old.source = None;
        let bandit = bandit_from(&[old], 1);
        let mut rng = StdRng::seed_from_u64(7);
        assert_eq!(
            bandit.choose("oom_killed", &[Strategy::Rule], &mut rng),
            None
        );
    }
}
