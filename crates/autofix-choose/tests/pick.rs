//! The deterministic pick: each criterion of the documented order decides one scenario, the
//! safety gate overrides every score, and dominated candidates name a front member.

mod common;

use autofix_choose::{Candidate, Choice, Criterion, Strategy, Verdict, pick};
use common::{candidate, chosen_id, llm_patch, raise_limit, revert};

fn reasons(candidates: &[Candidate], choice: &Choice) -> Vec<String> {
    (0..candidates.len())
        .map(|i| choice.verdicts[i].reason(candidates, i))
        .collect()
}

#[test]
fn lowest_risk_wins_over_a_smaller_or_better_evidenced_fix() {
    let candidates = [
        Candidate {
            risk: 0.34,
            fields_changed: 1,
            ..revert()
        },
        Candidate {
            risk: 0.21,
            fields_changed: 2,
            ..raise_limit()
        },
        Candidate {
            risk: 0.40,
            ..llm_patch()
        },
    ];
    let choice = pick(&candidates);

    assert_eq!(choice.chosen, Some(1));
    assert_eq!(choice.learned, None);
    assert_eq!(choice.verdicts[1], Verdict::Chosen { learned: false });
    for loser in [0, 2] {
        assert_eq!(
            choice.verdicts[loser],
            Verdict::OutRanked {
                by: 1,
                criterion: Criterion::Risk
            }
        );
    }
    let reasons = reasons(&candidates, &choice);
    assert_eq!(reasons[0], "lower risk wins: 0.21 vs 0.34");
    assert_eq!(reasons[2], "lower risk wins: 0.21 vs 0.40");
}

#[test]
fn blast_radius_decides_between_equal_risks() {
    // Both on the front: the revert is smaller, the rule better evidenced. Without the
    // blast-radius step the revert would win on fields.
    let narrow_rule = [
        Candidate {
            blast_radius: 0.6,
            ..revert()
        },
        Candidate {
            blast_radius: 0.2,
            fields_changed: 2,
            evidence: 0.95,
            ..raise_limit()
        },
    ];
    let choice = pick(&narrow_rule);
    assert_eq!(
        chosen_id(&narrow_rule, &choice).as_deref(),
        Some("rule:memory-limit")
    );
    assert_eq!(
        choice.verdicts[0],
        Verdict::OutRanked {
            by: 1,
            criterion: Criterion::BlastRadius
        }
    );
    assert_eq!(
        choice.verdicts[0].reason(&narrow_rule, 0),
        "smaller blast radius wins: 0.20 vs 0.60"
    );

    let narrow_revert = [
        Candidate {
            blast_radius: 0.1,
            ..revert()
        },
        Candidate {
            blast_radius: 0.2,
            fields_changed: 2,
            evidence: 0.95,
            ..raise_limit()
        },
    ];
    assert_eq!(pick(&narrow_revert).chosen, Some(0));
}

#[test]
fn scores_equal_up_to_float_noise_tie_and_fall_through() {
    // 0.1 + 0.2 is 0.30000000000000004: compared exactly, the rule's risk is lower; on the
    // grid the risks tie and blast radius decides.
    let candidates = [
        Candidate {
            risk: 0.1 + 0.2,
            blast_radius: 0.4,
            ..revert()
        },
        Candidate {
            risk: 0.3,
            blast_radius: 0.5,
            elapsed_ms: 5,
            ..raise_limit()
        },
    ];
    let choice = pick(&candidates);
    assert_eq!(choice.chosen, Some(0));
    assert_eq!(
        choice.verdicts[1],
        Verdict::OutRanked {
            by: 0,
            criterion: Criterion::BlastRadius
        }
    );
}

