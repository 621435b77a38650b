//! The HTTP transport under async-openai: one bounded retry loop of our own.
//!
//! async-openai's default executor retries 429 and 5xx itself (three times, waiting whatever
//! `Retry-After` says, uncapped). It is replaced (`Client::with_http_service`) by this tower
//! service, so the bounds are the config's: at most `max_retries` retries of a 429, a 5xx, a
//! timeout or a connection error; each wait is the response's `Retry-After` (in seconds) or an
//! exponential backoff from 250 ms, capped at `max_retry_wait_ms`. The last failure is handed
//! back to async-openai, which turns it into its error. The per-request timeout is the reqwest
//! client's, so a hanging provider ends at `timeout_ms`.

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// First backoff wait when the provider gives no `Retry-After`; doubles each retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// A tower service sending async-openai's requests with bounded retries.
#[derive(Debug, Clone)]
pub(crate) struct BoundedRetry {
    client: reqwest::Client,
    max_retries: u32,
    max_wait: Duration,
}

impl BoundedRetry {
    /// Sends with `client`, retrying at most `max_retries` times, waiting at most `max_wait`.
    pub(crate) fn new(client: reqwest::Client, max_retries: u32, max_wait: Duration) -> Self {
        BoundedRetry {
            client,
            max_retries,
            max_wait,
        }
    }

    async fn send(self, factory: HttpRequestFactory) -> Result<Response, OpenAIError> {
        let mut retries = 0;
        loop {
            let request = factory.build().await?;
            let outcome = self.client.execute(request).await;
            let hint = match &outcome {
                Ok(r) if retryable(r.status()) => retry_after(r.headers()),
                Ok(_) => return outcome.map_err(OpenAIError::Reqwest),
                Err(e) if e.is_timeout() || e.is_connect() => None,
                Err(_) => return outcome.map_err(OpenAIError::Reqwest),
            };
            if retries >= self.max_retries {
                return outcome.map_err(OpenAIError::Reqwest);
            }
            let backoff = FIRST_BACKOFF.saturating_mul(2u32.saturating_pow(retries));
            let wait = hint.unwrap_or(backoff).min(self.max_wait);
            retries += 1;
            match &outcome {
                Ok(r) => {
                    tracing::warn!(status = %r.status(), ?wait, retries, "LLM provider busy or failing; retrying")
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?wait, retries, "LLM request failed; retrying")
                }
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// Statuses worth another try: rate limits and server errors.
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `Retry-After` in seconds (the HTTP-date form is not honoured: backoff applies).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

impl tower::Service<HttpRequestFactory> for BoundedRetry {
    type Response = Response;
    type Error = OpenAIError;
    type Future = Pin<Box<dyn Future<Output = Result<Response, OpenAIError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Self::Future {
        Box::pin(self.clone().send(factory))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn rate_limits_and_server_errors_are_retried() {
        assert!(retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(retryable(StatusCode::BAD_GATEWAY));
        assert!(!retryable(StatusCode::BAD_REQUEST));
        assert!(!retryable(StatusCode::UNAUTHORIZED));
    }
}
