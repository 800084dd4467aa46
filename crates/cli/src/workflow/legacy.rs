//! Restore of packs imported from the seed tool's database (`catalog import-legacy`).
//!
//! The seed tool encrypted every file on its own with `openssl enc -aes-256-cbc -pbkdf2
//! -iter 100000` (a `Salted__` header, no authentication) under a generated name and copied
//! it into the root of an LTFS volume. The import records each such file as a pack in the
//! [`PackFormat::LegacyOpensslAes256CbcPbkdf2`](catalog::PackFormat) format, located on its
//! tape as an LTFS file named like the pack, with the MD5 of the plaintext as the content
//! hash.
//!
//! [`restore`](super::restore()) hands those packs here: the file is found on the volume (in
//! the root, where the seed tool wrote it, or else by name anywhere on the volume),
//! decrypted with cryptpack's [`OpensslDecryptor`](cryptpack::OpensslDecryptor) into a
//! temporary file next to the destination while its MD5 is computed, and renamed into
//! place only when the MD5 is the one the seed tool recorded. The passphrase (the seed's
//! `enc-key`) comes from the file named by `TAPEBACKUP_LEGACY_PASSPHRASE_FILE` or a prompt,
//! never from the command line.
//!
//! Because these files carry no authentication, a wrong passphrase shows either as a bad
//! padding at the end of the file (cryptpack's `LegacyBadPadding`) or, about once in 256
//! tries, as an MD5 mismatch ([`LegacyError::HashMismatch`]); either way nothing is left at
//! the destination.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, bail};
use catalog::{Catalog, HashAlgo, JobId, PackRead, RestoreFile, Timestamp};
use md5::Digest as _;

use super::Progress;
use super::restore::{RestoreReport, dest_of};

/// Environment variable naming a file whose first line is the seed tool's passphrase.
pub const LEGACY_PASSPHRASE_FILE_ENV: &str = "TAPEBACKUP_LEGACY_PASSPHRASE_FILE";

/// Errors of a legacy restore a caller may branch on.
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    /// The decrypted file's hash is not the one the seed tool recorded.
    #[error(
        "{path}: {algo} of the decrypted file is {got}, the catalog says {want}: wrong legacy \
         passphrase, or the file on tape is damaged; nothing was written"
    )]
    HashMismatch {
        /// The file (`source/path`).
        path: String,
        /// Hash algorithm.
        algo: String,
        /// Hash of what was decrypted.
        got: String,
        /// Hash the catalog holds.
        want: String,
    },
    /// The pack's file is not on the volume.
    #[error(
        "legacy pack {name} is not on {barcode}: no file of that name in the LTFS root or \
         anywhere else on the volume"
    )]
    NotOnTape {
        /// Pack (encrypted file) name.
        name: String,
        /// The cartridge.
        barcode: String,
    },
    /// Several files on the volume have the pack's name, none at the recorded place.
    #[error("legacy pack {name} is on {barcode} more than once ({paths}): refusing to guess")]
    Ambiguous {
        /// Pack name.
        name: String,
        /// The cartridge.
        barcode: String,
        /// The candidates.
        paths: String,
    },
    /// No passphrase is available.
    #[error(
        "restoring packs of the seed tool needs its passphrase: set \
         {LEGACY_PASSPHRASE_FILE_ENV} to a file (mode 0600) holding it on its first line"
    )]
    NoPassphrase,
}

/// The seed tool's passphrase, asked for once, on first use.
#[derive(Default)]
pub struct LegacyPassphrase(Option<cryptpack::Passphrase>);

impl std::fmt::Debug for LegacyPassphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LegacyPassphrase(..)")
    }
}

impl LegacyPassphrase {
    /// Reads it from [`LEGACY_PASSPHRASE_FILE_ENV`], or prompts on a terminal.
    pub fn get(&mut self) -> anyhow::Result<&cryptpack::Passphrase> {
        if self.0.is_none() {
            let pass = match std::env::var_os(LEGACY_PASSPHRASE_FILE_ENV) {
                Some(f) => cryptpack::Passphrase::read_file(Path::new(&f)).with_context(|| {
                    format!(
                        "legacy passphrase file {} (from {LEGACY_PASSPHRASE_FILE_ENV})",
                        Path::new(&f).display()
                    )
                })?,
                None => {
                    use std::io::IsTerminal;
                    if !std::io::stdin().is_terminal() {
                        return Err(LegacyError::NoPassphrase.into());
                    }
                    let text = rpassword::prompt_password(
                        "passphrase of the seed tool (its enc-key) for legacy packs: ",
                    )?;
                    cryptpack::Passphrase::new(text)?
                }
            };
            self.0 = Some(pass);
        }
        match &self.0 {
            Some(p) => Ok(p),
            None => Err(LegacyError::NoPassphrase.into()),
        }
    }
}

