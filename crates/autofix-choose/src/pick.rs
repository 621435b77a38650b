//! The choice itself: safety gate, Pareto front, rank order, and a verdict for every candidate.
//!
//! [`pick`] is deterministic. [`pick_with_bandit`] lets learned per-category strategy statistics
//! choose the strategy once there are enough outcomes, and falls back to [`pick`] before that.

use std::cmp::Ordering;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::order::{self, Criterion};
use crate::{Candidate, Strategy, StrategyBandit};

/// Which candidate was chosen and why each one was or was not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Index of the chosen candidate; `None` when no candidate passed the safety gate.
    pub chosen: Option<usize>,
    /// The strategy learned outcome statistics chose, when they made the choice.
    pub learned: Option<Strategy>,
    /// One verdict per candidate, in the order the candidates were given.
    pub verdicts: Vec<Verdict>,
}

/// What became of one candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// This candidate is the fix to propose.
    Chosen {
        /// Whether learned strategy statistics made the choice (rather than the rank order).
        learned: bool,
    },
    /// Refused by the safety gate: never chosen, whatever its scores.
    Rejected {
        /// Why validation failed, or which score was not a finite number.
        problems: Vec<String>,
    },
    /// Another candidate is no worse on any objective and better on at least one.
    Dominated {
        /// Index of a candidate on the Pareto front that dominates this one.
        by: usize,
    },
    /// On the Pareto front, but the chosen candidate ranks first.
    OutRanked {
        /// Index of the chosen candidate.
        by: usize,
        /// The first criterion of the rank order that separates the two.
        criterion: Criterion,
    },
    /// Not dominated, but learned statistics chose another strategy for this alert category.
    OtherStrategy {
        /// Index of the chosen candidate.
        by: usize,
    },
}

impl Verdict {
    /// One line explaining the verdict on `candidates[index]`, for the PR body and logs.
    ///
    /// `candidates` must be the slice the choice was made from; panics on an index outside it.
    pub fn reason(&self, candidates: &[Candidate], index: usize) -> String {
        let this = &candidates[index];
        match self {
            Verdict::Chosen { learned: true } => format!(
                "chosen: learned outcomes for this alert category favour strategy {}",
                this.strategy
            ),
            Verdict::Chosen { learned: false } => {
                "chosen: first in rank order on the Pareto front".to_owned()
            }
            Verdict::Rejected { problems } => {
                format!("failed validation: {}", problems.join("; "))
            }
            Verdict::Dominated { by } => {
                let better: Vec<_> = order::better_on(&candidates[*by], this)
                    .into_iter()
                    .map(|objective| objective.label())
                    .collect();
                format!(
                    "dominated by {} (no better on any objective, worse on {})",
                    candidates[*by].id,
                    better.join(", ")
                )
            }
            Verdict::OutRanked { by, criterion } => outranked(&candidates[*by], this, *criterion),
            Verdict::OtherStrategy { by } => format!(
                "learned outcomes for this alert category favour strategy {} over {}",
                candidates[*by].strategy, this.strategy
            ),
        }
    }
}

/// "lower risk wins: 0.21 vs 0.34", the winner's value first.
fn outranked(winner: &Candidate, loser: &Candidate, criterion: Criterion) -> String {
    let (w, l) = match criterion {
        Criterion::Risk => scores(winner.risk, loser.risk),
        Criterion::BlastRadius => scores(winner.blast_radius, loser.blast_radius),
        Criterion::Evidence => scores(winner.evidence, loser.evidence),
        Criterion::Fields => (
            winner.fields_changed.to_string(),
            loser.fields_changed.to_string(),
        ),
        Criterion::Lines => (
            winner.lines_changed.to_string(),
            loser.lines_changed.to_string(),
        ),
        Criterion::Tokens => (winner.tokens.to_string(), loser.tokens.to_string()),
        Criterion::Time => (
            format!("{} ms", winner.elapsed_ms),
            format!("{} ms", loser.elapsed_ms),
        ),
        Criterion::Id if winner.id == loser.id => {
            return "tied on every score and id: the earlier candidate wins".to_owned();
        }
        Criterion::Id => {
            return format!(
                "tied on every score: {} sorts before {}",
                winner.id, loser.id
            );
        }
    };
    format!("{} wins: {w} vs {l}", criterion.label())
}

/// Two scores with two decimals, or as many as it takes to show they differ.
fn scores(a: f64, b: f64) -> (String, String) {
    (2..=9)
        .map(|decimals| (format!("{a:.decimals$}"), format!("{b:.decimals$}")))
        .find(|(a, b)| a != b)
        .unwrap_or_else(|| (format!("{a:.2}"), format!("{b:.2}")))
}

impl Choice {
    /// Candidate indices in rank order: the chosen one, then the others that passed the gate
    /// (undominated before dominated, each in rank order), then the rejected ones by id.
    pub fn ranking(&self, candidates: &[Candidate]) -> Vec<usize> {
        let mut indices: Vec<usize> = (0..candidates.len()).collect();
        indices.sort_by(|&a, &b| {
            let (verdict_a, verdict_b) = (&self.verdicts[a], &self.verdicts[b]);
            verdict_a.tier().cmp(&verdict_b.tier()).then_with(|| {
                if let Verdict::Rejected { .. } = verdict_a {
                    // Rejected scores may be NaN, so they are not ranked by them.
                    candidates[a].id.cmp(&candidates[b].id)
                } else {
                    order::rank(&candidates[a], &candidates[b]).0
                }
            })
        });
        indices
    }
}

