//! The candidates and their verdicts as a GitHub-markdown table for the PR body.

use std::fmt::Write;

use crate::{Candidate, Choice, Verdict};

/// A markdown table of every candidate, the chosen one first and the rest in rank order:
/// candidate, source, risk, blast radius, size, cost, evidence, and the verdict with its reason.
///
/// `choice` must have been made from `candidates`.
pub fn markdown_table(candidates: &[Candidate], choice: &Choice) -> String {
    let mut table = String::from(
        "| candidate | source | risk | blast radius | size (fields / lines) | cost (tokens, time) | evidence | verdict |\n\
         |---|---|---:|---:|---:|---:|---:|---|\n",
    );
    for index in choice.ranking(candidates) {
        let c = &candidates[index];
        let verdict = &choice.verdicts[index];
        let mark = if matches!(verdict, Verdict::Chosen { .. }) {
            "**chosen** "
        } else {
            ""
        };
        // Writing to a String cannot fail.
        let _ = writeln!(
            table,
            "| {mark}`{}`: {} | {} | {:.2} | {:.2} | {} / {} | {}, {} ms | {:.2} | {} |",
            cell(&c.id),
            cell(&c.summary),
            c.strategy,
            c.risk,
            c.blast_radius,
            c.fields_changed,
            c.lines_changed,
            c.tokens,
            c.elapsed_ms,
            c.evidence,
            cell(&verdict.reason(candidates, index)),
        );
    }
    table
}

/// Text safe inside a table cell: a `|` would end the cell and a newline the row.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}
