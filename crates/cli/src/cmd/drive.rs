//! `tapebackup drive status|rewind|eject|alerts|mam`: one tape drive, like `mt status`
//! and `tapeinfo`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::json;
use tape_scsi::{DriveSpec, Error, LibrarySpec, TapeDrive};

use crate::output::Context;

/// Which drive.
#[derive(Debug, Clone, Args)]
pub struct DriveSelect {
    /// The drive's non-rewinding st node, e.g. /dev/nst0.
    #[arg(long, global = true, value_name = "NST", conflicts_with_all = ["serial", "vtl"])]
    pub drive: Option<PathBuf>,
    /// The drive by serial number.
    #[arg(long, global = true, value_name = "SERIAL", conflicts_with = "vtl")]
    pub serial: Option<String>,
    /// A drive of a virtual library directory.
    #[arg(long, global = true, value_name = "DIR")]
    pub vtl: Option<PathBuf>,
    /// Drive number in the virtual library.
    #[arg(long, global = true, value_name = "N", default_value_t = 0)]
    pub number: u16,
}

impl DriveSelect {
    /// Opens the selected drive.
    pub fn open(&self) -> anyhow::Result<Box<dyn TapeDrive>> {
        if let Some(dir) = &self.vtl {
            let mut lib = LibrarySpec::Virtual { dir: dir.clone() }.open()?;
            return Ok(lib.drive(self.number)?);
        }
        let spec = match (&self.drive, &self.serial) {
            (Some(p), _) => DriveSpec::Node(p.clone()),
            (None, Some(s)) => DriveSpec::Serial(s.clone()),
            (None, None) => {
                anyhow::bail!("name a drive: --drive /dev/nstN, --serial SERIAL or --vtl DIR")
            }
        };
        Ok(Box::new(spec.open()?))
    }
}

/// Arguments of `tapebackup drive`.
#[derive(Debug, Args)]
pub struct DriveArgs {
    #[command(flatten)]
    pub select: DriveSelect,
    #[command(subcommand)]
    pub action: DriveAction,
}

/// What to do with the drive.
#[derive(Debug, Subcommand)]
pub enum DriveAction {
    /// Ready, position, write protect, block size, density, partitions, capacity.
    Status,
    /// Rewind to the beginning of partition 0.
    Rewind,
    /// Rewind and eject the cartridge.
    Eject,
    /// TapeAlert flags that are set (reading clears them on real drives).
    Alerts,
    /// Medium auxiliary memory attributes of the loaded cartridge.
    Mam {
        /// Partition whose attributes to read.
        #[arg(long, default_value_t = 0)]
        partition: u8,
    },
}

/// Runs `tapebackup drive`.
pub fn run(args: &DriveArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut drive = args.select.open().context("opening the drive")?;
    let name = drive.name();
    match &args.action {
        DriveAction::Status => status(&mut *drive, ctx, out),
        DriveAction::Rewind => {
            drive.rewind()?;
            done(
                ctx,
                out,
                json!({"drive": name, "action": "rewind"}),
                &format!("{name}: rewound"),
            )
        }
        DriveAction::Eject => {
            drive.unload()?;
            done(
                ctx,
                out,
                json!({"drive": name, "action": "eject"}),
                &format!("{name}: ejected"),
            )
        }
        DriveAction::Alerts => {
            let alerts = drive.tape_alerts()?;
            if ctx.json {
                let list: Vec<_> = alerts
                    .iter()
                    .map(|a| json!({"flag": a.flag, "name": a.name, "severity": a.severity}))
                    .collect();
                writeln!(out, "{}", json!({"drive": name, "alerts": list}))?;
            } else if alerts.is_empty() {
                writeln!(out, "{name}: no TapeAlert flags set")?;
            } else {
                for a in &alerts {
                    writeln!(out, "TapeAlert[{}]: {} ({})", a.flag, a.name, a.severity)?;
                }
            }
            Ok(())
        }
        DriveAction::Mam { partition } => mam(&mut *drive, *partition, ctx, out),
    }
}

fn done(
    ctx: &Context,
    out: &mut dyn Write,
    v: serde_json::Value,
    text: &str,
) -> anyhow::Result<()> {
    if ctx.json {
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "{text}")?;
    }
    Ok(())
}

