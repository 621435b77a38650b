//! Learning, per alert category, which strategy produces fixes that work.
//!
//! Each (category, strategy) pair is an arm of a Bernoulli bandit: a fix either worked or did
//! not. Thompson sampling keeps a Beta(1 + successes, 1 + failures) posterior per arm (a uniform
//! prior), draws one sample from each eligible arm and plays the highest. Arms with few outcomes
//! have wide posteriors and sometimes draw high, which is how they keep being explored; arms
//! with many outcomes draw close to their success rate, which is how the best one wins.

use std::collections::BTreeMap;

use rand::Rng;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

use crate::Strategy;

/// Outcome counts per alert category and strategy, and the cold-start threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyBandit {
    counts: BTreeMap<String, BTreeMap<Strategy, Counts>>,
    min_outcomes: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    successes: u32,
    failures: u32,
}

/// What has been learned about one strategy in one alert category.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArmStats {
    /// The strategy.
    pub strategy: Strategy,
    /// Fixes of this strategy that worked.
    pub successes: u32,
    /// Fixes of this strategy that did not.
    pub failures: u32,
    /// Mean of the Beta(1 + successes, 1 + failures) posterior: the expected success rate,
    /// 0.5 before any outcome.
    pub posterior_mean: f64,
}

impl StrategyBandit {
    /// A bandit that stays silent for a category until it has `min_outcomes` outcomes in total,
    /// so a handful of early results cannot override the deterministic pick.
    pub fn new(min_outcomes: u32) -> Self {
        StrategyBandit {
            counts: BTreeMap::new(),
            min_outcomes,
        }
    }

    /// The cold-start threshold given to [`StrategyBandit::new`].
    pub fn min_outcomes(&self) -> u32 {
        self.min_outcomes
    }

    /// Records whether a fix of `strategy` for an alert of `category` worked.
    pub fn record(&mut self, category: &str, strategy: Strategy, success: bool) {
        let counts = self
            .counts
            .entry(category.to_owned())
            .or_default()
            .entry(strategy)
            .or_default();
        if success {
            counts.successes += 1;
        } else {
            counts.failures += 1;
        }
    }

    /// Picks a strategy among `eligible` (the strategies of candidates that passed the safety
    /// gate) by Thompson sampling; `None` when `eligible` is empty or the category has fewer than
    /// `min_outcomes` outcomes in total (cold start: the caller keeps the deterministic pick).
    ///
    /// Arms are sampled in [`Strategy::ALL`] order whatever the order of `eligible`, so a seeded
    /// `rng` gives the same answer for the same counts.
    pub fn choose<R: Rng + ?Sized>(
        &self,
        category: &str,
        eligible: &[Strategy],
        rng: &mut R,
    ) -> Option<Strategy> {
        let total: u32 = Strategy::ALL
            .into_iter()
            .map(|strategy| self.counts(category, strategy).outcomes())
            .sum();
        if total < self.min_outcomes {
            return None;
        }
        let mut best: Option<(Strategy, f64)> = None;
        for strategy in Strategy::ALL.into_iter().filter(|s| eligible.contains(s)) {
            let draw = self.counts(category, strategy).posterior().sample(rng);
            if best.is_none_or(|(_, best_draw)| draw > best_draw) {
                best = Some((strategy, draw));
            }
        }
        best.map(|(strategy, _)| strategy)
    }

    /// One entry per strategy, in [`Strategy::ALL`] order, for reports and MLflow; strategies
    /// never tried in `category` show zero counts and the prior mean.
    pub fn stats(&self, category: &str) -> Vec<ArmStats> {
        Strategy::ALL
            .into_iter()
            .map(|strategy| {
                let counts = self.counts(category, strategy);
                ArmStats {
                    strategy,
                    successes: counts.successes,
                    failures: counts.failures,
                    posterior_mean: counts.posterior_mean(),
                }
            })
            .collect()
    }

    fn counts(&self, category: &str, strategy: Strategy) -> Counts {
        self.counts
            .get(category)
            .and_then(|arms| arms.get(&strategy))
            .copied()
            .unwrap_or_default()
    }
}

impl Counts {
    fn outcomes(self) -> u32 {
        self.successes + self.failures
    }

    /// The Beta(1 + successes, 1 + failures) posterior of the arm.
    fn posterior(self) -> Beta<f64> {
        let (alpha, beta) = self.beta_parameters();
        Beta::new(alpha, beta).expect("both Beta parameters are finite and at least 1")
    }

    /// Mean of the posterior, alpha / (alpha + beta).
    fn posterior_mean(self) -> f64 {
        let (alpha, beta) = self.beta_parameters();
        alpha / (alpha + beta)
    }

    fn beta_parameters(self) -> (f64, f64) {
        (
            1.0 + f64::from(self.successes),
            1.0 + f64::from(self.failures),
        )
    }
}
