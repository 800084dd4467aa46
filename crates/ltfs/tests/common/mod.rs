//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)] // test helpers: a failure is a test failure

use std::path::PathBuf;

use tape_scsi::{
    Capacity, DriveStatus, Error, MamAttribute, Position, ReadOutcome, Space, TapeDrive,
    WriteOutcome,
};

/// The shared fixtures directory, or `None` (after printing SKIP) when it is absent.
/// Under `CI=true` its absence fails the test.
pub fn shared() -> Option<PathBuf> {
    let dir = std::env::var_os("TAPEBACKUP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("../shared not found at {} (required in CI)", dir.display());
    }
    eprintln!("SKIP: ../shared not found");
    None
}

/// The kinds of objects on a partition from block 0 to end of data: `R` record, `F`
/// filemark, then `E`.
pub fn layout(drive: &mut dyn TapeDrive, partition: u8) -> String {
    drive
        .locate(Position {
            partition,
            block: 0,
        })
        .unwrap();
    let mut buf = vec![0u8; 16 << 20];
    let mut out = String::new();
    loop {
        match drive.read_record(&mut buf).unwrap() {
            ReadOutcome::Record(_) => out.push('R'),
            ReadOutcome::Filemark => out.push('F'),
            ReadOutcome::EndOfData => {
                out.push('E');
                return out;
            }
        }
    }
}

/// Wraps a drive; after `writes` successful write operations every write fails, like a
/// power cut.
pub struct CrashAfter<'a> {
    pub inner: &'a mut dyn TapeDrive,
    pub writes: u64,
}

impl CrashAfter<'_> {
    fn write_allowed(&mut self) -> Result<(), Error> {
        if self.writes == 0 {
            return Err(Error::Io {
                path: "crash".into(),
                source: std::io::Error::other("simulated crash"),
            });
        }
        self.writes -= 1;
        Ok(())
    }
}

impl TapeDrive for CrashAfter<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn status(&mut self) -> Result<DriveStatus, Error> {
        self.inner.status()
    }
    fn load(&mut self) -> Result<(), Error> {
        self.inner.load()
    }
    fn unload(&mut self) -> Result<(), Error> {
        self.inner.unload()
    }
    fn set_medium_lock(&mut self, locked: bool) -> Result<(), Error> {
        self.inner.set_medium_lock(locked)
    }
    fn rewind(&mut self) -> Result<(), Error> {
        self.inner.rewind()
    }
    fn set_block_size(&mut self, size: u32) -> Result<(), Error> {
        self.inner.set_block_size(size)
    }
    fn read_record(&mut self, buf: &mut [u8]) -> Result<ReadOutcome, Error> {
        self.inner.read_record(buf)
    }
    fn write_record(&mut self, data: &[u8]) -> Result<WriteOutcome, Error> {
        self.write_allowed()?;
        self.inner.write_record(data)
    }
    fn write_filemarks(&mut self, count: u32) -> Result<WriteOutcome, Error> {
        self.write_allowed()?;
        self.inner.write_filemarks(count)
    }
    fn space(&mut self, how: Space) -> Result<(), Error> {
        self.inner.space(how)
    }
    fn position(&mut self) -> Result<Position, Error> {
        self.inner.position()
    }
    fn locate(&mut self, to: Position) -> Result<(), Error> {
        self.inner.locate(to)
    }
    fn partition_count(&mut self) -> Result<u8, Error> {
        self.inner.partition_count()
    }
    fn create_two_partitions(&mut self, first_partition_bytes: u64) -> Result<(), Error> {
        self.inner.create_two_partitions(first_partition_bytes)
    }
    fn read_attribute(&mut self, partition: u8, id: u16) -> Result<Option<MamAttribute>, Error> {
        self.inner.read_attribute(partition, id)
    }
    fn write_attribute(&mut self, partition: u8, attribute: &MamAttribute) -> Result<(), Error> {
        self.write_allowed()?;
        self.inner.write_attribute(partition, attribute)
    }
    fn capacity(&mut self) -> Result<Capacity, Error> {
        self.inner.capacity()
    }
}

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// True when `got` is what salvage can recover from a session that wrote `order`: whole
/// files written in a row from a file boundary, the last maybe cut short.
pub fn is_salvaged_run(order: &[(String, Vec<u8>)], got: &[u8]) -> bool {
    let mut all = Vec::new();
    let mut starts = Vec::new();
    for (_, d) in order {
        starts.push(all.len());
        all.extend_from_slice(d);
    }
    !got.is_empty() && starts.iter().any(|&s| all[s..].starts_with(got))
}
