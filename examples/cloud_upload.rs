//! Upload a file to object storage, verify what landed, print a presigned GET URL.
//!
//! ```text
//! cargo run -p examples --example cloud_upload -- FILE KEY            # into ./cloud-example-store
//! TAPEBACKUP_S3_ENDPOINT=https://s3.us-west-004.backblazeb2.com TAPEBACKUP_S3_REGION=us-west-004 \
//! TAPEBACKUP_S3_BUCKET=my-bucket TAPEBACKUP_S3_ACCESS_KEY_ID=... TAPEBACKUP_S3_SECRET_ACCESS_KEY=... \
//!   cargo run -p examples --example cloud_upload -- FILE KEY          # into the bucket
//! ```
//!
//! Credentials come from the environment only (never from the command line).

use std::fs::File;
use std::io::BufReader;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use cloud::{Expected, LocalStore, S3Config, S3Store, Store, TransferOptions, VerifyDepth};

struct Bytes(AtomicU64);

impl cloud::Progress for Bytes {
    fn advance(&self, bytes: u64) {
        let total = self.0.fetch_add(bytes, Ordering::Relaxed) + bytes;
        eprint!("\ruploaded {total} bytes");
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(key)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: cloud_upload FILE KEY");
    };
    let store: Box<dyn Store> = if std::env::var_os("TAPEBACKUP_S3_BUCKET").is_some() {
        Box::new(S3Store::new(&S3Config::from_env()?)?)
    } else {
        Box::new(LocalStore::new(
            "cloud-example-store",
            TransferOptions::default(),
        )?)
    };
    let mut reader = BufReader::new(File::open(&file).with_context(|| format!("opening {file}"))?);
    let cancel = AtomicBool::new(false);
    let up = store.upload(&key, &mut reader, &Bytes(AtomicU64::new(0)), &cancel)?;
    eprintln!();
    println!(
        "{} -> {}/{}: {} bytes in {} part(s), sha256 {}",
        file,
        store.location(),
        up.key,
        up.size,
        up.parts,
        up.sha256
    );
    let expected = Expected {
        size: up.size,
        sha256: up.sha256,
    };
    store.verify(&key, &expected, VerifyDepth::Content)?;
    println!("verified: size and SHA-256 of a full read match");
    let url = store.presign_get(&key, Duration::from_secs(3600))?;
    println!("GET for one hour: {}", url.url);
    Ok(())
}
