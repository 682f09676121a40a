//! `FsStore`: the store on a local directory (`LAYOUT.md`).
//!
//! - `layout`: creating and opening a store, its layout files and
//!   directories, and healing them when they vanish under a live handle.
//! - `read`: lookups and listing.
//! - `publish`: the payload writer and the publish protocol.
//! - `clean`: removal, temporary leftovers, quarantine, stale lock files.
//! - `index`: the ledger of entries' sizes and access order (`index/`).
//! - `evict`: least-recently-used eviction from the index.
//! - `pack`, `packed`: small entries as records of shared pack files.
//! - `location`: where an entry lives, and damage in packs, for tools.
//!
//! Every path beneath the root goes through [`crate::beneath`].

mod clean;
mod evict;
mod generations;
mod index;
mod layout;
mod location;
mod ofd;
mod pack;
mod packed;
mod publish;
mod read;

use crate::api::{
    EntryInfo, EntryLock, Limits, Lookup, Published, Reduction, Store, Verdict, Wait, Walk, WriteFn,
};
use crate::beneath::Dir;
use crate::error::{Result, StoreError};
use crate::meta::{self, NewEntry};
use crate::names::{encode_namespace, validate_key, KEY_LEN};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

pub use layout::{LAYOUT_VERSION, VERSION_FILE};
pub use location::{Location, PackDamage};

/// Default interval below which a hit does not update the access time.
pub const ACCESS_GRANULARITY: Duration = Duration::from_secs(60);
/// Default age after which a leftover temporary directory is removed where
/// locks cannot tell whether its owner is alive, and after which a
/// quarantined entry is removed.
pub const TEMP_MAX_AGE: Duration = Duration::from_secs(3600);
/// Default cap on the bytes kept in quarantine (`tmp/corrupt-*`).
pub const QUARANTINE_MAX: u64 = 64 << 20;

const META_FILE: &str = "meta";
const PAYLOAD_FILE: &str = "payload";

/// How hard a publish works to make an entry survive a power loss
/// (`LAYOUT.md`, "Durability"). Either way a reader sees a whole entry or
/// none while the machine runs, and every read checks lengths and checksums,
/// so an entry torn by a crash is a miss (and recomputed), never wrong data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// No `fsync` on the publish path: the payload and meta files are
    /// written, and the entry appears by one atomic rename. After a power
    /// loss or kernel crash, entries published in the last seconds may be
    /// absent or torn (detected on read: a miss plus a warning). A process
    /// crash loses nothing that was published. The default: a cache entry
    /// can always be computed again, and `fsync` costs most of a small miss.
    #[default]
    Checksummed,
    /// `fdatasync` the payload and meta files and `fsync` the temporary
    /// directory before the rename, and the namespace directory after it:
    /// an entry whose publish returned survives a power loss on file systems
    /// that honour `fsync` (ext4, xfs, btrfs). For results too costly to
    /// compute again.
    Synced,
}

/// The store on a local directory: see the crate docs and `LAYOUT.md`.
#[derive(Debug)]
pub struct FsStore {
    root: PathBuf,
    /// The root, opened once by normal resolution; replaced when the
    /// directory is found deleted (`LAYOUT.md`, "Self-healing").
    root_dir: RwLock<Arc<Dir>>,
    access_granularity: Duration,
    temp_max_age: Duration,
    quarantine_max: u64,
    recent: Duration,
    swept: AtomicBool,
    noatime: AtomicBool,
    walk: bool,
    durability: Durability,
    index: index::Index,
    /// Whether small entries are published into packs.
    pack_small: bool,
    packs: packed::Packs,
    /// Compute locks as byte-range locks of `index/locks`.
    ofd: ofd::OfdLocks,
    /// When the current root handle was last found live (coarse monotonic
    /// nanoseconds; 0: not since it was set).
    root_live_at: AtomicU64,
    /// The layout file as a packed publish last found it through the root
    /// handle: the handle, and the file's device and inode (see
    /// `FsStore::packed_root`).
    version_seen: std::sync::Mutex<Option<(Arc<Dir>, u64, u64)>>,
    /// `<root>/<layout file>`, the path that `packed_root` looks at.
    version_path: PathBuf,
    /// The entry directory a lookup last found missing, `ns/<enc>/<key>`
    /// (see `FsStore::key_dir_exists`).
    dir_missing: generations::NotedThisTick,
    /// The namespace directory this handle opened in the current tick:
    /// lookups read its link count, packed publishes its existence (see
    /// `FsStore::ns_this_tick`).
    ns_open: std::sync::Mutex<Option<read::NsOpen>>,
}

