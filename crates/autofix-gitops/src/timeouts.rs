//! libgit2's network timeouts. Without them a remote that takes the connection and then says
//! nothing (a hung proxy, a black-holed route) holds a worker until the process stops.

use std::ffi::c_int;
use std::sync::Once;
use std::time::Duration;

/// How long a fetch or push waits to connect, and then for each read or write, by default.
const DEFAULT_NETWORK_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable that overrides [`DEFAULT_NETWORK_TIMEOUT`], in whole seconds.
const NETWORK_TIMEOUT_ENV: &str = "AUTOFIX_GIT_TIMEOUT_SECS";

/// Sets libgit2's connect and read/write timeouts, once per process; every fetch and push of
/// this crate calls it first.
pub(crate) fn set_network_timeouts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let given = std::env::var(NETWORK_TIMEOUT_ENV).ok();
        let timeout = network_timeout(given.as_deref()).unwrap_or_else(|| {
            tracing::warn!(
                value = given.as_deref().unwrap_or_default(),
                "{NETWORK_TIMEOUT_ENV} is not a positive number of seconds; using {}s",
                DEFAULT_NETWORK_TIMEOUT.as_secs()
            );
            DEFAULT_NETWORK_TIMEOUT
        });
        let millis = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: libgit2 keeps both values in plain globals that it reads when it opens a
        // connection. Only this crate's fetches and pushes open connections, each calls this
        // function first, and `Once` makes each of them wait until this write has finished, so
        // no read of the globals races the write.
        #[allow(unsafe_code)]
        let set = unsafe {
            git2::opts::set_server_connect_timeout_in_milliseconds(millis)
                .and_then(|()| git2::opts::set_server_timeout_in_milliseconds(millis))
        };
        match set {
            Ok(()) => tracing::debug!(seconds = timeout.as_secs(), "git network timeouts set"),
            Err(e) => tracing::warn!(error = %e, "cannot set the git network timeouts"),
        }
    });
}

/// The timeout `value` (of [`NETWORK_TIMEOUT_ENV`]) asks for; `None` when it is not a positive
/// number of seconds. Unset means the default.
fn network_timeout(value: Option<&str>) -> Option<Duration> {
    let Some(value) = value else {
        return Some(DEFAULT_NETWORK_TIMEOUT);
    };
    match value.trim().parse::<u64>() {
        Ok(seconds) if seconds > 0 => Some(Duration::from_secs(seconds)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_is_whole_positive_seconds_or_the_default() {
        assert_eq!(network_timeout(None), Some(DEFAULT_NETWORK_TIMEOUT));
        assert_eq!(network_timeout(Some("5")), Some(Duration::from_secs(5)));
        assert_eq!(network_timeout(Some(" 90 ")), Some(Duration::from_secs(90)));
        assert_eq!(network_timeout(Some("0")), None);
        assert_eq!(network_timeout(Some("1.5")), None);
        assert_eq!(network_timeout(Some("soon")), None);
    }
}
