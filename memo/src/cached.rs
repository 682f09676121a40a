//! [`Cached`]: a function wrapped by a [`Memory`].

use crate::codec;
use crate::{Callable, Error, Memory, Shelved};
use jobcache_hash::{Digest, Hasher};
use jobcache_store::{Entry, EntryMeta, Lookup, NewEntry};
use jobcache_trace::{Event, EventKind};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// A validation callback: given a stored result's metadata, whether it may
/// still be used.
pub type Validator = Arc<dyn Fn(&EntryMeta) -> bool + Send + Sync>;

/// Metadata fields memo writes with every result (see the store's
/// `NewEntry::fields`).
pub mod fields {
    /// The function's name.
    pub const FUNCTION: &str = "function";
    /// The function's version (hash of its source, or the explicit version).
    pub const VERSION: &str = "version";
    /// A bounded summary of the arguments.
    pub const ARGS: &str = "args";
    /// Captured standard output (lossy UTF-8), when capture is on.
    pub const STDOUT: &str = "stdout";
    /// Captured standard error (lossy UTF-8), when capture is on.
    pub const STDERR: &str = "stderr";
    /// The function's type name (its path, or a closure's enclosing path),
    /// which tells two functions given one name apart.
    pub const IDENTITY: &str = "identity";
    /// One short digest per argument, space-separated (see
    /// [`why`](crate::why)).
    pub const ARG_DIGESTS: &str = "arg_digests";
    /// The argument names from the [`memoize!`](crate::memoize) source,
    /// comma-separated.
    pub const ARG_NAMES: &str = "arg_names";
    /// The short digest of the [`memoize!`](crate::memoize) source (empty
    /// when the source is unknown).
    pub const CODE: &str = "code";
    /// The explicit version ([`Cached::version`](crate::Cached::version)).
    pub const USER_VERSION: &str = "user_version";
}

/// Captured output kept per stream in the metadata (the store caps fields).
const CAPTURE_KEEP: usize = 256 * 1024;

/// A function whose results are cached by a [`Memory`]; from
/// [`Memory::cache`].
///
/// [`Cached::call`] returns the result, from the cache when the same
/// function (same name, same version) was called with the same arguments
/// before, else by running the function and storing what it returns.
pub struct Cached<F> {
    memory: Memory,
    func: F,
    explicit_name: Option<String>,
    version: Option<String>,
    expires_after: Option<Duration>,
    validator: Option<Validator>,
    /// This function's zstd level (`Some(None)`: uncompressed), overriding
    /// the memory's ([`MemoryBuilder::compress`](crate::MemoryBuilder::compress)).
    compress: Option<Option<i32>>,
    /// The resolved identity, computed once.
    identity: OnceLock<Resolved>,
}

/// What identifies a cached function, resolved once.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// Its namespace in the store.
    name: String,
    /// The explicit version and the source, as the key hashes them.
    version: String,
    /// The explicit version alone.
    user_version: String,
    /// The short digest of the source ("" when unknown).
    code: String,
    /// The type name.
    type_name: String,
    /// How many arguments it takes.
    arity: usize,
    /// Their names, when the source is known.
    arg_names: Vec<String>,
    /// A hasher fed the name, version and type name, which every key
    /// starts with: a call clones it (or the error of hashing them, which
    /// [`Cached::keyed`] reports).
    prefix: Result<Hasher, jobcache_hash::Error>,
}

/// A hasher fed what every key of a function starts with.
fn key_prefix(name: &str, version: &str, type_name: &str) -> Result<Hasher, jobcache_hash::Error> {
    let mut hasher = Hasher::new();
    hasher.update(name)?.update(version)?.update(type_name)?;
    Ok(hasher)
}

/// A call's key and the per-argument digests it was made of.
pub(crate) struct Keyed {
    pub(crate) key: Digest,
    pub(crate) text: String,
    args: Vec<Digest>,
}

impl<F: Clone> Clone for Cached<F> {
    fn clone(&self) -> Self {
        Cached {
            memory: self.memory.clone(),
            func: self.func.clone(),
            explicit_name: self.explicit_name.clone(),
            version: self.version.clone(),
            expires_after: self.expires_after,
            validator: self.validator.clone(),
            compress: self.compress,
            identity: self.identity.clone(),
        }
    }
}

