//! Weighing the candidate fixes of one diagnosis: the diagnoser's fix and its alternatives (a
//! revert to the last good rollout, the rules' fix next to the LLM's patch) are each placed in
//! the GitOps files and judged, then `autofix-choose` picks one: the safety gate first (a fix
//! that breaks validation or reaches the block threshold is never chosen), then the Pareto front
//! over risk, size, cost and evidence, ranked by lowest risk, smallest blast radius, fewest
//! changes, lowest cost (docs/risk-model.md). With [`crate::LearnedStrategies`], what fix
//! outcomes taught about each strategy for the category chooses among those that passed the gate.

use crate::report::{CandidatesReport, ConsideredCandidate};
use crate::target::Workspace;
use crate::{Pipeline, PipelineError, Plan};
use autofix_choose::{Candidate, Strategy};
use autofix_core::{Diagnosis, Evidence, Remediation, Verdict};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::PoisonError;

/// The fix a run goes on with.
pub(crate) struct Chosen {
    /// Its edits, when it could be placed.
    pub plan: Option<Plan>,
    /// Its validation and risk.
    pub verdict: Option<Verdict>,
    /// What was weighed, when there was more than one candidate.
    pub candidates: Option<CandidatesReport>,
    /// The strategy that produced the chosen fix.
    pub source: Option<Strategy>,
}

/// One candidate after placement and judgement.
struct Weighed {
    strategy: Strategy,
    remediation: Remediation,
    confidence: f64,
    /// The edits and their verdict, or why the fix cannot be placed in the repository.
    placed: Result<(Plan, Verdict), String>,
}

impl Pipeline {
    /// Places and judges every candidate fix of `diagnosis` and keeps the one picked, which
    /// becomes `diagnosis.remediation`. When none passes the safety gate, the diagnoser's own
    /// fix is kept, so the refusal that follows names its problems; when it cannot be placed,
    /// the diagnosis is escalated with the reason.
    pub(crate) fn choose_fix(
        &self,
        workspace: &Workspace,
        evidence: &Evidence,
        diagnosis: &mut Diagnosis,
    ) -> Result<Chosen, PipelineError> {
        let mut weighed = Vec::new();
        for (strategy, remediation, confidence) in candidates_of(diagnosis) {
            let mut trial = diagnosis.clone();
            trial.remediation = Some(remediation.clone());
            let placed = self.remedy(workspace, evidence, &trial)?.map(|plan| {
                let verdict = self.judge(evidence, &trial, &plan);
                (plan, verdict)
            });
            weighed.push(Weighed {
                strategy,
                remediation,
                confidence,
                placed,
            });
        }
        let report = (weighed.len() > 1).then(|| self.pick(diagnosis, &weighed));
        let index = report.as_ref().and_then(|r| r.chosen_index).unwrap_or(0);
        if weighed.is_empty() {
            *diagnosis = diagnosis
                .clone()
                .escalate("The diagnosis carries no remediation.");
            return Ok(Chosen {
                plan: None,
                verdict: None,
                candidates: None,
                source: None,
            });
        }
        let chosen = weighed.swap_remove(index);
        let source = Some(chosen.strategy);
        diagnosis.remediation = Some(chosen.remediation);
        let (plan, verdict) = match chosen.placed {
            Ok((plan, verdict)) => (Some(plan), Some(verdict)),
            Err(reason) => {
                *diagnosis = diagnosis.clone().escalate(reason);
                (None, None)
            }
        };
        Ok(Chosen {
            plan,
            verdict,
            candidates: report,
            source,
        })
    }

    /// The pick among several weighed candidates, with the table for the pull request.
    fn pick(&self, diagnosis: &Diagnosis, weighed: &[Weighed]) -> CandidatesReport {
        let mut candidates: Vec<Candidate> = weighed
            .iter()
            .map(|w| self.candidate(diagnosis, w))
            .collect();
        // Ids name the strategy, numbered when one strategy offers several fixes.
        for i in 0..candidates.len() {
            let strategy = candidates[i].strategy;
            let same = candidates[..i]
                .iter()
                .filter(|c| c.strategy == strategy)
                .count();
            if same > 0 {
                candidates[i].id = format!("{strategy}-{}", same + 1);
            }
        }
        // Once outcomes say which strategy works for this category, they choose among the
        // strategies that passed the gate; before that (and without learning), the rank order.
        let category = diagnosis.category.as_str();
        let (choice, arms) = match &self.strategies {
            Some(learned) => {
                let bandit = learned.read().unwrap_or_else(PoisonError::into_inner);
                let mut rng = StdRng::seed_from_u64(seed(diagnosis));
                let choice =
                    autofix_choose::pick_with_bandit(&candidates, &bandit, category, &mut rng);
                (choice, bandit.stats(category))
            }
            None => (autofix_choose::pick(&candidates), Vec::new()),
        };
        let considered = candidates
            .iter()
            .zip(&choice.verdicts)
            .enumerate()
            .map(|(i, (c, verdict))| ConsideredCandidate {
                id: c.id.clone(),
                strategy: c.strategy.to_string(),
                summary: c.summary.clone(),
                passed: c.passes_gate(),
                risk: c.risk,
                verdict: verdict.reason(&candidates, i),
            })
            .collect();
        CandidatesReport {
            chosen: choice.chosen.map(|i| candidates[i].id.clone()),
            learned: choice.learned.map(|s| s.to_string()),
            arms,
            chosen_index: choice.chosen,
            considered,
            table: autofix_choose::markdown_table(&candidates, &choice),
        }
    }

