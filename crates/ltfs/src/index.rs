//! The LTFS index: the volume's directory tree, where every file's bytes live, and which
//! generation of the tree this is (LTFS format 2.4.0, section 7.2 `ltfsindex`).

use std::fmt;

use base64::Engine as _;
use serde::Deserialize as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Error;
use crate::xml::{
    XDirectory, XEntry, XExtent, XExtents, XFile, XIndex, XLocation, XName, XValue, XXattr, XXattrs,
};

/// The LTFS format version this crate writes.
pub const FORMAT_VERSION: &str = "2.4.0";

/// A point in time as LTFS records it: UTC with nanoseconds
/// (`2026-11-21T20:45:26.400123830Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp(OffsetDateTime::now_utc())
    }

    /// From a [`std::time::SystemTime`] (for example a file's modification time).
    pub fn from_system_time(t: std::time::SystemTime) -> Timestamp {
        Timestamp(OffsetDateTime::from(t))
    }

    /// Seconds and nanoseconds since the Unix epoch (negative before 1970).
    pub fn unix_nanos(&self) -> i128 {
        self.0.unix_timestamp_nanos()
    }

    /// From nanoseconds since the Unix epoch; `None` when out of the representable range.
    pub fn from_unix_nanos(nanos: i128) -> Option<Timestamp> {
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .map(Timestamp)
    }

    /// Parses the LTFS form (RFC 3339, UTC).
    pub fn parse(s: &str) -> Result<Timestamp, Error> {
        OffsetDateTime::parse(s.trim(), &Rfc3339)
            .ok()
            .and_then(|t| t.checked_to_offset(time::UtcOffset::UTC))
            .map(Timestamp)
            .ok_or_else(|| Error::Malformed {
                what: "timestamp",
                value: s.to_string(),
            })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.nanosecond()
        )
    }
}

/// Where an index (or label) sits: partition number (0 = LTFS partition `a`) and block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexLocation {
    /// Partition number (LTFS letter `a` = 0, `b` = 1).
    pub partition: u8,
    /// First block of the index.
    pub block: u64,
}

/// The five timestamps LTFS keeps for every file and directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    /// When it was created.
    pub creation: Timestamp,
    /// Last change of metadata or content (POSIX ctime).
    pub change: Timestamp,
    /// Last change of content (POSIX mtime).
    pub modify: Timestamp,
    /// Last access (POSIX atime).
    pub access: Timestamp,
    /// Last backup (informational).
    pub backup: Timestamp,
}

impl Times {
    /// All five set to `t`.
    pub fn all(t: Timestamp) -> Times {
        Times {
            creation: t,
            change: t,
            modify: t,
            access: t,
            backup: t,
        }
    }
}

/// One extended attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xattr {
    /// Attribute name, e.g. `myattr` (LTFS stores user attributes without the `user.` prefix).
    pub key: String,
    /// Raw value; stored as text when it is XML-safe UTF-8, else base64.
    pub value: Vec<u8>,
}

/// A run of a file's bytes on tape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Offset of the first byte in the file.
    pub file_offset: u64,
    /// Partition number holding the data (1 = LTFS data partition `b`).
    pub partition: u8,
    /// First block (record) of the extent.
    pub start_block: u64,
    /// Offset of the first byte inside the first block.
    pub byte_offset: u64,
    /// Number of bytes.
    pub byte_count: u64,
}

/// A file or symbolic link in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Name (one path component).
    pub name: String,
    /// Length in bytes (0 for symlinks).
    pub length: u64,
    /// Read-only flag.
    pub readonly: bool,
    /// Timestamps.
    pub times: Times,
    /// Unique id within the volume.
    pub uid: u64,
    /// Extended attributes.
    pub xattrs: Vec<Xattr>,
    /// Set by some writers while a file is open; informational.
    pub open_for_write: bool,
    /// Where the bytes are, ordered by file offset. Bytes not covered read as zeros.
    pub extents: Vec<Extent>,
    /// When this is a symbolic link: its target.
    pub symlink: Option<String>,
}

impl File {
    /// The extended attribute `key`, if present.
    pub fn xattr(&self, key: &str) -> Option<&[u8]> {
        self.xattrs
            .iter()
            .find(|x| x.key == key)
            .map(|x| x.value.as_slice())
    }

    /// Sets (or replaces) the extended attribute `key`.
    pub fn set_xattr(&mut self, key: &str, value: &[u8]) {
        set_xattr(&mut self.xattrs, key, value);
    }
}