impl<F> std::fmt::Debug for Cached<F> {
    /// Names the function (its name in the cache) and the cache directory,
    /// as joblib's `MemorizedFunc` repr does.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match (&self.explicit_name, self.identity.get()) {
            (_, Some(resolved)) => resolved.name.clone(),
            (Some(name), None) => name.clone(),
            (None, None) => std::any::type_name::<F>().to_string(),
        };
        f.debug_struct("Cached")
            .field("function", &name)
            .field("location", &self.memory.location())
            .field("version", &self.version)
            .field("expires_after", &self.expires_after)
            .finish_non_exhaustive()
    }
}

/// How a lookup came out.
pub(crate) enum Found<T> {
    Value(T, Hit),
    Miss,
}

/// How a cached call came out: a stored result as `load` returned it (a
/// hit, or with [`Protocol::Reload`] the result just stored), or a computed
/// value and whether it was stored.
pub(crate) enum Called<V, T> {
    Hit(V),
    Computed(T, bool),
}

/// The variants of the one call protocol ([`Cached::call_keyed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// A usable stored result is returned; a miss computes and stores
    /// (`call`, `call_and_shelve`).
    Use,
    /// The function runs whatever is stored, under the entry's lock, and
    /// its result takes the stored one's place (`refresh`).
    Refresh,
    /// As [`Protocol::Use`], but a result just stored is loaded back
    /// (`call_mapped`: a view of the file instead of the computed array).
    Reload,
}

/// What a hit records: the stored size and how long the result took to
/// compute (so the report can tell the time the hit saved).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub(crate) bytes: u64,
    pub(crate) compute_duration: Duration,
}

impl Hit {
    pub(crate) fn of(meta: &EntryMeta) -> Hit {
        Hit {
            bytes: meta.payload_len,
            compute_duration: meta.compute_duration,
        }
    }
}

impl<F> Cached<F> {
    pub(crate) fn new(memory: Memory, func: F, explicit_name: Option<String>) -> Cached<F> {
        Cached {
            memory,
            func,
            explicit_name,
            version: None,
            expires_after: None,
            validator: None,
            compress: None,
            identity: OnceLock::new(),
        }
    }

