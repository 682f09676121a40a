//! Array results as memory-mapped, zero-copy views.

use crate::cached::Hit;
use crate::{Cached, Callable};
use jobcache_persist::{Element, MappedArray};
use jobcache_store::Lookup;
use jobcache_trace::{Event, EventKind};
use ndarray::{Array, ArrayView, Dimension};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Instant;

/// An array result from [`Cached::call_mapped`]: a read-only view of the
/// stored file (no copy, the map lives as long as this value), or the array
/// in memory when it could not be mapped (mmap off, a disabled memory, a
/// result that could not be stored).
pub enum ArrayOutput<A, D: Dimension> {
    /// Viewed in place in the cache.
    Mapped(MappedArray<A, D>),
    /// Held in memory.
    Owned(Array<A, D>),
}

impl<A: Element, D: Dimension> std::fmt::Debug for ArrayOutput<A, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = if self.is_mapped() { "mapped" } else { "owned" };
        write!(f, "ArrayOutput::{how}(shape {:?})", self.view().shape())
    }
}

impl<A: Element, D: Dimension> ArrayOutput<A, D> {
    /// The array.
    pub fn view(&self) -> ArrayView<'_, A, D> {
        match self {
            ArrayOutput::Mapped(m) => m.view(),
            ArrayOutput::Owned(a) => a.view(),
        }
    }

    /// Whether the array is viewed in place in the cache.
    pub fn is_mapped(&self) -> bool {
        matches!(self, ArrayOutput::Mapped(_))
    }

    /// The array in memory (a copy, when mapped).
    pub fn into_owned(self) -> Array<A, D> {
        match self {
            ArrayOutput::Mapped(m) => m.view().to_owned(),
            ArrayOutput::Owned(a) => a,
        }
    }
}

impl<F> Cached<F> {
    /// For a function returning a plain ndarray array: the result as a
    /// memory-mapped view of the cache file when the memory was built with
    /// [`mmap(true)`](crate::MemoryBuilder::mmap) — a hit then costs a few
    /// small reads whatever the array's size — else in memory, as
    /// [`Cached::call`] returns it.
    ///
    /// Mapping relies on the store's promise that a published file is
    /// never modified in place (entries are replaced by rename): a cache
    /// file truncated by hand while it is mapped would crash the reader.
    pub fn call_mapped<Args, M, A, D>(&self, args: Args) -> ArrayOutput<A, D>
    where
        F: Callable<Args, M, Output = Array<A, D>>,
        Args: Serialize,
        A: Element + Serialize + DeserializeOwned + 'static,
        D: Dimension + Serialize + DeserializeOwned + 'static,
    {
        let inner = &self.memory().inner;
        if !inner.mmap || inner.store.is_none() {
            return ArrayOutput::Owned(self.call(args));
        }
        let Ok(key) = self.key(&args) else {
            return ArrayOutput::Owned(self.call(args));
        };
        let name = self.name::<Args, M>().to_string();
        let key_text = key.to_string();
        let started = Instant::now();
        if let Some((mapped, hit)) = self.map_stored::<A, D>(&name, &key_text) {
            self.record_hit(&name, &key_text, &args, started, hit);
            return ArrayOutput::Mapped(mapped);
        }
        // A miss (or an entry that cannot be mapped): the usual path, with
        // the key already computed, computes and stores; then the stored
        // file is mapped.
        let computed = self.call_keyed(&name, &key_text, args, |f, args| {
            Ok::<_, std::convert::Infallible>(f.call_with(args))
        });
        let value = match computed {
            Ok(value) => value,
            Err(never) => match never {},
        };
        match self.map_stored::<A, D>(&name, &key_text) {
            Some((mapped, _)) => ArrayOutput::Mapped(mapped),
            None => ArrayOutput::Owned(value),
        }
    }

    /// Maps the stored result, if there is a usable one in a file of its own.
    fn map_stored<A: Element, D: Dimension>(
        &self,
        name: &str,
        key: &str,
    ) -> Option<(MappedArray<A, D>, Hit)> {
        let store = self.memory().inner.store.as_ref()?;
        let Ok(Lookup::Found(entry)) = store.get(name, key, false) else {
            return None;
        };
        if !self.usable(entry.meta()) {
            return None;
        }
        let path = entry.local_path()?;
        // SAFETY: the store publishes payload files by rename and never
        // modifies them in place (LAYOUT.md); a removed file stays mapped.
        match unsafe { jobcache_persist::map::<A, D>(path) } {
            Ok(mapped) => Some((mapped, Hit::of(entry.meta()))),
            Err(e) => {
                self.record(
                    Event::new(EventKind::Corrupt, name)
                        .args(key, "")
                        .message(format!("cannot map the stored array: {e}")),
                );
                None
            }
        }
    }
}
