//! Array results as memory-mapped, zero-copy views.

use crate::cached::{Called, Protocol};
use crate::codec;
use crate::memory::Mapping;
use crate::{Cached, Callable};
use jobcache_persist::{Element, MappedArray};
use jobcache_store::Entry;
use ndarray::{Array, ArrayView, Dimension};
use serde::de::DeserializeOwned;
use serde::Serialize;

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
    /// [`mmap(true)`](crate::MemoryBuilder::mmap), else in memory, as
    /// [`Cached::call`] returns it.
    ///
    /// A mapped hit is verified before the view is returned: the file's
    /// header, metadata and table when it is mapped, then the checksum of
    /// every array block, read over the mapping (no copy of the array). A
    /// corrupt entry is logged and journaled as in [`Cached::call`], removed,
    /// and computed again. With
    /// [`mmap_unchecked(true)`](crate::MemoryBuilder::mmap_unchecked) the
    /// array data is not read: a hit costs a few small reads whatever the
    /// array's size, and damage inside the array data is not detected.
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
        if inner.mapping == Mapping::Off || inner.store.is_none() {
            return ArrayOutput::Owned(self.call(args));
        }
        let Ok(keyed) = self.keyed(&args) else {
            return ArrayOutput::Owned(self.call(args));
        };
        let name = self.name::<Args, M>();
        let load = |entry: Entry| self.load_mapped::<A, D>(entry);
        // A result just stored is mapped (reloaded), so the computed
        // array's memory is given back.
        let called = self.call_keyed(name, &keyed, args, Protocol::Reload, &load, |f, args| {
            Ok::<_, std::convert::Infallible>(f.call_with(args))
        });
        match called {
            Ok(Called::Hit(output)) => output,
            Ok(Called::Computed(value, _)) => ArrayOutput::Owned(value),
            Err(never) => match never {},
        }
    }

    /// A stored array as a hit returns it (see [`map_entry`]), its
    /// captured output replayed.
    fn load_mapped<A, D>(&self, entry: Entry) -> Result<ArrayOutput<A, D>, String>
    where
        A: Element + DeserializeOwned + 'static,
        D: Dimension + DeserializeOwned + 'static,
    {
        self.replay(&entry);
        map_entry(entry, self.memory().inner.mapping != Mapping::Unchecked)
    }
}

/// A stored array: mapped (and, with `verify`, every array block's checksum
/// checked over the map) when it has a payload file of its own, else
/// decoded from the metadata file that holds it. An `Err` names the damage.
pub(crate) fn map_entry<A, D>(entry: Entry, verify: bool) -> Result<ArrayOutput<A, D>, String>
where
    A: Element + DeserializeOwned + 'static,
    D: Dimension + DeserializeOwned + 'static,
{
    let Some(path) = entry.local_path() else {
        return codec::decode::<Array<A, D>>(entry)
            .map(ArrayOutput::Owned)
            .map_err(|e| e.to_string());
    };
    // The file the store opened (beneath its root, without following
    // symlinks) is the one mapped: its name may point elsewhere by now.
    let mapped = match entry.file() {
        // SAFETY: the store publishes payload files by rename and never
        // modifies them in place (LAYOUT.md); a removed file stays mapped.
        Some(file) => unsafe { jobcache_persist::map_file::<A, D>(file, path) },
        // SAFETY: as above.
        None => unsafe { jobcache_persist::map::<A, D>(path) },
    };
    let mapped = match mapped {
        Ok(mapped) => mapped,
        // A compressed entry (MemoryBuilder::compress) cannot be viewed in
        // place: it is loaded, owned and fully checked, instead.
        Err(jobcache_persist::Error::Unmappable { .. }) => {
            return codec::decode::<Array<A, D>>(entry)
                .map(ArrayOutput::Owned)
                .map_err(|e| e.to_string());
        }
        Err(e) => return Err(format!("cannot map the stored array: {e}")),
    };
    if verify {
        // Reads the array once over the map; nothing is copied out.
        mapped.mapped().verify_arrays().map_err(|e| e.to_string())?;
    }
    Ok(ArrayOutput::Mapped(mapped))
}
