//! [`MemoryDrive`]: a tape drive held in memory, for tests, examples and doctests.

use std::collections::HashMap;

use tape_scsi::{
    Capacity, DriveStatus, Error, MamAttribute, Position, ReadOutcome, Space, TapeDrive,
    WriteOutcome,
};

#[derive(Debug, Clone)]
enum Object {
    Record(Vec<u8>),
    Filemark,
}

/// A two-partition tape drive in memory, with st semantics: writing truncates what follows,
/// early warning before the end of each partition, end of medium after it.
///
/// Made for tests and examples of code written against [`TapeDrive`]; it also injects
/// faults: [`MemoryDrive::fail_writes_after`] makes every write after the n-th fail, like
/// a power cut in the middle of a session. For a drive that persists on disk, use the
/// virtual library of `tape_scsi`.
#[derive(Debug, Clone)]
pub struct MemoryDrive {
    total: u64,
    partitions: Vec<Vec<Object>>,
    capacity: Vec<u64>,
    used: Vec<u64>,
    position: Position,
    attributes: HashMap<(u8, u16), MamAttribute>,
    early_warning_reserve: u64,
    writes_left: Option<u64>,
    write_protected: bool,
}

impl MemoryDrive {
    /// A drive with an unformatted cartridge of `capacity` bytes (one partition).
    pub fn new(capacity: u64) -> MemoryDrive {
        MemoryDrive {
            total: capacity,
            partitions: vec![Vec::new()],
            capacity: vec![capacity],
            used: vec![0],
            position: Position::default(),
            attributes: HashMap::new(),
            early_warning_reserve: capacity / 50,
            writes_left: None,
            write_protected: false,
        }
    }

    /// Sets how many bytes before the end of a partition early warning starts.
    pub fn set_early_warning_reserve(&mut self, bytes: u64) {
        self.early_warning_reserve = bytes;
    }

    /// After `count` more successful writes (records or filemark writes), every write fails
    /// with an I/O error until this is called with `None`.
    pub fn fail_writes_after(&mut self, count: Option<u64>) {
        self.writes_left = count;
    }

    /// Marks the cartridge write protected.
    pub fn set_write_protected(&mut self, on: bool) {
        self.write_protected = on;
    }

    fn name_str(&self) -> String {
        "memory drive".to_string()
    }

    fn part(&self) -> usize {
        usize::from(self.position.partition)
    }

    fn before_write(&mut self, bytes: u64) -> Result<WriteOutcome, Error> {
        if self.write_protected {
            return Err(Error::WriteProtected {
                device: self.name_str(),
            });
        }
        if let Some(left) = self.writes_left.as_mut() {
            if *left == 0 {
                return Err(Error::Io {
                    path: "memory drive".into(),
                    source: std::io::Error::other("injected write failure"),
                });
            }
            *left -= 1;
        }
        let p = self.part();
        let block = self.position.block as usize;
        // Writing truncates everything from here on.
        let from = block.min(self.partitions[p].len());
        let removed: u64 = self.partitions[p]
            .drain(from..)
            .map(|o| match o {
                Object::Record(r) => r.len() as u64,
                Object::Filemark => 0,
            })
            .sum();
        self.used[p] -= removed;
        if self.used[p] + bytes > self.capacity[p] {
            return Err(Error::EndOfMedium {
                device: self.name_str(),
            });
        }
        self.used[p] += bytes;
        Ok(
            if self.used[p] + self.early_warning_reserve > self.capacity[p] {
                WriteOutcome::EarlyWarning
            } else {
                WriteOutcome::Written
            },
        )
    }
}

impl TapeDrive for MemoryDrive {
    fn name(&self) -> String {
        self.name_str()
    }

    fn status(&mut self) -> Result<DriveStatus, Error> {
        let p = self.part();
        Ok(DriveStatus {
            ready: true,
            write_protected: self.write_protected,
            bot: self.position.block == 0,
            eod: self.position.block as usize == self.partitions[p].len(),
            eot: self.used[p] + self.early_warning_reserve > self.capacity[p],
            block_size: 0,
            density_code: 0,
            partition: Some(self.position.partition),
            block: Some(self.position.block),
        })
    }

    fn load(&mut self) -> Result<(), Error> {
        self.position = Position::default();
        Ok(())
    }

    fn unload(&mut self) -> Result<(), Error> {
        self.position = Position::default();
        Ok(())
    }

    fn set_medium_lock(&mut self, _locked: bool) -> Result<(), Error> {
        Ok(())
    }

    fn rewind(&mut self) -> Result<(), Error> {
        self.position = Position::default();
        Ok(())
    }

    fn set_block_size(&mut self, size: u32) -> Result<(), Error> {
        if size == 0 {
            Ok(())
        } else {
            Err(Error::Unsupported {
                device: self.name_str(),
                what: "fixed block mode",
            })
        }
    }

