//! Percentiles of measured durations.

use serde::Serialize;
use std::time::Duration;

/// p50, p99 and max of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// How many durations.
    pub count: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

impl Percentiles {
    /// The percentiles of `samples` (nearest rank); all zero when there are none.
    pub fn of(samples: &mut [Duration]) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let rank = |p: f64| {
            let index = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
            ms(samples[index])
        };
        Percentiles {
            count: samples.len(),
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: ms(samples[samples.len() - 1]),
        }
    }

    /// The percentiles of values already in milliseconds.
    pub fn of_ms(values: &[f64]) -> Percentiles {
        let mut samples: Vec<Duration> = values
            .iter()
            .map(|v| Duration::from_secs_f64(v.max(0.0) / 1000.0))
            .collect();
        Percentiles::of(&mut samples)
    }
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut samples);
        assert_eq!(p.count, 100);
        assert_eq!(p.p50_ms, 50.0);
        assert_eq!(p.p99_ms, 99.0);
        assert_eq!(p.max_ms, 100.0);
    }

    #[test]
    fn no_samples_give_zeros() {
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
        assert_eq!(Percentiles::of_ms(&[2.0]).p99_ms, 2.0);
    }
}
