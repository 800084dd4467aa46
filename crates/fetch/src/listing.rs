//! The remote listing format and its parser.
//!
//! The SSH source runs one GNU `find` in one SSH session:
//!
//! ```text
//! cd -- '<root>' && LC_ALL=C exec find . -type f -printf '%s\0%T@\0%m\0%P\0'
//! ```
//!
//! Byte-exact, the output is a sequence of records, each four NUL-terminated fields:
//!
//! | field | bytes | meaning |
//! |---|---|---|
//! | size | ASCII decimal digits | `st_size` |
//! | mtime | `-`? digits, optionally `.` and digits (GNU prints 10) | `st_mtime` with fraction |
//! | mode | ASCII octal digits | permission bits (`st_mode & 07777`) |
//! | path | any bytes but NUL, non-empty | path relative to the root, no `./` prefix |
//!
//! With a remote hash ([`ListingFormat::FindWithHash`]), `find` also runs
//! `b3sum --no-names` on each file and every record gets a fifth NUL-terminated field:
//! 64 hex digits and `\n`, or nothing when `b3sum` failed for that file.
//! A file name cannot hold NUL, so NUL separators are safe for every byte a name can hold
//! (spaces, quotes, newlines, leading dashes, non-UTF-8).

use crate::entry::{ContentHash, Entry, Mtime, is_safe_relative_path};

/// Which record shape a listing has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingFormat {
    /// Four fields per record: size, mtime, mode, path.
    Find,
    /// Five fields per record: size, mtime, mode, path, `b3sum` output.
    FindWithHash,
}

/// Why a listing could not be parsed. `offset` is the byte offset of the bad field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    /// The output ended inside a record.
    #[error("listing truncated at byte {offset} (incomplete record)")]
    Truncated {
        /// Where the incomplete record starts.
        offset: usize,
    },
    /// A numeric field is not a number of the expected shape.
    #[error("listing: bad {field} field at byte {offset}")]
    BadField {
        /// `size`, `mtime`, `mode` or `hash`.
        field: &'static str,
        /// Where the field starts.
        offset: usize,
    },
    /// A path is empty, absolute, or has an empty, `.` or `..` component.
    #[error("listing: unsafe path at byte {offset}: {path:?}")]
    UnsafePath {
        /// Where the field starts.
        offset: usize,
        /// The path, lossy UTF-8, for the message.
        path: String,
    },
}

/// Parses a `find -printf` listing (see the module docs for the byte format).
pub fn parse_listing(bytes: &[u8], format: ListingFormat) -> Result<Vec<Entry>, ListingError> {
    let nfields = match format {
        ListingFormat::Find => 4,
        ListingFormat::FindWithHash => 5,
    };
    let mut entries = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let record_start = pos;
        let mut fields: [(usize, &[u8]); 5] = [(0, &[]); 5];
        for slot in fields.iter_mut().take(nfields) {
            let rest = bytes.get(pos..).unwrap_or_default();
            let Some(len) = rest.iter().position(|&b| b == 0) else {
                return Err(ListingError::Truncated {
                    offset: record_start,
                });
            };
            *slot = (pos, &rest[..len]);
            pos += len + 1;
        }
        let (size_at, size) = fields[0];
        let (mtime_at, mtime) = fields[1];
        let (mode_at, mode) = fields[2];
        let (path_at, path) = fields[3];
        let size = parse_decimal(size).ok_or(ListingError::BadField {
            field: "size",
            offset: size_at,
        })?;
        let mtime = parse_mtime(mtime).ok_or(ListingError::BadField {
            field: "mtime",
            offset: mtime_at,
        })?;
        let mode = parse_octal(mode).ok_or(ListingError::BadField {
            field: "mode",
            offset: mode_at,
        })?;
        if !is_safe_relative_path(path) {
            return Err(ListingError::UnsafePath {
                offset: path_at,
                path: String::from_utf8_lossy(path).into_owned(),
            });
        }
        let hash = if nfields == 5 {
            let (hash_at, field) = fields[4];
            parse_hash_field(field).ok_or(ListingError::BadField {
                field: "hash",
                offset: hash_at,
            })?
        } else {
            None
        };
        entries.push(Entry {
            path: path.to_vec(),
            size,
            mtime,
            mode,
            hash,
        });
    }
    Ok(entries)
}

fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

fn parse_octal(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 6 || !s.iter().all(|c| (b'0'..=b'7').contains(c)) {
        return None;
    }
    let v = s
        .iter()
        .fold(0u32, |acc, &d| (acc << 3) | u32::from(d - b'0'));
    (v <= 0o7777).then_some(v)
}