pub(crate) fn set_xattr(list: &mut Vec<Xattr>, key: &str, value: &[u8]) {
    match list.iter_mut().find(|x| x.key == key) {
        Some(x) => x.value = value.to_vec(),
        None => list.push(Xattr {
            key: key.to_string(),
            value: value.to_vec(),
        }),
    }
}

/// A directory in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    /// Name (the volume name for the root directory).
    pub name: String,
    /// Read-only flag.
    pub readonly: bool,
    /// Timestamps.
    pub times: Times,
    /// Unique id within the volume (1 for the root).
    pub uid: u64,
    /// Extended attributes.
    pub xattrs: Vec<Xattr>,
    /// Files and subdirectories, in index order.
    pub entries: Vec<Entry>,
}

/// A directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A regular file or a symbolic link.
    File(File),
    /// A subdirectory.
    Directory(Directory),
}

impl Entry {
    /// The entry's name.
    pub fn name(&self) -> &str {
        match self {
            Entry::File(f) => &f.name,
            Entry::Directory(d) => &d.name,
        }
    }
}

impl Directory {
    /// The entry called `name` directly in this directory.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name() == name)
    }

    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.name() == name)
    }

    /// Looks up a `/`-separated path relative to this directory (`""` or `"/"` is itself).
    pub fn lookup(&self, path: &str) -> Option<EntryRef<'_>> {
        let mut dir = self;
        let parts: Vec<&str> = split_path(path).collect();
        let Some((last, init)) = parts.split_last() else {
            return Some(EntryRef::Directory(self));
        };
        for p in init {
            match dir.get(p)? {
                Entry::Directory(d) => dir = d,
                Entry::File(_) => return None,
            }
        }
        Some(match dir.get(last)? {
            Entry::File(f) => EntryRef::File(f),
            Entry::Directory(d) => EntryRef::Directory(d),
        })
    }

    /// Every file and symlink below this directory, with its path (`dir1/big.bin`), in
    /// depth-first index order.
    pub fn walk_files(&self) -> Vec<(String, &File)> {
        let mut out = Vec::new();
        walk(self, "", &mut out);
        out
    }

    /// Number of files (including symlinks) below this directory.
    pub fn file_count(&self) -> usize {
        self.entries
            .iter()
            .map(|e| match e {
                Entry::File(_) => 1,
                Entry::Directory(d) => d.file_count(),
            })
            .sum()
    }
}

fn walk<'a>(dir: &'a Directory, prefix: &str, out: &mut Vec<(String, &'a File)>) {
    for e in &dir.entries {
        let path = if prefix.is_empty() {
            e.name().to_string()
        } else {
            format!("{prefix}/{}", e.name())
        };
        match e {
            Entry::File(f) => out.push((path, f)),
            Entry::Directory(d) => walk(d, &path, out),
        }
    }
}

/// Splits a path into its non-empty components.
pub(crate) fn split_path(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|p| !p.is_empty() && *p != ".")
}

/// A borrowed directory entry found by [`Directory::lookup`].
#[derive(Debug, Clone, Copy)]
pub enum EntryRef<'a> {
    /// A file or symlink.
    File(&'a File),
    /// A directory.
    Directory(&'a Directory),
}

/// One generation of the volume's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// Format version of the document (`2.4.0` when we write it).
    pub version: String,
    /// The software that wrote it.
    pub creator: String,
    /// Optional free-text comment.
    pub comment: Option<String>,
    /// The volume UUID (same as in the labels).
    pub volume_uuid: String,
    /// Generation number: higher is newer.
    pub generation: u64,
    /// When this generation was written.
    pub update_time: Timestamp,
    /// Where this index itself is (the self pointer).
    pub location: IndexLocation,
    /// Back pointer: the previous index on the data partition (for an index on the index
    /// partition, the data-partition copy of the same or an older generation).
    pub previous: Option<IndexLocation>,
    /// Whether the data placement policy may be changed.
    pub allow_policy_update: bool,
    /// Highest file uid in use.
    pub highest_file_uid: u64,
    /// `unlocked`, `locked` or `permlocked` (2.4), if present.
    pub volume_lock_state: Option<String>,
    /// The root directory (its name is the volume name).
    pub root: Directory,
}

/// Maps an LTFS partition letter to its number (`a` = 0).
pub(crate) fn partition_number(letter: &str) -> Result<u8, Error> {
    let mut chars = letter.trim().chars();
    match (chars.next(), chars.next()) {
        (Some(c @ 'a'..='z'), None) => Ok(c as u8 - b'a'),
        _ => Err(Error::Malformed {
            what: "partition letter",
            value: letter.to_string(),
        }),
    }
}

