//! `tapebackup verify [--tape B | --sample 5%] [--no-key]`.

use std::io::Write;

use clap::Args;
use tapebackup::workflow::{self, VerifyOptions};

use crate::cmd::progress::{CliProgress, config, json};
use crate::output::Context;

/// Arguments of `tapebackup verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only this tape (barcode).
    #[arg(long, value_name = "BARCODE")]
    pub tape: Option<String>,
    /// Check only this share of each tape's packs, e.g. `5%`.
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub sample: Option<f64>,
    /// Check ciphertext hashes only (no key needed); default: decrypt and authenticate.
    #[arg(long)]
    pub no_key: bool,
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage"))?;
    if !(v > 0.0 && v <= 100.0) {
        return Err(format!("{s:?}: must be in (0, 100]"));
    }
    Ok(v)
}

/// Runs `verify`. Exits non-zero when any pack failed.
pub fn run(args: &VerifyArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let config = config(ctx)?;
    let mut cat = workflow::open_catalog(&config)?;
    let key = if args.no_key {
        None
    } else {
        Some(workflow::unlock_key(&config)?)
    };
    let p = CliProgress::new(ctx);
    let options = VerifyOptions {
        tape: args.tape.clone(),
        sample_percent: args.sample,
    };
    let r = workflow::verify(
        &config,
        &mut cat,
        key.as_ref(),
        &options,
        &p,
        workflow::no_cancel(),
    )?;
    drop(p);
    if ctx.json {
        json(out, &r)?;
    } else {
        writeln!(
            out,
            "checked {} pack location(s), {} bytes ({}): {} ok, {} failed",
            r.checked,
            r.bytes,
            if r.decrypted {
                "decrypted and authenticated"
            } else {
                "ciphertext hashes"
            },
            r.ok,
            r.failed.len()
        )?;
        for f in &r.failed {
            writeln!(out, "FAILED {f}")?;
        }
    }
    if !r.failed.is_empty() {
        anyhow::bail!(
            "verification failed for {} pack location(s)",
            r.failed.len()
        );
    }
    Ok(())
}
