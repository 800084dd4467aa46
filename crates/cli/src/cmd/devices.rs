//! `tapebackup devices`: SCSI changers and tape drives on this machine, from sysfs (like
//! `lsscsi -g`), with the sg ↔ nst ↔ sch mapping and serial numbers.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;
use tape_scsi::{DeviceKind, ScsiDevice};

use crate::output::Context;

/// Arguments of `tapebackup devices`.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// List every SCSI device, not only changers and tape drives.
    #[arg(long)]
    pub all: bool,
    /// Root of the sysfs tree to scan (for tests and chroots).
    #[arg(long, value_name = "DIR", default_value = "/sys", hide = true)]
    pub sysfs: PathBuf,
}

fn kind_name(k: DeviceKind) -> String {
    match k {
        DeviceKind::Tape => "tape".into(),
        DeviceKind::Changer => "changer".into(),
        DeviceKind::Other(t) => format!("type {t}"),
    }
}

fn path_text(p: &Option<PathBuf>) -> String {
    p.as_deref()
        .map_or_else(|| "-".to_owned(), |p| p.display().to_string())
}

/// Runs `tapebackup devices`.
pub fn run(args: &DevicesArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let devices: Vec<ScsiDevice> = tape_scsi::discover_in(&args.sysfs, Path::new("/dev"))?
        .into_iter()
        .filter(|d| args.all || matches!(d.kind, DeviceKind::Tape | DeviceKind::Changer))
        .collect();
    if ctx.json {
        let list: Vec<serde_json::Value> = devices
            .iter()
            .map(|d| {
                json!({
                    "hctl": d.hctl,
                    "kind": kind_name(d.kind),
                    "vendor": d.vendor,
                    "model": d.model,
                    "revision": d.revision,
                    "serial": d.serial,
                    "sg": d.sg,
                    "tape": d.tape,
                    "changer": d.changer,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(list))?;
        return Ok(());
    }
    if devices.is_empty() {
        writeln!(out, "no SCSI changers or tape drives found")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<12} {:<8} {:<8} {:<16} {:<5} {:<14} {:<10} {:<10} CHANGER",
        "H:C:T:L", "KIND", "VENDOR", "MODEL", "REV", "SERIAL", "SG", "TAPE"
    )?;
    for d in &devices {
        writeln!(
            out,
            "{:<12} {:<8} {:<8} {:<16} {:<5} {:<14} {:<10} {:<10} {}",
            d.hctl,
            kind_name(d.kind),
            d.vendor,
            d.model,
            d.revision,
            d.serial.as_deref().unwrap_or("-"),
            path_text(&d.sg),
            path_text(&d.tape),
            path_text(&d.changer)
        )?;
    }
    Ok(())
}
