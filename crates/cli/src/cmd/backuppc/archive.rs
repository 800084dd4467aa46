//! `tapebackup backuppc archive`: BackupPC's `ArchiveClientCmd`.
//!
//! `tarCreatePath -t -h HOST -n NUM -s SHARE .` | compressor → cut into `chunk_size` pieces →
//! each sealed with cryptpack into a bounded in-memory pipe → uploaded (multipart, parallel
//! parts) while the next piece is being sealed → journal after each chunk → HEAD check of
//! every chunk → manifest last. Nothing of the tar is staged on disk.
//!
//! Resume: a journal left by an interrupted run lists the chunks that landed, with the
//! BLAKE3 of their plaintext. The re-run regenerates the stream and, for those chunks, only
//! hashes it; a chunk whose hash and stored size match is kept, and sealing starts at the
//! first one that does not. If the regenerated stream differs before that point, the pass
//! restarts with fewer chunks trusted (never mixing two different streams).

use std::io::{self, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};

use anyhow::{Context as _, anyhow, bail};
use cloud::{NoProgress, Store};
use cryptpack::{EncryptOptions, Encryptor, Key, Passphrase, Secret};

use super::config::{Compression, SealWith, Settings};
use super::manifest::{
    ChunkRecord, FORMAT, Journal, Manifest, Params, archive_dir, chunk_key, now,
};
use super::records::Recorder;

/// What we use of the 11 arguments BackupPC passes to `ArchiveClientCmd` (`$splitpath`,
/// `$parpath`, `$archiveloc` and `$parfile` are not needed: we cut the stream ourselves, the
/// object store keeps its own redundancy, and nothing is staged on disk).
#[derive(Debug, Clone)]
pub struct BackupPcArgs {
    /// `$tarCreatePath`.
    pub tar_create: String,
    /// `$host`.
    pub host: String,
    /// `$backupnumber`.
    pub backup: u64,
    /// `$compression`: the compressor program (`/bin/cat` = none).
    pub comp_path: String,
    /// `$compext`.
    pub comp_ext: String,
    /// `$splitsize` in bytes (0 = our configured chunk size).
    pub split_size: u64,
    /// `$share` (`*` = all shares).
    pub share: String,
}

/// Block size of the pipe between sealing and uploading.
const BLOCK: usize = 1 << 20;
/// Blocks the pipe holds: sealing runs at most this far ahead of the upload.
const PIPE_BLOCKS: usize = 16;

enum Block {
    Data(Vec<u8>),
    End,
}

/// The sealing side of the pipe.
struct PipeWriter {
    tx: SyncSender<Block>,
    buf: Vec<u8>,
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= BLOCK {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK));
            self.tx
                .send(Block::Data(full))
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "upload stopped"))?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PipeWriter {
    fn end(mut self) -> io::Result<()> {
        let rest = std::mem::take(&mut self.buf);
        let gone = |_| io::Error::new(io::ErrorKind::BrokenPipe, "upload stopped");
        if !rest.is_empty() {
            self.tx.send(Block::Data(rest)).map_err(gone)?;
        }
        self.tx.send(Block::End).map_err(gone)
    }
}

/// The upload side: a `Read` that fails (so the upload is aborted) when the sealing side
/// went away without marking the end.
struct PipeReader {
    rx: Receiver<Block>,
    cur: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Block::Data(d)) => {
                    self.cur = d;
                    self.pos = 0;
                }
                Ok(Block::End) => self.ended = true,
                Err(_) => {
                    return Err(io::Error::other(
                        "chunk incomplete: sealing stopped before its end",
                    ));
                }
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

struct Job {
    index: u64,
    key: String,
    rx: Receiver<Block>,
    /// Offset and sealing summary, sent when the chunk is complete and good.
    summary: Receiver<(u64, cryptpack::Summary)>,
}

/// The tar (and compressor) processes.
struct Source {
    children: Vec<(String, Child)>,
    out: Box<dyn Read + Send>,
}

