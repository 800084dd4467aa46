//! `tapebackup vtl`: create and manage virtual tape libraries (directories that behave like
//! a SCSI autoloader; see `tape_scsi::VirtualLibrary`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use tape_scsi::{
    CartridgeFaults, DriveFaults, FaultOp, LibraryOptions, LibraryState, MediumErrorFault,
    VirtualLibrary,
};

use crate::output::Context;

/// Exit code for tape device or library errors, as listed in `exit.rs`.
const EXIT_TAPE: u8 = 6;

/// The exit code for a tape-scsi error (virtual library state, cartridges, drives).
pub fn exit_code_of(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    e.downcast_ref::<tape_scsi::Error>().map(|_| EXIT_TAPE)
}

/// `tapebackup vtl ...`
#[derive(Debug, Args)]
pub struct VtlArgs {
    #[command(subcommand)]
    command: VtlCommand,
}

#[derive(Debug, Subcommand)]
enum VtlCommand {
    /// Create a virtual library in DIR, its slots filled with blank cartridges.
    Create(CreateArgs),
    /// Show the library: slots, drives, I/E slots, cartridges and injected faults.
    Status(LibArg),
    /// Copy a cartridge directory (reference LTFS file-backend layout) into the library.
    ImportCartridge(ImportArgs),
    /// Add a blank cartridge to the first empty storage slot.
    AddCartridge(AddArgs),
    /// Inject faults into a cartridge or a drive (persistent, seen by every process).
    Fault(FaultArgs),
}

#[derive(Debug, Args)]
struct LibArg {
    /// The library directory.
    library: PathBuf,
}

/// A size like `2GiB`, `500M` or `1048576`.
fn parse_size(s: &str) -> Result<u64, String> {
    parse_size::Config::new()
        .with_binary()
        .parse_size(s)
        .map_err(|e| format!("{s:?}: {e} (use e.g. 2GiB, 500M, 1048576)"))
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The library directory (created; must not hold a library yet).
    dir: PathBuf,
    /// Storage slots.
    #[arg(long, default_value_t = 8)]
    slots: usize,
    /// Drives.
    #[arg(long, default_value_t = 2)]
    drives: usize,
    /// Import/export slots.
    #[arg(long, default_value_t = 1)]
    ie: usize,
    /// Capacity of each cartridge up to early warning (2GiB, 500M: K/M/G are powers of 1024).
    #[arg(long, default_value = "2GiB", value_parser = parse_size)]
    capacity: u64,
    /// Bytes writable after early warning before the tape is full (default: 1/32 of the
    /// capacity, at least 64 KiB).
    #[arg(long, value_parser = parse_size)]
    reserve: Option<u64>,
    /// Barcode prefix: A0 gives A00001L5, A00002L5...
    #[arg(long, default_value = "VT")]
    barcode_prefix: String,
    /// Blank cartridges to create (default: one per slot).
    #[arg(long)]
    cartridges: Option<usize>,
    /// Drives that cannot partition (like LTO-4 and older, DAT, tgt).
    #[arg(long)]
    no_partitions: bool,
    /// Drives without READ POSITION / LOCATE (like tgt).
    #[arg(long)]
    no_locate: bool,
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// The library directory.
    library: PathBuf,
    /// The cartridge directory to copy (left untouched).
    cartridge: PathBuf,
    /// Barcode for the cartridge in the library.
    #[arg(long)]
    barcode: String,
    /// Storage slot (1-based); default the first empty one.
    #[arg(long)]
    slot: Option<usize>,
}

#[derive(Debug, Args)]
struct AddArgs {
    /// The library directory.
    library: PathBuf,
    /// Barcode (default: the next free one with the library's prefix).
    #[arg(long)]
    barcode: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

impl From<OnOff> for bool {
    fn from(v: OnOff) -> bool {
        matches!(v, OnOff::On)
    }
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["cartridge", "drive"])))]
struct FaultArgs {
    /// The library directory.
    library: PathBuf,
    /// The cartridge (barcode) to change.
    #[arg(long)]
    cartridge: Option<String>,
    /// The drive (0-based) to change.
    #[arg(long)]
    drive: Option<usize>,
    /// Remove every fault of the target first.
    #[arg(long)]
    clear: bool,
    /// Cartridge: unrecoverable medium error at PARTITION:BLOCK[:read|write|any] (repeatable).
    #[arg(long, value_name = "P:B[:OP]", value_parser = parse_medium_error, conflicts_with = "drive")]
    medium_error: Vec<MediumErrorFault>,
    /// Cartridge: write protect.
    #[arg(long, value_name = "on|off", conflicts_with = "drive")]
    write_protect: Option<OnOff>,
    /// Cartridge: early end of medium, early warning after this many bytes per partition.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, conflicts_with = "drive")]
    early_warning_at: Option<u64>,
    /// Cartridge: the changer reports this barcode instead (label mismatch).
    #[arg(long, value_name = "BARCODE", conflicts_with = "drive")]
    reported_barcode: Option<String>,
    /// Drive: not ready.
    #[arg(long, value_name = "on|off", conflicts_with = "cartridge")]
    not_ready: Option<OnOff>,
    /// Drive: unit attention on the first command after a load.
    #[arg(long, value_name = "on|off", conflicts_with = "cartridge")]
    unit_attention_after_load: Option<OnOff>,
    /// Drive: report this TapeAlert flag (1..=64; repeatable; `--clear` removes them).
    #[arg(long, value_name = "FLAG", value_parser = clap::value_parser!(u8).range(1..=64), conflicts_with = "cartridge")]
    tape_alert: Vec<u8>,
}

