//! `tapebackup ltfs format|ls|get|put|check`: LTFS volumes on a drive, written and read
//! natively by the `ltfs` crate (no FUSE, no LTFS software).

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use crate::cmd::drive::DriveSelect;
use crate::output::Context;

/// Arguments of `tapebackup ltfs`.
#[derive(Debug, Args)]
pub struct LtfsArgs {
    #[command(flatten)]
    pub select: DriveSelect,
    #[command(subcommand)]
    pub action: LtfsAction,
}

/// What to do with the LTFS volume in the drive.
#[derive(Debug, Subcommand)]
pub enum LtfsAction {
    /// Format the loaded cartridge as an empty LTFS 2.4.0 volume (like mkltfs).
    Format {
        /// Cartridge barcode (its first six characters go into the VOL1 labels).
        #[arg(long)]
        barcode: String,
        /// Volume name (default: the barcode).
        #[arg(long)]
        name: Option<String>,
        /// Block size of data records.
        #[arg(long, default_value = "512KiB", value_parser = crate::cmd::crypt::parse_size)]
        block_size: u64,
        /// Volume UUID (default: random).
        #[arg(long)]
        uuid: Option<String>,
        /// Size of the index partition (default: 5% of the medium).
        #[arg(long, value_parser = crate::cmd::crypt::parse_size)]
        index_partition_size: Option<u64>,
        /// Format even if the cartridge already holds an LTFS volume.
        #[arg(long)]
        force: bool,
    },
    /// List the volume's files (with their locations on tape in --json).
    Ls {
        /// Directory or file on the volume (default: the root).
        #[arg(default_value = "")]
        path: String,
    },
    /// Copy a file from the volume (to a local path, or `-` for stdout).
    Get {
        /// The file on the volume.
        path: String,
        /// Where to write it (default: its name in the current directory).
        dest: Option<PathBuf>,
    },
    /// Copy local files and directories onto the volume.
    Put {
        /// Local files or directories (directories are copied recursively).
        #[arg(required = true)]
        sources: Vec<PathBuf>,
        /// Directory on the volume to put them in (default: the root).
        #[arg(long, default_value = "")]
        to: String,
        /// Write an index to the data partition after this much data.
        #[arg(long, value_parser = crate::cmd::crypt::parse_size)]
        sync_every: Option<u64>,
    },
    /// Check consistency (like ltfsck); optionally repair an unclean end.
    Check {
        /// Repair: roll back to the newest complete index, or salvage the data written
        /// after it into _ltfs_lostandfound/.
        #[arg(long, value_enum)]
        recover: Option<RecoverMode>,
        /// Also list the index generations on the data partition.
        #[arg(long)]
        generations: bool,
    },
}

/// How `check --recover` repairs.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RecoverMode {
    /// Discard data written after the newest complete index.
    Rollback,
    /// Keep that data as files in _ltfs_lostandfound/.
    Salvage,
}

/// The exit code for ltfs errors (see `exit.rs`): 6 for drive failures, 3 for local I/O,
/// 10 for everything about the LTFS format and volume.
pub fn exit_code_of(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    let e = e.downcast_ref::<ltfs::Error>()?;
    Some(match e {
        ltfs::Error::Drive { .. } | ltfs::Error::EndOfMedium { .. } => 6,
        ltfs::Error::Source { .. } => crate::exit::IO,
        _ => 10,
    })
}

/// Progress on stderr: an indicatif bar on a terminal, log lines otherwise.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    log: bool,
}

