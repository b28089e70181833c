//! The harness's one error type: every failure names what was being done and, where a
//! person can act on it, what to do next.

use std::time::Duration;

/// Everything the harness library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An aimed fault was armed but its reply never came in time (the process was down
    /// or never reached that point): nothing was done to the system, so this is not a
    /// fault that failed.
    #[error("{0}")]
    NotFired(String),
    /// The Docker engine did not answer; the message says where we looked and how to start one.
    #[error(
        "no Docker engine answers at {endpoint}: {reason}\n  \
         start one with `bash docker/setup.sh`, or point DOCKER_HOST at a running engine"
    )]
    EngineDown {
        /// `DOCKER_HOST` or the socket path that was tried.
        endpoint: String,
        /// What went wrong while connecting.
        reason: String,
    },
    /// A Docker API call failed.
    #[error("docker: {what}: {source}")]
    Docker {
        /// The call, in words (e.g. "start container chaosbank-ab12-postgres").
        what: String,
        /// The engine's answer.
        #[source]
        source: bollard::errors::Error,
    },
    /// A host command (docker CLI, nsenter, iptables, a build script) failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, for copy-paste.
        command: String,
        /// Its exit status, or why it could not run.
        status: String,
        /// The last lines it printed on stderr.
        stderr: String,
    },
    /// Something did not happen in time (readiness, an image build, a fault's effect).
    #[error("timed out after {:.1?} waiting for {what}; last error: {last}", after)]
    Timeout {
        /// What we were waiting for.
        what: String,
        /// How long we waited.
        after: Duration,
        /// The last error seen while polling.
        last: String,
    },
    /// A node name that the cluster does not have.
    #[error("no node named {0:?} in this cluster")]
    UnknownNode(String),
    /// An image recipe, binary or configuration is missing or malformed.
    #[error("{0}")]
    Config(String),
    /// A file-system error, with the path it happened on.
    #[error("{what}: {source}")]
    Io {
        /// The operation and path.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The harness's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a bollard error with what we were doing.
    pub fn docker(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Error {
        let what = what.into();
        move |source| Error::Docker { what, source }
    }

    /// Wraps an I/O error with what we were doing.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}
