//! The hashes in a `Summary` are plain BLAKE3 of the plaintext and of the pack, whichever
//! path computed them: per-segment subtree hashes merged in order (segment sizes that are
//! powers of two of at least 1 KiB), one sequential hasher (other sizes), inline or on
//! worker threads, through `Write`, through `encrypt_stream` reading into the batches (with
//! plain and vectored reads) or through `encrypt_file` (between real files, at an offset).
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions may unwrap"
)]

use std::io::{IoSliceMut, Read, Seek, SeekFrom, Write};
use std::sync::atomic::AtomicBool;

use cryptpack::{
    DecryptOptions, Decryptor, EncryptOptions, Encryptor, HEADER_LEN, KdfParams, Key, Secret,
    Silent, Summary,
};
use proptest::prelude::*;

fn opts(segment_size: u32, threads: usize, batch: Option<usize>) -> EncryptOptions {
    EncryptOptions {
        segment_size,
        threads,
        batch_segments: batch,
        kdf: KdfParams::default(),
    }
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = vec![0u8; len];
    for c in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
    }
    out
}

/// A reader that hands out at most `step` bytes per read (and sometimes fewer).
struct Uneven<'a> {
    data: &'a [u8],
    step: usize,
    calls: usize,
}

impl Read for Uneven<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.calls += 1;
        let limit = if self.calls.is_multiple_of(3) {
            1
        } else {
            self.step
        };
        let n = buf.len().min(limit).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }

    /// Fills several buffers per call (up to `step` bytes in all, sometimes one byte), as
    /// `readv` does, stopping part way through a buffer.
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> std::io::Result<usize> {
        self.calls += 1;
        let mut limit = if self.calls.is_multiple_of(3) {
            1
        } else {
            self.step
        };
        let mut total = 0;
        for buf in bufs {
            let n = buf.len().min(limit).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            total += n;
            limit -= n;
            if limit == 0 || n < buf.len() {
                break;
            }
        }
        Ok(total)
    }
}

/// Seals `plain` with `encrypt_file`, between real files, the pack written after a few
/// bytes already in the output file: returns the summary and the pack, after checking
/// that the output's offset ends right after the pack.
fn seal_file(plain: &[u8], k: &Key, o: &EncryptOptions) -> Result<(Summary, Vec<u8>), String> {
    const BEFORE: &[u8] = b"before";
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let mut input = tempfile::tempfile().map_err(|x| e(&x))?;
    input.write_all(plain).map_err(|x| e(&x))?;
    input.seek(SeekFrom::Start(0)).map_err(|x| e(&x))?;
    let mut output = tempfile::tempfile().map_err(|x| e(&x))?;
    output.write_all(BEFORE).map_err(|x| e(&x))?;
    let s = cryptpack::encrypt_file(
        &input,
        &output,
        Secret::Key(k),
        o,
        &Silent,
        &AtomicBool::new(false),
    )
    .map_err(|x| e(&x))?;
    let end = output.stream_position().map_err(|x| e(&x))?;
    if end != BEFORE.len() as u64 + s.ciphertext_len {
        return Err(format!("encrypt_file left the offset at {end}"));
    }
    let mut all = Vec::new();
    output.seek(SeekFrom::Start(0)).map_err(|x| e(&x))?;
    output.read_to_end(&mut all).map_err(|x| e(&x))?;
    if !all.starts_with(BEFORE) {
        return Err("encrypt_file overwrote what was before its offset".into());
    }
    Ok((s, all.split_off(BEFORE.len())))
}

