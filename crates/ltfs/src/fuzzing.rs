//! Entry points for the fuzz targets (`fuzz/fuzz_targets/ltfs_*.rs`) and their seed replay
//! test. Not part of the API.

use crate::{Index, LtfsLabel, Vol1Label};

/// Parses `data` as an LTFS label and as a VOL1 label; what parses must serialize and
/// parse back to the same value.
pub fn label(data: &[u8]) {
    let _ = Vol1Label::parse(data);
    if let Ok(label) = LtfsLabel::from_xml(data) {
        let xml = label.to_xml().expect("a parsed label serializes");
        let again = LtfsLabel::from_xml(xml.as_bytes()).expect("our label parses");
        assert_eq!(
            LtfsLabel {
                version: label.version.clone(),
                ..again
            },
            label
        );
    }
}

/// Parses `data` as an LTFS index; what parses must serialize and parse back to the same
/// value (the version attribute aside: we always write 2.4.0).
pub fn index(data: &[u8]) {
    if let Ok(index) = Index::from_xml(data) {
        let xml = index.to_xml().expect("a parsed index serializes");
        let again = Index::from_xml(xml.as_bytes()).expect("our index parses");
        assert_eq!(
            Index {
                version: index.version.clone(),
                ..again
            },
            index
        );
    }
}