    /// A weighed candidate in `autofix-choose`'s terms; reaching the block threshold fails the
    /// safety gate like a validation error.
    fn candidate(&self, diagnosis: &Diagnosis, w: &Weighed) -> Candidate {
        let mut problems = Vec::new();
        let (risk, blast_radius, lines_changed) = match &w.placed {
            Ok((plan, verdict)) => {
                problems.extend(verdict.validation.violations.iter().map(|v| v.to_string()));
                let block_at = self.config.risk.block_at;
                if verdict.risk.score >= block_at {
                    problems.push(format!(
                        "risk {:.2} at or above the block threshold {block_at:.2}",
                        verdict.risk.score
                    ));
                }
                (
                    verdict.risk.score,
                    verdict.risk.factors.blast_radius.value,
                    changed_lines(plan),
                )
            }
            Err(reason) => {
                problems.push(reason.clone());
                (1.0, 1.0, 0)
            }
        };
        let llm = matches!(w.strategy, Strategy::Llm | Strategy::LlmNarrowed);
        let (tokens, elapsed_ms) = if llm { spent(diagnosis) } else { (0, 0) };
        Candidate {
            id: w.strategy.to_string(),
            strategy: w.strategy,
            summary: w.remediation.strategy.clone(),
            validation_passed: problems.is_empty(),
            problems,
            risk,
            blast_radius,
            fields_changed: u32::try_from(w.remediation.changes.len()).unwrap_or(u32::MAX),
            lines_changed,
            tokens,
            elapsed_ms,
            evidence: w.confidence,
        }
    }
}

/// The random seed of an incident's pick: the same incident draws the same way, so a rerun
/// proposes the same fix.
fn seed(diagnosis: &Diagnosis) -> u64 {
    let w = &diagnosis.workload;
    let key = format!(
        "{}/{}/{}/{}",
        w.namespace, w.kind, w.name, diagnosis.category
    );
    u64::from_str_radix(&autofix_core::short_digest(key.as_bytes()), 16).unwrap_or(0)
}

/// The diagnoser's fix (with the strategy that produced it) and its alternatives.
fn candidates_of(diagnosis: &Diagnosis) -> Vec<(Strategy, Remediation, f64)> {
    let primary = diagnosis.remediation.iter().map(|r| {
        (
            primary_strategy(diagnosis, r),
            r.clone(),
            diagnosis.confidence,
        )
    });
    let alternatives = diagnosis.alternatives.iter().map(|a| {
        (
            a.source.parse().unwrap_or(Strategy::Rule),
            a.remediation.clone(),
            a.confidence,
        )
    });
    primary.chain(alternatives).collect()
}

/// Where the diagnoser's own fix came from: the LLM (narrowed when its accepted try was the
/// narrow-scope step), a rule's revert, or a rule's targeted fix.
fn primary_strategy(diagnosis: &Diagnosis, fix: &Remediation) -> Strategy {
    if diagnosis.diagnoser.starts_with("llm") {
        let narrowed = diagnosis
            .attempts
            .iter()
            .any(|a| a.outcome == "accepted" && a.stage == "narrow-scope");
        if narrowed {
            Strategy::LlmNarrowed
        } else {
            Strategy::Llm
        }
    } else if fix.strategy.starts_with("revert") {
        Strategy::RevertToLastGood
    } else {
        Strategy::Rule
    }
}

/// Tokens and milliseconds the diagnoser's tries cost.
fn spent(diagnosis: &Diagnosis) -> (u64, u64) {
    diagnosis.attempts.iter().fold((0, 0), |(tokens, ms), a| {
        let used = a.prompt_tokens.unwrap_or(0) + a.completion_tokens.unwrap_or(0);
        // Whole milliseconds are plenty for a tie-breaker.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let took = a.latency_ms.max(0.0) as u64;
        (tokens + used, ms + took)
    })
}

/// Lines added or removed across the plan's edits.
fn changed_lines(plan: &Plan) -> u32 {
    let lines: usize = plan
        .edits
        .iter()
        .map(|e| {
            similar::TextDiff::from_lines(&e.before, &e.after)
                .iter_all_changes()
                .filter(|c| c.tag() != similar::ChangeTag::Equal)
                .count()
        })
        .sum();
    u32::try_from(lines).unwrap_or(u32::MAX)
}
