//! `tapebackup library status|inventory|load|unload|move`: the media changer.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use tape_scsi::{
    DriveSpec, Element, ElementType, Inventory, Library, LibrarySpec, RealLibrarySpec,
};

use crate::output::Context;

/// Which library: a real one (nodes or serials; discovered when left out) or a virtual one.
#[derive(Debug, Clone, Args)]
pub struct LibrarySelect {
    /// Changer SCSI generic node, e.g. /dev/sg3 (default: the only changer found).
    #[arg(long, global = true, value_name = "SG", conflicts_with = "vtl")]
    pub changer: Option<PathBuf>,
    /// Changer by serial number.
    #[arg(long, global = true, value_name = "SERIAL", conflicts_with_all = ["vtl", "changer"])]
    pub changer_serial: Option<String>,
    /// Drive st nodes in changer order (repeat: drive 0 first). Default: matched by serial.
    #[arg(
        long = "drive",
        global = true,
        value_name = "NST",
        conflicts_with = "vtl"
    )]
    pub drives: Vec<PathBuf>,
    /// Drive serial numbers in changer order (repeat), instead of --drive.
    #[arg(long = "drive-serial", global = true, value_name = "SERIAL", conflicts_with_all = ["vtl", "drives"])]
    pub drive_serials: Vec<String>,
    /// A virtual library directory (made with `tapebackup vtl create`).
    #[arg(long, global = true, value_name = "DIR")]
    pub vtl: Option<PathBuf>,
}

impl LibrarySelect {
    /// The spec these flags describe.
    pub fn spec(&self) -> LibrarySpec {
        match &self.vtl {
            Some(dir) => LibrarySpec::Virtual { dir: dir.clone() },
            None => LibrarySpec::Real(RealLibrarySpec {
                changer: self.changer.clone(),
                changer_serial: self.changer_serial.clone(),
                drives: self
                    .drives
                    .iter()
                    .cloned()
                    .map(DriveSpec::Node)
                    .chain(self.drive_serials.iter().cloned().map(DriveSpec::Serial))
                    .collect(),
            }),
        }
    }
}

/// Arguments of `tapebackup library`.
#[derive(Debug, Args)]
pub struct LibraryArgs {
    #[command(flatten)]
    pub select: LibrarySelect,
    #[command(subcommand)]
    pub action: LibraryAction,
}

/// What to do with the library.
#[derive(Debug, Subcommand)]
pub enum LibraryAction {
    /// Drives and slots in `mtx status` layout.
    Status,
    /// Every element with its address, barcode, source slot and drive serial.
    Inventory,
    /// Load the cartridge in SLOT into DRIVE.
    Load {
        /// Storage or import/export slot (mtx numbering, from 1).
        slot: u16,
        /// Drive number (from 0).
        #[arg(default_value_t = 0)]
        drive: u16,
    },
    /// Eject the cartridge in DRIVE and put it in SLOT (default: the slot it came from,
    /// else the first empty slot).
    Unload {
        /// Drive number (from 0).
        #[arg(default_value_t = 0)]
        drive: u16,
        /// Destination slot.
        slot: Option<u16>,
    },
    /// Move a cartridge: FROM and TO are slot numbers (`3`, `slot3`), drives (`drive0`,
    /// `d0`) or raw element addresses (`@1005`).
    Move {
        /// Source element.
        from: String,
        /// Destination element.
        to: String,
    },
    /// Make the library rescan every element (barcodes too); can take minutes.
    Rescan,
}

/// Runs `tapebackup library`.
pub fn run(args: &LibraryArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut lib = args.select.spec().open().context("opening the library")?;
    match &args.action {
        LibraryAction::Status => {
            let inv = lib.changer().inventory()?;
            if ctx.json {
                writeln!(out, "{}", inventory_json(&inv))?;
            } else {
                write!(out, "{}", inv.mtx_status(&lib.changer().name()))?;
            }
        }
        LibraryAction::Inventory => {
            let inv = lib.changer().inventory()?;
            if ctx.json {
                writeln!(out, "{}", inventory_json(&inv))?;
            } else {
                write_inventory_table(&inv, out)?;
            }
        }
        LibraryAction::Load { slot, drive } => {
            lib.changer().load(*slot, *drive)?;
            report(
                ctx,
                out,
                json!({"action": "load", "slot": slot, "drive": drive}),
                &format!("loaded slot {slot} into drive {drive}"),
            )?;
        }
        LibraryAction::Unload { drive, slot } => {
            eject_if_loaded(&mut lib, *drive, ctx)?;
            let to = lib.changer().unload(*drive, *slot)?;
            report(
                ctx,
                out,
                json!({"action": "unload", "drive": drive, "slot": to}),
                &format!("unloaded drive {drive} into slot {to}"),
            )?;
        }
        LibraryAction::Move { from, to } => {
            let inv = lib.changer().inventory()?;
            let source = resolve(&inv, from)?;
            let destination = resolve(&inv, to)?;
            lib.changer().move_medium(source, destination)?;
            report(
                ctx,
                out,
                json!({"action": "move", "from": source, "to": destination}),
                &format!("moved element {source} to element {destination}"),
            )?;
        }
        LibraryAction::Rescan => {
            lib.changer().initialize_element_status()?;
            report(
                ctx,
                out,
                json!({"action": "rescan"}),
                "element status initialized",
            )?;
        }
    }
    Ok(())
}

