//! [`Shelved`]: a handle to a stored result, loaded only when asked.

use crate::{codec, ArrayOutput, Error, Memory};
use jobcache_hash::Digest;
use jobcache_persist::Element;
use jobcache_store::{Entry, FsStore, Lookup, Store};
use ndarray::{Array, Dimension};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A handle to the stored result of one call, from
/// [`Cached::call_and_shelve`](crate::Cached::call_and_shelve): the
/// function's name, the call's key and the cache directory.
///
/// - [`Shelved::load`] reads the value; nothing is read before.
/// - It serializes (with serde) to a few dozen bytes, so it can be sent to
///   another process, which loads it from the same directory.
/// - Passed as an argument to another cached function, it is hashed as
///   (function, key) only, not as the value: a pipeline of cached steps
///   whose every step hits loads nothing but what its last step returns.
///   The cache directory is kept for loading but is not part of the keys
///   downstream, so moving a cache, or two machines sharing one remote cache
///   through different local directories, keeps every key.
#[derive(Deserialize)]
#[serde(bound = "")]
pub struct Shelved<T> {
    function: String,
    key: Option<Digest>,
    location: Option<PathBuf>,
    /// The store it came from, within this process.
    #[serde(skip)]
    store: Option<Arc<dyn Store>>,
    /// The encoded value, when it could not be stored (a disabled memory, a
    /// full disk): the handle then works within this process only.
    #[serde(skip)]
    held: Option<Arc<Vec<u8>>>,
    #[serde(skip)]
    value_type: PhantomData<fn() -> T>,
}

/// The handle as it is sent to another process: the location included.
#[derive(Serialize)]
#[serde(rename = "Shelved")]
struct Sent<'a> {
    function: &'a str,
    key: Option<Digest>,
    location: Option<&'a Path>,
}

/// The handle as a cache key sees it: what was computed, never where it is.
#[derive(Serialize)]
#[serde(rename = "Shelved")]
struct Keyed<'a> {
    function: &'a str,
    key: Option<Digest>,
}

thread_local! {
    /// Set while memo hashes a call's arguments into its key.
    static HASHING_KEY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (which hashes a call's arguments) with shelved handles hashed
/// as (function, key) only.
pub(crate) fn hashing_key<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            HASHING_KEY.with(|h| h.set(self.0));
        }
    }
    let _reset = Reset(HASHING_KEY.with(|h| h.replace(true)));
    f()
}

impl<T> Serialize for Shelved<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if HASHING_KEY.with(|h| h.get()) {
            Keyed {
                function: &self.function,
                key: self.key,
            }
            .serialize(serializer)
        } else {
            Sent {
                function: &self.function,
                key: self.key,
                location: self.location.as_deref(),
            }
            .serialize(serializer)
        }
    }
}

impl<T> Clone for Shelved<T> {
    fn clone(&self) -> Self {
        Shelved {
            function: self.function.clone(),
            key: self.key,
            location: self.location.clone(),
            store: self.store.clone(),
            held: self.held.clone(),
            value_type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Shelved<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shelved")
            .field("function", &self.function)
            .field("key", &self.key.map(|k| k.short()))
            .field("location", &self.location)
            .field("held_in_memory", &self.held.is_some())
            .finish()
    }
}

impl<T> Shelved<T> {
    pub(crate) fn stored(memory: &Memory, function: String, key: Digest) -> Shelved<T> {
        Shelved {
            function,
            key: Some(key),
            location: memory.location().map(Path::to_path_buf),
            store: memory.store().cloned(),
            held: None,
            value_type: PhantomData,
        }
    }

    pub(crate) fn held(function: &str, key: Option<Digest>, value: &T) -> Shelved<T>
    where
        T: Serialize,
    {
        let mut bytes = Vec::new();
        let held = match codec::encode(&mut bytes, value, None) {
            Ok(()) => Some(Arc::new(bytes)),
            Err(e) => {
                log::warn!(target: "jobcache", "{function}: cannot keep the shelved value: {e}");
                None
            }
        };
        Shelved {
            function: function.to_string(),
            key,
            location: None,
            store: None,
            held,
            value_type: PhantomData,
        }
    }

    /// The function whose result this is.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// The call's key.
    pub fn key(&self) -> Option<Digest> {
        self.key
    }

    /// The cache directory the result is stored in.
    pub fn location(&self) -> Option<&Path> {
        self.location.as_deref()
    }

    fn store(&self) -> Result<Arc<dyn Store>, Error> {
        if let Some(store) = &self.store {
            return Ok(store.clone());
        }
        match &self.location {
            Some(path) => Ok(Arc::new(FsStore::open(path).map_err(|source| {
                Error::Location {
                    path: path.clone(),
                    source,
                }
            })?)),
            None => Err(Error::Disabled),
        }
    }

    fn not_in_cache(&self) -> Error {
        Error::NotInCache {
            function: self.function.clone(),
            key: self.key.map(|k| k.to_string()).unwrap_or_default(),
            location: self
                .location
                .as_ref()
                .map_or("(memory)".into(), |p| p.display().to_string()),
        }
    }

    /// Loads the value (with every checksum verified).
    pub fn load(&self) -> Result<T, Error>
    where
        T: DeserializeOwned + 'static,
    {
        if let Some(bytes) = &self.held {
            return codec::decode_slice(bytes);
        }
        codec::decode(self.entry(true)?)
    }

    /// The stored entry (`verify_payload`: the store checks the payload's
    /// checksum as it is read).
    fn entry(&self, verify_payload: bool) -> Result<Entry, Error> {
        let key = self.key.ok_or_else(|| self.not_in_cache())?;
        match self
            .store()?
            .get(&self.function, &key.to_string(), verify_payload)?
        {
            Lookup::Found(entry) => Ok(*entry),
            Lookup::Missing => Err(self.not_in_cache()),
            Lookup::Corrupt(c) => Err(self.corrupt(c.reason)),
        }
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            function: self.function.clone(),
            key: self.key.map(|k| k.to_string()).unwrap_or_default(),
            reason,
        }
    }

    /// Removes the stored result; returns the bytes freed.
    pub fn clear(&self) -> Result<u64, Error> {
        match self.key {
            Some(key) if self.held.is_none() => {
                Ok(self.store()?.remove(&self.function, &key.to_string())?)
            }
            _ => Ok(0),
        }
    }
}

impl<A, D> Shelved<Array<A, D>>
where
    A: Element + DeserializeOwned + 'static,
    D: Dimension + DeserializeOwned + 'static,
{
    /// Loads an array result as a read-only view of the cache file (no
    /// copy; the map lives as long as the returned value), as joblib's
    /// `mmap_mode` applies to a shelved result's `get()`. The file's
    /// header, metadata and table, then every array block's checksum, are
    /// checked over the mapping before it is returned, as for a hit of
    /// [`Cached::call_mapped`](crate::Cached::call_mapped). A result small
    /// enough to live in the metadata file, or held in memory, comes back
    /// [`ArrayOutput::Owned`].
    ///
    /// Mapping relies on the store never modifying a published file in
    /// place: a cache file truncated by hand while it is mapped would crash
    /// the reader.
    pub fn load_mapped(&self) -> Result<ArrayOutput<A, D>, Error> {
        if let Some(bytes) = &self.held {
            return codec::decode_slice(bytes).map(ArrayOutput::Owned);
        }
        crate::mapped::map_entry(self.entry(false)?, true).map_err(|e| {
            // As a corrupt hit is: removed, so the next call computes it.
            let _ = self.clear();
            self.corrupt(e)
        })
    }
}
