//! The calibration plot as a small, deterministic, hand-written SVG.
//!
//! Risk on the x axis and P(unsafe) on the y axis, both 0 to 1: the fitted step curve
//! (`id="fitted"`), the decisions binned by risk as circles at their observed unsafe rate with
//! an area proportional to their count, the unsafe rate of all decisions up to each risk
//! (`id="cumulative"`, what the threshold is read from), the target as a horizontal line
//! (`id="target"`) and the suggested `block_at` as a vertical line (`id="threshold"`).

use std::fmt::Write as _;

use crate::calibration::{Calibration, percent};
use crate::outcome::{Decision, Outcome};

/// Canvas size in pixels.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 440.0;
/// The plot area inside the canvas, in pixels.
const LEFT: f64 = 70.0;
const RIGHT: f64 = 560.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 380.0;
/// Decisions are shown in this many equal-width risk bins, so the file stays small.
const BINS: usize = 20;

fn x(risk: f64) -> f64 {
    LEFT + risk.clamp(0.0, 1.0) * (RIGHT - LEFT)
}

fn y(rate: f64) -> f64 {
    BOTTOM - rate.clamp(0.0, 1.0) * (BOTTOM - TOP)
}

impl Calibration {
    /// The calibration plot of these decisions as an SVG document.
    pub fn svg(&self, decisions: &[Decision]) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            s,
            r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="24" font-size="14">Calibration of P(unsafe | risk): {} decisions</text>"#,
            self.decisions
        );
        axes(&mut s);
        bins(&mut s, decisions, &self.safe_outcomes);
        self.curves(&mut s);
        self.lines(&mut s);
        legend(&mut s);
        s.push_str("</svg>\n");
        s
    }

    fn curves(&self, s: &mut String) {
        let Some(first) = self.points.first() else {
            return;
        };
        // Right-continuous steps: a block's level holds from its lowest risk to the next's.
        let mut d = format!(
            "M{:.1},{:.1} H{:.1}",
            x(first.lo),
            y(first.p_unsafe),
            x(first.hi)
        );
        for b in &self.points[1..] {
            let _ = write!(d, " H{:.1} V{:.1} H{:.1}", x(b.lo), y(b.p_unsafe), x(b.hi));
        }
        let _ = writeln!(
            s,
            r##"<path id="fitted" d="{d}" fill="none" stroke="#1f5fbf" stroke-width="2.5"/>"##
        );

        let (mut seen, mut unsafe_seen) = (0usize, 0usize);
        let mut pts = Vec::new();
        for b in &self.points {
            seen += b.count;
            unsafe_seen += b.unsafe_count;
            let rate = unsafe_seen as f64 / seen as f64;
            pts.push(format!("{:.1},{:.1}", x(b.hi), y(rate)));
        }
        let _ = writeln!(
            s,
            r##"<polyline id="cumulative" points="{}" fill="none" stroke="#e08a00" stroke-width="1.5" stroke-dasharray="6 3"/>"##,
            pts.join(" ")
        );
    }

    fn lines(&self, s: &mut String) {
        let unsafe_target = 1.0 - self.target_safe_rate;
        let ty = y(unsafe_target);
        let _ = writeln!(
            s,
            r##"<line id="target" x1="{LEFT}" y1="{ty:.1}" x2="{RIGHT}" y2="{ty:.1}" stroke="#666" stroke-dasharray="2 3"/>"##
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#666">target: {} unsafe</text>"##,
            RIGHT + 6.0,
            ty + 4.0,
            percent(unsafe_target)
        );
        if let Some(t) = &self.threshold {
            let tx = x(t.block_at);
            let _ = writeln!(
                s,
                r##"<line id="threshold" x1="{tx:.1}" y1="{TOP}" x2="{tx:.1}" y2="{BOTTOM}" stroke="#c0392b" stroke-width="2"/>"##
            );
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" fill="#c0392b">block_at = {:.3}</text>"##,
                tx + 4.0,
                TOP + 14.0,
                t.block_at
            );
        }
    }
}

