//! `tapebackup backuppc …`: a BackupPC archive host on object storage.
//!
//! - `archive` is BackupPC's `ArchiveClientCmd` (its 11 positional arguments);
//! - `list`, `prune` and `restore-script` manage what is in the store.
//!
//! Configuration: a TOML file (see `config.rs` and docs/backuppc.md).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::output::Context;

mod archive;
mod config;
mod manifest;
mod records;
mod script;

use manifest::{Manifest, now};

/// Exit code for object-storage failures (exit.rs).
const EXIT_STORE: u8 = 8;
/// Exit code for configuration errors (exit.rs).
const EXIT_CONFIG: u8 = 9;

/// The exit code for a `cloud` error.
pub fn exit_code_of(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    let c = e.downcast_ref::<cloud::Error>()?;
    Some(match c {
        cloud::Error::Config { .. } => EXIT_CONFIG,
        cloud::Error::Source { .. } | cloud::Error::Sink { .. } => 3,
        _ => EXIT_STORE,
    })
}

/// Arguments of `tapebackup backuppc`.
#[derive(Debug, Args)]
pub struct BackuppcArgs {
    #[command(subcommand)]
    pub command: BackuppcCommand,
}

/// `--store FILE` for the management commands.
#[derive(Debug, Clone, Args)]
pub struct StoreOpt {
    /// TOML file with the `[store]` (and `[backuppc]`) sections; default: --config /
    /// $TAPEBACKUP_CONFIG, else /etc/tapebackup/config.toml.
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
}

/// The BackupPC subcommands.
#[derive(Debug, Subcommand)]
pub enum BackuppcCommand {
    /// BackupPC's ArchiveClientCmd: exactly its 11 positional arguments. Configuration from
    /// $TAPEBACKUP_CONFIG (or --config), else /etc/tapebackup/config.toml.
    Archive(ArchiveArgs),
    /// List archives: host, backup number, age, size, chunks, complete or not, where.
    List(ListArgs),
    /// Keep the newest N complete archives per host; delete complete ones older than DAYS
    /// (every object version).
    Prune(PruneArgs),
    /// Write a standalone POSIX sh restore script (presigned URLs) to stdout.
    RestoreScript(RestoreScriptArgs),
}

/// BackupPC's 11 arguments, in order (empty values are still arguments).
#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// $tarCreatePath (BackupPC_tarCreate).
    pub tar_create_path: String,
    /// $splitpath (unused: we cut the stream ourselves).
    pub split_path: String,
    /// $parpath (unused; may be empty).
    pub par_path: String,
    /// $host.
    pub host: String,
    /// $backupnumber.
    pub backup_number: u64,
    /// $compression: compressor program (/bin/gzip, /bin/bzip2, /bin/cat = none).
    pub compression: String,
    /// $compext (.gz, .bz2, .raw or empty).
    pub comp_ext: String,
    /// $splitsize in bytes (0: the configured chunk size).
    pub split_size: String,
    /// $archiveloc (unused: nothing is staged on disk).
    pub archive_loc: String,
    /// $parfile (unused).
    pub par_file: String,
    /// $share ('*' = all shares).
    pub share: String,
}

/// Arguments of `backuppc list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub store: StoreOpt,
    /// Only this host.
    #[arg(long)]
    pub host: Option<String>,
}

/// Arguments of `backuppc prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub store: StoreOpt,
    /// Delete complete archives at least this many days old (by finish time)…
    #[arg(long, value_name = "DAYS")]
    pub age: f64,
    /// …but always keep the newest N complete archives of each host.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub keep: usize,
    /// Only say what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `backuppc restore-script`.
#[derive(Debug, Args)]
pub struct RestoreScriptArgs {
    #[command(flatten)]
    pub store: StoreOpt,
    /// Host to restore.
    #[arg(long)]
    pub host: String,
    /// Backup number (default: the newest complete archive of the host).
    #[arg(long)]
    pub backup: Option<u64>,
    /// Lifetime of the download URLs and of the script, in seconds (at most 604800 = 7 days).
    #[arg(long, value_name = "SECONDS")]
    pub expire: u64,
}

/// Runs `tapebackup backuppc …`.
pub fn run(args: &BackuppcArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    match &args.command {
        BackuppcCommand::Archive(a) => run_archive(a, ctx, out),
        BackuppcCommand::List(a) => list(a, ctx, out),
        BackuppcCommand::Prune(a) => prune(a, ctx, out),
        BackuppcCommand::RestoreScript(a) => restore_script(a, ctx, out),
    }
}

