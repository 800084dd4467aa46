//! [`S3Store`]: any S3-compatible endpoint (Backblaze B2, AWS, Ceph RGW, SeaweedFS, …).

use std::io::{Read, Write};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsAuthorizer, AwsCredential};
use object_store::client::HttpRequestBody;
use object_store::signer::{Method, Signer};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use crate::config::{MAX_PRESIGN, RetryPolicy, S3Config};
use crate::core::{Core, normalize_prefix, runtime};
use crate::error::{Error, Result};
use crate::store::{
    Deleted, Downloaded, ObjectInfo, PresignedUrl, Progress, Store, Uploaded, validate_key,
};
use crate::versions::{Versioning, parse_list_versions, parse_versioning};

/// A bucket (and optional key prefix) on an S3-compatible server.
///
/// Uploads are multipart with parallel parts above one part size, every request is retried
/// with exponential backoff, [`Store::delete`] removes every version of a key, and
/// [`Store::presign_get`] makes SigV4 query-signed URLs.
pub struct S3Store {
    core: Core,
    s3: Arc<AmazonS3>,
    http: reqwest::Client,
    credential: AwsCredential,
    region: String,
    /// `endpoint/bucket` (path-style addressing, which every S3-compatible server accepts).
    bucket_url: String,
    bucket: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket_url", &self.bucket_url)
            .field("prefix", &self.core.prefix)
            .field("access_key_id", &self.credential.key_id)
            .finish_non_exhaustive()
    }
}

