//! Round trips, tamper detection, keys, rewrap, and the ring / aes-gcm oracle cross-check.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions may unwrap"
)]

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::sync::atomic::AtomicBool;

use cryptpack::{
    DecryptOptions, Decryptor, EncryptOptions, Encryptor, Error, HEADER_LEN, Header, KdfParams,
    Key, KeyFile, PackReader, Passphrase, Secret, Silent, Summary,
};
use proptest::prelude::*;

const TAG: usize = 16;

fn small_kdf() -> KdfParams {
    KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    }
}

fn opts(segment_size: u32, threads: usize, batch: usize) -> EncryptOptions {
    EncryptOptions {
        segment_size,
        threads,
        batch_segments: Some(batch),
        kdf: small_kdf(),
    }
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn seal(
    secret: Secret<'_>,
    o: &EncryptOptions,
    plain: &[u8],
    write_chunk: usize,
) -> (Summary, Vec<u8>) {
    let mut enc = Encryptor::new(Vec::new(), secret, o).unwrap();
    for part in plain.chunks(write_chunk.max(1)) {
        enc.write_all(part).unwrap();
    }
    enc.finish_into_inner().unwrap()
}

/// Decrypts with the stream reader: the output produced, and the error if any.
fn open_stream(
    pack: &[u8],
    secret: Secret<'_>,
    threads: usize,
    batch: usize,
) -> (Vec<u8>, Result<Summary, Error>) {
    let o = DecryptOptions {
        threads,
        batch_segments: Some(batch),
    };
    let mut d = match Decryptor::with_options(pack, secret, &o) {
        Ok(d) => d,
        Err(e) => return (Vec::new(), Err(e)),
    };
    let mut out = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        match d.read(&mut buf) {
            Ok(0) => return (out, Ok(d.summary().expect("summary at end"))),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Err(Error::from_io(e))),
        }
    }
}

fn key() -> Key {
    Key::from_bytes(&[7u8; 32])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(
        seg in prop::sample::select(vec![1u32, 16, 64, 100]),
        shape in 0usize..8,
        random_len in 0usize..2000,
        write_chunk in 1usize..300,
        threads in 1usize..4,
        batch in 1usize..5,
        seed in any::<u64>(),
    ) {
        let s = seg as usize;
        let len = match shape {
            0 => 0,
            1 => 1,
            2 => s - 1,
            3 => s,
            4 => s + 1,
            5 => 3 * s,
            6 => 4 * s + 1,
            _ => random_len,
        };
        let plain = data(len, seed);
        let k = key();
        let (summary, pack) = seal(Secret::Key(&k), &opts(seg, threads, batch), &plain, write_chunk);
        prop_assert_eq!(summary.plaintext_len, len as u64);
        prop_assert_eq!(summary.ciphertext_len, pack.len() as u64);
        prop_assert_eq!(summary.plaintext_hash.0, *blake3::hash(&plain).as_bytes());
        prop_assert_eq!(summary.ciphertext_hash.0, *blake3::hash(&pack).as_bytes());
        prop_assert_eq!(summary.segments, (len.div_ceil(s)).max(1) as u64);
        prop_assert_eq!(pack.len(), HEADER_LEN + len + TAG * summary.segments as usize);

        let (out, res) = open_stream(&pack, Secret::Key(&k), 4 - threads, batch + 1);
        prop_assert_eq!(&out, &plain);
        prop_assert_eq!(res.unwrap(), summary);

        // Random access: whole, then from the middle.
        let mut r = PackReader::open(Cursor::new(&pack), Secret::Key(&k)).unwrap();
        prop_assert_eq!(r.len(), len as u64);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        prop_assert_eq!(&all, &plain);
        let from = len / 3;
        r.seek(SeekFrom::Start(from as u64)).unwrap();
        let mut tail = Vec::new();
        r.read_to_end(&mut tail).unwrap();
        prop_assert_eq!(&tail[..], &plain[from..]);

        let info = cryptpack::inspect(Cursor::new(&pack)).unwrap();
        prop_assert_eq!(info.layout.plaintext_len, len as u64);
        prop_assert_eq!(info.header.key_id(), k.id());
        let (n, h) = cryptpack::ciphertext_hash(&pack[..], &Silent, &AtomicBool::new(false)).unwrap();
        prop_assert_eq!(n, pack.len() as u64);
        prop_assert_eq!(h, summary.ciphertext_hash);
    }
}

