//! `pack`: encrypt each fetched content that is in no pack yet, from its staged plaintext
//! or, for a local source read in place, from the source file (packed only if the bytes
//! read have the hash `get` recorded; otherwise the fetch is forgotten in the group's
//! transaction and the next `get` reads the file again).
//!
//! A content of 1 MiB or more gets a pack of its own; smaller ones are bundled, several to
//! a pack (up to a group's worth: 512 files or 32 MiB), each member at its offset in the
//! pack's plaintext. Thousands of small files then make tens of packs, not thousands of
//! pack files, tape files and catalog rows (restore and verify handle members already).
//!
//! Order of durability, per pack: encrypt to `packs/.pending-<first content hex>` → sync →
//! record the pack in one catalog transaction (the catalog generates the name) → rename to
//! `packs/<name>` → sync → delete the staged plaintext. Killed between the
//! transaction and the rename, the next run (of `pack` or `write`) finishes the rename
//! ([`repair_pending`]); killed before the transaction, the pending file is redone.
//!
//! Contents are packed in groups (up to 512 files or 32 MiB of plaintext): every
//! pending pack of the group is written, one `syncfs` makes them all durable, then the
//! whole group is recorded in one transaction, renamed, synced once more, and the
//! plaintexts deleted. Each content still follows the order above; a group only shares
//! the syncs and the commit ([`super::FsSync`]: one journal commit instead of an `fsync`
//! per file).

use std::collections::HashMap;
use std::path::PathBuf;
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
    /// Files (contents) packed.
    pub files: u64,
    /// Packs made (several small files share one).
    pub packs: u64,
    /// Plaintext bytes packed.
    pub plain_bytes: u64,
    /// Pack bytes written.
    pub pack_bytes: u64,
    /// Pending packs whose rename was finished (from an interrupted run).
    pub repaired: u64,
    /// Contents waiting to be packed whose plaintext is not staged (fetch them again).
    pub missing: Vec<String>,
    /// Files read in place that changed or vanished since `get` hashed them (path:
    /// reason): not packed; the next `get` reads them again.
    pub changed: Vec<String>,
}

impl PackReport {
    /// What a pack job records as its progress: packs made, contents missing, plaintext
    /// bytes packed.
    pub(super) fn job_progress(&self) -> JobProgress {
        JobProgress {
            items_done: self.packs,
            items_failed: self.missing.len() as u64,
            bytes_done: self.plain_bytes,
            resume_state: None,
        }
    }
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
        let in_place = in_place_roots(config, cat)?;
        let (groups, missing) = pack_groups(config, &in_place, &todo);
        report.missing = missing.into_iter().map(|v| v.path.clone()).collect();
        for group in &groups {
            let packed = pack_many(config, cat, key, group, progress, cancel)?;
            report.files += packed.files;
            for (_, plain, cipher) in packed.packs {
                report.packs += 1;
                report.plain_bytes += plain;
                report.pack_bytes += cipher;
            }
            report.changed.extend(packed.changed);
        }
        anyhow::Ok(())
    })();
    super::close_job(cat, job, &result, &report.job_progress(), None)?;
    result?;
    clean_staging(config, cat)?;
    Ok(report)
}

/// Contents smaller than this are bundled into one pack per group; larger ones get a pack
/// of their own.
pub(super) const BUNDLE_BELOW: u64 = 1 << 20;

/// Most contents packed together by [`pack_many`]'s callers (one transaction, one
/// directory fsync): this many files…
pub(super) const PACK_GROUP_FILES: usize = 512;
/// …or this many plaintext bytes, whichever comes first (a larger file is packed alone).
pub(super) const PACK_GROUP_BYTES: u64 = 32 << 20;

/// One content to pack: its version, its hash and where its plaintext is.
pub(super) struct PackItem<'a> {
    version: &'a catalog::VersionInfo,
    hash: &'a catalog::Digest,
    /// The staged plaintext, or the file itself when its source is read in place.
    plain: PathBuf,
    /// `plain` is the source's file (never deleted; packed only if it still has `hash`).
    in_place: bool,
}