/// Where the file of legacy pack `name` is on `volume`: `recorded` (the catalog's LTFS
/// path, the volume root for imports) if present, else the only file named `name`.
pub fn find_on_volume(
    volume: &ltfs::Volume<'_>,
    recorded: &str,
    name: &str,
    barcode: &str,
) -> Result<String, LegacyError> {
    if volume.file(recorded).is_ok() {
        return Ok(recorded.to_owned());
    }
    let found: Vec<String> = volume
        .index()
        .root
        .walk_files()
        .into_iter()
        .filter(|(path, f)| f.symlink.is_none() && path.rsplit('/').next() == Some(name))
        .map(|(path, _)| path)
        .collect();
    match found.len() {
        0 => Err(LegacyError::NotOnTape {
            name: name.to_owned(),
            barcode: barcode.to_owned(),
        }),
        1 => Ok(found.into_iter().next().unwrap_or_default()),
        _ => Err(LegacyError::Ambiguous {
            name: name.to_owned(),
            barcode: barcode.to_owned(),
            paths: found.join(", "),
        }),
    }
}

/// Restores the files of one legacy pack read from `volume` (see the module docs).
#[allow(clippy::too_many_arguments)]
pub(crate) fn restore_read(
    cat: &mut Catalog,
    job: JobId,
    volume: &mut ltfs::Volume<'_>,
    barcode: &str,
    recorded: &str,
    read: &PackRead,
    to: &Path,
    pass: &mut LegacyPassphrase,
    report: &mut RestoreReport,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<()> {
    if read.part.count > 1 {
        bail!(
            "legacy pack {} is recorded in {} parts: the seed tool never split files",
            read.pack_name,
            read.part.count
        );
    }
    // Check every destination before reading the tape.
    for f in &read.files {
        dest_of(to, f)?;
    }
    let path = find_on_volume(volume, recorded, &read.pack_name, barcode)?;
    let pass = pass.get()?;
    let reader = volume
        .open_file(&path)
        .with_context(|| format!("{barcode}: {path}"))?;
    restore_stream(
        cat,
        job,
        reader,
        pass,
        &read.files,
        to,
        report,
        progress,
        cancel,
    )
}

/// Decrypts one legacy file from `input` and restores `files` (versions sharing its
/// content) from it.
#[allow(clippy::too_many_arguments)]
pub fn restore_stream(
    cat: &mut Catalog,
    job: JobId,
    input: impl Read,
    pass: &cryptpack::Passphrase,
    files: &[RestoreFile],
    to: &Path,
    report: &mut RestoreReport,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<()> {
    let Some(first) = files.first() else {
        return Ok(());
    };
    let mut dec =
        cryptpack::OpensslDecryptor::new(input, pass, cryptpack::OPENSSL_SEED_ITERATIONS)?;
    let dest = dest_of(to, first)?;
    let dir = dest.parent().unwrap_or(to).to_path_buf();
    std::fs::create_dir_all(&dir)?;
    let name = format!("{}/{}", first.source_name, first.path);
    progress.item(&name, first.length);
    let mut tmp = tempfile::Builder::new()
        .prefix(".restore-")
        .tempfile_in(&dir)?;
    let mut hasher = Hasher::new(first.hash.algo())?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        if cancel.load(Ordering::Relaxed) {
            bail!("cancelled; resume with `tapebackup restore --resume {job}`");
        }
        let got = dec
            .read(&mut buf)
            .map_err(cryptpack::Error::from_io)
            .with_context(|| format!("decrypting {name}"))?;
        if got == 0 {
            break;
        }
        out.write_all(&buf[..got])?;
        hasher.update(&buf[..got]);
        n += got as u64;
        progress.advance(got as u64);
    }
    out.flush()?;
    drop(out);
    let got = hasher.finish();
    if got != first.hash.bytes() {
        return Err(LegacyError::HashMismatch {
            path: name,
            algo: first.hash.algo().to_string(),
            got: hex(&got),
            want: first.hash.to_hex(),
        }
        .into());
    }
    if let Some(len) = first.length.filter(|l| *l != n) {
        bail!("{name}: decrypted {n} bytes, the catalog says {len}");
    }
    let mut fresh = Some(tmp);
    let mut placed: Option<PathBuf> = None;
    for f in files {
        let dest = dest_of(to, f)?;
        match (fresh.take(), &placed) {
            (Some(tmp), _) => {
                // The first file: the decrypted temporary file itself.
                finish(tmp.as_file(), f)?;
                tmp.persist(&dest).map_err(|e| e.error)?;
            }
            (None, Some(prev)) => {
                // Another path with the same content: a copy of the one restored.
                let d = dest.parent().unwrap_or(to);
                std::fs::create_dir_all(d)?;
                let mut copy = tempfile::Builder::new()
                    .prefix(".restore-")
                    .tempfile_in(d)?;
                std::io::copy(&mut std::fs::File::open(prev)?, copy.as_file_mut())?;
                finish(copy.as_file(), f)?;
                copy.persist(&dest).map_err(|e| e.error)?;
            }
            (None, None) => bail!("internal: no restored copy of {name}"),
        }
        cat.write(|tx| tx.mark_restored(job, f.version, Timestamp::now()))?;
        report.files += 1;
        report.bytes += n;
        placed = Some(dest);
    }
    Ok(())
}

/// Checks a legacy pack read back from tape without decrypting it: the MD5 and length of
/// its ciphertext against what the seed tool recorded (`md5sum_encrypted`,
/// `filesize_encrypted`; either may be unknown). This is what `verify` can check for these
/// packs: they carry no authentication to check with a passphrase. Returns the outcome,
/// a detail for the record, and the bytes read.
pub fn verify_ciphertext(
    mut reader: impl Read,
    pack: &catalog::PackInfo,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> (catalog::VerifyOutcome, Option<String>, u64) {
    use catalog::VerifyOutcome;
    let mut h = md5::Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return (VerifyOutcome::Unreadable, Some("cancelled".into()), n);
        }
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(got) => {
                h.update(&buf[..got]);
                n += got as u64;
                progress.advance(got as u64);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (VerifyOutcome::Unreadable, Some(e.to_string()), n),
        }
    }
    let got = h.finalize().to_vec();
    let hash = match &pack.cipher_hash {
        Some(d) if d.algo() == HashAlgo::Md5 => Some(d.bytes() == got.as_slice()),
        _ => None,
    };
    let size = pack.cipher_size.map(|s| s == n);
    match (hash, size) {
        (Some(false), _) | (_, Some(false)) => (
            VerifyOutcome::Mismatch,
            Some(format!(
                "legacy ciphertext {n} bytes md5 {}, the seed tool recorded {} bytes md5 {}",
                hex(&got),
                pack.cipher_size
                    .map_or_else(|| "an unknown number of".to_owned(), |s| s.to_string()),
                pack.cipher_hash
                    .as_ref()
                    .map_or_else(|| "unknown".to_owned(), |d| d.to_hex())
            )),
            n,
        ),
        (None, None) => (
            VerifyOutcome::Ok,
            Some("legacy pack read; the seed tool recorded neither md5 nor size".into()),
            n,
        ),
        _ => (
            VerifyOutcome::Ok,
            Some("legacy ciphertext md5/size checked".into()),
            n,
        ),
    }
}