impl Verdict {
    /// Where the candidate sorts in [`Choice::ranking`]: chosen, undominated, dominated, rejected.
    fn tier(&self) -> u8 {
        match self {
            Verdict::Chosen { .. } => 0,
            Verdict::OutRanked { .. } | Verdict::OtherStrategy { .. } => 1,
            Verdict::Dominated { .. } => 2,
            Verdict::Rejected { .. } => 3,
        }
    }
}

/// Chooses the candidate a careful SRE would: among those passing the safety gate, the
/// Pareto front over risk, size, cost and evidence, ranked by risk, blast radius, fields,
/// lines, tokens, time, evidence and finally id.
pub fn pick(candidates: &[Candidate]) -> Choice {
    let field = Field::new(candidates);
    let chosen = field.best(field.front.iter().copied());
    field.choice(chosen, None)
}

/// Like [`pick`], but once the alert category has enough recorded outcomes the bandit chooses
/// the strategy and the best gate-passing candidate of that strategy is chosen, even off the
/// Pareto front. The safety gate still holds: only strategies with a passing candidate are
/// offered to the bandit.
///
/// ```
/// use autofix_choose::{pick_with_bandit, StrategyBandit};
/// use rand::{SeedableRng, rngs::StdRng};
///
/// let bandit = StrategyBandit::new(20);
/// let mut rng = StdRng::seed_from_u64(7);
/// // Cold start: no outcomes yet, so this is the deterministic pick.
/// let choice = pick_with_bandit(&[], &bandit, "oom-killed", &mut rng);
/// assert_eq!(choice.chosen, None);
/// assert_eq!(choice.learned, None);
/// ```
pub fn pick_with_bandit<R: Rng + ?Sized>(
    candidates: &[Candidate],
    bandit: &StrategyBandit,
    category: &str,
    rng: &mut R,
) -> Choice {
    let field = Field::new(candidates);
    let eligible: Vec<Strategy> = field
        .passing
        .iter()
        .map(|&i| candidates[i].strategy)
        .collect();
    match bandit.choose(category, &eligible, rng) {
        Some(strategy) => {
            let of_strategy = field
                .passing
                .iter()
                .copied()
                .filter(|&i| candidates[i].strategy == strategy);
            field.choice(field.best(of_strategy), Some(strategy))
        }
        None => pick(candidates),
    }
}

/// The candidates sorted out by the safety gate and by dominance.
struct Field<'a> {
    candidates: &'a [Candidate],
    /// Indices of the candidates that pass the safety gate.
    passing: Vec<usize>,
    /// Indices of the passing candidates no other passing candidate dominates.
    front: Vec<usize>,
}

impl<'a> Field<'a> {
    fn new(candidates: &'a [Candidate]) -> Self {
        let passing: Vec<usize> = (0..candidates.len())
            .filter(|&i| candidates[i].passes_gate())
            .collect();
        let front = passing
            .iter()
            .copied()
            .filter(|&i| {
                !passing
                    .iter()
                    .any(|&j| order::dominates(&candidates[j], &candidates[i]))
            })
            .collect();
        Field {
            candidates,
            passing,
            front,
        }
    }

    /// The first of `indices` in rank order (the earliest given among full ties).
    fn best(&self, indices: impl Iterator<Item = usize>) -> Option<usize> {
        indices.min_by(|&a, &b| self.rank(a, b).0)
    }

    fn rank(&self, a: usize, b: usize) -> (Ordering, Criterion) {
        order::rank(&self.candidates[a], &self.candidates[b])
    }

    /// The best-ranked front member dominating `index`, if any. Dominance is transitive, so a
    /// dominated candidate is always dominated by some front member.
    fn dominated_by(&self, index: usize) -> Option<usize> {
        let dominators = self
            .front
            .iter()
            .copied()
            .filter(|&j| order::dominates(&self.candidates[j], &self.candidates[index]));
        self.best(dominators)
    }

    fn choice(&self, chosen: Option<usize>, learned: Option<Strategy>) -> Choice {
        let verdicts = (0..self.candidates.len())
            .map(|i| self.verdict(i, chosen, learned))
            .collect();
        Choice {
            chosen,
            learned,
            verdicts,
        }
    }

    fn verdict(&self, index: usize, chosen: Option<usize>, learned: Option<Strategy>) -> Verdict {
        let candidate = &self.candidates[index];
        if !candidate.passes_gate() {
            return Verdict::Rejected {
                problems: candidate.gate_problems(),
            };
        }
        if chosen == Some(index) {
            return Verdict::Chosen {
                learned: learned.is_some(),
            };
        }
        if let Some(by) = self.dominated_by(index) {
            return Verdict::Dominated { by };
        }
        let by = chosen.expect("a candidate passed the gate, so one was chosen");
        match learned {
            Some(strategy) if candidate.strategy != strategy => Verdict::OtherStrategy { by },
            _ => Verdict::OutRanked {
                by,
                criterion: self.rank(by, index).1,
            },
        }
    }
}
