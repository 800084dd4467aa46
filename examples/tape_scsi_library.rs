//! A library's inventory, as `mtx status` prints it, and one load/unload cycle.
//!
//!     cargo run -p examples --example tape_scsi_library                 # temporary virtual library
//!     cargo run -p examples --example tape_scsi_library -- /dev/sg3     # a real changer (read-only)
//!
//! With a real changer it only reads; with the virtual library it also moves a cartridge
//! into drive 0, writes and reads a record, and puts it back.

use tape_scsi::{
    Changer, LibraryOptions, ReadOutcome, ScsiChanger, SgDevice, TapeDrive, VirtualLibrary,
};

fn main() -> anyhow::Result<()> {
    if let Some(sg) = std::env::args().nth(1) {
        for d in tape_scsi::discover()? {
            println!(
                "{} {:?} {} {} serial={:?} sg={:?} tape={:?}",
                d.hctl, d.kind, d.vendor, d.model, d.serial, d.sg, d.tape
            );
        }
        let mut changer = ScsiChanger::new(SgDevice::open(&sg)?);
        let inq = changer.inquiry()?;
        println!("changer: {} {} {}", inq.vendor, inq.product, inq.revision);
        print!("{}", changer.inventory()?.mtx_status(&sg));
        return Ok(());
    }

    let dir = std::env::temp_dir().join(format!("tape-scsi-example-{}", std::process::id()));
    let options = LibraryOptions {
        slots: 6,
        drives: 2,
        ie: 1,
        capacity: 16 << 20,
        ..LibraryOptions::default()
    };
    let library = VirtualLibrary::create(&dir, &options)?;
    let mut changer = ScsiChanger::new(library.changer());
    print!("{}", changer.inventory()?.mtx_status("vtl"));

    changer.load(2, 0)?;
    {
        let mut drive = library.drive(0)?;
        drive.load()?;
        drive.write_record(b"written through the TapeDrive trait")?;
        drive.write_filemarks(1)?;
        drive.rewind()?;
        let mut buf = vec![0u8; 1024];
        if let ReadOutcome::Record(n) = drive.read_record(&mut buf)? {
            println!("read back: {}", String::from_utf8_lossy(&buf[..n]));
        }
        drive.unload()?;
    }
    let slot = changer.unload(0, None)?;
    println!("cartridge returned to slot {slot}");
    print!("{}", changer.inventory()?.mtx_status("vtl"));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