#[test]
fn parallel_batches_round_trip() {
    // Large enough that batches are sealed and opened on worker threads.
    let plain = data(3 << 20, 1);
    let k = key();
    let (_, pack) = seal(Secret::Key(&k), &opts(4096, 3, 128), &plain, 100_000);
    for threads in [1, 2, 3] {
        let (out, res) = open_stream(&pack, Secret::Key(&k), threads, 100);
        res.unwrap();
        assert!(out == plain, "threads {threads}");
    }
    // A flip deep inside is reported at its segment even when several threads open.
    let mut bad = pack.clone();
    let index = 500u64;
    bad[HEADER_LEN + index as usize * (4096 + TAG) + 5] ^= 0x40;
    let (out, res) = open_stream(&bad, Secret::Key(&k), 3, 128);
    assert!(
        matches!(res, Err(Error::CorruptSegment { index: 500, .. })),
        "{res:?}"
    );
    assert!(out.len() <= 500 * 4096 && plain.starts_with(&out));
}

/// A pack of three segments of 16 (16, 16, 8 bytes).
fn small_pack() -> (Key, Vec<u8>, Vec<u8>) {
    let plain = data(40, 3);
    let k = key();
    let (_, pack) = seal(Secret::Key(&k), &opts(16, 1, 2), &plain, 7);
    (k, plain, pack)
}

fn check_no_garbage(plain: &[u8], out: &[u8]) {
    // Only whole authenticated segments may come out, and they are the true plaintext.
    assert!(plain.starts_with(out), "unauthenticated output");
    assert_eq!(out.len() % 16, 0);
}

#[test]
fn every_bit_flip_is_detected() {
    let (k, plain, pack) = small_pack();
    for byte in 0..pack.len() {
        for bit in 0..8 {
            let mut bad = pack.clone();
            bad[byte] ^= 1 << bit;
            for batch in [1, 4] {
                let (out, res) = open_stream(&bad, Secret::Key(&k), 1, batch);
                let err = res.expect_err("flip not detected");
                check_no_garbage(&plain, &out);
                if byte >= HEADER_LEN {
                    let index = ((byte - HEADER_LEN) / 32) as u64;
                    assert!(
                        matches!(err, Error::CorruptSegment { index: i, .. } if i == index),
                        "byte {byte}: {err:?}"
                    );
                } else {
                    assert!(
                        matches!(
                            err,
                            Error::NotCryptpack { .. }
                                | Error::UnsupportedVersion { .. }
                                | Error::UnsupportedAlgorithm { .. }
                                | Error::UnsupportedKdf { .. }
                                | Error::InvalidHeader { .. }
                                | Error::WrongKey { .. }
                                | Error::HeaderTampered
                        ),
                        "byte {byte}: {err:?}"
                    );
                }
            }
            let seek = PackReader::open(Cursor::new(&bad), Secret::Key(&k))
                .and_then(|mut r| r.read_to_end(&mut Vec::new()).map_err(Error::from_io));
            assert!(seek.is_err(), "random access missed a flip at byte {byte}");
        }
    }
}

#[test]
fn truncation_anywhere_is_detected() {
    let (k, plain, pack) = small_pack();
    for len in 0..pack.len() {
        let (out, res) = open_stream(&pack[..len], Secret::Key(&k), 1, 2);
        let err = res.expect_err("truncation not detected");
        check_no_garbage(&plain, &out);
        let boundary = len >= HEADER_LEN && (len - HEADER_LEN).is_multiple_of(32);
        if boundary || len < HEADER_LEN {
            assert!(matches!(err, Error::Truncated { .. }), "len {len}: {err:?}");
        }
        assert!(PackReader::open(Cursor::new(&pack[..len]), Secret::Key(&k)).is_err());
    }
}

