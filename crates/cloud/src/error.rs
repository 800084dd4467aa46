//! The crate's one error type.

use std::io;

/// A boxed error from a lower layer (HTTP client, object_store), kept as the `source`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong talking to an object store. Variants are the conditions a
/// caller branches on (retry later, fix credentials, re-upload, give up); context is in fields.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The object key is not usable (empty segment, `..`, control characters, …).
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store configuration is incomplete or inconsistent (no bucket, part size below
    /// 5 MiB, missing credentials, …).
    #[error("object store configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The server refused the credentials or the key has no right to this bucket/object
    /// (HTTP 401/403: wrong secret, key scoped to another bucket, clock skew).
    #[error(
        "access denied to {target} (check the access key, secret, the key's bucket scope and the clock)"
    )]
    AccessDenied {
        /// Bucket or object the request was for.
        target: String,
        /// The server's answer.
        #[source]
        source: BoxError,
    },
    /// The object does not exist.
    #[error("object {key} not found")]
    NotFound {
        /// The key (relative to the store's prefix).
        key: String,
    },
    /// The store could not be reached, or kept failing, after all retries (connection refused,
    /// reset, timeout). Worth retrying later; an interrupted upload can be resumed.
    #[error("object store {endpoint} unavailable (after retries)")]
    Unavailable {
        /// Endpoint or directory of the store.
        endpoint: String,
        /// The last failure.
        #[source]
        source: BoxError,
    },
    /// The object that landed does not have the expected size.
    #[error("object {key}: size is {actual} bytes, expected {expected}")]
    SizeMismatch {
        /// The key.
        key: String,
        /// Size the caller expected.
        expected: u64,
        /// Size the store reports or returned.
        actual: u64,
    },
    /// The object's content does not hash to the expected SHA-256: corrupted or replaced.
    #[error("object {key}: SHA-256 is {actual}, expected {expected}")]
    HashMismatch {
        /// The key.
        key: String,
        /// Expected SHA-256, lowercase hex.
        expected: String,
        /// SHA-256 of what was read back, lowercase hex.
        actual: String,
    },
    /// The caller's cancel flag was set; a multipart upload in progress was aborted.
    #[error("cancelled")]
    Cancelled,
    /// Reading the data to upload failed (the caller's reader returned an error).
    #[error("reading the data to upload to {key}")]
    Source {
        /// The key being uploaded.
        key: String,
        /// The reader's error.
        #[source]
        source: io::Error,
    },
    /// Writing downloaded data to the caller's writer failed.
    #[error("writing the download of {key}")]
    Sink {
        /// The key being downloaded.
        key: String,
        /// The writer's error.
        #[source]
        source: io::Error,
    },
    /// The operation is not available on this kind of store.
    #[error("{operation} is not supported by {store}")]
    Unsupported {
        /// What was asked.
        operation: &'static str,
        /// Which store.
        store: String,
    },
    /// The server answered something we could not understand (bad XML, unexpected status).
    #[error("unexpected answer from {target}: {detail}")]
    Protocol {
        /// Bucket or object the request was for.
        target: String,
        /// What was wrong with the answer.
        detail: String,
    },
    /// Any other failure of a request, with the underlying error.
    #[error("object store request for {target} failed")]
    Backend {
        /// Bucket or object the request was for.
        target: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True for failures that may go away by themselves: worth a later retry or a resume.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// Maps an `object_store` error for a request about `target` on the store at `endpoint`.
    pub(crate) fn from_object_store(
        e: object_store::Error,
        key: &str,
        target: &str,
        endpoint: &str,
    ) -> Error {
        use object_store::Error as E;
        match e {
            E::NotFound { .. } => Error::NotFound {
                key: key.to_string(),
            },
            E::PermissionDenied { source, .. } | E::Unauthenticated { source, .. } => {
                Error::AccessDenied {
                    target: target.to_string(),
                    source,
                }
            }
            other => {
                if is_denied_status(&other) {
                    Error::AccessDenied {
                        target: target.to_string(),
                        source: Box::new(other),
                    }
                } else if is_connection_failure(&other) {
                    Error::Unavailable {
                        endpoint: endpoint.to_string(),
                        source: Box::new(other),
                    }
                } else {
                    Error::Backend {
                        target: target.to_string(),
                        source: Box::new(other),
                    }
                }
            }
        }
    }
}

/// True when a request inside a `Generic` error (object_store wraps list failures that way)
/// was answered 401 or 403. object_store's `RetryError`, which carries the status, is not a
/// public type, so this reads the status from its message — the one place we do that.
fn is_denied_status(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if text.contains("status code: 403") || text.contains("status code: 401") {
            return true;
        }
        cur = err.source();
    }
    false
}

/// True when somewhere in the chain is an HTTP-level failure to connect or to complete the
/// exchange (as opposed to an answer the server gave), or a local I/O error of that kind.
pub(crate) fn is_connection_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<HttpError>() {
            return matches!(
                h.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            );
        }
        if let Some(r) = err.downcast_ref::<reqwest::Error>() {
            return r.is_connect() || r.is_timeout() || r.is_request();
        }
        cur = err.source();
    }
    false
}