/// `Ok(None)` for what the drive cannot tell (unsupported, or no cartridge).
fn optional<T>(r: Result<T, Error>) -> anyhow::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::Unsupported { .. } | Error::NotReady { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn status(drive: &mut dyn TapeDrive, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let name = drive.name();
    let s = drive.status()?;
    let (position, partitions, capacity) = if s.ready {
        (
            optional(drive.position())?,
            optional(drive.partition_count())?,
            optional(drive.capacity())?,
        )
    } else {
        (None, None, None)
    };
    if ctx.json {
        writeln!(
            out,
            "{}",
            json!({
                "drive": name,
                "ready": s.ready,
                "write_protected": s.write_protected,
                "bot": s.bot,
                "eod": s.eod,
                "eot": s.eot,
                "block_size": s.block_size,
                "density_code": s.density_code,
                "partition": position.map(|p| p.partition),
                "block": position.map(|p| p.block),
                "partitions": partitions,
                "remaining_bytes": capacity.map(|c| c.remaining),
                "maximum_bytes": capacity.map(|c| c.maximum),
            })
        )?;
        return Ok(());
    }
    writeln!(out, "drive: {name}")?;
    if !s.ready {
        writeln!(out, "status: not ready (no cartridge)")?;
        return Ok(());
    }
    let mut flags = vec!["ONLINE"];
    for (on, flag) in [
        (s.bot, "BOT"),
        (s.eod, "EOD"),
        (s.eot, "EOT"),
        (s.write_protected, "WR_PROT"),
    ] {
        if on {
            flags.push(flag);
        }
    }
    writeln!(out, "status: {}", flags.join(" "))?;
    let bs = if s.block_size == 0 {
        "variable".to_owned()
    } else {
        format!("{} bytes", s.block_size)
    };
    writeln!(out, "block size: {bs}")?;
    writeln!(out, "density code: {:#04x}", s.density_code)?;
    match position {
        Some(p) => writeln!(out, "position: partition {} block {}", p.partition, p.block)?,
        None => writeln!(out, "position: unknown")?,
    }
    if let Some(n) = partitions {
        writeln!(out, "partitions: {n}")?;
    }
    if let Some(c) = capacity {
        writeln!(
            out,
            "capacity: {} of {} bytes remaining",
            c.remaining, c.maximum
        )?;
    }
    Ok(())
}

/// Attribute identifiers worth showing (SPC-5 device, medium and host type attributes).
const MAM_IDS: &[u16] = &[
    0x0000, 0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x0007, 0x0008, 0x0009, 0x020A, 0x020B,
    0x020C, 0x020D, 0x0220, 0x0221, 0x0222, 0x0223, 0x0400, 0x0401, 0x0402, 0x0403, 0x0404, 0x0405,
    0x0406, 0x0407, 0x0408, 0x0409, 0x040A, 0x0800, 0x0801, 0x0802, 0x0803, 0x0804, 0x0805, 0x0806,
    0x0807, 0x0808, 0x0809, 0x080A, 0x080B, 0x080C, 0x0820, 0x0821,
];

fn mam(
    drive: &mut dyn TapeDrive,
    partition: u8,
    ctx: &Context,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut found = Vec::new();
    for &id in MAM_IDS {
        if let Some(a) = drive.read_attribute(partition, id)? {
            found.push(a);
        }
    }
    if ctx.json {
        let list: Vec<_> = found
            .iter()
            .map(|a| {
                json!({
                    "id": a.id,
                    "name": tape_scsi::mam::attribute_name(a.id),
                    "format": a.format,
                    "text": tape_scsi::mam::attribute_text(a),
                    "hex": a.value.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                })
            })
            .collect();
        writeln!(
            out,
            "{}",
            json!({"drive": drive.name(), "partition": partition, "attributes": list})
        )?;
        return Ok(());
    }
    if found.is_empty() {
        writeln!(
            out,
            "{}: no MAM attributes on partition {partition}",
            drive.name()
        )?;
    }
    for a in &found {
        writeln!(
            out,
            "{:#06x} {:<42} {}",
            a.id,
            tape_scsi::mam::attribute_name(a.id),
            tape_scsi::mam::attribute_text(a)
        )?;
    }
    Ok(())
}
