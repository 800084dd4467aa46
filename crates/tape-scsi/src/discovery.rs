//! Device discovery from sysfs, like `lsscsi -g`, without udev: every SCSI device with
//! its type, vendor, model, revision, serial and its sg, nst and sch nodes.

use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::scsi::inquiry::decode_vpd_serial;

/// What a SCSI device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// Sequential-access device (peripheral type 1): a tape drive.
    Tape,
    /// Medium changer (peripheral type 8).
    Changer,
    /// Anything else, with its peripheral device type.
    Other(u8),
}

/// One SCSI device found in sysfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScsiDevice {
    /// `host:channel:target:lun`.
    pub hctl: String,
    /// Device kind from the peripheral device type.
    pub kind: DeviceKind,
    /// Vendor, trimmed.
    pub vendor: String,
    /// Model, trimmed.
    pub model: String,
    /// Revision, trimmed.
    pub revision: String,
    /// Unit serial number from VPD page 80h (sysfs `vpd_pg80`), when the kernel has it.
    pub serial: Option<String>,
    /// SCSI generic node, e.g. `/dev/sg3`.
    pub sg: Option<PathBuf>,
    /// Non-rewinding tape node, e.g. `/dev/nst0`.
    pub tape: Option<PathBuf>,
    /// Changer node of the Linux ch driver, e.g. `/dev/sch0`.
    pub changer: Option<PathBuf>,
}

/// Scans `/sys` and names nodes under `/dev`.
pub fn discover() -> Result<Vec<ScsiDevice>, Error> {
    discover_in(Path::new("/sys"), Path::new("/dev"))
}

/// Scans the sysfs tree at `sys` (its `bus/scsi/devices` and `class/scsi_generic`,
/// `class/scsi_tape`, `class/scsi_changer`) and names nodes under `dev`. A missing
/// `bus/scsi/devices` (no SCSI support in the kernel) gives an empty list. Sorted by
/// H:C:T:L.
pub fn discover_in(sys: &Path, dev: &Path) -> Result<Vec<ScsiDevice>, Error> {
    let bus = sys.join("bus/scsi/devices");
    let entries = match fs::read_dir(&bus) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::Io { path: bus, source }),
    };
    // Class links: node name -> H:C:T:L of its `device` link.
    let class = |name: &str| class_links(&sys.join("class").join(name));
    let sg_links = class("scsi_generic");
    let tape_links = class("scsi_tape");
    let changer_links = class("scsi_changer");

    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io {
            path: bus.clone(),
            source,
        })?;
        let hctl = entry.file_name().to_string_lossy().into_owned();
        if !is_hctl(&hctl) {
            continue;
        }
        let dir = entry.path();
        let attr = |name: &str| {
            fs::read_to_string(dir.join(name))
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        let pdt = attr("type").parse::<u8>().unwrap_or(0x1F);
        let kind = match pdt {
            1 => DeviceKind::Tape,
            8 => DeviceKind::Changer,
            other => DeviceKind::Other(other),
        };
        let serial = fs::read(dir.join("vpd_pg80"))
            .ok()
            .and_then(|b| decode_vpd_serial(&b).ok())
            .filter(|s| !s.is_empty());
        let node =
            |subdir: &str, links: &[(String, String)], pick: fn(&str) -> bool| -> Option<PathBuf> {
                let mut names = children(&dir, subdir);
                names.extend(
                    links
                        .iter()
                        .filter(|(_, h)| *h == hctl)
                        .map(|(n, _)| n.clone()),
                );
                names.sort();
                names.into_iter().find(|n| pick(n)).map(|n| dev.join(n))
            };
        out.push(ScsiDevice {
            kind,
            vendor: attr("vendor"),
            model: attr("model"),
            revision: attr("rev"),
            serial,
            sg: node("scsi_generic", &sg_links, |n| numbered(n, "sg")),
            tape: node("scsi_tape", &tape_links, |n| numbered(n, "nst")),
            changer: node("scsi_changer", &changer_links, |n| numbered(n, "sch")),
            hctl,
        });
    }
    out.sort_by_key(|d| hctl_key(&d.hctl));
    Ok(out)
}

/// Finds the device with serial number `serial` among `devices` of kind `kind`.
pub fn find_by_serial<'a>(
    devices: &'a [ScsiDevice],
    kind: DeviceKind,
    serial: &str,
) -> Option<&'a ScsiDevice> {
    devices
        .iter()
        .find(|d| d.kind == kind && d.serial.as_deref() == Some(serial))
}

/// Names in `dir/subdir` (new kernels), plus `subdir:NAME` entries of `dir` (old ones).
fn children(dir: &Path, subdir: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join(subdir))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let prefix = format!("{subdir}:");
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.filter_map(|e| e.ok()) {
            if let Some(n) = e.file_name().to_string_lossy().strip_prefix(&prefix) {
                names.push(n.to_owned());
            }
        }
    }
    names
}

/// `(node name, H:C:T:L)` for each entry of a class directory, from its `device` link.
fn class_links(dir: &Path) -> Vec<(String, String)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| {
            let target = fs::read_link(e.path().join("device")).ok()?;
            let hctl = target.file_name()?.to_string_lossy().into_owned();
            Some((e.file_name().to_string_lossy().into_owned(), hctl))
        })
        .collect()
}

fn numbered(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn is_hctl(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn hctl_key(s: &str) -> Vec<u64> {
    s.split(':').map(|p| p.parse().unwrap_or(0)).collect()
}
