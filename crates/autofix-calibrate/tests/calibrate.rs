//! Calibration scenarios: a known curve, hand-checked thresholds, and the refusals.

mod common;

use autofix_calibrate::{Calibration, CalibrationConfig, Decision, Outcome, calibrate};
use common::synthetic;

fn decisions(outcomes: &[Outcome]) -> Vec<Decision> {
    outcomes
        .iter()
        .enumerate()
        .map(|(i, &o)| Decision::new((i + 1) as f64 / 100.0, o))
        .collect()
}

fn assert_monotone(cal: &Calibration) {
    for w in cal.points.windows(2) {
        assert!(w[0].p_unsafe <= w[1].p_unsafe, "{:?}", cal.points);
        assert!(w[0].hi < w[1].lo, "{:?}", cal.points);
    }
}

#[test]
fn fit_follows_a_known_curve_and_threshold_is_where_the_analysis_puts_it() {
    let data = synthetic(20_000, 42, |r| r * r);
    let cal = calibrate(&data, &CalibrationConfig::default());
    assert_eq!(cal.decisions, 20_000);
    assert_monotone(&cal);
    assert_eq!(cal.points.iter().map(|b| b.count).sum::<usize>(), 20_000);
    for risk in [0.2, 0.5, 0.8, 0.95] {
        let fitted = cal.unsafe_rate_at(risk).expect("fitted");
        assert!(
            (fitted - risk * risk).abs() < 0.04,
            "at {risk}: fitted {fitted}, true {}",
            risk * risk
        );
    }
    // Risk uniform, P(unsafe) = r²: the unsafe rate below t is (1/t)∫₀ᵗ r² dr = t²/3,
    // which is 5% at t = √0.15 ≈ 0.387. Sampling moves it by about 0.01 at 20 000 decisions.
    let t = cal.threshold.expect("a threshold");
    assert!(
        (t.block_at - 0.15f64.sqrt()).abs() < 0.02,
        "block_at {}",
        t.block_at
    );
    assert!(
        t.safe_rate_below >= 0.95 && t.safe_rate_below < 0.96,
        "{t:?}"
    );
    // About block_at × 20 000 decisions lie below the cut.
    let expected = (t.block_at * 20_000.0) as usize;
    assert!(t.supporting.abs_diff(expected) < 300, "{t:?}");
    assert!(cal.reason.is_none());
}

#[test]
fn threshold_is_the_highest_cut_meeting_the_target() {
    // 30 safe then 10 unsafe at risks 0.01..0.40: below 0.32 are 30 safe + 1 unsafe (96.8%),
    // below 0.33 are 30 safe + 2 unsafe (93.75%).
    let mut outcomes = vec![Outcome::Merged; 30];
    outcomes.extend([Outcome::Rejected; 10]);
    let cal = calibrate(&decisions(&outcomes), &CalibrationConfig::default());
    let t = cal.threshold.expect("a threshold");
    assert_eq!(t.block_at, 32.0 / 100.0);
    assert_eq!((t.supporting, t.unsafe_below), (31, 1));
    assert!((t.safe_rate_below - 30.0 / 31.0).abs() < 1e-12);
    assert_eq!(cal.points.len(), 2);
    assert_eq!(
        (
            cal.points[1].lo,
            cal.points[1].count,
            cal.points[1].p_unsafe
        ),
        (31.0 / 100.0, 10, 1.0)
    );
}

#[test]
fn when_every_decision_meets_the_target_nothing_is_blocked() {
    let data = decisions(&[Outcome::Resolved; 40]);
    let t = calibrate(&data, &CalibrationConfig::default())
        .threshold
        .expect("a threshold");
    assert_eq!(
        (t.block_at, t.supporting, t.safe_rate_below),
        (1.0, 40, 1.0)
    );
}

#[test]
fn too_few_decisions_give_no_threshold_and_say_how_many() {
    let data = decisions(&[Outcome::Merged; 12]);
    let cal = calibrate(&data, &CalibrationConfig::default());
    assert_eq!(cal.threshold, None);
    let reason = cal.reason.as_deref().expect("a reason");
    assert!(reason.contains("12 recorded"), "{reason}");
    assert!(reason.contains("30 needed"), "{reason}");
    // The fit is still shown.
    assert_eq!(cal.points.len(), 1);
    assert!(
        cal.table()
            .contains("No threshold suggested: too few decisions")
    );
}

#[test]
fn too_few_decisions_below_the_cut_give_no_threshold() {
    let mut outcomes = vec![Outcome::Merged; 10];
    outcomes.extend([Outcome::Reverted; 30]);
    let cal = calibrate(&decisions(&outcomes), &CalibrationConfig::default());
    assert_eq!(cal.threshold, None);
    let reason = cal.reason.expect("a reason");
    assert!(reason.contains("by 10 decisions"), "{reason}");
    assert!(reason.contains("at least 20 needed"), "{reason}");
}

#[test]
fn no_cut_meeting_the_target_gives_no_threshold() {
    // Every fifth fix is unsafe, the first included: PAV pools everything to 20% unsafe.
    let outcomes: Vec<Outcome> = (0..50)
        .map(|i| {
            if i % 5 == 0 {
                Outcome::Recurred
            } else {
                Outcome::Merged
            }
        })
        .collect();
    let cal = calibrate(&decisions(&outcomes), &CalibrationConfig::default());
    assert_eq!(cal.threshold, None);
    assert_eq!(cal.points.len(), 1);
    let reason = cal.reason.expect("a reason");
    assert!(
        reason.starts_with("no cut meets the 95.0% target"),
        "{reason}"
    );
    assert!(reason.contains("80.0% safe"), "{reason}");
    // A laxer target finds one.
    let lax = CalibrationConfig {
        target_safe_rate: 0.8,
        ..CalibrationConfig::default()
    };
    assert!(calibrate(&decisions(&outcomes), &lax).threshold.is_some());
}

#[test]
fn an_invalid_target_is_the_reason() {
    let config = CalibrationConfig {
        target_safe_rate: 1.5,
        ..CalibrationConfig::default()
    };
    assert!(config.validate().is_err());
    let cal = calibrate(&decisions(&[Outcome::Merged; 40]), &config);
    assert_eq!(cal.threshold, None);
    assert!(cal.reason.expect("a reason").contains("target_safe_rate"));
}

#[test]
fn table_and_json_show_the_blocks_and_the_suggestion() {
    let mut outcomes = vec![Outcome::Merged; 30];
    outcomes.extend([Outcome::Rejected; 10]);
    let cal = calibrate(&decisions(&outcomes), &CalibrationConfig::default());
    let table = cal.table();
    assert!(table.contains("40 decisions, target 95.0%"), "{table}");
    assert!(table.contains("Suggested: block_at = 0.320"), "{table}");
    assert!(
        table.contains("set `block_at` in the `[risk]` section"),
        "{table}"
    );
    // One row per block: 0.010..0.300 all safe, 0.310..0.400 all unsafe.
    assert!(
        table.contains("    0.010     0.300        30       0      0.0%"),
        "{table}"
    );
    assert!(
        table.contains("    0.310     0.400        10      10    100.0%"),
        "{table}"
    );

    let json = serde_json::to_value(&cal).expect("serializes");
    assert_eq!(json["threshold"]["block_at"], 0.32);
    assert_eq!(json["threshold"]["supporting"], 31);
    assert_eq!(json["points"][1]["unsafe_count"], 10);
    assert!(json["reason"].is_null());
}