fn settings(opt: Option<&StoreOpt>, ctx: &Context) -> anyhow::Result<config::Settings> {
    let path = config::config_path(opt.and_then(|o| o.store.as_deref()), ctx.config.as_deref());
    config::load(&path)
}

fn run_archive(a: &ArchiveArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let split_size = a
        .split_size
        .trim()
        .parse::<u64>()
        .with_context(|| format!("split size {:?} is not a number of bytes", a.split_size))?;
    let args = archive::BackupPcArgs {
        tar_create: a.tar_create_path.clone(),
        host: a.host.clone(),
        backup: a.backup_number,
        comp_path: a.compression.clone(),
        comp_ext: a.comp_ext.clone(),
        split_size,
        share: a.share.clone(),
    };
    let settings = settings(None, ctx)?;
    let cancel = AtomicBool::new(false);
    let mut log = std::io::stderr();
    writeln!(
        log,
        "tapebackup: archiving {} #{} (share {}) to {}",
        args.host,
        args.backup,
        args.share,
        settings.store.location()
    )?;
    let m = archive::run(&args, &settings, &mut log, &cancel)?;
    if ctx.json {
        writeln!(out, "{}", serde_json::to_string(&m)?)?;
    } else {
        writeln!(
            out,
            "tapebackup: archive of {} #{} complete: {} chunk(s), {} bytes stored in {}",
            m.host,
            m.backup,
            m.chunks.len(),
            m.size,
            settings.store.location()
        )?;
    }
    Ok(())
}

/// One archive found in the store.
#[derive(Debug)]
struct Found {
    host: String,
    backup: u64,
    manifest: Option<Manifest>,
    chunks: usize,
    size: u64,
    newest: std::time::SystemTime,
    keys: Vec<String>,
}

