//! The calibration plot is a well-formed SVG with the parts a reader needs.

mod common;

use autofix_calibrate::{CalibrationConfig, Decision, Outcome, calibrate};
use common::synthetic;

/// Checks that every element is closed in order; returns the element names seen.
fn well_formed(svg: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut seen = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("tag closed") + start;
        let tag = &rest[start + 1..end];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
        } else {
            let name: String = tag
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '/')
                .collect();
            assert!(!tag.contains('<'), "unescaped < in {tag}");
            seen.push(name.clone());
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    seen
}

#[test]
fn plot_has_curve_points_target_and_threshold() {
    let data = synthetic(2000, 3, |r| r * r);
    let cal = calibrate(&data, &CalibrationConfig::default());
    let t = cal.threshold.clone().expect("a threshold");
    let svg = cal.svg(&data);
    assert!(svg.starts_with("<svg "), "{svg}");
    assert!(svg.trim_end().ends_with("</svg>"));
    let elements = well_formed(&svg);
    assert_eq!(elements.iter().filter(|e| *e == "svg").count(), 1);
    assert!(elements.iter().filter(|e| *e == "circle").count() >= 20);
    assert!(svg.contains(r#"<path id="fitted" d="M"#), "{svg}");
    assert!(svg.contains(r#"<polyline id="cumulative""#));
    assert!(svg.contains(r#"<line id="target""#));
    assert!(svg.contains(r#"<line id="threshold""#));
    assert!(svg.contains(&format!("block_at = {:.3}", t.block_at)));
    assert!(svg.contains("risk score") && svg.contains("P(unsafe)"));
    // Deterministic: the same input gives the same file.
    assert_eq!(svg, cal.svg(&data));
}

#[test]
fn plot_without_threshold_has_no_threshold_line() {
    let data: Vec<Decision> = (0..10)
        .map(|i| Decision::new(f64::from(i) / 10.0, Outcome::Merged))
        .collect();
    let cal = calibrate(&data, &CalibrationConfig::default());
    assert!(cal.threshold.is_none());
    let svg = cal.svg(&data);
    well_formed(&svg);
    assert!(svg.contains(r#"id="fitted""#));
    assert!(!svg.contains(r#"id="threshold""#));

    let empty = calibrate(&[], &CalibrationConfig::default());
    let svg = empty.svg(&[]);
    well_formed(&svg);
    assert!(!svg.contains(r#"id="fitted""#));
}
