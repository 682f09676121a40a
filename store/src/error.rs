//! The crate's error type.

use std::path::PathBuf;

/// Everything a store operation can fail with.
///
/// A corrupt entry met by [`Store::get`](crate::Store::get) is not an error
/// but the outcome [`Lookup::Corrupt`](crate::Lookup::Corrupt); this enum is
/// for operations that could not be carried out at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An entry key was not a 64-character lowercase hexadecimal digest.
    #[error("invalid entry key {key:?}: expected 64 lowercase hexadecimal characters (a SHA-256 digest in hex), found {found}")]
    InvalidKey {
        /// The key as given (cut to 100 characters).
        key: String,
        /// What was wrong with it.
        found: String,
    },
    /// A namespace name was empty or too long.
    #[error("invalid namespace {namespace:?}: {reason}")]
    InvalidNamespace {
        /// The namespace as given (cut to 100 characters).
        namespace: String,
        /// What was wrong with it and what is allowed.
        reason: String,
    },
    /// `FsStore::open` found a directory that is not a store.
    #[error("{path} is not a jobcache store: {reason}; create one with FsStore::create or choose another directory")]
    NotAStore {
        /// The directory given as root.
        path: PathBuf,
        /// What was missing or wrong.
        reason: String,
    },
    /// The store was written with a layout version this code does not know.
    #[error("{path}: store layout version {found:?} is not supported (this code reads version {expected}); use a matching jobcache version or a new directory")]
    UnsupportedVersion {
        /// The version file.
        path: PathBuf,
        /// The version this code reads.
        expected: u32,
        /// What the file said.
        found: String,
    },
    /// The layout file at the root holds something other than a layout line
    /// (damage, or a file that is not jobcache's).
    #[error("{path} is not a jobcache layout file (found {found}); if this directory is a jobcache cache, delete that file and jobcache will write it again, or point the cache at another directory")]
    BadLayoutFile {
        /// The layout file.
        path: PathBuf,
        /// What it held.
        found: String,
    },
    /// Something other than what the layout expects (a symlink, a file
    /// where a directory belongs) sits at a path of the store and could not
    /// be removed. Symlinks beneath the root are never followed.
    #[error("{path}: found {found} where the store keeps {expected}, and removing it failed: {source}; remove it by hand (jobcache never follows symlinks inside its cache) or point the cache at another directory")]
    InTheWay {
        /// The path in the store.
        path: PathBuf,
        /// What was found there.
        found: String,
        /// What the layout puts there.
        expected: &'static str,
        /// Why it could not be removed.
        #[source]
        source: std::io::Error,
    },
    /// An I/O operation on a path failed (permission denied, read-only file
    /// system, no space left, a root that is a file, …).
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`create directory`, `write payload`, …).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The payload writer given to `publish` (or the computation given to
    /// `get_or_compute`) failed; nothing was published.
    #[error("writing the payload of {namespace}/{key} failed, nothing was published: {source}")]
    Writer {
        /// The entry's namespace.
        namespace: String,
        /// The entry's key.
        key: String,
        /// The writer's error.
        #[source]
        source: std::io::Error,
    },
    /// A payload read through [`Entry`](crate::Entry) did not match its
    /// recorded length or checksum; the entry was quarantined.
    #[error("entry {path} is corrupt: {reason}; it was removed and will be recomputed")]
    Corrupt {
        /// The entry's location.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
    /// Free-form metadata fields exceed the size limit.
    #[error("metadata fields of {namespace}/{key} take {found} bytes; at most {max} are allowed (shorten captured output or argument summaries)")]
    MetadataTooLarge {
        /// The entry's namespace.
        namespace: String,
        /// The entry's key.
        key: String,
        /// The encoded size.
        found: usize,
        /// The limit.
        max: usize,
    },
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// A failed payload writer of `namespace`/`key`.
    pub(crate) fn writer(namespace: &str, key: &str, source: std::io::Error) -> StoreError {
        StoreError::Writer {
            namespace: namespace.to_string(),
            key: key.to_string(),
            source,
        }
    }

    /// The underlying I/O error kind, when this is an I/O error.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            StoreError::Io { source, .. }
            | StoreError::Writer { source, .. }
            | StoreError::InTheWay { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

/// Shortens user input quoted in an error message.
pub(crate) fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}

/// `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
