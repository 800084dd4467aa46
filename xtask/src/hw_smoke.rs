//! `cargo xtask hw-smoke`: checks a real library (or a virtual one) end to end and prints
//! a pass/fail report, like Bareos' `btape test` and `autochanger` checks.
//!
//! Read-only by default: changer identity, element address assignment, inventory and its
//! consistency, drive status, TapeAlert flags, MAM, and the read-only half of the drive
//! conformance suite on a cartridge already in the drive. With `--scratch-slot N` it loads
//! the cartridge of slot N, runs the writing conformance suite on it (**overwriting it**),
//! and puts it back.
//!
//!     cargo xtask hw-smoke --changer /dev/sg3 --drive /dev/nst0 [--drive-number 0] [--scratch-slot 5]
//!     cargo xtask hw-smoke --vtl /tmp/vtl --create-vtl --scratch-slot 1

use std::collections::HashSet;
use std::fmt::Display;
use std::path::PathBuf;

use anyhow::{Context, bail};
use tape_scsi::conformance::{self, Outcome};
use tape_scsi::{
    Changer, DriveSpec, Error, Inventory, LibraryOptions, ScsiChanger, ScsiTransport, SgDevice,
    TapeDrive, VirtualLibrary,
};

/// Arguments of `cargo xtask hw-smoke`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Changer SCSI generic node (e.g. /dev/sg3).
    #[arg(
        long,
        value_name = "SG",
        required_unless_present = "vtl",
        conflicts_with = "vtl"
    )]
    changer: Option<PathBuf>,
    /// The drive's non-rewinding st node (e.g. /dev/nst0).
    #[arg(
        long,
        value_name = "NST",
        required_unless_present = "vtl",
        conflicts_with = "vtl"
    )]
    drive: Option<PathBuf>,
    /// Run against a virtual library directory instead.
    #[arg(long, value_name = "DIR")]
    vtl: Option<PathBuf>,
    /// With --vtl: create the library first (2 drives, 8 slots, 1 I/E, 64 MiB cartridges)
    /// unless it exists.
    #[arg(long, requires = "vtl")]
    create_vtl: bool,
    /// The drive's number in the changer (its data transfer element, from 0).
    #[arg(long, value_name = "N", default_value_t = 0)]
    drive_number: u16,
    /// A scratch cartridge's slot: load it and run the write tests on it. ITS DATA IS LOST.
    #[arg(long, value_name = "N")]
    scratch_slot: Option<u16>,
    /// With --scratch-slot: also reformat the scratch cartridge into two partitions.
    #[arg(long, requires = "scratch_slot")]
    partition: bool,
}

/// Collected results.
#[derive(Debug, Default)]
struct Report {
    lines: Vec<(&'static str, String, String)>,
}

impl Report {
    fn record<T>(
        &mut self,
        name: impl Display,
        result: Result<T, Error>,
        detail: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        match result {
            Ok(v) => {
                self.lines.push(("PASS", name.to_string(), detail(&v)));
                Some(v)
            }
            Err(Error::Unsupported { what, .. }) => {
                self.lines
                    .push(("UNSUP", name.to_string(), what.to_string()));
                None
            }
            Err(e) => {
                self.lines.push(("FAIL", name.to_string(), e.to_string()));
                None
            }
        }
    }

    fn check(&mut self, name: impl Display, ok: bool, detail: impl Display) {
        self.lines.push((
            if ok { "PASS" } else { "FAIL" },
            name.to_string(),
            detail.to_string(),
        ));
    }

    fn conformance(&mut self, prefix: &str, r: &conformance::Report) {
        for c in &r.checks {
            let (tag, why) = match &c.outcome {
                Outcome::Passed => ("PASS", String::new()),
                Outcome::Failed(w) => ("FAIL", w.clone()),
                Outcome::Unsupported(w) => ("UNSUP", w.clone()),
                Outcome::DeviceDefect(w) => ("FAIL", format!("device defect: {w}")),
                Outcome::Skipped(w) => ("SKIP", w.clone()),
            };
            self.lines.push((tag, format!("{prefix}{}", c.name), why));
        }
    }

    fn failed(&self) -> usize {
        self.lines.iter().filter(|l| l.0 == "FAIL").count()
    }
}

/// Runs the smoke test.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::default();
    let vtl = match &args.vtl {
        Some(dir) => Some(open_vtl(dir, args.create_vtl)?),
        None => None,
    };
    let mut changer: ScsiChanger<Box<dyn ScsiTransport>> = match (&vtl, &args.changer) {
        (Some(lib), _) => ScsiChanger::new(Box::new(lib.changer())),
        (None, Some(sg)) => ScsiChanger::new(Box::new(SgDevice::open(sg)?)),
        (None, None) => bail!("name --changer and --drive, or --vtl"),
    };
    let open_drive = |number: u16| -> Result<Box<dyn TapeDrive>, Error> {
        match (&vtl, &args.drive) {
            (Some(lib), _) => Ok(Box::new(lib.drive(usize::from(number))?)),
            (None, Some(nst)) => Ok(Box::new(DriveSpec::Node(nst.clone()).open()?)),
            (None, None) => Err(Error::DeviceNotFound {
                kind: "tape drive",
                what: "--drive".into(),
            }),
        }
    };

