//! The workflow's progress on the terminal: an indicatif bar (bytes, rate, ETA, current
//! item) when stderr is a terminal, plain log lines otherwise, nothing with `-q`.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use tapebackup::workflow::{self, Config};

use crate::output::Context;

/// Progress shown to the user.
pub struct CliProgress {
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl CliProgress {
    /// Progress for this invocation.
    pub fn new(ctx: &Context) -> CliProgress {
        let bar = ctx.progress.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {bytes} {bytes_per_sec} {elapsed_precise} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });
        CliProgress {
            bar,
            quiet: ctx.quiet,
        }
    }
}

impl Drop for CliProgress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl workflow::Progress for CliProgress {
    fn message(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None if !self.quiet => eprintln!("tapebackup: {text}"),
            None => {}
        }
    }
    fn item(&self, name: &str, _total: Option<u64>) {
        if let Some(b) = &self.bar {
            b.set_message(name.to_owned());
        }
    }
    fn advance(&self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }
}

/// The configuration for this invocation (`--config`, `TAPEBACKUP_CONFIG`, or
/// `./tapebackup.toml`).
pub fn config(ctx: &Context) -> anyhow::Result<Config> {
    Config::find(ctx.config.as_deref())
}

/// Fills a catalog path left unset with the configured catalog, when a config is found.
pub fn default_catalog(path: &mut Option<PathBuf>, ctx: &Context) {
    if path.is_none()
        && std::env::var_os("TAPEBACKUP_CATALOG").is_none()
        && let Ok(c) = config(ctx)
    {
        *path = Some(c.file.catalog);
    }
}

/// Prints `value` as JSON (with `--json`).
pub fn json(out: &mut dyn std::io::Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}