/// Maps a partition number to its LTFS letter.
pub(crate) fn partition_letter(n: u8) -> String {
    char::from(b'a'.saturating_add(n.min(25))).to_string()
}

/// Checks that a document's version attribute is one we read (2.x.y).
pub(crate) fn check_version(version: &str) -> Result<(), Error> {
    let mut parts = version.trim().split('.');
    let major = parts.next().and_then(|m| m.parse::<u32>().ok());
    if major == Some(2) && parts.all(|p| p.parse::<u32>().is_ok()) {
        Ok(())
    } else {
        Err(Error::UnsupportedVersion {
            version: version.to_string(),
        })
    }
}

impl Index {
    /// Parses an index document.
    pub fn from_xml(bytes: &[u8]) -> Result<Index, Error> {
        crate::xml::on_big_stack(|| Index::parse(bytes))?
    }

    fn parse(bytes: &[u8]) -> Result<Index, Error> {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::Malformed {
            what: "index encoding",
            value: "not UTF-8".to_string(),
        })?;
        let mut de = quick_xml::de::Deserializer::from_str(text);
        de.recursion_limit(MAX_NESTING);
        let x = XIndex::deserialize(&mut de).map_err(|e| Error::Xml {
            what: "index",
            message: e.to_string(),
        })?;
        check_version(&x.version)?;
        Ok(Index {
            version: x.version,
            creator: x.creator,
            comment: x.comment,
            volume_uuid: x.volumeuuid.trim().to_string(),
            generation: x.generationnumber,
            update_time: Timestamp::parse(&x.updatetime)?,
            location: location_from(&x.location)?,
            previous: x
                .previousgenerationlocation
                .as_ref()
                .map(location_from)
                .transpose()?,
            allow_policy_update: x.allowpolicyupdate,
            highest_file_uid: x.highestfileuid.unwrap_or(0),
            volume_lock_state: x.volumelockstate,
            root: dir_from(x.directory, 0)?,
        })
    }

    /// Serializes the index as an LTFS 2.4.0 document.
    pub fn to_xml(&self) -> Result<String, Error> {
        crate::xml::on_big_stack(|| self.write())?
    }

    fn write(&self) -> Result<String, Error> {
        let x = XIndex {
            version: FORMAT_VERSION.to_string(),
            creator: self.creator.clone(),
            comment: self.comment.clone(),
            volumeuuid: self.volume_uuid.clone(),
            generationnumber: self.generation,
            updatetime: self.update_time.to_string(),
            location: location_to(self.location),
            previousgenerationlocation: self.previous.map(location_to),
            allowpolicyupdate: self.allow_policy_update,
            highestfileuid: Some(self.highest_file_uid),
            volumelockstate: self.volume_lock_state.clone(),
            directory: dir_to(&self.root),
        };
        crate::xml::to_document(&x, 0).map_err(|e| Error::Xml {
            what: "index (writing)",
            message: e.to_string(),
        })
    }
}

fn location_from(l: &XLocation) -> Result<IndexLocation, Error> {
    Ok(IndexLocation {
        partition: partition_number(&l.partition)?,
        block: l.startblock,
    })
}

fn location_to(l: IndexLocation) -> XLocation {
    XLocation {
        partition: partition_letter(l.partition),
        startblock: l.block,
    }
}

/// Deepest directory nesting we accept when parsing (guards the recursion).
pub(crate) const MAX_DEPTH: usize = 512;
/// Recursion limit for the deserializer: a directory level costs it up to four levels
/// (`directory`, `contents`, the entry enum, the list), plus a few above and below.
const MAX_NESTING: usize = 4 * MAX_DEPTH + 64;

fn times_from(c: &str, ch: &str, m: &str, a: &str, b: &str) -> Result<Times, Error> {
    Ok(Times {
        creation: Timestamp::parse(c)?,
        change: Timestamp::parse(ch)?,
        modify: Timestamp::parse(m)?,
        access: Timestamp::parse(a)?,
        backup: Timestamp::parse(b)?,
    })
}

