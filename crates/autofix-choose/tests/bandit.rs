//! The strategy bandit on synthetic outcome streams, and picks that use it.

mod common;

use autofix_choose::{
    ArmStats, Candidate, Strategy, StrategyBandit, Verdict, pick, pick_with_bandit,
};
use common::{candidate, llm_patch, raise_limit, revert};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const CATEGORY: &str = "oom-killed";

/// Plays `rounds` rounds: the bandit chooses a strategy, its outcome is drawn from that
/// strategy's true success rate and recorded. Returns the strategies chosen.
fn play(seed: u64, true_rates: &[(Strategy, f64)], rounds: usize) -> Vec<Strategy> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut bandit = StrategyBandit::new(0);
    let eligible: Vec<Strategy> = true_rates.iter().map(|&(strategy, _)| strategy).collect();
    (0..rounds)
        .map(|_| {
            let strategy = bandit
                .choose(CATEGORY, &eligible, &mut rng)
                .expect("no cold start with min_outcomes 0");
            let (_, rate) = true_rates.iter().find(|(s, _)| *s == strategy).unwrap();
            bandit.record(CATEGORY, strategy, rng.random_bool(*rate));
            strategy
        })
        .collect()
}

fn share_of(strategy: Strategy, plays: &[Strategy]) -> usize {
    plays.iter().filter(|&&s| s == strategy).count()
}

#[test]
fn learns_to_prefer_the_strategy_that_works_more_often() {
    let rates = [(Strategy::Rule, 0.8), (Strategy::Llm, 0.4)];
    for seed in 0..20 {
        let plays = play(seed, &rates, 300);
        let rule = share_of(Strategy::Rule, &plays[200..]);
        assert!(
            rule >= 85,
            "seed {seed}: rule chosen {rule} of the last 100 rounds"
        );
    }
    // Same rates, the other way round: it is the rates that matter, not the strategy order.
    let swapped = [(Strategy::Rule, 0.4), (Strategy::Llm, 0.8)];
    for seed in 0..20 {
        let plays = play(seed, &swapped, 300);
        let llm = share_of(Strategy::Llm, &plays[200..]);
        assert!(
            llm >= 85,
            "seed {seed}: llm chosen {llm} of the last 100 rounds"
        );
    }
}

