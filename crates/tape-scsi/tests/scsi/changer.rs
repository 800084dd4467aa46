//! ScsiChanger over replayed captures (compared with `mtx status` taken at the same
//! moment) and over a scripted library (paging, retries, quirks, errors).

use std::time::Duration;

use tape_scsi::scsi::smc::{DeviceIdentifier, ElementStatus, VolumeTag, encode_element_status};
use tape_scsi::{
    Changer, Completion, DataDirection, ElementType, Error, RetryPolicy, ScsiChanger,
    ScsiTransport, SenseKey,
};

use crate::fixtures::{Replay, check_condition, good, scsi_fixtures};

/// mtx pads barcodes and prints `:VolumeTag=` with blanks for empty slots; we trim.
fn normalize(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            let l = l.trim_end();
            l.strip_suffix(":VolumeTag=").unwrap_or(l).to_owned()
        })
        .collect()
}

#[test]
fn inventory_from_captures_matches_mtx_status() {
    let Some(dir) = scsi_fixtures() else { return };
    for (lib, sg) in [("tgt", "/dev/sg3"), ("mhvtl", "/dev/sg2")] {
        for state in ["E", "L"] {
            let mut changer = ScsiChanger::new(Replay::new(&dir.join(lib), state))
                .with_retry(RetryPolicy::none());
            let inv = changer.inventory().unwrap();
            let expected = std::fs::read_to_string(
                dir.join(lib).join(format!("state_{state}.mtx_status.txt")),
            )
            .unwrap();
            assert_eq!(
                normalize(&inv.mtx_status(sg)),
                normalize(&expected),
                "{lib} state {state}"
            );
            assert_eq!(inv.transports.len(), 1);
            assert_eq!(inv.storage.len(), 8);
            assert_eq!(inv.import_export.len(), 2);
            assert_eq!(inv.drives.len(), 2);
            assert_eq!(
                inv.drives[0].drive_serial.as_deref(),
                Some("DRV00001"),
                "{lib}"
            );
            assert!(inv.drives.iter().all(|d| d.installed));
        }
    }
}

#[test]
fn load_and_unload_issue_the_right_move_medium() {
    let Some(dir) = scsi_fixtures() else { return };
    let mut changer =
        ScsiChanger::new(Replay::new(&dir.join("tgt"), "E")).with_retry(RetryPolicy::none());
    changer.load(2, 1).unwrap();
    // Transport 100, slot 2 = element 1001, drive 1 = element 501.
    assert_eq!(changer.transport_mut().moves, vec![(100, 1001, 501)]);
    // Slot 6 is empty in state E: refused before any MOVE MEDIUM is sent.
    assert!(matches!(
        changer.load(6, 0),
        Err(Error::SourceEmpty { address: 1005, .. })
    ));
    assert_eq!(changer.transport_mut().moves.len(), 1);
    assert!(matches!(
        changer.load(99, 0),
        Err(Error::NoSuchElement { .. })
    ));
    assert!(matches!(
        changer.unload(0, None),
        Err(Error::SourceEmpty { address: 500, .. })
    ));

    // State L: drive 0 holds slot 1's cartridge; unload goes home to slot 1.
    let mut changer =
        ScsiChanger::new(Replay::new(&dir.join("mhvtl"), "L")).with_retry(RetryPolicy::none());
    assert_eq!(changer.unload(0, None).unwrap(), 1);
    assert_eq!(changer.transport_mut().moves, vec![(1, 500, 1000)]);
    assert_eq!(changer.unload(0, Some(7)).unwrap(), 7);
    assert!(matches!(
        changer.unload(0, Some(2)),
        Err(Error::DestinationFull { address: 1001, .. })
    ));
    changer.transfer(2, 9).unwrap();
    assert_eq!(changer.transport_mut().moves.last(), Some(&(1, 1001, 10)));
}

