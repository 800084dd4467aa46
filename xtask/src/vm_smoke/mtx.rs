//! Parses `mtx status` output: the independent view of the library that our own
//! inventory is checked against.
//!
//! mtx numbers drives from 0 and storage elements from 1, with the import/export elements
//! appended after the ordinary slots (tgt's library: slots 1-8 = addresses 1000-1007,
//! slots 9-10 = I/E addresses 10-11).

use anyhow::{Context, bail};

/// One drive as mtx shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtxDrive {
    /// mtx's drive number (0-based).
    pub index: u32,
    /// A cartridge is in the drive.
    pub full: bool,
    /// mtx slot number the cartridge came from, when the changer knows it.
    pub source_slot: Option<u32>,
    /// Barcode of the loaded cartridge, if any.
    pub barcode: Option<String>,
}

/// One storage or import/export element as mtx shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtxSlot {
    /// mtx's slot number (1-based; I/E slots follow the ordinary ones).
    pub number: u32,
    /// An import/export element.
    pub import_export: bool,
    /// A cartridge is in the slot.
    pub full: bool,
    /// Barcode of the cartridge, if any.
    pub barcode: Option<String>,
}

/// The whole `mtx status` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtxStatus {
    /// Drives in mtx order.
    pub drives: Vec<MtxDrive>,
    /// Storage elements, then import/export elements, in mtx order.
    pub slots: Vec<MtxSlot>,
}

impl MtxStatus {
    /// The slot with this mtx number.
    pub fn slot(&self, number: u32) -> Option<&MtxSlot> {
        self.slots.iter().find(|s| s.number == number)
    }

    /// The drive with this mtx index.
    pub fn drive(&self, index: u32) -> Option<&MtxDrive> {
        self.drives.iter().find(|d| d.index == index)
    }

    /// mtx numbers of the import/export slots.
    pub fn import_export_slots(&self) -> Vec<u32> {
        self.slots
            .iter()
            .filter(|s| s.import_export)
            .map(|s| s.number)
            .collect()
    }
}

/// Parses the text `mtx -f DEV status` prints.
pub fn parse(text: &str) -> anyhow::Result<MtxStatus> {
    let mut drives = Vec::new();
    let mut slots = Vec::new();
    let mut header = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Storage Changer ") {
            header = Some(parse_header(rest).with_context(|| format!("header {line:?}"))?);
        } else if let Some(rest) = line.strip_prefix("Data Transfer Element ") {
            drives.push(parse_drive(rest).with_context(|| format!("drive line {line:?}"))?);
        } else if let Some(rest) = line.strip_prefix("Storage Element ") {
            slots.push(parse_slot(rest).with_context(|| format!("slot line {line:?}"))?);
        }
    }
    let Some((n_drives, n_slots, n_ie)) = header else {
        bail!("no 'Storage Changer' header in mtx output");
    };
    if drives.len() != n_drives as usize || slots.len() != n_slots as usize {
        bail!(
            "mtx header promises {n_drives} drives and {n_slots} slots, lines give {} and {}",
            drives.len(),
            slots.len()
        );
    }
    let ie = slots.iter().filter(|s| s.import_export).count();
    if ie != n_ie as usize {
        bail!("mtx header promises {n_ie} import/export slots, lines give {ie}");
    }
    Ok(MtxStatus { drives, slots })
}

/// `/dev/sg3:2 Drives, 10 Slots ( 2 Import/Export )` -> (2, 10, 2).
fn parse_header(rest: &str) -> anyhow::Result<(u32, u32, u32)> {
    let (_, counts) = rest.split_once(':').context("no ':' after the device")?;
    let number_before = |word: &str| -> anyhow::Result<u32> {
        let idx = counts.find(word).with_context(|| format!("no {word:?}"))?;
        let n = counts[..idx]
            .split(|c: char| !c.is_ascii_digit())
            .rfind(|s| !s.is_empty())
            .with_context(|| format!("no number before {word:?}"))?;
        Ok(n.parse()?)
    };
    let ie = if counts.contains("Import/Export") {
        number_before("Import/Export")?
    } else {
        0
    };
    Ok((number_before("Drives")?, number_before("Slots")?, ie))
}

