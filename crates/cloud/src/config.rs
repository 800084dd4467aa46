//! Store configuration: endpoint, bucket, credentials, transfer and retry settings.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};

/// Smallest multipart part the S3 API accepts (except for the last part): 5 MiB.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest part the S3 API accepts: 5 GiB.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Default part size: 100 MiB, Backblaze B2's recommendation.
pub const DEFAULT_PART_SIZE: u64 = 100 * 1024 * 1024;
/// Longest validity of a SigV4 presigned URL: 7 days.
pub const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);

/// A secret string (S3 secret access key). Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The secret itself, for handing to the signer. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How large uploads are cut and how many parts are in flight at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferOptions {
    /// Size of each multipart part in bytes (5 MiB ..= 5 GiB; default 100 MiB). Objects not
    /// larger than one part are sent with a single PUT.
    pub part_size: u64,
    /// Parts uploaded in parallel (default 4). Memory use is about `part_size × (concurrency + 1)`.
    pub concurrency: usize,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            part_size: DEFAULT_PART_SIZE,
            concurrency: 4,
        }
    }
}

impl TransferOptions {
    /// Checks the limits the S3 API imposes.
    pub fn validate(&self) -> Result<()> {
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(Error::Config {
                reason: format!(
                    "part size {} is outside the S3 limits {MIN_PART_SIZE}..={MAX_PART_SIZE} bytes",
                    self.part_size
                ),
            });
        }
        if self.concurrency == 0 || self.concurrency > 64 {
            return Err(Error::Config {
                reason: format!("concurrency {} is not within 1..=64", self.concurrency),
            });
        }
        Ok(())
    }
}

/// Retries with exponential backoff (and jitter) for every request: connection failures,
/// dropped connections, 5xx answers and timeouts of idempotent requests are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries per request after the first attempt (default 10).
    pub max_retries: usize,
    /// First backoff (default 100 ms); doubles each time.
    pub initial_backoff: Duration,
    /// Longest backoff (default 15 s).
    pub max_backoff: Duration,
    /// No retry is started after this much time since the first attempt (default 3 min).
    pub timeout: Duration,
    /// Timeout of one HTTP request (default 5 min; a 100 MiB part at 1 MB/s needs 100 s).
    pub request_timeout: Duration,
    /// Timeout to establish a connection (default 10 s).
    pub connect_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            timeout: Duration::from_secs(180),
            request_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Where and how to reach an S3-compatible bucket.
///
/// Build it in code, or with [`S3Config::from_env`]. Credentials come from here or from the
/// environment, never from a command line.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Endpoint URL, e.g. `https://s3.us-west-004.backblazeb2.com` or `http://127.0.0.1:8333`.
    pub endpoint: String,
    /// Region used in the signature (B2: the part of the endpoint such as `us-west-004`;
    /// most other servers accept `us-east-1`).
    pub region: String,
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket that every key of this store lives under (may be empty).
    pub prefix: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
    /// Allow plain `http://` endpoints (local test servers). B2 and AWS need HTTPS.
    pub allow_http: bool,
    /// Part size and parallelism.
    pub transfer: TransferOptions,
    /// Retry and timeout policy.
    pub retry: RetryPolicy,
}

/// Environment variables [`S3Config::from_env`] reads, first match wins.
pub const ENV_VARS: &[(&str, &[&str])] = &[
    (
        "endpoint",
        &[
            "TAPEBACKUP_S3_ENDPOINT",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL",
        ],
    ),
    (
        "region",
        &["TAPEBACKUP_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"],
    ),
    ("bucket", &["TAPEBACKUP_S3_BUCKET"]),
    ("prefix", &["TAPEBACKUP_S3_PREFIX"]),
    (
        "access_key_id",
        &["TAPEBACKUP_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"],
    ),
    (
        "secret_access_key",
        &["TAPEBACKUP_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"],
    ),
];

fn env_first(field: &str) -> Option<String> {
    ENV_VARS
        .iter()
        .find(|(f, _)| *f == field)
        .and_then(|(_, names)| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        })
}