fn report(
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

/// Drives hold a threaded cartridge until they eject it; do that before the robot takes it.
fn eject_if_loaded(lib: &mut Library, drive: u16, ctx: &Context) -> anyhow::Result<()> {
    let inv = lib.changer().inventory()?;
    if !inv.drive(drive).is_some_and(|d| d.full) {
        return Ok(());
    }
    match lib.drive(drive) {
        Ok(mut d) => match d.unload() {
            Ok(()) | Err(tape_scsi::Error::NotReady { .. }) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("ejecting the cartridge from drive {drive}")),
        },
        // No st node known for this drive: leave the eject to the library.
        Err(e) => {
            if ctx.verbose > 0 {
                eprintln!("tapebackup: not ejecting drive {drive} first: {e}");
            }
            Ok(())
        }
    }
}

fn resolve(inv: &Inventory, spec: &str) -> anyhow::Result<u16> {
    let s = spec.trim().to_ascii_lowercase();
    let element = if let Some(a) = s.strip_prefix('@') {
        return a
            .parse::<u16>()
            .with_context(|| format!("bad element address {spec:?}"));
    } else if let Some(n) = s.strip_prefix("drive").or_else(|| s.strip_prefix('d')) {
        let n: u16 = n.parse().with_context(|| format!("bad drive {spec:?}"))?;
        inv.drive(n)
    } else {
        let n: u16 = s
            .strip_prefix("slot")
            .unwrap_or(&s)
            .parse()
            .with_context(|| format!("bad slot {spec:?}"))?;
        inv.slot(n)
    };
    match element {
        Some(e) => Ok(e.address),
        None => bail!("no element {spec:?} in this library"),
    }
}

fn kind_name(k: ElementType) -> &'static str {
    match k {
        ElementType::Transport => "transport",
        ElementType::Storage => "slot",
        ElementType::ImportExport => "ie",
        ElementType::Drive => "drive",
    }
}

fn element_json(e: &Element) -> serde_json::Value {
    json!({
        "kind": kind_name(e.kind),
        "number": e.number,
        "address": e.address,
        "full": e.full,
        "barcode": e.barcode,
        "source_address": e.source_address,
        "source_slot": e.source_slot,
        "drive_serial": e.drive_serial,
        "installed": e.installed,
        "exception": e.exception.map(|(asc, ascq)| json!({"asc": asc, "ascq": ascq, "name": tape_scsi::asc_name(asc, ascq)})),
    })
}

/// The inventory as JSON: one array per element type.
pub fn inventory_json(inv: &Inventory) -> serde_json::Value {
    let list = |v: &[Element]| v.iter().map(element_json).collect::<Vec<_>>();
    json!({
        "transports": list(&inv.transports),
        "drives": list(&inv.drives),
        "slots": list(&inv.storage),
        "import_export": list(&inv.import_export),
    })
}

fn write_inventory_table(inv: &Inventory, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<9} {:>4} {:>7}  {:<6} {:<16} {:>6}  DRIVE SERIAL / NOTE",
        "KIND", "NUM", "ADDRESS", "STATE", "BARCODE", "SOURCE"
    )?;
    for e in inv.all() {
        let state = if e.full { "full" } else { "empty" };
        let note = match (&e.drive_serial, e.installed, e.exception_name()) {
            (_, false, _) => "not installed".to_owned(),
            (Some(s), _, _) => s.clone(),
            (None, _, Some(name)) => name.to_owned(),
            (None, _, None) => String::new(),
        };
        writeln!(
            out,
            "{:<9} {:>4} {:>7}  {:<6} {:<16} {:>6}  {}",
            kind_name(e.kind),
            e.number,
            e.address,
            state,
            e.barcode.as_deref().unwrap_or("-"),
            e.source_slot
                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
            note
        )?;
    }
    Ok(())
}

/// The exit code for tape-scsi errors: 6, tape device or library error (see `exit.rs`).
pub fn exit_code_of(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    e.downcast_ref::<tape_scsi::Error>().map(|_| 6)
}