    /// Sets an explicit version: results stored under another version are
    /// never returned. Bump it when the function's behaviour changes in a
    /// way its source does not show (a function it calls, a data file).
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self.identity = OnceLock::new();
        self
    }

    /// Results older than `age` are recomputed.
    #[must_use]
    pub fn expires_after(mut self, age: Duration) -> Self {
        self.expires_after = Some(age);
        self
    }

    /// A callback that decides, from a stored result's metadata (creation
    /// time, compute duration, fields), whether it may be used; a result it
    /// rejects is recomputed (joblib's `cache_validation_callback`).
    #[must_use]
    pub fn validate(mut self, valid: impl Fn(&EntryMeta) -> bool + Send + Sync + 'static) -> Self {
        self.validator = Some(Arc::new(valid));
        self
    }

    /// Stores this function's new results zstd-compressed at `level`,
    /// whatever the memory's own setting
    /// ([`MemoryBuilder::compress`](crate::MemoryBuilder::compress)): for a
    /// function whose results are large and compressible (masks, labels,
    /// sparse data) in a memory that stores the rest raw. Level 1 (or a
    /// negative level) for speed, 3 for size. Stored results are read
    /// whatever their codec; a compressed result cannot be mapped
    /// (`call_mapped` loads it instead). Keys do not depend on it.
    #[must_use]
    pub fn compress(mut self, level: i32) -> Self {
        self.compress = Some(Some(level));
        self
    }

    /// Stores this function's new results uncompressed even if the memory
    /// compresses, so that `call_mapped` can map them in place.
    #[must_use]
    pub fn uncompressed(mut self) -> Self {
        self.compress = Some(None);
        self
    }

    /// The zstd level this function's new results are stored with, if
    /// compressed: its own setting, else the memory's.
    pub fn compression(&self) -> Option<i32> {
        self.compress.unwrap_or(self.memory.inner.compress)
    }

    /// The wrapped function.
    pub fn func(&self) -> &F {
        &self.func
    }

    /// The memory this function caches into.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// The function's name and version, resolved once.
    fn identity<A, M>(&self) -> &Resolved
    where
        F: Callable<A, M>,
    {
        self.identity.get_or_init(|| {
            let identity = self.func.identity();
            let code = identity
                .source
                .as_deref()
                .and_then(|s| jobcache_hash::hash(s).ok())
                .map(|d| crate::why::short(&d))
                .unwrap_or_default();
            let arg_names = identity
                .source
                .as_deref()
                .map(crate::why::param_names)
                .unwrap_or_default();
            let name = match &self.explicit_name {
                Some(name) => name.clone(),
                None => match Memory::check_name(&self.func) {
                    Ok(name) => name,
                    Err(what) => panic!(
                        "jobcache: Memory::cache was given {what} (`{}`), whose type name does \
                         not identify one function; use Memory::cache_named(\"a unique name\", f)",
                        identity.name
                    ),
                },
            };
            let version = [self.version.as_deref(), identity.source.as_deref()]
                .iter()
                .flatten()
                .copied()
                .collect::<Vec<_>>()
                .join("\n");
            let prefix = key_prefix(&name, &version, &identity.name);
            Resolved {
                name,
                version,
                user_version: self.version.clone().unwrap_or_default(),
                code,
                type_name: identity.name,
                arity: self.func.arity(),
                arg_names,
                prefix,
            }
        })
    }

    /// The function's name in the cache.
    pub fn name<A, M>(&self) -> &str
    where
        F: Callable<A, M>,
    {
        &self.identity::<A, M>().name
    }

    /// The cache key of a call with `args`: the digest of the function's
    /// name, its version, its type name and the digest of each argument.
    pub fn key<A, M>(&self, args: &A) -> Result<Digest, Error>
    where
        F: Callable<A, M>,
        A: Serialize,
    {
        self.keyed(args).map(|k| k.key)
    }

    /// The key and the per-argument digests it is made of: each argument is
    /// hashed once, and the key hashes the digests.
    pub(crate) fn keyed<A, M>(&self, args: &A) -> Result<Keyed, Error>
    where
        F: Callable<A, M>,
        A: Serialize,
    {
        let resolved = self.identity::<A, M>();
        let hashed = (|| {
            let arg_digests = crate::why::arg_digests(args, resolved.arity)?;
            let mut hasher = resolved.prefix.clone()?;
            for d in &arg_digests {
                hasher.update_bytes(d.as_bytes());
            }
            let key = hasher.finalize();
            Ok(Keyed {
                key,
                text: key.to_string(),
                args: arg_digests,
            })
        })();
        hashed.map_err(|source| Error::Hash {
            function: resolved.name.clone(),
            source,
        })
    }

    /// The key of `args` when the memory stores results; else `None`, after
    /// logging why when the arguments could not be hashed.
    pub(crate) fn keyed_or_warn<A, M>(&self, args: &A) -> Option<Keyed>
    where
        F: Callable<A, M>,
        A: Serialize,
    {
        self.memory.inner.store.as_ref()?;
        match self.keyed(args) {
            Ok(keyed) => Some(keyed),
            Err(e) => {
                self.warn_entry(
                    EventKind::StorageError,
                    self.name::<A, M>(),
                    "",
                    format!("{e}; calling without the cache"),
                );
                None
            }
        }
    }

    /// Why a call with `args` is not (or would not be) a hit: what differs
    /// from the nearest cached call of this function — "argument 2
    /// (`scale`) changed; code unchanged", "version 3 → 4", "no earlier
    /// call" (see [`why`](crate::why)). A miss logs the same at debug level.
    pub fn why<A, M>(&self, args: &A) -> Result<crate::why::Explanation, Error>
    where
        F: Callable<A, M>,
        A: Serialize,
    {
        let keyed = self.keyed(args)?;
        self.explain(self.name::<A, M>(), &keyed)
    }

    /// Compares a call with the other stored calls of `name`, most recent
    /// first.
    fn explain(&self, name: &str, keyed: &Keyed) -> Result<crate::why::Explanation, Error> {
        let record = self.record_of(keyed);
        let mut earlier: Vec<_> = match &self.memory.inner.store {
            Some(store) => store
                .entries(name)?
                .into_iter()
                .filter(|e| e.key != keyed.text)
                .filter_map(|e| e.meta.ok())
                .filter_map(|m| Some((m.created, crate::why::CallRecord::from_meta(&m)?)))
                .collect(),
            None => Vec::new(),
        };
        earlier.sort_by_key(|e| std::cmp::Reverse(e.0));
        Ok(crate::why::explain(&record, earlier.iter().map(|(_, r)| r)))
    }

    /// What the metadata keeps of a call, for [`why`](crate::why).
    fn record_of(&self, keyed: &Keyed) -> crate::why::CallRecord {
        let resolved = self.identity.get();
        crate::why::CallRecord {
            args: keyed.args.iter().map(crate::why::short).collect(),
            arg_names: resolved.map(|r| r.arg_names.clone()).unwrap_or_default(),
            code: resolved.map(|r| r.code.clone()).unwrap_or_default(),
            version: resolved.map(|r| r.user_version.clone()).unwrap_or_default(),
            identity: resolved.map(|r| r.type_name.clone()).unwrap_or_default(),
        }
    }

    /// Calls the function, or returns its cached result.
    ///
    /// Storage problems (a full disk, permissions, a corrupt entry) never
    /// reach the caller: they are logged as warnings and the function runs.
    /// If the function panics, nothing is cached and the panic propagates.
    pub fn call<A, M>(&self, args: A) -> F::Output
    where
        F: Callable<A, M>,
        A: Serialize,
        F::Output: Serialize + DeserializeOwned + 'static,
    {
        let compute = |f: &F, args| Ok::<_, Infallible>(f.call_with(args));
        match self.call_inner(args, Protocol::Use, compute) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// Calls a function returning `Result`, caching only `Ok` values: an
    /// `Err` is returned as it is and the next call tries again.
    pub fn try_call<A, M, T, E>(&self, args: A) -> Result<T, E>
    where
        F: Callable<A, M, Output = Result<T, E>>,
        A: Serialize,
        T: Serialize + DeserializeOwned + 'static,
    {
        self.call_inner(args, Protocol::Use, |f, args| f.call_with(args))
    }

    /// Runs the function whatever the cache holds, stores its result in
    /// place of the one stored for `args` (if any) and returns it: joblib's
    /// `MemorizedFunc.call`. Other callers of the same arguments wait for
    /// it (the entry's lock) and then load the new result. If the function
    /// panics, the stored result is left as it was.
    ///
    /// ```
    /// # fn main() -> Result<(), jobcache_memo::Error> {
    /// # let dir = tempfile::tempdir().map_err(|_| jobcache_memo::Error::Disabled)?;
    /// use jobcache_memo::Memory;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// static RUNS: AtomicU32 = AtomicU32::new(0);
    /// fn fetch(id: u32) -> u32 {
    ///     RUNS.fetch_add(1, Ordering::SeqCst) + id
    /// }
    ///
    /// let mem = Memory::builder(dir.path()).verbose(0).build()?;
    /// let fetch = mem.cache(fetch);
    /// assert_eq!(fetch.call(10), 10);    // computed
    /// assert_eq!(fetch.call(10), 10);    // loaded
    /// assert_eq!(fetch.refresh(10), 11); // run again, stored in its place
    /// assert_eq!(fetch.call(10), 11);    // the refreshed result
    /// # Ok(())
    /// # }
    /// ```
    pub fn refresh<A, M>(&self, args: A) -> F::Output
    where
        F: Callable<A, M>,
        A: Serialize,
        F::Output: Serialize + DeserializeOwned + 'static,
    {
        let compute = |f: &F, args| Ok::<_, Infallible>(f.call_with(args));
        match self.call_inner(args, Protocol::Refresh, compute) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// [`Cached::refresh`] for a function returning `Result`: an `Ok` value
    /// replaces the stored result, an `Err` is returned and leaves the stored
    /// result as it was.
    pub fn try_refresh<A, M, T, E>(&self, args: A) -> Result<T, E>
    where
        F: Callable<A, M, Output = Result<T, E>>,
        A: Serialize,
        T: Serialize + DeserializeOwned + 'static,
    {
        self.call_inner(args, Protocol::Refresh, |f, args| f.call_with(args))
    }

    /// Whether a result for `args` is in the cache (and would be used).
    pub fn check_call_in_cache<A, M>(&self, args: &A) -> bool
    where
        F: Callable<A, M>,
        A: Serialize,
    {
        let (Some(store), Ok(keyed)) = (&self.memory.inner.store, self.keyed(args)) else {
            return false;
        };
        let name = self.name::<A, M>();
        match store.get(name, &keyed.text, false) {
            Ok(Lookup::Found(entry)) => self.usable(entry.meta()),
            _ => false,
        }
    }

    /// Calls the function if its result is not cached yet, and returns a
    /// small handle to the stored result instead of the result itself: on a
    /// hit nothing is loaded. The handle loads the value later
    /// ([`Shelved::load`]), can be sent to another process, and can be
    /// passed to another cached function, which is then keyed by the
    /// handle's own key instead of by hashing the value again.
    pub fn call_and_shelve<A, M>(&self, args: A) -> Shelved<F::Output>
    where
        F: Callable<A, M>,
        A: Serialize,
        F::Output: Serialize + DeserializeOwned + 'static,
    {
        match self.shelve_inner(args, |f, args| Ok::<_, Infallible>(f.call_with(args))) {
            Ok(shelved) => shelved,
            Err(never) => match never {},
        }
    }

    /// [`Cached::call_and_shelve`] for a function returning `Result`: an
    /// `Ok` value is stored and shelved, an `Err` is returned and nothing is
    /// stored. The steps of a lazy pipeline, which load their shelved inputs
    /// with [`Shelved::load`], are such functions.
    pub fn try_call_and_shelve<A, M, T, E>(&self, args: A) -> Result<Shelved<T>, E>
    where
        F: Callable<A, M, Output = Result<T, E>>,
        A: Serialize,
        T: Serialize + DeserializeOwned + 'static,
    {
        self.shelve_inner(args, |f, args| f.call_with(args))
    }

    fn shelve_inner<A, M, T, E>(
        &self,
        args: A,
        compute: impl FnOnce(&F, A) -> Result<T, E>,
    ) -> Result<Shelved<T>, E>
    where
        F: Callable<A, M>,
        A: Serialize,
        T: Serialize + DeserializeOwned + 'static,
    {
        let name = self.name::<A, M>().to_string();
        let Some(keyed) = self.keyed_or_warn(&args) else {
            let key = self.key(&args).ok();
            let value = compute(&self.func, args)?;
            return Ok(Shelved::held(&name, key, &value));
        };
        // A hit loads nothing: the handle is enough.
        let called = self.call_keyed(&name, &keyed, args, Protocol::Use, &|_| Ok(()), compute)?;
        let key = keyed.key;
        Ok(match called {
            Called::Hit(()) | Called::Computed(_, true) => Shelved::stored(&self.memory, name, key),
            Called::Computed(value, false) => Shelved::held(&name, Some(key), &value),
        })
    }

    /// Removes every cached result of this function (all versions);
    /// returns the bytes freed.
    pub fn clear<A, M>(&self) -> Result<u64, Error>
    where
        F: Callable<A, M>,
    {
        let name = self.name::<A, M>().to_string();
        let freed = match &self.memory.inner.store {
            Some(store) => store.remove_namespace(&name)?,
            None => 0,
        };
        self.record(Event::new(EventKind::Cleared, &name).output_bytes(freed));
        Ok(freed)
    }

    /// Whether a stored result may be used (not expired, validated).
    pub(crate) fn usable(&self, meta: &EntryMeta) -> bool {
        let fresh = match self.expires_after {
            Some(age) => SystemTime::now()
                .duration_since(meta.created)
                .map_or(true, |elapsed| elapsed <= age),
            None => true,
        };
        fresh && self.validator.as_ref().is_none_or(|valid| valid(meta))
    }

    /// A call of a function whose result is returned as a value: plain
    /// ([`Protocol::Use`]) or refreshed ([`Protocol::Refresh`]).
    fn call_inner<A, M, T, E>(
        &self,
        args: A,
        protocol: Protocol,
        compute: impl FnOnce(&F, A) -> Result<T, E>,
    ) -> Result<T, E>
    where
        F: Callable<A, M>,
        A: Serialize,
        T: Serialize + DeserializeOwned + 'static,
    {
        let Some(keyed) = self.keyed_or_warn(&args) else {
            return compute(&self.func, args);
        };
        let load = |entry: Entry| {
            self.replay(&entry);
            codec::decode::<T>(entry).map_err(|e| e.to_string())
        };
        let called =
            self.call_keyed(self.name::<A, M>(), &keyed, args, protocol, &load, compute)?;
        Ok(match called {
            Called::Hit(value) | Called::Computed(value, _) => value,
        })
    }

    /// The one call protocol, once the key is known: look up; else lock,
    /// look up again (another caller may have computed it meanwhile),
    /// compute and store. `load` turns a usable entry into what a hit
    /// returns (the value, a view of it, or nothing); an `Err` from it means
    /// the entry is corrupt. `protocol` picks the variant: a refresh skips
    /// both lookups and replaces what is stored; a reload loads a result
    /// just stored back through `load`. The plain, shelved, refreshed and
    /// mapped calls all run it ([`Cached::call_async`] awaits its lock
    /// instead of blocking, with the same steps).
    pub(crate) fn call_keyed<A, T, E, V>(
        &self,
        name: &str,
        keyed: &Keyed,
        args: A,
        protocol: Protocol,
        load: &dyn Fn(Entry) -> Result<V, String>,
        compute: impl FnOnce(&F, A) -> Result<T, E>,
    ) -> Result<Called<V, T>, E>
    where
        A: Serialize,
        T: Serialize,
    {
        let key_text = keyed.text.as_str();
        let started = Instant::now();
        let refresh = protocol == Protocol::Refresh;
        if !refresh {
            if let Some(value) = self.hit(name, key_text, &args, started, load) {
                return Ok(Called::Hit(value));
            }
        }
        let lock = self.lock(name, key_text);
        if !refresh {
            if let Some(value) = self.hit(name, key_text, &args, started, load) {
                return Ok(Called::Hit(value));
            }
            self.log_miss(name, keyed);
        }
        let summary = jobcache_trace::summarize(&args);
        let (value, stored) =
            self.compute_and_store(name, keyed, summary, protocol, || compute(&self.func, args))?;
        drop(lock);
        if stored && protocol == Protocol::Reload {
            if let Found::Value(value, _) = self.lookup(name, key_text, load) {
                return Ok(Called::Hit(value));
            }
        }
        Ok(Called::Computed(value, stored))
    }

    /// A hit of the protocol: the entry looked up and loaded, and the hit
    /// recorded; `None` on a miss.
    pub(crate) fn hit<A: Serialize, V>(
        &self,
        name: &str,
        key: &str,
        args: &A,
        started: Instant,
        load: &dyn Fn(Entry) -> Result<V, String>,
    ) -> Option<V> {
        match self.lookup(name, key, load) {
            Found::Value(value, hit) => {
                self.record_hit(name, key, args, started, hit);
                Some(value)
            }
            Found::Miss => None,
        }
    }

    /// Logs why a call missed, at debug level and verbosity 1 or more: the
    /// store is listed only then, so a miss costs nothing more otherwise.
    pub(crate) fn log_miss(&self, name: &str, keyed: &Keyed) {
        if self.memory.inner.verbose == 0
            || !log::log_enabled!(target: "jobcache", log::Level::Debug)
        {
            return;
        }
        match self.explain(name, keyed) {
            Ok(why) => log::debug!(
                target: "jobcache",
                "{name}: miss ({}): {why}",
                keyed.key.short()
            ),
            Err(e) => log::debug!(target: "jobcache", "{name}: miss; cannot tell why: {e}"),
        }
    }

    /// Looks a result up and loads it with `load`; a corrupt, expired or
    /// rejected entry is a miss. A corrupt entry (found by the store, or by
    /// `load`) is logged and journaled as `Corrupt` and removed, so it is
    /// not hit again.
    fn lookup<V>(
        &self,
        name: &str,
        key: &str,
        load: &dyn Fn(Entry) -> Result<V, String>,
    ) -> Found<V> {
        let Some(store) = &self.memory.inner.store else {
            return Found::Miss;
        };
        let entry = match store.get(name, key, false) {
            Ok(Lookup::Found(entry)) => entry,
            Ok(Lookup::Missing) => return Found::Miss,
            Ok(Lookup::Corrupt(c)) => {
                // The store has already moved it out of the way.
                self.warn_entry(EventKind::Corrupt, name, key, c.to_string());
                return Found::Miss;
            }
            Err(e) => {
                self.warn_entry(EventKind::StorageError, name, key, e.to_string());
                return Found::Miss;
            }
        };
        if !self.usable(entry.meta()) {
            // Stored entries are immutable: make room for the new result.
            if let Err(e) = store.remove(name, key) {
                self.warn_entry(EventKind::StorageError, name, key, e.to_string());
            }
            return Found::Miss;
        }
        let hit = Hit::of(entry.meta());
        match load(*entry) {
            Ok(value) => Found::Value(value, hit),
            Err(e) => {
                let _ = store.remove(name, key);
                self.warn_entry(
                    EventKind::Corrupt,
                    name,
                    key,
                    format!("{e}; removed, computing again"),
                );
                Found::Miss
            }
        }
    }

    /// Replays the output a computation printed, when capture is on (a hit
    /// that returns the value prints what computing it printed).
    pub(crate) fn replay(&self, entry: &Entry) {
        if self.memory.inner.capture {
            let fields = &entry.meta().fields;
            crate::output::replay(fields.get(fields::STDOUT), fields.get(fields::STDERR));
        }
    }

    fn lock(&self, name: &str, key: &str) -> Option<jobcache_store::EntryLock> {
        let store = self.memory.inner.store.as_ref()?;
        match store.lock(name, key, self.memory.inner.lock_wait) {
            Ok(lock) => {
                if !lock.is_acquired() {
                    log::info!(
                        target: "jobcache",
                        "{name}: lock {:?} after {:.1}s; computing without it",
                        lock.state(),
                        lock.waited().as_secs_f64()
                    );
                }
                Some(lock)
            }
            Err(e) => {
                self.warn_entry(EventKind::StorageError, name, key, e.to_string());
                None
            }
        }
    }

    /// Runs `compute` and stores its value; returns the value and whether
    /// it was stored. A storage error is logged, never returned.
    fn compute_and_store<T, E>(
        &self,
        name: &str,
        keyed: &Keyed,
        summary: String,
        protocol: Protocol,
        compute: impl FnOnce() -> Result<T, E>,
    ) -> Result<(T, bool), E>
    where
        T: Serialize,
    {
        let failure = self.start_computing(name, keyed, &summary);
        let started = Instant::now();
        let (result, captured) = if self.memory.inner.capture {
            crate::output::capture(compute)
        } else {
            (compute(), None)
        };
        let duration = started.elapsed();
        let value = match result {
            Ok(value) => value,
            Err(e) => {
                drop(failure);
                return Err(e);
            }
        };
        failure.disarm();
        Ok(self.store_value(name, keyed, summary, protocol, value, duration, captured))
    }

    /// Announces a computation (the `calling` log line); the guard records
    /// a `failed` event unless disarmed once the value is there.
    pub(crate) fn start_computing<'a>(
        &'a self,
        name: &'a str,
        keyed: &'a Keyed,
        summary: &'a str,
    ) -> FailureGuard<'a, F> {
        self.record(Event::new(EventKind::Calling, name).args(&keyed.text, summary));
        FailureGuard {
            cached: self,
            name,
            key: &keyed.text,
            summary,
            armed: true,
        }
    }

    /// Stores a computed value; returns it and whether it was stored
    /// (with [`Protocol::Refresh`], in place of the stored one). A storage
    /// error is logged, never returned.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn store_value<T: Serialize>(
        &self,
        name: &str,
        keyed: &Keyed,
        summary: String,
        protocol: Protocol,
        value: T,
        duration: Duration,
        captured: Option<jobcache_trace::Captured>,
    ) -> (T, bool) {
        let key = keyed.text.as_str();
        let Some(store) = &self.memory.inner.store else {
            return (value, false);
        };
        let mut entry = self.new_entry(name, keyed, summary.clone(), duration);
        if let Some(captured) = &captured {
            entry = entry
                .field(fields::STDOUT, keep_lossy(&captured.stdout))
                .field(fields::STDERR, keep_lossy(&captured.stderr));
        }
        if protocol == Protocol::Refresh {
            // Entries are immutable: the new result takes the old one's
            // place only once it exists (a failed refresh keeps the old).
            if let Err(e) = store.remove(name, key) {
                self.warn_entry(EventKind::StorageError, name, key, e.to_string());
            }
        }
        let level = self.compression();
        let published = store.publish(name, key, &entry, &mut |w| codec::encode(w, &value, level));
        let event = Event::new(EventKind::Computed, name)
            .args(key, summary)
            .duration(duration)
            .compute_duration(duration);
        match published {
            Ok(published) => {
                self.record(event.output_bytes(published.meta.payload_len));
                self.memory.apply_policy();
                (value, true)
            }
            Err(e) => {
                self.record(event);
                self.warn_entry(
                    EventKind::StorageError,
                    name,
                    key,
                    format!("could not store the result: {e}; it was returned uncached"),
                );
                (value, false)
            }
        }
    }

    fn record_hit<A: Serialize>(
        &self,
        name: &str,
        key: &str,
        args: &A,
        started: Instant,
        hit: Hit,
    ) {
        let ended = Instant::now();
        let duration = ended.saturating_duration_since(started);
        let inner = &self.memory.inner;
        if !inner.log.logs(EventKind::Hit) {
            // Not logged: a repeated hit of a call whose line the journal
            // holds only adds to that line (no event, no summary).
            if let Some(journal) = &inner.journal {
                if journal.repeat_hit(name, key, duration, ended) {
                    return;
                }
            }
        }
        let summary = jobcache_trace::summarize(args);
        self.record(
            Event::new(EventKind::Hit, name)
                .args(key, summary)
                .duration(duration)
                .compute_duration(hit.compute_duration)
                .output_bytes(hit.bytes),
        );
    }

    pub(crate) fn record(&self, event: Event) {
        self.memory.record(&event);
    }

    pub(crate) fn warn_entry(&self, kind: EventKind, name: &str, key: &str, message: String) {
        self.record(Event::new(kind, name).args(key, "").message(message));
    }
}

