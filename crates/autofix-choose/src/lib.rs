//! Chooses one fix among the candidates proposed for an incident, the way a careful SRE would,
//! explains the choice, and learns per alert category which strategy produces fixes that work.
//! Pure logic, no IO.
//!
//! A [`Candidate`] comes from a rule analyzer, a revert to the last good rollout, an LLM patch or
//! a narrowed-scope LLM patch, already validated and risk-scored. [`pick`](fn@pick) applies the safety
//! gate (a candidate that failed validation is never chosen), keeps the Pareto front over risk,
//! size, cost and evidence, and ranks it by the documented order of [`Criterion`]s. Every
//! candidate gets a [`Verdict`] with a one-line reason, and [`markdown_table`] lays them out for
//! the PR body. [`StrategyBandit`] learns from fix outcomes; [`pick_with_bandit`] lets it choose
//! the strategy once a category has enough outcomes.
//!
//! Layout:
//! - [`candidate`]: [`Candidate`], [`Strategy`] and the safety gate;
//! - [`order`]: Pareto dominance and the rank order ([`Criterion`]);
//! - [`pick`](mod@pick): [`pick`](fn@pick), [`pick_with_bandit`], [`Choice`] and [`Verdict`];
//! - [`bandit`]: [`StrategyBandit`], Thompson sampling per alert category;
//! - [`table`]: [`markdown_table`] for the PR body.

pub mod bandit;
pub mod candidate;
pub mod order;
pub mod pick;
pub mod table;

pub use bandit::{ArmStats, StrategyBandit};
pub use candidate::{Candidate, Strategy, UnknownStrategy};
pub use order::{Criterion, SCORE_GRID};
pub use pick::{Choice, Verdict, pick, pick_with_bandit};
pub use table::markdown_table;
