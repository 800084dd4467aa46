//! Object storage for tapebackup: Backblaze B2 and any other S3-compatible server, or a
//! plain directory, behind one synchronous [`Store`] trait.
//!
//! This crate is the only async code in tapebackup: it drives the `object_store` crate
//! (which does the SigV4 signing, multipart protocol and retries) on a private tokio runtime
//! and offers blocking methods. Uploads stream from any [`std::io::Read`] and are cut into
//! parts sent in parallel; everything that goes out or comes in is hashed (SHA-256), so a
//! caller can record what landed and later [verify](Store::verify) it. Deletes remove every
//! version of a key, because on a versioned bucket (B2's are always versioned) a plain
//! DELETE only hides the object.
//!
//! # Brief overview
//!
//! * [`Store`] — the seam: upload, download, head, list, delete, presign, verify.
//! * [`S3Store`] — an S3-compatible bucket, configured by [`S3Config`] (from code or from
//!   the environment: `TAPEBACKUP_S3_*` or `AWS_*`).
//! * [`LocalStore`] — a directory as an object store (tests, NFS, air-gapped copies).
//! * [`Error`] — one error enum whose variants say what to do next: [`Error::AccessDenied`]
//!   (fix credentials), [`Error::Unavailable`] (retry later, resume),
//!   [`Error::HashMismatch`] (the object is corrupt), …
//! * [`Sha256`], [`Uploaded`], [`Expected`] — what is recorded about an object and checked.
//!
//! # Example
//!
//! ```
//! use std::sync::atomic::AtomicBool;
//! use cloud::{Expected, LocalStore, NoProgress, Store, TransferOptions, VerifyDepth};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = LocalStore::new(dir.path(), TransferOptions::default())?;
//! let data = vec![7u8; 300_000];
//! let up = store.upload("archives/h/0/chunk-000000", &mut &data[..], &NoProgress, &AtomicBool::new(false))?;
//! assert_eq!(up.size, 300_000);
//! store.verify(&up.key, &Expected { size: up.size, sha256: up.sha256 }, VerifyDepth::Content)?;
//! assert_eq!(store.list("archives/h")?.len(), 1);
//! assert_eq!(store.get(&up.key)?, data);
//! store.delete(&up.key)?;
//! assert!(matches!(store.head(&up.key), Err(cloud::Error::NotFound { .. })));
//! # Ok(())
//! # }
//! ```
//!
//! The same code runs against an [`S3Store`]; the test suite runs its scenarios on both,
//! with a real SeaweedFS server ([`seaweedfs`] is the harness, usable by other crates' tests).
#![deny(missing_docs)]

mod config;
mod core;
mod error;
mod local;
mod s3;
pub mod seaweedfs;
mod store;
mod versions;

pub use config::{
    DEFAULT_PART_SIZE, ENV_VARS, MAX_PART_SIZE, MAX_PRESIGN, MIN_PART_SIZE, RetryPolicy, S3Config,
    Secret, TransferOptions,
};
pub use error::{BoxError, Error, Result};
pub use local::LocalStore;
pub use s3::S3Store;
pub use store::{
    Deleted, Downloaded, Expected, NoProgress, ObjectInfo, ParseSha256Error, PresignedUrl,
    Progress, Sha256, Store, Uploaded, VerifyDepth, validate_key,
};
pub use versions::{
    VersionEntry, VersionPage, Versioning, XmlError, parse_list_versions, parse_versioning,
};
