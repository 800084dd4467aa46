//! `tapebackup catalog check|snapshot|merge|import-legacy|recover`, `tapebackup files` and
//! `tapebackup tapes`: the catalog's own commands and listings.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use catalog::{
    Catalog, FileEntry, FileQuery, LegacyOptions, Medium, Position, TimeRange, Timestamp,
    VersionSelector, VolumeSummary,
};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use tapebackup::workflow::{self, RecoverOptions, recover::RecoverError};

use crate::output::Context;

/// Where the catalog is. (Until the config file lands, there is no default.)
#[derive(Debug, Clone, Args)]
pub struct CatalogPath {
    /// The catalog database file.
    #[arg(long, env = "TAPEBACKUP_CATALOG", value_name = "PATH", global = true)]
    pub catalog: Option<PathBuf>,
}

impl CatalogPath {
    fn path(&self) -> anyhow::Result<&Path> {
        match &self.catalog {
            Some(p) => Ok(p),
            None => bail!("no catalog given: pass --catalog PATH or set TAPEBACKUP_CATALOG"),
        }
    }

    /// Opens the catalog for reading; it must exist.
    fn open_existing(&self) -> anyhow::Result<Catalog> {
        let path = self.path()?;
        if !path.exists() {
            bail!("catalog {} does not exist", path.display());
        }
        Ok(Catalog::open(path)?)
    }
}

/// Arguments of `tapebackup catalog`.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    #[command(flatten)]
    pub path: CatalogPath,
    #[command(subcommand)]
    pub action: CatalogAction,
}

/// Catalog maintenance.
#[derive(Debug, Subcommand)]
pub enum CatalogAction {
    /// Check integrity: SQLite's checks and the catalog's own invariants. Exits 5 on
    /// problems.
    Check,
    /// Write a consistent copy of the live catalog to one file (online backup).
    Snapshot {
        /// The snapshot file to write (replaced atomically if it exists).
        out: PathBuf,
    },
    /// Merge a snapshot (e.g. one recovered from a tape) into the catalog.
    Merge {
        /// The snapshot file.
        snapshot: PathBuf,
    },
    /// Import a database of the seed tool (Tapebackup, either schema). Creates the catalog
    /// if it does not exist.
    ImportLegacy {
        /// The legacy SQLite database (opened read-only).
        db: PathBuf,
        /// Name of the source the imported files go under.
        #[arg(long, default_value = "legacy")]
        source_name: String,
        /// Pool for the imported tapes.
        #[arg(long, default_value = "default")]
        pool: String,
    },
    /// Rebuild the catalog from one tape plus the key.
    ///
    /// The newest encrypted catalog snapshot on the tape (LTFS or raw format) becomes the
    /// catalog, or is merged into the existing one with --merge; an existing catalog is
    /// never overwritten. Pack files written to the tape after that snapshot are compared
    /// with the catalog: those it knows are read back and their location recorded, those it
    /// does not know are listed (which files they hold was only in the lost catalog).
    Recover {
        /// The cartridge to read (barcode), loaded through the configured library.
        #[arg(long, value_name = "BARCODE")]
        from_tape: String,
        /// The catalog to write (default: --catalog, else the configured one).
        #[arg(long, value_name = "PATH")]
        to: Option<PathBuf>,
        /// Merge into the existing catalog (without it, an existing catalog is never
        /// touched).
        #[arg(long)]
        merge: bool,
    },
}

/// Arguments of `tapebackup files`.
#[derive(Debug, Args)]
pub struct FilesArgs {
    #[command(flatten)]
    pub path: CatalogPath,
    /// Path pattern (SQLite GLOB: `*` and `?` match any characters including `/`,
    /// `[abc]` classes; case-sensitive). Default: all files.
    pub pattern: Option<String>,
    /// Show the versions as they were at this time (RFC 3339, `YYYY-MM-DD`, or epoch
    /// seconds; UTC).
    #[arg(long, value_name = "DATE", conflicts_with = "file_version")]
    pub at: Option<String>,
    /// Show version N of each file (1 is the first). (`--version` prints the program's.)
    #[arg(long, value_name = "N")]
    pub file_version: Option<u32>,
    /// Include files deleted at their source.
    #[arg(long)]
    pub deleted: bool,
    /// Only files with a copy on this tape (barcode).
    #[arg(long, value_name = "BARCODE")]
    pub tape: Option<String>,
    /// Only files modified at or after this time.
    #[arg(long, value_name = "DATE")]
    pub modified_since: Option<String>,
    /// Only files modified before this time.
    #[arg(long, value_name = "DATE")]
    pub modified_before: Option<String>,
    /// Only this source (by name).
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// At most this many files.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
}

