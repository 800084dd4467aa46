//! `pack`: encrypt each staged content that is in no pack yet into its own pack.
//!
//! Order of durability, per content: encrypt to `packs/.pending-<content hex>` → sync →
//! record the pack in one catalog transaction (the catalog generates the name) → rename to
//! `packs/<name>` → sync → delete the staged plaintext. Killed between the
//! transaction and the rename, the next run (of `pack` or `write`) finishes the rename
//! ([`repair_pending`]); killed before the transaction, the pending file is redone.
//!
//! Small contents are packed in groups (up to 64 files or 32 MiB of plaintext): every
//! pending pack of the group is written, one `syncfs` makes them all durable, then the
//! whole group is recorded in one transaction, renamed, synced once more, and the
//! plaintexts deleted. Each content still follows the order above; a group only shares
//! the syncs and the commit ([`super::FsSync`]: one journal commit instead of an `fsync`
//! per file).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use catalog::{
    Catalog, CopyTarget, JobKind, JobProgress, NewPack, PackFormat, PackMember, Timestamp,
};

use super::config::Unlocked;
use super::get::{content_dir, staged_content};
use super::{Adapt, Config, FsSync, Progress, digest, sync_dir};

/// What [`pack`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PackReport {
    /// Packs made.
    pub packs: u64,
    /// Plaintext bytes packed.
    pub plain_bytes: u64,
    /// Pack bytes written.
    pub pack_bytes: u64,
    /// Pending packs whose rename was finished (from an interrupted run).
    pub repaired: u64,
    /// Contents waiting to be packed whose plaintext is not staged (fetch them again).
    pub missing: Vec<String>,
}

fn pending_path(config: &Config, content_hex: &str) -> PathBuf {
    config.file.packs.join(format!(".pending-{content_hex}"))
}

/// The file of a recorded pack in the packs directory.
pub fn pack_path(config: &Config, name: &str) -> PathBuf {
    config.file.packs.join(name)
}

