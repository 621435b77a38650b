//! Candidates for the tests: a plausible passing fix per strategy, adjusted with struct update
//! syntax so each test shows only the scores it is about.

#![allow(dead_code)] // each test binary uses a different part

use autofix_choose::{Candidate, Strategy};

/// A passing candidate with middling scores; override what the test is about.
pub fn candidate(id: &str, strategy: Strategy) -> Candidate {
    Candidate {
        id: id.to_owned(),
        strategy,
        summary: format!("fix proposed by {strategy}"),
        validation_passed: true,
        problems: Vec::new(),
        risk: 0.25,
        blast_radius: 0.2,
        fields_changed: 1,
        lines_changed: 1,
        tokens: 0,
        elapsed_ms: 10,
        evidence: 0.8,
    }
}

/// Rolling back to the last good rollout: one field (the image), strong evidence it worked.
pub fn revert() -> Candidate {
    Candidate {
        summary: "roll back image shop/cart 1.4.2 -> 1.4.1".to_owned(),
        evidence: 0.9,
        ..candidate("revert:cart", Strategy::RevertToLastGood)
    }
}

/// The rule analyzer raising the memory limit.
pub fn raise_limit() -> Candidate {
    Candidate {
        summary: "raise the memory limit 128Mi -> 256Mi".to_owned(),
        ..candidate("rule:memory-limit", Strategy::Rule)
    }
}

/// An LLM patch: more edits, tokens and time.
pub fn llm_patch() -> Candidate {
    Candidate {
        summary: "raise limit and request, set GOMEMLIMIT".to_owned(),
        fields_changed: 3,
        lines_changed: 4,
        tokens: 1800,
        elapsed_ms: 4200,
        evidence: 0.95,
        ..candidate("llm:cart", Strategy::Llm)
    }
}

/// The id of the chosen candidate.
pub fn chosen_id(candidates: &[Candidate], choice: &autofix_choose::Choice) -> Option<String> {
    choice.chosen.map(|i| candidates[i].id.clone())
}
