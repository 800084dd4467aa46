//! The XML shapes of the LTFS 2.4.0 label and index, as serde sees them.
//!
//! These private structs mirror the schema element by element (field order = schema order,
//! which is what other implementations expect); the public model in [`crate::index`] and
//! [`crate::label`] converts from and to them and checks what serde cannot.

use serde::{Deserialize, Serialize};

/// `<ltfslabel version="2.4.0">`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename = "ltfslabel")]
pub(crate) struct XLabel {
    #[serde(rename = "@version")]
    pub version: String,
    pub creator: String,
    pub formattime: String,
    pub volumeuuid: String,
    pub location: XLabelLocation,
    pub partitions: XPartitions,
    pub blocksize: u64,
    pub compression: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct XLabelLocation {
    pub partition: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct XPartitions {
    pub index: String,
    pub data: String,
}

/// `<ltfsindex version="2.4.0">`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename = "ltfsindex")]
pub(crate) struct XIndex {
    #[serde(rename = "@version")]
    pub version: String,
    pub creator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub volumeuuid: String,
    pub generationnumber: u64,
    pub updatetime: String,
    pub location: XLocation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previousgenerationlocation: Option<XLocation>,
    pub allowpolicyupdate: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highestfileuid: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumelockstate: Option<String>,
    pub directory: XDirectory,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct XLocation {
    pub partition: String,
    pub startblock: u64,
}

/// A `<name>` (or `<symlink>`/`<key>`): text, percent-encoded when the attribute says so.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct XName {
    #[serde(
        rename = "@percentencoded",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub percentencoded: Option<bool>,
    #[serde(rename = "$text", default)]
    pub text: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct XDirectory {
    pub name: XName,
    pub readonly: bool,
    pub creationtime: String,
    pub changetime: String,
    pub modifytime: String,
    pub accesstime: String,
    pub backuptime: String,
    pub fileuid: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extendedattributes: Option<XXattrs>,
    #[serde(default)]
    pub contents: XContents,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct XContents {
    #[serde(rename = "$value", default)]
    pub entries: Vec<XEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum XEntry {
    #[serde(rename = "file")]
    File(XFile),
    #[serde(rename = "directory")]
    Directory(XDirectory),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct XFile {
    pub name: XName,
    pub length: u64,
    pub readonly: bool,
    pub creationtime: String,
    pub changetime: String,
    pub modifytime: String,
    pub accesstime: String,
    pub backuptime: String,
    pub fileuid: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extendedattributes: Option<XXattrs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openforwrite: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extentinfo: Option<XExtents>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symlink: Option<XName>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct XXattrs {
    #[serde(default)]
    pub xattr: Vec<XXattr>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct XXattr {
    pub key: XName,
    pub value: XValue,
}

/// `<value type="text|base64">`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct XValue {
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(rename = "$text", default)]
    pub text: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct XExtents {
    #[serde(default)]
    pub extent: Vec<XExtent>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct XExtent {
    pub fileoffset: u64,
    pub partition: String,
    pub startblock: u64,
    pub byteoffset: u64,
    pub bytecount: u64,
}

/// Serializes one of the root structs with the XML declaration the reference writes.
/// `indent` spaces per level, as the reference writes them: 4 in labels, 0 in indexes
/// (one element per line).
pub(crate) fn to_document<T: Serialize>(
    value: &T,
    indent: usize,
) -> Result<String, quick_xml::SeError> {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let mut ser = quick_xml::se::Serializer::new(&mut out);
    ser.indent(' ', indent);
    value.serialize(ser)?;
    out.push('\n');
    Ok(out)
}

/// Stack for parsing and writing indexes: the tree is recursive, and an index may nest
/// [`crate::index::MAX_DEPTH`] directories. Only the pages used are ever touched.
const PARSER_STACK: usize = 256 << 20;

/// Runs `f` (a recursive parse or serialization) on a thread with a large stack.
/// A panic in `f` is resumed in the caller.
pub(crate) fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, crate::Error> {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("ltfs-xml".into())
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, f)
            .map_err(|e| crate::Error::Xml {
                what: "index",
                message: format!("cannot start the parser thread: {e}"),
            })?;
        match handle.join() {
            Ok(v) => Ok(v),
            Err(payload) => std::panic::resume_unwind(payload),
        }
    })
}