#[test]
fn extension_is_detected() {
    let k = key();
    let plain = data(32, 4);
    let (_, pack) = seal(Secret::Key(&k), &opts(16, 1, 2), &plain, 32);
    for extra in [
        &[0u8][..],
        &[1; 16],
        &[2; 48],
        &pack[HEADER_LEN..HEADER_LEN + 32],
    ] {
        let mut ext = pack.clone();
        ext.extend_from_slice(extra);
        let (out, res) = open_stream(&ext, Secret::Key(&k), 1, 1);
        assert!(
            matches!(res, Err(Error::TrailingData { offset }) if offset == pack.len() as u64),
            "{res:?}"
        );
        check_no_garbage(&plain, &out);
        assert!(PackReader::open(Cursor::new(&ext), Secret::Key(&k)).is_err());
    }
    // After a short final segment, appended bytes make that segment fail.
    let (_, short) = small_pack_with(&k);
    let mut ext = short.clone();
    ext.push(0);
    let (_, res) = open_stream(&ext, Secret::Key(&k), 1, 4);
    assert!(
        matches!(res, Err(Error::CorruptSegment { index: 2, .. })),
        "{res:?}"
    );
}

fn small_pack_with(k: &Key) -> (Vec<u8>, Vec<u8>) {
    let plain = data(40, 3);
    let (_, pack) = seal(Secret::Key(k), &opts(16, 1, 2), &plain, 40);
    (plain, pack)
}

#[test]
fn reordered_duplicated_dropped_segments_are_detected() {
    let (k, plain, pack) = small_pack();
    let seg =
        |i: usize| pack[HEADER_LEN + i * 32..(HEADER_LEN + (i + 1) * 32).min(pack.len())].to_vec();
    let head = pack[..HEADER_LEN].to_vec();
    let build = |order: &[usize]| {
        let mut p = head.clone();
        for &i in order {
            p.extend_from_slice(&seg(i));
        }
        p
    };
    let cases: &[(&[usize], &str)] = &[
        (&[1, 0, 2], "corrupt 0"),
        (&[0, 0, 1, 2], "corrupt 1"),
        (&[0, 2], "corrupt 1"),
        (&[0, 1], "truncated"),
        (&[0, 1, 1, 2], "corrupt 2"),
        (&[0, 1, 2, 2], "trailing-or-corrupt"),
    ];
    for (order, want) in cases {
        let bad = build(order);
        let (out, res) = open_stream(&bad, Secret::Key(&k), 1, 2);
        check_no_garbage(&plain, &out);
        let err = res.expect_err("not detected");
        let ok = match *want {
            "corrupt 0" => matches!(err, Error::CorruptSegment { index: 0, .. }),
            "corrupt 1" => matches!(err, Error::CorruptSegment { index: 1, .. }),
            "corrupt 2" => matches!(err, Error::CorruptSegment { index: 2, .. }),
            "truncated" => matches!(err, Error::Truncated { .. }),
            _ => matches!(
                err,
                Error::CorruptSegment { .. } | Error::TrailingData { .. }
            ),
        };
        assert!(ok, "{order:?}: {err:?}");
    }
    // A segment from another pack under the same key does not fit either.
    let (_, other) = seal(Secret::Key(&k), &opts(16, 1, 2), &plain, 40);
    let mut mixed = pack.clone();
    mixed[HEADER_LEN..HEADER_LEN + 32].copy_from_slice(&other[HEADER_LEN..HEADER_LEN + 32]);
    let (_, res) = open_stream(&mixed, Secret::Key(&k), 1, 2);
    assert!(matches!(res, Err(Error::CorruptSegment { index: 0, .. })));
}

