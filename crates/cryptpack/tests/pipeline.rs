//! The sealing pipeline's edges: a failing writer, an encryptor dropped half way with its
//! worker threads busy, and options out of range.

use std::io::{self, Read, Write};

use cryptpack::{Decryptor, EncryptOptions, Encryptor, Error, Key, Secret};

fn opts(threads: usize, batch: Option<usize>) -> EncryptOptions {
    EncryptOptions {
        segment_size: 4096,
        threads,
        batch_segments: batch,
        ..EncryptOptions::default()
    }
}

/// Accepts `left` bytes, then fails every write.
struct FailAfter {
    left: usize,
}

impl Write for FailAfter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("disk full (test)"));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_writer_fails_the_pack_and_everything_after() -> Result<(), Error> {
    let key = Key::from_bytes(&[1u8; 32]);
    let plain = vec![0x5au8; 2 << 20];
    for threads in [1, 2, 3] {
        let mut enc = Encryptor::new(
            FailAfter { left: 300_000 },
            Secret::Key(&key),
            &opts(threads, Some(8)),
        )?;
        let mut failed = None;
        for piece in plain.chunks(50_000) {
            if let Err(e) = enc.write_all(piece) {
                failed = Some(e);
                break;
            }
        }
        match failed {
            Some(e) => {
                assert!(
                    matches!(Error::from_io(e), Error::Io(_)),
                    "threads {threads}"
                );
                // Once failed, it stays failed.
                assert!(enc.write_all(b"more").is_err(), "threads {threads}");
                assert!(enc.finish().is_err(), "threads {threads}");
            }
            // All writes were buffered or in flight: finish must report the failure.
            None => assert!(enc.finish().is_err(), "threads {threads}"),
        }
    }
    Ok(())
}

#[test]
fn dropping_half_way_stops_the_workers_and_leaves_a_truncated_pack() -> Result<(), Error> {
    let key = Key::from_bytes(&[2u8; 32]);
    let plain = vec![7u8; 1 << 20];
    for threads in [1, 2, 4] {
        let mut pack = Vec::new();
        {
            let mut enc = Encryptor::new(&mut pack, Secret::Key(&key), &opts(threads, Some(3)))?;
            enc.write_all(&plain)?;
            // Dropped here without finish, batches still with the workers.
        }
        let mut out = Vec::new();
        let err = Decryptor::new(&pack[..], Secret::Key(&key))?
            .read_to_end(&mut out)
            .map_err(Error::from_io);
        assert!(
            matches!(err, Err(Error::Truncated { .. })),
            "threads {threads}: {err:?}"
        );
        assert!(plain.starts_with(&out), "threads {threads}");
    }
    Ok(())
}

#[test]
fn oversized_batches_are_refused_before_any_output() {
    let key = Key::from_bytes(&[3u8; 32]);
    let mut out = Vec::new();
    let o = EncryptOptions {
        segment_size: 64 << 20,
        batch_segments: Some(17),
        ..EncryptOptions::default()
    };
    let err = Encryptor::new(&mut out, Secret::Key(&key), &o).map(|_| ());
    assert!(matches!(err, Err(Error::InvalidOption(_))), "{err:?}");
    assert!(out.is_empty());
    let o = EncryptOptions {
        batch_segments: Some(usize::MAX),
        ..EncryptOptions::default()
    };
    let err = Encryptor::new(&mut out, Secret::Key(&key), &o).map(|_| ());
    assert!(matches!(err, Err(Error::InvalidOption(_))), "{err:?}");
}
