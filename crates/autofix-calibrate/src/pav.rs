//! Pool-adjacent-violators: the weighted least-squares non-decreasing fit.
//!
//! Walking the points in order of `x`, each point starts a pool; while the previous pool's
//! mean is above the new one (a violation of monotonicity), the two are merged into one pool
//! whose value is their weighted mean. The result is the non-decreasing step function closest
//! to the points in weighted squared error; each pool's value is the weighted mean of its
//! points, so the fit keeps the total (Σ w·y) of every pool.

/// A run of consecutive points fitted to one value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pool {
    /// Index of the first point of the run.
    pub start: usize,
    /// Index one past the last point of the run.
    pub end: usize,
    weight: f64,
    weighted_sum: f64,
    plain_sum: f64,
}

impl Pool {
    /// The weighted mean, or the plain mean when every weight in the pool is zero.
    pub fn value(&self) -> f64 {
        if self.weight > 0.0 {
            self.weighted_sum / self.weight
        } else {
            self.plain_sum / (self.end - self.start) as f64
        }
    }
}

/// Pools `(y, weight)` points that are already in order of distinct, increasing `x`; adjacent
/// pools have strictly increasing values.
///
/// Weights that are not positive and finite count as zero: such points take the value of their
/// pool without pulling it.
pub(crate) fn pools(points: &[(f64, f64)]) -> Vec<Pool> {
    let mut out: Vec<Pool> = Vec::with_capacity(points.len());
    for (i, &(y, w)) in points.iter().enumerate() {
        let w = clean_weight(w);
        let mut pool = Pool {
            start: i,
            end: i + 1,
            weight: w,
            weighted_sum: w * y,
            plain_sum: y,
        };
        while let Some(last) = out.last() {
            // Equal neighbours merge too, so each pool is one step of the fitted curve.
            if last.value() < pool.value() {
                break;
            }
            if let Some(last) = out.pop() {
                pool = Pool {
                    start: last.start,
                    end: pool.end,
                    weight: last.weight + pool.weight,
                    weighted_sum: last.weighted_sum + pool.weighted_sum,
                    plain_sum: last.plain_sum + pool.plain_sum,
                };
            }
        }
        out.push(pool);
    }
    out
}

/// A weight that is not positive and finite counts as zero.
fn clean_weight(w: f64) -> f64 {
    if w.is_finite() && w > 0.0 { w } else { 0.0 }
}

/// Isotonic (non-decreasing) least-squares fit of `(x, y, weight)` points by
/// pool-adjacent-violators; returns the fitted value of each point, in input order.
///
/// Points need not be sorted. Points with equal `x` are pooled first, so they share one fitted
/// value. Weights that are not positive and finite count as zero. Points whose `x` or `y` is
/// not finite are left out of the fit and get `NaN`.
pub fn isotonic(points: &[(f64, f64, f64)]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..points.len())
        .filter(|&i| points[i].0.is_finite() && points[i].1.is_finite())
        .collect();
    order.sort_by(|&a, &b| points[a].0.total_cmp(&points[b].0));

    // Merge equal x into one (weighted mean y, total weight) point, remembering its members.
    let mut groups: Vec<(f64, Vec<usize>)> = Vec::new();
    for i in order {
        match groups.last_mut() {
            Some((x, members)) if *x == points[i].0 => members.push(i),
            _ => groups.push((points[i].0, vec![i])),
        }
    }
    let merged: Vec<(f64, f64)> = groups
        .iter()
        .map(|(_, members)| {
            let (weight, weighted_sum) = members.iter().fold((0.0, 0.0), |(w, ws), &i| {
                let (_, y, weight) = points[i];
                let weight = clean_weight(weight);
                (w + weight, ws + weight * y)
            });
            let y = if weight > 0.0 {
                weighted_sum / weight
            } else {
                members.iter().map(|&i| points[i].1).sum::<f64>() / members.len() as f64
            };
            (y, weight)
        })
        .collect();

    let mut fitted = vec![f64::NAN; points.len()];
    for pool in pools(&merged) {
        let value = pool.value();
        for (_, members) in &groups[pool.start..pool.end] {
            for &i in members {
                fitted[i] = value;
            }
        }
    }
    fitted
}
