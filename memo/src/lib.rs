//! `Memory` and the memoizing wrapper: transparent disk caching of Rust
//! function calls, as joblib's `Memory.cache`.
//!
//! A [`Memory`] is a cache directory. [`Memory::cache`] wraps a function;
//! [`Cached::call`] returns its result from the cache when the same function
//! (same name, same version) was called with the same arguments before, and
//! otherwise runs it and stores what it returns:
//!
//! ```
//! use jobcache_memo::{memoize, Ignored, Memory};
//!
//! memoize! {
//!     /// Editing this body changes its cache key: old results are not reused.
//!     fn total(values: &[f64], verbose: Ignored<bool>) -> f64 {
//!         values.iter().sum()
//!     }
//! }
//!
//! # fn main() -> Result<(), jobcache_memo::Error> {
//! # let dir = tempfile::tempdir().map_err(|_| jobcache_memo::Error::Disabled)?;
//! let mem = Memory::builder(dir.path()).verbose(0).build()?;
//! let total = mem.cache(total);
//! let values = [1.0, 2.0, 3.0];
//! assert_eq!(total.call((&values[..], Ignored(true))), 6.0);  // computed, stored
//! assert_eq!(total.call((&values[..], Ignored(false))), 6.0); // loaded
//! # Ok(())
//! # }
//! ```
//!
//! - **Keys**: the SHA-256 of the function's name (its path, or the name
//!   given to [`Memory::cache_named`]), its version (the source tokens from
//!   [`memoize!`], and/or [`Cached::version`]), its type name, and the
//!   digest of each argument (jobcache-hash's canonical encoding; each
//!   argument is hashed once, and its digest is kept for [`why`]).
//!   [`Ignored`] arguments are left out. A function of several arguments
//!   takes them as a tuple.
//! - **Values**: any `Serialize + DeserializeOwned` type, stored with
//!   jobcache-persist: arrays inside are raw segments, and a plain array
//!   result loads straight into place; [`Cached::call_mapped`] views it in
//!   the cache file instead, with [`MemoryBuilder::mmap`].
//! - **Every hit is checked**: the store checks its metadata, persist the
//!   file's header, metadata and table, and the array checksums, as the
//!   array is read (copy mode) or over the mapping (mmap, no copy).
//!   [`MemoryBuilder::mmap_unchecked`] is the one opt-out: O(1) mapped
//!   hits that do not read the array data, so do not detect damage in it.
//! - **Failures never reach the computation**: a storage error or a corrupt
//!   entry is logged (target `jobcache`) and the function runs. A panic
//!   propagates and caches nothing; [`Cached::try_call`] caches `Ok` only.
//! - **Compute once**: threads and processes calling the same function
//!   with the same arguments at once wait for one of them (a per-entry lock
//!   in the store) and then read its result.
//! - **Refresh**: [`Cached::refresh`] runs the function whatever the cache
//!   holds and stores its result in place of the old one (joblib's
//!   `MemorizedFunc.call`).
//! - **Async functions**: [`Cached::call_async`] and
//!   [`Cached::try_call_async`], on any executor, computing once across
//!   tasks and processes (see there for large results and
//!   `spawn_blocking`).
//! - **Why a call missed**: a miss logs (debug level) what differs from the
//!   nearest cached call — "argument 2 (`scale`) changed; code unchanged",
//!   "version 3 → 4" — and [`Cached::why`] and `jobcache why FUNCTION` say
//!   the same ([`why`]).
//! - **Code a function calls**: the opt-in [`fingerprint`] of the crate's
//!   sources, as a version, invalidates on any edit of the crate.
//! - **joblib parity**: [`Cached::call_and_shelve`] ([`Shelved`] handles),
//!   [`Cached::check_call_in_cache`], [`Cached::clear`], [`Memory::clear`],
//!   [`Memory::reduce_size`], [`Cached::expires_after`],
//!   [`Cached::validate`], verbosity levels, and a run journal
//!   (`journal.jsonl` in the cache directory, one event per call; hits written in batches).
//! - **Lazy pipelines**: a [`Shelved`] handle passed to another cached
//!   function is hashed as the handle, so an unchanged pipeline loads
//!   nothing but its last step's result, and a changed step recomputes only
//!   the steps downstream of it. The handle is hashed as (function, key)
//!   only, never its location, so keys are the same wherever the cache is.
//! - **A shared remote cache** (feature `remote`): `MemoryBuilder::remote`
//!   (`s3://bucket/prefix`, through `jobcache-object-store`) shares results
//!   between machines, the cache directory serving as the local tier.
//!
//! # Limitations
//!
//! - Only the function's own source is hashed ([`memoize!`]): a change in a
//!   function it calls is not seen. Bump [`Cached::version`] for those, or
//!   give it the crate's [`fingerprint`] (any edit of the crate then
//!   invalidates it).
//! - Closures and function pointers have no unique name: give them one with
//!   [`Memory::cache_named`] ([`Memory::cache`] panics on them, when it is
//!   called). Two different closures given one name never share results
//!   (their type names are part of the key; on one `Memory` the second is
//!   warned of and kept apart), but an edited closure under its old name
//!   is not seen: bump its version.
//! - Keys depend on the serde form of the arguments: a `HashSet` argument
//!   can hash differently from one process to the next (use `BTreeSet`).
//! - Computing once relies on `flock`; where it is unavailable (some network
//!   file systems) two processes may both compute, and the cache stays
//!   correct.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod async_call;
mod cached;
mod callable;
mod codec;
mod error;
pub mod fingerprint;
mod identity;
mod ignored;
mod mapped;
mod memory;
mod output;
mod shelved;
pub mod why;

pub use cached::{fields, Cached, Validator};
pub use callable::Callable;
pub use error::Error;
pub use identity::Identity;

/// What [`memoize!`] expands to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::identity::SourceRecord;
    pub use inventory;
}
pub use ignored::Ignored;
pub use mapped::ArrayOutput;
pub use memory::{Memory, MemoryBuilder, JOURNAL_FILE};
pub use shelved::Shelved;

pub use jobcache_store::{Durability, EntryMeta, Limits, Reduction, Store, StoreExt, Wait};
