//! The markdown table for the PR body.

mod common;

use autofix_choose::{Candidate, markdown_table, pick};
use common::{llm_patch, raise_limit, revert};

#[test]
fn lists_every_candidate_chosen_first_then_in_rank_order() {
    let candidates = [
        Candidate {
            validation_passed: false,
            problems: vec!["hostPath volume | not allowed".to_owned()],
            ..llm_patch()
        },
        Candidate {
            risk: 0.4,
            ..llm_patch()
        },
        Candidate {
            risk: 0.21,
            fields_changed: 2,
            ..raise_limit()
        },
        Candidate {
            risk: 0.3,
            ..revert()
        },
    ];
    let choice = pick(&candidates);
    let table = markdown_table(&candidates, &choice);
    let lines: Vec<&str> = table.lines().collect();

    assert_eq!(lines.len(), 2 + candidates.len(), "{table}");
    assert!(
        lines[0].starts_with("| candidate | source | risk |"),
        "{table}"
    );
    let rows = &lines[2..];
    for row in rows {
        assert_eq!(row.matches(" | ").count(), 7, "eight cells in {row}");
    }
    assert!(
        rows[0].starts_with("| **chosen** `rule:memory-limit`"),
        "{table}"
    );
    assert!(
        rows[0].contains("| rule | 0.21 | 0.20 | 2 / 1 | 0, 10 ms | 0.80 |"),
        "{table}"
    );
    assert!(rows[1].contains("`revert:cart`") && rows[1].contains("lower risk wins: 0.21 vs 0.30"));
    assert!(rows[2].contains("`llm:cart`") && rows[2].contains("lower risk wins: 0.21 vs 0.40"));
    assert!(
        rows[3].contains("failed validation: hostPath volume \\| not allowed"),
        "a pipe in a reason must not end the cell: {table}"
    );
    for candidate in &candidates {
        assert!(
            table.contains(&candidate.summary),
            "{} missing",
            candidate.id
        );
    }
}

#[test]
fn a_table_without_a_choice_still_lists_every_rejection() {
    let failed = |c: Candidate| Candidate {
        validation_passed: false,
        ..c
    };
    let candidates = [failed(revert()), failed(raise_limit())];
    let table = markdown_table(&candidates, &pick(&candidates));
    assert!(!table.contains("**chosen**"));
    // Rejected candidates are listed by id.
    let revert_row = table.find("`revert:cart`").unwrap();
    let rule_row = table.find("`rule:memory-limit`").unwrap();
    assert!(revert_row < rule_row, "{table}");
    assert_eq!(table.matches("failed validation").count(), 2);
}
