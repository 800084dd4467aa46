//! A local directory as a source (also the in-memory-fast stand-in in tests and examples).

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::entry::{Entry, Mtime, is_safe_relative_path};
use crate::error::Error;
use crate::land::{LandError, land_stream};
use crate::source::{Listing, Sink, Source, Transfer, TransferStats};

/// A directory on this machine. Lists with a directory walk (symlinks are not followed,
/// only regular files are listed) and copies with hashing on the way.
#[derive(Debug, Clone)]
pub struct LocalSource {
    root: PathBuf,
}

impl LocalSource {
    /// A source for the tree under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalSource { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Source for LocalSource {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn list(&self, cancel: &AtomicBool) -> Result<Listing, Error> {
        let root_meta =
            std::fs::metadata(&self.root).map_err(|e| Error::io("open source", &self.root, e))?;
        if !root_meta.is_dir() {
            return Err(Error::io(
                "open source",
                &self.root,
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        let mut listing = Listing::default();
        for item in walkdir::WalkDir::new(&self.root).follow_links(false) {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let item = match item {
                Ok(i) => i,
                Err(e) => {
                    listing.warnings.push(e.to_string());
                    continue;
                }
            };
            if !item.file_type().is_file() {
                continue;
            }
            let Ok(rel) = item.path().strip_prefix(&self.root) else {
                continue;
            };
            let path = rel.as_os_str().as_bytes().to_vec();
            if !is_safe_relative_path(&path) {
                continue;
            }
            let meta = match item.metadata() {
                Ok(m) => m,
                Err(e) => {
                    listing.warnings.push(e.to_string());
                    continue;
                }
            };
            let mtime = meta
                .modified()
                .map(Mtime::from_system_time)
                .unwrap_or_default();
            listing.entries.push(Entry {
                path,
                size: meta.len(),
                mtime,
                mode: meta.permissions().mode() & 0o7777,
                hash: None,
            });
        }
        Ok(listing)
    }

    fn transfer(&self, job: &Transfer<'_>, sink: &dyn Sink) -> Result<TransferStats, Error> {
        let mut read = 0u64;
        for (i, entry) in job.entries.iter().enumerate() {
            let src = self.root.join(entry.path_os());
            let result = land_stream(
                entry,
                job.staging,
                |offset| {
                    let mut f = File::open(&src).map_err(|e| Error::io("open", &src, e))?;
                    f.seek(SeekFrom::Start(offset))
                        .map_err(|e| Error::io("seek", &src, e))?;
                    Ok(f)
                },
                job.rate,
                job.cancel,
                |n| {
                    read += n;
                    sink.bytes(n)
                },
            );
            match result {
                Ok(hash) => sink.landed(i, Some(hash)),
                // A file that vanished or cannot be read is lost for this run; the others go on.
                Err(LandError::Source(e)) => sink.failed(i, e),
                Err(LandError::Staging(e)) => return Err(e),
                Err(LandError::Cancelled) => return Err(Error::Cancelled),
            }
        }
        Ok(TransferStats {
            wire_bytes: Some(read),
        })
    }
}
