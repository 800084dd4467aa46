//! Whole-stream operations with progress and cancellation: encrypt (a stream, or a file to
//! a file), decrypt, decrypt to a file atomically, hash a pack without the key, rewrap a
//! pack file in place.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cipher::{EncryptOptions, rewrap_header};
use crate::error::{Error, Result};
use crate::format::HEADER_LEN;
use crate::key::{KdfParams, KeyId, Secret};
use crate::read::{DecryptOptions, Decryptor, read_full};
use crate::write::{Digest, Encryptor, Summary};

/// Progress of a long operation, in bytes. Implementations must be cheap: `advance` is
/// called once per buffer (about every 1 MiB).
pub trait Progress {
    /// Bytes processed since the last call.
    fn advance(&self, bytes: u64);
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn advance(&self, _bytes: u64) {}
}

const COPY_BUF: usize = 1 << 20;

/// Copies `r` to `w`, reporting progress on the bytes read and checking `cancel` between
/// buffers. Returns the bytes copied.
fn copy(
    r: &mut impl Read,
    w: &mut impl Write,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<u64> {
    let mut buf = vec![0u8; COPY_BUF];
    let mut total = 0u64;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::from_io(e)),
        };
        w.write_all(&buf[..n]).map_err(Error::from_io)?;
        total += n as u64;
        progress.advance(n as u64);
    }
}

/// Encrypts all of `input` into a pack written to `output`. Reads go straight into the
/// sealing buffers, several segments per `read_vectored` call (one `readv` of up to a
/// whole batch for a `File`; one copy of the plaintext in all); batches are written to
/// `output` with one large write each (about 4 MiB), so a `BufWriter` around it passes
/// them through. Between two files, [`encrypt_file`] says the same without wrappers.
pub fn encrypt_stream(
    mut input: impl Read,
    output: impl Write,
    secret: Secret<'_>,
    opts: &EncryptOptions,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Summary> {
    let enc = Encryptor::new(output, secret, opts)?;
    pump(&mut input, enc, progress, cancel)
}

/// Reads all of `input` into `enc` and finishes the pack.
fn pump<W: Write>(
    input: &mut impl Read,
    mut enc: Encryptor<W>,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Summary> {
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        match enc.read_from(input) {
            Ok(0) => break,
            Ok(n) => progress.advance(n as u64),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::from_io(e)),
        }
    }
    enc.finish()
}

/// Encrypts the file `input` (from its current offset to its end) into a pack written to
/// `output` at its current offset; afterwards `output`'s offset is at the end of the pack.
/// The same pack and [`Summary`] as [`encrypt_stream`] on the two files, with no buffer in
/// between: the calling thread reads up to a batch (~4 MiB) per `readv` straight into the
/// sealing buffers and writes each sealed batch with one `write`. (Measured: having the
/// sealing workers `pwrite` their batches themselves gained nothing on 2 cores, the
/// writers serialize on the file's inode lock.) Does not sync `output`: the caller
/// decides on durability (`File::sync_all`). On an error, what was written to `output` is
/// an incomplete pack and must be discarded.
pub fn encrypt_file(
    input: &File,
    output: &File,
    secret: Secret<'_>,
    opts: &EncryptOptions,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Summary> {
    let enc = Encryptor::new(output, secret, opts)?;
    let mut input = input;
    pump(&mut input, enc, progress, cancel)
}

/// Decrypts a whole pack from `input` to `output`. Note that `output` receives plaintext
/// segment by segment as each authenticates: when this returns an error, what was written
/// must be discarded. To a file, prefer [`decrypt_to_path`].
pub fn decrypt_stream(
    input: impl Read,
    mut output: impl Write,
    secret: Secret<'_>,
    opts: &DecryptOptions,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Summary> {
    let mut dec = Decryptor::with_options(input, secret, opts)?;
    copy(&mut dec, &mut output, progress, cancel)?;
    output.flush()?;
    dec.summary().ok_or(Error::Io(io::Error::other(
        "decryptor ended without a summary",
    )))
}

/// Decrypts a whole pack to the file `dest`: writes a temporary file in the same directory
/// and renames it to `dest` only after the whole stream authenticated (and was synced), so
/// `dest` never holds unauthenticated or partial plaintext. An existing `dest` is replaced.
pub fn decrypt_to_path(
    input: impl Read,
    dest: &Path,
    secret: Secret<'_>,
    opts: &DecryptOptions,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Summary> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_err = |source| Error::File {
        path: dest.to_path_buf(),
        source,
    };
    let tmp = tempfile::Builder::new()
        .prefix(".cryptpack-")
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(file_err)?;
    let mut w = io::BufWriter::with_capacity(COPY_BUF, tmp);
    let summary = decrypt_stream(input, &mut w, secret, opts, progress, cancel)?;
    let tmp = w.into_inner().map_err(|e| file_err(e.into_error()))?;
    tmp.as_file().sync_all().map_err(file_err)?;
    tmp.persist(dest).map_err(|e| file_err(e.error))?;
    Ok(summary)
}

/// BLAKE3 of a whole pack as stored, and its length: what [`Summary::ciphertext_hash`] was
/// at sealing time. Needs no key (for verifying tapes and object copies).
pub fn ciphertext_hash(
    mut input: impl Read,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<(u64, Digest)> {
    let mut hasher = blake3::Hasher::new();
    let mut sink = HashWriter(&mut hasher);
    let n = copy(&mut input, &mut sink, progress, cancel)?;
    Ok((n, Digest(*hasher.finalize().as_bytes())))
}

struct HashWriter<'a>(&'a mut blake3::Hasher);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Rewraps the pack file at `path` in place from `old` to `new` (KEK rotation): only the
/// 132-byte header is rewritten (then synced); the segments are not touched. Returns the
/// new key id. `kdf` is used when `new` is a passphrase.
pub fn rewrap_file(path: &Path, old: Secret<'_>, new: Secret<'_>, kdf: KdfParams) -> Result<KeyId> {
    let file_err = |source| Error::File {
        path: path.to_path_buf(),
        source,
    };
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(file_err)?;
    let mut head = [0u8; HEADER_LEN];
    let n = read_full(&mut f, &mut head).map_err(file_err)?;
    let new_header = rewrap_header(&head[..n], old, new, kdf)?;
    f.seek(SeekFrom::Start(0)).map_err(file_err)?;
    f.write_all(&new_header).map_err(file_err)?;
    f.sync_all().map_err(file_err)?;
    let mut id = [0u8; 16];
    id.copy_from_slice(&new_header[28..44]);
    Ok(KeyId(id))
}
