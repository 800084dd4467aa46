//! The `ltfs` crate on its own: format a virtual cartridge, write files, see where each one
//! landed on tape, read them back, check the volume and list its index generations.
//!
//!     cargo run -p examples --example ltfs_roundtrip [FILE...]
//!     cargo run -p examples --example ltfs_roundtrip -- --read CARTRIDGE_DIR
//!
//! With `--read`, it lists an existing cartridge directory instead (for example a copy of
//! ../shared/fixtures/ltfs/reference-tape0, written by the reference LTFS implementation).

use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};
use ltfs::{FileOptions, FormatOptions, Silent, Volume, WriterOptions};
use tape_scsi::{CartridgeOptions, VirtualDrive};

fn list(volume: &Volume<'_>) {
    println!(
        "volume {:?} (barcode {}), generation {}, consistent: {}",
        volume.volume_name(),
        volume.barcode(),
        volume.index().generation,
        volume.is_consistent()
    );
    for (path, file) in volume.index().root.walk_files() {
        match &file.symlink {
            Some(target) => println!("  {path} -> {target}"),
            None => {
                let at: Vec<String> = file
                    .extents
                    .iter()
                    .map(|e| format!("p{} b{} +{}", e.partition, e.start_block, e.byte_count))
                    .collect();
                println!("  {path}: {} bytes [{}]", file.length, at.join(", "));
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--read") {
        let Some(dir) = args.get(1) else {
            bail!("usage: ltfs_roundtrip --read CARTRIDGE_DIR");
        };
        let mut drive = VirtualDrive::open_cartridge(Path::new(dir))?;
        let volume = Volume::open(&mut drive)?;
        list(&volume);
        return Ok(());
    }

    let tmp = tempfile::tempdir()?;
    let cart = tmp.path().join("cartridge");
    let mut drive = VirtualDrive::create_cartridge(
        &cart,
        &CartridgeOptions {
            capacity: 256 << 20,
            reserve: None,
        },
    )?;
    let volume = Volume::format(&mut drive, &FormatOptions::new("DEMO01"))?;
    let mut writer = volume.into_writer(WriterOptions::default())?;
    let cancel = AtomicBool::new(false);

    // The files to write: the ones named on the command line, or two made up here.
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    for a in &args {
        let data = std::fs::read(a).with_context(|| format!("reading {a}"))?;
        let name = Path::new(a)
            .file_name()
            .and_then(|n| n.to_str())
            .context("file name")?;
        inputs.push((format!("files/{name}"), data));
    }
    if inputs.is_empty() {
        inputs.push(("hello.txt".into(), b"hello, tape\n".to_vec()));
        inputs.push((
            "data/Grüße/big.bin".into(),
            (0..1_300_000u32).map(|i| (i % 251) as u8).collect(),
        ));
    }
    for (path, data) in &inputs {
        let mut src = BufReader::new(&data[..]);
        let w = writer.write_file(path, &mut src, &FileOptions::default(), &Silent, &cancel)?;
        println!("wrote {path}: {} bytes, extents {:?}", w.length, w.extents);
    }
    writer.symlink("latest", &inputs[0].0)?;
    writer.finish()?;

    // Read back from the cartridge directory, as another process would.
    drop(drive);
    let mut drive = VirtualDrive::open_cartridge(&cart)?;
    let mut volume = Volume::open(&mut drive)?;
    list(&volume);
    for (path, data) in &inputs {
        let mut back = Vec::new();
        volume.open_file(path)?.read_to_end(&mut back)?;
        anyhow::ensure!(&back == data, "{path} read back differently");
    }
    println!("all files read back byte-exact");
    drop(volume);
    let report = ltfs::check(&mut drive)?;
    println!("check: {} problem(s)", report.problems.len());
    for g in ltfs::generations(&mut drive)? {
        println!(
            "generation {} at partition {} block {} ({} files)",
            g.generation, g.location.partition, g.location.block, g.files
        );
    }
    Ok(())
}