#[test]
fn distinct_errors_for_keys_and_headers() {
    let (k, _, pack) = small_pack();
    let other = Key::from_bytes(&[8u8; 32]);
    let pass = Passphrase::new("correct horse".into()).unwrap();
    let wrong = Passphrase::new("battery staple".into()).unwrap();

    let e = Decryptor::new(&pack[..], Secret::Key(&other)).unwrap_err();
    assert!(
        matches!(e, Error::WrongKey { expected, given } if expected == k.id() && given == other.id())
    );
    assert!(e.is_authentication_failure());
    let e = Decryptor::new(&pack[..], Secret::Passphrase(&pass)).unwrap_err();
    assert!(matches!(e, Error::WrongSecretKind { .. }));

    let (_, ppack) = seal(Secret::Passphrase(&pass), &opts(16, 1, 2), b"secret", 3);
    let e = Decryptor::new(&ppack[..], Secret::Passphrase(&wrong)).unwrap_err();
    assert!(matches!(e, Error::WrongPassphrase));
    let (out, res) = open_stream(&ppack, Secret::Passphrase(&pass), 1, 1);
    res.unwrap();
    assert_eq!(out, b"secret");

    let e = Decryptor::new(&b"PK\x03\x04 a zip file, not a pack"[..], Secret::Key(&k)).unwrap_err();
    assert!(matches!(e, Error::NotCryptpack { .. }));
    let mut v = pack.clone();
    v[8] = 2;
    assert!(matches!(
        Decryptor::new(&v[..], Secret::Key(&k)).unwrap_err(),
        Error::UnsupportedVersion { version: 2 }
    ));
    let mut v = pack.clone();
    v[9] = 9;
    assert!(matches!(
        Decryptor::new(&v[..], Secret::Key(&k)).unwrap_err(),
        Error::UnsupportedAlgorithm { id: 9 }
    ));
    // Same key id, other segment size or nonce prefix: the key wrap catches it.
    for at in [12usize, 16, 72, 100] {
        let mut v = pack.clone();
        v[at] ^= 4;
        assert!(
            matches!(
                Decryptor::new(&v[..], Secret::Key(&k)).unwrap_err(),
                Error::HeaderTampered
            ),
            "byte {at}"
        );
    }
    assert!(matches!(
        Decryptor::new(&pack[..50], Secret::Key(&k)).unwrap_err(),
        Error::Truncated { len: 50 }
    ));
    assert!(matches!(
        Decryptor::new(&pack[..HEADER_LEN], Secret::Key(&k))
            .unwrap()
            .read_to_end(&mut Vec::new())
            .map_err(Error::from_io)
            .unwrap_err(),
        Error::Truncated { .. }
    ));
}