/// `-`? digits (`.` digits)? — the fraction is cut or padded to nanoseconds.
/// A negative value `-a.f` means `-(a + 0.f)` seconds.
fn parse_mtime(s: &[u8]) -> Option<Mtime> {
    let (neg, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if int.len() > 18 {
        return None;
    }
    let secs = i64::try_from(parse_decimal(int)?).ok()?;
    let mut nanos = 0u32;
    if let Some(frac) = frac {
        if frac.is_empty() || !frac.iter().all(u8::is_ascii_digit) {
            return None;
        }
        for i in 0..9 {
            nanos = nanos * 10 + frac.get(i).map_or(0, |&d| u32::from(d - b'0'));
        }
    }
    if !neg {
        return Some(Mtime::new(secs, nanos));
    }
    if nanos == 0 {
        Some(Mtime::new(-secs, 0))
    } else {
        Some(Mtime::new(-secs - 1, 1_000_000_000 - nanos))
    }
}

/// Empty (no hash) or 64 hex digits followed by `\n`.
fn parse_hash_field(s: &[u8]) -> Option<Option<ContentHash>> {
    if s.is_empty() {
        return Some(None);
    }
    let hex = s.strip_suffix(b"\n")?;
    ContentHash::from_hex(hex).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(e: &Entry, format: ListingFormat) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(e.size.to_string().as_bytes());
        out.push(0);
        out.extend_from_slice(format!("{}.{:09}0", e.mtime.secs, e.mtime.nanos).as_bytes());
        out.push(0);
        out.extend_from_slice(format!("{:o}", e.mode).as_bytes());
        out.push(0);
        out.extend_from_slice(&e.path);
        out.push(0);
        if format == ListingFormat::FindWithHash {
            if let Some(h) = e.hash {
                out.extend_from_slice(h.to_hex().as_bytes());
                out.push(b'\n');
            }
            out.push(0);
        }
        out
    }

    #[test]
    fn parses_real_find_output() {
        let raw = b"1\x001795298860.2223165970\x00644\x00sp ace\x00\
            3\x001795298860.0000000000\x00600\x00new\nline\x00\
            0\x00-86400.5000000000\x004755\x00\xff\xfe/-dash\x00";
        let got = parse_listing(raw, ListingFormat::Find).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].path, b"sp ace");
        assert_eq!(got[0].mtime, Mtime::new(1_795_298_860, 222_316_597));
        assert_eq!(got[0].mode, 0o644);
        assert_eq!(got[1].path, b"new\nline");
        assert_eq!(got[2].path, b"\xff\xfe/-dash");
        assert_eq!(got[2].mtime, Mtime::new(-86401, 500_000_000));
        assert_eq!(got[2].mode, 0o4755);
    }

    #[test]
    fn rejects_bad_input() {
        use ListingFormat::Find;
        let cases: &[(&[u8], ListingError)] = &[
            (b"1\x002\x00644", ListingError::Truncated { offset: 0 }),
            (
                b"x\x002\x00644\x00a\x00",
                ListingError::BadField {
                    field: "size",
                    offset: 0,
                },
            ),
            (
                b"1\x002.\x00644\x00a\x00",
                ListingError::BadField {
                    field: "mtime",
                    offset: 2,
                },
            ),
            (
                b"1\x002\x00648\x00a\x00",
                ListingError::BadField {
                    field: "mode",
                    offset: 4,
                },
            ),
            (
                b"1\x002\x00644\x00../etc/passwd\x00",
                ListingError::UnsafePath {
                    offset: 8,
                    path: "../etc/passwd".into(),
                },
            ),
            (
                b"1\x002\x00644\x00\x00",
                ListingError::UnsafePath {
                    offset: 8,
                    path: String::new(),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_listing(input, Find).unwrap_err(), *want);
        }
    }

    #[test]
    fn hash_field() {
        let h = ContentHash::of(b"x");
        let mut raw = b"1\x002\x00644\x00a\x00".to_vec();
        raw.extend_from_slice(h.to_hex().as_bytes());
        raw.extend_from_slice(b"\n\x001\x002\x00644\x00b\x00\x00");
        let got = parse_listing(&raw, ListingFormat::FindWithHash).unwrap();
        assert_eq!(got[0].hash, Some(h));
        assert_eq!(got[1].hash, None);
        assert!(
            parse_listing(
                b"1\x002\x00644\x00a\x00zz\n\x00",
                ListingFormat::FindWithHash
            )
            .is_err()
        );
    }

    fn arb_entry(with_hash: bool) -> impl Strategy<Value = Entry> {
        let component = proptest::collection::vec(1u8..=255, 1..8)
            .prop_filter("no slash, not . or ..", |c| {
                !c.contains(&b'/') && c != b"." && c != b".."
            });
        (
            proptest::collection::vec(component, 1..4),
            any::<u64>(),
            -1_000_000_000i64..4_000_000_000,
            0u32..1_000_000_000,
            0u32..=0o7777,
            any::<[u8; 32]>(),
            any::<bool>(),
        )
            .prop_map(move |(comps, size, secs, nanos, mode, h, has)| Entry {
                path: comps.join(&b'/'),
                size,
                mtime: Mtime::new(secs.max(0), nanos),
                mode,
                hash: (with_hash && has).then_some(ContentHash(h)),
            })
    }

    proptest! {
        #[test]
        fn round_trip(entries in proptest::collection::vec(arb_entry(false), 0..20)) {
            let raw: Vec<u8> = entries.iter().flat_map(|e| record(e, ListingFormat::Find)).collect();
            prop_assert_eq!(parse_listing(&raw, ListingFormat::Find).unwrap(), entries);
        }

        #[test]
        fn round_trip_with_hash(entries in proptest::collection::vec(arb_entry(true), 0..20)) {
            let raw: Vec<u8> = entries.iter().flat_map(|e| record(e, ListingFormat::FindWithHash)).collect();
            prop_assert_eq!(parse_listing(&raw, ListingFormat::FindWithHash).unwrap(), entries);
        }

        #[test]
        fn never_panics(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_listing(&raw, ListingFormat::Find);
            let _ = parse_listing(&raw, ListingFormat::FindWithHash);
        }
    }
}