/// `0:Full (Storage Element 1 Loaded):VolumeTag = TAPE001L6` or `1:Empty`.
fn parse_drive(rest: &str) -> anyhow::Result<MtxDrive> {
    let (index, state) = rest.split_once(':').context("no ':' after the number")?;
    let index = index.trim().parse()?;
    let full = state.starts_with("Full");
    if !full && !state.starts_with("Empty") {
        bail!("state is neither Full nor Empty");
    }
    let source_slot = state
        .split_once("(Storage Element ")
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    Ok(MtxDrive {
        index,
        full,
        source_slot,
        barcode: volume_tag(state),
    })
}

/// `2:Full :VolumeTag=TAPE002L6` or `9 IMPORT/EXPORT:Empty:VolumeTag=`.
fn parse_slot(rest: &str) -> anyhow::Result<MtxSlot> {
    let (head, state) = rest.split_once(':').context("no ':' after the number")?;
    let mut words = head.split_whitespace();
    let number = words.next().context("no slot number")?.parse()?;
    let import_export = words.next() == Some("IMPORT/EXPORT");
    let full = state.starts_with("Full");
    if !full && !state.starts_with("Empty") {
        bail!("state is neither Full nor Empty");
    }
    Ok(MtxSlot {
        number,
        import_export,
        full,
        barcode: volume_tag(state),
    })
}

fn volume_tag(state: &str) -> Option<String> {
    let (_, tag) = state.split_once("VolumeTag")?;
    let tag = tag.trim_start().strip_prefix('=')?.trim();
    (!tag.is_empty()).then(|| tag.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from tgt 1.0.85 in a Debian 6.1 guest (shared fixture state L).
    const LOADED: &str = "  Storage Changer /dev/sg3:2 Drives, 10 Slots ( 2 Import/Export )
Data Transfer Element 0:Full (Storage Element 1 Loaded):VolumeTag = TAPE001L6                       
Data Transfer Element 1:Empty
      Storage Element 1:Empty:VolumeTag=                                
      Storage Element 2:Full :VolumeTag=TAPE002L6                       
      Storage Element 3:Full :VolumeTag=TAPE003L6                       
      Storage Element 4:Full :VolumeTag=TAPE004L6                       
      Storage Element 5:Full :VolumeTag=TINY001L6                       
      Storage Element 6:Empty:VolumeTag=                                
      Storage Element 7:Empty:VolumeTag=                                
      Storage Element 8:Empty:VolumeTag=                                
      Storage Element 9 IMPORT/EXPORT:Empty:VolumeTag=                                
      Storage Element 10 IMPORT/EXPORT:Full :VolumeTag=TAPE009L6                                
";

    #[test]
    fn parses_the_tgt_library() {
        let s = parse(LOADED).unwrap();
        assert_eq!(s.drives.len(), 2);
        assert_eq!(
            s.drive(0).unwrap(),
            &MtxDrive {
                index: 0,
                full: true,
                source_slot: Some(1),
                barcode: Some("TAPE001L6".into())
            }
        );
        assert!(!s.drive(1).unwrap().full);
        assert_eq!(s.drive(1).unwrap().barcode, None);
        assert_eq!(s.slots.len(), 10);
        assert!(!s.slot(1).unwrap().full);
        assert_eq!(s.slot(5).unwrap().barcode.as_deref(), Some("TINY001L6"));
        assert_eq!(s.import_export_slots(), vec![9, 10]);
        assert!(s.slot(10).unwrap().full);
        assert_eq!(s.slot(10).unwrap().barcode.as_deref(), Some("TAPE009L6"));
    }

    #[test]
    fn rejects_truncated_or_inconsistent_output() {
        assert!(parse("").is_err());
        let cut: String = LOADED.lines().take(6).collect::<Vec<_>>().join("\n");
        assert!(parse(&cut).is_err());
        let bad = LOADED.replace("0:Full (", "0:Maybe (");
        assert!(parse(&bad).is_err());
        let no_ie = LOADED.replace("( 2 Import/Export )", "( 3 Import/Export )");
        assert!(parse(&no_ie).is_err());
    }
}