fn scan(settings: &config::Settings, host: Option<&str>) -> anyhow::Result<Vec<Found>> {
    let store = settings.store.as_ref();
    let prefix = match host {
        Some(h) => format!("{}/{h}", settings.prefix),
        None => settings.prefix.clone(),
    };
    let mut by: BTreeMap<(String, u64), Found> = BTreeMap::new();
    for o in store.list(&prefix).context("listing the store")? {
        let rest = o
            .key
            .strip_prefix(&settings.prefix)
            .unwrap_or(&o.key)
            .trim_start_matches('/');
        let mut parts = rest.splitn(3, '/');
        let (Some(h), Some(n), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        let f = by.entry((h.to_string(), n)).or_insert_with(|| Found {
            host: h.to_string(),
            backup: n,
            manifest: None,
            chunks: 0,
            size: 0,
            newest: std::time::UNIX_EPOCH,
            keys: vec![],
        });
        f.newest = f.newest.max(o.last_modified);
        f.keys.push(o.key.clone());
        if name.starts_with("chunk-") {
            f.chunks += 1;
            f.size += o.size;
        }
        if name == "manifest.json" {
            let bytes = store.get(&o.key)?;
            f.manifest =
                Some(serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", o.key))?);
        }
    }
    Ok(by.into_values().collect())
}

fn age_of(f: &Found) -> u64 {
    let t = match &f.manifest {
        Some(m) => m.finished,
        None => f
            .newest
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    now().saturating_sub(t)
}

fn human_age(secs: u64) -> String {
    match secs {
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn list(a: &ListArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let settings = settings(Some(&a.store), ctx)?;
    let found = scan(&settings, a.host.as_deref())?;
    let location = settings.store.location();
    if ctx.json {
        let rows: Vec<_> = found
            .iter()
            .map(|f| {
                json!({
                    "host": f.host, "backup": f.backup, "age_seconds": age_of(f),
                    "size": f.size, "chunks": f.chunks, "complete": f.manifest.is_some(),
                    "where": format!("{location}/{}", manifest::archive_dir(&settings.prefix, &f.host, f.backup)),
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<20} {:>6} {:>6} {:>14} {:>6}  {:<10} WHERE",
        "HOST", "BACKUP", "AGE", "SIZE", "CHUNKS", "STATUS"
    )?;
    for f in &found {
        writeln!(
            out,
            "{:<20} {:>6} {:>6} {:>14} {:>6}  {:<10} {location}/{}",
            f.host,
            f.backup,
            human_age(age_of(f)),
            f.size,
            f.chunks,
            if f.manifest.is_some() {
                "complete"
            } else {
                "INCOMPLETE"
            },
            manifest::archive_dir(&settings.prefix, &f.host, f.backup)
        )?;
    }
    Ok(())
}

fn prune(a: &PruneArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    if !(a.age >= 0.0 && a.age.is_finite()) {
        bail!("--age must be a number of days >= 0");
    }
    let settings = settings(Some(&a.store), ctx)?;
    let found = scan(&settings, None)?;
    let max_age = (a.age * 86400.0) as u64;
    let mut hosts: BTreeMap<&str, Vec<&Found>> = BTreeMap::new();
    for f in found.iter().filter(|f| f.manifest.is_some()) {
        hosts.entry(&f.host).or_default().push(f);
    }
    // The catalog forgets an archive's chunks before they are deleted: a prune killed in
    // between leaves objects the catalog no longer counts on (the next prune deletes them),
    // never catalog locations pointing at deleted objects.
    let mut catalog = if a.dry_run || !settings.catalog.exists() {
        None
    } else {
        let cat = catalog::Catalog::open(&settings.catalog)
            .with_context(|| format!("catalog {}", settings.catalog.display()))?;
        let (bucket, prefix) = &settings.volume;
        let volume = cat.read().volumes()?.into_iter().find(|v| {
            matches!(&v.medium, catalog::Medium::Object { bucket: b, prefix: p } if b == bucket && p == prefix)
        });
        volume.map(|v| (cat, v.id))
    };
    let mut deleted = Vec::new();
    for (_, mut list) in hosts {
        // Newest first: by finish time, then backup number.
        list.sort_by_key(|f| {
            std::cmp::Reverse((f.manifest.as_ref().map_or(0, |m| m.finished), f.backup))
        });
        for f in list.into_iter().skip(a.keep) {
            if age_of(f) < max_age {
                continue;
            }
            if !a.dry_run {
                // The manifest first: an interrupted prune leaves an archive marked
                // incomplete, never a "complete" one with chunks missing.
                let mut keys = f.keys.clone();
                if let Some((cat, volume)) = catalog.as_mut() {
                    cat.write(|tx| tx.remove_object_locations(*volume, &keys))
                        .with_context(|| format!("catalog {}", settings.catalog.display()))?;
                }
                keys.sort_by_key(|k| !k.ends_with("/manifest.json"));
                for k in &keys {
                    settings
                        .store
                        .delete(k)
                        .with_context(|| format!("deleting {k}"))?;
                }
            }
            deleted.push(f);
        }
    }
    if ctx.json {
        let rows: Vec<_> = deleted
            .iter()
            .map(|f| json!({"host": f.host, "backup": f.backup, "size": f.size, "chunks": f.chunks, "age_seconds": age_of(f), "dry_run": a.dry_run}))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        for f in &deleted {
            writeln!(
                out,
                "{} {} #{} ({} chunks, {} bytes, {} old)",
                if a.dry_run { "would delete" } else { "deleted" },
                f.host,
                f.backup,
                f.chunks,
                f.size,
                human_age(age_of(f))
            )?;
        }
        if deleted.is_empty() {
            writeln!(out, "nothing to prune")?;
        }
    }
    Ok(())
}

fn restore_script(a: &RestoreScriptArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    if a.expire == 0 || a.expire > cloud::MAX_PRESIGN.as_secs() {
        bail!(
            "--expire must be between 1 and 604800 seconds (7 days: the longest a presigned URL lives)"
        );
    }
    let settings = settings(Some(&a.store), ctx)?;
    let found = scan(&settings, Some(&a.host))?;
    let chosen = match a.backup {
        Some(n) => found.iter().find(|f| f.backup == n).with_context(|| {
            format!(
                "no archive of {} #{n} in {}",
                a.host,
                settings.store.location()
            )
        })?,
        None => found
            .iter()
            .filter(|f| f.manifest.is_some())
            .max_by_key(|f| f.backup)
            .with_context(|| {
                format!(
                    "no complete archive of {} in {}",
                    a.host,
                    settings.store.location()
                )
            })?,
    };
    let Some(m) = &chosen.manifest else {
        bail!(
            "archive {} #{} is incomplete (no manifest): it cannot be restored",
            chosen.host,
            chosen.backup
        );
    };
    let generated = now();
    let mut chunks = Vec::with_capacity(m.chunks.len());
    for c in &m.chunks {
        let url = settings
            .store
            .presign_get(&c.key, Duration::from_secs(a.expire))
            .with_context(|| format!("presigning {}", c.key))?;
        chunks.push(script::ScriptChunk {
            url: url.url,
            size: c.size,
            sha256: c.sha256.clone(),
        });
    }
    out.write_all(script::render(m, &chunks, generated + a.expire, generated).as_bytes())?;
    Ok(())
}
