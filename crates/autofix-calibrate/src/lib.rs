//! Calibrates the risk score against what became of the fixes kube-autofix proposed.
//!
//! The input is one [`Decision`] per proposed fix: its risk score and its [`Outcome`] (read
//! from a CSV with [`read_csv`], or built by the caller from MLflow runs). [`calibrate`] fits
//! an isotonic regression of P(unsafe | risk) by pool-adjacent-violators and suggests the
//! `[risk] block_at` threshold that keeps the fixes below it safe at a target rate, or says why
//! it cannot. Nothing here changes the config: applying a threshold is the operator's edit.
//! See `docs/risk-model.md`, section "Calibration".
//!
//! Layout:
//! - [`outcome`]: [`Outcome`], [`Decision`] and which outcomes count as safe;
//! - [`csv`]: [`read_csv`] and [`CalibrateError`];
//! - [`pav`]: [`isotonic`], the pool-adjacent-violators fit;
//! - [`calibration`]: [`calibrate`], its config and result, and the terminal table;
//! - [`plot`]: the SVG calibration plot ([`Calibration::svg`]).

pub mod calibration;
pub mod csv;
pub mod outcome;
pub mod pav;
pub mod plot;

pub use calibration::{Block, Calibration, CalibrationConfig, Threshold, calibrate};
pub use csv::{CalibrateError, read_csv};
pub use outcome::{Decision, Outcome, UnknownOutcome};
pub use pav::isotonic;
