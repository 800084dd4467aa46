//! `get`, `pack`, `write` and `run` (the three in sequence).

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
    if dry {
        writeln!(
            out,
            "listed {}: {} new, {} changed (dry run: nothing fetched)",
            r.listed, r.new, r.changed
        )?;
    } else {
        writeln!(
            out,
            "listed {}: {} new, {} changed, {} deleted; fetched {} file(s), {} bytes",
            r.listed, r.new, r.changed, r.deleted, r.fetched, r.bytes
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
        "packed {} file(s): {} bytes into {} bytes of packs",
        r.packs, r.plain_bytes, r.pack_bytes
    )?;
    if r.repaired > 0 {
        writeln!(out, "finished {} pack(s) of an interrupted run", r.repaired)?;
    }
    for m in &r.missing {
        writeln!(out, "warning: {m}: plaintext not staged")?;
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

/// Runs `run`: get, pack and write one after the other.
pub fn run(_args: &NoArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let config = config(ctx)?;
    let mut cat = workflow::open_catalog(&config)?;
    let key = workflow::unlock_key(&config)?;
    let p = CliProgress::new(ctx);
    let cancel = workflow::no_cancel();
    let g = workflow::get(&config, &mut cat, &GetOptions::default(), &p, cancel)?;
    let k = workflow::pack(&config, &mut cat, &key, &p, cancel)?;
    let w = workflow::write(&config, &mut cat, &key, &p, cancel)?;
    drop(p);
    if ctx.json {
        return json(out, &serde_json::json!({ "get": g, "pack": k, "write": w }));
    }
    print_get(&g, false, out)?;
    print_pack(&k, out)?;
    print_write(&w, out)?;
    if !g.failed.is_empty() {
        anyhow::bail!("{} file(s) could not be fetched; run again", g.failed.len());
    }
    Ok(())
}