/// Arguments of `tapebackup tapes`.
#[derive(Debug, Args)]
pub struct TapesArgs {
    #[command(flatten)]
    pub path: CatalogPath,
}

/// The exit code for catalog errors.
pub fn exit_code_of(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    if e.downcast_ref::<CheckFailed>().is_some() {
        return Some(CATALOG);
    }
    if let Some(r) = e.downcast_ref::<RecoverError>() {
        return Some(match r {
            RecoverError::CatalogExists { .. } => crate::exit::USAGE,
            RecoverError::NoSnapshot { .. } | RecoverError::BadSnapshot { .. } => CATALOG,
        });
    }
    match e.downcast_ref::<catalog::Error>()? {
        catalog::Error::Io { .. } => Some(crate::exit::IO),
        catalog::Error::InvalidInput { .. } => Some(crate::exit::USAGE),
        _ => Some(CATALOG),
    }
}

/// Exit code 5: catalog error (see `exit.rs`).
const CATALOG: u8 = 5;

/// `catalog check` found problems.
#[derive(Debug)]
struct CheckFailed(usize);

impl std::fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "catalog check found {} problem(s)", self.0)
    }
}

impl std::error::Error for CheckFailed {}

/// Shows progress of a long catalog operation: a bar on a terminal, log lines otherwise.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    log: bool,
}