#[test]
fn rewrap_changes_only_the_key_slot() {
    let dir = tempfile::tempdir().unwrap();
    let (k, plain, pack) = small_pack();
    let path = dir.path().join("p.tbc");
    std::fs::write(&path, &pack).unwrap();
    let k2 = Key::from_bytes(&[9u8; 32]);
    let id = cryptpack::rewrap_file(&path, Secret::Key(&k), Secret::Key(&k2), small_kdf()).unwrap();
    assert_eq!(id, k2.id());
    let new = std::fs::read(&path).unwrap();
    assert_eq!(new[..24], pack[..24], "stream header unchanged");
    assert_eq!(new[HEADER_LEN..], pack[HEADER_LEN..], "segments untouched");
    assert!(matches!(
        Decryptor::new(&new[..], Secret::Key(&k)).unwrap_err(),
        Error::WrongKey { .. }
    ));
    let (out, res) = open_stream(&new, Secret::Key(&k2), 1, 1);
    res.unwrap();
    assert_eq!(out, plain);

    // To a passphrase and back to a key.
    let pass = Passphrase::new("rotate me".into()).unwrap();
    cryptpack::rewrap_file(
        &path,
        Secret::Key(&k2),
        Secret::Passphrase(&pass),
        small_kdf(),
    )
    .unwrap();
    let (out, res) = open_stream(
        &std::fs::read(&path).unwrap(),
        Secret::Passphrase(&pass),
        1,
        1,
    );
    res.unwrap();
    assert_eq!(out, plain);
    let back = cryptpack::rewrap_header(
        &std::fs::read(&path).unwrap(),
        Secret::Passphrase(&pass),
        Secret::Key(&k),
        small_kdf(),
    )
    .unwrap();
    let mut restored = back.to_vec();
    restored.extend_from_slice(&pack[HEADER_LEN..]);
    assert_eq!(open_stream(&restored, Secret::Key(&k), 1, 1).0, plain);
    // Rewrap with the wrong old key changes nothing.
    let before = std::fs::read(&path).unwrap();
    assert!(cryptpack::rewrap_file(&path, Secret::Key(&k2), Secret::Key(&k), small_kdf()).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn key_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    let k = Key::generate().unwrap();
    k.write_file(&path).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(Key::read_file(&path).unwrap().id(), k.id());
    assert!(
        matches!(k.write_file(&path).unwrap_err(), Error::File { .. }),
        "no overwrite"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(
        Key::read_file(&path).unwrap_err(),
        Error::InsecurePermissions { mode: 0o640, .. }
    ));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A damaged id line is caught.
    let text = std::fs::read_to_string(&path).unwrap();
    let damaged = dir.path().join("damaged");
    let mut id = k.id().to_string();
    id.replace_range(0..1, if id.starts_with('0') { "1" } else { "0" });
    let bad = text.replace(&k.id().to_string(), &id);
    std::fs::write(&damaged, bad).unwrap();
    std::fs::set_permissions(&damaged, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        Key::read_file(&damaged).unwrap_err(),
        Error::InvalidKeyFile { .. }
    ));

    // Passphrase-protected.
    let pp = dir.path().join("kp");
    let pass = Passphrase::new("open sesame".into()).unwrap();
    k.write_protected_file(&pp, &pass, small_kdf()).unwrap();
    assert!(matches!(
        Key::read_file(&pp).unwrap_err(),
        Error::KeyFileNeedsPassphrase { .. }
    ));
    let KeyFile::Protected(p) = KeyFile::read(&pp).unwrap() else {
        panic!("not protected")
    };
    assert_eq!(p.id(), k.id());
    assert_eq!(p.unlock(&pass).unwrap().id(), k.id());
    let wrong = Passphrase::new("close sesame".into()).unwrap();
    assert!(matches!(
        p.unlock(&wrong).unwrap_err(),
        Error::WrongPassphrase
    ));

    // Passphrase files: first line, permissions checked, empty refused.
    let pf = dir.path().join("pass");
    std::fs::write(&pf, "open sesame\n").unwrap();
    std::fs::set_permissions(&pf, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        p.unlock(&Passphrase::read_file(&pf).unwrap()).unwrap().id(),
        k.id()
    );
    std::fs::write(&pf, "\n").unwrap();
    assert!(matches!(
        Passphrase::read_file(&pf).unwrap_err(),
        Error::EmptyPassphrase
    ));
    assert!(
        format!("{pass:?}{k:?}").find("sesame").is_none(),
        "Debug leaks secrets"
    );
}

#[test]
fn decrypt_to_path_leaves_nothing_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (k, plain, pack) = small_pack();
    let dest = dir.path().join("out");
    let no = AtomicBool::new(false);
    let s = cryptpack::decrypt_to_path(
        &pack[..],
        &dest,
        Secret::Key(&k),
        &DecryptOptions::default(),
        &Silent,
        &no,
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), plain);
    assert_eq!(s.plaintext_len, 40);
    std::fs::remove_file(&dest).unwrap();
    let mut bad = pack.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let e = cryptpack::decrypt_to_path(
        &bad[..],
        &dest,
        Secret::Key(&k),
        &DecryptOptions::default(),
        &Silent,
        &no,
    )
    .unwrap_err();
    assert!(matches!(e, Error::CorruptSegment { index: 2, .. }), "{e:?}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file left behind"
    );
    let e = cryptpack::decrypt_to_path(
        &pack[..],
        &dest,
        Secret::Key(&k),
        &DecryptOptions::default(),
        &Silent,
        &AtomicBool::new(true),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Cancelled));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// An independent decryptor written from FORMAT.md with RustCrypto's aes-gcm.
