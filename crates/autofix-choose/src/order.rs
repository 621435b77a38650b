//! How two candidates compare: Pareto dominance and the documented tie-break order.
//!
//! Scores are compared on a grid of [`SCORE_GRID`] rather than with a tolerance: values equal up
//! to float noise (0.1 + 0.2 against 0.3) land on the same grid point and tie, so the next
//! criterion decides, and the order stays transitive, which a tolerance would not (with a
//! tolerance, a ≈ b and b ≈ c do not imply a ≈ c, and a "best" candidate may not exist).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::Candidate;

/// Resolution at which risk, blast radius and evidence are compared (scores are in 0..=1).
pub const SCORE_GRID: f64 = 1e-9;

/// One step of the order that ranks the candidates on the Pareto front, in the order applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Criterion {
    /// Lower overall risk.
    Risk,
    /// Smaller blast radius.
    BlastRadius,
    /// Fewer manifest fields changed.
    Fields,
    /// Fewer lines changed.
    Lines,
    /// Fewer LLM tokens spent.
    Tokens,
    /// Less time spent producing the fix.
    Time,
    /// Stronger evidence.
    Evidence,
    /// Identifier order, so equal candidates still rank deterministically.
    Id,
}

impl Criterion {
    /// What wins under this criterion, for humans: "lower risk", "fewer lines changed".
    pub fn label(self) -> &'static str {
        match self {
            Criterion::Risk => "lower risk",
            Criterion::BlastRadius => "smaller blast radius",
            Criterion::Fields => "fewer fields changed",
            Criterion::Lines => "fewer lines changed",
            Criterion::Tokens => "fewer LLM tokens",
            Criterion::Time => "less time spent",
            Criterion::Evidence => "stronger evidence",
            Criterion::Id => "identifier order",
        }
    }
}

/// Compares `a` with `b` in rank order (`Less`: `a` ranks first) and names the first criterion
/// that tells them apart; [`Criterion::Id`] with `Equal` when nothing does.
pub(crate) fn rank(a: &Candidate, b: &Candidate) -> (Ordering, Criterion) {
    let steps = [
        (Criterion::Risk, grid(a.risk).cmp(&grid(b.risk))),
        (
            Criterion::BlastRadius,
            grid(a.blast_radius).cmp(&grid(b.blast_radius)),
        ),
        (Criterion::Fields, a.fields_changed.cmp(&b.fields_changed)),
        (Criterion::Lines, a.lines_changed.cmp(&b.lines_changed)),
        (Criterion::Tokens, a.tokens.cmp(&b.tokens)),
        (Criterion::Time, a.elapsed_ms.cmp(&b.elapsed_ms)),
        // Reversed: more evidence ranks first.
        (Criterion::Evidence, grid(b.evidence).cmp(&grid(a.evidence))),
        (Criterion::Id, a.id.cmp(&b.id)),
    ];
    steps
        .into_iter()
        .map(|(criterion, ordering)| (ordering, criterion))
        .find(|(ordering, _)| ordering.is_ne())
        .unwrap_or((Ordering::Equal, Criterion::Id))
}

/// The objectives of the Pareto front. Blast radius is not one: it is part of the risk score
/// already, and only breaks ties between candidates on the front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Objective {
    Risk,
    /// Fields changed, then lines changed.
    Size,
    /// LLM tokens, then elapsed time.
    Cost,
    Evidence,
}

impl Objective {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Objective::Risk => "risk",
            Objective::Size => "size",
            Objective::Cost => "cost",
            Objective::Evidence => "evidence",
        }
    }
}

/// Per objective, how `a` compares with `b` (`Less`: `a` is better).
fn objectives(a: &Candidate, b: &Candidate) -> [(Objective, Ordering); 4] {
    [
        (Objective::Risk, grid(a.risk).cmp(&grid(b.risk))),
        (
            Objective::Size,
            (a.fields_changed, a.lines_changed).cmp(&(b.fields_changed, b.lines_changed)),
        ),
        (
            Objective::Cost,
            (a.tokens, a.elapsed_ms).cmp(&(b.tokens, b.elapsed_ms)),
        ),
        (Objective::Evidence, grid(b.evidence).cmp(&grid(a.evidence))),
    ]
}

/// Whether `a` dominates `b`: no worse on any objective and better on at least one.
pub(crate) fn dominates(a: &Candidate, b: &Candidate) -> bool {
    let objectives = objectives(a, b);
    objectives.iter().all(|(_, ordering)| ordering.is_le())
        && objectives.iter().any(|(_, ordering)| ordering.is_lt())
}

/// The objectives on which `a` is strictly better than `b`.
pub(crate) fn better_on(a: &Candidate, b: &Candidate) -> Vec<Objective> {
    objectives(a, b)
        .into_iter()
        .filter(|(_, ordering)| ordering.is_lt())
        .map(|(objective, _)| objective)
        .collect()
}

/// The grid point of a score. Only called on finite scores (the safety gate guarantees it);
/// the cast saturates for huge values, which keeps the order monotonic.
fn grid(score: f64) -> i64 {
    (score / SCORE_GRID).round() as i64
}
