//! Model test: random sequences of operations against the catalog and a plain in-memory
//! model of what it should contain; after every step the two must agree.

use std::collections::{BTreeMap, BTreeSet};

use catalog::{
    Catalog, CopyTarget, Error, Fetched, MissingReason, NewLocation, NewPack, NewTape, PackFormat,
    PackMember, Part, Position, RestoreQuery, ScanChange, ScannedFile, SourceId, Timestamp,
    VolumeId, VolumeState,
};
use proptest::prelude::*;

use crate::support::h;

#[derive(Debug, Clone)]
enum Op {
    Scan {
        path: u8,
        size: u8,
        mtime: u8,
        hash: Option<u8>,
    },
    /// Several files of one listing through `record_scans`.
    ScanBatch {
        files: Vec<(u8, u8, u8, Option<u8>)>,
    },
    Fetch {
        k: u8,
    },
    /// Up to `n` versions through `record_fetches`.
    FetchBatch {
        n: u8,
        k: u8,
    },
    Sweep {
        age: u8,
    },
    Pack {
        n: u8,
    },
    /// Up to `n` packs of one content each through `record_packs`.
    PackBatch {
        n: u8,
    },
    AddTape,
    Write {
        tape: u8,
    },
    /// Up to `n` packs onto one tape through `record_locations`.
    WriteBatch {
        tape: u8,
        n: u8,
    },
    Retire {
        tape: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, 0u8..3, 0u8..3, proptest::option::of(0u8..3))
            .prop_map(|(path, size, mtime, hash)| Op::Scan { path, size, mtime, hash }),
        2 => proptest::collection::vec(
                (0u8..6, 0u8..3, 0u8..3, proptest::option::of(0u8..3)), 0..5)
            .prop_map(|files| Op::ScanBatch { files }),
        3 => (0u8..3).prop_map(|k| Op::Fetch { k }),
        2 => (0u8..4, 0u8..3).prop_map(|(n, k)| Op::FetchBatch { n, k }),
        1 => (0u8..4).prop_map(|age| Op::Sweep { age }),
        2 => (1u8..4).prop_map(|n| Op::Pack { n }),
        1 => (0u8..4).prop_map(|n| Op::PackBatch { n }),
        1 => Just(Op::AddTape),
        2 => (0u8..4).prop_map(|tape| Op::Write { tape }),
        1 => (0u8..4, 0u8..4).prop_map(|(tape, n)| Op::WriteBatch { tape, n }),
        1 => (0u8..4).prop_map(|tape| Op::Retire { tape }),
    ]
}

/// A content hash id: the size is part of it, so one hash always has one size.
fn hash_id(size: u64, k: u8) -> u64 {
    size * 10 + u64::from(k)
}

#[derive(Debug, Clone, PartialEq)]
struct MVersion {
    size: u64,
    mtime: i64,
    hash: Option<u64>,
    last_seen: i64,
    deleted: Option<i64>,
}

#[derive(Debug, Default)]
struct Model {
    files: BTreeMap<String, Vec<MVersion>>,
    /// Content hashes in creation order.
    contents: Vec<u64>,
    /// Pack index → hashes.
    packs: Vec<BTreeSet<u64>>,
    /// Pack index → tapes holding it.
    locations: Vec<Vec<usize>>,
    /// Tape index → retired.
    retired: Vec<bool>,
}

