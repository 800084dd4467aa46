//! Helpers shared by the tests.

use catalog::{
    Catalog, Digest, HashAlgo, NewLocation, NewPack, NewTape, PackFormat, PackId, PackMember, Part,
    Position, ScannedFile, SourceId, Timestamp, Txn, VersionId, VolumeId,
};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub fn t(s: i64) -> Timestamp {
    Timestamp::from_unix_seconds(1_700_000_000 + s)
}

/// A BLAKE3-sized digest derived from a number.
pub fn h(n: u64) -> Digest {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&n.to_be_bytes());
    b[31] = 0xab;
    Digest::new(HashAlgo::Blake3, b.to_vec()).expect("32 bytes")
}

pub fn file(path: &str, size: u64, mtime: i64) -> ScannedFile {
    ScannedFile {
        path: path.to_owned(),
        size,
        mtime: t(mtime),
        mode: 0o644,
        hash: None,
    }
}

pub fn tape(barcode: &str) -> NewTape {
    NewTape {
        barcode: barcode.to_owned(),
        ltfs_uuid: None,
        generation: Some("LTO-8".to_owned()),
        capacity: Some(12_000_000_000_000),
        pool: "default".to_owned(),
    }
}

/// Packs the given fetched versions (sizes from the catalog) into one pack.
pub fn pack(tx: &mut Txn<'_>, versions: &[VersionId], seed: u64) -> catalog::Result<PackId> {
    let mut members = Vec::new();
    let mut off = 0;
    for v in versions {
        let size = tx.read().version(*v)?.size.unwrap_or(0);
        members.push(PackMember {
            version: *v,
            offset: off,
            length: size,
        });
        off += size;
    }
    let p = tx.record_pack(
        &NewPack {
            format: PackFormat::Cryptpack,
            key_id: "key-1".to_owned(),
            plain_size: off,
            plain_hash: h(1_000_000 + seed),
            cipher_size: off + 64,
            cipher_hash: h(2_000_000 + seed),
            members,
        },
        t(10),
    )?;
    Ok(p.id)
}

/// Records a whole pack at `block` on partition 1 of `volume`.
pub fn put(
    tx: &mut Txn<'_>,
    pack: PackId,
    volume: VolumeId,
    block: u64,
) -> catalog::Result<catalog::LocationId> {
    let size = tx.read().pack(pack)?.cipher_size.unwrap_or(0);
    tx.record_location(
        &NewLocation {
            pack,
            volume,
            part: Part::whole(size),
            position: Position::Tape {
                partition: 1,
                start_block: block,
            },
            job: None,
        },
        t(20),
    )
}

/// A catalog with one source "src" and files `names` scanned and fetched (hash = index).
pub fn fetched(names: &[&str]) -> catalog::Result<(Catalog, SourceId, Vec<VersionId>)> {
    let mut cat = Catalog::open_in_memory()?;
    let (src, vs) = cat.write(|tx| {
        let src = tx.add_source("src", "/data", t(0))?;
        let mut vs = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let s = tx.record_scan(src, &file(n, 100 + i as u64, 1), t(1))?;
            tx.record_fetched(s.version, &h(i as u64), 100 + i as u64)?;
            vs.push(s.version);
        }
        Ok::<_, catalog::Error>((src, vs))
    })?;
    Ok((cat, src, vs))
}