/// Finishes interrupted packs: a pack recorded in the catalog whose file is still
/// `.pending-<content>` is renamed to its name. Returns how many.
pub fn repair_pending(config: &Config, cat: &Catalog) -> anyhow::Result<u64> {
    let mut n = 0;
    let target = CopyTarget {
        copies: 1,
        pool: None,
    };
    let reader = cat.read();
    for p in reader.packs_to_write(&target, u64::MAX >> 1)? {
        let path = pack_path(config, &p.name);
        if path.exists() {
            continue;
        }
        for c in reader.pack_contents(p.id)? {
            let pending = pending_path(config, &c.hash.to_hex());
            if pending.exists() {
                std::fs::rename(&pending, &path)?;
                sync_dir(&config.file.packs)?;
                let staged = staged_content(config, &c.hash);
                if staged.exists() {
                    std::fs::remove_file(&staged)?;
                }
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Packs every staged content that is in no pack yet.
pub fn pack(
    config: &Config,
    cat: &mut Catalog,
    key: &Unlocked,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<PackReport> {
    std::fs::create_dir_all(&config.file.packs)?;
    let mut report = PackReport {
        repaired: repair_pending(config, cat)?,
        ..PackReport::default()
    };
    let todo = cat.read().versions_to_pack(u64::MAX >> 1)?;
    if todo.is_empty() {
        clean_staging(config, cat)?;
        return Ok(report);
    }
    let job = cat.write(|tx| tx.start_job(JobKind::Pack, Timestamp::now()))?;
    let result = (|| {
        let (groups, missing) = pack_groups(config, &todo);
        report.missing = missing.into_iter().map(|v| v.path.clone()).collect();
        for group in &groups {
            for (_, plain, cipher) in pack_many(config, cat, key, group, progress, cancel)? {
                report.packs += 1;
                report.plain_bytes += plain;
                report.pack_bytes += cipher;
            }
        }
        anyhow::Ok(())
    })();
    let progress = JobProgress {
        items_done: report.packs,
        items_failed: report.missing.len() as u64,
        bytes_done: report.plain_bytes,
        resume_state: None,
    };
    super::close_job(cat, job, &result, &progress, None)?;
    result?;
    clean_staging(config, cat)?;
    Ok(report)
}

/// Most contents packed together by [`pack_many`]'s callers (one transaction, one
/// directory fsync): this many files…
pub(super) const PACK_GROUP_FILES: usize = 64;
/// …or this many plaintext bytes, whichever comes first (a larger file is packed alone).
pub(super) const PACK_GROUP_BYTES: u64 = 32 << 20;

/// One content to pack: its version, its hash and its staged plaintext.
pub(super) type PackItem<'a> = (&'a catalog::VersionInfo, &'a catalog::Digest, PathBuf);

/// Splits `todo` into groups for [`pack_many`]: staged contents only (the others are
/// returned apart, as missing), at most [`PACK_GROUP_FILES`] files or
/// [`PACK_GROUP_BYTES`] plaintext bytes per group, and never one content twice in a group.
pub(super) fn pack_groups<'a>(
    config: &Config,
    todo: &'a [catalog::VersionInfo],
) -> (Vec<Vec<PackItem<'a>>>, Vec<&'a catalog::VersionInfo>) {
    let mut groups: Vec<Vec<PackItem<'a>>> = Vec::new();
    let mut missing = Vec::new();
    let mut cur: Vec<PackItem<'a>> = Vec::new();
    let mut bytes = 0u64;
    for v in todo {
        let Some(hash) = &v.hash else { continue };
        let staged = staged_content(config, hash);
        if !staged.exists() {
            missing.push(v);
            continue;
        }
        let size = v.size.unwrap_or(0);
        if !cur.is_empty()
            && (cur.len() >= PACK_GROUP_FILES
                || bytes.saturating_add(size) > PACK_GROUP_BYTES
                || cur.iter().any(|(_, h, _)| *h == hash))
        {
            groups.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
        cur.push((v, hash, staged));
    }
    if !cur.is_empty() {
        groups.push(cur);
    }
    (groups, missing)
}

/// Packs several staged contents (distinct hashes), each into its own pack, with the
/// same order of durability per content as one at a time: every pending pack is written,
/// one filesystem sync makes them durable, then all are recorded in one transaction,
/// renamed to their generated names (one more sync for all), and only then is their
/// plaintext deleted.
/// Returns per content the recorded pack, the plaintext and the pack bytes.
pub(super) fn pack_many(
    config: &Config,
    cat: &mut Catalog,
    key: &Unlocked,
    items: &[PackItem<'_>],
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<Vec<(catalog::PackInfo, u64, u64)>> {
    // Opened before the pending packs are written, so their writeback errors are reported.
    let durable = FsSync::open(&config.file.packs)?;
    let mut sealed = Vec::with_capacity(items.len());
    for (v, hash, staged) in items {
        let r = seal(config, key, v, hash, staged, progress, cancel)
            .with_context(|| format!("packing {}", v.path));
        match r {
            Ok(s) => sealed.push(s),
            Err(e) => {
                // Nothing of this group is recorded: drop its pending files.
                for (_, pending) in &sealed {
                    let _ = std::fs::remove_file(pending);
                }
                return Err(e);
            }
        }
    }
    if let Err(e) = durable.sync() {
        for (_, pending) in &sealed {
            let _ = std::fs::remove_file(pending);
        }
        return Err(e);
    }
    let infos = cat
        .write(|tx| {
            let mut infos = Vec::with_capacity(items.len());
            for (pack, _) in &sealed {
                infos.push(tx.record_pack(pack, Timestamp::now())?);
            }
            Ok::<_, catalog::Error>(infos)
        })
        .with_context(|| {
            let first = items.first().map_or("", |i| i.0.path.as_str());
            format!("recording {} pack(s) from {first}", items.len())
        })?;
    for (info, (_, pending)) in infos.iter().zip(&sealed) {
        std::fs::rename(pending, pack_path(config, &info.name))?;
    }
    durable.sync()?;
    let mut out = Vec::with_capacity(items.len());
    for ((info, (pack, _)), (_, _, staged)) in infos.into_iter().zip(&sealed).zip(items) {
        std::fs::remove_file(staged)?;
        out.push((info, pack.plain_size, pack.cipher_size));
    }
    Ok(out)
}

/// Encrypts one staged content to its pending file (the caller syncs it); returns the
/// pack to record and the pending path.
fn seal(
    config: &Config,
    key: &Unlocked,
    v: &catalog::VersionInfo,
    hash: &catalog::Digest,
    staged: &Path,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<(NewPack, PathBuf)> {
    let pending = pending_path(config, &hash.to_hex());
    progress.item(&v.path, v.size);
    let input = std::fs::File::open(staged)?;
    let out = std::fs::File::create(&pending)?;
    let mut w = BufWriter::with_capacity(1 << 20, out);
    let summary = cryptpack::encrypt_stream(
        input,
        &mut w,
        cryptpack::Secret::Key(&key.key),
        &cryptpack::EncryptOptions::default(),
        &Adapt(progress),
        cancel,
    )?;
    w.flush()?;
    drop(w.into_inner().map_err(|e| e.into_error())?);
    let plain_hash = digest(&summary.plaintext_hash.0)?;
    if &plain_hash != hash {
        let _ = std::fs::remove_file(&pending);
        anyhow::bail!(
            "staged plaintext {} does not match its recorded hash (staging was modified)",
            staged.display()
        );
    }
    let pack = NewPack {
        format: PackFormat::Cryptpack,
        key_id: summary.key_id.to_string(),
        plain_size: summary.plaintext_len,
        plain_hash,
        cipher_size: summary.ciphertext_len,
        cipher_hash: catalog::Digest::new(
            catalog::HashAlgo::Blake3,
            summary.ciphertext_hash.0.to_vec(),
        )?,
        members: vec![PackMember {
            version: v.id,
            offset: 0,
            length: summary.plaintext_len,
        }],
    };
    Ok((pack, pending))
}

/// Removes staged contents no longer needed (already packed: e.g. a duplicate of a
/// packed content fetched under another path).
pub(super) fn clean_staging(config: &Config, cat: &Catalog) -> anyhow::Result<()> {
    let dir = content_dir(config);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let wanted: std::collections::HashSet<String> = cat
        .read()
        .versions_to_pack(u64::MAX >> 1)?
        .into_iter()
        .filter_map(|v| v.hash.map(|h| h.to_hex()))
        .collect();
    for e in rd {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.len() == 64 && !wanted.contains(&name) {
            std::fs::remove_file(e.path())?;
        }
    }
    Ok(())
}
