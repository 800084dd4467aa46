//! `get`: list each configured source, record new and changed files as versions, fetch
//! their content into staging (or, for a local source read in place, hash it where it
//! lies) and record its hash.
//!
//! Staging is content-addressed: a fetched file lands in `staging/incoming/<source>/` and is
//! renamed to `staging/content/<blake3 hex>` *before* its hash is recorded, so a version
//! with a recorded content has its plaintext staged until it is packed. Landed files are
//! staged and recorded in groups (up to 512 files): renamed, made durable with one
//! `syncfs`, then the group's hashes are recorded in one transaction.
//!
//! A local source with `read_in_place` (the default) is not copied: its files are hashed
//! where they lie ([`fetch::LocalSource::hash_in_place`], on `parallel` threads) and `pack`
//! reads them again, packing a file only if it still has the recorded hash (see
//! [`super::pack`]). Killed at any point, the next `get` fetches again whatever was not
//! recorded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use catalog::{Catalog, JobKind, JobProgress, ScanChange, ScannedFile, Timestamp};

use super::exclude::Exclude;
use super::{Config, Progress, digest};

/// Options for [`get`].
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    /// Only list and compare: change nothing.
    pub dry_run: bool,
    /// Only these sources (empty: all).
    pub sources: Vec<String>,
}

/// What [`get`] did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GetReport {
    /// Files listed.
    pub listed: u64,
    /// New paths.
    pub new: u64,
    /// Changed paths (new versions).
    pub changed: u64,
    /// Files fetched into staging.
    pub fetched: u64,
    /// Bytes fetched.
    pub bytes: u64,
    /// Files marked deleted at their source (or excluded since they were backed up).
    pub deleted: u64,
    /// Files listed but left out by the source's `exclude` patterns.
    pub excluded: u64,
    /// Files that failed (with reasons).
    pub failed: Vec<String>,
    /// Non-fatal warnings (unreadable directories, names that are not UTF-8).
    pub warnings: Vec<String>,
}

/// Where staged content lives.
pub fn content_dir(config: &Config) -> PathBuf {
    config.file.staging.join("content")
}

/// The staged plaintext of a content.
pub fn staged_content(config: &Config, hash: &catalog::Digest) -> PathBuf {
    content_dir(config).join(hash.to_hex())
}

/// How a pipelined caller (`workflow::run`) paces `get`: files are fetched in chunks, each
/// admitted before it is fetched and announced once it is staged and recorded.
pub(crate) trait Pace: Sync {
    /// Most bytes and most files fetched in one chunk.
    fn chunk_limits(&self) -> (u64, usize);
    /// Called before a chunk of `bytes` is fetched; may block until staging has room.
    /// An error stops `get` (nothing of the chunk is fetched or recorded).
    fn admit(&self, bytes: u64) -> anyhow::Result<()>;
    /// `bytes` of new plaintext were staged and their versions recorded.
    fn staged(&self, bytes: u64);
}

/// No pacing: one chunk per source, never waits.
struct Unpaced;

impl Pace for Unpaced {
    fn chunk_limits(&self) -> (u64, usize) {
        (u64::MAX, usize::MAX)
    }
    fn admit(&self, _bytes: u64) -> anyhow::Result<()> {
        Ok(())
    }
    fn staged(&self, _bytes: u64) {}
}