fn dir_from(x: XDirectory, depth: usize) -> Result<Directory, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::Malformed {
            what: "directory depth",
            value: depth.to_string(),
        });
    }
    let mut entries = Vec::with_capacity(x.contents.entries.len());
    for e in x.contents.entries {
        entries.push(match e {
            XEntry::File(f) => Entry::File(file_from(f)?),
            XEntry::Directory(d) => Entry::Directory(dir_from(d, depth + 1)?),
        });
    }
    Ok(Directory {
        name: name_from(&x.name)?,
        readonly: x.readonly,
        times: times_from(
            &x.creationtime,
            &x.changetime,
            &x.modifytime,
            &x.accesstime,
            &x.backuptime,
        )?,
        uid: x.fileuid,
        xattrs: xattrs_from(x.extendedattributes)?,
        entries,
    })
}

fn file_from(x: XFile) -> Result<File, Error> {
    let mut extents = Vec::new();
    for e in x.extentinfo.map(|e| e.extent).unwrap_or_default() {
        extents.push(Extent {
            file_offset: e.fileoffset,
            partition: partition_number(&e.partition)?,
            start_block: e.startblock,
            byte_offset: e.byteoffset,
            byte_count: e.bytecount,
        });
    }
    extents.sort_by_key(|e| e.file_offset);
    Ok(File {
        name: name_from(&x.name)?,
        length: x.length,
        readonly: x.readonly,
        times: times_from(
            &x.creationtime,
            &x.changetime,
            &x.modifytime,
            &x.accesstime,
            &x.backuptime,
        )?,
        uid: x.fileuid,
        xattrs: xattrs_from(x.extendedattributes)?,
        open_for_write: x.openforwrite.unwrap_or(false),
        extents,
        symlink: x.symlink.as_ref().map(name_from).transpose()?,
    })
}

fn xattrs_from(x: Option<XXattrs>) -> Result<Vec<Xattr>, Error> {
    let mut out = Vec::new();
    for a in x.map(|x| x.xattr).unwrap_or_default() {
        let value = match a.value.kind.as_deref() {
            None | Some("text") => a.value.text.into_bytes(),
            Some("base64") => {
                let compact: String = a
                    .value
                    .text
                    .chars()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect();
                base64::engine::general_purpose::STANDARD
                    .decode(compact.as_bytes())
                    .map_err(|_| Error::Malformed {
                        what: "base64 xattr value",
                        value: a.value.text.clone(),
                    })?
            }
            Some(other) => {
                return Err(Error::Malformed {
                    what: "xattr value type",
                    value: other.to_string(),
                });
            }
        };
        out.push(Xattr {
            key: name_from(&a.key)?,
            value,
        });
    }
    Ok(out)
}

fn dir_to(d: &Directory) -> XDirectory {
    XDirectory {
        name: name_to(&d.name),
        readonly: d.readonly,
        creationtime: d.times.creation.to_string(),
        changetime: d.times.change.to_string(),
        modifytime: d.times.modify.to_string(),
        accesstime: d.times.access.to_string(),
        backuptime: d.times.backup.to_string(),
        fileuid: d.uid,
        extendedattributes: xattrs_to(&d.xattrs),
        contents: crate::xml::XContents {
            entries: d
                .entries
                .iter()
                .map(|e| match e {
                    Entry::File(f) => XEntry::File(file_to(f)),
                    Entry::Directory(d) => XEntry::Directory(dir_to(d)),
                })
                .collect(),
        },
    }
}

fn file_to(f: &File) -> XFile {
    XFile {
        name: name_to(&f.name),
        length: f.length,
        readonly: f.readonly,
        creationtime: f.times.creation.to_string(),
        changetime: f.times.change.to_string(),
        modifytime: f.times.modify.to_string(),
        accesstime: f.times.access.to_string(),
        backuptime: f.times.backup.to_string(),
        fileuid: f.uid,
        extendedattributes: xattrs_to(&f.xattrs),
        openforwrite: None,
        extentinfo: (!f.extents.is_empty()).then(|| XExtents {
            extent: f
                .extents
                .iter()
                .map(|e| XExtent {
                    fileoffset: e.file_offset,
                    partition: partition_letter(e.partition),
                    startblock: e.start_block,
                    byteoffset: e.byte_offset,
                    bytecount: e.byte_count,
                })
                .collect(),
        }),
        symlink: f.symlink.as_deref().map(name_to),
    }
}