/// Locks `m`, going on with the data of a mutex that a panicking thread
/// left poisoned.
pub(super) fn guard<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |e| StoreError::io(op, path, e)
}

fn is_hex_key(name: &str) -> bool {
    name.len() == KEY_LEN && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_exists(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY))
}

/// A symlink or other non-directory in the way of a path, or a special
/// file that cannot be opened (`ENXIO`: a socket, a device without its
/// driver) where the layout puts a file.
fn is_not_followed(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ELOOP | libc::ENOTDIR | libc::EXDEV | libc::ENXIO)
    )
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name under `tmp/` that no other process or thread makes:
/// `<what>-<pid>-<counter>-<nanoseconds>`.
fn temp_name(what: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = meta::to_nanos(SystemTime::now()) % 1_000_000_000_000;
    format!("{what}-{}-{n}-{nanos}", std::process::id())
}

impl FsStore {
    fn with_root(root: &Path, dir: Dir) -> FsStore {
        FsStore {
            root: root.to_path_buf(),
            root_dir: RwLock::new(Arc::new(dir)),
            access_granularity: ACCESS_GRANULARITY,
            temp_max_age: TEMP_MAX_AGE,
            quarantine_max: QUARANTINE_MAX,
            recent: Duration::ZERO,
            swept: AtomicBool::new(false),
            noatime: AtomicBool::new(true),
            walk: false,
            durability: Durability::default(),
            index: index::Index::default(),
            pack_small: true,
            packs: packed::Packs::default(),
            ofd: ofd::OfdLocks::default(),
            root_live_at: AtomicU64::new(0),
            version_seen: std::sync::Mutex::new(None),
            version_path: root.join(layout::VERSION_FILE),
            dir_missing: Default::default(),
            ns_open: Default::default(),
        }
    }

    /// Sets how stale an access time must be before a hit updates it
    /// (default [`ACCESS_GRANULARITY`]; zero updates on every hit).
    pub fn with_access_granularity(mut self, granularity: Duration) -> Self {
        self.access_granularity = granularity;
        self
    }

    /// Sets the age after which quarantined entries are removed, and after
    /// which leftover temporary files are removed where the file system
    /// cannot lock (default [`TEMP_MAX_AGE`]). Where it can, leftovers of
    /// dead processes are removed at once whatever their age.
    pub fn with_temp_max_age(mut self, age: Duration) -> Self {
        self.temp_max_age = age;
        self
    }

    /// Sets how many bytes of corrupt entries are kept in quarantine for
    /// inspection (default [`QUARANTINE_MAX`]; the oldest go first, an entry
    /// larger than the cap is removed at once; zero keeps none).
    pub fn with_quarantine_max(mut self, bytes: u64) -> Self {
        self.quarantine_max = bytes;
        self
    }

    /// Sets a grace window: entries published or used more recently than
    /// this are kept by [`StoreExt::reduce_size`](crate::StoreExt::reduce_size) regardless of limits. None by
    /// default: an entry is protected by liveness alone (its lock held by a
    /// live process, or its payload open for reading), everything else over
    /// the limits goes at once.
    pub fn with_recent_protection(mut self, recent: Duration) -> Self {
        self.recent = recent;
        self
    }

    /// Sets how publishes trade speed for survival of a power loss (default
    /// [`Durability::Checksummed`]: no `fsync` on the publish path).
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Whether entries whose meta file (inline payload included) is at most
    /// 64 KiB are published as records of shared pack files (`LAYOUT.md`,
    /// "Packs"): a few hundred bytes of disk (its record) and no inode per
    /// small entry. On by default; `with_packs(false)` publishes every entry
    /// as a directory of its own (`ns/<namespace>/<key>/meta`), for tools
    /// that expect one. Lookups, listing and removal see packed entries
    /// either way; [`FsStore::locate`] says where an entry lives.
    pub fn with_packs(mut self, packs: bool) -> Self {
        self.pack_small = packs;
        self
    }