/// Runs `get` over the configured sources.
pub fn get(
    config: &Config,
    cat: &mut Catalog,
    options: &GetOptions,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<GetReport> {
    get_paced(config, cat, options, &Unpaced, progress, cancel)
}

/// [`get`], fetching in chunks paced by `pace`.
pub(crate) fn get_paced(
    config: &Config,
    cat: &mut Catalog,
    options: &GetOptions,
    pace: &dyn Pace,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<GetReport> {
    let mut report = GetReport::default();
    if config.file.sources.is_empty() {
        anyhow::bail!(
            "no sources in {}: add a [[source]] with name and path",
            config.path.display()
        );
    }
    for name in &options.sources {
        if !config.file.sources.iter().any(|s| &s.name == name) {
            anyhow::bail!("no source named {name:?} in {}", config.path.display());
        }
    }
    let job = if options.dry_run {
        None
    } else {
        Some(cat.write(|tx| tx.start_job(JobKind::Get, Timestamp::now()))?)
    };
    let result = (|| {
        for src in &config.file.sources {
            if !options.sources.is_empty() && !options.sources.contains(&src.name) {
                continue;
            }
            get_source(
                config,
                cat,
                src,
                options,
                pace,
                &mut report,
                progress,
                cancel,
            )
            .with_context(|| format!("source {}", src.name))?;
        }
        anyhow::Ok(())
    })();
    if let Some(job) = job {
        let progress = JobProgress {
            items_done: report.fetched,
            items_failed: report.failed.len() as u64,
            bytes_done: report.bytes,
            resume_state: None,
        };
        super::close_job(cat, job, &result, &progress, Some("file(s)"))?;
    }
    result.map(|()| report)
}

fn scanned(path: &str, e: &fetch::Entry) -> ScannedFile {
    ScannedFile {
        path: path.to_owned(),
        size: e.size,
        mtime: Timestamp::from_unix_seconds(e.mtime.secs),
        mode: e.mode,
        hash: None,
    }
}

/// Where a source's files come from, as recorded in the catalog (`host:path` or a path).
fn source_url(src: &super::config::SourceConfig) -> String {
    match &src.host {
        Some(host) => format!("{host}:{}", src.path.display()),
        None => src.path.display().to_string(),
    }
}

/// The fetch source for one `[[source]]`: a local directory, rsync over ssh, or SFTP.
fn open_source(
    src: &super::config::SourceConfig,
    exclude: &Exclude,
) -> anyhow::Result<Box<dyn fetch::Source>> {
    let Some(host) = &src.host else {
        if !src.path.is_dir() {
            anyhow::bail!("{} is not a directory", src.path.display());
        }
        let mut local = fetch::LocalSource::new(&src.path);
        if let Some(p) = prune_of(exclude) {
            local = local.pruned(p);
        }
        return Ok(Box::new(local));
    };
    let mut target = fetch::SshTarget::new(host.clone());
    if let Some(port) = src.port {
        target = target.port(port);
    }
    if let Some(p) = &src.identity_file {
        target = target.identity_file(p.clone());
    }
    if let Some(p) = &src.ssh_config {
        target = target.config_file(p.clone());
    }
    if let Some(p) = &src.known_hosts {
        target = target.known_hosts_file(p.clone());
    }
    Ok(match src.transfer {
        super::config::Transfer::Rsync => Box::new(fetch::SshSource::new(target, &src.path)),
        super::config::Transfer::Sftp => {
            let mut sftp = fetch::SftpSource::new(target, &src.path);
            if let Some(p) = prune_of(exclude) {
                sftp = sftp.pruned(p);
            }
            Box::new(sftp)
        }
    })
}

/// The directories a source's `exclude` patterns leave out, for sources that walk their
/// tree themselves (local, SFTP): those are not read at all. Files are still listed, then
/// left out and counted by `get`. `None` without patterns.
fn prune_of(exclude: &Exclude) -> Option<fetch::Prune> {
    if exclude.is_empty() {
        return None;
    }
    let exclude = exclude.clone();
    Some(fetch::Prune::new(move |path, is_dir| {
        is_dir && std::str::from_utf8(path).is_ok_and(|p| exclude.matches_entry(p, true))
    }))
}

#[allow(clippy::too_many_arguments)]
fn get_source(
    config: &Config,
    cat: &mut Catalog,
    src: &super::config::SourceConfig,
    options: &GetOptions,
    pace: &dyn Pace,
    report: &mut GetReport,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<()> {
    let exclude = Exclude::new(&src.exclude)?;
    let source = open_source(src, &exclude)?;
    let source: &dyn fetch::Source = source.as_ref();
    progress.message(&format!("listing {} ({})", src.name, source_url(src)));
    let scan_started = Timestamp::now();
    let listing = source.list(cancel)?;
    report.warnings.extend(listing.warnings.iter().cloned());
    let mut entries: Vec<(String, &fetch::Entry)> = Vec::new();
    for e in &listing.entries {
        match std::str::from_utf8(&e.path) {
            Ok(p) if exclude.matches(p) => report.excluded += 1,
            Ok(p) => entries.push((p.to_owned(), e)),
            Err(_) => report.warnings.push(format!(
                "{}: {}: name is not UTF-8, skipped",
                src.name,
                e.display_path()
            )),
        }
    }
    report.listed += entries.len() as u64;
    let url = source_url(src);

    if options.dry_run {
        let Some(s) = cat.read().source_by_name(&src.name)? else {
            report.new += entries.len() as u64;
            return Ok(());
        };
        let reader = cat.read();
        for (path, e) in &entries {
            match reader.versions_of(s.id, path)?.last() {
                None => report.new += 1,
                Some(v)
                    if v.deleted_at.is_some()
                        || v.size != Some(e.size)
                        || v.mtime.unix_seconds() != e.mtime.secs =>
                {
                    report.changed += 1
                }
                Some(_) => {}
            }
        }
        return Ok(());
    }

    let now = Timestamp::now();
    let complete_listing = listing.warnings.is_empty();
    let (sid, new, changed, deleted) = cat.write(|tx| {
        let sid = match tx.read().source_by_name(&src.name)? {
            Some(s) => s.id,
            None => tx.add_source(&src.name, &url, now)?,
        };
        let (mut new, mut changed) = (0u64, 0u64);
        // The whole listing in this one transaction, recorded in batches of bounded size.
        for chunk in entries.chunks(10_000) {
            let files: Vec<ScannedFile> = chunk.iter().map(|(path, e)| scanned(path, e)).collect();
            for outcome in tx.record_scans(sid, &files, now)? {
                match outcome.change {
                    ScanChange::New => new += 1,
                    ScanChange::Changed => changed += 1,
                    ScanChange::Unchanged => {}
                }
            }
        }
        let deleted = if complete_listing {
            tx.mark_unseen_deleted(sid, scan_started, now)?
        } else {
            0
        };
        Ok::<_, catalog::Error>((sid, new, changed, deleted))
    })?;
    report.new += new;
    report.changed += changed;
    report.deleted += deleted;

    // Latest versions of this source still without content: fetch them.
    let wanted: HashMap<String, catalog::VersionInfo> = cat
        .read()
        .versions_to_fetch(u64::MAX >> 1)?
        .into_iter()
        .filter(|v| v.source == sid && v.deleted_at.is_none())
        .map(|v| (v.path.clone(), v))
        .collect();
    let to_fetch: Vec<fetch::Entry> = entries
        .iter()
        .filter(|(p, _)| wanted.contains_key(p))
        .map(|(_, e)| (*e).clone())
        .collect();
    if to_fetch.is_empty() {
        return Ok(());
    }
    let incoming = config.file.staging.join("incoming").join(&src.name);
    let content = content_dir(config);
    std::fs::create_dir_all(&incoming)?;
    std::fs::create_dir_all(&content)?;
    let total: u64 = to_fetch.iter().map(|e| e.size).sum();
    progress.message(&format!(
        "fetching {} file(s), {total} bytes from {}",
        to_fetch.len(),
        src.name
    ));
    let (max_bytes, max_files) = pace.chunk_limits();
    // Files hashed in place are recorded as each chunk ends: a bounded chunk keeps what a
    // killed `get` has to hash again small.
    let max_files = match src.in_place_root() {
        Some(_) => max_files.min(IN_PLACE_GROUP_FILES),
        None => max_files,
    };
    let mut rest: &[fetch::Entry] = &to_fetch;
    while !rest.is_empty() {
        // The next chunk: at least one file, then up to the limits.
        let mut n = 0;
        let mut bytes = 0u64;
        while n < rest.len()
            && n < max_files.max(1)
            && (n == 0 || bytes.saturating_add(rest[n].size) <= max_bytes)
        {
            bytes = bytes.saturating_add(rest[n].size);
            n += 1;
        }
        let (chunk, after) = rest.split_at(n);
        rest = after;
        pace.admit(bytes)?;
        let staged = fetch_chunk(
            cat, source, src, sid, chunk, &wanted, &incoming, &content, report, progress, cancel,
        )?;
        pace.staged(staged);
    }
    Ok(())
}

/// Fetches one chunk of a source's files into staging and records each landed file.
/// Returns the bytes staged.
#[allow(clippy::too_many_arguments)]
fn fetch_chunk(
    cat: &mut Catalog,
    source: &dyn fetch::Source,
    src: &super::config::SourceConfig,
    sid: catalog::SourceId,
    chunk: &[fetch::Entry],
    wanted: &HashMap<String, catalog::VersionInfo>,
    incoming: &Path,
    content: &Path,
    report: &mut GetReport,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<u64> {
    // Opened before the files land, so a writeback error of any of them is reported.
    let durable = super::FsSync::open(content)?;
    let arrived = match src.in_place_root() {
        Some(root) => hash_in_place(root, chunk, src.parallel, cancel),
        None => {
            let plan = fetch::Plan::all(chunk);
            let fetched = fetch::Fetcher::new(source, incoming)
                .parallel(src.parallel.max(1))
                .fetch(&plan, &fetch::NoProgress, cancel);
            let arrived = fetched
                .files
                .iter()
                .map(|f| match &f.outcome {
                    Ok(l) => Ok(Arrived {
                        entry: f.entry.clone(),
                        staged: Some(l.staged_path.clone()),
                        size: l.size,
                        mtime: l.mtime,
                        hash: l.hash.0,
                        changed_since_listing: l.changed_since_listing,
                    }),
                    Err(e) => Err((f.entry.clone(), e.to_string())),
                })
                .collect();
            Chunk {
                arrived,
                stopped: fetched.stopped,
            }
        }
    };
    let mut landed = Vec::new();
    for a in &arrived.arrived {
        match a {
            Ok(a) => {
                let path = String::from_utf8_lossy(&a.entry.path).into_owned();
                if let Some(v) = wanted.get(&path) {
                    landed.push((a, path, v));
                }
            }
            Err((entry, err)) => {
                report
                    .failed
                    .push(format!("{}/{}: {err}", src.name, entry.display_path()))
            }
        }
    }
    // Stage, then record, in groups: every landed file of a group is renamed to its content
    // name, one `syncfs` makes the group's data and names durable, and only then are the
    // group's hashes recorded in one transaction (recorded only after staged durably, as
    // file by file, with one filesystem sync and one commit per group instead of per file).
    // Files read in place were only hashed: nothing to stage.
    let mut staged = 0u64;
    let group_files = match src.in_place_root() {
        Some(_) => IN_PLACE_GROUP_FILES,
        None => STAGE_GROUP_FILES,
    };
    for group in landed.chunks(group_files) {
        let mut hashes = Vec::with_capacity(group.len());
        let mut any_staged = false;
        for (landed, _, _) in group {
            let hash = digest(&landed.hash)?;
            if let Some(from) = &landed.staged {
                stage(from, &content.join(hash.to_hex()))?;
                any_staged = true;
            }
            hashes.push(hash);
        }
        if any_staged {
            durable.sync()?;
        }
        let now = Timestamp::now();
        cat.write(|tx| {
            let mut fetched = Vec::with_capacity(group.len());
            for ((landed, path, v), hash) in group.iter().zip(&hashes) {
                let version = if landed.changed_since_listing || v.size != Some(landed.size) {
                    // The file changed while it was fetched: record what landed.
                    let rescan = ScannedFile {
                        path: path.clone(),
                        size: landed.size,
                        mtime: Timestamp::from_unix_seconds(landed.mtime.secs),
                        mode: landed.entry.mode,
                        hash: None,
                    };
                    tx.record_scan(sid, &rescan, now)?.version
                } else {
                    v.id
                };
                fetched.push(catalog::Fetched {
                    version,
                    hash: hash.clone(),
                    size: landed.size,
                });
            }
            tx.record_fetches(&fetched)?;
            Ok::<_, catalog::Error>(())
        })
        .with_context(|| {
            let first = group.first().map_or("", |g| g.1.as_str());
            format!(
                "recording {} file(s) of {} from {first}",
                group.len(),
                src.name
            )
        })?;
        for (landed, _, _) in group {
            report.fetched += 1;
            report.bytes += landed.size;
            staged += landed.size;
            progress.advance(landed.size);
        }
    }
    if let Some(stop) = arrived.stopped {
        return Err(stop.into());
    }
    Ok(staged)
}

/// A file of a chunk that arrived: copied into staging, or hashed where it lies.
struct Arrived {
    entry: fetch::Entry,
    /// Where it landed in staging; `None` when read in place.
    staged: Option<PathBuf>,
    size: u64,
    mtime: fetch::Mtime,
    hash: [u8; 32],
    changed_since_listing: bool,
}

/// What became of a chunk's files (failures with their entry), and the error that stopped
/// the chunk early, if any.
struct Chunk {
    arrived: Vec<Result<Arrived, (fetch::Entry, String)>>,
    stopped: Option<fetch::Error>,
}

/// Hashes a chunk of a local source's files where they lie, on `parallel` threads (see
/// [`fetch::LocalSource::hash_in_place`]). A file that vanished or keeps changing fails
/// alone; cancellation stops the chunk.
fn hash_in_place(
    root: &Path,
    chunk: &[fetch::Entry],
    parallel: usize,
    cancel: &AtomicBool,
) -> Chunk {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let source = fetch::LocalSource::new(root);
    let next = AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<fetch::InPlace, fetch::Error>>>> =
        chunk.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..parallel.clamp(1, chunk.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(entry) = chunk.get(i) else { break };
                    let r = source.hash_in_place(entry, cancel);
                    let stop = matches!(r, Err(fetch::Error::Cancelled));
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(r);
                    }
                    if stop {
                        break;
                    }
                }
            });
        }
    });
    let mut out = Chunk {
        arrived: Vec::with_capacity(chunk.len()),
        stopped: None,
    };
    for (entry, slot) in chunk.iter().zip(results) {
        match slot.into_inner().ok().flatten() {
            Some(Ok(p)) => out.arrived.push(Ok(Arrived {
                entry: entry.clone(),
                staged: None,
                size: p.size,
                mtime: p.mtime,
                hash: p.hash.0,
                changed_since_listing: p.changed_since_listing,
            })),
            Some(Err(fetch::Error::Cancelled)) | None => {
                out.stopped.get_or_insert(fetch::Error::Cancelled);
            }
            Some(Err(e)) => out.arrived.push(Err((entry.clone(), e.to_string()))),
        }
    }
    out
}

/// Most landed files staged and recorded together (one filesystem sync, one transaction).
const STAGE_GROUP_FILES: usize = 512;

/// Most files of a source read in place hashed as one chunk and recorded in one
/// transaction (nothing is staged for them, so the group only bounds the work a killed
/// `get` repeats). Bigger than [`STAGE_GROUP_FILES`]: the catalog's random-order hash index
/// dirties about one page per content per commit, so small commits of many small files
/// write most of the index to the WAL again each time (figures for 512 and 10 000 files
/// per commit, and for `get` of 200k small files, in crates/catalog/README.md).
const IN_PLACE_GROUP_FILES: usize = 8192;

/// Moves a landed file to its content-addressed name; the caller syncs the filesystem
/// ([`super::FsSync`]) before it records the hash.
fn stage(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::rename(from, to).with_context(|| format!("staging {}", from.display()))?;
    Ok(())
}
