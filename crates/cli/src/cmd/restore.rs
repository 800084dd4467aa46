//! `tapebackup restore PATTERN [--at DATE | --version N] --to DIR [--resume JOB]`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use catalog::{JobId, Timestamp, VersionSelector};
use clap::Args;
use tapebackup::workflow::{self, RestoreOptions};

use crate::cmd::progress::{CliProgress, config, json};
use crate::output::Context;

/// Arguments of `tapebackup restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Paths to restore: a glob over `path` (`*` also matches `/`). Default: everything.
    pub pattern: Option<String>,
    /// Destination directory (files land in DIR/SOURCE/PATH).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// The versions the catalog had at this time (RFC 3339, e.g. 2026-11-21T12:00:00Z).
    #[arg(long, conflicts_with = "version")]
    pub at: Option<String>,
    /// Version number N of each file (1 is the first).
    #[arg(long)]
    pub version: Option<u32>,
    /// Resume restore job JOB (printed by an interrupted restore).
    #[arg(long, value_name = "JOB", conflicts_with_all = ["at", "version", "pattern"])]
    pub resume: Option<i64>,
}

/// Runs `restore`.
pub fn run(args: &RestoreArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let config = config(ctx)?;
    let mut cat = workflow::open_catalog(&config)?;
    let key = workflow::unlock_key(&config)?;
    let selector = match (&args.at, args.version) {
        (Some(at), _) => {
            let t = humantime::parse_rfc3339_weak(at).with_context(|| {
                format!("--at {at:?}: expected a date like 2026-11-21T12:00:00Z")
            })?;
            VersionSelector::AsOf(Timestamp::from_system_time(t))
        }
        (None, Some(n)) => VersionSelector::Number(n),
        (None, None) => VersionSelector::Latest,
    };
    let p = CliProgress::new(ctx);
    let options = RestoreOptions {
        pattern: args.pattern.clone(),
        selector,
        to: args.to.clone(),
        resume: args.resume.map(JobId::from_raw),
    };
    let r = workflow::restore(&config, &mut cat, &key, &options, &p, workflow::no_cancel())?;
    drop(p);
    if ctx.json {
        return json(out, &r);
    }
    writeln!(
        out,
        "restored {} file(s), {} bytes from {} (job {}); every content hash checked",
        r.files,
        r.bytes,
        if r.tapes.is_empty() {
            "no tape".to_owned()
        } else {
            r.tapes.join(", ")
        },
        r.job
    )?;
    for m in &r.missing {
        writeln!(out, "not restorable: {m}")?;
    }
    Ok(())
}
