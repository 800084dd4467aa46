//! `tapebackup` as a library: the [`workflow`] module holds the orchestration of a backup
//! (config, init, get, pack, write, verify, restore) so other Rust programs can run the
//! same job the `tapebackup` binary runs.
//!
//! - [`workflow::Config`]: the TOML configuration (`docs/CONFIG.md`).
//! - [`workflow::get`], [`workflow::pack`], [`workflow::write`]: the backup steps, each
//!   resumable.
//! - [`workflow::verify`], [`workflow::restore`]: reading back.
//! - [`workflow::Progress`]: progress reporting ([`workflow::Silent`] shows nothing).
//!
//! # Example
//!
//! ```no_run
//! use tapebackup::workflow::{self, Config, Silent};
//!
//! let config = Config::load("tapebackup.toml".as_ref())?;
//! let mut catalog = workflow::open_catalog(&config)?;
//! let key = workflow::unlock_key(&config)?;
//! let cancel = workflow::no_cancel();
//! workflow::get(&config, &mut catalog, &Default::default(), &Silent, cancel)?;
//! workflow::pack(&config, &mut catalog, &key, &Silent, cancel)?;
//! workflow::write(&config, &mut catalog, &key, &Silent, cancel)?;
//! # Ok::<(), anyhow::Error>(())
//! ```
#![deny(missing_docs)]

pub mod workflow;
