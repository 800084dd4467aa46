//! What to fetch: a listing compared with what the caller already knows.

use std::collections::HashMap;

use crate::entry::{ContentHash, Entry, Mtime};

/// What the caller (the catalog) knows about a path from an earlier fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownFile {
    /// Size of the latest known version.
    pub size: u64,
    /// Its mtime, with nanoseconds as listed (store them: a seconds-only value never
    /// matches a listing with a fraction and the file is fetched again).
    pub mtime: Mtime,
    /// Its content hash, when known.
    pub hash: Option<ContentHash>,
}

/// Lookup of the latest known version of a path. The catalog implements this; `fetch`
/// never sees the catalog.
pub trait Known {
    /// The latest known version of `path` (raw bytes, relative to the source root).
    fn lookup(&self, path: &[u8]) -> Option<KnownFile>;
}

/// An in-memory [`Known`]: a map from path to its latest known version.
#[derive(Debug, Clone, Default)]
pub struct KnownSet {
    map: HashMap<Vec<u8>, KnownFile>,
}

impl KnownSet {
    /// An empty set: everything is new.
    pub fn new() -> Self {
        KnownSet::default()
    }

    /// Records (or replaces) what is known about `path`.
    pub fn insert(&mut self, path: impl Into<Vec<u8>>, known: KnownFile) {
        self.map.insert(path.into(), known);
    }

    /// Number of known paths.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is known.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Known for KnownSet {
    fn lookup(&self, path: &[u8]) -> Option<KnownFile> {
        self.map.get(path).copied()
    }
}

impl<F: Fn(&[u8]) -> Option<KnownFile>> Known for F {
    fn lookup(&self, path: &[u8]) -> Option<KnownFile> {
        self(path)
    }
}

/// Why a file is in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The path is not known at all.
    New,
    /// The path is known but its size, mtime or hash differ: fetch it as a new version.
    Changed {
        /// What was known before.
        previous: KnownFile,
    },
}

/// One file to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// The entry as listed.
    pub entry: Entry,
    /// New or changed.
    pub change: Change,
}

/// The files a fetch should transfer, in listing order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// New and changed files.
    pub files: Vec<PlannedFile>,
    /// How many listed files are unchanged.
    pub unchanged: usize,
    /// Their total size.
    pub unchanged_bytes: u64,
}

impl Plan {
    /// Total bytes to fetch.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.entry.size).sum()
    }

    /// A plan that fetches every entry as new (no catalog).
    pub fn all(entries: &[Entry]) -> Plan {
        plan(entries, &KnownSet::new())
    }
}

/// Compares a listing with what is known.
///
/// A path is unchanged when size and mtime (seconds and nanoseconds) match what is known —
/// unless both sides have a hash and the hashes differ. When both hashes are present and
/// equal, the file is unchanged even if its mtime moved (same content, nothing to fetch).
pub fn plan(entries: &[Entry], known: &dyn Known) -> Plan {
    let mut out = Plan::default();
    for entry in entries {
        let change = match known.lookup(&entry.path) {
            None => Some(Change::New),
            Some(previous) => {
                let same = match (entry.hash, previous.hash) {
                    (Some(a), Some(b)) => a == b && entry.size == previous.size,
                    _ => entry.size == previous.size && entry.mtime == previous.mtime,
                };
                (!same).then_some(Change::Changed { previous })
            }
        };
        match change {
            Some(change) => out.files.push(PlannedFile {
                entry: entry.clone(),
                change,
            }),
            None => {
                out.unchanged += 1;
                out.unchanged_bytes += entry.size;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, size: u64, secs: i64, hash: Option<ContentHash>) -> Entry {
        Entry {
            path: path.as_bytes().to_vec(),
            size,
            mtime: Mtime::new(secs, 5),
            mode: 0o644,
            hash,
        }
    }

    #[test]
    fn classifies_new_changed_unchanged() {
        let h1 = ContentHash::of(b"1");
        let h2 = ContentHash::of(b"2");
        let mut known = KnownSet::new();
        let k = |size, secs, hash| KnownFile {
            size,
            mtime: Mtime::new(secs, 5),
            hash,
        };
        known.insert("same", k(1, 10, None));
        known.insert("bigger", k(1, 10, None));
        known.insert("touched", k(1, 10, None));
        known.insert("hash-differs", k(1, 10, Some(h1)));
        known.insert("hash-same-touched", k(1, 10, Some(h1)));
        let entries = [
            entry("same", 1, 10, None),
            entry("bigger", 2, 10, None),
            entry("touched", 1, 11, None),
            entry("hash-differs", 1, 10, Some(h2)),
            entry("hash-same-touched", 1, 99, Some(h1)),
            entry("new", 1, 10, None),
        ];
        let p = plan(&entries, &known);
        let got: Vec<(&[u8], bool)> = p
            .files
            .iter()
            .map(|f| (&f.entry.path[..], f.change == Change::New))
            .collect();
        assert_eq!(
            got,
            vec![
                (&b"bigger"[..], false),
                (b"touched", false),
                (b"hash-differs", false),
                (b"new", true)
            ]
        );
        assert_eq!(p.unchanged, 2);
        assert_eq!(p.unchanged_bytes, 2);
        assert_eq!(p.bytes(), 5);
    }

    #[test]
    fn closure_is_known() {
        let known = |p: &[u8]| {
            (p == b"a").then_some(KnownFile {
                size: 1,
                mtime: Mtime::new(10, 5),
                hash: None,
            })
        };
        let p = plan(&[entry("a", 1, 10, None), entry("b", 1, 10, None)], &known);
        assert_eq!(p.files.len(), 1);
        assert_eq!(p.unchanged, 1);
    }
}