impl Bar {
    fn new(ctx: &Context) -> Bar {
        Bar {
            bar: ctx.progress.then(|| {
                let b = indicatif::ProgressBar::new(0);
                b.set_style(
                    indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                b
            }),
            log: !ctx.quiet && !ctx.progress,
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl catalog::Progress for Bar {
    fn set_total(&self, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
        }
    }
    fn set_done(&self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }
    fn phase(&self, name: &str) {
        match &self.bar {
            Some(b) => b.set_message(name.to_owned()),
            None if self.log => eprintln!("tapebackup: {name}"),
            None => {}
        }
    }
}

/// Runs `tapebackup catalog ...`.
pub fn run(args: &CatalogArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let cancel = AtomicBool::new(false);
    match &args.action {
        CatalogAction::Check => {
            let cat = args.path.open_existing()?;
            let report = cat.check()?;
            if ctx.json {
                let problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
                writeln!(
                    out,
                    "{}",
                    json!({ "ok": report.is_ok(), "problems": problems })
                )?;
            } else if report.is_ok() {
                writeln!(out, "ok")?;
            } else {
                for p in &report.problems {
                    writeln!(out, "{p}")?;
                }
            }
            if !report.is_ok() {
                return Err(CheckFailed(report.problems.len()).into());
            }
        }
        CatalogAction::Snapshot { out: dest } => {
            let cat = args.path.open_existing()?;
            let bar = Bar::new(ctx);
            let info = cat.snapshot(dest, &bar, &cancel);
            bar.finish();
            let info = info.with_context(|| format!("snapshot to {}", dest.display()))?;
            if ctx.json {
                writeln!(
                    out,
                    "{}",
                    json!({ "path": dest, "bytes": info.bytes, "pages": info.pages })
                )?;
            } else {
                writeln!(out, "{}\t{} bytes", dest.display(), info.bytes)?;
            }
        }
        CatalogAction::Merge { snapshot } => {
            let mut cat = Catalog::open(args.path.path()?)?;
            let bar = Bar::new(ctx);
            let st = cat.merge_snapshot(snapshot, &bar, &cancel);
            bar.finish();
            let st = st.with_context(|| format!("merge {}", snapshot.display()))?;
            let v = json!({
                "sources": st.sources, "files": st.files, "versions": st.versions,
                "packs": st.packs, "volumes": st.volumes, "locations": st.locations,
                "verifications": st.verifications,
            });
            print_counts(out, ctx, "added", &v)?;
        }
        CatalogAction::ImportLegacy {
            db,
            source_name,
            pool,
        } => {
            let mut cat = Catalog::open(args.path.path()?)?;
            let bar = Bar::new(ctx);
            let r = cat.import_legacy(
                db,
                &LegacyOptions {
                    source_name: source_name.clone(),
                    pool: pool.clone(),
                },
                Timestamp::now(),
                &bar,
                &cancel,
            );
            bar.finish();
            let r = r.with_context(|| format!("import {}", db.display()))?;
            if !ctx.quiet {
                for w in &r.warnings {
                    eprintln!("tapebackup: warning: {w}");
                }
            }
            let v = json!({
                "schema": format!("{:?}", r.schema).to_lowercase(),
                "source": source_name,
                "files": r.files, "aliases": r.aliases, "packs": r.packs, "tapes": r.tapes,
                "locations": r.locations, "verifications": r.verifications,
                "warnings": r.warnings.len(),
            });
            print_counts(out, ctx, "imported", &v)?;
        }
        CatalogAction::Recover {
            from_tape,
            to,
            merge,
        } => recover(
            from_tape,
            to.as_ref().or(args.path.catalog.as_ref()),
            *merge,
            ctx,
            out,
        )?,
    }
    Ok(())
}

/// Runs `tapebackup catalog recover --from-tape BARCODE`.
fn recover(
    barcode: &str,
    to: Option<&PathBuf>,
    merge: bool,
    ctx: &Context,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let config = crate::cmd::progress::config(ctx)?;
    let key = workflow::unlock_key(&config)?;
    let p = crate::cmd::progress::CliProgress::new(ctx);
    let options = RecoverOptions {
        barcode: barcode.to_owned(),
        to: to.cloned(),
        merge,
    };
    let r = workflow::recover(&config, &key, &options, &p, workflow::no_cancel())?;
    drop(p);
    if ctx.json {
        return crate::cmd::progress::json(out, &r);
    }
    match &r.snapshot {
        Some(snap) => writeln!(
            out,
            "{} {} from {} (snapshot {snap}, the newest of {} on the tape)",
            if r.installed {
                "recovered catalog"
            } else {
                "merged into catalog"
            },
            r.catalog.display(),
            r.barcode,
            r.snapshots_on_tape
        )?,
        None => writeln!(
            out,
            "{} holds no catalog snapshot: reconciled its pack files with catalog {}",
            r.barcode,
            r.catalog.display()
        )?,
    }
    if let Some(m) = &r.merged {
        writeln!(
            out,
            "added: sources {}, files {}, versions {}, packs {}, volumes {}, locations {}, \
             verifications {}",
            m.sources, m.files, m.versions, m.packs, m.volumes, m.locations, m.verifications
        )?;
    }
    writeln!(
        out,
        "pack files on the tape: {}, recorded in the catalog: {}, reattached from the tape's \
         index: {}, not accounted for: {}",
        r.packs_on_tape,
        r.packs_recorded,
        r.reattached.len(),
        r.unknown.len()
    )?;
    if r.tape_added {
        writeln!(out, "added tape {} to the catalog", r.barcode)?;
    }
    for name in &r.reattached {
        writeln!(out, "reattached {name}")?;
    }
    for u in &r.unknown {
        writeln!(
            out,
            "NOT RECOVERED {} ({}): {}",
            u.path,
            u.bytes
                .map_or_else(|| "size unknown".to_owned(), human_bytes),
            u.reason
        )?;
    }
    if !r.unknown.is_empty() {
        writeln!(
            out,
            "{} pack file(s) on {} were written after its newest catalog snapshot: their \
             ciphertext is intact, but which files they hold was only in the lost catalog. A \
             newer snapshot on another tape may know them: recover from it with --merge.",
            r.unknown.len(),
            r.barcode
        )?;
    }
    Ok(())
}

fn print_counts(out: &mut dyn Write, ctx: &Context, verb: &str, v: &Value) -> anyhow::Result<()> {
    if ctx.json {
        writeln!(out, "{v}")?;
        return Ok(());
    }
    if let Some(map) = v.as_object() {
        let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(out, "{verb}: {}", parts.join(", ").replace('"', ""))?;
    }
    Ok(())
}

/// Parses a user-given time: RFC 3339 (`2024-05-01T12:00:00Z`), a date (`2024-05-01`,
/// midnight UTC), or epoch seconds.
pub fn parse_time(s: &str) -> anyhow::Result<Timestamp> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(Timestamp::from_unix_seconds(secs));
    }
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_owned()
    };
    let t = humantime::parse_rfc3339_weak(&full).with_context(|| {
        format!("{s:?} is not a date (use RFC 3339, YYYY-MM-DD or epoch seconds)")
    })?;
    Ok(Timestamp::from_system_time(t))
}