    // Changer: identity, element map, inventory.
    report.record(
        "changer: TEST UNIT READY",
        changer.test_unit_ready(),
        |_| String::new(),
    );
    report.record("changer: INQUIRY", changer.inquiry(), |i| {
        format!("{} {} {}", i.vendor, i.product, i.revision)
    });
    report.record("changer: serial (VPD 80h)", changer.serial(), |s| {
        s.clone().unwrap_or_else(|| "none".into())
    });
    let addresses = report.record(
        "changer: element address assignment",
        changer.element_addresses(),
        |a| {
            format!(
                "MT {}+{} ST {}+{} IE {}+{} DT {}+{}",
                a.transport.first,
                a.transport.count,
                a.storage.first,
                a.storage.count,
                a.import_export.first,
                a.import_export.count,
                a.drives.first,
                a.drives.count
            )
        },
    );
    let inventory = report.record("changer: inventory", changer.inventory(), |inv| {
        format!(
            "{} drives, {} slots, {} I/E, {} cartridges",
            inv.drives.len(),
            inv.storage.len(),
            inv.import_export.len(),
            inv.all().filter(|e| e.full).count()
        )
    });
    if let (Some(inv), Some(a)) = (&inventory, &addresses) {
        check_inventory(&mut report, inv, a);
    }
    let Some(inv) = inventory else {
        return finish(report);
    };
    let Some(element) = inv.drive(args.drive_number).cloned() else {
        report.check(
            "drive: in changer",
            false,
            format!("the changer has no drive {}", args.drive_number),
        );
        return finish(report);
    };

    // The named drive is the changer's drive N: compare serial numbers.
    if let Some(nst) = &args.drive {
        let serial = DriveSpec::Node(nst.clone())
            .open()
            .and_then(|mut d| d.serial());
        match (serial, &element.drive_serial) {
            (Ok(s), Some(dvcid)) => report.check(
                format!(
                    "drive: {} is changer drive {}",
                    nst.display(),
                    args.drive_number
                ),
                &s == dvcid,
                format!("drive serial {s}, changer says {dvcid}"),
            ),
            (Ok(s), None) => report.lines.push((
                "UNSUP",
                "drive: serial matches the changer".into(),
                format!("drive serial {s}; the changer reports no drive serials"),
            )),
            (Err(e), _) => {
                report.record("drive: serial (VPD 80h)", Err::<(), _>(e), |_| {
                    String::new()
                });
            }
        }
    }

    // Drive: read-only checks.
    if let Some(mut drive) =
        report.record("drive: open", open_drive(args.drive_number), |d| d.name())
    {
        read_only_drive_checks(&mut report, &mut *drive, element.full);
    }

    // Write tests on the scratch cartridge only.
    if let Some(slot) = args.scratch_slot {
        scratch(&mut report, &mut changer, &inv, &args, slot, &open_drive)?;
    }
    finish(report)
}

fn open_vtl(dir: &std::path::Path, create: bool) -> anyhow::Result<VirtualLibrary> {
    if create && !dir.join("library.json").exists() {
        let options = LibraryOptions {
            capacity: 64 << 20,
            barcode_prefix: "HW".into(),
            ..LibraryOptions::default()
        };
        return VirtualLibrary::create(dir, &options)
            .with_context(|| format!("creating {}", dir.display()));
    }
    VirtualLibrary::open(dir).with_context(|| format!("opening {}", dir.display()))
}

