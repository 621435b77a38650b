//! The printed report: a title, the machine, then `measure | value | goal` rows.

use crate::Machine;
use std::fmt::Write;

/// A two- or three-column table under a title and the machine line.
#[derive(Debug, Default)]
pub struct Table {
    title: String,
    machine: String,
    rows: Vec<(String, String, String)>,
}

impl Table {
    /// An empty table titled `title`, measured on `machine`.
    pub fn new(title: &str, machine: &Machine) -> Table {
        Table {
            title: title.to_string(),
            machine: machine.line(),
            rows: Vec::new(),
        }
    }

    /// Adds a row without a goal.
    pub fn row(&mut self, measure: &str, value: impl ToString) -> &mut Table {
        self.goal(measure, value, "")
    }

    /// Adds a row with the goal it is read against.
    pub fn goal(&mut self, measure: &str, value: impl ToString, goal: &str) -> &mut Table {
        self.rows
            .push((measure.to_string(), value.to_string(), goal.to_string()));
        self
    }

    /// The table as text, columns aligned.
    pub fn render(&self) -> String {
        let width = |f: fn(&(String, String, String)) -> usize, header: &str| {
            self.rows.iter().map(f).max().unwrap_or(0).max(header.len())
        };
        let w0 = width(|r| r.0.chars().count(), "measure");
        let w1 = width(|r| r.1.chars().count(), "value");
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.title);
        let _ = writeln!(out, "machine: {}", self.machine);
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<w0$}  {:<w1$}  goal", "measure", "value");
        let _ = writeln!(out, "{:-<w0$}  {:-<w1$}  ----", "", "");
        for (measure, value, goal) in &self.rows {
            let line = format!("{measure:<w0$}  {value:<w1$}  {goal}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

/// A number with one decimal, e.g. `1234.5`.
pub fn n1(value: f64) -> String {
    format!("{value:.1}")
}

/// A rate with no decimals and thousands separated by `,` (`20,000`).
pub fn rate(value: f64) -> String {
    let whole = value.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `met` or `NOT met`, for a goal line.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_grouped_by_thousands() {
        assert_eq!(rate(20000.4), "20,000");
        assert_eq!(rate(999.0), "999");
        assert_eq!(rate(1234567.0), "1,234,567");
    }

    #[test]
    fn columns_line_up() {
        let machine = Machine::detect();
        let mut table = Table::new("bench", &machine);
        table.row("a", 1).goal("longer measure", "22", ">= 20");
        let text = table.render();
        assert!(text.contains("longer measure  22     >= 20"), "{text}");
        assert!(text.contains("machine: "), "{text}");
    }
}