fn parse_medium_error(s: &str) -> Result<MediumErrorFault, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || format!("{s:?}: expected PARTITION:BLOCK[:read|write|any], e.g. 1:17:read");
    if parts.len() < 2 || parts.len() > 3 {
        return Err(bad());
    }
    let partition = parts[0].parse().map_err(|_| bad())?;
    let block = parts[1].parse().map_err(|_| bad())?;
    let on = match parts.get(2).copied() {
        None | Some("any") => FaultOp::Any,
        Some("read") => FaultOp::Read,
        Some("write") => FaultOp::Write,
        Some(_) => return Err(bad()),
    };
    Ok(MediumErrorFault {
        partition,
        block,
        on,
    })
}

/// Runs `tapebackup vtl ...`.
pub fn run(args: &VtlArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    match &args.command {
        VtlCommand::Create(a) => create(a, ctx, out),
        VtlCommand::Status(a) => {
            let lib = open(&a.library)?;
            print_state(&lib, &lib.state()?, ctx, out)
        }
        VtlCommand::ImportCartridge(a) => {
            let lib = open(&a.library)?;
            let slot = lib
                .import_cartridge(&a.cartridge, &a.barcode, a.slot)
                .with_context(|| format!("importing {}", a.cartridge.display()))?;
            if ctx.json {
                writeln!(out, "{}", json!({ "barcode": a.barcode, "slot": slot }))?;
            } else {
                writeln!(
                    out,
                    "imported {} as {} into slot {slot}",
                    a.cartridge.display(),
                    a.barcode
                )?;
            }
            Ok(())
        }
        VtlCommand::AddCartridge(a) => {
            let lib = open(&a.library)?;
            let (barcode, slot) = lib.add_blank_cartridge(a.barcode.as_deref())?;
            if ctx.json {
                writeln!(out, "{}", json!({ "barcode": barcode, "slot": slot }))?;
            } else {
                writeln!(out, "added blank cartridge {barcode} in slot {slot}")?;
            }
            Ok(())
        }
        VtlCommand::Fault(a) => fault(a, ctx, out),
    }
}

fn open(dir: &std::path::Path) -> anyhow::Result<VirtualLibrary> {
    VirtualLibrary::open(dir)
        .with_context(|| format!("opening the virtual library {}", dir.display()))
}

fn create(a: &CreateArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let opts = LibraryOptions {
        slots: a.slots,
        drives: a.drives,
        ie: a.ie,
        capacity: a.capacity,
        reserve: a.reserve,
        barcode_prefix: a.barcode_prefix.clone(),
        cartridges: a.cartridges,
    };
    let lib = VirtualLibrary::create(&a.dir, &opts)
        .with_context(|| format!("creating a virtual library in {}", a.dir.display()))?;
    if a.no_partitions || a.no_locate {
        lib.set_capabilities(tape_scsi::DriveCapabilities {
            partitions: !a.no_partitions,
            locate: !a.no_locate,
        })?;
    }
    print_state(&lib, &lib.state()?, ctx, out)
}