/// RFC 3339 in UTC, seconds precision (epoch seconds before 1970).
pub fn format_time(t: Timestamp) -> String {
    match u64::try_from(t.unix_seconds()) {
        Ok(s) => humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s)).to_string(),
        Err(_) => t.unix_seconds().to_string(),
    }
}

/// Bytes for people: `1.5 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn position_json(p: &Position) -> Value {
    match p {
        Position::Tape {
            partition,
            start_block,
        } => json!({ "kind": "tape", "partition": partition, "start_block": start_block }),
        Position::LtfsFile { name, start_block } => {
            json!({ "kind": "ltfs_file", "name": name, "start_block": start_block })
        }
        Position::Object { key } => json!({ "kind": "object", "key": key }),
    }
}

fn entry_json(e: &FileEntry) -> Value {
    let v = &e.version;
    json!({
        "source": e.source_name,
        "path": v.path,
        "version": v.seq,
        "size": v.size,
        "mtime": format_time(v.mtime),
        "mode": v.mode,
        "hash": v.hash.as_ref().map(|h| h.to_string()),
        "first_seen": format_time(v.first_seen),
        "last_seen": format_time(v.last_seen),
        "deleted_at": v.deleted_at.map(format_time),
        "pack": e.pack.as_ref().map(|p| p.name.clone()),
        "pack_format": e.pack.as_ref().map(|p| p.format.as_str()),
        "pack_offset": e.pack_offset,
        "copies": e.copies.iter().map(|c| json!({
            "volume": c.volume_label,
            "part": c.part.index,
            "parts": c.part.count,
            "position": position_json(&c.position),
        })).collect::<Vec<_>>(),
    })
}

/// Runs `tapebackup files`.
pub fn files(args: &FilesArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let cat = args.path.open_existing()?;
    let selector = match (&args.at, args.file_version) {
        (Some(at), _) => VersionSelector::AsOf(parse_time(at)?),
        (None, Some(n)) => VersionSelector::Number(n),
        (None, None) => VersionSelector::Latest,
    };
    let volume = match &args.tape {
        Some(b) => Some(
            cat.read()
                .volume_by_barcode(b)?
                .with_context(|| format!("tape {b} is not in the catalog"))?
                .id,
        ),
        None => None,
    };
    let source = match &args.source {
        Some(n) => Some(
            cat.read()
                .source_by_name(n)?
                .with_context(|| format!("source {n} is not in the catalog"))?
                .id,
        ),
        None => None,
    };
    let query = FileQuery {
        pattern: args.pattern.clone(),
        source,
        selector,
        include_deleted: args.deleted,
        modified: TimeRange {
            from: args.modified_since.as_deref().map(parse_time).transpose()?,
            to: args
                .modified_before
                .as_deref()
                .map(parse_time)
                .transpose()?,
        },
        volume,
        limit: args.limit,
    };
    let entries = cat.read().search(&query)?;
    if ctx.json {
        let all: Vec<Value> = entries.iter().map(entry_json).collect();
        writeln!(out, "{}", Value::Array(all))?;
        return Ok(());
    }
    let rows: Vec<[String; 7]> = entries
        .iter()
        .map(|e| {
            let v = &e.version;
            let mut vols: Vec<&str> = e.copies.iter().map(|c| c.volume_label.as_str()).collect();
            vols.dedup();
            let state = if v.deleted_at.is_some() {
                " (deleted)"
            } else {
                ""
            };
            [
                e.source_name.clone(),
                format!("{}{state}", v.path),
                v.seq.to_string(),
                v.size.map(human_bytes).unwrap_or_else(|| "?".into()),
                format_time(v.mtime),
                if e.pack.is_some() {
                    "packed".into()
                } else if v.hash.is_some() {
                    "fetched".into()
                } else {
                    "seen".into()
                },
                if vols.is_empty() {
                    "-".into()
                } else {
                    vols.join(",")
                },
            ]
        })
        .collect();
    table(
        out,
        &[
            "SOURCE", "PATH", "VER", "SIZE", "MODIFIED", "STATE", "VOLUMES",
        ],
        &rows,
    )
}

