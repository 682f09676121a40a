//! [`Memory`]: where cached results live, and how calls are traced.

use crate::{Cached, Callable, Error};
use jobcache_store::{Durability, FsStore, Limits, Reduction, Store, StoreExt, Wait};
use jobcache_trace::{Event, EventKind, Journal, LogTracer, Tracer};
use std::any::TypeId;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The run journal's file name inside the cache directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// A cache of function results, as joblib's `Memory`: wrap a function with
/// [`Memory::cache`] and its results are stored on disk, keyed by its name,
/// its version and its arguments.
///
/// Cheap to clone (the clones share one store and one journal) and `Send +
/// Sync`, so one `Memory` serves every thread.
#[derive(Clone)]
pub struct Memory {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// `None` for a disabled memory: functions run, nothing is stored.
    pub(crate) store: Option<Arc<dyn Store>>,
    pub(crate) location: Option<PathBuf>,
    /// Log lines, by verbosity.
    pub(crate) log: LogTracer,
    /// The run journal: one event per call (no `calling` events, which only
    /// announce a computation in the log).
    pub(crate) journal: Option<Journal>,
    pub(crate) verbose: u8,
    pub(crate) mapping: Mapping,
    pub(crate) capture: bool,
    pub(crate) lock_wait: Wait,
    pub(crate) reduce_policy: Option<Limits>,
    /// The zstd level results are stored with, if compressed.
    pub(crate) compress: Option<i32>,
    /// The functions cached under each name, by type: a second function
    /// under a name is kept apart (see [`Memory::cache_named`]).
    names: Mutex<HashMap<String, Vec<TypeId>>>,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("location", &self.inner.location)
            .field("enabled", &self.inner.store.is_some())
            .field("verbose", &self.inner.verbose)
            .field("mapping", &self.inner.mapping)
            .field("capture", &self.inner.capture)
            .finish_non_exhaustive()
    }
}

impl Memory {
    /// A cache in the directory `location` (created if needed), with
    /// joblib's defaults: verbosity 1 (a line per computation), a run journal
    /// in `location/journal.jsonl`, and no size limit.
    pub fn new(location: impl AsRef<Path>) -> Result<Memory, Error> {
        Memory::builder(location).build()
    }

    /// A builder for a cache in `location`.
    pub fn builder(location: impl AsRef<Path>) -> MemoryBuilder {
        MemoryBuilder {
            location: Some(location.as_ref().to_path_buf()),
            store: None,
            verbose: 1,
            journal: true,
            mapping: Mapping::Off,
            capture: false,
            lock_wait: Wait::Timeout(Duration::from_secs(600)),
            reduce_policy: None,
            compress: None,
            durability: Durability::default(),
            #[cfg(feature = "remote")]
            remote: None,
        }
    }

    /// A disabled memory (joblib's `location=None`): cached functions run
    /// every time and nothing is stored.
    pub fn disabled() -> Memory {
        Memory {
            inner: Arc::new(Inner {
                store: None,
                location: None,
                log: LogTracer::new(0),
                journal: None,
                verbose: 0,
                mapping: Mapping::Off,
                capture: false,
                lock_wait: Wait::NoWait,
                reduce_policy: None,
                compress: None,
                names: Mutex::default(),
            }),
        }
    }

    /// Whether results are stored.
    pub fn is_enabled(&self) -> bool {
        self.inner.store.is_some()
    }

    /// The cache directory, if there is one (a custom store may have none).
    pub fn location(&self) -> Option<&Path> {
        self.inner.location.as_deref()
    }

