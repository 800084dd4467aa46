//! A local directory as a source (also the in-memory-fast stand-in in tests and examples).

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::entry::{ContentHash, Entry, Mtime, is_safe_relative_path};
use crate::error::Error;
use crate::land::{LandError, land_stream};
use crate::source::{Listing, Prune, Sink, Source, Transfer, TransferStats};

/// A directory on this machine. Lists with a directory walk (symlinks are not followed,
/// only regular files are listed) and copies with hashing on the way.
#[derive(Debug, Clone)]
pub struct LocalSource {
    root: PathBuf,
    prune: Option<Prune>,
}

/// A local file read where it lies ([`LocalSource::hash_in_place`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InPlace {
    /// The file (the source root joined with the entry's path).
    pub path: PathBuf,
    /// Its size as read.
    pub size: u64,
    /// Its mtime as read.
    pub mtime: Mtime,
    /// BLAKE3 of what was read.
    pub hash: ContentHash,
    /// True when size or mtime differ from the listing: the file changed in between;
    /// record what was read.
    pub changed_since_listing: bool,
}

/// How often [`LocalSource::hash_in_place`] reads a file that changes under it.
const IN_PLACE_ATTEMPTS: u32 = 3;

impl LocalSource {
    /// A source for the tree under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalSource {
            root: root.into(),
            prune: None,
        }
    }

    /// The same source, listing without what `prune` leaves out.
    pub fn pruned(mut self, prune: Prune) -> Self {
        self.prune = Some(prune);
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Hashes the file of `entry` where it lies, without copying it anywhere: for callers
    /// that read it again later and check it against this hash then (a local source needs
    /// no staging copy).
    ///
    /// The file is opened without following a symlink in its last component and must be a
    /// regular file. Size and mtime are taken from the open file before and after the
    /// read; when they differ (the file was written meanwhile) it is read again, up to
    /// three times, then [`Error::ChangedWhileReading`]. A file that vanished or cannot be
    /// read gives [`Error::Io`].
    pub fn hash_in_place(&self, entry: &Entry, cancel: &AtomicBool) -> Result<InPlace, Error> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.root.join(entry.path_os());
        let stamp = |f: &File| -> Result<(u64, Mtime), Error> {
            let m = f.metadata().map_err(|e| Error::io("stat", &path, e))?;
            if !m.is_file() {
                return Err(Error::io(
                    "read",
                    &path,
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
                ));
            }
            let mtime = m
                .modified()
                .map(Mtime::from_system_time)
                .unwrap_or_default();
            Ok((m.len(), mtime))
        };
        let mut buf = crate::read_buffer(entry.size, 1 << 20);
        for _ in 0..IN_PLACE_ATTEMPTS {
            let mut f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
                .open(&path)
                .map_err(|e| Error::io("open", &path, e))?;
            let before = stamp(&f)?;
            let mut hasher = blake3::Hasher::new();
            let mut read = 0u64;
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                let n = match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::io("read", &path, e)),
                };
                hasher.update(&buf[..n]);
                read += n as u64;
            }
            let after = stamp(&f)?;
            if before == after && read == after.0 {
                return Ok(InPlace {
                    changed_since_listing: after.0 != entry.size || after.1 != entry.mtime,
                    path,
                    size: read,
                    mtime: after.1,
                    hash: ContentHash(*hasher.finalize().as_bytes()),
                });
            }
        }
        Err(Error::ChangedWhileReading {
            path,
            attempts: IN_PLACE_ATTEMPTS,
        })
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
        let root = &self.root;
        let keep = |e: &walkdir::DirEntry| match (&self.prune, e.path().strip_prefix(root)) {
            (Some(p), Ok(rel)) if e.depth() > 0 => {
                !p.leaves_out(rel.as_os_str().as_bytes(), e.file_type().is_dir())
            }
            _ => true,
        };
        for item in walkdir::WalkDir::new(&self.root)
            .follow_links(false)
            .into_iter()
            .filter_entry(keep)
        {
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