fn tape_json(s: &VolumeSummary) -> Value {
    let v = &s.volume;
    let medium = match &v.medium {
        Medium::Tape {
            barcode,
            ltfs_uuid,
            generation,
            capacity,
        } => json!({ "kind": "tape", "barcode": barcode, "ltfs_uuid": ltfs_uuid,
                     "generation": generation, "capacity": capacity }),
        Medium::Object { bucket, prefix } => {
            json!({ "kind": "object", "bucket": bucket, "prefix": prefix })
        }
    };
    json!({
        "label": v.label(),
        "medium": medium,
        "state": v.state.as_str(),
        "pool": v.pool,
        "bytes_used": v.bytes_used,
        "packs": s.packs,
        "locations": s.locations,
        "created_at": format_time(v.created_at),
        "full_at": v.full_at.map(format_time),
        "last_verified": s.last_verified.map(format_time),
        "failed_verifications": s.failed_verifications,
    })
}

/// Runs `tapebackup tapes`: every volume (tapes and object-store locations).
pub fn tapes(args: &TapesArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let cat = args.path.open_existing()?;
    let sums = cat.read().volume_summaries()?;
    if ctx.json {
        let all: Vec<Value> = sums.iter().map(tape_json).collect();
        writeln!(out, "{}", Value::Array(all))?;
        return Ok(());
    }
    let rows: Vec<[String; 8]> = sums
        .iter()
        .map(|s| {
            let v = &s.volume;
            let (kind, cap) = match &v.medium {
                Medium::Tape {
                    generation,
                    capacity,
                    ..
                } => (
                    generation.clone().unwrap_or_else(|| "tape".into()),
                    capacity.map(human_bytes).unwrap_or_else(|| "-".into()),
                ),
                Medium::Object { .. } => ("object".into(), "-".into()),
            };
            [
                v.label(),
                kind,
                v.state.as_str().to_owned(),
                v.pool.clone(),
                format!("{} / {cap}", human_bytes(v.bytes_used)),
                s.packs.to_string(),
                s.last_verified
                    .map(format_time)
                    .unwrap_or_else(|| "never".into()),
                s.failed_verifications.to_string(),
            ]
        })
        .collect();
    table(
        out,
        &[
            "LABEL", "KIND", "STATE", "POOL", "USED", "PACKS", "VERIFIED", "FAILED",
        ],
        &rows,
    )
}

/// Writes a left-aligned table with a header.
fn table<const N: usize>(
    out: &mut dyn Write,
    header: &[&str; N],
    rows: &[[String; N]],
) -> anyhow::Result<()> {
    let mut widths = header.map(str::len);
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for r in rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_format() -> anyhow::Result<()> {
        let cases = [
            ("0", 0),
            ("1700000000", 1_700_000_000),
            ("2024-05-01", 1_714_521_600),
            ("2024-05-01T12:00:00Z", 1_714_564_800),
            ("2024-05-01 12:00:00", 1_714_564_800),
        ];
        for (s, want) in cases {
            assert_eq!(parse_time(s)?.unix_seconds(), want, "{s}");
        }
        assert!(parse_time("yesterday").is_err());
        assert_eq!(
            format_time(Timestamp::from_unix_seconds(1_714_564_800)),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(format_time(Timestamp::from_unix_seconds(-5)), "-5");
        Ok(())
    }

    #[test]
    fn bytes_for_people() {
        let cases = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1536, "1.5 KiB"),
            (3 << 30, "3.0 GiB"),
        ];
        for (n, want) in cases {
            assert_eq!(human_bytes(n), want);
        }
    }
}
