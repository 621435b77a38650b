//! Reading decisions from CSV.

use autofix_calibrate::{CalibrateError, Decision, Outcome, read_csv};

#[test]
fn reads_columns_in_any_order_with_extras_and_quotes() {
    let text = "\u{feff}incident,outcome,pr,risk_score\n\
                oom-cart,merged,12,0.298\n\
                \n\
                \"crash, db\",Reverted,13,0.73\n\
                ,resolved,14,1\n";
    let decisions = read_csv(text).expect("reads");
    assert_eq!(
        decisions,
        [
            Decision {
                risk: 0.298,
                outcome: Outcome::Merged,
                incident: Some("oom-cart".into())
            },
            Decision {
                risk: 0.73,
                outcome: Outcome::Reverted,
                incident: Some("crash, db".into())
            },
            Decision::new(1.0, Outcome::Resolved),
        ]
    );
}

#[test]
fn a_bad_risk_names_its_line_and_column() {
    let text = "risk_score,outcome\n0.2,merged\nabc,merged\n";
    let err = read_csv(text).expect_err("bad risk");
    assert!(
        matches!(&err, CalibrateError::RiskNotNumber { line: 3, value, .. } if value == "abc"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "line 3, column risk_score: `abc` is not a number"
    );

    let err = read_csv("risk_score,outcome\n1.2,merged\n").expect_err("out of range");
    assert_eq!(
        err.to_string(),
        "line 2, column risk_score: 1.2 is outside [0, 1]"
    );
}

#[test]
fn an_unknown_outcome_names_its_line_column_and_value() {
    let err = read_csv("outcome,risk_score\nmerged,0.1\nresolved,0.2\napproved,0.3\n")
        .expect_err("unknown outcome");
    assert_eq!(
        err,
        CalibrateError::UnknownOutcome {
            line: 4,
            value: "approved".into()
        }
    );
    let message = err.to_string();
    assert!(
        message.starts_with("line 4, column outcome: `approved`"),
        "{message}"
    );
}

#[test]
fn header_and_shape_errors() {
    assert_eq!(read_csv("\n \n"), Err(CalibrateError::Empty));
    let err = read_csv("risk,outcome\n0.1,merged\n").expect_err("no risk_score");
    assert!(
        matches!(
            err,
            CalibrateError::MissingColumn {
                line: 1,
                column: "risk_score",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("found: risk, outcome"), "{err}");
    assert_eq!(
        read_csv("risk_score,outcome\n0.1\n"),
        Err(CalibrateError::FieldCount {
            line: 2,
            expected: 2,
            found: 1
        })
    );
}