#[test]
fn move_medium_errors_become_typed() {
    let Some(dir) = scsi_fixtures() else { return };
    type Case = (&'static str, &'static str, fn(&Error) -> bool);
    let cases: [Case; 4] = [
        ("tgt", "changer_move_dest_full.sense.bin", |e| {
            matches!(e, Error::DestinationFull { address: 1002, .. })
        }),
        ("mhvtl", "changer_move_src_empty.sense.bin", |e| {
            matches!(e, Error::SourceEmpty { address: 1000, .. })
        }),
        ("mhvtl", "changer_move_invalid_element.sense.bin", |e| {
            matches!(e, Error::NoSuchElement { .. })
        }),
        // tgt answers an invalid address with 24/00 and a field pointer-free sense.
        ("tgt", "changer_move_invalid_element.sense.bin", |e| {
            matches!(e, Error::IllegalRequest { asc: 0x24, .. })
        }),
    ];
    for (lib, sense, ok) in cases {
        let mut replay = Replay::new(&dir.join(lib), "E");
        replay.move_sense = Some(sense.into());
        let mut changer = ScsiChanger::new(replay).with_retry(RetryPolicy::none());
        let err = changer.move_medium(1000, 1002).unwrap_err();
        assert!(ok(&err), "{lib}/{sense}: {err:?}");
    }
}

/// A scripted library: `slots` storage elements from 1000, two drives from 500, one I/E
/// slot at 10, transport at 1. Serves READ ELEMENT STATUS from the encoder, honouring only
/// 16 bits of the allocation length, the start address and the element count.
#[derive(Debug)]
struct Scripted {
    elements: Vec<ElementStatus>,
    /// Answer this many commands with NOT READY 04/01 first.
    becoming_ready: u32,
    /// Reject DVCID with ILLEGAL REQUEST 24/00.
    reject_dvcid: bool,
    res_commands: Vec<(u16, u16, u32)>,
}

fn element(t: ElementType, address: u16) -> ElementStatus {
    ElementStatus {
        element_type: t,
        address,
        full: false,
        except: false,
        access: true,
        imported: false,
        asc: 0,
        ascq: 0,
        source: None,
        medium_type: 0,
        volume_tag: None,
        alternate_tag: None,
        identifier: None,
        truncated: false,
    }
}

impl Scripted {
    fn new(slots: u16) -> Scripted {
        let mut elements = vec![element(ElementType::Transport, 1)];
        for i in 0..slots {
            let mut e = element(ElementType::Storage, 1000 + i);
            if i % 3 == 0 {
                e.full = true;
                e.volume_tag = Some(VolumeTag {
                    barcode: format!("S{i:05}L6"),
                    sequence: Some(0),
                });
            }
            elements.push(e);
        }
        elements.push(element(ElementType::ImportExport, 10));
        for i in 0..2u16 {
            let mut d = element(ElementType::Drive, 500 + i);
            let mut id = b"IBM     ULT3580-TD6     ".to_vec();
            id.extend(format!("SER{i:07}").bytes());
            d.identifier = Some(DeviceIdentifier {
                code_set: 2,
                identifier_type: 1,
                value: id,
            });
            elements.push(d);
        }
        Scripted {
            elements,
            becoming_ready: 0,
            reject_dvcid: false,
            res_commands: Vec::new(),
        }
    }

    fn mode_page(&self) -> Vec<u8> {
        let count = |t| self.elements.iter().filter(|e| e.element_type == t).count() as u16;
        let mut p = vec![0x1D, 0x12];
        for (t, first) in [
            (ElementType::Transport, 1u16),
            (ElementType::Storage, 1000),
            (ElementType::ImportExport, 10),
            (ElementType::Drive, 500),
        ] {
            p.extend(first.to_be_bytes());
            p.extend(count(t).to_be_bytes());
        }
        p.extend([0, 0]);
        let mut out = vec![(3 + p.len()) as u8, 0, 0, 0];
        out.extend(p);
        out
    }
}

fn copy_out(data: DataDirection<'_>, bytes: &[u8]) -> Completion {
    match data {
        DataDirection::FromDevice(buf) => {
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            good(n)
        }
        _ => good(0),
    }
}

