//! Unit tests that need crate internals: the FORMAT.md test vector is rebuilt
//! deterministically and compared with the document, so the document cannot rot.

use std::io::Read;

use crate::cipher::{DataKey, seal_header};
use crate::format::{Header, Kdf};
use crate::key::{KeyId, hex, unhex};
use crate::seal::seal_all;
use crate::{Decryptor, Key, Secret};

const KEK: [u8; 32] = crate::FUZZ_KEY;

fn seq<const N: usize>(start: u8) -> [u8; N] {
    let mut a = [0u8; N];
    for (i, b) in a.iter_mut().enumerate() {
        *b = start.wrapping_add(i as u8);
    }
    a
}

const PLAINTEXT: &[u8] = b"tapebackup cryptpack test vector!";

/// The vector of FORMAT.md built from its stated inputs.
fn vector_pack() -> Vec<u8> {
    let data_key: [u8; 32] = seq(0x20);
    let header = seal_header(16, seq(0xa0), Kdf::KeyFile, &KEK, seq(0xb0), &data_key).unwrap();
    let dk = DataKey::new(&data_key, &header).unwrap();
    let out = seal_all(&dk, PLAINTEXT).unwrap();
    let mut pack = header.encode().to_vec();
    pack.extend_from_slice(&out);
    pack
}

/// The hex after `<!-- vector:NAME -->` in FORMAT.md (up to the closing code fence).
fn doc_hex(name: &str) -> Vec<u8> {
    let doc = include_str!("../FORMAT.md");
    let marker = format!("<!-- vector:{name} -->");
    let at = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("FORMAT.md lacks {marker}"));
    let rest = &doc[at + marker.len()..];
    let open = rest.find("```").expect("code block after marker") + 3;
    let body = &rest[open..];
    let body = &body[body.find('\n').expect("fence line") + 1..];
    let close = body.find("```").expect("closing fence");
    let text: String = body[..close]
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    unhex(&text).unwrap_or_else(|| panic!("vector {name} is not hex"))
}

#[test]
fn format_md_vector_matches_code() {
    let pack = vector_pack();
    assert_eq!(
        hex(&doc_hex("pack")),
        hex(&pack),
        "FORMAT.md's pack vector differs from what the code produces"
    );
    assert_eq!(doc_hex("kek"), KEK.to_vec());
    assert_eq!(doc_hex("key-id"), KeyId::of(&KEK).0.to_vec());
    let header = Header::decode(&pack).unwrap();
    assert_eq!(doc_hex("segment-aad"), header.segment_aad().to_vec());
    assert_eq!(doc_hex("plaintext"), PLAINTEXT.to_vec());
}

#[test]
fn format_md_vector_decrypts_with_public_api() {
    let pack = doc_hex("pack");
    let key = Key::from_bytes(&KEK);
    let mut plain = Vec::new();
    Decryptor::new(&pack[..], Secret::Key(&key))
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, PLAINTEXT);
}

/// Prints the vector for pasting into FORMAT.md (`cargo test -p cryptpack print_vector --
/// --nocapture`). Also checks the vector is stable across two builds of it.
#[test]
fn print_vector() {
    let pack = vector_pack();
    assert_eq!(pack, vector_pack());
    let header = Header::decode(&pack).unwrap();
    println!("key-id {}", KeyId::of(&KEK));
    println!("segment-aad {}", hex(&header.segment_aad()));
    let fields: &[(usize, usize, &str)] = &[
        (0, 8, "magic \"TAPEBKCP\""),
        (8, 9, "version 1"),
        (9, 10, "algorithm 1"),
        (10, 12, "reserved"),
        (12, 16, "segment_size = 16 (u32 LE)"),
        (16, 23, "nonce_prefix"),
        (23, 24, "reserved"),
        (24, 25, "kdf = 1 (key file)"),
        (25, 28, "reserved"),
        (28, 44, "key_id"),
        (44, 56, "m_cost, t_cost, p_cost (zero for a key file)"),
        (56, 72, "salt (zero for a key file)"),
        (72, 84, "wrap_nonce"),
        (84, 116, "wrapped data key: ciphertext"),
        (116, 132, "wrapped data key: tag"),
        (132, 148, "segment 0: ciphertext"),
        (148, 164, "segment 0: tag"),
        (164, 180, "segment 1: ciphertext"),
        (180, 196, "segment 1: tag"),
        (196, 197, "segment 2 (final): ciphertext"),
        (197, 213, "segment 2: tag"),
    ];
    assert_eq!(pack.len(), 213);
    for &(a, e, name) in fields {
        println!("{:<64} # {a:3}..{e:3} {name}", hex(&pack[a..e]));
    }
}
