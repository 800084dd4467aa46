//! `tapebackup init [DIR]`: config, key, catalog and a virtual library.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use tapebackup::workflow::config::{self, InitOptions, SourceConfig};

use crate::output::Context;

/// Arguments of `tapebackup init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory for the config, key, catalog, staging and virtual library.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Protect the key file with a passphrase (from TAPEBACKUP_PASSPHRASE_FILE or a prompt).
    #[arg(long)]
    pub passphrase: bool,
    /// Use a SCSI library instead of creating a virtual one (edit [library] afterwards).
    #[arg(long)]
    pub scsi: bool,
    /// A source to back up, as NAME=DIR or NAME=[user@]host:/dir over SSH (repeatable).
    #[arg(long = "source", value_name = "NAME=DIR")]
    pub sources: Vec<String>,
    /// Virtual library: storage slots.
    #[arg(long, default_value_t = 8)]
    pub slots: usize,
    /// Virtual library: drives.
    #[arg(long, default_value_t = 2)]
    pub drives: usize,
    /// Virtual library: capacity of each cartridge (e.g. 256MiB).
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub capacity: u64,
    /// Virtual library: drives that cannot partition (like LTO-4 or tgt): tapes get the raw
    /// on-tape format.
    #[arg(long)]
    pub no_partitions: bool,
    /// Virtual library: drives without READ POSITION / LOCATE (like tgt).
    #[arg(long)]
    pub no_locate: bool,
}

fn parse_size(s: &str) -> Result<u64, String> {
    parse_size::parse_size(s).map_err(|e| e.to_string())
}

/// Runs `init`.
pub fn run(args: &InitArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut options = InitOptions {
        passphrase: args.passphrase,
        virtual_library: !args.scsi,
        ..InitOptions::default()
    };
    options.vtl.slots = args.slots;
    options.vtl.drives = args.drives;
    options.vtl.capacity = args.capacity;
    options.vtl_capabilities.partitions = !args.no_partitions;
    options.vtl_capabilities.locate = !args.no_locate;
    // Room after early warning for the rest of an LTFS record, the index and the catalog
    // snapshot, even on the small cartridges of a demo.
    options.vtl.reserve = Some((args.capacity / 16).max(4 << 20));
    for s in &args.sources {
        let (name, dir) = s
            .split_once('=')
            .with_context(|| format!("--source {s:?}: expected NAME=DIR"))?;
        // `[user@]host:/path` (as scp and rsync spell it) is a remote source over SSH.
        let remote = dir.split_once(':').filter(|(host, path)| {
            !host.is_empty() && !host.contains('/') && path.starts_with('/')
        });
        let (host, path) = match remote {
            Some((host, path)) => (Some(host.to_owned()), std::path::PathBuf::from(path)),
            None => (None, std::path::absolute(dir)?),
        };
        options.sources.push(SourceConfig {
            name: name.to_owned(),
            path,
            host,
            port: None,
            identity_file: None,
            ssh_config: None,
            known_hosts: None,
            transfer: Default::default(),
            parallel: 2,
            read_in_place: true,
            exclude: Vec::new(),
        });
    }
    let config = config::init(&args.dir, &options)?;
    if ctx.json {
        return crate::cmd::progress::json(
            out,
            &serde_json::json!({
                "config": config.path,
                "catalog": config.file.catalog,
                "key": config.file.key.file,
            }),
        );
    }
    writeln!(out, "wrote {}", config.path.display())?;
    writeln!(
        out,
        "key   {} (keep a copy somewhere safe: without it nothing restores)",
        config.file.key.file.display()
    )?;
    writeln!(out, "catalog {}", config.file.catalog.display())?;
    if let config::LibraryConfig::Virtual { dir } = &config.file.library {
        writeln!(
            out,
            "virtual library {} ({} slots, {} drives, {} per cartridge)",
            dir.display(),
            args.slots,
            args.drives,
            config::format_size(args.capacity)
        )?;
    }
    if config.file.sources.is_empty() {
        writeln!(
            out,
            "next: add a [[source]] to the config, then `tapebackup run`"
        )?;
    } else {
        writeln!(out, "next: `tapebackup run` (get, pack, write)")?;
    }
    Ok(())
}