    /// The store behind this memory (`None` when disabled).
    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.inner.store.as_ref()
    }

    /// Wraps a function item so its results are cached. Its name in the
    /// cache is its path (`my_crate::stats::square`); a function made by
    /// [`memoize!`](crate::memoize) also has its source in its version.
    ///
    /// # Panics
    /// Here, not at the first call, if `func` is a closure or a function
    /// pointer: their type names are shared by many functions, so two of
    /// them could silently share cache entries. Name them with
    /// [`Memory::cache_named`]:
    ///
    /// ```should_panic
    /// # let dir = tempfile::tempdir().unwrap();
    /// let mem = jobcache_memo::Memory::builder(dir.path()).verbose(0).build().unwrap();
    /// let add_one = mem.cache(|x: u32| x + 1); // panics: use cache_named
    /// ```
    pub fn cache<F>(&self, func: F) -> Cached<F> {
        let identity = crate::Identity::of_type::<F>();
        if let Some(what) = identity.ambiguity() {
            panic!(
                "jobcache: Memory::cache was given {what} (`{}`), whose type name does not \
                 identify one function; use Memory::cache_named(\"a unique name\", f)",
                identity.name
            );
        }
        self.cache_with_identity(func, None)
    }

    /// Wraps a function (a closure, a function pointer, a method) under an
    /// explicit name.
    ///
    /// Two different functions given one name never return each other's
    /// results: the key includes the function's type name, and on one
    /// `Memory` a second function under a name already taken is logged as
    /// a warning and kept apart under `name#2` (as joblib warns of a
    /// collision). Give each function its own name.
    pub fn cache_named<F>(&self, name: &str, func: F) -> Cached<F> {
        self.cache_with_identity(func, Some(name.to_string()))
    }

    fn cache_with_identity<F>(&self, func: F, name: Option<String>) -> Cached<F> {
        let type_name = std::any::type_name::<F>();
        let wanted = name.clone().unwrap_or_else(|| type_name.to_string());
        let name = match self.register(&wanted, typeid::of::<F>()) {
            0 => name,
            n => {
                let apart = format!("{wanted}#{}", n + 1);
                log::warn!(
                    target: "jobcache",
                    "{wanted}: another function (`{type_name}`) is cached under this name on the \
                     same Memory; it is kept apart as `{apart}` — give each function its own name"
                );
                Some(apart)
            }
        };
        Cached::new(self.clone(), func, name)
    }

    /// The rank of the function `id` among those cached under `name` on this
    /// memory (0 for the first).
    fn register(&self, name: &str, id: TypeId) -> usize {
        let mut names = match self.inner.names.lock() {
            Ok(names) => names,
            Err(poisoned) => poisoned.into_inner(),
        };
        let ids = names.entry(name.to_string()).or_default();
        match ids.iter().position(|known| *known == id) {
            Some(rank) => rank,
            None => {
                ids.push(id);
                ids.len() - 1
            }
        }
    }

    /// Removes every cached result; returns the bytes freed. The journal
    /// records a `cleared` event per function that had results, as
    /// `jobcache clear` does.
    pub fn clear(&self) -> Result<u64, Error> {
        let Some(store) = &self.inner.store else {
            return Ok(0);
        };
        let mut freed = 0;
        for ns in store.namespaces()? {
            let bytes = store.remove_namespace(&ns)?;
            freed += bytes;
            if bytes > 0 {
                self.record(
                    &Event::new(EventKind::Cleared, &ns)
                        .output_bytes(bytes)
                        .message("Memory::clear removed every cached result"),
                );
            }
        }
        Ok(freed)
    }

    /// Evicts least recently used results until every given limit holds:
    /// total bytes, number of results, age since last use.
    pub fn reduce_size(
        &self,
        max_bytes: Option<u64>,
        max_items: Option<usize>,
        max_age: Option<Duration>,
    ) -> Result<Reduction, Error> {
        let limits = Limits {
            max_bytes,
            max_items,
            max_age,
        };
        match &self.inner.store {
            Some(store) => Ok(store.reduce_size(&limits, false)?),
            None => Ok(Reduction::default()),
        }
    }

    /// Sends an event to the log and, unless it only announces a
    /// computation, to the journal.
    pub(crate) fn record(&self, event: &Event) {
        self.inner.log.record(event);
        if event.kind != EventKind::Calling {
            if let Some(journal) = &self.inner.journal {
                journal.record(event);
            }
        }
    }

    /// Writes the `hit` and `computed` lines the journal holds in memory
    /// (they are journaled in batches, failures and other events at once;
    /// dropping the last clone of the memory writes them too). A failed
    /// write is a warning.
    ///
    /// Call it before exit when the memory lives in a `static` (whose drop
    /// never runs), or its last calls may be missing from the journal.
    pub fn flush_journal(&self) {
        if let Some(journal) = &self.inner.journal {
            if let Err(e) = journal.flush() {
                log::warn!(target: "jobcache", "could not write the journal: {e}");
            }
        }
    }

    /// Applies the builder's default size policy, if one was set (called
    /// after each new result is stored).
    pub(crate) fn apply_policy(&self) {
        if let (Some(store), Some(limits)) = (&self.inner.store, &self.inner.reduce_policy) {
            if let Err(e) = store.apply_limits(limits) {
                log::warn!(target: "jobcache", "could not reduce the cache size: {e}");
            }
        }
    }

    /// Whether `f` has a function item's name (see [`Memory::cache`]).
    pub(crate) fn check_name<F, A, M>(func: &F) -> Result<String, &'static str>
    where
        F: Callable<A, M>,
    {
        let identity = func.identity();
        match identity.ambiguity() {
            Some(what) => Err(what),
            None => Ok(identity.name),
        }
    }
}