#[test]
fn fewer_fields_then_fewer_lines_decide_between_equal_risk_and_blast_radius() {
    // The revert changes fewer fields but more lines: fields come first. (The rule was quicker
    // to produce, so the revert does not dominate it.)
    let fields = [
        Candidate {
            fields_changed: 1,
            lines_changed: 5,
            elapsed_ms: 500,
            ..revert()
        },
        Candidate {
            fields_changed: 2,
            lines_changed: 2,
            ..raise_limit()
        },
    ];
    let choice = pick(&fields);
    assert_eq!(choice.chosen, Some(0));
    assert_eq!(
        choice.verdicts[1],
        Verdict::OutRanked {
            by: 0,
            criterion: Criterion::Fields
        }
    );
    assert_eq!(
        choice.verdicts[1].reason(&fields, 1),
        "fewer fields changed wins: 1 vs 2"
    );

    let lines = [
        Candidate {
            fields_changed: 1,
            lines_changed: 3,
            ..revert()
        },
        Candidate {
            fields_changed: 1,
            lines_changed: 1,
            ..raise_limit()
        },
    ];
    let choice = pick(&lines);
    assert_eq!(choice.chosen, Some(1));
    assert_eq!(
        choice.verdicts[0],
        Verdict::OutRanked {
            by: 1,
            criterion: Criterion::Lines
        }
    );
}

#[test]
fn lower_cost_decides_between_equal_risk_blast_radius_and_size() {
    let same_size = |c: Candidate| Candidate {
        fields_changed: 2,
        lines_changed: 2,
        ..c
    };
    let tokens = [
        same_size(llm_patch()),
        same_size(Candidate {
            tokens: 0,
            elapsed_ms: 9000,
            ..raise_limit()
        }),
    ];
    let choice = pick(&tokens);
    assert_eq!(
        chosen_id(&tokens, &choice).as_deref(),
        Some("rule:memory-limit")
    );
    assert_eq!(
        choice.verdicts[0],
        Verdict::OutRanked {
            by: 1,
            criterion: Criterion::Tokens
        }
    );
    assert_eq!(
        choice.verdicts[0].reason(&tokens, 0),
        "fewer LLM tokens wins: 0 vs 1800"
    );

    let time = [
        same_size(Candidate {
            tokens: 900,
            elapsed_ms: 5000,
            ..llm_patch()
        }),
        same_size(Candidate {
            tokens: 900,
            elapsed_ms: 2000,
            evidence: 0.7,
            ..candidate("llm-narrowed:cart", Strategy::LlmNarrowed)
        }),
    ];
    let choice = pick(&time);
    assert_eq!(choice.chosen, Some(1));
    assert_eq!(
        choice.verdicts[0],
        Verdict::OutRanked {
            by: 1,
            criterion: Criterion::Time
        }
    );
    assert_eq!(
        choice.verdicts[0].reason(&time, 0),
        "less time spent wins: 2000 ms vs 5000 ms"
    );
}

#[test]
fn identical_scores_fall_back_to_id_order() {
    let candidates = [
        candidate("rule:b", Strategy::Rule),
        candidate("rule:a", Strategy::Rule),
    ];
    let choice = pick(&candidates);
    assert_eq!(choice.chosen, Some(1));
    assert_eq!(
        choice.verdicts[0],
        Verdict::OutRanked {
            by: 1,
            criterion: Criterion::Id
        }
    );
    assert_eq!(
        choice.verdicts[0].reason(&candidates, 0),
        "tied on every score: rule:a sorts before rule:b"
    );
}

#[test]
fn a_candidate_failing_validation_is_never_chosen_even_when_best_on_every_score() {
    let unsafe_best = Candidate {
        validation_passed: false,
        problems: vec!["privileged container".to_owned()],
        risk: 0.01,
        blast_radius: 0.0,
        fields_changed: 0,
        lines_changed: 0,
        tokens: 0,
        elapsed_ms: 0,
        evidence: 1.0,
        ..llm_patch()
    };
    let candidates = [
        unsafe_best,
        Candidate {
            risk: 0.5,
            ..raise_limit()
        },
    ];
    let choice = pick(&candidates);

    assert_eq!(choice.chosen, Some(1));
    assert_eq!(
        choice.verdicts[0],
        Verdict::Rejected {
            problems: vec!["privileged container".to_owned()]
        }
    );
    assert_eq!(
        choice.verdicts[0].reason(&candidates, 0),
        "failed validation: privileged container"
    );
}