impl Model {
    fn add_content(&mut self, hash: u64) {
        if !self.contents.contains(&hash) {
            self.contents.push(hash);
        }
    }
    fn packed(&self, hash: u64) -> Option<usize> {
        self.packs.iter().position(|p| p.contains(&hash))
    }
    fn usable_copies(&self, pack: usize) -> usize {
        self.locations[pack]
            .iter()
            .filter(|t| !self.retired[**t])
            .count()
    }
    fn to_pack(&self) -> Vec<u64> {
        self.contents
            .iter()
            .copied()
            .filter(|h| self.packed(*h).is_none())
            .collect()
    }
    /// What a scan of `f` at `now` does to the model; the change the catalog must report.
    fn scan(&mut self, f: &ScannedFile, now: i64) -> ScanChange {
        let hash = f.hash.as_ref().map(|d| hash_of(Some(d)));
        if let Some(hh) = hash {
            self.add_content(hh);
        }
        let mtime = f.mtime.unix_seconds();
        let new = MVersion {
            size: f.size,
            mtime,
            hash,
            last_seen: now,
            deleted: None,
        };
        let versions = self.files.entry(f.path.clone()).or_default();
        match versions.last_mut() {
            None => {
                versions.push(new);
                ScanChange::New
            }
            Some(last)
                if last.deleted.is_none()
                    && last.size == f.size
                    && last.mtime == mtime
                    && !matches!((last.hash, hash), (Some(a), Some(b)) if a != b) =>
            {
                last.last_seen = last.last_seen.max(now);
                last.hash = last.hash.or(hash);
                ScanChange::Unchanged
            }
            Some(_) => {
                versions.push(new);
                ScanChange::Changed
            }
        }
    }
    fn to_write(&self) -> Vec<usize> {
        (0..self.packs.len())
            .filter(|p| self.usable_copies(*p) == 0)
            .collect()
    }
}

struct Harness {
    cat: Catalog,
    src: SourceId,
    tapes: Vec<VolumeId>,
    model: Model,
    now: i64,
    block: u64,
}

fn scanned(path: u8, size: u8, mtime: u8, hash: Option<u8>) -> ScannedFile {
    let size = u64::from(size) * 100;
    ScannedFile {
        path: format!("dir/{path}"),
        size,
        mtime: ts(i64::from(mtime)),
        mode: 0o600,
        hash: hash.map(|k| h(hash_id(size, k))),
    }
}

fn ts(s: i64) -> Timestamp {
    Timestamp::from_unix_seconds(s)
}

