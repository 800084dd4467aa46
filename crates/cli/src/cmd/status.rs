//! `tapebackup status` and `tapebackup jobs`.

use std::io::Write;

use clap::Args;
use tapebackup::workflow;

use crate::cmd::progress::{config, json};
use crate::output::Context;

/// Arguments of `tapebackup status`.
#[derive(Debug, Args)]
pub struct StatusArgs {}

/// Arguments of `tapebackup jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// How many of the latest jobs.
    #[arg(long, default_value_t = 20)]
    pub limit: u64,
}

/// Runs `status`: what the catalog holds and what is waiting.
pub fn status(_args: &StatusArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let config = config(ctx)?;
    let cat = workflow::open_catalog(&config)?;
    let s = cat.read().summary()?;
    let volumes: Vec<_> = s.volumes.iter().map(|(st, n)| (st.as_str(), *n)).collect();
    if ctx.json {
        return json(
            out,
            &serde_json::json!({
                "config": config.path,
                "sources": s.sources, "files": s.files, "versions": s.versions,
                "contents": s.contents, "content_bytes": s.content_bytes,
                "to_fetch": s.versions_to_fetch, "to_pack": s.contents_to_pack,
                "packs": s.packs, "packs_unwritten": s.packs_unwritten,
                "volumes": volumes.iter().map(|(k, v)| serde_json::json!({"state": k, "count": v})).collect::<Vec<_>>(),
                "jobs_unfinished": s.jobs_unfinished,
            }),
        );
    }
    writeln!(out, "config    {}", config.path.display())?;
    writeln!(out, "sources   {}", s.sources)?;
    writeln!(
        out,
        "files     {} ({} versions, {} distinct contents, {} bytes)",
        s.files, s.versions, s.contents, s.content_bytes
    )?;
    writeln!(
        out,
        "waiting   {} to fetch, {} to pack, {} packs to write",
        s.versions_to_fetch, s.contents_to_pack, s.packs_unwritten
    )?;
    writeln!(out, "packs     {}", s.packs)?;
    let vols: Vec<String> = volumes.iter().map(|(k, v)| format!("{v} {k}")).collect();
    writeln!(
        out,
        "tapes     {}",
        if vols.is_empty() {
            "none".into()
        } else {
            vols.join(", ")
        }
    )?;
    writeln!(out, "unfinished jobs {}", s.jobs_unfinished)?;
    Ok(())
}

/// Runs `jobs`: the latest jobs and their outcome.
pub fn jobs(args: &JobsArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let config = config(ctx)?;
    let cat = workflow::open_catalog(&config)?;
    let jobs = cat.read().jobs(args.limit)?;
    if ctx.json {
        let rows: Vec<_> = jobs
            .iter()
            .map(|j| {
                serde_json::json!({
                    "id": j.id.get(), "kind": j.kind.as_str(),
                    "started_at": j.started_at.unix_seconds(),
                    "ended_at": j.ended_at.map(|t| t.unix_seconds()),
                    "outcome": j.outcome.as_str(), "items_done": j.items_done,
                    "items_failed": j.items_failed, "bytes_done": j.bytes_done,
                    "message": j.message,
                })
            })
            .collect();
        return json(out, &rows);
    }
    writeln!(
        out,
        "{:>5}  {:<8} {:<20} {:<10} {:>7} {:>7} {:>12}  message",
        "id", "kind", "started (UTC)", "outcome", "done", "failed", "bytes"
    )?;
    for j in &jobs {
        let started = u64::try_from(j.started_at.unix_seconds())
            .map(|s| {
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(s),
                )
                .to_string()
            })
            .unwrap_or_default();
        writeln!(
            out,
            "{:>5}  {:<8} {:<20} {:<10} {:>7} {:>7} {:>12}  {}",
            j.id.get(),
            j.kind.as_str(),
            started,
            j.outcome.as_str(),
            j.items_done,
            j.items_failed,
            j.bytes_done,
            j.message.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}