fn check_inventory(report: &mut Report, inv: &Inventory, a: &tape_scsi::ElementAddressAssignment) {
    report.check(
        "inventory: element counts match mode page 1Dh",
        inv.transports.len() == usize::from(a.transport.count)
            && inv.storage.len() == usize::from(a.storage.count)
            && inv.import_export.len() == usize::from(a.import_export.count)
            && inv.drives.len() == usize::from(a.drives.count),
        format!(
            "{} / {} / {} / {}",
            inv.transports.len(),
            inv.storage.len(),
            inv.import_export.len(),
            inv.drives.len()
        ),
    );
    let barcodes: Vec<&str> = inv.all().filter_map(|e| e.barcode.as_deref()).collect();
    let unique: HashSet<&str> = barcodes.iter().copied().collect();
    report.check(
        "inventory: barcodes unique",
        unique.len() == barcodes.len(),
        format!("{} barcodes", barcodes.len()),
    );
    let lost: Vec<u16> = inv
        .drives
        .iter()
        .filter(|d| d.full && d.source_address.is_none())
        .map(|d| d.number)
        .collect();
    report.check(
        "inventory: loaded drives know their home slot",
        lost.is_empty(),
        format!("{lost:?}"),
    );
    let serials = inv
        .drives
        .iter()
        .filter(|d| d.drive_serial.is_some())
        .count();
    report.lines.push((
        if serials == inv.drives.len() {
            "PASS"
        } else {
            "UNSUP"
        },
        "inventory: drive serials (DVCID)".into(),
        format!("{serials} of {}", inv.drives.len()),
    ));
}

fn read_only_drive_checks(report: &mut Report, drive: &mut dyn TapeDrive, loaded: bool) {
    let status = report.record("drive: status", drive.status(), |s| {
        format!(
            "ready={} wp={} bot={} block_size={} density={:#04x}",
            s.ready, s.write_protected, s.bot, s.block_size, s.density_code
        )
    });
    let ready = status.is_some_and(|s| s.ready);
    report.check(
        "drive: ready matches the changer",
        ready == loaded,
        format!("drive ready={ready}, changer full={loaded}"),
    );
    if !ready {
        return;
    }
    report.record("drive: TapeAlert flags", drive.tape_alerts(), |a| {
        if a.is_empty() {
            "none set".into()
        } else {
            a.iter()
                .map(|x| format!("{} {}", x.flag, x.name))
                .collect::<Vec<_>>()
                .join(", ")
        }
    });
    report.record(
        "drive: MAM volume identifier / barcode",
        drive.read_attribute(0, 0x0806),
        |a| {
            a.as_ref()
                .map_or_else(|| "absent".into(), tape_scsi::mam::attribute_text)
        },
    );
    report.record("drive: capacity", drive.capacity(), |c| {
        format!("{} of {} bytes remaining", c.remaining, c.maximum)
    });
    let r = conformance::run(drive, &conformance::Options::default());
    report.conformance("conformance (read-only): ", &r);
}

fn scratch(
    report: &mut Report,
    changer: &mut ScsiChanger<Box<dyn ScsiTransport>>,
    inv: &Inventory,
    args: &Args,
    slot: u16,
    open_drive: &dyn Fn(u16) -> Result<Box<dyn TapeDrive>, Error>,
) -> anyhow::Result<()> {
    let n = args.drive_number;
    let Some(s) = inv.slot(slot) else {
        bail!("--scratch-slot {slot}: the library has no such slot");
    };
    let drive = inv.drive(n).context("no such drive")?;
    let in_drive = drive.full && drive.source_slot == Some(slot);
    if drive.full && !in_drive {
        bail!(
            "drive {n} holds another cartridge (from slot {:?}); unload it first",
            drive.source_slot
        );
    }
    if !in_drive {
        if !s.full {
            bail!("--scratch-slot {slot} is empty");
        }
        if report
            .record(
                format!("scratch: load slot {slot} into drive {n}"),
                changer.load(slot, n),
                |_| String::new(),
            )
            .is_none()
        {
            return Ok(());
        }
    }
    let barcode = s
        .barcode
        .clone()
        .or_else(|| drive.barcode.clone())
        .unwrap_or_else(|| "?".into());
    {
        let Some(mut d) = report.record("scratch: open drive", open_drive(n), |d| d.name()) else {
            return Ok(());
        };
        report.record("scratch: drive load", d.load(), |_| {
            format!("cartridge {barcode}")
        });
        let opts = conformance::Options {
            write: true,
            partition: args.partition,
            ..conformance::Options::default()
        };
        let r = conformance::run(&mut *d, &opts);
        report.conformance("conformance (write): ", &r);
        report.record("scratch: drive unload", d.unload(), |_| String::new());
    }
    report.record(
        format!("scratch: return cartridge to slot {slot}"),
        changer.unload(n, Some(slot)),
        |s| format!("slot {s}"),
    );
    Ok(())
}

fn finish(report: Report) -> anyhow::Result<()> {
    let width = report.lines.iter().map(|l| l.1.len()).max().unwrap_or(0);
    for (tag, name, detail) in &report.lines {
        println!("{tag:<5} {name:<width$}  {detail}");
    }
    let failed = report.failed();
    println!("hw-smoke: {} checks, {failed} failed", report.lines.len());
    if failed > 0 {
        bail!("hw-smoke: {failed} checks failed");
    }
    Ok(())
}