fn oracle_decrypt(pack: &[u8], kek: &[u8; 32]) -> Option<Vec<u8>> {
    use aes_gcm::Aes256Gcm;
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let h = &pack[..HEADER_LEN];
    let seg = u32::from_le_bytes(h[12..16].try_into().ok()?) as usize;
    let wrap = Aes256Gcm::new_from_slice(kek).ok()?;
    let nonce: [u8; 12] = h[72..84].try_into().ok()?;
    let dk = wrap
        .decrypt(
            &nonce.into(),
            Payload {
                msg: &h[84..132],
                aad: &h[..84],
            },
        )
        .ok()?;
    let cipher = Aes256Gcm::new_from_slice(&dk).ok()?;
    let aad = blake3::hash(&h[..24]);
    let chunks: Vec<&[u8]> = pack[HEADER_LEN..].chunks(seg + TAG).collect();
    let mut out = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        let mut n = [0u8; 12];
        n[..7].copy_from_slice(&h[16..23]);
        n[7..11].copy_from_slice(&(i as u32).to_be_bytes());
        n[11] = u8::from(i + 1 == chunks.len());
        out.extend(
            cipher
                .decrypt(
                    &n.into(),
                    Payload {
                        msg: c,
                        aad: aad.as_bytes(),
                    },
                )
                .ok()?,
        );
    }
    Some(out)
}

/// An independent encryptor written from FORMAT.md with aes-gcm (fixed nonces: test only).
fn oracle_encrypt(plain: &[u8], kek: &[u8; 32], seg: usize) -> Vec<u8> {
    use aes_gcm::Aes256Gcm;
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let key_id = &blake3::derive_key("tapebackup cryptpack v1 key id", kek)[..16];
    let mut h = vec![0u8; 84];
    h[..8].copy_from_slice(b"TAPEBKCP");
    h[8] = 1;
    h[9] = 1;
    h[12..16].copy_from_slice(&(seg as u32).to_le_bytes());
    h[16..23].copy_from_slice(&[5; 7]);
    h[24] = 1;
    h[28..44].copy_from_slice(key_id);
    h[72..84].copy_from_slice(&[6; 12]);
    let dk = [0x42u8; 32];
    let wrap = Aes256Gcm::new_from_slice(kek).unwrap();
    let wrapped = wrap
        .encrypt(&[6u8; 12].into(), Payload { msg: &dk, aad: &h })
        .unwrap();
    let aad = blake3::hash(&h[..24]);
    h.extend(wrapped);
    let cipher = Aes256Gcm::new_from_slice(&dk).unwrap();
    let parts: Vec<&[u8]> = if plain.is_empty() {
        vec![&[][..]]
    } else {
        plain.chunks(seg).collect()
    };
    for (i, p) in parts.iter().enumerate() {
        let mut n = [0u8; 12];
        n[..7].copy_from_slice(&[5; 7]);
        n[7..11].copy_from_slice(&(i as u32).to_be_bytes());
        n[11] = u8::from(i + 1 == parts.len());
        h.extend(
            cipher
                .encrypt(
                    &n.into(),
                    Payload {
                        msg: p,
                        aad: aad.as_bytes(),
                    },
                )
                .unwrap(),
        );
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn ring_and_aes_gcm_agree(len in 0usize..3000, seg in 1usize..200, seed in any::<u64>()) {
        let kek = [3u8; 32];
        let k = Key::from_bytes(&kek);
        let plain = data(len, seed);
        // ring seals, aes-gcm opens.
        let (_, pack) = seal(Secret::Key(&k), &opts(seg as u32, 2, 3), &plain, 333);
        prop_assert_eq!(oracle_decrypt(&pack, &kek), Some(plain.clone()));
        // aes-gcm seals, ring opens.
        let pack = oracle_encrypt(&plain, &kek, seg);
        prop_assert!(Header::decode(&pack).is_ok());
        let (out, res) = open_stream(&pack, Secret::Key(&k), 2, 2);
        prop_assert!(res.is_ok());
        prop_assert_eq!(out, plain);
    }
}
