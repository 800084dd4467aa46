//! [`LocalStore`]: a directory used as an object store (tests, air-gapped copies, NFS).

use std::io::{Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

use crate::config::TransferOptions;
use crate::core::{Core, normalize_prefix, runtime};
use crate::error::{Error, Result};
use crate::store::{Deleted, Downloaded, ObjectInfo, PresignedUrl, Progress, Store, Uploaded};

/// Objects as files under a directory: key `a/b/c` is the file `<dir>/a/b/c`. Writes go to
/// a temporary file renamed into place, so a reader never sees half an object. There are no
/// versions; [`Store::presign_get`] returns a `file://` URL that does not expire.
pub struct LocalStore {
    core: Core,
    dir: PathBuf,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl LocalStore {
    /// A store in `dir`, which is created if missing.
    pub fn new(dir: impl AsRef<Path>, transfer: TransferOptions) -> Result<LocalStore> {
        transfer.validate()?;
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::Config {
            reason: format!("cannot create store directory {}: {e}", dir.display()),
        })?;
        let dir = dir.canonicalize().map_err(|e| Error::Config {
            reason: format!("store directory {}: {e}", dir.display()),
        })?;
        let fs = LocalFileSystem::new_with_prefix(&dir).map_err(|e| Error::Config {
            reason: format!("store directory {}: {e}", dir.display()),
        })?;
        let os: Arc<dyn ObjectStore> = Arc::new(fs.with_automatic_cleanup(true));
        Ok(LocalStore {
            core: Core {
                rt: runtime()?,
                os,
                prefix: normalize_prefix("")?,
                endpoint: dir.display().to_string(),
                transfer,
            },
            dir,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Store for LocalStore {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn upload(
        &self,
        key: &str,
        reader: &mut dyn Read,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<Uploaded> {
        self.core.upload(key, reader, progress, cancel)
    }

    fn download(
        &self,
        key: &str,
        out: &mut dyn Write,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<Downloaded> {
        self.core.download(key, out, progress, cancel)
    }

    fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>> {
        self.core.get_range(key, range)
    }

    fn head(&self, key: &str) -> Result<ObjectInfo> {
        self.core.head(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.core.list(prefix)
    }

    fn delete(&self, key: &str) -> Result<Deleted> {
        let existed = match self.core.head(key) {
            Ok(_) => true,
            Err(Error::NotFound { .. }) => false,
            Err(e) => return Err(e),
        };
        self.core.delete_plain(key)?;
        Ok(Deleted {
            versions: u64::from(existed),
            delete_markers: 0,
        })
    }

    fn presign_get(&self, key: &str, _expires_in: Duration) -> Result<PresignedUrl> {
        // Fails with NotFound for a missing object, like a GET through the URL would.
        self.core.head(key)?;
        let file = self.dir.join(key);
        let url =
            object_store::signer::Url::from_file_path(&file).map_err(|()| Error::InvalidKey {
                key: key.to_string(),
                reason: "cannot be expressed as a file:// URL".into(),
            })?;
        Ok(PresignedUrl {
            url: url.to_string(),
            expires: None,
        })
    }
}
