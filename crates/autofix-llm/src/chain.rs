//! [`ChainDiagnoser`]: the rules first, then the LLM as the mode says.

use crate::config::DiagnosisMode;
use crate::engine::LlmDiagnoser;
use autofix_core::{Action, Category, Diagnosis, Evidence};
use autofix_diagnose::{DiagnoseError, Diagnoser, RuleDiagnoser};

/// Rules first, then the LLM per the mode. Resolved incidents (rules action `none`) never call
/// the LLM. In `llm` mode, when the LLM chain runs out without an accepted reply and the rules
/// had a fix, the rules' fix stands (the LLM's tries are kept in its attempts).
#[derive(Debug)]
pub struct ChainDiagnoser {
    rules: RuleDiagnoser,
    llm: Option<LlmDiagnoser>,
    mode: DiagnosisMode,
}

impl ChainDiagnoser {
    /// Chains `rules` and, unless the mode is `rules` or `llm` is `None`, the LLM.
    pub fn new(
        rules: RuleDiagnoser,
        llm: Option<LlmDiagnoser>,
        mode: DiagnosisMode,
    ) -> ChainDiagnoser {
        ChainDiagnoser { rules, llm, mode }
    }

    /// True when the LLM is asked about an incident the rules diagnosed as `rules`.
    fn wants_llm(&self, rules: &Diagnosis) -> bool {
        match self.mode {
            _ if rules.action == Action::None => false,
            DiagnosisMode::Rules => false,
            DiagnosisMode::RulesThenLlm => {
                rules.action == Action::Escalate || rules.category == Category::Unknown
            }
            DiagnosisMode::Llm => true,
        }
    }
}

#[async_trait::async_trait]
impl Diagnoser for ChainDiagnoser {
    async fn diagnose(&self, evidence: &Evidence) -> Result<Diagnosis, DiagnoseError> {
        let rules = self.rules.analyze(evidence);
        let Some(llm) = self.llm.as_ref().filter(|_| self.wants_llm(&rules)) else {
            return Ok(rules);
        };
        let answer = llm.diagnose_with(evidence, &rules).await;
        let none_accepted = answer.attempts.iter().all(|a| a.outcome != "accepted");
        if none_accepted && rules.action == Action::Pr {
            return Ok(Diagnosis {
                attempts: answer.attempts,
                ..rules
            });
        }
        Ok(answer)
    }
}
