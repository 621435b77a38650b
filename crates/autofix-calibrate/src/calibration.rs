//! The calibration itself: the isotonic fit of P(unsafe | risk) and the suggested threshold.
//!
//! Decisions are sorted by risk, decisions with the same risk are grouped, and the groups'
//! unsafe rates are fitted by [pool-adjacent-violators](crate::pav) weighted by their counts.
//! The threshold is then the highest cut `block_at` such that the decisions with
//! `risk < block_at` (the fixes that would still be proposed) are safe at the target rate by
//! the fitted curve, provided enough decisions support it.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::csv::CalibrateError;
use crate::outcome::{Decision, Outcome};
use crate::pav;

/// Slack when comparing a safe rate with the target, so that 19 of 20 meets 95%.
const RATE_SLACK: f64 = 1e-9;

/// What a calibration aims for and how much evidence it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalibrationConfig {
    /// The share of proposed fixes (those below `block_at`) that must be safe, in (0, 1].
    /// Default 0.95.
    pub target_safe_rate: f64,
    /// Fewer decisions than this and no threshold is suggested. Default 30.
    pub min_decisions: usize,
    /// Fewer decisions below the suggested cut than this and no threshold is suggested.
    /// Default 20: the smallest count at which one unsafe fix still meets a 95% target.
    pub min_supporting: usize,
    /// The outcomes that count as safe. Default `merged` and `resolved` ([`Outcome::is_safe`]);
    /// a stricter team may count only `resolved`.
    pub safe_outcomes: Vec<Outcome>,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        CalibrationConfig {
            target_safe_rate: 0.95,
            min_decisions: 30,
            min_supporting: 20,
            safe_outcomes: Outcome::ALL.into_iter().filter(|o| o.is_safe()).collect(),
        }
    }
}

impl CalibrationConfig {
    /// Refuses a target outside (0, 1].
    pub fn validate(&self) -> Result<(), CalibrateError> {
        if !(self.target_safe_rate > 0.0 && self.target_safe_rate <= 1.0) {
            return Err(CalibrateError::Config {
                field: "target_safe_rate",
                reason: format!("{} is not in (0, 1]", self.target_safe_rate),
            });
        }
        Ok(())
    }
}

/// One step of the fitted curve: a run of decisions pooled to one P(unsafe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// The lowest risk in the block.
    pub lo: f64,
    /// The highest risk in the block.
    pub hi: f64,
    /// Decisions in the block.
    pub count: usize,
    /// Unsafe decisions in the block.
    pub unsafe_count: usize,
    /// The fitted P(unsafe) for risks in the block: `unsafe_count / count`.
    pub p_unsafe: f64,
}

/// A suggested `[risk] block_at` and the evidence for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// The cut: fixes at or above it would not be proposed.
    pub block_at: f64,
    /// The fitted safe rate of the decisions below the cut.
    pub safe_rate_below: f64,
    /// Decisions below the cut, on which `safe_rate_below` rests.
    pub supporting: usize,
    /// Of those, how many were observed unsafe.
    pub unsafe_below: usize,
}

/// The result of [`calibrate`]: the fitted curve and, when the data allows, a threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The fitted curve as blocks in order of risk; `p_unsafe` is non-decreasing.
    pub points: Vec<Block>,
    /// Decisions used (those with a finite risk).
    pub decisions: usize,
    /// The target the threshold was chosen for.
    pub target_safe_rate: f64,
    /// The outcomes counted as safe.
    pub safe_outcomes: Vec<Outcome>,
    /// The suggested threshold, if the data supports one.
    pub threshold: Option<Threshold>,
    /// Why there is no threshold, when there is none.
    pub reason: Option<String>,
}

/// Decisions sharing one risk value.
struct Group {
    risk: f64,
    count: usize,
    unsafe_count: usize,
}

/// Fits P(unsafe | risk) to the decisions and suggests the `block_at` meeting the target.
///
/// Decisions whose risk is not finite are left out.
pub fn calibrate(decisions: &[Decision], config: &CalibrationConfig) -> Calibration {
    let mut sorted: Vec<&Decision> = decisions.iter().filter(|d| d.risk.is_finite()).collect();
    sorted.sort_by(|a, b| a.risk.total_cmp(&b.risk));
    let mut groups: Vec<Group> = Vec::new();
    for d in sorted {
        let unsafe_one = usize::from(!config.safe_outcomes.contains(&d.outcome));
        match groups.last_mut() {
            Some(g) if g.risk == d.risk => {
                g.count += 1;
                g.unsafe_count += unsafe_one;
            }
            _ => groups.push(Group {
                risk: d.risk,
                count: 1,
                unsafe_count: unsafe_one,
            }),
        }
    }

    let rates: Vec<(f64, f64)> = groups
        .iter()
        .map(|g| (g.unsafe_count as f64 / g.count as f64, g.count as f64))
        .collect();
    let mut points = Vec::new();
    let mut fitted = vec![0.0; groups.len()];
    for pool in pav::pools(&rates) {
        let members = &groups[pool.start..pool.end];
        let count: usize = members.iter().map(|g| g.count).sum();
        let unsafe_count: usize = members.iter().map(|g| g.unsafe_count).sum();
        let p_unsafe = unsafe_count as f64 / count as f64;
        fitted[pool.start..pool.end].fill(p_unsafe);
        points.push(Block {
            lo: members[0].risk,
            hi: members[members.len() - 1].risk,
            count,
            unsafe_count,
            p_unsafe,
        });
    }
    let total: usize = groups.iter().map(|g| g.count).sum();

    let (threshold, reason) = match suggest(&groups, &fitted, &points, total, config) {
        Ok(t) => (Some(t), None),
        Err(reason) => (None, Some(reason)),
    };
    Calibration {
        points,
        decisions: total,
        target_safe_rate: config.target_safe_rate,
        safe_outcomes: config.safe_outcomes.clone(),
        threshold,
        reason,
    }
}