/// rustls needs a process-wide crypto provider; we ship ring (no aws-lc-sys build). If the
/// embedding program installed another one first, that one stays.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Percent-encodes per the S3 rules: unreserved characters stay, everything else is `%XX`;
/// `/` stays when `keep_slash`.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl S3Store {
    /// Connects (lazily: no request is made here) to the bucket described by `config`.
    pub fn new(config: &S3Config) -> Result<S3Store> {
        config.validate()?;
        install_crypto_provider();
        let prefix = normalize_prefix(&config.prefix)?;
        let retry = config.retry;
        let retry_config = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: retry.initial_backoff,
                max_backoff: retry.max_backoff,
                base: 2.0,
            },
            max_retries: retry.max_retries,
            retry_timeout: retry.timeout,
        };
        let client_options = ClientOptions::new()
            .with_allow_http(config.allow_http)
            .with_timeout(retry.request_timeout)
            .with_connect_timeout(retry.connect_timeout);
        let endpoint = config.endpoint.trim_end_matches('/').to_string();
        let s3 = AmazonS3Builder::new()
            .with_endpoint(&endpoint)
            .with_region(&config.region)
            .with_bucket_name(&config.bucket)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(config.secret_access_key.expose())
            .with_virtual_hosted_style_request(false)
            .with_client_options(client_options)
            .with_retry(retry_config)
            .build()
            .map_err(|e| Error::Config {
                reason: format!("S3 client for {endpoint}: {e}"),
            })?;
        let s3 = Arc::new(s3);
        let http = reqwest::Client::builder()
            .timeout(retry.request_timeout)
            .connect_timeout(retry.connect_timeout)
            .https_only(!config.allow_http)
            .build()
            .map_err(|e| Error::Config {
                reason: format!("HTTP client: {e}"),
            })?;
        let os: Arc<dyn ObjectStore> = s3.clone();
        Ok(S3Store {
            core: Core {
                rt: runtime()?,
                os,
                prefix,
                endpoint: endpoint.clone(),
                transfer: config.transfer,
            },
            s3,
            http,
            credential: AwsCredential {
                key_id: config.access_key_id.clone(),
                secret_key: config.secret_access_key.expose().to_string(),
                token: None,
            },
            region: config.region.clone(),
            bucket_url: format!("{endpoint}/{}", config.bucket),
            bucket: config.bucket.clone(),
            retry,
        })
    }

    /// Full key in the bucket (with the store's prefix).
    fn full_key(&self, key: &str) -> Result<String> {
        validate_key(key)?;
        Ok(if self.core.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.core.prefix)
        })
    }

    /// One SigV4-signed request outside object_store's API (bucket-level calls, versions),
    /// retried with backoff on connection failures and 5xx answers.
    async fn signed(
        &self,
        method: Method,
        url: &str,
        body: Vec<u8>,
        target: &str,
    ) -> Result<(http::StatusCode, Bytes)> {
        let mut backoff = self.retry.initial_backoff;
        let started = std::time::Instant::now();
        let mut attempt = 0usize;
        loop {
            let mut req = http::Request::builder()
                .method(method.clone())
                .uri(url)
                .body(HttpRequestBody::from(body.clone()))
                .map_err(|e| Error::InvalidKey {
                    key: target.to_string(),
                    reason: e.to_string(),
                })?;
            AwsAuthorizer::new(&self.credential, "s3", &self.region)
                .try_authorize(&mut req, None)
                .map_err(|e| Error::Backend {
                    target: target.to_string(),
                    source: Box::new(e),
                })?;
            let (parts, _) = req.into_parts();
            let sent = self
                .http
                .request(parts.method, url)
                .headers(parts.headers)
                .body(body.clone())
                .send()
                .await;
            let retryable_err: Error = match sent {
                Ok(resp) => {
                    let status = resp.status();
                    match resp.bytes().await {
                        Ok(bytes) if status.is_server_error() => Error::Protocol {
                            target: target.to_string(),
                            detail: format!("{status}: {}", excerpt(&bytes)),
                        },
                        Ok(bytes) => return Ok((status, bytes)),
                        Err(e) => Error::Unavailable {
                            endpoint: self.core.endpoint.clone(),
                            source: Box::new(e),
                        },
                    }
                }
                Err(e) => Error::Unavailable {
                    endpoint: self.core.endpoint.clone(),
                    source: Box::new(e),
                },
            };
            attempt += 1;
            if attempt > self.retry.max_retries || started.elapsed() > self.retry.timeout {
                return Err(retryable_err);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.retry.max_backoff);
        }
    }

    /// Maps a non-success status of a direct request to an error.
    fn status_error(&self, status: http::StatusCode, body: &[u8], target: &str) -> Error {
        match status.as_u16() {
            401 | 403 => Error::AccessDenied {
                target: target.to_string(),
                source: format!("{status}: {}", excerpt(body)).into(),
            },
            404 => Error::NotFound {
                key: target.to_string(),
            },
            _ => Error::Protocol {
                target: target.to_string(),
                detail: format!("{status}: {}", excerpt(body)),
            },
        }
    }

    /// Creates the bucket; an existing bucket owned by these credentials is fine.
    pub fn create_bucket(&self) -> Result<()> {
        let target = format!("bucket {}", self.bucket);
        let (status, body) = self.core.rt.block_on(self.signed(
            Method::PUT,
            &self.bucket_url,
            Vec::new(),
            &target,
        ))?;
        if status.is_success()
            || (status.as_u16() == 409 && excerpt(&body).contains("BucketAlreadyOwnedByYou"))
        {
            return Ok(());
        }
        Err(self.status_error(status, &body, &target))
    }

    /// The bucket's versioning state (`GetBucketVersioning`).
    pub fn versioning(&self) -> Result<Versioning> {
        let target = format!("bucket {}", self.bucket);
        let url = format!("{}?versioning", self.bucket_url);
        let (status, body) =
            self.core
                .rt
                .block_on(self.signed(Method::GET, &url, Vec::new(), &target))?;
        if !status.is_success() {
            return Err(self.status_error(status, &body, &target));
        }
        parse_versioning(&body).map_err(|e| Error::Protocol {
            target,
            detail: e.to_string(),
        })
    }

    /// Enables or suspends versioning (`PutBucketVersioning`). Backblaze B2 buckets are
    /// always versioned and ignore this call.
    pub fn set_versioning(&self, enabled: bool) -> Result<()> {
        let target = format!("bucket {}", self.bucket);
        let url = format!("{}?versioning", self.bucket_url);
        let status = if enabled { "Enabled" } else { "Suspended" };
        let body = format!(
            "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Status>{status}</Status></VersioningConfiguration>"
        );
        let (st, answer) =
            self.core
                .rt
                .block_on(self.signed(Method::PUT, &url, body.into_bytes(), &target))?;
        if !st.is_success() {
            return Err(self.status_error(st, &answer, &target));
        }
        Ok(())
    }

    /// Every version and delete marker of `key` (`ListObjectVersions`), or `None` when the
    /// server does not implement that call.
    pub fn versions(&self, key: &str) -> Result<Option<Vec<(String, bool)>>> {
        let full = self.full_key(key)?;
        self.core.rt.block_on(self.versions_of(&full))
    }

    /// Every version and delete marker of exactly `full_key` as `(version id, is delete
    /// marker)`, or `None` when the server does not implement `ListObjectVersions`.
    async fn versions_of(&self, full_key: &str) -> Result<Option<Vec<(String, bool)>>> {
        let mut out = Vec::new();
        let mut marker: Option<(String, String)> = None;
        loop {
            let mut url = format!(
                "{}?prefix={}&versions",
                self.bucket_url,
                uri_encode(full_key, false)
            );
            if let Some((k, v)) = &marker {
                url.push_str(&format!(
                    "&key-marker={}&version-id-marker={}",
                    uri_encode(k, false),
                    uri_encode(v, false)
                ));
            }
            let (status, body) = self.signed(Method::GET, &url, Vec::new(), full_key).await?;
            if matches!(status.as_u16(), 400 | 405 | 501) && marker.is_none() {
                return Ok(None);
            }
            if !status.is_success() {
                return Err(self.status_error(status, &body, full_key));
            }
            let page = parse_list_versions(&body).map_err(|e| Error::Protocol {
                target: full_key.to_string(),
                detail: e.to_string(),
            })?;
            out.extend(
                page.entries
                    .into_iter()
                    .filter(|e| e.key == full_key)
                    .map(|e| (e.version_id, e.delete_marker)),
            );
            match page.next {
                Some(next) if Some(&next) != marker.as_ref() => marker = Some(next),
                Some(_) => {
                    return Err(Error::Protocol {
                        target: full_key.to_string(),
                        detail: "ListObjectVersions pagination does not advance".into(),
                    });
                }
                None => return Ok(Some(out)),
            }
        }
    }
}