#[test]
fn finds_the_best_of_four_strategies() {
    let rates = [
        (Strategy::Rule, 0.5),
        (Strategy::RevertToLastGood, 0.85),
        (Strategy::Llm, 0.4),
        (Strategy::LlmNarrowed, 0.6),
    ];
    for seed in 0..10 {
        let plays = play(seed, &rates, 500);
        let revert = share_of(Strategy::RevertToLastGood, &plays[400..]);
        assert!(
            revert >= 80,
            "seed {seed}: revert chosen {revert} of the last 100 rounds"
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_sequence() {
    let rates = [
        (Strategy::Rule, 0.6),
        (Strategy::Llm, 0.5),
        (Strategy::LlmNarrowed, 0.55),
    ];
    assert_eq!(play(42, &rates, 300), play(42, &rates, 300));
    assert_ne!(play(42, &rates, 300), play(43, &rates, 300));
}

#[test]
fn never_chooses_a_strategy_that_is_not_eligible() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut bandit = StrategyBandit::new(0);
    // Make the llm arm overwhelmingly good, so only eligibility keeps it out.
    for _ in 0..200 {
        bandit.record(CATEGORY, Strategy::Llm, true);
        bandit.record(CATEGORY, Strategy::Rule, false);
    }
    for _ in 0..500 {
        let subset: Vec<Strategy> = Strategy::ALL
            .into_iter()
            .filter(|_| rng.random_bool(0.5))
            .collect();
        match bandit.choose(CATEGORY, &subset, &mut rng) {
            Some(strategy) => assert!(subset.contains(&strategy), "{strategy} not in {subset:?}"),
            None => assert!(subset.is_empty()),
        }
    }
}

#[test]
fn stays_silent_until_the_category_has_enough_outcomes() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut bandit = StrategyBandit::new(5);
    let eligible = [Strategy::Rule, Strategy::Llm];
    for i in 0..4 {
        bandit.record(CATEGORY, Strategy::ALL[i % 4], i % 2 == 0);
        assert_eq!(
            bandit.choose(CATEGORY, &eligible, &mut rng),
            None,
            "after {} outcomes",
            i + 1
        );
    }
    // Outcomes of another category do not count towards this one.
    bandit.record("crash-loop", Strategy::Rule, true);
    assert_eq!(bandit.choose(CATEGORY, &eligible, &mut rng), None);

    bandit.record(CATEGORY, Strategy::Rule, true);
    assert!(bandit.choose(CATEGORY, &eligible, &mut rng).is_some());
    assert_eq!(bandit.choose(CATEGORY, &[], &mut rng), None);
    assert_eq!(bandit.choose("crash-loop", &eligible, &mut rng), None);
}

#[test]
fn stats_report_counts_and_posterior_means_per_strategy() {
    let mut bandit = StrategyBandit::new(0);
    for success in [true, true, true, false] {
        bandit.record(CATEGORY, Strategy::Rule, success);
    }
    bandit.record(CATEGORY, Strategy::Llm, false);
    bandit.record("crash-loop", Strategy::Llm, true);

    let stats = bandit.stats(CATEGORY);
    let arm = |strategy, successes, failures, posterior_mean| ArmStats {
        strategy,
        successes,
        failures,
        posterior_mean,
    };
    assert_eq!(
        stats,
        [
            arm(Strategy::Rule, 3, 1, 4.0 / 6.0),
            arm(Strategy::RevertToLastGood, 0, 0, 0.5),
            arm(Strategy::Llm, 0, 1, 1.0 / 3.0),
            arm(Strategy::LlmNarrowed, 0, 0, 0.5),
        ]
    );
    let json = serde_json::to_value(stats[0]).unwrap();
    assert_eq!(json["strategy"], "rule");
    assert_eq!(json["successes"], 3);
}

/// A bandit that has seen `strategy` work and every other strategy fail, many times.
fn convinced_of(strategy: Strategy) -> StrategyBandit {
    let mut bandit = StrategyBandit::new(10);
    for _ in 0..100 {
        for s in Strategy::ALL {
            bandit.record(CATEGORY, s, s == strategy);
        }
    }
    bandit
}

#[test]
fn a_learned_strategy_is_chosen_even_off_the_pareto_front() {
    // The rule dominates the LLM patch, but the LLM's fixes are the ones that have worked.
    let candidates = [
        raise_limit(),
        Candidate {
            risk: 0.4,
            evidence: 0.5,
            ..llm_patch()
        },
        Candidate {
            risk: 0.5,
            tokens: 3000,
            evidence: 0.5,
            ..candidate("llm:b", Strategy::Llm)
        },
    ];
    let deterministic = pick(&candidates);
    assert_eq!(deterministic.chosen, Some(0));
    assert_eq!(deterministic.verdicts[1], Verdict::Dominated { by: 0 });

    let bandit = convinced_of(Strategy::Llm);
    let mut rng = StdRng::seed_from_u64(9);
    let choice = pick_with_bandit(&candidates, &bandit, CATEGORY, &mut rng);

    assert_eq!(
        choice.chosen,
        Some(1),
        "the best-ranked candidate of the learned strategy"
    );
    assert_eq!(choice.learned, Some(Strategy::Llm));
    assert_eq!(choice.verdicts[1], Verdict::Chosen { learned: true });
    assert_eq!(choice.verdicts[0], Verdict::OtherStrategy { by: 1 });
    assert_eq!(choice.verdicts[2], Verdict::Dominated { by: 0 });
    assert_eq!(
        choice.verdicts[1].reason(&candidates, 1),
        "chosen: learned outcomes for this alert category favour strategy llm"
    );
    assert_eq!(
        choice.verdicts[0].reason(&candidates, 0),
        "learned outcomes for this alert category favour strategy llm over rule"
    );
}

#[test]
fn learning_never_overrides_the_safety_gate() {
    let candidates = [
        Candidate {
            validation_passed: false,
            problems: vec!["privileged container".to_owned()],
            ..llm_patch()
        },
        Candidate {
            risk: 0.6,
            ..raise_limit()
        },
        Candidate {
            risk: 0.7,
            ..revert()
        },
    ];
    let bandit = convinced_of(Strategy::Llm);
    for seed in 0..50 {
        let mut rng = StdRng::seed_from_u64(seed);
        let choice = pick_with_bandit(&candidates, &bandit, CATEGORY, &mut rng);
        let chosen = choice.chosen.expect("two candidates pass");
        assert_ne!(chosen, 0, "seed {seed}");
        assert_ne!(choice.learned, Some(Strategy::Llm), "seed {seed}");
        assert!(matches!(choice.verdicts[0], Verdict::Rejected { .. }));
    }
}

#[test]
fn cold_start_keeps_the_deterministic_pick() {
    let candidates = [
        llm_patch(),
        raise_limit(),
        Candidate {
            risk: 0.1,
            ..revert()
        },
    ];
    let mut bandit = StrategyBandit::new(10);
    for _ in 0..9 {
        bandit.record(CATEGORY, Strategy::Llm, true);
    }
    let mut rng = StdRng::seed_from_u64(0);
    assert_eq!(
        pick_with_bandit(&candidates, &bandit, CATEGORY, &mut rng),
        pick(&candidates)
    );
}
