//! Pool-adjacent-violators against textbook examples and properties.

mod common;

use autofix_calibrate::isotonic;
use common::Rng;
use proptest::prelude::*;

fn unit(ys: &[f64]) -> Vec<(f64, f64, f64)> {
    ys.iter()
        .enumerate()
        .map(|(i, &y)| (i as f64, y, 1.0))
        .collect()
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
    }
}

#[test]
fn textbook_example_pools_each_violating_pair() {
    let fit = isotonic(&unit(&[1.0, 3.0, 2.0, 4.0, 3.0, 5.0]));
    assert_close(&fit, &[1.0, 2.5, 2.5, 3.5, 3.5, 5.0]);
}

#[test]
fn a_late_drop_pools_back_over_several_blocks() {
    // 1 after 4, 5, 6 pools with 6 (3.5), then with 5 (4.0), which no longer violates 4.
    let fit = isotonic(&unit(&[4.0, 5.0, 6.0, 1.0, 7.0]));
    assert_close(&fit, &[4.0, 4.0, 4.0, 4.0, 7.0]);
    // Already monotone input is returned unchanged; decreasing input pools to its mean.
    assert_close(
        &isotonic(&unit(&[0.0, 1.0, 1.0, 2.0])),
        &[0.0, 1.0, 1.0, 2.0],
    );
    assert_close(&isotonic(&unit(&[3.0, 2.0, 1.0])), &[2.0, 2.0, 2.0]);
}

#[test]
fn weights_pull_the_pooled_value() {
    // Weighted mean of 3 (weight 1) and 1 (weight 3) is 1.5, not the unweighted 2.
    assert_close(&isotonic(&[(0.0, 3.0, 1.0), (1.0, 1.0, 3.0)]), &[1.5, 1.5]);
    // A point of weight 2 fits like two points of weight 1 at the same x.
    let weighted = isotonic(&[(0.0, 3.0, 1.0), (1.0, 1.0, 2.0), (2.0, 2.0, 1.0)]);
    let repeated = isotonic(&[
        (0.0, 3.0, 1.0),
        (1.0, 1.0, 1.0),
        (1.0, 1.0, 1.0),
        (2.0, 2.0, 1.0),
    ]);
    assert_close(&weighted, &[5.0 / 3.0, 5.0 / 3.0, 2.0]);
    assert_close(&repeated, &[5.0 / 3.0, 5.0 / 3.0, 5.0 / 3.0, 2.0]);
}

#[test]
fn unsorted_input_is_fitted_in_x_order_and_returned_in_input_order() {
    let fit = isotonic(&[(3.0, 4.0, 1.0), (1.0, 1.0, 1.0), (2.0, 6.0, 1.0)]);
    assert_close(&fit, &[5.0, 1.0, 5.0]);
}

#[test]
fn equal_x_share_one_value_and_non_finite_points_get_nan() {
    let fit = isotonic(&[
        (1.0, 0.0, 1.0),
        (1.0, 1.0, 1.0),
        (f64::NAN, 1.0, 1.0),
        (2.0, 1.0, 1.0),
    ]);
    assert_eq!(fit[0], fit[1]);
    assert!((fit[0] - 0.5).abs() < 1e-12);
    assert!(fit[2].is_nan());
    assert!((fit[3] - 1.0).abs() < 1e-12);
}

fn check_properties(points: &[(f64, f64, f64)]) {
    let fit = isotonic(points);
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| points[a].0.total_cmp(&points[b].0));
    for w in order.windows(2) {
        assert!(
            fit[w[0]] <= fit[w[1]] + 1e-9,
            "not monotone at x={} -> {}: {points:?} -> {fit:?}",
            points[w[0]].0,
            points[w[1]].0
        );
    }
    // Pooling keeps the weighted total.
    let total_y: f64 = points.iter().map(|p| p.1 * p.2).sum();
    let total_fit: f64 = points.iter().zip(&fit).map(|(p, f)| f * p.2).sum();
    assert!((total_y - total_fit).abs() < 1e-6 * (1.0 + total_y.abs()));
}

#[test]
fn random_inputs_fit_monotone_with_a_fixed_seed() {
    let mut rng = Rng::new(7);
    for _ in 0..500 {
        let n = 1 + (rng.next_f64() * 40.0) as usize;
        let points: Vec<(f64, f64, f64)> = (0..n)
            .map(|_| {
                let x = (rng.next_f64() * 20.0).floor(); // ties on purpose
                (x, rng.next_f64() * 10.0 - 5.0, 0.1 + rng.next_f64() * 5.0)
            })
            .collect();
        check_properties(&points);
    }
}

proptest! {
    #[test]
    fn fit_is_monotone_and_keeps_the_weighted_total(
        points in prop::collection::vec((0u8..30, -100.0f64..100.0, 0.01f64..10.0), 0..60)
    ) {
        let points: Vec<(f64, f64, f64)> =
            points.into_iter().map(|(x, y, w)| (f64::from(x), y, w)).collect();
        check_properties(&points);
    }
}
