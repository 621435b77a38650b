//! Kubernetes resource quantities (`128Mi`, `250m`, `"2"`, `1e3`): parse, compare, format.

use serde_json::Value;

/// A quantity in base units (bytes for memory, cores for CPU).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Quantity(pub f64);

const SUFFIXES: [(&str, f64); 14] = [
    ("Ki", 1024.0),
    ("Mi", 1048576.0),
    ("Gi", 1073741824.0),
    ("Ti", 1099511627776.0),
    ("Pi", 1125899906842624.0),
    ("Ei", 1152921504606846976.0),
    ("n", 1e-9),
    ("u", 1e-6),
    ("m", 1e-3),
    ("k", 1e3),
    ("M", 1e6),
    ("G", 1e9),
    ("T", 1e12),
    ("P", 1e15),
];

impl Quantity {
    /// Parses the text form; `None` when it is not a quantity.
    pub fn parse(text: &str) -> Option<Quantity> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        for (suffix, factor) in SUFFIXES {
            if let Some(number) = text.strip_suffix(suffix) {
                return scaled(number, factor);
            }
        }
        if let Some(number) = text.strip_suffix('E') {
            return scaled(number, 1e18);
        }
        scaled(text, 1.0)
    }

    /// Reads a quantity from a JSON value: a string, or a bare number as YAML may give.
    pub fn from_value(value: &Value) -> Option<Quantity> {
        match value {
            Value::String(s) => Quantity::parse(s),
            Value::Number(n) => n.as_f64().map(Quantity),
            _ => None,
        }
    }

    /// Millicores, for CPU quantities.
    pub fn millis(self) -> f64 {
        self.0 * 1000.0
    }
}

/// `number` times `factor`, unless the product overflows to infinity (`1e308Ki`).
fn scaled(number: &str, factor: f64) -> Option<Quantity> {
    let n = parse_number(number)? * factor;
    n.is_finite().then_some(Quantity(n))
}

fn parse_number(text: &str) -> Option<f64> {
    let ok = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '+' | '-' | 'e'));
    let n: f64 = if ok { text.parse().ok()? } else { return None };
    (n.is_finite() && n >= 0.0).then_some(n)
}

/// Formats bytes in the largest binary unit (Mi or Gi) that keeps the number whole.
pub fn format_memory(bytes: f64) -> String {
    let gi = 1073741824.0;
    let mi = 1048576.0;
    if bytes >= gi && (bytes / gi).fract() == 0.0 {
        format!("{}Gi", whole(bytes / gi))
    } else {
        format!("{}Mi", whole((bytes / mi).ceil()))
    }
}

/// Formats cores as whole cores when whole, else millicores (`"2"`, `"750m"`).
pub fn format_cpu(cores: f64) -> String {
    let millis = whole((cores * 1000.0).round());
    // Past 1.8e305 cores the millicores overflow to infinity: those are whole cores anyway.
    if !millis.is_finite() || millis % 1000.0 == 0.0 {
        format!("{}", whole(cores.round()))
    } else {
        format!("{millis}m")
    }
}

/// A whole number, printed as `f64` digits: casting to an integer would silently cap huge
/// quantities (`1E` cores as `18446744073709551615m`). Negative, `-0` and NaN give 0, as the
/// cast did.
fn whole(n: f64) -> f64 {
    if n > 0.0 { n } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(Quantity::parse("128Mi"), Some(Quantity(134217728.0)));
        assert_eq!(Quantity::parse("250m").map(Quantity::millis), Some(250.0));
        assert_eq!(Quantity::parse("2"), Some(Quantity(2.0)));
        assert_eq!(Quantity::parse("3920m").map(Quantity::millis), Some(3920.0));
        assert_eq!(Quantity::parse("1G"), Some(Quantity(1e9)));
        assert_eq!(Quantity::parse("abc"), None);
        assert_eq!(Quantity::parse("-1"), None);
    }

    #[test]
    fn formats_round_units() {
        assert_eq!(format_memory(268435456.0), "256Mi");
        assert_eq!(format_memory(2.0 * 1073741824.0), "2Gi");
        assert_eq!(format_memory(1610612736.0), "1536Mi");
        assert_eq!(format_cpu(0.5), "500m");
        assert_eq!(format_cpu(3.0), "3");
    }
}
