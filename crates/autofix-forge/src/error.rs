//! What can fail while publishing.

use std::path::PathBuf;

/// A failure to open, update or read a pull request or issue.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// A local record file or directory cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// What the OS reported.
        #[source]
        source: std::io::Error,
    },
    /// A local record file or directory cannot be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// What the OS reported.
        #[source]
        source: std::io::Error,
    },
    /// A local record file does not hold a record of the expected shape.
    #[error("malformed record {}", path.display())]
    Malformed {
        /// The JSON file.
        path: PathBuf,
        /// Where the JSON is wrong.
        #[source]
        source: serde_json::Error,
    },
    /// A record cannot be encoded as JSON.
    #[error("cannot encode record {}", path.display())]
    Encode {
        /// The JSON file it was meant for.
        path: PathBuf,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
    /// The blocking task that touches the files panicked or was cancelled.
    #[error("the local forge task did not finish")]
    Task {
        /// What tokio reported.
        #[source]
        source: tokio::task::JoinError,
    },
    /// GitHub answered with an error status (after any retries).
    #[error("GitHub answered {status} to {operation}: {message}")]
    Github {
        /// What was being done, e.g. `create pull request`.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// GitHub's message and error details.
        message: String,
        /// How long GitHub asked to wait, when it said (rate limits).
        retry_after: Option<std::time::Duration>,
    },
    /// GitHub could not be reached or its answer could not be read (after any retries).
    #[error("GitHub request failed: {operation}")]
    GithubTransport {
        /// What was being done.
        operation: &'static str,
        /// What the client reported.
        #[source]
        source: Box<octocrab::Error>,
    },
    /// The GitHub forge is misconfigured (base URI, token).
    #[error("GitHub configuration: {reason}")]
    GithubConfig {
        /// What is wrong.
        reason: String,
    },
}