fn axes(s: &mut String) {
    for i in 0..=5 {
        let v = f64::from(i) / 5.0;
        let (gx, gy) = (x(v), y(v));
        let _ = writeln!(
            s,
            r##"<line x1="{gx:.1}" y1="{TOP}" x2="{gx:.1}" y2="{BOTTOM}" stroke="#eee"/><line x1="{LEFT}" y1="{gy:.1}" x2="{RIGHT}" y2="{gy:.1}" stroke="#eee"/>"##
        );
        let _ = writeln!(
            s,
            r#"<text x="{gx:.1}" y="{:.1}" text-anchor="middle">{v:.1}</text><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.1}</text>"#,
            BOTTOM + 16.0,
            LEFT - 6.0,
            gy + 4.0
        );
    }
    let _ = writeln!(
        s,
        r##"<path d="M{LEFT},{TOP} V{BOTTOM} H{RIGHT}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">risk score</text>"#,
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 36.0
    );
    let _ = writeln!(
        s,
        r#"<text x="20" y="{0:.1}" text-anchor="middle" transform="rotate(-90 20 {0:.1})">P(unsafe)</text>"#,
        (TOP + BOTTOM) / 2.0
    );
}

/// Decisions in equal-width risk bins: a circle at the bin's mean risk and unsafe rate.
fn bins(s: &mut String, decisions: &[Decision], safe: &[Outcome]) {
    let mut bins = [(0usize, 0usize, 0.0f64); BINS];
    for d in decisions.iter().filter(|d| d.risk.is_finite()) {
        // Truncation is the binning; risk 1.0 goes to the last bin.
        let i = ((d.risk.clamp(0.0, 1.0) * BINS as f64) as usize).min(BINS - 1);
        bins[i].0 += 1;
        bins[i].1 += usize::from(!safe.contains(&d.outcome));
        bins[i].2 += d.risk;
    }
    s.push_str(r##"<g id="decisions" fill="#1f5fbf" fill-opacity="0.25" stroke="#1f5fbf">"##);
    s.push('\n');
    let largest = bins.iter().map(|b| b.0).max().unwrap_or(0).max(1) as f64;
    for (i, &(count, unsafe_count, risk_sum)) in bins.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let rate = unsafe_count as f64 / count as f64;
        // Area proportional to the count, the largest bin at 14 px.
        let r = 2.0 + 12.0 * (count as f64 / largest).sqrt();
        let _ = writeln!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="{r:.1}"><title>risk {:.2} to {:.2}: {count} decisions, {unsafe_count} unsafe</title></circle>"#,
            x(risk_sum / count as f64),
            y(rate),
            i as f64 / BINS as f64,
            (i + 1) as f64 / BINS as f64
        );
    }
    s.push_str("</g>\n");
}

fn legend(s: &mut String) {
    let lx = RIGHT + 14.0;
    let entries = [
        (
            r##"stroke="#1f5fbf" stroke-width="2.5""##,
            "fitted P(unsafe)",
        ),
        (
            r##"stroke="#e08a00" stroke-width="1.5" stroke-dasharray="6 3""##,
            "unsafe rate below",
        ),
        (r##"stroke="#c0392b" stroke-width="2""##, "block_at"),
    ];
    for (i, (style, label)) in entries.iter().enumerate() {
        let ly = TOP + 60.0 + 20.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" {style}/><text x="{:.1}" y="{:.1}">{label}</text>"#,
            lx + 20.0,
            lx + 26.0,
            ly + 4.0
        );
    }
    let ly = TOP + 120.0;
    let _ = writeln!(
        s,
        r##"<circle cx="{:.1}" cy="{ly}" r="5" fill="#1f5fbf" fill-opacity="0.25" stroke="#1f5fbf"/><text x="{:.1}" y="{:.1}">decisions (binned)</text>"##,
        lx + 10.0,
        lx + 26.0,
        ly + 4.0
    );
}
