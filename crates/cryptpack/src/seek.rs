//! Random access: `Read + Seek` over the plaintext, decrypting only the segments needed.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};

use crate::cipher::{DataKey, open_pack};
use crate::error::{Error, Result};
use crate::format::{HEADER_LEN, Header, Layout, TAG_LEN};
use crate::key::Secret;
use crate::read::{read_full, read_header};

/// Random access to a pack's plaintext. Opening it checks the header and authenticates the
/// final segment (so a truncated or extended pack is refused up front); each read then
/// decrypts and authenticates only the segment it touches (one segment is cached).
pub struct PackReader<R: Read + Seek> {
    inner: R,
    header: Header,
    dk: DataKey,
    layout: Layout,
    pos: u64,
    cached: Option<u64>,
    plain: Vec<u8>,
    raw: Vec<u8>,
}

impl<R: Read + Seek> fmt::Debug for PackReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackReader")
            .field("layout", &self.layout)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl<R: Read + Seek> PackReader<R> {
    /// Opens a pack that starts at offset 0 of `inner` and ends at its end.
    pub fn open(mut inner: R, secret: Secret<'_>) -> Result<PackReader<R>> {
        inner.seek(SeekFrom::Start(0))?;
        let header = read_header(&mut inner)?;
        let dk = open_pack(&header, secret)?;
        let pack_len = inner.seek(SeekFrom::End(0))?;
        let layout = Layout::new(header.segment_size(), pack_len)?;
        let mut r = PackReader {
            inner,
            header,
            dk,
            layout,
            pos: 0,
            cached: None,
            plain: Vec::new(),
            raw: Vec::new(),
        };
        r.load(layout.segments - 1)?;
        Ok(r)
    }

    /// The pack header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Plaintext length in bytes.
    pub fn len(&self) -> u64 {
        self.layout.plaintext_len
    }

    /// True when the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.layout.plaintext_len == 0
    }

    /// The pack's layout (segment count, sizes).
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Decrypts segment `index` into the cache.
    fn load(&mut self, index: u64) -> Result<()> {
        if self.cached == Some(index) {
            return Ok(());
        }
        self.cached = None;
        let offset = self.layout.segment_offset(index);
        let len = self.layout.segment_len(index) as usize;
        self.inner.seek(SeekFrom::Start(offset))?;
        self.raw.resize(len, 0);
        let got = read_full(&mut self.inner, &mut self.raw)?;
        if got < len {
            // The file shrank since it was opened.
            return Err(Error::Truncated {
                len: offset + got as u64,
            });
        }
        self.plain.clear();
        self.plain.extend_from_slice(&self.raw);
        let last = index + 1 == self.layout.segments;
        self.dk
            .open_classified(index, last, &mut self.plain, &self.raw, offset)?;
        self.plain.truncate(len - TAG_LEN);
        self.cached = Some(index);
        Ok(())
    }
}

impl<R: Read + Seek> Read for PackReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.layout.plaintext_len || buf.is_empty() {
            return Ok(0);
        }
        let seg = u64::from(self.layout.segment_size);
        let index = self.pos / seg;
        self.load(index).map_err(Error::into_io)?;
        let within = (self.pos - index * seg) as usize;
        let n = buf.len().min(self.plain.len() - within);
        buf[..n].copy_from_slice(&self.plain[within..within + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for PackReader<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.layout.plaintext_len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )),
        }
    }
}

/// Shape of a pack found without the key: its header and layout.
#[derive(Debug, Clone)]
pub struct PackInfo {
    /// The header.
    pub header: Header,
    /// Sizes derived from the pack length.
    pub layout: Layout,
}

/// Reads a pack's header and computes its sizes from its length (no key needed). The sizes
/// are only as trustworthy as the length: authentication needs the key.
pub fn inspect(mut r: impl Read + Seek) -> Result<PackInfo> {
    r.seek(SeekFrom::Start(0))?;
    let header = read_header(&mut r)?;
    let len = r.seek(SeekFrom::End(0))?;
    debug_assert!(len >= HEADER_LEN as u64);
    let layout = Layout::new(header.segment_size(), len)?;
    Ok(PackInfo { header, layout })
}