impl S3Config {
    /// A configuration with default transfer and retry settings. HTTP is allowed only when
    /// the endpoint starts with `http://`.
    pub fn new(
        endpoint: impl Into<String>,
        region: impl Into<String>,
        bucket: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: Secret,
    ) -> S3Config {
        let endpoint = endpoint.into();
        S3Config {
            allow_http: endpoint.starts_with("http://"),
            endpoint,
            region: region.into(),
            bucket: bucket.into(),
            prefix: String::new(),
            access_key_id: access_key_id.into(),
            secret_access_key,
            transfer: TransferOptions::default(),
            retry: RetryPolicy::default(),
        }
    }

    /// Fills every field that is empty in `self` from the environment (see [`ENV_VARS`]):
    /// `TAPEBACKUP_S3_*` first, then the usual `AWS_*` names.
    pub fn fill_from_env(mut self) -> S3Config {
        let fill = |slot: &mut String, field: &str| {
            if slot.is_empty()
                && let Some(v) = env_first(field)
            {
                *slot = v;
            }
        };
        fill(&mut self.endpoint, "endpoint");
        fill(&mut self.region, "region");
        fill(&mut self.bucket, "bucket");
        fill(&mut self.prefix, "prefix");
        fill(&mut self.access_key_id, "access_key_id");
        if self.secret_access_key.0.is_empty()
            && let Some(v) = env_first("secret_access_key")
        {
            self.secret_access_key = Secret(v);
        }
        if self.endpoint.starts_with("http://") {
            self.allow_http = true;
        }
        self
    }

    /// A configuration entirely from the environment (see [`ENV_VARS`]); region defaults to
    /// `us-east-1`.
    pub fn from_env() -> Result<S3Config> {
        let mut c = S3Config::new("", "", "", "", Secret::new("")).fill_from_env();
        if c.region.is_empty() {
            c.region = "us-east-1".to_string();
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks that everything needed is there and within limits.
    pub fn validate(&self) -> Result<()> {
        let missing = |what: &str| Error::Config {
            reason: format!("{what} is not set (config file or environment)"),
        };
        if self.endpoint.is_empty() {
            return Err(missing("S3 endpoint"));
        }
        if self.bucket.is_empty() {
            return Err(missing("S3 bucket"));
        }
        if self.access_key_id.is_empty() {
            return Err(missing("S3 access key id"));
        }
        if self.secret_access_key.0.is_empty() {
            return Err(missing("S3 secret access key"));
        }
        if self.region.is_empty() {
            return Err(missing("S3 region"));
        }
        if !(self.endpoint.starts_with("https://") || self.endpoint.starts_with("http://")) {
            return Err(Error::Config {
                reason: format!(
                    "endpoint {:?} must start with https:// or http://",
                    self.endpoint
                ),
            });
        }
        if self.endpoint.starts_with("http://") && !self.allow_http {
            return Err(Error::Config {
                reason: format!(
                    "endpoint {} is plain HTTP but allow_http is off",
                    self.endpoint
                ),
            });
        }
        self.transfer.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_never_printed() {
        let c = S3Config::new("http://x", "r", "b", "AK", Secret::new("hunter2"));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn validate_checks_limits() {
        let mut c = S3Config::new("http://x", "r", "b", "AK", Secret::new("s"));
        assert!(c.validate().is_ok());
        c.transfer.part_size = MIN_PART_SIZE - 1;
        assert!(matches!(c.validate(), Err(Error::Config { .. })));
        c.transfer.part_size = MIN_PART_SIZE;
        c.allow_http = false;
        assert!(matches!(c.validate(), Err(Error::Config { .. })));
        let c = S3Config::new("ftp://x", "r", "b", "AK", Secret::new("s"));
        assert!(matches!(c.validate(), Err(Error::Config { .. })));
        let c = S3Config::new("https://x", "r", "", "AK", Secret::new("s"));
        assert!(matches!(c.validate(), Err(Error::Config { .. })));
    }
}