impl ScsiTransport for Scripted {
    fn name(&self) -> String {
        "scripted".into()
    }
    fn execute(
        &mut self,
        cdb: &[u8],
        data: DataDirection<'_>,
        _t: Duration,
    ) -> Result<Completion, Error> {
        if self.becoming_ready > 0 {
            self.becoming_ready -= 1;
            return Ok(check_condition(SenseKey::NotReady, 0x04, 0x01));
        }
        match cdb[0] {
            0x00 => Ok(good(0)),
            0x1A => Ok(copy_out(data, &self.mode_page())),
            0xB8 => {
                let dvcid = cdb[6] & 1 != 0;
                if dvcid && self.reject_dvcid {
                    return Ok(check_condition(SenseKey::IllegalRequest, 0x24, 0));
                }
                let Some(t) = ElementType::from_code(cdb[1] & 0x0F) else {
                    return Ok(check_condition(SenseKey::IllegalRequest, 0x24, 0));
                };
                let start = u16::from_be_bytes([cdb[2], cdb[3]]);
                let count = u16::from_be_bytes([cdb[4], cdb[5]]);
                // The 16-bit allocation quirk: only the low 16 bits count.
                let alloc = u32::from_be_bytes([0, 0, cdb[8], cdb[9]]);
                self.res_commands.push((
                    start,
                    count,
                    u32::from_be_bytes([0, cdb[7], cdb[8], cdb[9]]),
                ));
                let chosen: Vec<ElementStatus> = self
                    .elements
                    .iter()
                    .filter(|e| e.element_type == t && e.address >= start)
                    .take(usize::from(count))
                    .cloned()
                    .collect();
                let bytes = encode_element_status(&chosen, cdb[1] & 0x10 != 0, dvcid);
                let n = bytes.len().min(alloc as usize);
                Ok(copy_out(data, &bytes[..n]))
            }
            0xA5 => Ok(good(0)),
            _ => Ok(check_condition(SenseKey::IllegalRequest, 0x20, 0)),
        }
    }
}

#[test]
fn large_library_is_read_in_pages_under_16_bit_allocations() {
    let mut changer = ScsiChanger::new(Scripted::new(700)).with_retry(RetryPolicy::none());
    let inv = changer.inventory().unwrap();
    assert_eq!(inv.storage.len(), 700);
    assert_eq!(inv.storage[699].address, 1699);
    assert_eq!(inv.storage[699].number, 700);
    assert_eq!(inv.import_export[0].number, 701);
    assert_eq!(inv.slot(4).unwrap().barcode.as_deref(), Some("S00003L6"));
    assert_eq!(inv.drive_by_serial("SER0000001").unwrap().number, 1);
    let cmds = &changer.transport_mut().res_commands;
    let storage: Vec<_> = cmds.iter().filter(|(s, _, _)| *s >= 1000).collect();
    assert_eq!(storage.len(), 3, "{storage:?}");
    assert!(
        cmds.iter()
            .all(|(_, count, alloc)| *count <= 256 && *alloc <= 0xFFFF)
    );
}

#[test]
fn becoming_ready_is_retried_within_the_budget() {
    let mut lib = Scripted::new(4);
    lib.becoming_ready = 3;
    let mut changer = ScsiChanger::new(lib).with_retry(RetryPolicy {
        attempts: 4,
        delay: Duration::ZERO,
    });
    changer.test_unit_ready().unwrap();

    let mut lib = Scripted::new(4);
    lib.becoming_ready = 5;
    let mut changer = ScsiChanger::new(lib).with_retry(RetryPolicy {
        attempts: 3,
        delay: Duration::ZERO,
    });
    assert!(matches!(
        changer.test_unit_ready(),
        Err(Error::BecomingReady { attempts: 3, .. })
    ));
}

#[test]
fn dvcid_rejection_falls_back_without_serials() {
    let mut lib = Scripted::new(4);
    lib.reject_dvcid = true;
    let mut changer = ScsiChanger::new(lib).with_retry(RetryPolicy::none());
    let inv = changer.inventory().unwrap();
    assert_eq!(inv.drives.len(), 2);
    assert!(inv.drives.iter().all(|d| d.drive_serial.is_none()));
}

#[test]
fn not_installed_elements_are_listed_but_never_used() {
    let mut lib = Scripted::new(4);
    let d = lib.elements.iter_mut().find(|e| e.address == 501).unwrap();
    d.except = true;
    d.asc = 0x3B;
    d.ascq = 0x1A;
    let mut changer = ScsiChanger::new(lib).with_retry(RetryPolicy::none());
    let inv = changer.inventory().unwrap();
    assert!(!inv.drives[1].installed);
    assert_eq!(
        inv.drives[1].exception_name(),
        Some("data transfer device removed")
    );
    assert!(
        inv.mtx_status("x")
            .contains("Data Transfer Element 1:Empty (not installed)")
    );
    assert!(matches!(
        changer.load(1, 1),
        Err(Error::NoSuchElement { .. })
    ));
    changer.load(1, 0).unwrap();
}
