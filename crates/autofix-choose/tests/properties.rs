//! Properties of the pick over random candidate sets, checked against a direct restatement of
//! the documented rules. Scores are drawn from a coarse grid so ties are frequent and the
//! restatement can compare them exactly.

use std::cmp::Ordering;

use autofix_choose::{Candidate, Strategy, StrategyBandit, Verdict, pick, pick_with_bandit};
use proptest::prelude::*;
// Named apart from the fix `Strategy` this crate is about.
use proptest::strategy::Strategy as PropStrategy;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn score() -> impl PropStrategy<Value = f64> {
    (0u8..=4).prop_map(|k| f64::from(k) / 4.0)
}

fn arb_candidate() -> impl PropStrategy<Value = Candidate> {
    (
        (
            prop::sample::select(Strategy::ALL.to_vec()),
            prop::bool::weighted(0.7),
            // A NaN risk now and then, which must fail the gate.
            prop_oneof![9 => score(), 1 => Just(f64::NAN)],
            score(),
        ),
        (
            0u32..3,
            0u32..3,
            prop::sample::select(vec![0u64, 500]),
            1u64..3,
            score(),
        ),
    )
        .prop_map(
            |(
                (strategy, validation_passed, risk, blast_radius),
                (fields, lines, tokens, ms, evidence),
            )| {
                Candidate {
                    id: String::new(),
                    strategy,
                    summary: "fix".to_owned(),
                    validation_passed,
                    problems: if validation_passed {
                        vec![]
                    } else {
                        vec!["unsafe".to_owned()]
                    },
                    risk,
                    blast_radius,
                    fields_changed: fields,
                    lines_changed: lines,
                    tokens,
                    elapsed_ms: ms,
                    evidence,
                }
            },
        )
}

fn arb_candidates() -> impl PropStrategy<Value = Vec<Candidate>> {
    prop::collection::vec(arb_candidate(), 0..7).prop_map(|mut candidates| {
        for (i, candidate) in candidates.iter_mut().enumerate() {
            candidate.id = format!("c{i}");
        }
        candidates
    })
}

fn passes(c: &Candidate) -> bool {
    c.validation_passed && c.risk.is_finite()
}

/// The objectives, each to minimise: risk, size, cost, negated evidence.
fn objectives(c: &Candidate) -> (f64, (u32, u32), (u64, u64), f64) {
    (
        c.risk,
        (c.fields_changed, c.lines_changed),
        (c.tokens, c.elapsed_ms),
        -c.evidence,
    )
}

fn dominates(a: &Candidate, b: &Candidate) -> bool {
    let (a, b) = (objectives(a), objectives(b));
    let no_worse = a.0 <= b.0 && a.1 <= b.1 && a.2 <= b.2 && a.3 <= b.3;
    let better = a.0 < b.0 || a.1 < b.1 || a.2 < b.2 || a.3 < b.3;
    no_worse && better
}

fn lexicographic(a: &Candidate, b: &Candidate) -> Ordering {
    let key = |c: &Candidate| {
        (
            c.risk,
            c.blast_radius,
            c.fields_changed,
            c.lines_changed,
            c.tokens,
            c.elapsed_ms,
            -c.evidence,
        )
    };
    key(a)
        .partial_cmp(&key(b))
        .unwrap()
        .then_with(|| a.id.cmp(&b.id))
}

fn front(candidates: &[Candidate]) -> Vec<usize> {
    (0..candidates.len())
        .filter(|&i| passes(&candidates[i]))
        .filter(|&i| {
            !candidates
                .iter()
                .any(|other| passes(other) && dominates(other, &candidates[i]))
        })
        .collect()
}

proptest! {
    #[test]
    fn the_pick_is_the_first_of_the_front_and_always_passed_validation(
        candidates in arb_candidates(),
    ) {
        let choice = pick(&candidates);
        let front = front(&candidates);
        prop_assert_eq!(choice.verdicts.len(), candidates.len());
        prop_assert_eq!(choice.chosen.is_none(), !candidates.iter().any(passes));
        prop_assert_eq!(choice.learned, None);

        if let Some(chosen) = choice.chosen {
            prop_assert!(passes(&candidates[chosen]));
            prop_assert!(front.contains(&chosen), "chosen {} is off the front {:?}", chosen, front);
            for &other in &front {
                prop_assert_ne!(
                    lexicographic(&candidates[other], &candidates[chosen]),
                    Ordering::Less,
                    "{} ranks before the chosen {}", other, chosen
                );
            }
        }
        for (i, verdict) in choice.verdicts.iter().enumerate() {
            match *verdict {
                Verdict::Chosen { learned } => {
                    prop_assert_eq!(Some(i), choice.chosen);
                    prop_assert!(!learned);
                }
                Verdict::Rejected { .. } => prop_assert!(!passes(&candidates[i])),
                Verdict::Dominated { by } => {
                    prop_assert!(front.contains(&by));
                    prop_assert!(dominates(&candidates[by], &candidates[i]));
                }
                Verdict::OutRanked { by, .. } => {
                    prop_assert!(front.contains(&i));
                    prop_assert_eq!(Some(by), choice.chosen);
                }
                Verdict::OtherStrategy { .. } => prop_assert!(false, "no learning in pick"),
            }
            prop_assert!(!verdict.reason(&candidates, i).is_empty());
        }
        let mut ranking = choice.ranking(&candidates);
        if let Some(chosen) = choice.chosen {
            prop_assert_eq!(ranking[0], chosen);
        }
        ranking.sort_unstable();
        prop_assert_eq!(ranking, (0..candidates.len()).collect::<Vec<_>>());
    }

    #[test]
    fn learned_picks_keep_the_gate_and_the_learned_strategy(
        candidates in arb_candidates(),
        outcomes in prop::collection::vec(
            (prop::sample::select(Strategy::ALL.to_vec()), any::<bool>()),
            0..40,
        ),
        seed in any::<u64>(),
    ) {
        let mut bandit = StrategyBandit::new(10);
        for (strategy, success) in outcomes {
            bandit.record("oom-killed", strategy, success);
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let choice = pick_with_bandit(&candidates, &bandit, "oom-killed", &mut rng);

        prop_assert_eq!(choice.chosen.is_none(), !candidates.iter().any(passes));
        match (choice.chosen, choice.learned) {
            (Some(chosen), Some(strategy)) => {
                prop_assert!(passes(&candidates[chosen]));
                prop_assert_eq!(candidates[chosen].strategy, strategy);
                for (i, other) in candidates.iter().enumerate() {
                    if passes(other) && other.strategy == strategy {
                        prop_assert_ne!(lexicographic(other, &candidates[chosen]), Ordering::Less, "{}", i);
                    }
                }
            }
            (_, None) => prop_assert_eq!(&choice, &pick(&candidates)),
            (None, Some(_)) => prop_assert!(false, "learned a strategy but chose nothing"),
        }
    }
}