/// The first 300 characters of an answer body, for messages.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(300).collect()
}

impl Store for S3Store {
    fn location(&self) -> String {
        if self.core.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.core.prefix)
        }
    }

    fn upload(
        &self,
        key: &str,
        reader: &mut dyn Read,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<Uploaded> {
        self.core.upload(key, reader, progress, cancel)
    }

    fn download(
        &self,
        key: &str,
        out: &mut dyn Write,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<Downloaded> {
        self.core.download(key, out, progress, cancel)
    }

    fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>> {
        self.core.get_range(key, range)
    }

    fn head(&self, key: &str) -> Result<ObjectInfo> {
        self.core.head(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.core.list(prefix)
    }

    /// Lists every version and delete marker of the key (`ListObjectVersions`) and deletes
    /// each by version id; where the server has no versioning API, a plain DELETE. Then checks
    /// that a HEAD no longer finds the object.
    fn delete(&self, key: &str) -> Result<Deleted> {
        let full = self.full_key(key)?;
        let object_url = format!("{}/{}", self.bucket_url, uri_encode(&full, true));
        let mut deleted = Deleted::default();
        self.core.rt.block_on(async {
            match self.versions_of(&full).await? {
                Some(versions) if !versions.is_empty() => {
                    for (version, marker) in versions {
                        let url = format!("{object_url}?versionId={}", uri_encode(&version, false));
                        let (status, body) =
                            self.signed(Method::DELETE, &url, Vec::new(), key).await?;
                        if !(status.is_success() || status.as_u16() == 404) {
                            return Err(self.status_error(status, &body, key));
                        }
                        if marker {
                            deleted.delete_markers += 1;
                        } else {
                            deleted.versions += 1;
                        }
                    }
                    Ok(())
                }
                _ => Ok(()),
            }
        })?;
        // Unversioned servers, or a version listing that missed the current object: a plain
        // DELETE as well (idempotent).
        if deleted.versions == 0 {
            let existed = match self.core.head(key) {
                Ok(_) => true,
                Err(Error::NotFound { .. }) => false,
                Err(e) => return Err(e),
            };
            self.core.delete_plain(key)?;
            if existed {
                deleted.versions = 1;
            }
        }
        match self.core.head(key) {
            Err(Error::NotFound { .. }) => Ok(deleted),
            Ok(_) => Err(Error::Protocol {
                target: key.to_string(),
                detail: "object still readable after deleting all its versions".into(),
            }),
            Err(e) => Err(e),
        }
    }

    fn presign_get(&self, key: &str, expires_in: Duration) -> Result<PresignedUrl> {
        if expires_in.is_zero() || expires_in > MAX_PRESIGN {
            return Err(Error::Config {
                reason: format!(
                    "presigned URL lifetime {}s is not within 1s..=7 days",
                    expires_in.as_secs()
                ),
            });
        }
        let path = self.core.path(key)?;
        let now = SystemTime::now();
        let url = self
            .core
            .rt
            .block_on(self.s3.signed_url(Method::GET, &path, expires_in))
            .map_err(|e| self.core.err(e, key))?;
        Ok(PresignedUrl {
            url: url.to_string(),
            expires: Some(now + expires_in),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{S3Store, uri_encode};
    use crate::{S3Config, Secret, Store};

    #[test]
    fn https_client_builds_with_the_ring_provider() {
        // reqwest is built without a default rustls provider (no aws-lc-sys): building the
        // clients for an https endpoint must find ours installed instead of panicking.
        let c = S3Config::new(
            "https://s3.us-west-004.backblazeb2.com",
            "us-west-004",
            "bucket",
            "keyid",
            Secret::new("secret"),
        );
        let s = S3Store::new(&c).unwrap();
        assert_eq!(s.location(), "s3://bucket");
        let url = s
            .presign_get("a b/c", std::time::Duration::from_secs(60))
            .unwrap();
        assert!(
            url.url
                .starts_with("https://s3.us-west-004.backblazeb2.com/bucket/a%20b/c?")
        );
        assert!(url.url.contains("X-Amz-Expires=60"), "{}", url.url);
    }

    #[test]
    fn uri_encoding_follows_s3_rules() {
        assert_eq!(uri_encode("a b/ü~.-_", true), "a%20b/%C3%BC~.-_");
        assert_eq!(uri_encode("a/b+c", false), "a%2Fb%2Bc");
    }
}