    fn read_record(&mut self, buf: &mut [u8]) -> Result<ReadOutcome, Error> {
        let p = self.part();
        let Some(obj) = self.partitions[p].get(self.position.block as usize) else {
            return Ok(ReadOutcome::EndOfData);
        };
        self.position.block += 1;
        match obj {
            Object::Filemark => Ok(ReadOutcome::Filemark),
            Object::Record(r) if r.len() > buf.len() => Err(Error::RecordTooLong {
                device: "memory drive".into(),
                record_len: r.len(),
                buffer_len: buf.len(),
            }),
            Object::Record(r) => {
                buf[..r.len()].copy_from_slice(r);
                Ok(ReadOutcome::Record(r.len()))
            }
        }
    }

    fn write_record(&mut self, data: &[u8]) -> Result<WriteOutcome, Error> {
        let outcome = self.before_write(data.len() as u64)?;
        let p = self.part();
        self.partitions[p].push(Object::Record(data.to_vec()));
        self.position.block += 1;
        Ok(outcome)
    }

    fn write_filemarks(&mut self, count: u32) -> Result<WriteOutcome, Error> {
        let mut outcome = WriteOutcome::Written;
        for _ in 0..count {
            outcome = self.before_write(0)?;
            let p = self.part();
            self.partitions[p].push(Object::Filemark);
            self.position.block += 1;
        }
        Ok(outcome)
    }

    fn space(&mut self, how: Space) -> Result<(), Error> {
        let p = self.part();
        let objs = &self.partitions[p];
        let stop = |what| Error::PositionStoppedEarly {
            device: "memory drive".into(),
            what,
        };
        match how {
            Space::EndOfData => {
                self.position.block = objs.len() as u64;
                Ok(())
            }
            Space::Records(n) if n >= 0 => {
                for _ in 0..n {
                    match objs.get(self.position.block as usize) {
                        None => return Err(stop("end of data")),
                        Some(Object::Filemark) => {
                            self.position.block += 1;
                            return Err(stop("filemark"));
                        }
                        Some(Object::Record(_)) => self.position.block += 1,
                    }
                }
                Ok(())
            }
            Space::Records(n) => {
                for _ in 0..n.unsigned_abs() {
                    if self.position.block == 0 {
                        return Err(stop("beginning of partition"));
                    }
                    if let Some(Object::Filemark) = objs.get(self.position.block as usize - 1) {
                        self.position.block -= 1;
                        return Err(stop("filemark"));
                    }
                    self.position.block -= 1;
                }
                Ok(())
            }
            Space::Filemarks(n) if n >= 0 => {
                for _ in 0..n {
                    loop {
                        match objs.get(self.position.block as usize) {
                            None => return Err(stop("end of data")),
                            Some(o) => {
                                self.position.block += 1;
                                if matches!(o, Object::Filemark) {
                                    break;
                                }
                            }
                        }
                    }
                }
                Ok(())
            }
            Space::Filemarks(n) => {
                for _ in 0..n.unsigned_abs() {
                    loop {
                        if self.position.block == 0 {
                            return Err(stop("beginning of partition"));
                        }
                        self.position.block -= 1;
                        if matches!(
                            objs.get(self.position.block as usize),
                            Some(Object::Filemark)
                        ) {
                            break;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn position(&mut self) -> Result<Position, Error> {
        Ok(self.position)
    }

    fn locate(&mut self, to: Position) -> Result<(), Error> {
        let Some(objs) = self.partitions.get(usize::from(to.partition)) else {
            return Err(Error::PositionStoppedEarly {
                device: self.name_str(),
                what: "no such partition",
            });
        };
        if to.block as usize > objs.len() {
            self.position = Position {
                partition: to.partition,
                block: objs.len() as u64,
            };
            return Err(Error::PositionStoppedEarly {
                device: self.name_str(),
                what: "end of data",
            });
        }
        self.position = to;
        Ok(())
    }

    fn partition_count(&mut self) -> Result<u8, Error> {
        Ok(self.partitions.len() as u8)
    }

    fn create_two_partitions(&mut self, first_partition_bytes: u64) -> Result<(), Error> {
        let first = first_partition_bytes.min(self.total / 2);
        self.partitions = vec![Vec::new(), Vec::new()];
        self.capacity = vec![first, self.total - first];
        self.used = vec![0, 0];
        self.position = Position::default();
        self.attributes.clear();
        Ok(())
    }

    fn read_attribute(&mut self, partition: u8, id: u16) -> Result<Option<MamAttribute>, Error> {
        Ok(self.attributes.get(&(partition, id)).cloned())
    }

    fn write_attribute(&mut self, partition: u8, attribute: &MamAttribute) -> Result<(), Error> {
        self.attributes
            .insert((partition, attribute.id), attribute.clone());
        Ok(())
    }

    fn capacity(&mut self) -> Result<Capacity, Error> {
        let p = self.part();
        Ok(Capacity {
            remaining: self.capacity[p]
                .saturating_sub(self.used[p])
                .saturating_sub(self.early_warning_reserve),
            maximum: self.capacity[p],
        })
    }
}