/// How [`Cached::call_mapped`] loads array results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mapping {
    /// Read into memory, as [`Cached::call`] does.
    Off,
    /// Mapped, every array block's checksum checked over the map.
    Checked,
    /// Mapped, array data not checked (O(1) hits).
    Unchecked,
}

/// Sets up a [`Memory`]; from [`Memory::builder`].
#[derive(Debug)]
#[must_use]
pub struct MemoryBuilder {
    location: Option<PathBuf>,
    store: Option<Arc<dyn Store>>,
    verbose: u8,
    journal: bool,
    mapping: Mapping,
    capture: bool,
    lock_wait: Wait,
    reduce_policy: Option<Limits>,
    compress: Option<i32>,
    durability: Durability,
    #[cfg(feature = "remote")]
    remote: Option<Result<jobcache_object_store::Config, jobcache_object_store::Error>>,
}

impl MemoryBuilder {
    /// How new results are made durable in the file store (see
    /// [`Durability`]): [`Durability::Checksummed`] by default, no `fsync`
    /// on a miss, a result torn by a power loss is found by its checksum
    /// and computed again; [`Durability::Synced`] makes each stored result
    /// survive a power loss, at the cost of `fsync`s on every miss. Not used
    /// with [`MemoryBuilder::store`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Stores new results zstd-compressed at `level` (1–3 are fast; joblib's
    /// `compress=`), the body and every array in independent 1 MiB frames;
    /// blocks that do not shrink are kept raw. Loading needs no option:
    /// the entry records its codec, and entries of either kind are read.
    /// A compressed array cannot be memory-mapped, so
    /// [`Cached::call_mapped`](crate::Cached::call_mapped) returns it owned
    /// (a copying load, checked as always). Off by default.
    pub fn compress(mut self, level: i32) -> Self {
        self.compress = Some(level);
        self
    }

    /// How much is logged (target `jobcache`, through the `log` crate), as
    /// joblib's `verbose`: 0 nothing but warnings, 1 a line when a function
    /// is computed and the time it took, 2 also a line per cache hit.
    pub fn verbose(mut self, level: u8) -> Self {
        self.verbose = level;
        self
    }

    /// Whether to append every call to the run journal
    /// (`location/journal.jsonl`; on by default).
    pub fn journal(mut self, on: bool) -> Self {
        self.journal = on;
        self
    }

    /// Load plain-array outputs as memory-mapped, zero-copy views in
    /// [`Cached::call_mapped`] (off: they are read into memory).
    ///
    /// A mapped hit is checked as a copying one is: the file's header,
    /// metadata and table when it is mapped, and the checksum of every
    /// array block over the mapping before the view is returned (a read of
    /// the array, no copy of it). A corrupt entry is logged, journaled,
    /// removed and computed again. See [`MemoryBuilder::mmap_unchecked`]
    /// for hits that cost O(1) instead.
    pub fn mmap(mut self, on: bool) -> Self {
        self.mapping = if on { Mapping::Checked } else { Mapping::Off };
        self
    }

