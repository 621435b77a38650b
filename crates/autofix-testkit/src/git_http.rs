//! A git smart-HTTP server for tests: the real `git http-backend` CGI behind HTTP basic auth, so
//! libgit2's HTTP transport, credential callbacks and server-side hooks are exercised for real.

use crate::TestkitError;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::BodyExt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::task::JoinHandle;

/// The server's configuration and what it has seen.
#[derive(Debug)]
struct Shared {
    root: PathBuf,
    username: String,
    token: String,
    unauthorized: AtomicUsize,
    authorized: AtomicUsize,
}

/// Bare repositories under a root dir served over git's smart HTTP protocol on `127.0.0.1`,
/// requiring HTTP basic auth with one username and token; stops when dropped.
#[derive(Debug)]
pub struct GitHttpServer {
    url: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl GitHttpServer {
    /// Serves the bare repositories under `root` (e.g. `root/gitops.git`) on a free port. Every
    /// request must carry `username` and `token` as basic auth, else it gets 401; authenticated
    /// requests may also push.
    pub async fn start(root: &Path, username: &str, token: &str) -> Result<Self, TestkitError> {
        GitHttpServer::start_on_port(0, root, username, token).await
    }

    /// Like [`GitHttpServer::start`], on loopback `port`: a test can hand out the URL of a
    /// remote that is unreachable at first and bring it up later.
    pub async fn start_on_port(
        port: u16,
        root: &Path,
        username: &str,
        token: &str,
    ) -> Result<Self, TestkitError> {
        let (listener, url) = crate::bind_loopback(port).await?;
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            username: username.to_string(),
            token: token.to_string(),
            unauthorized: AtomicUsize::new(0),
            authorized: AtomicUsize::new(0),
        });
        let app = Router::new().fallback(serve).with_state(shared.clone());
        let server = crate::spawn_server(listener, app);
        Ok(GitHttpServer {
            url,
            shared,
            server,
        })
    }

    /// The clone URL of the repository `name` under the root, e.g.
    /// `http://127.0.0.1:41234/gitops.git`.
    pub fn url_for(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    /// How many requests were answered 401 (no or wrong credentials).
    pub fn unauthorized_count(&self) -> usize {
        self.shared.unauthorized.load(Ordering::SeqCst)
    }

    /// How many requests carried the right credentials.
    pub fn authorized_count(&self) -> usize {
        self.shared.authorized.load(Ordering::SeqCst)
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Checks basic auth, then hands the request to `git http-backend`.
async fn serve(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", shared.username, shared.token))
    );
    let authorization = request.headers().get(header::AUTHORIZATION);
    if authorization.and_then(|value| value.to_str().ok()) != Some(expected.as_str()) {
        shared.unauthorized.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"git\"")],
        )
            .into_response();
    }
    shared.authorized.fetch_add(1, Ordering::SeqCst);
    match http_backend(&shared, request).await {
        Ok(response) => response,
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Runs the CGI with the request's meta-variables, pipes the body to its stdin and turns its
/// output into the response.
async fn http_backend(shared: &Shared, request: Request) -> io::Result<Response> {
    let (parts, mut body) = request.into_parts();
    let header_value = |name: HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let mut command = Command::new("git");
    command
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", &shared.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("REQUEST_METHOD", parts.method.as_str())
        .env(
            "CONTENT_TYPE",
            header_value(header::CONTENT_TYPE).unwrap_or_default(),
        )
        // An authenticated user is what lets http-backend accept pushes (receive-pack).
        .env("REMOTE_USER", &shared.username)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    // Without CONTENT_LENGTH (a chunked request) http-backend reads the body until EOF.
    if let Some(length) = header_value(header::CONTENT_LENGTH) {
        command.env("CONTENT_LENGTH", length);
    }
    // http-backend inflates gzip request bodies itself.
    if let Some(encoding) = header_value(header::CONTENT_ENCODING) {
        command.env("HTTP_CONTENT_ENCODING", encoding);
    }
    if let Some(protocol) = header_value(HeaderName::from_static("git-protocol")) {
        command.env("HTTP_GIT_PROTOCOL", protocol);
    }
    let mut child = command.spawn()?;
    let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(io::Error::other("git http-backend has no stdin or stdout"));
    };
    // Write and read at once so neither pipe can fill up and stall the other.
    let write = async move {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(io::Error::other)?.into_data() {
                stdin.write_all(&data).await?;
            }
        }
        Ok::<_, io::Error>(())
    };
    let mut output = Vec::new();
    // A backend that answers before reading the whole body breaks the pipe; its output is
    // the answer all the same.
    let (_, read) = tokio::join!(write, stdout.read_to_end(&mut output));
    read?;
    child.wait().await?;
    parse_cgi(output)
}

/// Splits CGI output into a response: `Status:` gives the status (200 without it), the other
/// header lines are copied, and the rest is the body.
fn parse_cgi(output: Vec<u8>) -> io::Result<Response> {
    let invalid =
        |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("CGI output: {what}"));
    let (head_len, separator) = [&b"\r\n\r\n"[..], b"\n\n"]
        .iter()
        .filter_map(|sep| {
            output
                .windows(sep.len())
                .position(|window| window == *sep)
                .map(|at| (at, sep.len()))
        })
        .min()
        .ok_or_else(|| invalid("no end of headers"))?;
    let head =
        std::str::from_utf8(&output[..head_len]).map_err(|_| invalid("headers not UTF-8"))?;
    let mut response = Response::builder();
    for line in head.lines() {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("header without `:`"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().unwrap_or_default();
            let status = code
                .parse::<u16>()
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok())
                .ok_or_else(|| invalid("bad Status"))?;
            response = response.status(status);
        } else {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid("bad header name"))?;
            let value = HeaderValue::from_str(value).map_err(|_| invalid("bad header value"))?;
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from(output[head_len + separator..].to_vec()))
        .map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cgi_status_headers_and_body() {
        let response = parse_cgi(
            b"Status: 404 Not Found\r\nContent-Type: text/plain\r\nExpires: Fri, 01 Jan 1980 00:00:00 GMT\r\n\r\nnot here\n".to_vec(),
        )
        .expect("parse");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain");

        let response = parse_cgi(
            b"Content-Type: application/x-git-upload-pack-advertisement\n\n0000".to_vec(),
        )
        .expect("parse");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(parse_cgi(b"no headers at all".to_vec()).is_err());
    }
}