impl<F> Cached<F> {
    /// The metadata of a new result.
    fn new_entry(
        &self,
        name: &str,
        keyed: &Keyed,
        summary: String,
        duration: Duration,
    ) -> NewEntry {
        let version = self.identity.get().map_or("", |r| r.version.as_str());
        let mut version_digest = version.to_string();
        if version.len() > 64 {
            version_digest = jobcache_hash::hash(version)
                .map(|d| d.short())
                .unwrap_or_default();
        }
        let mut entry = NewEntry::new(duration)
            .field(fields::FUNCTION, name)
            .field(fields::VERSION, version_digest)
            .field(fields::ARGS, summary);
        for (field, value) in self.record_of(keyed).fields() {
            entry = entry.field(field, value);
        }
        entry
    }
}

fn keep_lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(CAPTURE_KEEP)]).into_owned()
}

/// Records a `failed` event if the computation does not come back (a panic
/// unwinding through it, or an `Err`).
pub(crate) struct FailureGuard<'a, F> {
    cached: &'a Cached<F>,
    name: &'a str,
    key: &'a str,
    summary: &'a str,
    armed: bool,
}

impl<F> FailureGuard<'_, F> {
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl<F> Drop for FailureGuard<'_, F> {
    fn drop(&mut self) {
        if self.armed {
            let how = if std::thread::panicking() {
                "the function panicked; nothing was cached"
            } else {
                "the function returned an error (or its future was dropped); nothing was cached"
            };
            self.cached.record(
                Event::new(EventKind::Failed, self.name)
                    .args(self.key, self.summary)
                    .message(how),
            );
        }
    }
}