impl Harness {
    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        self.now += 1;
        let now = self.now;
        let m = &mut self.model;
        match *op {
            Op::Scan {
                path,
                size,
                mtime,
                hash,
            } => {
                let f = scanned(path, size, mtime, hash);
                let out = self
                    .cat
                    .write(|tx| tx.record_scan(self.src, &f, ts(now)))
                    .map_err(fail)?;
                prop_assert_eq!(out.change, m.scan(&f, now));
            }
            Op::ScanBatch { ref files } => {
                let files: Vec<ScannedFile> = files
                    .iter()
                    .map(|&(path, size, mtime, hash)| scanned(path, size, mtime, hash))
                    .collect();
                let out = self
                    .cat
                    .write(|tx| tx.record_scans(self.src, &files, ts(now)))
                    .map_err(fail)?;
                prop_assert_eq!(out.len(), files.len());
                for (o, f) in out.iter().zip(&files) {
                    prop_assert_eq!(o.change, m.scan(f, now));
                }
            }
            Op::Fetch { k } => {
                let todo = self.cat.read().versions_to_fetch(1).map_err(fail)?;
                if let Some(v) = todo.first() {
                    let size = v.size.unwrap_or(0);
                    let hh = hash_id(size, k);
                    self.cat
                        .write(|tx| tx.record_fetched(v.id, &h(hh), size))
                        .map_err(fail)?;
                    m.add_content(hh);
                    let mv = m
                        .files
                        .get_mut(&v.path)
                        .and_then(|vs| vs.get_mut(v.seq as usize - 1))
                        .ok_or_else(|| TestCaseError::fail("fetched an unknown version"))?;
                    prop_assert!(mv.hash.is_none());
                    mv.hash = Some(hh);
                }
            }
            Op::FetchBatch { n, k } => {
                let todo = self
                    .cat
                    .read()
                    .versions_to_fetch(u64::from(n))
                    .map_err(fail)?;
                let batch: Vec<Fetched> = todo
                    .iter()
                    .map(|v| {
                        let size = v.size.unwrap_or(0);
                        Fetched {
                            version: v.id,
                            hash: h(hash_id(size, k)),
                            size,
                        }
                    })
                    .collect();
                let ids = self
                    .cat
                    .write(|tx| tx.record_fetches(&batch))
                    .map_err(fail)?;
                prop_assert_eq!(ids.len(), todo.len());
                for v in &todo {
                    let hh = hash_id(v.size.unwrap_or(0), k);
                    m.add_content(hh);
                    let mv = m
                        .files
                        .get_mut(&v.path)
                        .and_then(|vs| vs.get_mut(v.seq as usize - 1))
                        .ok_or_else(|| TestCaseError::fail("fetched an unknown version"))?;
                    prop_assert!(mv.hash.is_none());
                    mv.hash = Some(hh);
                }
            }
            Op::Sweep { age } => {
                let started = now - i64::from(age);
                let n = self
                    .cat
                    .write(|tx| tx.mark_unseen_deleted(self.src, ts(started), ts(now)))
                    .map_err(fail)?;
                let mut expected = 0;
                for vs in m.files.values_mut() {
                    if let Some(last) = vs.last_mut()
                        && last.deleted.is_none()
                        && last.last_seen < started
                    {
                        last.deleted = Some(now);
                        expected += 1;
                    }
                }
                prop_assert_eq!(n, expected);
            }
            Op::Pack { n } => {
                let todo = self
                    .cat
                    .read()
                    .versions_to_pack(u64::from(n))
                    .map_err(fail)?;
                let want: Vec<u64> = m.to_pack().into_iter().take(usize::from(n)).collect();
                let got: Vec<u64> = todo.iter().map(|v| hash_of(v.hash.as_ref())).collect();
                prop_assert_eq!(&got, &want);
                if !todo.is_empty() {
                    let ids: Vec<_> = todo.iter().map(|v| v.id).collect();
                    self.cat
                        .write(|tx| crate::support::pack(tx, &ids, now as u64))
                        .map_err(fail)?;
                    m.packs.push(want.into_iter().collect());
                    m.locations.push(Vec::new());
                }
            }
            Op::PackBatch { n } => {
                let todo = self
                    .cat
                    .read()
                    .versions_to_pack(u64::from(n))
                    .map_err(fail)?;
                let want: Vec<u64> = m.to_pack().into_iter().take(usize::from(n)).collect();
                let got: Vec<u64> = todo.iter().map(|v| hash_of(v.hash.as_ref())).collect();
                prop_assert_eq!(&got, &want);
                let packs: Vec<NewPack> = todo
                    .iter()
                    .map(|v| {
                        let size = v.size.unwrap_or(0);
                        NewPack {
                            format: PackFormat::Cryptpack,
                            key_id: "k".into(),
                            plain_size: size,
                            plain_hash: h(1 << 40),
                            cipher_size: size + 64,
                            cipher_hash: h(1 << 41),
                            members: vec![PackMember {
                                version: v.id,
                                offset: 0,
                                length: size,
                            }],
                        }
                    })
                    .collect();
                let infos = self
                    .cat
                    .write(|tx| tx.record_packs(&packs, ts(now)))
                    .map_err(fail)?;
                prop_assert_eq!(infos.len(), packs.len());
                for hh in want {
                    m.packs.push([hh].into_iter().collect());
                    m.locations.push(Vec::new());
                }
            }
            Op::AddTape => {
                let n = self.tapes.len();
                let id = self
                    .cat
                    .write(|tx| {
                        tx.add_tape(
                            &NewTape {
                                barcode: format!("M{n:05}L8"),
                                ltfs_uuid: None,
                                generation: None,
                                capacity: None,
                                pool: "p".into(),
                            },
                            ts(now),
                        )
                    })
                    .map_err(fail)?;
                self.tapes.push(id);
                m.retired.push(false);
            }
            Op::Write { tape } => {
                let todo = self
                    .cat
                    .read()
                    .packs_to_write(
                        &CopyTarget {
                            copies: 1,
                            pool: None,
                        },
                        1,
                    )
                    .map_err(fail)?;
                prop_assert_eq!(
                    todo.first().map(|p| p.id.get() as usize - 1),
                    m.to_write().first().copied()
                );
                if let (Some(p), false) = (todo.first(), self.tapes.is_empty()) {
                    let ti = usize::from(tape) % self.tapes.len();
                    self.block += 1;
                    let r = self.cat.write(|tx| {
                        tx.record_location(
                            &NewLocation {
                                pack: p.id,
                                volume: self.tapes[ti],
                                part: Part::whole(p.cipher_size.unwrap_or(0)),
                                position: Position::Tape {
                                    partition: 0,
                                    start_block: self.block,
                                },
                                job: None,
                            },
                            ts(now),
                        )
                    });
                    let pi = p.id.get() as usize - 1;
                    if m.retired[ti] {
                        prop_assert!(matches!(r, Err(Error::InvalidInput { .. })), "{:?}", r);
                    } else {
                        r.map_err(fail)?;
                        m.locations[pi].push(ti);
                    }
                }
            }
            Op::WriteBatch { tape, n } => {
                let todo = self
                    .cat
                    .read()
                    .packs_to_write(
                        &CopyTarget {
                            copies: 1,
                            pool: None,
                        },
                        u64::from(n),
                    )
                    .map_err(fail)?;
                let want: Vec<usize> = m.to_write().into_iter().take(usize::from(n)).collect();
                let got: Vec<usize> = todo.iter().map(|p| p.id.get() as usize - 1).collect();
                prop_assert_eq!(&got, &want);
                if !self.tapes.is_empty() {
                    let ti = usize::from(tape) % self.tapes.len();
                    let before = self.cat.read().volume(self.tapes[ti]).map_err(fail)?;
                    let mut locs = Vec::new();
                    for p in &todo {
                        self.block += 1;
                        locs.push(NewLocation {
                            pack: p.id,
                            volume: self.tapes[ti],
                            part: Part::whole(p.cipher_size.unwrap_or(0)),
                            position: Position::Tape {
                                partition: 0,
                                start_block: self.block,
                            },
                            job: None,
                        });
                    }
                    // A closure that swallows a failed batch: the transaction is rolled back.
                    let mut inner = None;
                    let r = self.cat.write(|tx| {
                        match tx.record_locations(&locs, ts(now)) {
                            Ok(ids) => inner = Some(ids),
                            Err(e) => {
                                prop_assert!(matches!(e, Error::InvalidInput { .. }), "{:?}", e)
                            }
                        }
                        Ok::<_, TestCaseError>(())
                    });
                    let after = self.cat.read().volume(self.tapes[ti]).map_err(fail)?;
                    if m.retired[ti] && !todo.is_empty() {
                        prop_assert!(
                            matches!(r, Err(ref e) if e.to_string().contains("record_locations")),
                            "{:?}",
                            r
                        );
                        prop_assert_eq!(&after, &before);
                    } else {
                        r?;
                        let ids = inner.ok_or_else(|| TestCaseError::fail("no ids"))?;
                        prop_assert_eq!(ids.len(), todo.len());
                        let added: u64 = todo.iter().map(|p| p.cipher_size.unwrap_or(0)).sum();
                        prop_assert_eq!(after.bytes_used, before.bytes_used + added);
                        for p in &want {
                            m.locations[*p].push(ti);
                        }
                    }
                }
            }
            Op::Retire { tape } => {
                if !self.tapes.is_empty() {
                    let ti = usize::from(tape) % self.tapes.len();
                    self.cat
                        .write(|tx| {
                            tx.set_volume_state(self.tapes[ti], VolumeState::Retired, ts(now))
                        })
                        .map_err(fail)?;
                    m.retired[ti] = true;
                }
            }
        }
        self.compare()
    }

    fn compare(&self) -> Result<(), TestCaseError> {
        let r = self.cat.read();
        let m = &self.model;
        for (path, want) in &m.files {
            let got: Vec<MVersion> = r
                .versions_of(self.src, path)
                .map_err(fail)?
                .into_iter()
                .map(|v| MVersion {
                    size: v.size.unwrap_or(u64::MAX),
                    mtime: v.mtime.unix_seconds(),
                    hash: v.hash.as_ref().map(|d| hash_of(Some(d))),
                    last_seen: v.last_seen.unix_seconds(),
                    deleted: v.deleted_at.map(|d| d.unix_seconds()),
                })
                .collect();
            prop_assert_eq!(&got, want, "versions of {}", path);
        }
        let fetch: BTreeSet<(String, u32)> = r
            .versions_to_fetch(1000)
            .map_err(fail)?
            .into_iter()
            .map(|v| (v.path, v.seq))
            .collect();
        let want_fetch: BTreeSet<(String, u32)> = m
            .files
            .iter()
            .filter_map(|(p, vs)| {
                let last = vs.last()?;
                (last.hash.is_none() && last.deleted.is_none())
                    .then(|| (p.clone(), vs.len() as u32))
            })
            .collect();
        prop_assert_eq!(fetch, want_fetch);
        let to_write: Vec<usize> = r
            .packs_to_write(
                &CopyTarget {
                    copies: 1,
                    pool: None,
                },
                1000,
            )
            .map_err(fail)?
            .into_iter()
            .map(|p| p.id.get() as usize - 1)
            .collect();
        prop_assert_eq!(to_write, m.to_write());

        let plan = r.plan_restore(&RestoreQuery::default()).map_err(fail)?;
        let restorable: BTreeSet<String> = plan
            .runs
            .iter()
            .flat_map(|run| &run.reads)
            .flat_map(|rd| &rd.files)
            .map(|f| f.path.clone())
            .collect();
        let missing: BTreeMap<String, MissingReason> = plan
            .missing
            .iter()
            .map(|x| (x.path.clone(), x.reason))
            .collect();
        let mut want_ok = BTreeSet::new();
        let mut want_missing = BTreeMap::new();
        for (p, vs) in &m.files {
            let Some(last) = vs.last().filter(|l| l.deleted.is_none()) else {
                continue;
            };
            match last.hash {
                None => {
                    want_missing.insert(p.clone(), MissingReason::NotFetched);
                }
                Some(hh) => match m.packed(hh) {
                    None => {
                        want_missing.insert(p.clone(), MissingReason::NotPacked);
                    }
                    Some(pi) if m.usable_copies(pi) > 0 => {
                        want_ok.insert(p.clone());
                    }
                    Some(_) => {
                        want_missing.insert(p.clone(), MissingReason::NoUsableCopy);
                    }
                },
            }
        }
        prop_assert_eq!(restorable, want_ok);
        prop_assert_eq!(missing, want_missing);
        // Runs are in volume order, reads in position order.
        for run in &plan.runs {
            let blocks: Vec<u64> = run
                .reads
                .iter()
                .map(|rd| match rd.position {
                    Position::Tape { start_block, .. } => start_block,
                    _ => 0,
                })
                .collect();
            prop_assert!(blocks.windows(2).all(|w| w[0] <= w[1]), "{:?}", blocks);
        }
        let report = self.cat.check().map_err(fail)?;
        prop_assert!(report.is_ok(), "{:?}", report.problems);
        Ok(())
    }
}

fn hash_of(d: Option<&catalog::Digest>) -> u64 {
    let mut b = [0u8; 8];
    if let Some(d) = d {
        b.copy_from_slice(&d.bytes()[..8]);
    }
    u64::from_be_bytes(b)
}

fn fail(e: Error) -> TestCaseError {
    TestCaseError::fail(format!("catalog error: {e}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn catalog_agrees_with_model(ops in proptest::collection::vec(op(), 1..60)) {
        let mut cat = Catalog::open_in_memory().map_err(fail)?;
        let src = cat.write(|tx| tx.add_source("m", "/m", ts(0))).map_err(fail)?;
        let mut hns = Harness {
            cat,
            src,
            tapes: Vec::new(),
            model: Model::default(),
            now: 1000,
            block: 0,
        };
        for op in &ops {
            hns.apply(op)?;
        }
    }
}
