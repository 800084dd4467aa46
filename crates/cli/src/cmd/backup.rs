//! `get`, `pack`, `write` and `run` (the three at once, pipelined).

use std::io::Write;

use clap::Args;
use tapebackup::workflow::{self, GetOptions};

use crate::cmd::progress::{CliProgress, config, json};
use crate::output::Context;

/// Arguments of `tapebackup get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Only list and compare with the catalog; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only these sources (repeatable; default: all).
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
}

/// Arguments of `tapebackup pack` and `write`.
#[derive(Debug, Args)]
pub struct NoArgs {}

/// Arguments of `tapebackup write`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Write the pending packs to this object store (`s3://bucket/prefix`) instead of
    /// tape. Endpoint and credentials: the config's `[store]` section or the environment
    /// (`TAPEBACKUP_S3_*`, `AWS_*`), never the command line.
    #[arg(long, value_name = "s3://BUCKET/PREFIX")]
    pub to: Option<String>,
}

fn print_get(r: &workflow::GetReport, dry: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let listed = match r.excluded {
        0 => r.listed.to_string(),
        n => format!("{} (and {n} excluded)", r.listed),
    };
    if dry {
        writeln!(
            out,
            "listed {listed}: {} new, {} changed (dry run: nothing fetched)",
            r.new, r.changed
        )?;
    } else {
        writeln!(
            out,
            "listed {listed}: {} new, {} changed, {} deleted; fetched {} file(s), {} bytes",
            r.new, r.changed, r.deleted, r.fetched, r.bytes
        )?;
    }
    for w in &r.warnings {
        writeln!(out, "warning: {w}")?;
    }
    for f in &r.failed {
        writeln!(out, "failed: {f}")?;
    }
    Ok(())
}

/// Runs `get`.
pub fn get(args: &GetArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let config = config(ctx)?;
    let mut cat = workflow::open_catalog(&config)?;
    let p = CliProgress::new(ctx);
    let options = GetOptions {
        dry_run: args.dry_run,
        sources: args.sources.clone(),
    };
    let r = workflow::get(&config, &mut cat, &options, &p, workflow::no_cancel())?;
    drop(p);
    if ctx.json {
        return json(out, &r);
    }
    print_get(&r, args.dry_run, out)?;
    if !r.failed.is_empty() {
        anyhow::bail!(
            "{} file(s) could not be fetched; run get again",
            r.failed.len()
        );
    }
    Ok(())
}

fn print_pack(r: &workflow::PackReport, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "packed {} file(s) into {} pack(s): {} bytes into {} bytes of packs",
        r.files, r.packs, r.plain_bytes, r.pack_bytes
    )?;
    if r.repaired > 0 {
        writeln!(out, "finished {} pack(s) of an interrupted run", r.repaired)?;
    }
    for m in &r.missing {
        writeln!(out, "warning: {m}: plaintext not staged")?;
    }
    for c in &r.changed {
        writeln!(out, "warning: {c}: not packed; the next get reads it again")?;
    }
    Ok(())
}

/// Runs `pack`.
pub fn pack(_args: &NoArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let config = config(ctx)?;
    let mut cat = workflow::open_catalog(&config)?;
    let key = workflow::unlock_key(&config)?;
    let p = CliProgress::new(ctx);
    let r = workflow::pack(&config, &mut cat, &key, &p, workflow::no_cancel())?;
    drop(p);
    if ctx.json {
        return json(out, &r);
    }
    print_pack(&r, out)
}

fn print_write(r: &workflow::WriteReport, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "wrote {} pack(s), {} bytes to {}",
        r.packs,
        r.bytes,
        if r.tapes.is_empty() {
            "no tape".to_owned()
        } else {
            r.tapes.join(", ")
        }
    )?;
    for t in &r.formatted {
        let format = if r.raw.contains(t) { "raw" } else { "LTFS" };
        writeln!(out, "formatted {t} ({format})")?;
    }
    for t in &r.filled {
        writeln!(out, "{t} is full")?;
    }
    for s in &r.skipped {
        writeln!(out, "skipped {s}")?;
    }
    Ok(())
}

/// Runs `write`.
pub fn write(args: &WriteArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let config = config(ctx)?;
    let mut cat = workflow::open_catalog(&config)?;
    if let Some(to) = &args.to {
        let target: workflow::object::ObjectTarget = to.parse()?;
        let p = CliProgress::new(ctx);
        let r = workflow::object::write_to(&config, &mut cat, &target, &p, workflow::no_cancel())?;
        drop(p);
        if ctx.json {
            return json(out, &r);
        }
        writeln!(
            out,
            "wrote {} pack(s), {} bytes to {}",
            r.packs, r.bytes, r.target
        )?;
        return Ok(());
    }
    let key = workflow::unlock_key(&config)?;
    let p = CliProgress::new(ctx);
    let r = workflow::write(&config, &mut cat, &key, &p, workflow::no_cancel())?;
    drop(p);
    if ctx.json {
        return json(out, &r);
    }
    print_write(&r, out)
}

/// Runs `run`: get, pack and write at once (pipelined, see `workflow::run`).
pub fn run(_args: &NoArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let config = config(ctx)?;
    let key = workflow::unlock_key(&config)?;
    let p = CliProgress::new(ctx);
    let r = workflow::run(&config, &key, &p, workflow::no_cancel())?;
    drop(p);
    if ctx.json {
        return json(out, &r);
    }
    print_get(&r.get, false, out)?;
    print_pack(&r.pack, out)?;
    print_write(&r.write, out)?;
    if !r.get.failed.is_empty() {
        anyhow::bail!(
            "{} file(s) could not be fetched; run again",
            r.get.failed.len()
        );
    }
    Ok(())
}

/// The exit code of a tape fault an operator acts on (`exit.rs`: 11 to 15), looked for in
/// `e` and its sources; `None` for anything else.
pub fn tape_fault_code(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    use crate::exit;
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(t) = c.downcast_ref::<tape_scsi::Error>() {
            return match t {
                tape_scsi::Error::MediumError { .. } => Some(exit::MEDIUM_ERROR),
                tape_scsi::Error::NotReady { .. } | tape_scsi::Error::BecomingReady { .. } => {
                    Some(exit::NOT_READY)
                }
                tape_scsi::Error::UnitAttention { .. } => Some(exit::UNIT_ATTENTION),
                tape_scsi::Error::WriteProtected { .. } => Some(exit::WRITE_PROTECTED),
                _ => None,
            };
        }
        if c.is::<workflow::tape::WrongCartridge>()
            || matches!(
                c.downcast_ref::<workflow::raw::RawError>(),
                Some(workflow::raw::RawError::WrongVolume { .. })
            )
        {
            return Some(exit::WRONG_CARTRIDGE);
        }
        cur = c.source();
    }
    None
}