/// The sources whose files are read in place ([`super::config::SourceConfig::in_place_root`]),
/// by catalog id.
pub(super) fn in_place_roots(
    config: &Config,
    cat: &Catalog,
) -> anyhow::Result<HashMap<catalog::SourceId, PathBuf>> {
    let mut roots = HashMap::new();
    for src in &config.file.sources {
        if let Some(root) = src.in_place_root()
            && let Some(s) = cat.read().source_by_name(&src.name)?
        {
            roots.insert(s.id, root.to_path_buf());
        }
    }
    Ok(roots)
}

/// Splits `todo` into groups for [`pack_many`]: contents staged or readable in place
/// (the others are returned apart, as missing), at most [`PACK_GROUP_FILES`] files or
/// [`PACK_GROUP_BYTES`] plaintext bytes per group, and never one content twice in a group.
pub(super) fn pack_groups<'a>(
    config: &Config,
    in_place: &HashMap<catalog::SourceId, PathBuf>,
    todo: &'a [catalog::VersionInfo],
) -> (Vec<Vec<PackItem<'a>>>, Vec<&'a catalog::VersionInfo>) {
    let mut groups: Vec<Vec<PackItem<'a>>> = Vec::new();
    let mut missing = Vec::new();
    let mut cur: Vec<PackItem<'a>> = Vec::new();
    let mut bytes = 0u64;
    for v in todo {
        let Some(hash) = &v.hash else { continue };
        let staged = staged_content(config, hash);
        let (plain, in_place) = if staged.exists() {
            (staged, false)
        } else if let Some(root) = in_place.get(&v.source) {
            (root.join(&v.path), true)
        } else {
            missing.push(v);
            continue;
        };
        let size = v.size.unwrap_or(0);
        if !cur.is_empty()
            && (cur.len() >= PACK_GROUP_FILES
                || bytes.saturating_add(size) > PACK_GROUP_BYTES
                || cur.iter().any(|i| i.hash == hash))
        {
            groups.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
        cur.push(PackItem {
            version: v,
            hash,
            plain,
            in_place,
        });
    }
    if !cur.is_empty() {
        groups.push(cur);
    }
    (groups, missing)
}

/// Splits a group into the contents of its packs: each content of [`BUNDLE_BELOW`] or
/// more alone, the smaller ones together.
fn split_units<'a, 'p>(items: &'a [PackItem<'p>]) -> Vec<Vec<&'a PackItem<'p>>> {
    let (small, large): (Vec<&PackItem<'_>>, Vec<&PackItem<'_>>) = items
        .iter()
        .partition(|i| i.version.size.unwrap_or(0) < BUNDLE_BELOW);
    let mut units: Vec<Vec<&PackItem<'_>>> = large.into_iter().map(|i| vec![i]).collect();
    if !small.is_empty() {
        units.push(small);
    }
    units
}

/// The contents of one pack not yet sealed (one content of [`BUNDLE_BELOW`] or more, or
/// a bundle of smaller ones), owning what it needs: `run` hands these to the tape writer,
/// which seals each straight onto the tape ([`super::stream`]) or, for the raw format,
/// into a pack file first ([`Unit::pack_to_file`]).
#[derive(Debug)]
pub struct Unit {
    items: Vec<UnitItem>,
}

#[derive(Debug)]
struct UnitItem {
    version: catalog::VersionInfo,
    hash: catalog::Digest,
    plain: PathBuf,
    in_place: bool,
}