/// Mode (0644 when the seed tool did not record one), mtime, and sync.
fn finish(file: &std::fs::File, f: &RestoreFile) -> anyhow::Result<()> {
    let mode = match f.mode & 0o7777 {
        0 => 0o644,
        m => m,
    };
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    let mtime = std::time::UNIX_EPOCH
        + std::time::Duration::from_secs(u64::try_from(f.mtime.unix_seconds()).unwrap_or(0));
    file.set_modified(mtime)?;
    file.sync_all()?;
    Ok(())
}

enum Hasher {
    Md5(md5::Md5),
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    fn new(algo: HashAlgo) -> anyhow::Result<Hasher> {
        Ok(match algo {
            HashAlgo::Md5 => Hasher::Md5(md5::Md5::new()),
            HashAlgo::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
            other => bail!("content hash {other} cannot be checked on restore"),
        })
    }
    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Blake3(h) => {
                h.update(data);
            }
        }
    }
    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Blake3(h) => h.finalize().as_bytes().to_vec(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn legacy_pack(size: Option<u64>, md5: Option<&str>) -> catalog::PackInfo {
        catalog::PackInfo {
            id: catalog::PackId::from_raw(1),
            name: "x".into(),
            format: catalog::PackFormat::LegacyOpensslAes256CbcPbkdf2,
            key_id: "legacy".into(),
            plain_size: None,
            plain_hash: None,
            cipher_size: size,
            cipher_hash: md5.map(|h| catalog::Digest::from_hex(HashAlgo::Md5, h).unwrap()),
            created_at: Timestamp::from_unix_seconds(0),
        }
    }

    #[test]
    fn legacy_ciphertext_is_checked_by_md5_and_size() {
        use catalog::VerifyOutcome::{Mismatch, Ok};
        let data = b"hello world\n";
        let md5 = "6f5902ac237024bdd0c176cb93063dc4";
        let never = AtomicBool::new(false);
        let check = |p: &catalog::PackInfo| {
            verify_ciphertext(&data[..], p, &super::super::Silent, &never).0
        };
        assert_eq!(check(&legacy_pack(Some(12), Some(md5))), Ok);
        assert_eq!(check(&legacy_pack(None, Some(md5))), Ok);
        assert_eq!(check(&legacy_pack(None, None)), Ok);
        assert_eq!(check(&legacy_pack(Some(13), Some(md5))), Mismatch);
        let other = "0cc175b9c0f1b6a831c399e269772661";
        assert_eq!(check(&legacy_pack(Some(12), Some(other))), Mismatch);
    }

    #[test]
    fn md5_and_blake3_hashers_match_reference_values() {
        let mut h = Hasher::new(HashAlgo::Md5).unwrap();
        h.update(b"hello ");
        h.update(b"world\n");
        assert_eq!(hex(&h.finish()), "6f5902ac237024bdd0c176cb93063dc4");
        let mut h = Hasher::new(HashAlgo::Blake3).unwrap();
        h.update(b"abc");
        assert_eq!(hex(&h.finish()), blake3::hash(b"abc").to_hex().to_string());
    }
}
