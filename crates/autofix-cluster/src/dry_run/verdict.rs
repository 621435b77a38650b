//! What the cluster said about a corrected object, as a PR body line or section.

use std::fmt;

/// The API server's answer to a server-side apply dry run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum DryRunVerdict {
    /// Admission accepted the object.
    Accepted {
        /// The `Warning` headers' texts (deprecations, policies in warn or audit mode), in order.
        warnings: Vec<String>,
    },
    /// Admission refused the object (schema, policy, webhook, LimitRange, quota).
    Denied {
        /// HTTP status code: 400, 403, 409 or 422.
        code: u16,
        /// The `Status` reason, e.g. `Invalid` or `Forbidden`.
        reason: String,
        /// The `Status` message, verbatim (a webhook's denial text included).
        message: String,
    },
}

impl DryRunVerdict {
    /// A `### Server-side dry-run` Markdown section for the PR body: the verdict, then the
    /// warnings as a list or the denial message in a code block.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("### Server-side dry-run\n\n");
        match self {
            DryRunVerdict::Accepted { warnings } => {
                out.push_str(
                    "The cluster's admission (schema, defaulting, admission policies and \
                     webhooks, LimitRanges, quotas) accepted the corrected object.\n",
                );
                if !warnings.is_empty() {
                    out.push_str("\nWarnings:\n\n");
                    for warning in warnings {
                        out.push_str(&format!("- {}\n", warning.replace('\n', " ")));
                    }
                }
            }
            DryRunVerdict::Denied {
                code,
                reason,
                message,
            } => {
                // A fence longer than any backtick run in the message, so it cannot close early.
                let longest = message.split(|c| c != '`').map(str::len).max().unwrap_or(0);
                let fence = "`".repeat(longest.max(2) + 1);
                out.push_str(&format!(
                    "The cluster's admission **denied** the corrected object ({code} {reason}):\n\n\
                     {fence}text\n{message}\n{fence}\n"
                ));
            }
        }
        out
    }
}

impl fmt::Display for DryRunVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DryRunVerdict::Accepted { warnings } if warnings.is_empty() => {
                write!(f, "Server-side dry-run: accepted by the cluster")
            }
            DryRunVerdict::Accepted { warnings } => write!(
                f,
                "Server-side dry-run: accepted by the cluster, with warnings: {}",
                warnings.join("; ")
            ),
            DryRunVerdict::Denied {
                code,
                reason,
                message,
            } => write!(
                f,
                "Server-side dry-run: denied by the cluster ({code} {reason}): {message}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DryRunVerdict;

    #[test]
    fn a_denial_keeps_its_message_verbatim_in_a_fence_it_cannot_close() {
        let message = "admission webhook \"validate.kyverno.svc-fail\" denied the request:\n\
                       policy require-limits: ```limits``` are required";
        let denied = DryRunVerdict::Denied {
            code: 400,
            reason: "BadRequest".into(),
            message: message.into(),
        };
        let markdown = denied.to_markdown();
        assert!(
            markdown.contains(&format!("````text\n{message}\n````\n")),
            "{markdown}"
        );
        assert!(denied.to_string().ends_with(message), "{denied}");
    }

    #[test]
    fn warnings_are_listed() {
        let accepted = DryRunVerdict::Accepted {
            warnings: vec!["a".into(), "b\nc".into()],
        };
        assert!(accepted.to_markdown().ends_with("\n- a\n- b c\n"));
        assert_eq!(
            accepted.to_string(),
            "Server-side dry-run: accepted by the cluster, with warnings: a; b\nc"
        );
    }
}
