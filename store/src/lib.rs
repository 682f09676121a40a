//! Storage for jobcache: the [`Store`] trait, the narrow seam through which
//! memoization reaches its cache, and [`FsStore`], a crash-safe, concurrent
//! store on a local directory.
//!
//! A store holds *entries* addressed by a namespace (a function path such as
//! `my_crate::stats::square`) and a key (a digest as 64 lowercase hex
//! characters). An entry is an immutable payload plus [`EntryMeta`]: when it
//! was created and last used, the payload's length and XXH3-64 checksum, how
//! long the computation took, and free-form fields. The store knows bytes,
//! not values.
//!
//! - [`Store::get`] returns a [`Lookup`]: [`Lookup::Found`] with an [`Entry`]
//!   (a reader, plus [`Entry::local_path`]/[`Entry::file`] so a payload can be
//!   memory-mapped), [`Lookup::Missing`], or [`Lookup::Corrupt`] for a torn or
//!   damaged entry, which is quarantined and never handed out as data.
//! - [`Store::lock`] takes a per-entry compute lock ([`EntryLock`], waiting as
//!   [`Wait`] says) so concurrent callers compute once; on [`FsStore`], one
//!   byte of the shared file `index/locks` locked with `F_OFD_SETLK`
//!   (nothing made or unlinked per lock, released by the kernel when its
//!   holder dies), a lock file per entry where the kernel refuses that.
//! - [`Store::publish`] writes the payload through a writer and makes the
//!   entry appear atomically; on [`FsStore`], without `fsync` unless
//!   [`Durability::Synced`] is chosen (an entry torn by a power loss is
//!   then caught by its checksums on read, a miss, never a value).
//! - Those and listing and removal are the primitives a backend supplies:
//!   seven required methods. Policy over them lives in [`policy`]:
//!   [`StoreExt::verify_all`] and [`StoreExt::reduce_size`] (least recently
//!   used first) serve the command-line tool, with [`StoreExt::clear`],
//!   [`StoreExt::get_bytes`], [`StoreExt::publish_bytes`] and
//!   [`StoreExt::get_or_compute`]; every store has them, and a backend
//!   improves a step only through a narrow hook of the trait
//!   ([`Store::check_entry`], [`Store::evict`], [`Store::tidy`]).
//!   [`Store::apply_limits`] applies a size policy after a publish; on
//!   [`FsStore`] an index of the entries (`index/ledger`) keeps running byte
//!   and item counts and the access order, so it costs O(1) within the
//!   limits and reads no meta file to choose what to evict. An entry is
//!   protected from eviction only while in use: its lock held by a live
//!   process, or its payload open by a live reader ([`SkipReason`]).
//! - Small entries are packed by default ([`FsStore::with_packs`]):
//!   appended as checksummed records to one of 256 shared pack files instead
//!   of a directory each (a few hundred bytes of disk: its record and no
//!   inode per small entry); every handle reads, lists, evicts and compacts
//!   them. [`FsStore::locate`] says where an entry lives ([`Location`]: its
//!   pack record or its directory), [`FsStore::pack_damage`] lists damaged
//!   records and torn tails ([`PackDamage`]). A repeated packed hit makes no
//!   system call and no read (one `fstat` per clock tick checks that the
//!   root is still there): writers bump a per-pack counter in the shared
//!   page `packs/generations`, and a reader whose counter has not moved
//!   serves the record it already checked.
//!
//! The on-disk layout is specified in `LAYOUT.md`.
//!
//! ```
//! use jobcache_store::{FsStore, Lookup, NewEntry, Store, StoreExt, Wait};
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), jobcache_store::StoreError> {
//! let dir = tempfile::tempdir().map_err(|e| jobcache_store::StoreError::Io {
//! #     op: "tempdir", path: ".".into(), source: e })?;
//! let store = FsStore::create(dir.path().join("cache"))?;
//! let key = "5e".repeat(32);
//! let ns = "my_crate::stats::square";
//! assert!(matches!(store.get(ns, &key, true)?, Lookup::Missing));
//!
//! let guard = store.lock(ns, &key, Wait::Timeout(Duration::from_secs(10)))?;
//! if guard.is_acquired() {
//!     let entry = NewEntry::new(Duration::from_millis(3)).field("function", ns);
//!     store.publish_bytes(ns, &key, &entry, b"the value")?;
//! }
//! drop(guard);
//!
//! let mut found = store.get(ns, &key, true)?.found().expect("published");
//! assert_eq!(found.read_to_vec()?, b"the value");
//! assert_eq!(found.meta().fields["function"], ns);
//! # Ok(()) }
//! ```
//!
//! # Limitations
//!
//! - A damaged pack record is skipped by every scan: its entry is a miss
//!   (computed again), not listed, and reported by [`FsStore::pack_damage`]
//!   rather than as a corrupt entry. A process whose map of a pack was made
//!   before the damage reads the record through its map and catches the
//!   damage by the meta file's checksums, except damage confined to the
//!   record's own checksum (the value returned is still right).
//! - Linux only (it relies on `flock`, on `openat2` where the kernel has it
//!   and a per-component `O_NOFOLLOW` walk where it does not, and on
//!   `futimens`). Namespace directory names are case-sensitive: a
//!   case-insensitive file system could merge namespaces differing in case.
//! - Network file systems: locks may be unavailable or advisory only across
//!   hosts ([`LockState::Unavailable`]); the publish protocol still keeps the
//!   store correct (entries appear whole or not at all), but two hosts may
//!   compute the same entry, leftovers of dead writers are then removed by
//!   age ([`TEMP_MAX_AGE`]) instead of at once, and a publish racing a
//!   namespace removal may be lost with the namespace. Rename atomicity and
//!   `fsync` semantics are those of the file system.
//! - Clocks: creation and access times come from the writers' and readers'
//!   clocks; skewed clocks across hosts skew eviction order. Access times are coarse (updated at
//!   most once per [`ACCESS_GRANULARITY`] per entry).
//! - Shared folders: nothing beneath the root is followed if it is a
//!   symlink, so no store operation reads, writes or deletes anything
//!   outside the root; symlinks planted in the layout are removed (as names)
//!   and the layout made again. [`FsStore`] maps one file,
//!   `packs/generations`, and installs a `SIGBUS` handler (chained to any
//!   earlier one) so that a co-user truncating it cannot crash a reader;
//!   garbled counters there delay a removal by at most one second and never
//!   make a lookup return another entry's bytes. The root path itself is resolved normally
//!   (it may be a symlink), when opened and again when a deleted root is
//!   made again. Still, whoever can write the folder can delete or damage
//!   entries (damage is detected: checksums, lengths) and fill the disk: the
//!   store is not a security boundary against a hostile local user.
//! - Temporary directories are locked by their owners; processes of
//!   versions before those locks can lose a publish to a sweep of this
//!   version (it fails cleanly). Quarantined corrupt entries are kept only
//!   up to [`QUARANTINE_MAX`] bytes (configurable).
//! - Payload checksums are XXH3-64: they detect accidental damage, not
//!   deliberate tampering.
#![deny(missing_docs)]

mod api;
mod beneath;
pub mod checksum;
mod error;
mod fs;
mod lock;
mod meta;
mod names;
pub mod policy;

pub use api::{
    Corruption, Entry, EntryInfo, EntryLock, Limits, LockState, Lookup, Payload, Published,
    Reduction, SkipReason, Skipped, Store, Verdict, VerifyReport, Wait, Walk, WriteFn,
};
pub use error::{Result, StoreError};
pub use fs::{
    Durability, FsStore, Location, PackDamage, ACCESS_GRANULARITY, LAYOUT_VERSION, QUARANTINE_MAX,
    TEMP_MAX_AGE, VERSION_FILE,
};
pub use meta::{EntryMeta, NewEntry, FIELDS_MAX, INLINE_MAX};
pub use names::{
    decode_namespace, encode_namespace, validate_key, DecodedNamespace, KEY_LEN, NAMESPACE_MAX,
};
pub use policy::{Computed, StoreExt};