impl Source {
    fn spawn(args: &BackupPcArgs, compressor: &[String]) -> anyhow::Result<Source> {
        let backup = args.backup.to_string();
        let mut tar = Command::new(&args.tar_create)
            .args([
                "-t",
                "-h",
                &args.host,
                "-n",
                &backup,
                "-s",
                &args.share,
                ".",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", args.tar_create))?;
        let tar_out = tar.stdout.take().context("tar stdout")?;
        let mut children = vec![(args.tar_create.clone(), tar)];
        let out: Box<dyn Read + Send> = match compressor.split_first() {
            None => Box::new(tar_out),
            Some((prog, rest)) => {
                let mut c = Command::new(prog)
                    .args(rest)
                    .stdin(Stdio::from(tar_out))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .with_context(|| format!("starting the compressor {prog}"))?;
                let cout = c.stdout.take().context("compressor stdout")?;
                children.push((prog.clone(), c));
                Box::new(cout)
            }
        };
        Ok(Source { children, out })
    }

    /// Waits for the processes once their output ended; an error names the first that
    /// failed.
    fn wait(&mut self) -> anyhow::Result<()> {
        let mut first_err = None;
        for (name, child) in &mut self.children {
            let status = child
                .wait()
                .with_context(|| format!("waiting for {name}"))?;
            if !status.success() && first_err.is_none() {
                first_err = Some(anyhow!("{name} failed: {status}"));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Waits for the processes; an error names the first that failed.
    fn finish(mut self) -> anyhow::Result<()> {
        drop(self.out);
        let mut first_err = None;
        for (name, child) in &mut self.children {
            let status = child
                .wait()
                .with_context(|| format!("waiting for {name}"))?;
            if !status.success() && first_err.is_none() {
                first_err = Some(anyhow!("{name} failed: {status}"));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn kill(mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads until `buf` is full or the stream ends.
fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Compressor command line, decompress command and extension for the run.
fn compression(args: &BackupPcArgs, choice: &Compression) -> (Vec<String>, String, String) {
    match choice {
        Compression::None => (vec![], "cat".into(), ".raw".into()),
        Compression::Zstd => (
            vec!["zstd".into(), "-q".into(), "-c".into(), "-T0".into()],
            "zstd -dc".into(),
            ".zst".into(),
        ),
        Compression::FromBackupPc => {
            let base = std::path::Path::new(&args.comp_path)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if args.comp_path.is_empty() || base == "cat" {
                (vec![], "cat".into(), args.comp_ext.clone())
            } else {
                (
                    vec![args.comp_path.clone()],
                    format!("{base} -dc"),
                    args.comp_ext.clone(),
                )
            }
        }
    }
}

enum Sealer {
    Key(Key),
    Pass(Passphrase),
}

impl Sealer {
    fn secret(&self) -> Secret<'_> {
        match self {
            Sealer::Key(k) => Secret::Key(k),
            Sealer::Pass(p) => Secret::Passphrase(p),
        }
    }
    fn id(&self) -> String {
        match self {
            Sealer::Key(k) => k.id().to_string(),
            Sealer::Pass(_) => "passphrase".into(),
        }
    }
}

/// What one pass over the stream ended with.
enum Pass {
    Done {
        chunks: Vec<ChunkRecord>,
        plain_size: u64,
        stream_blake3: String,
    },
    /// The regenerated stream differs from the journal at this chunk.
    Mismatch(usize),
}

/// Runs the archive. Returns the manifest written.
pub fn run(
    args: &BackupPcArgs,
    settings: &Settings,
    log: &mut dyn Write,
    cancel: &AtomicBool,
) -> anyhow::Result<Manifest> {
    let store = settings.store.as_ref();
    cloud::validate_key(&args.host).with_context(|| format!("host name {:?}", args.host))?;
    let sealer = match &settings.seal {
        Some(SealWith::Key(path)) => Sealer::Key(
            Key::read_file(path).with_context(|| format!("reading key file {}", path.display()))?,
        ),
        Some(SealWith::Passphrase(path)) => Sealer::Pass(
            Passphrase::read_file(path)
                .with_context(|| format!("reading passphrase file {}", path.display()))?,
        ),
        None => bail!(
            "no key configured: set backuppc.key_file or backuppc.passphrase_file in {}",
            settings.source.display()
        ),
    };
    let chunk_size = if args.split_size > 0 {
        args.split_size
    } else {
        settings.chunk_size
    };
    let (compressor, decompress, extension) = compression(args, &settings.compression);
    let params = Params {
        chunk_size,
        compressor: compressor.join(" "),
        decompress,
        extension,
        key_id: sealer.id(),
        share: args.share.clone(),
    };
    let dir = archive_dir(&settings.prefix, &args.host, args.backup);
    let manifest_key = format!("{dir}/manifest.json");
    let journal_key = format!("{dir}/journal.json");

    let mut recorder = Recorder::open(
        settings,
        &args.host,
        args.backup,
        &params.key_id,
        &params.extension,
    )?;
    match store.get(&manifest_key) {
        Ok(bytes) => {
            let m: Manifest = serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {manifest_key}"))?;
            recorder.backfill(&m)?;
            writeln!(
                log,
                "archive of {} #{} is already complete ({} chunks); nothing to do",
                m.host,
                m.backup,
                m.chunks.len()
            )?;
            return Ok(m);
        }
        Err(cloud::Error::NotFound { .. }) => {}
        Err(e) => return Err(e).context("looking for an existing manifest"),
    }

    // What an earlier run left: trust journal chunks whose object is there with its size.
    let existing: std::collections::HashMap<String, u64> = store
        .list(&dir)
        .context("listing the archive's objects")?
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    let started = now();
    let mut journal = Journal {
        format: FORMAT.into(),
        host: args.host.clone(),
        backup: args.backup,
        params: params.clone(),
        chunks: vec![],
        started,
    };
    // Two records of an earlier run: the catalog's (the job's resume state) and the
    // bucket's journal.json; the one with more chunks still in the store wins.
    let from_bucket = match store.get(&journal_key) {
        Ok(bytes) => serde_json::from_slice::<Journal>(&bytes).ok(),
        Err(_) => None,
    };
    let candidates = [
        ("the catalog", recorder.journal()?),
        ("the bucket's journal", from_bucket),
    ];
    let mut best: Option<(&str, Journal)> = None;
    for (from, old) in candidates {
        let Some(old) = old.filter(|j| j.params == params) else {
            continue;
        };
        let mut kept = Journal {
            chunks: vec![],
            ..old.clone()
        };
        for c in old.chunks {
            if existing.get(&c.key) != Some(&c.size) {
                break;
            }
            kept.chunks.push(c);
        }
        if best
            .as_ref()
            .is_none_or(|(_, b)| kept.chunks.len() > b.chunks.len())
        {
            best = Some((from, kept));
        }
    }
    if let Some((from, old)) = best {
        journal.started = old.started;
        journal.chunks = old.chunks;
        if !journal.chunks.is_empty() {
            writeln!(
                log,
                "resuming: {} chunk(s) of an earlier run (recorded in {from}) are in the store; checking them against the stream",
                journal.chunks.len()
            )?;
        }
    }
    recorder.start(&journal, &store.location())?;
    let result = archive(
        args,
        settings,
        &compressor,
        &sealer,
        params,
        &dir,
        chunk_size,
        journal,
        existing,
        &mut recorder,
        log,
        cancel,
    );
    recorder.finish(result.as_ref())?;
    result
}

/// Archives the stream into the store after the resume point is known: passes until one
/// completes, a HEAD check of every chunk, stale chunks removed, the manifest written.
#[allow(clippy::too_many_arguments, reason = "one internal call site")]
fn archive(
    args: &BackupPcArgs,
    settings: &Settings,
    compressor: &[String],
    sealer: &Sealer,
    params: Params,
    dir: &str,
    chunk_size: u64,
    mut journal: Journal,
    existing: std::collections::HashMap<String, u64>,
    recorder: &mut Recorder,
    log: &mut dyn Write,
    cancel: &AtomicBool,
) -> anyhow::Result<Manifest> {
    let store = settings.store.as_ref();
    let manifest_key = format!("{dir}/manifest.json");
    let journal_key = format!("{dir}/journal.json");

    let mut trusted = journal.chunks.len();
    let (chunks, plain_size, stream_blake3) = loop {
        match pass(
            args,
            compressor,
            store,
            sealer,
            dir,
            chunk_size,
            &mut journal,
            &journal_key,
            trusted,
            recorder,
            log,
            cancel,
        )? {
            Pass::Done {
                chunks,
                plain_size,
                stream_blake3,
            } => break (chunks, plain_size, stream_blake3),
            Pass::Mismatch(at) => {
                writeln!(
                    log,
                    "the regenerated stream differs at chunk {at}: re-archiving from there"
                )?;
                trusted = at;
                journal.chunks.truncate(at);
            }
        }
    };

    // Verify what landed (size by HEAD; content hashes were signed on the way up).
    for c in &chunks {
        let info = store
            .head(&c.key)
            .with_context(|| format!("checking chunk {}", c.index))?;
        if info.size != c.size {
            return Err(cloud::Error::SizeMismatch {
                key: c.key.clone(),
                expected: c.size,
                actual: info.size,
            })
            .context("verifying the uploaded chunks");
        }
    }
    // Chunks left by an earlier, longer run.
    for key in existing.keys() {
        let stale = key
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with("chunk-"))
            && !chunks.iter().any(|c| &c.key == key);
        if stale {
            store
                .delete(key)
                .with_context(|| format!("deleting stale {key}"))?;
        }
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: 1,
        tool: format!("tapebackup {}", env!("CARGO_PKG_VERSION")),
        host: args.host.clone(),
        backup: args.backup,
        params,
        size: chunks.iter().map(|c| c.size).sum(),
        chunks,
        plain_size,
        stream_blake3,
        started: journal.started,
        finished: now(),
    };
    store
        .put(&manifest_key, &serde_json::to_vec_pretty(&manifest)?)
        .context("writing the manifest")?;
    store.delete(&journal_key).context("removing the journal")?;
    Ok(manifest)
}

/// One pass over a freshly generated stream.
#[allow(clippy::too_many_arguments, reason = "one internal call site")]
fn pass(
    args: &BackupPcArgs,
    compressor: &[String],
    store: &dyn Store,
    sealer: &Sealer,
    dir: &str,
    chunk_size: u64,
    journal: &mut Journal,
    journal_key: &str,
    trusted: usize,
    recorder: &mut Recorder,
    log: &mut dyn Write,
    cancel: &AtomicBool,
) -> anyhow::Result<Pass> {
    let mut source = Source::spawn(args, compressor)?;
    let mut stream_hash = blake3::Hasher::new();
    let mut offset = 0u64;
    let mut chunks: Vec<ChunkRecord> = Vec::new();
    let mut buf = vec![0u8; BLOCK];
    let opts = EncryptOptions::default();

    // Hash the trusted chunks without sealing them.
    for i in 0..trusted {
        let rec = journal.chunks[i].clone();
        let mut h = blake3::Hasher::new();
        let mut left = chunk_size;
        let mut got = 0u64;
        while left > 0 {
            let want = usize::try_from(left.min(BLOCK as u64)).unwrap_or(BLOCK);
            let n =
                read_up_to(&mut source.out, &mut buf[..want]).context("reading the tar stream")?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            stream_hash.update(&buf[..n]);
            got += n as u64;
            left -= n as u64;
        }
        if got != rec.plain_size || h.finalize().to_hex().to_string() != rec.plain_blake3 {
            source.kill();
            return Ok(Pass::Mismatch(i));
        }
        writeln!(
            log,
            "chunk {i}: already in the store, unchanged ({} bytes)",
            rec.size
        )?;
        offset += got;
        chunks.push(rec);
    }

    // The upload thread uploads each chunk as it is sealed and, once it landed, records
    // it (HEAD check, the bucket's journal, the catalog) right away: a chunk counts as done
    // as soon as it is in the store, whatever the tar stream does next.
    let (job_tx, job_rx) = sync_channel::<Job>(1);
    let (res_tx, res_rx) = channel::<anyhow::Result<()>>();
    let log_lines = std::sync::Mutex::new(Vec::<String>::new());
    let result: anyhow::Result<()> = std::thread::scope(|s| {
        let uploader = s.spawn({
            let chunks = &mut chunks;
            let journal = &mut *journal;
            let recorder = &mut *recorder;
            let log_lines = &log_lines;
            move || {
                for job in job_rx {
                    let mut reader = PipeReader {
                        rx: job.rx,
                        cur: Vec::new(),
                        pos: 0,
                        ended: false,
                    };
                    let r = store
                        .upload(&job.key, &mut reader, &NoProgress, cancel)
                        .map_err(|e| anyhow::Error::new(e).context("uploading a chunk"))
                        .and_then(|up| {
                            // Sent once sealing ended (and, for the last chunk, once the tar
                            // stream ended well); none: the stream failed, record nothing.
                            let (offset, summary) = job.summary.recv().map_err(|_| {
                                anyhow!("chunk {}: the tar stream failed", job.index)
                            })?;
                            let rec = record(
                                store,
                                job.index,
                                offset,
                                &summary,
                                &up,
                                journal,
                                journal_key,
                                recorder,
                            )?;
                            if let Ok(mut l) = log_lines.lock() {
                                l.push(format!(
                                    "chunk {}: {} bytes -> {} ({} part(s), sha256 {})",
                                    rec.index, rec.size, rec.key, up.parts, rec.sha256
                                ));
                            }
                            chunks.push(rec);
                            Ok(())
                        });
                    let failed = r.is_err();
                    let _ = res_tx.send(r);
                    if failed {
                        break;
                    }
                }
            }
        });
        let sealed = (|| {
            let mut index = trusted as u64;
            let mut first = true;
            loop {
                flush_log(&log_lines, log)?;
                // The first block of the chunk: no block, no chunk (except an empty stream).
                let want = usize::try_from(chunk_size.min(BLOCK as u64)).unwrap_or(BLOCK);
                let n = read_up_to(&mut source.out, &mut buf[..want])
                    .context("reading the tar stream")?;
                if n == 0 && !(first && trusted == 0) {
                    source.wait()?;
                    break;
                }
                if n == 0 {
                    source.wait()?;
                    bail!("{} produced no output", args.tar_create);
                }
                first = false;
                let (tx, rx) = sync_channel::<Block>(PIPE_BLOCKS);
                let (sum_tx, sum_rx) = sync_channel::<(u64, cryptpack::Summary)>(1);
                let key = chunk_key(dir, index);
                job_tx
                    .send(Job {
                        index,
                        key,
                        rx,
                        summary: sum_rx,
                    })
                    .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "upload stopped"))?;
                let pipe = PipeWriter {
                    tx,
                    buf: Vec::with_capacity(BLOCK),
                };
                let mut enc = Encryptor::new(pipe, sealer.secret(), &opts)?;
                enc.write_all(&buf[..n])?;
                stream_hash.update(&buf[..n]);
                let mut got = n as u64;
                while got < chunk_size {
                    let want =
                        usize::try_from((chunk_size - got).min(BLOCK as u64)).unwrap_or(BLOCK);
                    let n = read_up_to(&mut source.out, &mut buf[..want])
                        .context("reading the tar stream")?;
                    if n == 0 {
                        break;
                    }
                    enc.write_all(&buf[..n])?;
                    stream_hash.update(&buf[..n]);
                    got += n as u64;
                }
                let (summary, pipe) = enc.finish_into_inner()?;
                pipe.end()?;
                let short = got < chunk_size;
                if short {
                    // The stream ended inside this chunk: only a stream that ended well
                    // makes it a chunk of the archive.
                    source.wait()?;
                }
                sum_tx
                    .send((offset, summary))
                    .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "upload stopped"))?;
                offset += got;
                index += 1;
                if short {
                    break;
                }
            }
            anyhow::Ok(())
        })();
        drop(job_tx);
        let up = uploader.join();
        flush_log(&log_lines, log)?;
        if up.is_err() {
            bail!("the upload thread panicked");
        }
        // The upload's own error explains a sealing stopped by a broken pipe.
        let mut upload_err = None;
        while let Ok(r) = res_rx.try_recv() {
            if let Err(e) = r
                && upload_err.is_none()
            {
                upload_err = Some(e);
            }
        }
        let stopped = |e: &anyhow::Error| {
            e.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            })
        };
        match (sealed, upload_err) {
            (Ok(()), None) => Ok(()),
            (Ok(()), Some(u)) => Err(u),
            // Sealing stopped because the upload did: the upload's error is the cause.
            (Err(e), Some(u)) if stopped(&e) => Err(u),
            // Never a broken pipe to main (it would take it for a closed stdout).
            (Err(e), _) if stopped(&e) => Err(anyhow!("the upload stopped: {e:#}")),
            (Err(e), _) => Err(e),
        }
    });
    if let Err(e) = result {
        source.kill();
        return Err(e);
    }
    source.finish()?;
    Ok(Pass::Done {
        chunks,
        plain_size: offset,
        stream_blake3: stream_hash.finalize().to_hex().to_string(),
    })
}

/// Writes the upload thread's log lines.
fn flush_log(lines: &std::sync::Mutex<Vec<String>>, log: &mut dyn Write) -> anyhow::Result<()> {
    let taken = match lines.lock() {
        Ok(mut l) => std::mem::take(&mut *l),
        Err(_) => Vec::new(),
    };
    for l in taken {
        writeln!(log, "{l}")?;
    }
    Ok(())
}

/// Records one chunk that landed: checks its size by HEAD (its SHA-256 was computed on the
/// way out), then adds it to the bucket's journal and to the catalog.
#[allow(clippy::too_many_arguments, reason = "one internal call site")]
fn record(
    store: &dyn Store,
    index: u64,
    offset: u64,
    summary: &cryptpack::Summary,
    up: &cloud::Uploaded,
    journal: &mut Journal,
    journal_key: &str,
    recorder: &mut Recorder,
) -> anyhow::Result<ChunkRecord> {
    if up.size != summary.ciphertext_len {
        bail!(
            "chunk {index}: uploaded {} bytes but sealed {}",
            up.size,
            summary.ciphertext_len
        );
    }
    let info = store
        .head(&up.key)
        .with_context(|| format!("checking chunk {index} after upload"))?;
    if info.size != up.size {
        return Err(cloud::Error::SizeMismatch {
            key: up.key.clone(),
            expected: up.size,
            actual: info.size,
        })
        .with_context(|| format!("checking chunk {index} after upload"));
    }
    let rec = ChunkRecord {
        index,
        key: up.key.clone(),
        offset,
        plain_size: summary.plaintext_len,
        plain_blake3: summary.plaintext_hash.to_string(),
        size: up.size,
        sha256: up.sha256.to_string(),
        pack_blake3: summary.ciphertext_hash.to_string(),
        uploaded: now(),
    };
    journal.chunks.push(rec.clone());
    store
        .put(journal_key, &serde_json::to_vec(journal)?)
        .context("writing the journal")?;
    recorder.chunk(&rec, journal)?;
    Ok(rec)
}
