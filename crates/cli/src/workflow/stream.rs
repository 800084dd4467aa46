//! Packs sealed straight onto the tape: no pack file on disk.
//!
//! `run` hands the tape writer [`Unit`]s (the contents of one pack, not yet sealed). An
//! LTFS session turns one into a [`PackStream`]: a thread seals the unit (the same
//! [`seal_items`] as `pack`) into a bounded in-memory pipe, and the LTFS writer reads the
//! pack's bytes from the other end as the file `tapebackup/packs/<name>`, under a name
//! generated before the pack is recorded. At early warning the stream stays open and goes
//! on, as the pack's next part, on the next tape.
//!
//! Durability: nothing about a streamed pack is in the catalog until it is on tape under
//! an LTFS index. At the writer's next sync point one transaction records the pack (under
//! its name, [`catalog::Txn::record_pack_named`]) and its locations, and forgets the fetch
//! of members that changed while they were read; only after that commit is staged
//! plaintext deleted. Killed before, the catalog still lists the contents as unpacked (the
//! next run packs them again) and the tape holds an LTFS file no pack refers to. Each
//! byte is read once from the source and written once, to the tape.
//!
//! Memory: a pipe holds about the `buffer` given to [`PackStream::start`] (chunks of
//! [`CHUNK`], recycled; two more in the hands of the two ends). A session gives each
//! stream half of `tapes.buffer`: one is written while the next is sealed ahead.

use std::io::{BufRead, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel, sync_channel};
use std::thread::JoinHandle;

use super::Silent;
use super::pack::{SealedItems, Unit, seal_items};

/// Bytes per pipe message.
pub const CHUNK: usize = 1 << 20;

/// What the sealing thread made of a unit.
#[derive(Debug)]
pub struct StreamSealed {
    /// The unit, handed back.
    pub unit: Unit,
    /// The pack (`None` when every member changed since `get`) and which items are in it.
    pub(super) sealed: SealedItems,
}

enum Msg {
    Data(Vec<u8>),
    End,
}

/// A pack being sealed on a thread of its own; reading it gives the pack's bytes.
pub struct PackStream {
    name: String,
    rx: Option<Receiver<Msg>>,
    /// Emptied chunks go back to the sealing thread.
    free: Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    ended: bool,
    read: u64,
    stop: Arc<AtomicBool>,
    /// The sealing thread hands the unit back whatever happened.
    thread: Option<JoinHandle<(Unit, anyhow::Result<SealedItems>)>>,
}

impl std::fmt::Debug for PackStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackStream")
            .field("name", &self.name)
            .field("read", &self.read)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// The writing end of the pipe.
struct PipeWriter {
    tx: SyncSender<Msg>,
    free: Receiver<Vec<u8>>,
    buf: Vec<u8>,
}

impl PipeWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let fresh = match self.free.try_recv() {
            Ok(mut v) => {
                v.clear();
                v
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => Vec::with_capacity(CHUNK),
        };
        let full = std::mem::replace(&mut self.buf, fresh);
        self.tx
            .send(Msg::Data(full))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "tape writer gone"))
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl PackStream {
    /// Starts sealing `unit` under the pack name `name`, with at most `buffer` bytes
    /// waiting in the pipe.
    pub fn start(
        unit: Unit,
        key: cryptpack::Key,
        name: String,
        buffer: usize,
    ) -> anyhow::Result<PackStream> {
        let slots = (buffer / CHUNK).max(2);
        let (tx, rx) = sync_channel(slots);
        let (free_tx, free_rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("seal".into())
            .spawn(move || {
                let mut w = PipeWriter {
                    tx,
                    free: free_rx,
                    buf: Vec::with_capacity(CHUNK),
                };
                let sealed = (|| {
                    let items = unit.items();
                    let refs: Vec<_> = items.iter().collect();
                    let sealed = seal_items(&key, &refs, &mut w, &Silent, &thread_stop)?;
                    w.flush()?;
                    w.tx.send(Msg::End)
                        .map_err(|_| anyhow::anyhow!("tape writer gone"))?;
                    Ok(sealed)
                })();
                (unit, sealed)
            })?;
        Ok(PackStream {
            name,
            rx: Some(rx),
            free: free_tx,
            cur: Vec::new(),
            pos: 0,
            ended: false,
            read: 0,
            stop,
            thread: Some(thread),
        })
    }

    /// The pack's generated name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Once every byte was read: what was sealed. The bytes read must be the pack's
    /// whole ciphertext.
    pub fn finish(mut self) -> anyhow::Result<StreamSealed> {
        if !self.ended {
            // The reader stopped before the end: read on to see whether anything is left.
            let mut probe = [0u8; 1];
            if self.read(&mut probe)? != 0 {
                anyhow::bail!("pack {}: stream finished before its end", self.name);
            }
        }
        let thread = self
            .thread
            .take()
            .ok_or_else(|| anyhow::anyhow!("pack {}: stream finished twice", self.name))?;
        let (unit, sealed) = thread
            .join()
            .map_err(|_| anyhow::anyhow!("pack {}: the sealing thread panicked", self.name))?;
        let done = StreamSealed {
            unit,
            sealed: sealed?,
        };
        if let Some(p) = &done.sealed.pack
            && p.cipher_size != self.read
        {
            anyhow::bail!(
                "pack {}: {} bytes streamed, the pack has {}",
                self.name,
                self.read,
                p.cipher_size
            );
        }
        Ok(done)
    }

    /// Stops sealing and gives the unit back (to be sealed again from its start, under
    /// a new name: the bytes already written stay on tape, referenced by nothing).
    pub fn abandon(mut self) -> anyhow::Result<Unit> {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.rx.take());
        let thread = self
            .thread
            .take()
            .ok_or_else(|| anyhow::anyhow!("pack {}: stream finished twice", self.name))?;
        let (unit, _) = thread
            .join()
            .map_err(|_| anyhow::anyhow!("pack {}: the sealing thread panicked", self.name))?;
        Ok(unit)
    }

    /// The sealing thread's error after the pipe closed early.
    fn failure(&mut self) -> std::io::Error {
        let why = match self.thread.take().map(JoinHandle::join) {
            Some(Ok((_, Err(e)))) => format!("{e:#}"),
            Some(Err(_)) => "the sealing thread panicked".to_owned(),
            Some(Ok((_, Ok(_)))) | None => "the sealing thread stopped".to_owned(),
        };
        std::io::Error::other(format!("sealing pack {}: {why}", self.name))
    }
}

