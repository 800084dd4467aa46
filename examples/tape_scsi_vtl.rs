//! A virtual tape library used on its own: create it, load a cartridge with the same SCSI
//! changer code that drives real autoloaders, write and read records through the
//! `TapeDrive` trait, then run the drive conformance suite on a second drive.
//!
//! Run: `cargo run -p examples --example tape_scsi_vtl [DIR]` (default: a fresh directory
//! under the system temp dir, removed at the end).

use anyhow::Context as _;
use tape_scsi::conformance;
use tape_scsi::{Changer, LibraryOptions, ReadOutcome, ScsiChanger, TapeDrive, VirtualLibrary};

fn main() -> anyhow::Result<()> {
    let (dir, temporary) = match std::env::args_os().nth(1) {
        Some(d) => (std::path::PathBuf::from(d), false),
        None => (
            std::env::temp_dir().join(format!("tape_scsi_vtl-{}", std::process::id())),
            true,
        ),
    };
    let options = LibraryOptions {
        slots: 4,
        drives: 2,
        ie: 1,
        capacity: 64 << 20,
        reserve: None,
        barcode_prefix: "EX".to_owned(),
        cartridges: Some(3),
    };
    let library = VirtualLibrary::create(&dir, &options)
        .with_context(|| format!("creating a virtual library in {}", dir.display()))?;

    // The changer: the SCSI changer code over the SMC emulator.
    let mut changer = ScsiChanger::new(library.changer());
    changer.load(1, 0)?;
    changer.load(2, 1)?;
    print!("{}", changer.inventory()?.mtx_status(&changer.name()));

    // Drive 0: write two files of records, read them back.
    let mut drive = library.drive(0)?;
    for (i, text) in ["first record", "second record", "third record"]
        .iter()
        .enumerate()
    {
        drive.write_record(text.as_bytes())?;
        if i == 1 {
            drive.write_filemarks(1)?;
        }
    }
    drive.write_filemarks(1)?;
    drive.rewind()?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match drive.read_record(&mut buf)? {
            ReadOutcome::Record(n) => println!("record: {}", String::from_utf8_lossy(&buf[..n])),
            ReadOutcome::Filemark => println!("filemark"),
            ReadOutcome::EndOfData => break,
        }
    }
    drive.unload()?;
    changer.unload(0, None)?;

    // Drive 1: the conformance suite that also runs on real drives (it overwrites the tape).
    let mut drive1 = library.drive(1)?;
    let report = conformance::run(
        &mut drive1,
        &conformance::Options {
            write: true,
            partition: true,
            max_record: 256 * 1024,
        },
    );
    println!("{report}");
    drop(drive1);

    if temporary {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    anyhow::ensure!(report.passed(), "conformance failures");
    Ok(())
}