/// The highest cut meeting the target, or why there is none.
fn suggest(
    groups: &[Group],
    fitted: &[f64],
    points: &[Block],
    total: usize,
    config: &CalibrationConfig,
) -> Result<Threshold, String> {
    config.validate().map_err(|e| e.to_string())?;
    if total < config.min_decisions {
        return Err(format!(
            "too few decisions: {total} recorded, at least {} needed to suggest a threshold",
            config.min_decisions
        ));
    }
    // A cut at a group's risk keeps every group before it. The fitted curve is non-decreasing,
    // so the fitted unsafe rate below the cut only grows with the cut, and the cuts meeting the
    // target are a prefix: the last one that meets it is the highest.
    let mut best = None;
    let (mut below, mut unsafe_fitted, mut unsafe_seen) = (0usize, 0.0f64, 0usize);
    let mut consider = |cut: f64, below: usize, unsafe_fitted: f64, unsafe_seen: usize| {
        if below == 0 {
            return;
        }
        let safe_rate = 1.0 - unsafe_fitted / below as f64;
        if safe_rate + RATE_SLACK >= config.target_safe_rate {
            best = Some(Threshold {
                block_at: cut,
                safe_rate_below: safe_rate,
                supporting: below,
                unsafe_below: unsafe_seen,
            });
        }
    };
    for (g, &p) in groups.iter().zip(fitted) {
        consider(g.risk, below, unsafe_fitted, unsafe_seen);
        below += g.count;
        unsafe_fitted += p * g.count as f64;
        unsafe_seen += g.unsafe_count;
    }
    // Every decision below 1.0 (the highest block_at the config accepts) may be kept.
    if groups.last().is_some_and(|g| g.risk < 1.0) {
        consider(1.0, below, unsafe_fitted, unsafe_seen);
    }

    let target = percent(config.target_safe_rate);
    match best {
        Some(t) if t.supporting >= config.min_supporting => Ok(t),
        Some(t) => Err(format!(
            "too few decisions support a threshold: the {target} target is met only below \
             {:.3}, by {} decisions; at least {} needed",
            t.block_at, t.supporting, config.min_supporting
        )),
        None => Err(match points.first() {
            Some(b) => format!(
                "no cut meets the {target} target: even the lowest-risk block \
                 ({:.3} to {:.3}, {} decisions) is only {} safe",
                b.lo,
                b.hi,
                b.count,
                percent(1.0 - b.p_unsafe)
            ),
            None => format!("no cut meets the {target} target: there are no decisions"),
        }),
    }
}

/// A rate as a percentage with one decimal, e.g. `95.0%`.
pub(crate) fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

impl Calibration {
    /// The fitted P(unsafe) at a risk: the value of the last block starting at or below it
    /// (the first block's below the lowest risk seen); `None` without decisions.
    pub fn unsafe_rate_at(&self, risk: f64) -> Option<f64> {
        let first = self.points.first()?;
        Some(
            self.points
                .iter()
                .rev()
                .find(|b| b.lo <= risk)
                .unwrap_or(first)
                .p_unsafe,
        )
    }

    /// The calibration table for a terminal: one row per block, then the suggestion or the
    /// reason there is none.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Calibration of P(unsafe | risk): {} decisions, target {} safe below block_at\n",
            self.decisions,
            percent(self.target_safe_rate)
        );
        let _ = writeln!(
            out,
            "{:>9} {:>9} {:>9} {:>7} {:>9} {:>14}",
            "risk from", "risk to", "decisions", "unsafe", "P(unsafe)", "safe up to hi"
        );
        let (mut seen, mut unsafe_seen) = (0usize, 0usize);
        for b in &self.points {
            seen += b.count;
            unsafe_seen += b.unsafe_count;
            let _ = writeln!(
                out,
                "{:>9.3} {:>9.3} {:>9} {:>7} {:>9} {:>14}",
                b.lo,
                b.hi,
                b.count,
                b.unsafe_count,
                percent(b.p_unsafe),
                percent(1.0 - unsafe_seen as f64 / seen as f64)
            );
        }
        out.push('\n');
        match (&self.threshold, &self.reason) {
            (Some(t), _) => {
                let _ = writeln!(
                    out,
                    "Suggested: block_at = {:.3}. {} decisions lie below it ({} unsafe), {} safe \
                     by the fitted curve.",
                    t.block_at,
                    t.supporting,
                    t.unsafe_below,
                    percent(t.safe_rate_below)
                );
                if t.supporting == self.decisions {
                    out.push_str("The target holds over every decision: none needed blocking.\n");
                }
                out.push_str(
                    "Nothing has changed: to apply it, set `block_at` in the `[risk]` section \
                     of the config (keep review_at <= block_at).\n",
                );
            }
            (None, Some(reason)) => {
                let _ = writeln!(out, "No threshold suggested: {reason}.");
            }
            (None, None) => out.push_str("No threshold suggested.\n"),
        }
        out
    }
}