#[test]
fn a_non_finite_risk_fails_the_gate_even_when_validation_passed() {
    let candidates = [
        Candidate {
            risk: f64::NAN,
            ..revert()
        },
        Candidate {
            evidence: f64::INFINITY,
            ..llm_patch()
        },
        Candidate {
            risk: 0.9,
            ..raise_limit()
        },
    ];
    let choice = pick(&candidates);
    assert_eq!(choice.chosen, Some(2));
    for rejected in [0, 1] {
        let Verdict::Rejected { problems } = &choice.verdicts[rejected] else {
            panic!("expected a rejection, got {:?}", choice.verdicts[rejected]);
        };
        assert!(problems[0].contains("not finite"), "{problems:?}");
    }
}

#[test]
fn nothing_is_chosen_when_nothing_passes() {
    let failed = |c: Candidate| Candidate {
        validation_passed: false,
        ..c
    };
    let candidates = [failed(revert()), failed(raise_limit())];
    let choice = pick(&candidates);
    assert_eq!(choice.chosen, None);
    assert!(
        choice
            .verdicts
            .iter()
            .all(|v| matches!(v, Verdict::Rejected { .. }))
    );
    assert_eq!(
        choice.verdicts[0].reason(&candidates, 0),
        "failed validation: no problem recorded"
    );
    assert_eq!(pick(&[]).chosen, None);
}

#[test]
fn dominated_candidates_name_a_front_member_that_dominates_them() {
    // revert dominates the rule (same everything, stronger evidence), and the rule dominates
    // the narrowed LLM patch; the LLM patch is on the front through its evidence.
    let candidates = [
        Candidate {
            risk: 0.4,
            fields_changed: 4,
            tokens: 600,
            evidence: 0.5,
            ..candidate("llm-narrowed:cart", Strategy::LlmNarrowed)
        },
        raise_limit(),
        Candidate {
            risk: 0.3,
            ..llm_patch()
        },
        revert(),
    ];
    let choice = pick(&candidates);

    assert_eq!(choice.chosen, Some(3));
    assert_eq!(choice.verdicts[1], Verdict::Dominated { by: 3 });
    assert_eq!(choice.verdicts[0], Verdict::Dominated { by: 3 });
    assert_eq!(
        choice.verdicts[2],
        Verdict::OutRanked {
            by: 3,
            criterion: Criterion::Risk
        }
    );
    let reasons = reasons(&candidates, &choice);
    assert_eq!(
        reasons[1],
        "dominated by revert:cart (no better on any objective, worse on evidence)"
    );
    assert_eq!(
        reasons[0],
        "dominated by revert:cart (no better on any objective, worse on risk, size, cost, evidence)"
    );
    assert_eq!(choice.ranking(&candidates), [3, 2, 1, 0]);
}

#[test]
fn blast_radius_is_not_an_objective_so_it_does_not_shield_from_dominance() {
    let candidates = [
        Candidate {
            blast_radius: 0.1,
            ..raise_limit()
        },
        Candidate {
            blast_radius: 0.9,
            ..revert()
        },
    ];
    let choice = pick(&candidates);
    // The rule ranks first on blast radius but the revert dominates it.
    assert_eq!(choice.chosen, Some(1));
    assert_eq!(choice.verdicts[0], Verdict::Dominated { by: 1 });
}

#[test]
fn the_choice_serializes_for_tracking() {
    let candidates = [
        Candidate {
            validation_passed: false,
            problems: vec!["bad".into()],
            ..llm_patch()
        },
        Candidate {
            risk: 0.1,
            ..raise_limit()
        },
        revert(),
    ];
    let choice = pick(&candidates);
    let json = serde_json::to_value(&choice).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "chosen": 1,
            "learned": null,
            "verdicts": [
                { "verdict": "rejected", "problems": ["bad"] },
                { "verdict": "chosen", "learned": false },
                { "verdict": "out-ranked", "by": 1, "criterion": "risk" },
            ]
        })
    );
    let back: Choice = serde_json::from_value(json).unwrap();
    assert_eq!(back, choice);
}

#[test]
fn strategies_round_trip_through_their_names() {
    for strategy in Strategy::ALL {
        assert_eq!(strategy.as_str().parse::<Strategy>(), Ok(strategy));
        assert_eq!(strategy.to_string(), strategy.as_str());
        assert_eq!(
            serde_json::to_value(strategy).unwrap(),
            serde_json::Value::String(strategy.as_str().to_owned())
        );
    }
    let err = "gpt".parse::<Strategy>().unwrap_err();
    assert!(err.to_string().contains("unknown strategy `gpt`"));
}
