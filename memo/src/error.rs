//! The errors of jobcache-memo.

use std::path::PathBuf;

/// What can go wrong in the operations that report errors (setting up a
/// [`Memory`](crate::Memory), clearing, loading a shelved value). A cached
/// *call* never returns these: storage problems there are logged and the
/// function simply runs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The cache directory could not be created or opened.
    #[error("cannot use {path} as a cache directory: {source}")]
    Location {
        /// The directory.
        path: PathBuf,
        /// What the store said.
        #[source]
        source: jobcache_store::StoreError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] jobcache_store::StoreError),
    /// A value could not be written or read.
    #[error(transparent)]
    Persist(#[from] jobcache_persist::Error),
    /// The arguments could not be hashed into a key.
    #[error("cannot hash the arguments of {function}: {source}")]
    Hash {
        /// The function called.
        function: String,
        /// What the hasher said.
        #[source]
        source: jobcache_hash::Error,
    },
    /// The run journal could not be opened.
    #[error(transparent)]
    Trace(#[from] jobcache_trace::TraceError),
    /// A shelved value is no longer in the cache (cleared or evicted).
    #[error("the shelved result of {function} ({key}) is no longer in the cache at {location}; call the function again")]
    NotInCache {
        /// The function whose result it was.
        function: String,
        /// Its key.
        key: String,
        /// The cache directory.
        location: String,
    },
    /// The entry was found corrupt (it has been removed).
    #[error("the cached result of {function} ({key}) is corrupt and was removed: {reason}")]
    Corrupt {
        /// The function whose result it was.
        function: String,
        /// Its key.
        key: String,
        /// What did not match.
        reason: String,
    },
    /// The remote cache could not be set up.
    #[cfg(feature = "remote")]
    #[error(transparent)]
    Remote(jobcache_object_store::Error),
    /// The operation needs a cache, but this `Memory` is disabled.
    #[error("this Memory is disabled (no cache directory): nothing is stored")]
    Disabled,
}
