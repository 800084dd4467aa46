//! Encrypt a stream into a cryptpack pack and decrypt it again, all in memory; then read a
//! byte range through random access, and show that a damaged pack is refused.
//!
//! Run: `cargo run -p examples --example cryptpack_stream`

use std::io::{Cursor, Read, Seek, SeekFrom, Write};

use anyhow::{Context, ensure};
use cryptpack::{Decryptor, EncryptOptions, Encryptor, Error, Key, PackReader, Secret};

fn main() -> anyhow::Result<()> {
    // A key-encryption key. In real use: Key::generate()?.write_file(path), later
    // Key::read_file(path).
    let key = Key::generate()?;
    let plaintext: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();

    // Encrypt: an io::Write adapter; finish() seals the final segment and returns hashes.
    let opts = EncryptOptions {
        segment_size: 64 * 1024,
        ..EncryptOptions::default()
    };
    let mut enc = Encryptor::new(Vec::new(), Secret::Key(&key), &opts)?;
    for piece in plaintext.chunks(100_000) {
        enc.write_all(piece)?;
    }
    let (summary, pack) = enc.finish_into_inner()?;
    println!(
        "sealed {} bytes into {} bytes ({} segments) under key {}",
        summary.plaintext_len, summary.ciphertext_len, summary.segments, summary.key_id
    );
    println!("plaintext blake3 {}", summary.plaintext_hash);
    println!("pack      blake3 {}", summary.ciphertext_hash);

    // The header can be read without the key.
    let header = cryptpack::read_header(&mut &pack[..])?;
    println!(
        "header: key id {}, segment size {}",
        header.key_id(),
        header.segment_size()
    );

    // Decrypt: an io::Read adapter that only yields authenticated plaintext.
    let mut dec = Decryptor::new(&pack[..], Secret::Key(&key))?;
    let mut back = Vec::new();
    dec.read_to_end(&mut back)?;
    ensure!(back == plaintext, "round trip differs");
    let check = dec.summary().context("summary after the end")?;
    ensure!(check.plaintext_hash == summary.plaintext_hash);
    println!("decrypted {} bytes, hashes match", back.len());

    // Random access: read 10 bytes at offset 3,000,000; only one segment is decrypted.
    let mut r = PackReader::open(Cursor::new(&pack), Secret::Key(&key))?;
    r.seek(SeekFrom::Start(3_000_000))?;
    let mut ten = [0u8; 10];
    r.read_exact(&mut ten)?;
    ensure!(ten[..] == plaintext[3_000_000..3_000_010]);
    println!("random access read ok: {ten:?}");

    // Cut the pack at a segment boundary: decryption reports truncation, not success.
    let cut = &pack[..pack.len() - 5_000_000 % (64 * 1024) - 16];
    let err = Decryptor::new(cut, Secret::Key(&key))?
        .read_to_end(&mut Vec::new())
        .map_err(Error::from_io)
        .err()
        .context("truncation went unnoticed")?;
    ensure!(
        matches!(err, Error::Truncated { .. }),
        "unexpected error {err}"
    );
    println!("truncated pack refused: {err}");
    Ok(())
}