    /// How publishes are made durable ([`FsStore::with_durability`]).
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Resolves paths beneath the root by opening one component at a time
    /// with `O_NOFOLLOW`, as on kernels without `openat2`, even where the
    /// kernel has it (for tests of that path, and for file systems whose
    /// `openat2` misbehaves). Symlinks are refused either way.
    pub fn with_component_walk(mut self, walk: bool) -> Self {
        self.walk = walk;
        if let Ok(slot) = self.root_dir.get_mut() {
            if let Some(dir) = Arc::get_mut(slot) {
                dir.set_walk(walk);
            }
        }
        self
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory an entry lives in (whether or not it exists).
    pub fn entry_dir(&self, namespace: &str, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self
            .root
            .join(entry_rel(&encode_namespace(namespace)?, key)))
    }

    /// The current root handle (without checking that it is still linked).
    fn handle(&self) -> Arc<Dir> {
        match self.root_dir.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn set_handle(&self, mut dir: Dir) -> Arc<Dir> {
        dir.set_walk(self.walk);
        let dir = Arc::new(dir);
        self.root_live_at.store(0, Ordering::Relaxed);
        match self.root_dir.write() {
            Ok(mut g) => *g = Arc::clone(&dir),
            Err(poisoned) => *poisoned.into_inner() = Arc::clone(&dir),
        }
        dir
    }

    /// Opens a file beneath `dir` read-only with `O_NOATIME` where allowed,
    /// so that only the store decides the access times.
    fn open_noatime(&self, dir: &Dir, rel: &str) -> io::Result<File> {
        if self.noatime.load(Ordering::Relaxed) {
            match dir.open_file(rel, true) {
                // Not the owner: O_NOATIME is not allowed.
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                    self.noatime.store(false, Ordering::Relaxed);
                }
                r => return r,
            }
        }
        dir.open_file(rel, false)
    }

    /// Runs the temporary-file sweep once per handle, before its first
    /// publish.
    fn sweep_once(&self) {
        if !self.swept.swap(true, Ordering::Relaxed) {
            if let Err(e) = self.clean_temp(self.temp_max_age) {
                log::warn!("cleaning temporary files: {e}");
            }
        }
    }
}

/// `ns/<enc>/<key>`, relative to the root.
fn entry_rel(enc: &str, key: &str) -> String {
    format!("{}/{enc}/{key}", layout::NS_DIR)
}

impl Store for FsStore {
    fn get(&self, namespace: &str, key: &str, verify_payload: bool) -> Result<Lookup> {
        self.get_inner(namespace, key, verify_payload, true, true)
    }

    fn publish(
        &self,
        namespace: &str,
        key: &str,
        entry: &NewEntry,
        write: WriteFn<'_>,
    ) -> Result<Published> {
        self.publish_entry(namespace, key, entry, write)
    }

    fn lock(&self, namespace: &str, key: &str, wait: Wait) -> Result<EntryLock> {
        self.lock_entry(namespace, key, wait)
    }

    fn remove(&self, namespace: &str, key: &str) -> Result<u64> {
        self.remove_entry(namespace, key)
    }

    fn remove_namespace(&self, namespace: &str) -> Result<u64> {
        // The namespace directory goes: the next packed publish makes it
        // again, whatever this handle saw of it in the current tick.
        *guard(&self.ns_open) = None;
        self.remove_ns(namespace)
    }

    fn namespaces(&self) -> Result<Vec<String>> {
        self.list_namespaces()
    }

    fn entries(&self, namespace: &str) -> Result<Vec<EntryInfo>> {
        self.list_entries(namespace)
    }

    fn touch(&self, namespace: &str, key: &str) -> Result<()> {
        self.touch_entry(namespace, key)
    }

    fn check_entry(&self, info: &EntryInfo) -> Result<Verdict> {
        // Repairs what it finds, without recording an access.
        crate::policy::verdict_of(self.get_inner(&info.namespace, &info.key, true, false, true)?)
    }

    fn evict(&self, limits: &Limits, dry_run: bool) -> Result<Reduction> {
        // The walk over the index (`evict.rs`): no listing, no meta file
        // read to choose; within the limits it costs O(1), which
        // `apply_limits` after each publish relies on.
        FsStore::evict(self, limits, dry_run)
    }

    fn tidy(&self, after: Walk) -> Result<()> {
        self.clean_temp(self.temp_max_age)?;
        match after {
            Walk::Verify => {
                // Drops the records found corrupt from their packs.
                self.compact_packs(true)?;
                self.rebuild_index()
            }
            Walk::Reduce => {
                self.empty_quarantine()?;
                self.clean_locks()?;
                self.compact_packs(false).map(drop)
            }
        }
    }
}
