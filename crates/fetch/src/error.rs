//! The crate's one error type.

use std::io;
use std::path::PathBuf;

use crate::entry::ContentHash;
use crate::listing::ListingError;

/// Everything that can go wrong while listing or fetching. Variants are what a caller
/// branches on; context is in fields.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host could not be reached: name not resolved, connection refused or timed out.
    #[error("cannot reach {host}: {detail}")]
    Unreachable {
        /// The host as configured.
        host: String,
        /// What ssh (or the socket) said.
        detail: String,
    },
    /// The server refused every key we offered (wrong key, key not authorized).
    #[error("authentication to {host} failed (wrong or unauthorized key): {detail}")]
    AuthFailed {
        /// The host as configured.
        host: String,
        /// What ssh (or libssh2) said.
        detail: String,
    },
    /// The host presented a key that differs from the one in known_hosts.
    #[error(
        "host key of {host} does not match known_hosts (REMOTE HOST IDENTIFICATION HAS CHANGED): {detail}"
    )]
    HostKeyMismatch {
        /// The host as configured.
        host: String,
        /// What ssh (or libssh2) said.
        detail: String,
    },
    /// The host's key is not in known_hosts and strict checking is on.
    #[error("host key of {host} is not in known_hosts: {detail}")]
    HostKeyUnknown {
        /// The host as configured.
        host: String,
        /// What ssh (or libssh2) said.
        detail: String,
    },
    /// Some other ssh failure (exit 255) that none of the above describes.
    #[error("ssh to {host} failed: {detail}")]
    Ssh {
        /// The host as configured.
        host: String,
        /// What ssh said.
        detail: String,
    },
    /// The remote command (`find`, `b3sum`, the shell) failed.
    #[error("remote command `{command}` on {host} failed (exit {status:?}): {stderr}")]
    RemoteCommand {
        /// The host as configured.
        host: String,
        /// Which command.
        command: &'static str,
        /// Its exit status, if it exited.
        status: Option<i32>,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// rsync failed for a reason other than the ssh connection.
    #[error("rsync from {host} failed (exit {status:?}): {stderr}")]
    Rsync {
        /// The host as configured.
        host: String,
        /// rsync's exit status, if it exited.
        status: Option<i32>,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// An SFTP operation failed.
    #[error("sftp {op} on {host} failed{}: {detail}", path.as_ref().map(|p| format!(" for {}", p.display())).unwrap_or_default())]
    Sftp {
        /// The host as configured.
        host: String,
        /// Which operation (`open`, `read`, `readdir`, ...).
        op: &'static str,
        /// The remote path, when there is one.
        path: Option<PathBuf>,
        /// What libssh2 said.
        detail: String,
    },
    /// The SFTP path cannot honour this ssh configuration (e.g. ProxyJump).
    #[error(
        "the native SFTP path does not support ssh option {option} (set for {host}); use the rsync source"
    )]
    SftpUnsupported {
        /// The host as configured.
        host: String,
        /// The ssh option name.
        option: String,
    },
    /// The remote listing could not be parsed.
    #[error("bad listing from {host}: {source}")]
    Listing {
        /// The host as configured.
        host: String,
        /// The parse error.
        #[source]
        source: ListingError,
    },
    /// Fetching the next file would pass the staging limit; the run stopped before it.
    #[error(
        "staging area {} full: {used} bytes used, next file needs {needed} more, limit {limit} bytes ({kind})",
        staging.display()
    )]
    StagingFull {
        /// The staging directory.
        staging: PathBuf,
        /// Which limit: `max bytes in staging` or `min free bytes on disk`.
        kind: &'static str,
        /// Bytes in use (staged plus already admitted in this run).
        used: u64,
        /// Bytes the next file needs.
        needed: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The file landed but its hash differs from the hash the source listed.
    #[error("{path}: content hash {actual} differs from the remote hash {expected}")]
    HashMismatch {
        /// The entry path (lossy UTF-8).
        path: String,
        /// The remote hash.
        expected: ContentHash,
        /// What arrived.
        actual: ContentHash,
    },
    /// The transfer ended without this file arriving (vanished, unreadable on the remote).
    #[error("{path} was not transferred: {detail}")]
    NotTransferred {
        /// The entry path (lossy UTF-8).
        path: String,
        /// The last transfer error, if any.
        detail: String,
    },
    /// A local file kept changing while it was read in place (size or mtime differed
    /// before and after each attempt): no consistent content could be read.
    #[error("{} kept changing while it was read ({attempts} attempts)", path.display())]
    ChangedWhileReading {
        /// The file.
        path: PathBuf,
        /// How many times it was read.
        attempts: u32,
    },
    /// A local file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What we were doing.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A program (ssh, rsync) could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The cancel flag was set.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// True for failures that may go away on their own (network trouble, a dropped
    /// connection): the fetcher retries these with backoff. Authentication, host keys,
    /// staging space and cancellation are never retried.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Unreachable { .. }
                | Error::Ssh { .. }
                | Error::Rsync { .. }
                | Error::Sftp { .. }
        )
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