impl Unit {
    /// The units of a group from [`pack_groups`].
    pub(super) fn of_group(group: &[PackItem<'_>]) -> Vec<Unit> {
        split_units(group)
            .into_iter()
            .map(|items| Unit {
                items: items
                    .into_iter()
                    .map(|i| UnitItem {
                        version: i.version.clone(),
                        hash: i.hash.clone(),
                        plain: i.plain.clone(),
                        in_place: i.in_place,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Borrowed views of the items, for [`seal_items`] and [`pack_many`].
    pub(super) fn items(&self) -> Vec<PackItem<'_>> {
        self.items
            .iter()
            .map(|i| PackItem {
                version: &i.version,
                hash: &i.hash,
                plain: i.plain.clone(),
                in_place: i.in_place,
            })
            .collect()
    }

    /// The content hashes in it.
    pub(super) fn hashes(&self) -> impl Iterator<Item = &catalog::Digest> {
        self.items.iter().map(|i| &i.hash)
    }

    /// Files (contents) in it.
    pub fn files(&self) -> usize {
        self.items.len()
    }

    /// Plaintext bytes in it.
    pub fn plain_bytes(&self) -> u64 {
        self.items.iter().map(|i| i.version.size.unwrap_or(0)).sum()
    }

    /// Plaintext bytes of it waiting in staging (not read in place).
    pub(super) fn staged_bytes(&self) -> u64 {
        self.items
            .iter()
            .filter(|i| !i.in_place)
            .map(|i| i.version.size.unwrap_or(0))
            .sum()
    }

    /// A short description for messages: the first path and how many files.
    pub fn describe(&self) -> String {
        match self.items.as_slice() {
            [one] => one.version.path.clone(),
            [first, ..] => format!(
                "{} small files from {}",
                self.items.len(),
                first.version.path
            ),
            [] => "an empty unit".to_owned(),
        }
    }

    /// After a pack made of `packed` (indices) is recorded: deletes their staged
    /// plaintext (files read in place are never touched).
    pub(super) fn remove_staged(&self, packed: &[usize]) -> std::io::Result<()> {
        for i in packed.iter().filter_map(|&i| self.items.get(i)) {
            if !i.in_place {
                match std::fs::remove_file(&i.plain) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The version id, path and size of item `i`.
    pub(super) fn item(&self, i: usize) -> Option<(catalog::VersionId, &str, u64)> {
        self.items.get(i).map(|x| {
            (
                x.version.id,
                x.version.path.as_str(),
                x.version.size.unwrap_or(0),
            )
        })
    }

    /// A unit of the given contents (tests).
    #[cfg(test)]
    pub(super) fn of_items(items: Vec<(catalog::VersionInfo, PathBuf, bool)>) -> Unit {
        Unit {
            items: items
                .into_iter()
                .filter_map(|(version, plain, in_place)| {
                    Some(UnitItem {
                        hash: version.hash.clone()?,
                        version,
                        plain,
                        in_place,
                    })
                })
                .collect(),
        }
    }

    /// Packs it the way `pack` does (pending file, sync, record, rename, plaintext
    /// deleted): for a tape format that needs the pack's length and id before its bytes.
    pub(super) fn pack_to_file(
        &self,
        config: &Config,
        cat: &mut Catalog,
        key: &Unlocked,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> anyhow::Result<Packed> {
        pack_many(config, cat, key, &self.items(), progress, cancel)
    }
}

/// What [`pack_many`] did with a group.
#[derive(Debug, Default)]
pub(super) struct Packed {
    /// Per pack made: the recorded pack, the plaintext and the pack bytes.
    pub packs: Vec<(catalog::PackInfo, u64, u64)>,
    /// Files (contents) in those packs.
    pub files: u64,
    /// Files read in place that changed or vanished since `get` hashed them: their fetch
    /// was forgotten (the next `get` reads them again). Path and reason.
    pub changed: Vec<String>,
    /// Plaintext bytes of those.
    pub changed_bytes: u64,
}

/// Packs several contents (distinct hashes): those below [`BUNDLE_BELOW`] together into one
/// pack, each larger one into its own, with the same order of durability per pack as one
/// at a time: every pending pack is written, one
/// filesystem sync makes them durable, then all are recorded in one transaction, renamed
/// to their generated names (one more sync for all), and only then is staged plaintext
/// deleted. A file read in place whose bytes no longer have the recorded hash (or that
/// vanished) is not packed: in the same transaction its fetch is forgotten
/// ([`catalog::Txn::forget_fetched`]), so the next `get` reads it again.
pub(super) fn pack_many(
    config: &Config,
    cat: &mut Catalog,
    key: &Unlocked,
    items: &[PackItem<'_>],
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<Packed> {
    // Opened before the pending packs are written, so their writeback errors are reported.
    let durable = FsSync::open(&config.file.packs)?;
    let mut sealed: Vec<(NewPack, PathBuf, Vec<&PackItem<'_>>)> = Vec::new();
    let mut changed = Vec::new();
    for unit in split_units(items) {
        let r = match unit.as_slice() {
            [one] => seal(config, key, one, progress, cancel)
                .map(|s| match s {
                    Sealed::Pack(pack, pending) => (Some((pack, pending, vec![*one])), Vec::new()),
                    Sealed::Changed(why) => (None, vec![(*one, why)]),
                })
                .with_context(|| format!("packing {}", one.version.path)),
            many => seal_bundle(config, key, many, progress, cancel).with_context(|| {
                format!(
                    "packing {} small files from {}",
                    many.len(),
                    many.first().map_or("", |i| i.version.path.as_str())
                )
            }),
        };
        match r {
            Ok((pack, gone)) => {
                sealed.extend(pack);
                changed.extend(gone);
            }
            Err(e) => {
                // Nothing of this group is recorded: drop its pending files.
                for (_, pending, _) in &sealed {
                    let _ = std::fs::remove_file(pending);
                }
                return Err(e);
            }
        }
    }
    if let Err(e) = durable.sync() {
        for (_, pending, _) in &sealed {
            let _ = std::fs::remove_file(pending);
        }
        return Err(e);
    }
    let infos = cat
        .write(|tx| {
            let mut infos = Vec::with_capacity(sealed.len());
            for (pack, _, _) in &sealed {
                infos.push(tx.record_pack(pack, Timestamp::now())?);
            }
            for (item, _) in &changed {
                tx.forget_fetched(item.version.id)?;
            }
            Ok::<_, catalog::Error>(infos)
        })
        .with_context(|| {
            let first = items.first().map_or("", |i| i.version.path.as_str());
            format!("recording {} pack(s) from {first}", items.len())
        })?;
    for (info, (_, pending, _)) in infos.iter().zip(&sealed) {
        std::fs::rename(pending, pack_path(config, &info.name))?;
    }
    durable.sync()?;
    let mut out = Packed::default();
    for (info, (pack, _, members)) in infos.into_iter().zip(&sealed) {
        for item in members {
            if !item.in_place {
                std::fs::remove_file(&item.plain)?;
            }
        }
        out.files += members.len() as u64;
        out.packs.push((info, pack.plain_size, pack.cipher_size));
    }
    for (item, why) in changed {
        out.changed_bytes += item.version.size.unwrap_or(0);
        out.changed.push(format!("{}: {why}", item.version.path));
    }
    Ok(out)
}

/// A bundle sealed by [`seal_bundle`]: the pack, its pending file and the members in it.
type Bundle<'i, 'p> = (NewPack, PathBuf, Vec<&'i PackItem<'p>>);

/// Encrypts several small contents, one after the other, into one pack (pending file named
/// after the first). A member read in place that vanished, changed size or no longer has
/// its recorded hash is left out of the pack's members (bytes of it already encrypted stay
/// in the pack, referenced by nothing) and returned with the reason; a staged member that
/// does not match is an error (staging was modified). `None` when no member is left.
#[allow(clippy::type_complexity)]
fn seal_bundle<'i, 'p>(
    config: &Config,
    key: &Unlocked,
    items: &[&'i PackItem<'p>],
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<(Option<Bundle<'i, 'p>>, Vec<(&'i PackItem<'p>, String)>)> {
    let Some(first) = items.first() else {
        return Ok((None, Vec::new()));
    };
    let pending = pending_path(config, &first.hash.to_hex());
    let total: u64 = items.iter().map(|i| i.version.size.unwrap_or(0)).sum();
    progress.item(
        &format!("{} small files from {}", items.len(), first.version.path),
        Some(total),
    );
    let out = std::fs::File::create(&pending)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, &out);
    let sealed = seal_items(&key.key, items, &mut w, progress, cancel).and_then(|s| {
        std::io::Write::flush(&mut w)?;
        Ok(s)
    });
    drop(w);
    drop(out);
    let sealed = match sealed {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&pending);
            return Err(e);
        }
    };
    let gone = sealed
        .gone
        .iter()
        .map(|(i, why)| (items[*i], why.clone()))
        .collect();
    let Some(pack) = sealed.pack else {
        let _ = std::fs::remove_file(&pending);
        return Ok((None, gone));
    };
    let packed: Vec<&PackItem<'_>> = sealed.packed.iter().map(|&i| items[i]).collect();
    // Named after a member it really holds, so that `repair_pending` finds it.
    let pending = match packed.first() {
        Some(lead) if lead.hash != first.hash => {
            let named = pending_path(config, &lead.hash.to_hex());
            std::fs::rename(&pending, &named)?;
            named
        }
        _ => pending,
    };
    Ok((Some((pack, pending, packed)), gone))
}

/// What [`seal_items`] made: the pack (`None` when no item is in it) and, by index into
/// the items, those packed and those left out with the reason.
#[derive(Debug)]
pub(super) struct SealedItems {
    /// The pack to record (its members are the packed items).
    pub pack: Option<NewPack>,
    /// Items in the pack.
    pub packed: Vec<usize>,
    /// Items read in place that vanished, changed size or no longer have their recorded
    /// hash: not in the pack (bytes of them already encrypted stay in it, referenced by
    /// nothing), and why.
    pub gone: Vec<(usize, String)>,
}

/// Encrypts `items` one after the other into one pack written to `out` (one item: the
/// options of [`seal_options`] for its size; several: the defaults). Each item is read as
/// exactly its recorded size and checked against its recorded hash; a staged item that
/// does not match is an error (staging was modified).
pub(super) fn seal_items(
    key: &cryptpack::Key,
    items: &[&PackItem<'_>],
    out: &mut dyn std::io::Write,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<SealedItems> {
    let single = items.len() == 1;
    let options = match items {
        [one] => seal_options(one.version.size.unwrap_or(0)),
        _ => cryptpack::EncryptOptions::default(),
    };
    let mut members = Members {
        items: items.to_vec(),
        // One item: the pack's plaintext hash is the item's, checked below.
        hash_each: !single,
        next: 0,
        cur: None,
        emitted: 0,
        outcomes: Vec::with_capacity(items.len()),
    };
    let summary = cryptpack::encrypt_stream(
        &mut members,
        out,
        cryptpack::Secret::Key(key),
        &options,
        &Adapt(progress),
        cancel,
    )?;
    let plain_hash = digest(&summary.plaintext_hash.0)?;
    let mut sealed = SealedItems {
        pack: None,
        packed: Vec::new(),
        gone: Vec::new(),
    };
    let mut pack_members = Vec::new();
    for (i, (item, outcome)) in members.outcomes.into_iter().enumerate() {
        let outcome = match outcome {
            Ok(_) if single && &plain_hash != item.hash => {
                Err("content changed since get".to_owned())
            }
            o => o,
        };
        match outcome {
            Ok((offset, length)) => {
                pack_members.push(PackMember {
                    version: item.version.id,
                    offset,
                    length,
                });
                sealed.packed.push(i);
            }
            Err(why) if item.in_place => sealed.gone.push((i, why)),
            Err(why) => anyhow::bail!(
                "staged plaintext {}: {why} (staging was modified)",
                item.plain.display()
            ),
        }
    }
    if !pack_members.is_empty() {
        sealed.pack = Some(new_pack(&summary, plain_hash, pack_members)?);
    }
    Ok(sealed)
}

/// The plaintext of a bundle: its members' bytes one after the other, each read as exactly
/// its recorded size and hashed on the way, with the outcome per member (offset and length
/// in the stream, or why it is not usable).
struct Members<'i, 'p> {
    items: Vec<&'i PackItem<'p>>,
    /// Hash each member on the way (with one member, the pack's plaintext hash serves).
    hash_each: bool,
    next: usize,
    cur: Option<Member<'i, 'p>>,
    emitted: u64,
    #[allow(clippy::type_complexity)]
    outcomes: Vec<(&'i PackItem<'p>, Result<(u64, u64), String>)>,
}

/// The member being read.
struct Member<'i, 'p> {
    item: &'i PackItem<'p>,
    file: std::fs::File,
    offset: u64,
    left: u64,
    hasher: blake3::Hasher,
}

/// Opens a content's plaintext: `Err(why)` when a file read in place is gone or changed
/// size since `get` (then it is not packed); I/O errors otherwise.
fn open_plain(item: &PackItem<'_>) -> std::io::Result<Result<std::fs::File, String>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    if !item.in_place {
        return o.open(&item.plain).map(Ok);
    }
    let f = match o
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&item.plain)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Err("vanished since get".into()));
        }
        Err(e) => return Err(e),
    };
    if f.metadata()?.len() != item.version.size.unwrap_or(0) {
        return Ok(Err("size changed since get".into()));
    }
    Ok(Ok(f))
}

impl std::io::Read for Members<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let Some(cur) = self.cur.as_mut() else {
                let Some(&item) = self.items.get(self.next) else {
                    return Ok(0);
                };
                self.next += 1;
                match open_plain(item)? {
                    Ok(file) => {
                        self.cur = Some(Member {
                            item,
                            file,
                            offset: self.emitted,
                            left: item.version.size.unwrap_or(0),
                            hasher: blake3::Hasher::new(),
                        });
                    }
                    Err(why) => self.outcomes.push((item, Err(why))),
                }
                continue;
            };
            if cur.left == 0 {
                let outcome = if !self.hash_each
                    || cur.hasher.finalize().as_bytes() == cur.item.hash.bytes()
                {
                    Ok((cur.offset, self.emitted - cur.offset))
                } else {
                    Err("content changed since get".into())
                };
                self.outcomes.push((cur.item, outcome));
                self.cur = None;
                continue;
            }
            if buf.is_empty() {
                return Ok(0);
            }
            let want = usize::try_from(cur.left)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let n = cur.file.read(&mut buf[..want])?;
            if n == 0 {
                self.outcomes
                    .push((cur.item, Err("shrank while it was packed".into())));
                self.cur = None;
                continue;
            }
            if self.hash_each {
                cur.hasher.update(&buf[..n]);
            }
            cur.left -= n as u64;
            self.emitted += n as u64;
            return Ok(n);
        }
    }
}

/// What [`seal`] made of one content.
enum Sealed {
    /// The pack to record and its pending file.
    Pack(NewPack, PathBuf),
    /// A file read in place no longer has the recorded content (why).
    Changed(String),
}

/// Encrypts one content to its pending file (the caller syncs it).
fn seal(
    config: &Config,
    key: &Unlocked,
    item: &PackItem<'_>,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<Sealed> {
    let (v, hash) = (item.version, item.hash);
    let pending = pending_path(config, &hash.to_hex());
    progress.item(&v.path, v.size);
    let input =
        match open_plain(item).with_context(|| format!("opening {}", item.plain.display()))? {
            Ok(f) => f,
            Err(why) => return Ok(Sealed::Changed(why)),
        };
    let out = std::fs::File::create(&pending)?;
    let summary = cryptpack::encrypt_file(
        &input,
        &out,
        cryptpack::Secret::Key(&key.key),
        &seal_options(v.size.unwrap_or(0)),
        &Adapt(progress),
        cancel,
    )?;
    drop(out);
    let plain_hash = digest(&summary.plaintext_hash.0)?;
    if &plain_hash != hash {
        let _ = std::fs::remove_file(&pending);
        if item.in_place {
            return Ok(Sealed::Changed("content changed since get".into()));
        }
        anyhow::bail!(
            "staged plaintext {} does not match its recorded hash (staging was modified)",
            item.plain.display()
        );
    }
    let members = vec![PackMember {
        version: v.id,
        offset: 0,
        length: summary.plaintext_len,
    }];
    Ok(Sealed::Pack(
        new_pack(&summary, plain_hash, members)?,
        pending,
    ))
}

/// The pack record of a sealed pack: its sizes and hashes from the sealing summary.
fn new_pack(
    summary: &cryptpack::Summary,
    plain_hash: catalog::Digest,
    members: Vec<PackMember>,
) -> anyhow::Result<NewPack> {
    Ok(NewPack {
        format: PackFormat::Cryptpack,
        key_id: summary.key_id.to_string(),
        plain_size: summary.plaintext_len,
        plain_hash,
        cipher_size: summary.ciphertext_len,
        cipher_hash: catalog::Digest::new(
            catalog::HashAlgo::Blake3,
            summary.ciphertext_hash.0.to_vec(),
        )?,
        members,
    })
}

/// Encryption options for a content of `size` bytes: the defaults, except that a content
/// of at most one default segment is sealed on the calling thread in one segment just
/// large enough for it (a power of two, at least 64 KiB): no worker threads to start and
/// no megabyte buffers to clear for each of thousands of small files. Any segment size is
/// valid in the format (FORMAT.md), so readers need nothing special.
fn seal_options(size: u64) -> cryptpack::EncryptOptions {
    let default = cryptpack::EncryptOptions::default();
    if size > u64::from(default.segment_size) {
        return default;
    }
    let segment = size
        .next_power_of_two()
        .clamp(64 << 10, u64::from(default.segment_size));
    cryptpack::EncryptOptions {
        segment_size: u32::try_from(segment).unwrap_or(default.segment_size),
        threads: 1,
        batch_segments: Some(1),
        ..default
    }
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