fn fault(a: &FaultArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let lib = open(&a.library)?;
    let state = lib.state()?;
    let result = if let Some(barcode) = &a.cartridge {
        let Some(c) = state.cartridges.get(barcode) else {
            bail!("no cartridge {barcode} in {}", a.library.display());
        };
        let mut f = if a.clear {
            CartridgeFaults::default()
        } else {
            c.faults.clone()
        };
        f.medium_errors.extend(a.medium_error.iter().copied());
        if let Some(v) = a.write_protect {
            f.write_protected = v.into();
        }
        if let Some(v) = a.early_warning_at {
            f.early_warning_at = Some(v);
        }
        if let Some(v) = &a.reported_barcode {
            f.reported_barcode = Some(v.clone());
        }
        lib.set_cartridge_faults(barcode, f.clone())?;
        json!({ "cartridge": barcode, "faults": f })
    } else {
        let index = a.drive.unwrap_or_default();
        let Some(d) = state.drives.get(index) else {
            bail!(
                "no drive {index} in {} (it has {})",
                a.library.display(),
                state.drives.len()
            );
        };
        let mut f = if a.clear {
            DriveFaults::default()
        } else {
            d.faults.clone()
        };
        if let Some(v) = a.not_ready {
            f.not_ready = v.into();
        }
        if let Some(v) = a.unit_attention_after_load {
            f.unit_attention_after_load = v.into();
        }
        for flag in &a.tape_alert {
            if !f.tape_alerts.contains(flag) {
                f.tape_alerts.push(*flag);
            }
        }
        lib.set_drive_faults(index, f.clone())?;
        json!({ "drive": index, "faults": f })
    };
    if ctx.json {
        writeln!(out, "{result}")?;
    } else {
        let target = match (&a.cartridge, a.drive) {
            (Some(b), _) => format!("cartridge {b}"),
            (None, d) => format!("drive {}", d.unwrap_or_default()),
        };
        writeln!(out, "{target}: {}", describe_faults(&result["faults"]))?;
    }
    Ok(())
}

/// One line naming the faults that are set.
fn describe_faults(f: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(obj) = f.as_object() {
        for (k, v) in obj {
            match v {
                Value::Bool(true) => parts.push(k.replace('_', "-")),
                Value::Array(a) if !a.is_empty() => {
                    let list: Vec<String> = a
                        .iter()
                        .map(|e| match e {
                            Value::Object(_) => format!(
                                "{}:{}:{}",
                                e["partition"],
                                e["block"],
                                e["on"].as_str().unwrap_or("any")
                            ),
                            other => other.to_string(),
                        })
                        .collect();
                    parts.push(format!("{} {}", k.replace('_', "-"), list.join(",")));
                }
                Value::Number(n) => parts.push(format!("{} {n}", k.replace('_', "-"))),
                Value::String(s) => parts.push(format!("{} {s}", k.replace('_', "-"))),
                _ => {}
            }
        }
    }
    if parts.is_empty() {
        "no faults".to_owned()
    } else {
        parts.join("; ")
    }
}

fn print_state(
    lib: &VirtualLibrary,
    s: &LibraryState,
    ctx: &Context,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let occupant = |o: &Option<tape_scsi::Occupant>| o.as_ref().map(|o| o.barcode.clone());
    if ctx.json {
        let v = json!({
            "dir": lib.dir(),
            "serial": s.serial,
            "capacity": s.capacity,
            "reserve": s.reserve,
            "barcode_prefix": s.barcode_prefix,
            "slots": s.slots.iter().enumerate().map(|(i, o)| json!({ "slot": i + 1, "barcode": occupant(o) })).collect::<Vec<_>>(),
            "ie": s.ie.iter().enumerate().map(|(i, o)| json!({ "ie": i + 1, "barcode": occupant(o) })).collect::<Vec<_>>(),
            "drives": s.drives.iter().enumerate().map(|(i, d)| json!({
                "drive": i,
                "serial": d.serial,
                "barcode": occupant(&d.cartridge),
                "loaded": d.loaded,
                "faults": d.faults,
            })).collect::<Vec<_>>(),
            "cartridges": s.cartridges.iter().map(|(b, c)| json!({
                "barcode": b,
                "dir": lib.dir().join(&c.dir),
                "faults": c.faults,
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{v}")?;
        return Ok(());
    }
    writeln!(
        out,
        "virtual library {} (serial {})",
        lib.dir().display(),
        s.serial
    )?;
    writeln!(out, "  cartridge capacity {} bytes", s.capacity)?;
    for (i, d) in s.drives.iter().enumerate() {
        let what = match (&d.cartridge, d.loaded) {
            (Some(o), true) => format!("{} (loaded)", o.barcode),
            (Some(o), false) => format!("{} (unloaded)", o.barcode),
            (None, _) => "empty".to_owned(),
        };
        writeln!(out, "  drive {i:<3} serial {:<10} {what}", d.serial)?;
        if d.faults != DriveFaults::default() {
            writeln!(
                out,
                "            faults: {}",
                describe_faults(&json!(d.faults))
            )?;
        }
    }
    for (i, o) in s.slots.iter().enumerate() {
        writeln!(
            out,
            "  slot  {:<3} {}",
            i + 1,
            occupant(o).unwrap_or_else(|| "empty".to_owned())
        )?;
    }
    for (i, o) in s.ie.iter().enumerate() {
        writeln!(
            out,
            "  I/E   {:<3} {}",
            i + 1,
            occupant(o).unwrap_or_else(|| "empty".to_owned())
        )?;
    }
    for (b, c) in &s.cartridges {
        if c.faults != CartridgeFaults::default() {
            writeln!(
                out,
                "  cartridge {b} faults: {}",
                describe_faults(&json!(c.faults))
            )?;
        }
    }
    Ok(())
}