fn xattrs_to(list: &[Xattr]) -> Option<XXattrs> {
    if list.is_empty() {
        return None;
    }
    Some(XXattrs {
        xattr: list
            .iter()
            .map(|x| XXattr {
                key: name_to(&x.key),
                value: match std::str::from_utf8(&x.value) {
                    Ok(s) if !needs_encoding(s) => XValue {
                        kind: None,
                        text: s.to_string(),
                    },
                    _ => XValue {
                        kind: Some("base64".to_string()),
                        text: base64::engine::general_purpose::STANDARD.encode(&x.value),
                    },
                },
            })
            .collect(),
    })
}

/// True when `s` cannot go into XML text verbatim and survive a round trip: control
/// characters (not allowed or normalized by XML 1.0) or leading/trailing whitespace (which
/// XML readers may trim).
fn needs_encoding(s: &str) -> bool {
    s.chars()
        .any(|c| c < ' ' || c == '\u{7f}' || c == '\u{fffe}' || c == '\u{ffff}')
        || s.starts_with(char::is_whitespace)
        || s.ends_with(char::is_whitespace)
}

fn name_to(name: &str) -> XName {
    if needs_encoding(name) {
        let mut out = String::with_capacity(name.len() * 3);
        let mut buf = [0u8; 4];
        for c in name.chars() {
            let edge_space = c.is_whitespace();
            if c < ' '
                || c == '\u{7f}'
                || c == '%'
                || c == '\u{fffe}'
                || c == '\u{ffff}'
                || edge_space
            {
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            } else {
                out.push(c);
            }
        }
        XName {
            percentencoded: Some(true),
            text: out,
        }
    } else {
        XName {
            percentencoded: None,
            text: name.to_string(),
        }
    }
}

fn name_from(x: &XName) -> Result<String, Error> {
    if x.percentencoded != Some(true) {
        return Ok(x.text.clone());
    }
    let bad = || Error::Malformed {
        what: "percent-encoded name",
        value: x.text.clone(),
    };
    let src = x.text.as_bytes();
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        if src[i] == b'%' {
            let hex = src.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(src[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trips_with_nanoseconds() {
        let s = "2026-11-21T20:45:26.400123830Z";
        assert_eq!(Timestamp::parse(s).unwrap().to_string(), s);
        let s = "1969-07-20T20:17:40.000000000Z";
        assert_eq!(Timestamp::parse(s).unwrap().to_string(), s);
    }

    #[test]
    fn names_needing_encoding_round_trip() {
        for n in [
            "plain",
            " lead",
            "trail ",
            "tab\there",
            "100%",
            "a\r\nb",
            "naïve",
        ] {
            let x = name_to(n);
            assert_eq!(name_from(&x).unwrap(), n, "{n:?} via {x:?}");
        }
        assert_eq!(name_to("100%").percentencoded, None);
        assert_eq!(name_to(" x").text, "%20x");
    }

    #[test]
    fn partition_letters() {
        assert_eq!(partition_number("a").unwrap(), 0);
        assert_eq!(partition_number("b").unwrap(), 1);
        assert!(partition_number("ab").is_err());
        assert!(partition_number("B").is_err());
        assert_eq!(partition_letter(1), "b");
    }

    #[test]
    fn deepest_allowed_tree_round_trips_and_deeper_is_refused() {
        let t = Timestamp::parse("2026-11-21T20:45:26.400123830Z").unwrap();
        let dir = |name: &str, entries| Directory {
            name: name.into(),
            readonly: false,
            times: Times::all(t),
            uid: 1,
            xattrs: Vec::new(),
            entries,
        };
        let index = |depth: usize| {
            let mut d = dir("leaf", Vec::new());
            for _ in 0..depth {
                d = dir("d", vec![Entry::Directory(d)]);
            }
            Index {
                version: FORMAT_VERSION.into(),
                creator: "t".into(),
                comment: None,
                volume_uuid: "u".into(),
                generation: 1,
                update_time: t,
                location: IndexLocation {
                    partition: 0,
                    block: 5,
                },
                previous: None,
                allow_policy_update: true,
                highest_file_uid: 1,
                volume_lock_state: None,
                root: d,
            }
        };
        let ok = index(MAX_DEPTH);
        assert_eq!(
            Index::from_xml(ok.to_xml().unwrap().as_bytes()).unwrap(),
            ok
        );
        let deep = index(MAX_DEPTH + 20);
        assert!(Index::from_xml(deep.to_xml().unwrap().as_bytes()).is_err());
    }

    #[test]
    fn versions() {
        assert!(check_version("2.4.0").is_ok());
        assert!(check_version("2.0.1").is_ok());
        assert!(check_version("3.0.0").is_err());
        assert!(check_version("2.x").is_err());
    }
}