impl Bar {
    fn new(ctx: &Context, total: Option<u64>) -> Bar {
        Bar {
            bar: ctx.progress.then(|| {
                let b = indicatif::ProgressBar::new(total.unwrap_or(0));
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                    )
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

impl ltfs::Progress for Bar {
    fn item(&self, name: &str, _total: Option<u64>) {
        match &self.bar {
            Some(b) => b.set_message(name.to_owned()),
            None if self.log => eprintln!("tapebackup: ltfs: {name}"),
            None => {}
        }
    }
    fn advance(&self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }
    fn note(&self, message: &str) {
        match &self.bar {
            Some(b) => b.println(format!("tapebackup: ltfs: {message}")),
            None if self.log => eprintln!("tapebackup: ltfs: {message}"),
            None => {}
        }
    }
}

/// Runs `tapebackup ltfs`.
pub fn run(args: &LtfsArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut drive = args.select.open().context("opening the drive")?;
    let drive: &mut dyn ltfs::TapeDrive = &mut *drive;
    match &args.action {
        LtfsAction::Format {
            barcode,
            name,
            block_size,
            uuid,
            index_partition_size,
            force,
        } => {
            if !force && ltfs::Volume::open(&mut *drive).is_ok() {
                bail!("the cartridge already holds an LTFS volume; add --force to erase it");
            }
            let options = ltfs::FormatOptions {
                volume_name: name.clone().unwrap_or_else(|| barcode.clone()),
                block_size: u32::try_from(*block_size).context("block size too large")?,
                uuid: uuid.clone(),
                index_partition_bytes: *index_partition_size,
                ..ltfs::FormatOptions::new(barcode)
            };
            let v = ltfs::Volume::format(drive, &options)?;
            if ctx.json {
                writeln!(
                    out,
                    "{}",
                    json!({"barcode": barcode, "volume": v.volume_name(),
                           "uuid": v.label().volume_uuid, "block_size": v.label().block_size,
                           "generation": v.index().generation})
                )?;
            } else {
                writeln!(
                    out,
                    "formatted {barcode}: volume {} uuid {} block size {}",
                    v.volume_name(),
                    v.label().volume_uuid,
                    v.label().block_size
                )?;
            }
            Ok(())
        }
        LtfsAction::Ls { path } => ls(drive, path, ctx, out),
        LtfsAction::Get { path, dest } => get(drive, path, dest.as_deref(), ctx, out),
        LtfsAction::Put {
            sources,
            to,
            sync_every,
        } => put(drive, sources, to, *sync_every, ctx, out),
        LtfsAction::Check {
            recover,
            generations,
        } => check(drive, *recover, *generations, ctx, out),
    }
}

fn file_json(path: &str, f: &ltfs::File) -> serde_json::Value {
    let extents: Vec<_> = f
        .extents
        .iter()
        .map(|e| {
            json!({"file_offset": e.file_offset, "partition": e.partition,
                   "start_block": e.start_block, "byte_offset": e.byte_offset,
                   "byte_count": e.byte_count})
        })
        .collect();
    let xattrs: serde_json::Map<String, serde_json::Value> = f
        .xattrs
        .iter()
        .map(|x| {
            (
                x.key.clone(),
                json!(String::from_utf8_lossy(&x.value).into_owned()),
            )
        })
        .collect();
    json!({
        "path": path,
        "type": if f.symlink.is_some() { "symlink" } else { "file" },
        "size": f.length,
        "modified": f.times.modify.to_string(),
        "uid": f.uid,
        "symlink": f.symlink,
        "xattrs": xattrs,
        "extents": extents,
    })
}

fn ls(
    drive: &mut dyn ltfs::TapeDrive,
    path: &str,
    ctx: &Context,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let v = ltfs::Volume::open(drive)?;
    if !v.is_consistent() && !ctx.quiet {
        eprintln!(
            "tapebackup: ltfs: warning: volume was not closed cleanly; listing generation {} (run `ltfs check --recover`)",
            v.index().generation
        );
    }
    let prefix = path.trim_matches('/');
    let files: Vec<(String, &ltfs::File)> = match v.lookup(prefix) {
        Some(ltfs::EntryRef::File(f)) => vec![(prefix.to_string(), f)],
        Some(ltfs::EntryRef::Directory(d)) => d
            .walk_files()
            .into_iter()
            .map(|(p, f)| {
                let full = if prefix.is_empty() {
                    p
                } else {
                    format!("{prefix}/{p}")
                };
                (full, f)
            })
            .collect(),
        None => {
            return Err(ltfs::Error::NotFound {
                path: path.to_string(),
            }
            .into());
        }
    };
    if ctx.json {
        let list: Vec<_> = files.iter().map(|(p, f)| file_json(p, f)).collect();
        writeln!(
            out,
            "{}",
            json!({"volume": v.volume_name(), "barcode": v.barcode(),
                   "generation": v.index().generation, "consistent": v.is_consistent(),
                   "files": list})
        )?;
        return Ok(());
    }
    for (p, f) in &files {
        let kind = if f.symlink.is_some() { 'l' } else { '-' };
        let modified = f.times.modify.to_string();
        let when = modified.get(..19).unwrap_or(&modified);
        match &f.symlink {
            Some(target) => writeln!(out, "{kind} {:>14} {when} {p} -> {target}", f.length)?,
            None => writeln!(out, "{kind} {:>14} {when} {p}", f.length)?,
        }
    }
    Ok(())
}

fn get(
    drive: &mut dyn ltfs::TapeDrive,
    path: &str,
    dest: Option<&Path>,
    ctx: &Context,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut v = ltfs::Volume::open(drive)?;
    let file = v.file(path)?.clone();
    if let Some(target) = &file.symlink {
        bail!("{path} is a symbolic link to {target}");
    }
    let cancel = AtomicBool::new(false);
    let bar = Bar::new(ctx, Some(file.length));
    if dest == Some(Path::new("-")) {
        let n = v.read_file_to(path, out, &bar, &cancel)?;
        bar.finish();
        out.flush()?;
        if !ctx.quiet {
            eprintln!("tapebackup: ltfs: {path}: {n} bytes");
        }
        return Ok(());
    }
    let dest = match dest {
        Some(d) if d.is_dir() => d.join(&file.name),
        Some(d) => d.to_path_buf(),
        None => PathBuf::from(&file.name),
    };
    // Write to a temporary file next to the destination; rename when complete.
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    let n = {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        let n = v.read_file_to(path, &mut w, &bar, &cancel)?;
        w.flush()?;
        n
    };
    bar.finish();
    tmp.persist(&dest)
        .with_context(|| format!("writing {}", dest.display()))?;
    if ctx.json {
        writeln!(
            out,
            "{}",
            json!({"path": path, "dest": dest.display().to_string(), "bytes": n})
        )?;
    } else {
        writeln!(out, "{path} -> {} ({n} bytes)", dest.display())?;
    }
    Ok(())
}

/// Local sources expanded to (volume path, local path, is symlink), depth first.
fn expand(sources: &[PathBuf], to: &str) -> anyhow::Result<Vec<(String, PathBuf, bool)>> {
    fn walk(
        local: &Path,
        tape: String,
        out: &mut Vec<(String, PathBuf, bool)>,
    ) -> anyhow::Result<()> {
        let meta = std::fs::symlink_metadata(local)
            .with_context(|| format!("reading {}", local.display()))?;
        if meta.file_type().is_symlink() {
            out.push((tape, local.to_path_buf(), true));
        } else if meta.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(local)
                .with_context(|| format!("listing {}", local.display()))?
                .collect::<Result<_, _>>()?;
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let name = e.file_name();
                let Some(name) = name.to_str() else {
                    bail!("{}: name is not UTF-8", e.path().display());
                };
                walk(&e.path(), format!("{tape}/{name}"), out)?;
            }
        } else if meta.is_file() {
            out.push((tape, local.to_path_buf(), false));
        }
        Ok(())
    }
    let mut out = Vec::new();
    let base = to.trim_matches('/');
    for s in sources {
        let name = s
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: no usable file name", s.display()))?;
        let tape = if base.is_empty() {
            name.to_string()
        } else {
            format!("{base}/{name}")
        };
        walk(s, tape, &mut out)?;
    }
    Ok(out)
}

fn put(
    drive: &mut dyn ltfs::TapeDrive,
    sources: &[PathBuf],
    to: &str,
    sync_every: Option<u64>,
    ctx: &Context,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let items = expand(sources, to)?;
    let total: u64 = items
        .iter()
        .filter(|(_, _, link)| !link)
        .filter_map(|(_, p, _)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let v = ltfs::Volume::open(drive)?;
    let mut w = v.into_writer(ltfs::WriterOptions {
        sync_every_bytes: sync_every,
        ..ltfs::WriterOptions::default()
    })?;
    let bar = Bar::new(ctx, Some(total));
    let cancel = AtomicBool::new(false);
    let mut results = Vec::new();
    let mut left_out = Vec::new();
    for (tape, local, link) in &items {
        if *link {
            let target = std::fs::read_link(local)?;
            let Some(target) = target.to_str() else {
                bail!("{}: link target is not UTF-8", local.display());
            };
            w.symlink(tape, target)?;
            results.push(json!({"path": tape, "symlink": target}));
            continue;
        }
        if w.early_warning() {
            left_out.push(tape.clone());
            continue;
        }
        let f =
            std::fs::File::open(local).with_context(|| format!("opening {}", local.display()))?;
        let meta = f.metadata()?;
        let times = meta.modified().ok().map(|m| {
            let t = ltfs::Timestamp::from_system_time(m);
            ltfs::Times {
                backup: ltfs::Timestamp::now(),
                ..ltfs::Times::all(t)
            }
        });
        let options = ltfs::FileOptions {
            times,
            ..ltfs::FileOptions::default()
        };
        let mut src = BufReader::with_capacity(1 << 20, f);
        let r = w.write_file(tape, &mut src, &options, &bar, &cancel)?;
        if !r.complete {
            left_out.push(tape.clone());
        }
        let e = r.extents.first();
        results.push(json!({
            "path": tape, "bytes": r.length, "complete": r.complete,
            "partition": e.map(|e| e.partition), "start_block": e.map(|e| e.start_block),
        }));
    }
    let v = w.finish()?;
    bar.finish();
    if ctx.json {
        writeln!(
            out,
            "{}",
            json!({"generation": v.index().generation, "files": results, "not_written": left_out})
        )?;
    } else {
        for r in &results {
            let path = r["path"].as_str().unwrap_or_default();
            match r.get("symlink") {
                Some(t) => writeln!(out, "{path} -> {}", t.as_str().unwrap_or_default())?,
                None if r["partition"].is_null() => writeln!(out, "{path}: {} bytes", r["bytes"])?,
                None => writeln!(
                    out,
                    "{path}: {} bytes at partition {} block {}{}",
                    r["bytes"],
                    r["partition"],
                    r["start_block"],
                    if r["complete"] == json!(false) {
                        " (cut at early warning)"
                    } else {
                        ""
                    }
                )?,
            }
        }
        writeln!(out, "index generation {}", v.index().generation)?;
    }
    if !left_out.is_empty() {
        bail!(
            "the tape reached early warning: {} file(s) not (completely) written: {}",
            left_out.len(),
            left_out.join(", ")
        );
    }
    Ok(())
}

fn check(
    drive: &mut dyn ltfs::TapeDrive,
    recover: Option<RecoverMode>,
    generations: bool,
    ctx: &Context,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let report = ltfs::check(&mut *drive)?;
    let problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    let recovered = match recover {
        Some(mode) if !report.is_consistent() => {
            let mode = match mode {
                RecoverMode::Rollback => ltfs::Recovery::RollBack,
                RecoverMode::Salvage => ltfs::Recovery::Salvage,
            };
            Some(ltfs::recover(&mut *drive, mode)?)
        }
        _ => None,
    };
    let gens = if generations {
        ltfs::generations(&mut *drive)?
    } else {
        Vec::new()
    };
    let after = match &recovered {
        Some(_) => ltfs::check(&mut *drive)?,
        None => report.clone(),
    };
    if ctx.json {
        let g: Vec<_> = gens
            .iter()
            .map(|g| {
                json!({"generation": g.generation, "partition": g.location.partition,
                       "block": g.location.block, "updated": g.update_time.to_string(),
                       "files": g.files})
            })
            .collect();
        writeln!(
            out,
            "{}",
            json!({
                "uuid": report.volume_uuid, "barcode": report.barcode,
                "generation": after.generation, "files": after.files,
                "problems": problems, "consistent": after.is_consistent(),
                "recovered": recovered.as_ref().map(|r| json!({
                    "generation": r.generation, "discarded_blocks": r.discarded_blocks,
                    "salvaged": r.salvaged})),
                "generations": g,
            })
        )?;
    } else {
        writeln!(
            out,
            "volume {} ({}): generation {}, {} files",
            report.barcode, report.volume_uuid, report.generation, report.files
        )?;
        for p in &problems {
            writeln!(out, "problem: {p}")?;
        }
        if let Some(r) = &recovered {
            writeln!(
                out,
                "recovered: now generation {}, {} blocks discarded, {} files salvaged",
                r.generation,
                r.discarded_blocks,
                r.salvaged.len()
            )?;
            for s in &r.salvaged {
                writeln!(out, "salvaged: {s}")?;
            }
        }
        for g in &gens {
            writeln!(
                out,
                "generation {:>6}  partition {} block {:>10}  {}  {} files",
                g.generation, g.location.partition, g.location.block, g.update_time, g.files
            )?;
        }
        writeln!(
            out,
            "{}",
            if after.is_consistent() {
                "consistent"
            } else {
                "INCONSISTENT"
            }
        )?;
    }
    if !after.is_consistent() {
        bail!(
            "LTFS volume is inconsistent ({} problem(s)); repair with --recover rollback|salvage",
            after.problems.len()
        );
    }
    Ok(())
}
