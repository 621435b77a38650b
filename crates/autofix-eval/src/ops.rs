//! The comparisons of `fix_checks[].op`.

use autofix_core::quantity::Quantity;
use serde_json::Value;

/// Compares the field's value on the fix branch (`None` when absent) with the expected value;
/// `Err` says what was found.
pub(crate) fn check_value(op: &str, got: Option<&Value>, want: &Value) -> Result<(), String> {
    let quantity = |v: &Value| Quantity::from_value(v).map(|q| q.0);
    let ok = match op {
        "equals" => {
            got == Some(want)
                || got.is_some_and(|g| {
                    g.to_string().trim_matches('"') == want.to_string().trim_matches('"')
                })
        }
        "not_equals" => got != Some(want),
        "quantity_gt" => got
            .and_then(quantity)
            .zip(quantity(want))
            .is_some_and(|(g, w)| g > w),
        "quantity_lt" => got
            .and_then(quantity)
            .zip(quantity(want))
            .is_some_and(|(g, w)| g < w),
        "absent" => got.is_none(),
        "present" => got.is_some(),
        other => return Err(format!("unknown op {other}")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{op} {want}: got {got:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::check_value;
    use serde_json::json;

    #[test]
    fn ops_compare_as_documented() {
        assert!(check_value("quantity_gt", Some(&json!("512Mi")), &json!("256Mi")).is_ok());
        assert!(check_value("quantity_gt", Some(&json!("128Mi")), &json!("256Mi")).is_err());
        assert!(check_value("quantity_lt", Some(&json!("1")), &json!("2000m")).is_ok());
        assert!(check_value("equals", Some(&json!(8080)), &json!("8080")).is_ok());
        assert!(check_value("not_equals", Some(&json!("a")), &json!("a")).is_err());
        assert!(check_value("absent", None, &json!(null)).is_ok());
        assert!(check_value("present", None, &json!(null)).is_err());
        assert!(check_value("bogus", None, &json!(null)).is_err());
    }
}
