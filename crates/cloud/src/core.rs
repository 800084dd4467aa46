//! The synchronous facade over `object_store`: a private tokio runtime and the operations
//! both store kinds share. Nothing async leaves this module.

use std::io::{Read, Write};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::config::TransferOptions;
use crate::error::{Error, Result};
use crate::store::{Downloaded, Hasher, ObjectInfo, Progress, Uploaded, validate_key};

/// The shared engine of [`S3Store`](crate::S3Store) and [`LocalStore`](crate::LocalStore).
pub(crate) struct Core {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) os: Arc<dyn ObjectStore>,
    /// Key prefix inside the bucket/directory, without leading or trailing `/` ("" = none).
    pub(crate) prefix: String,
    /// For messages: endpoint URL or directory.
    pub(crate) endpoint: String,
    pub(crate) transfer: TransferOptions,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("endpoint", &self.endpoint)
            .field("prefix", &self.prefix)
            .field("transfer", &self.transfer)
            .finish_non_exhaustive()
    }
}

/// A multi-threaded runtime private to one store (two workers: part uploads are I/O bound).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cloud-io")
        .enable_all()
        .build()
        .map_err(|e| Error::Config {
            reason: format!("cannot start the I/O runtime: {e}"),
        })
}

/// Normalizes a configured prefix: trims `/`, checks its segments.
pub(crate) fn normalize_prefix(prefix: &str) -> Result<String> {
    let p = prefix.trim_matches('/');
    if !p.is_empty() {
        validate_key(p)?;
    }
    Ok(p.to_string())
}

/// Reads until `buf` holds `want` bytes or the reader is exhausted.
fn read_full(reader: &mut dyn Read, want: usize, key: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(want);
    let mut limited = reader.take(want as u64);
    loop {
        match limited.read_to_end(&mut buf) {
            Ok(_) => return Ok(buf),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Source {
                    key: key.to_string(),
                    source: e,
                });
            }
        }
    }
}

impl Core {
    pub(crate) fn path(&self, key: &str) -> Result<Path> {
        validate_key(key)?;
        let full = if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        };
        Path::parse(&full).map_err(|e| Error::InvalidKey {
            key: key.to_string(),
            reason: e.to_string(),
        })
    }

    /// The key of a location (the inverse of [`Core::path`]).
    fn key_of(&self, location: &Path) -> String {
        let s = location.as_ref();
        if self.prefix.is_empty() {
            s.to_string()
        } else {
            s.strip_prefix(&self.prefix)
                .map(|r| r.trim_start_matches('/').to_string())
                .unwrap_or_else(|| s.to_string())
        }
    }

    pub(crate) fn err(&self, e: object_store::Error, key: &str) -> Error {
        Error::from_object_store(e, key, key, &self.endpoint)
    }

    fn info(&self, m: object_store::ObjectMeta) -> ObjectInfo {
        ObjectInfo {
            key: self.key_of(&m.location),
            size: m.size,
            last_modified: m.last_modified.into(),
            etag: m.e_tag,
            version: m.version,
        }
    }

    pub(crate) fn upload(
        &self,
        key: &str,
        reader: &mut dyn Read,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<Uploaded> {
        let path = self.path(key)?;
        let part_size = usize::try_from(self.transfer.part_size).map_err(|_| Error::Config {
            reason: "part size does not fit in memory".into(),
        })?;
        let concurrency = self.transfer.concurrency;
        let os = Arc::clone(&self.os);
        self.rt.block_on(async {
            let mut hasher = Hasher::new();
            // The blocking reads below run on the caller's thread (block_on), never on a
            // runtime worker: the part uploads proceed on the workers meanwhile.
            let first = read_full(reader, part_size, key)?;
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            hasher.update(&first);
            let mut size = first.len() as u64;
            if first.len() < part_size {
                let res = os
                    .put(&path, PutPayload::from(first))
                    .await
                    .map_err(|e| self.err(e, key))?;
                progress.advance(size);
                return Ok(Uploaded {
                    key: key.to_string(),
                    size,
                    sha256: hasher.finish(),
                    parts: 1,
                    etag: res.e_tag,
                });
            }
            let upload = os
                .put_multipart(&path)
                .await
                .map_err(|e| self.err(e, key))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, part_size);
            w.put(Bytes::from(first));
            progress.advance(size);
            let mut parts = 1u64;
            loop {
                if let Err(e) = w.wait_for_capacity(concurrency).await {
                    let _ = w.abort().await;
                    return Err(self.err(e, key));
                }
                if cancel.load(Ordering::Relaxed) {
                    let _ = w.abort().await;
                    return Err(Error::Cancelled);
                }
                let buf = match read_full(reader, part_size, key) {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = w.abort().await;
                        return Err(e);
                    }
                };
                if buf.is_empty() {
                    break;
                }
                hasher.update(&buf);
                size += buf.len() as u64;
                parts += 1;
                progress.advance(buf.len() as u64);
                let last = buf.len() < part_size;
                w.put(Bytes::from(buf));
                if last {
                    break;
                }
            }
            let res = w.finish().await.map_err(|e| self.err(e, key))?;
            Ok(Uploaded {
                key: key.to_string(),
                size,
                sha256: hasher.finish(),
                parts,
                etag: res.e_tag,
            })
        })
    }

    pub(crate) fn download(
        &self,
        key: &str,
        out: &mut dyn Write,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<Downloaded> {
        let path = self.path(key)?;
        self.rt.block_on(async {
            let res = self.os.get(&path).await.map_err(|e| self.err(e, key))?;
            let mut stream = res.into_stream();
            let mut hasher = Hasher::new();
            let mut size = 0u64;
            while let Some(chunk) = stream.next().await {
                if cancel.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                let chunk = chunk.map_err(|e| self.err(e, key))?;
                hasher.update(&chunk);
                out.write_all(&chunk).map_err(|e| Error::Sink {
                    key: key.to_string(),
                    source: e,
                })?;
                size += chunk.len() as u64;
                progress.advance(chunk.len() as u64);
            }
            out.flush().map_err(|e| Error::Sink {
                key: key.to_string(),
                source: e,
            })?;
            Ok(Downloaded {
                size,
                sha256: hasher.finish(),
            })
        })
    }

    pub(crate) fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>> {
        let path = self.path(key)?;
        if range.is_empty() {
            return Ok(Vec::new());
        }
        self.rt
            .block_on(self.os.get_range(&path, range))
            .map(|b| b.to_vec())
            .map_err(|e| self.err(e, key))
    }

    pub(crate) fn head(&self, key: &str) -> Result<ObjectInfo> {
        let path = self.path(key)?;
        let m = self
            .rt
            .block_on(self.os.head(&path))
            .map_err(|e| self.err(e, key))?;
        Ok(self.info(m))
    }

    pub(crate) fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let p = prefix.trim_matches('/');
        let path = if p.is_empty() {
            if self.prefix.is_empty() {
                None
            } else {
                Some(Path::from(self.prefix.as_str()))
            }
        } else {
            Some(self.path(p)?)
        };
        let target = if p.is_empty() { "(all)" } else { p };
        let mut out = self.rt.block_on(async {
            let mut stream = self.os.list(path.as_ref());
            let mut out = Vec::new();
            while let Some(m) = stream.next().await {
                out.push(self.info(m.map_err(|e| self.err(e, target))?));
            }
            Ok::<_, Error>(out)
        })?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Plain delete of the current object (no versions).
    pub(crate) fn delete_plain(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match self.rt.block_on(self.os.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(e, key)),
        }
    }
}
