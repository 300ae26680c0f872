//! What can go wrong with a remote run.

use crate::error::BoxError;
use crate::outcome::GuestError;

/// A remote run's failure: the connection, the server, a request the
/// worker refused, or (for [`RemoteHost::call`](super::RemoteHost::call))
/// the guest's own failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The server could not be reached, or refused the login.
    #[error("connecting to NATS at {url}: {source}")]
    Connect {
        /// The server's URL.
        url: String,
        /// Why.
        source: BoxError,
    },
    /// The credentials file could not be read.
    #[error("reading NATS credentials {path}: {source}")]
    Credentials {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A step on the server failed (making a stream, publishing, reading).
    #[error("{what}: {source}")]
    Server {
        /// The step, e.g. `sending the request`.
        what: &'static str,
        /// Why.
        source: BoxError,
    },
    /// The request cannot be sent as it is (its id, its prefix).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The worker answered without running: `kind` is `request` (the
    /// request was refused), `load` (its module could not be had),
    /// `compile_limit` or `host`; the same `kind` and `exit_code` as a
    /// `--json` result.
    #[error("{kind}: {message}")]
    Refused {
        /// The `--json` result's `error.kind`.
        kind: String,
        /// What the worker said.
        message: String,
        /// The exit code a local run would end with.
        exit_code: u8,
    },
    /// The run failed ([`RemoteHost::call`](super::RemoteHost::call) only;
    /// [`run`](super::RemoteHost::run) returns the failed result).
    #[error(transparent)]
    Guest(#[from] GuestError),
    /// A result that is not a schema-1 result.
    #[error("a malformed result: {0}")]
    BadResult(String),
    /// The server ended the result stream before every result came.
    #[error("the server ended the result stream before the result came")]
    Closed,
}

impl RemoteError {
    /// A failed server step.
    pub(crate) fn server(what: &'static str, e: impl Into<BoxError>) -> RemoteError {
        RemoteError::Server {
            what,
            source: e.into(),
        }
    }
}
