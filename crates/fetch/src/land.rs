//! Writing one streamed file into staging: resumable, hashed on the way, renamed into
//! place when complete. Used by the local and SFTP sources (rsync does its own).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::entry::{ContentHash, Entry};
use crate::error::Error;
use crate::source::{PARTIAL_DIR, RateLimit};

const CHUNK: usize = 256 * 1024;

/// Creates a partial directory that parallel transfers share. One that finishes removes the
/// directory when it is empty (`remove_dir` below), which can race with `create_dir_all` here:
/// it then fails with "already exists" (the directory went between its `mkdir` and its
/// check) or "not found" (a parent went). Both mean "try again".
fn create_partial_dir(dir: &Path) -> Result<(), LandError> {
    let mut attempts = 0;
    loop {
        match fs::create_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e)
                if attempts < 10
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotFound
                    ) =>
            {
                attempts += 1;
            }
            Err(e) => return Err(LandError::Staging(Error::io("create dir", dir, e))),
        }
    }
}

/// Where the partial data of `entry` lives: `<staging>/<dir>/.tapebackup-partial/<name>`.
pub(crate) fn partial_path(entry: &Entry, staging: &Path) -> PathBuf {
    let final_path = entry.staged_path(staging);
    let name = final_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let parent = final_path.parent().unwrap_or(staging);
    parent.join(PARTIAL_DIR).join(name)
}

/// Why a streamed file did not land.
pub(crate) enum LandError {
    /// Reading the source failed: this file is lost for now, the others go on.
    Source(Error),
    /// Writing staging failed (disk full, permissions): stop the batch.
    Staging(Error),
    /// The cancel flag was set; partial data is kept.
    Cancelled,
}

/// Streams one file into staging. `open_at(offset)` returns a reader positioned at
/// `offset`. A partial file left by an earlier run is resumed when its mtime still equals
/// the entry's (we stamp it on interruption) and it is not longer than the entry.
pub(crate) fn land_stream<R: Read>(
    entry: &Entry,
    staging: &Path,
    mut open_at: impl FnMut(u64) -> Result<R, Error>,
    rate: Option<&RateLimit>,
    cancel: &AtomicBool,
    mut on_bytes: impl FnMut(u64),
) -> Result<ContentHash, LandError> {
    use LandError::{Source, Staging};
    let final_path = entry.staged_path(staging);
    let partial = partial_path(entry, staging);
    let partial_dir = partial.parent().unwrap_or(staging).to_path_buf();
    create_partial_dir(&partial_dir)?;

    let mut hasher = blake3::Hasher::new();
    let mut offset = 0u64;
    if let Ok(meta) = fs::metadata(&partial) {
        let same_version = crate::entry::Mtime::from_system_time(
            meta.modified()
                .map_err(|e| Staging(Error::io("stat", &partial, e)))?,
        ) == entry.mtime;
        if same_version && meta.len() <= entry.size {
            let mut f =
                File::open(&partial).map_err(|e| Staging(Error::io("open", &partial, e)))?;
            offset = std::io::copy(&mut f, &mut hasher)
                .map_err(|e| Staging(Error::io("read", &partial, e)))?;
        }
    }
    let open_partial = || {
        OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(offset == 0)
            .append(offset > 0)
            .open(&partial)
    };
    // A parallel transfer that just finished may remove the (then empty) partial directory
    // between our create_dir_all and this open: recreate it and try again.
    let mut attempts = 0;
    let mut out = loop {
        match open_partial() {
            Ok(f) => break f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 10 => {
                attempts += 1;
                create_partial_dir(&partial_dir)?;
            }
            Err(e) => return Err(Staging(Error::io("create", &partial, e))),
        }
    };
    let stamp = |out: &File| {
        // Lets the next run resume this partial file (same mtime = same version).
        let _ = out.set_modified(entry.mtime.to_system_time());
    };
    let mut reader = match open_at(offset) {
        Ok(r) => r,
        Err(e) => {
            stamp(&out);
            return Err(Source(e));
        }
    };
    let mut buf = crate::read_buffer(entry.size.saturating_sub(offset), CHUNK);
    loop {
        if cancel.load(Ordering::Relaxed) {
            let _ = out.flush();
            stamp(&out);
            return Err(LandError::Cancelled);
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                stamp(&out);
                return Err(Source(Error::io("read source of", &final_path, e)));
            }
        };
        if let Some(rate) = rate {
            rate.take(n as u64);
        }
        out.write_all(&buf[..n])
            .map_err(|e| Staging(Error::io("write", &partial, e)))?;
        hasher.update(&buf[..n]);
        on_bytes(n as u64);
    }
    out.set_modified(entry.mtime.to_system_time())
        .map_err(|e| Staging(Error::io("set mtime", &partial, e)))?;
    drop(out);
    fs::rename(&partial, &final_path)
        .map_err(|e| Staging(Error::io("rename into", &final_path, e)))?;
    // Only removes the directory when no other partial file is in it.
    let _ = fs::remove_dir(&partial_dir);
    Ok(ContentHash(*hasher.finalize().as_bytes()))
}