    /// Like [`mmap(true)`](MemoryBuilder::mmap), but a hit does not check
    /// the array data: it costs a few small reads whatever the array's
    /// size, and **damage inside the array data is not detected** (the
    /// view shows whatever the file holds). The file's header, metadata and
    /// table are still checked. For arrays too large to read once per hit,
    /// on storage you trust.
    ///
    /// `mmap_unchecked(false)` turns the checks back on and leaves mapping
    /// on or off as it was.
    pub fn mmap_unchecked(mut self, on: bool) -> Self {
        self.mapping = match (on, self.mapping) {
            (true, _) => Mapping::Unchecked,
            (false, Mapping::Unchecked) => Mapping::Checked,
            (false, other) => other,
        };
        self
    }

    /// Capture what a computed function writes to stdout and stderr, store
    /// it with the result, and replay it on a hit (Unix; process-wide, so
    /// other threads' output in that window is captured too).
    pub fn capture_output(mut self, on: bool) -> Self {
        self.capture = on;
        self
    }

    /// How long a call waits for another process computing the same result
    /// before computing it too (10 minutes by default).
    pub fn lock_wait(mut self, wait: Wait) -> Self {
        self.lock_wait = wait;
        self
    }

    /// A size policy applied after each new result is stored
    /// (see [`Memory::reduce_size`]).
    pub fn reduce_size(
        mut self,
        max_bytes: Option<u64>,
        max_items: Option<usize>,
        max_age: Option<Duration>,
    ) -> Self {
        self.reduce_policy = Some(Limits {
            max_bytes,
            max_items,
            max_age,
        });
        self
    }

    /// Use this store instead of a file store in the location (for example
    /// a shared backend). The journal, if on, still goes to the location.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Shares results through a remote cache on S3-compatible object
    /// storage (`s3://bucket/prefix`), with the location as its local tier:
    /// hits are read locally when they are there, else downloaded; new
    /// results go to both. Credentials, region, endpoint and
    /// `AWS_ALLOW_HTTP` come from the standard AWS environment variables;
    /// [`MemoryBuilder::remote_config`] sets them in code. A remote that
    /// cannot be reached never fails a call (see `jobcache-object-store`).
    #[cfg(feature = "remote")]
    pub fn remote(mut self, url: &str) -> Self {
        self.remote = Some(jobcache_object_store::Config::new(url));
        self
    }

    /// As [`MemoryBuilder::remote`], with a configuration made in code (an
    /// endpoint, `allow_http`, timeouts).
    #[cfg(feature = "remote")]
    pub fn remote_config(mut self, config: jobcache_object_store::Config) -> Self {
        self.remote = Some(Ok(config));
        self
    }

    #[cfg(feature = "remote")]
    fn remote_store(&mut self) -> Result<Option<Arc<dyn Store>>, Error> {
        let Some(config) = self.remote.take() else {
            return Ok(None);
        };
        let mut config = config.map_err(Error::Remote)?;
        if let Some(path) = &self.location {
            config = config.local_tier(path);
        }
        let store = jobcache_object_store::RemoteStore::open(config).map_err(Error::Remote)?;
        Ok(Some(Arc::new(store)))
    }

    #[cfg(not(feature = "remote"))]
    fn remote_store(&mut self) -> Result<Option<Arc<dyn Store>>, Error> {
        Ok(None)
    }

    /// Creates the cache directory if needed and opens the journal.
    pub fn build(mut self) -> Result<Memory, Error> {
        if let Some(remote) = self.remote_store()? {
            self.store = Some(remote);
        }
        let store: Arc<dyn Store> = match (self.store, &self.location) {
            (Some(store), _) => store,
            (None, Some(path)) => {
                let store = FsStore::create(path).map_err(|source| Error::Location {
                    path: path.clone(),
                    source,
                })?;
                Arc::new(store.with_durability(self.durability))
            }
            (None, None) => return Ok(Memory::disabled()),
        };
        let journal = match (self.journal, &self.location) {
            (true, Some(path)) => Some(Journal::open(path.join(JOURNAL_FILE))?),
            _ => None,
        };
        Ok(Memory {
            inner: Arc::new(Inner {
                store: Some(store),
                location: self.location,
                log: LogTracer::new(self.verbose),
                journal,
                verbose: self.verbose,
                mapping: self.mapping,
                capture: self.capture,
                lock_wait: self.lock_wait,
                reduce_policy: self.reduce_policy,
                compress: self.compress,
                names: Mutex::default(),
            }),
        })
    }
}
