//! Shared test support: a fixed-seed generator and synthetic decisions.

use autofix_calibrate::{Decision, Outcome};

/// SplitMix64: a tiny deterministic generator, so synthetic data is the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` decisions with risk uniform in [0, 1) and P(unsafe) = `curve(risk)`.
#[allow(dead_code)] // not every test file uses it
pub fn synthetic(n: usize, seed: u64, curve: impl Fn(f64) -> f64) -> Vec<Decision> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let risk = rng.next_f64();
            let outcome = if rng.next_f64() < curve(risk) {
                Outcome::Reverted
            } else {
                Outcome::Resolved
            };
            Decision::new(risk, outcome)
        })
        .collect()
}
