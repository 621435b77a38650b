//! The one error type of the HTTP routes and how each becomes a response.

use crate::github::GithubPayloadError;
use autofix_core::alert::PayloadError;
use autofix_store::StoreError;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Why a request was refused. Alertmanager retries 5xx and gives up on 4xx, so anything that may
/// succeed later is a 5xx.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Missing or wrong credentials (401, with `WWW-Authenticate`).
    #[error("missing or invalid credentials")]
    Unauthorized {
        /// The schemes the service accepts.
        challenges: Vec<&'static str>,
    },
    /// `POST /webhooks/github` without a configured secret (404).
    #[error("the GitHub webhook is not configured ([server.github_webhook] secret_file)")]
    GithubDisabled,
    /// A GitHub delivery without a valid `X-Hub-Signature-256` (401).
    #[error("missing or invalid X-Hub-Signature-256")]
    Signature,
    /// A required header is missing (400).
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The body is not the GitHub event it claims to be (400, naming the JSON path).
    #[error(transparent)]
    GithubPayload(#[from] GithubPayloadError),
    /// The body could not be read, usually because it exceeds the limit (413).
    #[error("cannot read the request body: {0}")]
    Body(#[source] BytesRejection),
    /// The body is not an Alertmanager webhook payload (400, naming the JSON path).
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The queue is full (503 with `Retry-After`).
    #[error("the work queue is full ({depth} incidents waiting); retry later")]
    QueueFull {
        /// Incidents waiting.
        depth: u64,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The store failed; nothing was recorded (503 with `Retry-After`).
    #[error("the store is unavailable: {source}")]
    Store {
        /// The store's error.
        #[source]
        source: StoreError,
        /// Seconds to wait.
        retry_after: u64,
    },
}

impl AppError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthorized { .. } | AppError::Signature => StatusCode::UNAUTHORIZED,
            AppError::GithubDisabled => StatusCode::NOT_FOUND,
            AppError::Body(rejection) => rejection.status(),
            AppError::Payload(_) | AppError::MissingHeader(_) | AppError::GithubPayload(_) => {
                StatusCode::BAD_REQUEST
            }
            AppError::QueueFull { .. } | AppError::Store { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The metrics label of this refusal.
    pub fn kind(&self) -> &'static str {
        match self {
            AppError::Unauthorized { .. } | AppError::Signature => "unauthorized",
            AppError::GithubDisabled => "disabled",
            AppError::Body(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            AppError::Body(_)
            | AppError::Payload(_)
            | AppError::MissingHeader(_)
            | AppError::GithubPayload(_) => "bad_request",
            AppError::QueueFull { .. } => "queue_full",
            AppError::Store { .. } => "store_error",
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "webhook refused");
        }
        let body = serde_json::json!({ "error": self.to_string() });
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            AppError::Unauthorized { challenges } => {
                for challenge in challenges {
                    headers.append(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(challenge),
                    );
                }
            }
            AppError::QueueFull { retry_after, .. } | AppError::Store { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            AppError::Body(_)
            | AppError::Payload(_)
            | AppError::GithubDisabled
            | AppError::Signature
            | AppError::MissingHeader(_)
            | AppError::GithubPayload(_) => {}
        }
        response
    }
}