/// Seals `plain` both ways and checks every figure of the summary against plain BLAKE3
/// and the layout, then decrypts. Returns a description of the first mismatch.
fn check(plain: &[u8], o: &EncryptOptions, step: usize) -> Result<(), String> {
    let k = Key::from_bytes(&[9u8; 32]);
    let seg = o.segment_size as usize;
    let mut enc = Encryptor::new(Vec::new(), Secret::Key(&k), o).map_err(|e| e.to_string())?;
    for part in plain.chunks(step.max(1)) {
        enc.write_all(part).map_err(|e| e.to_string())?;
    }
    let (s1, pack1) = enc.finish_into_inner().map_err(|e| e.to_string())?;
    let mut pack2 = Vec::new();
    let mut reader = Uneven {
        data: plain,
        step,
        calls: 0,
    };
    let s2 = cryptpack::encrypt_stream(
        &mut reader,
        &mut pack2,
        Secret::Key(&k),
        o,
        &Silent,
        &AtomicBool::new(false),
    )
    .map_err(|e| e.to_string())?;
    let (s3, pack3) = seal_file(plain, &k, o)?;
    let want_plain = *blake3::hash(plain).as_bytes();
    for (how, s, pack) in [
        ("write", s1, &pack1),
        ("encrypt_stream", s2, &pack2),
        ("encrypt_file", s3, &pack3),
    ] {
        let segments = plain.len().div_ceil(seg).max(1);
        let expect = |what: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "{how}: {what} (len {}, seg {seg}, threads {}, batch {:?})",
                    plain.len(),
                    o.threads,
                    o.batch_segments
                ))
            }
        };
        expect("plaintext hash", s.plaintext_hash.0 == want_plain)?;
        expect(
            "pack hash",
            s.ciphertext_hash.0 == *blake3::hash(pack).as_bytes(),
        )?;
        expect("segments", s.segments == segments as u64)?;
        expect("plaintext_len", s.plaintext_len == plain.len() as u64)?;
        expect("ciphertext_len", s.ciphertext_len == pack.len() as u64)?;
        expect(
            "pack length",
            pack.len() == HEADER_LEN + plain.len() + 16 * segments,
        )?;
        let mut out = Vec::new();
        let mut d = Decryptor::with_options(
            &pack[..],
            Secret::Key(&k),
            &DecryptOptions {
                threads: 2,
                batch_segments: Some(3),
            },
        )
        .map_err(|e| e.to_string())?;
        d.read_to_end(&mut out).map_err(|e| e.to_string())?;
        expect("decrypts to the plaintext", out == plain)?;
        let opened: Option<Summary> = d.summary();
        expect(
            "decryptor summary",
            opened.is_some_and(|o| {
                o.plaintext_hash == s.plaintext_hash && o.ciphertext_hash == s.ciphertext_hash
            }),
        )?;
    }
    Ok(())
}

#[test]
fn one_mib_segments_at_the_edges() {
    const M: usize = 1 << 20;
    for len in [
        0,
        1,
        M - 1,
        M,
        M + 1,
        2 * M,
        3 * M + 1,
        4 * M,
        4 * M + 1,
        8 * M + 5,
    ] {
        let plain = data(len, len as u64);
        for threads in [1, 2, 3] {
            for batch in [None, Some(1), Some(3)] {
                check(&plain, &opts(M as u32, threads, batch), 300_000).unwrap();
            }
        }
    }
}

#[test]
fn other_segment_sizes_use_the_sequential_hash() {
    // Not powers of two, or smaller than a BLAKE3 chunk.
    for seg in [1000u32, 512, 3 << 10] {
        for len in [0usize, 1, 5000, 3 << 12] {
            let plain = data(len, 3);
            for threads in [1, 2] {
                check(&plain, &opts(seg, threads, Some(2)), 700).unwrap();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn tree_hashes_equal_plain_blake3(
        log in 10u32..13,
        shape in 0usize..9,
        multiple in 1usize..12,
        random_len in 0usize..60_000,
        threads in 1usize..4,
        batch in 1usize..5,
        step in 1usize..9000,
        seed in any::<u64>(),
    ) {
        let seg = 1usize << log;
        let len = match shape {
            0 => 0,
            1 => 1,
            2 => seg - 1,
            3 => seg + 1,
            4 => multiple * seg,
            5 => multiple * seg + 1,
            6 => multiple * seg - 1,
            7 => batch * seg * multiple,
            _ => random_len,
        };
        let plain = data(len, seed);
        let o = opts(seg as u32, threads, Some(batch));
        prop_assert_eq!(check(&plain, &o, step), Ok(()));
    }
}
