//! Uploaded components, cached content-addressed on disk, and their precompiled artifacts.
//!
//! The database keeps every component ([`crate::storage::Storage::put_component`]); this is
//! each node's cache of them, filled on upload and, on a node that did not take the upload, on
//! first load. A component is named by its SHA-256, so the same upload to two integrations is
//! stored once and a name always means the same bytes. Files are written to a temporary name,
//! synced and renamed into place: a crash leaves either the whole file or none. Precompiled
//! artifacts are a cache beside them: a restart loads them without compiling, and one that does
//! not fit this engine (after an upgrade) is rebuilt from the component.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use telehook::LoadError;
use telehook::Parser;
use telehook::Runtime;

/// Why a stored component could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing the data directory failed.
    #[error("component store I/O failed: {0}")]
    Io(#[from] io::Error),
    /// The stored component no longer passes the host's checks.
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// The component store under `DATA_DIR/components`.
pub struct ComponentStore {
    components: PathBuf,
    compiled: PathBuf,
}

impl ComponentStore {
    /// Opens the store, creating its folders.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let store = Self {
            components: dir.join("components"),
            compiled: dir.join("compiled"),
        };
        fs::create_dir_all(&store.components)?;
        fs::create_dir_all(&store.compiled)?;
        Ok(store)
    }

    /// The SHA-256 of a component, hex-encoded: its name in the store.
    pub fn digest(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// Stores a checked component and its compiled form; returns its digest.
    pub fn put(&self, bytes: &[u8], parser: &Parser) -> Result<String, StoreError> {
        let digest = Self::digest(bytes);
        write_atomically(&self.component_path(&digest), bytes)?;
        write_atomically(&self.compiled_path(&digest), &parser.precompiled()?)?;
        Ok(digest)
    }

    /// Whether the component is cached here; one that is not is fetched from the database
    /// and [`ComponentStore::cache`]d before it is loaded.
    pub fn holds(&self, digest: &str) -> bool {
        self.component_path(digest).exists()
    }

    /// Caches a component the database keeps, checking that its bytes are the ones named.
    pub fn cache(&self, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        if Self::digest(bytes) != digest {
            return Err(StoreError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the component stored as {digest} has other bytes"),
            )));
        }
        Ok(write_atomically(&self.component_path(digest), bytes)?)
    }

    /// Loads a stored component, from its precompiled artifact when it fits this engine.
    pub fn load(&self, runtime: &Runtime, digest: &str) -> Result<Parser, StoreError> {
        if let Ok(artifact) = fs::read(self.compiled_path(digest)) {
            // SAFETY: artifacts are only ever written by `put` and `load` below, from
            // `Parser::precompiled`, into a folder of the data directory that only this host
            // writes.
            #[allow(unsafe_code)]
            match unsafe { runtime.load_precompiled(&artifact) } {
                Ok(parser) => return Ok(parser),
                Err(err) => tracing::info!(digest, "recompiling the component: {err}"),
            }
        }
        let bytes = fs::read(self.component_path(digest))?;
        let parser = runtime.load(&bytes)?;
        write_atomically(&self.compiled_path(digest), &parser.precompiled()?)?;
        Ok(parser)
    }

    /// The stored component's bytes.
    pub fn bytes(&self, digest: &str) -> io::Result<Vec<u8>> {
        fs::read(self.component_path(digest))
    }

    fn component_path(&self, digest: &str) -> PathBuf {
        self.components.join(format!("{digest}.wasm"))
    }

    fn compiled_path(&self, digest: &str) -> PathBuf {
        self.compiled.join(format!("{digest}.cwasm"))
    }
}

/// Writes a file so that it is either absent or complete, even across a crash.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path)?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}