impl PackStream {
    /// Takes the next message from the pipe (the current chunk is used up).
    fn recv(&mut self) -> std::io::Result<()> {
        let msg = match &self.rx {
            Some(rx) => rx.recv().ok(),
            None => None,
        };
        match msg {
            Some(Msg::Data(v)) => {
                let old = std::mem::replace(&mut self.cur, v);
                self.pos = 0;
                if old.capacity() > 0 {
                    let _ = self.free.send(old);
                }
                Ok(())
            }
            Some(Msg::End) => {
                self.ended = true;
                Ok(())
            }
            None => Err(self.failure()),
        }
    }
}

impl BufRead for PackStream {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.pos >= self.cur.len() && !self.ended {
            self.recv()?;
        }
        Ok(&self.cur[self.pos.min(self.cur.len())..])
    }

    fn consume(&mut self, amount: usize) {
        let n = amount.min(self.cur.len().saturating_sub(self.pos));
        self.pos += n;
        self.read += n as u64;
    }
}

impl Read for PackStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let avail = self.fill_buf()?;
        let n = buf.len().min(avail.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl Drop for PackStream {
    fn drop(&mut self) {
        // A stream dropped before its end (the session failed or was cancelled): close
        // the pipe so the sealing thread stops, then wait for it.
        self.stop.store(true, Ordering::Relaxed);
        drop(self.rx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use catalog::{Catalog, Digest, HashAlgo, ScannedFile, Timestamp, VersionInfo};
    use std::path::Path;

    /// Catalog versions of `files` (path, bytes, recorded hash = the bytes' BLAKE3 unless
    /// `wrong`), written under `dir`: a unit of them read in place (or staged).
    fn unit_of(dir: &Path, files: &[(&str, Vec<u8>, bool)], in_place: bool) -> Unit {
        let mut cat = Catalog::open_in_memory().unwrap();
        let now = Timestamp::from_unix_seconds(1_700_000_000);
        let src = cat.write(|tx| tx.add_source("s", "/s", now)).unwrap();
        let mut items = Vec::new();
        for (i, (path, bytes, wrong)) in files.iter().enumerate() {
            let file = dir.join(path);
            std::fs::write(&file, bytes).unwrap();
            let mut h = *blake3::hash(bytes).as_bytes();
            if *wrong {
                h[0] ^= 1;
            }
            let hash = Digest::new(HashAlgo::Blake3, h.to_vec()).unwrap();
            let v = cat
                .write(|tx| {
                    let v = tx
                        .record_scan(
                            src,
                            &ScannedFile {
                                path: (*path).to_owned(),
                                size: bytes.len() as u64,
                                mtime: now,
                                mode: 0o644,
                                hash: None,
                            },
                            now,
                        )?
                        .version;
                    tx.record_fetched(v, &hash, bytes.len() as u64)?;
                    tx.read().version(v)
                })
                .unwrap();
            let v: VersionInfo = v;
            assert_eq!(v.hash.as_ref(), Some(&hash), "file {i}");
            items.push((v, file, in_place));
        }
        Unit::of_items(items)
    }

    /// A stream of `unit` under a fresh key, with a 1 MiB pipe.
    fn start(unit: Unit, name: &str) -> PackStream {
        PackStream::start(
            unit,
            cryptpack::Key::generate().unwrap(),
            name.into(),
            1 << 20,
        )
        .unwrap()
    }

    fn noise(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
    }

    fn decrypt(key: &cryptpack::Key, pack: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        cryptpack::decrypt_stream(
            pack,
            &mut out,
            cryptpack::Secret::Key(key),
            &cryptpack::DecryptOptions::default(),
            &cryptpack::Silent,
            &AtomicBool::new(false),
        )
        .unwrap();
        out
    }

    #[test]
    fn a_streamed_bundle_decrypts_to_its_members() {
        let tmp = tempfile::tempdir().unwrap();
        let key = cryptpack::Key::generate().unwrap();
        let (a, b) = (noise(3 << 20, 1), noise(70_000, 2));
        let unit = unit_of(
            tmp.path(),
            &[("a", a.clone(), false), ("b", b.clone(), false)],
            true,
        );
        let mut s = PackStream::start(unit, key.clone(), "n".into(), 4 << 20).unwrap();
        let mut bytes = Vec::new();
        s.read_to_end(&mut bytes).unwrap();
        let done = s.finish().unwrap();
        let pack = done.sealed.pack.as_ref().unwrap();
        assert_eq!(pack.cipher_size, bytes.len() as u64);
        assert_eq!(pack.members.len(), 2);
        assert_eq!(done.sealed.packed, vec![0, 1]);
        assert!(done.sealed.gone.is_empty());
        assert_eq!(decrypt(&key, &bytes), [a, b].concat());
        assert_eq!(
            pack.cipher_hash.bytes(),
            blake3::hash(&bytes).as_bytes().as_slice()
        );
    }

    #[test]
    fn a_member_that_changed_is_left_out() {
        let tmp = tempfile::tempdir().unwrap();
        let unit = unit_of(
            tmp.path(),
            &[("a", noise(5000, 1), true), ("b", noise(6000, 2), false)],
            true,
        );
        let mut s = start(unit, "n");
        std::io::copy(&mut s, &mut std::io::sink()).unwrap();
        let done = s.finish().unwrap();
        assert_eq!(done.sealed.packed, vec![1]);
        assert_eq!(done.sealed.gone.len(), 1);
        assert_eq!(done.sealed.gone[0].0, 0);
        assert!(done.sealed.gone[0].1.contains("changed"), "{done:?}");
        // A single content that changed: no pack at all.
        let unit = unit_of(tmp.path(), &[("c", noise(2 << 20, 3), true)], true);
        let mut s = start(unit, "m");
        std::io::copy(&mut s, &mut std::io::sink()).unwrap();
        let done = s.finish().unwrap();
        assert!(done.sealed.pack.is_none() && done.sealed.packed.is_empty());
    }

    #[test]
    fn a_sealing_failure_reaches_the_reader_as_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        // Staged plaintext that is not what was recorded: staging was modified.
        let unit = unit_of(tmp.path(), &[("a", noise(10_000, 1), true)], false);
        let mut s = start(unit, "n");
        let e = std::io::copy(&mut s, &mut std::io::sink()).unwrap_err();
        assert!(e.to_string().contains("staging was modified"), "{e}");
    }

    #[test]
    fn an_abandoned_stream_gives_its_unit_back() {
        let tmp = tempfile::tempdir().unwrap();
        let unit = unit_of(tmp.path(), &[("a", noise(8 << 20, 1), false)], true);
        let mut s = start(unit, "n");
        let mut some = vec![0u8; 100_000];
        s.read_exact(&mut some).unwrap();
        let unit = s.abandon().unwrap();
        assert_eq!(unit.files(), 1);
        assert_eq!(unit.plain_bytes(), 8 << 20);
        // Dropping a stream half read stops its thread too (the test would hang otherwise).
        let mut s = start(unit, "m");
        s.read_exact(&mut some).unwrap();
        drop(s);
    }

    #[test]
    fn pipe_writer_sends_full_chunks_and_the_rest_on_flush() {
        let (tx, rx) = sync_channel(8);
        let (_free_tx, free_rx) = channel();
        let mut w = PipeWriter {
            tx,
            free: free_rx,
            buf: Vec::with_capacity(CHUNK),
        };
        let data: Vec<u8> = (0..(CHUNK * 2 + 10)).map(|i| (i % 251) as u8).collect();
        w.write_all(&data).unwrap();
        w.flush().unwrap();
        drop(w);
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        while let Ok(Msg::Data(v)) = rx.recv() {
            sizes.push(v.len());
            got.extend(v);
        }
        assert_eq!(sizes, vec![CHUNK, CHUNK, 10]);
        assert_eq!(got, data);
    }

    #[test]
    fn a_closed_reader_stops_the_writer() {
        let (tx, rx) = sync_channel(1);
        let (_free_tx, free_rx) = channel();
        let mut w = PipeWriter {
            tx,
            free: free_rx,
            buf: Vec::new(),
        };
        drop(rx);
        let e = w.write_all(&vec![0u8; CHUNK * 2]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
    }
}
