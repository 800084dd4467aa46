//! The raw on-tape format (docs/RAW-FORMAT.md) on its own: format a cartridge of a virtual
//! library whose drives cannot partition (like LTO-4 or tgt), write two tape files, append
//! a third in a second session, then list them and read one back — with no READ POSITION
//! or LOCATE, only filemarks.
//!
//! Run: `cargo run -p examples --example tapebackup_raw_format [DIR]` (a temporary
//! directory when DIR is not given; with DIR the library is left there to look at).

use std::io::Read;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use tape_scsi::{
    Changer, DriveCapabilities, LibraryOptions, ScsiChanger, TapeDrive, VirtualLibrary,
};
use tapebackup::workflow::raw::{
    DEFAULT_BLOCK_SIZE, FileKind, Label, NoProgress, OnEarlyWarning, RawReader, RawWriter,
};

fn main() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = match std::env::args_os().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => tmp.path().join("vtl"),
    };
    let library = VirtualLibrary::create(
        &dir,
        &LibraryOptions {
            slots: 2,
            drives: 1,
            capacity: 64 << 20,
            ..LibraryOptions::default()
        },
    )
    .with_context(|| format!("creating a virtual library in {}", dir.display()))?;
    library.set_capabilities(DriveCapabilities {
        partitions: false,
        locate: false,
    })?;
    let mut changer = ScsiChanger::new(library.changer());
    changer.load(1, 0)?;
    let mut drive = library.drive(0)?;
    drive.load()?;
    println!(
        "drive: {} (partitioning: {:?})",
        drive.name(),
        drive
            .create_two_partitions(1 << 20)
            .err()
            .map(|e| e.to_string())
    );

    let cancel = AtomicBool::new(false);
    let label = Label {
        volume_uuid: "5f0c3d9e-8a41-4b7e-9d2c-1e6f7a8b9c0d".into(),
        barcode: "VT0001L5".into(),
        created_at: 1_763_769_600,
        writer: "tapebackup example".into(),
        block_size: DEFAULT_BLOCK_SIZE,
    };
    let payloads: Vec<Vec<u8>> = (0..3u8)
        .map(|i| {
            (0..(300_000 + usize::from(i) * 70_000))
                .map(|j| (j % 251) as u8 ^ i)
                .collect()
        })
        .collect();
    let kind = |i: usize| FileKind::Pack {
        pack_id: i as i64 + 1,
        name: format!("example-{i}"),
        pack_length: payloads[i].len() as u64,
        offset: 0,
    };

    // Session 1: label + two tape files.
    let mut writer = RawWriter::format(&mut drive, label.clone())?;
    for (i, payload) in payloads.iter().enumerate().take(2) {
        let w = writer.write_file(
            kind(i),
            &mut payload.as_slice(),
            OnEarlyWarning::Cut,
            &NoProgress,
            &cancel,
        )?;
        println!("session 1: wrote tape file {} ({} bytes)", w.file, w.length);
    }
    drop(writer);

    // Session 2: find the end by counting tape files, append one more.
    let mut writer = RawWriter::append(&mut drive, Some(&label.volume_uuid), 1)?;
    let w = writer.write_file(
        kind(2),
        &mut payloads[2].as_slice(),
        OnEarlyWarning::Cut,
        &NoProgress,
        &cancel,
    )?;
    println!(
        "session 2: appended tape file {} ({} bytes)",
        w.file, w.length
    );
    drop(writer);

    // Read back: the label, every header, and file 2 checked against its trailer.
    let mut reader = RawReader::open(&mut drive)?;
    println!("label: {:?}", reader.label());
    for h in reader.files()? {
        println!("tape file {}: {:?}", h.file, h.kind);
    }
    reader.seek_file(2)?.context("tape file 2 is missing")?;
    let mut back = Vec::new();
    reader.data().read_to_end(&mut back)?;
    anyhow::ensure!(back == payloads[1], "tape file 2 differs");
    println!("tape file 2 read back: {} bytes, identical", back.len());
    drop(reader);

    drive.unload()?;
    drop(drive);
    changer.unload(0, None)?;
    if std::env::args_os().nth(1).is_some() {
        println!("library left in {}", dir.display());
    }
    Ok(())
}
