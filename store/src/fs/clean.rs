//! Removal, leftovers under `tmp/`, quarantine and stale lock files
//! (`LAYOUT.md`, "Removal, eviction, cleaning").

use super::index::{self, Op, Record};
use super::layout::{ensure_dir, NS_DIR, TMP_DIR};
use super::read::open_ns;
use super::{io_err, is_hex_key, temp_name, FsStore, META_FILE};
use crate::beneath::{info_of, Dir, Info, Kind};
use crate::error::{Result, StoreError};
use crate::lock::{self, Try};
use crate::names::{encode_namespace, validate_key};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const CORRUPT: &str = "corrupt-";
/// Threads that delete entries moved away by one eviction.
const DELETERS: usize = 16;

/// An entry moved into `tmp/` by a removal, locked through `_dir` until it
/// is deleted.
#[must_use]
pub(super) struct Moved {
    tmp: Dir,
    name: String,
    _dir: Dir,
}

/// What must still be in place for a quarantine to go ahead, so that an
/// entry published meanwhile under the same key is left alone.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ident {
    /// The meta file that was read (device, inode).
    Meta(u64, u64),
    /// The entry directory that was seen.
    Dir(Info),
    /// Nothing to compare (a symlink in the way).
    Any,
}

/// Where a corrupt entry is, and the quarantine's byte cap.
#[derive(Debug)]
pub(super) struct Quarantine {
    pub(super) root: Arc<Dir>,
    pub(super) enc: String,
    pub(super) key: String,
    pub(super) max: u64,
}

/// `corrupt-<nanoseconds, 20 digits>-<pid>-…`: sorting the names sorts
/// the quarantine oldest first.
fn corrupt_name() -> String {
    let nanos = crate::meta::to_nanos(SystemTime::now());
    format!("{CORRUPT}{nanos:020}-{}", temp_name("q"))
}

/// When a quarantined entry was quarantined (from its name).
fn quarantined_at(name: &str) -> Option<SystemTime> {
    let nanos: u64 = name.strip_prefix(CORRUPT)?.get(..20)?.parse().ok()?;
    Some(crate::meta::from_nanos(nanos))
}

/// Moves a corrupt entry out of the way (if it is still the one read):
/// into `tmp/corrupt-*` for inspection while the quarantine stays under its
/// cap, else it is removed. A symlink in the entry's place is unlinked.
pub(super) fn quarantine(q: &Quarantine, ident: Ident) {
    let root = &q.root;
    let Ok(ns) = root.open_dir(format!("{NS_DIR}/{}", q.enc)) else {
        return;
    };
    let key = q.key.as_str();
    let same = match ident {
        Ident::Meta(dev, ino) => ns
            .stat(format!("{key}/{META_FILE}"))
            .is_ok_and(|i| (i.dev, i.ino) == (dev, ino)),
        Ident::Dir(seen) => ns.stat(key).is_ok_and(|i| i.same(&seen)),
        Ident::Any => true,
    };
    if !same {
        return;
    }
    let moved = match ns.stat(key) {
        Ok(i) if i.kind != Kind::Dir => ns.unlink(key),
        Ok(_) => (|| {
            let tmp = root.open_dir(TMP_DIR)?;
            if ns.tree_bytes(key) > q.max {
                let del = temp_name("del");
                ns.rename(key, &tmp, &del)?;
                tmp.remove_tree(&del)
            } else {
                ns.rename(key, &tmp, corrupt_name())?;
                prune_quarantine(&tmp, q.max, None);
                Ok(())
            }
        })(),
        Err(_) => Ok(()),
    };
    if let Err(e) = moved {
        log::warn!("ns/{}/{key}: cannot quarantine corrupt entry: {e}", q.enc);
    }
}

/// Removes quarantined entries, oldest first, until they take at most
/// `max` bytes; also those quarantined longer than `max_age` ago. Returns
/// how many were removed.
fn prune_quarantine(tmp: &Dir, max: u64, max_age: Option<Duration>) -> usize {
    let Ok(list) = tmp.list() else {
        return 0;
    };
    let mut held: Vec<(String, u64)> = list
        .iter()
        .filter_map(|e| e.name_str().filter(|n| n.starts_with(CORRUPT)))
        .map(|n| (n.to_string(), tmp.tree_bytes(n)))
        .collect();
    held.sort();
    let mut total: u64 = held.iter().map(|(_, b)| b).sum();
    let now = SystemTime::now();
    let mut removed = 0;
    for (name, bytes) in held {
        let aged = max_age.is_some_and(|age| {
            let at = quarantined_at(&name)
                .or_else(|| tmp.stat(&name).ok().map(|i| i.mtime))
                .unwrap_or(SystemTime::UNIX_EPOCH);
            now.duration_since(at).unwrap_or_default() >= age
        });
        if total <= max && !aged {
            continue;
        }
        match tmp.remove_tree(&name) {
            Ok(()) => removed += 1,
            Err(e) => log::warn!("tmp/{name}: cannot remove quarantined entry: {e}"),
        }
        total = total.saturating_sub(bytes);
    }
    removed
}

/// Whether a leftover's owner is gone: its lock can be taken (then it is
/// held while the leftover is removed), or, where locks do not work, its
/// newest change is older than `max_age`.
enum Owner {
    Gone(Option<lock::Held>),
    Alive,
}

fn owner(tmp: &Dir, name: &str, kind: Kind, max_age: Duration) -> io::Result<Owner> {
    let file = match kind {
        Kind::Dir => tmp.open_dir(name).map(|d| d.into_file())?,
        Kind::File => tmp.open_file(name, false)?,
        // Nothing of the store's is a symlink: nobody owns it.
        Kind::Symlink | Kind::Other => return Ok(Owner::Gone(None)),
    };
    match lock::try_exclusive(&file)? {
        Try::Locked => {
            let held = lock::Held(file);
            let same = tmp
                .stat(name)
                .is_ok_and(|i| info_of(&held.0).is_ok_and(|h| h.same(&i)));
            Ok(if same {
                Owner::Gone(Some(held))
            } else {
                Owner::Alive
            })
        }
        Try::Busy => Ok(Owner::Alive),
        Try::Unsupported => {
            let newest = tmp.newest_mtime(name).unwrap_or(SystemTime::UNIX_EPOCH);
            let age = SystemTime::now().duration_since(newest).unwrap_or_default();
            Ok(if age >= max_age {
                Owner::Gone(None)
            } else {
                Owner::Alive
            })
        }
    }
}

impl FsStore {
    /// Removes the leftovers under `tmp/` whose owner is gone — crashed or
    /// killed publishes, removals and namespace creations, found by taking
    /// the lock their owner held — whatever their age; where the file system
    /// cannot lock, those older than `max_age`. Quarantined entries older
    /// than `max_age` go too, and the rest are kept under the quarantine
    /// cap. Returns how many were removed.
    pub fn clean_temp(&self, max_age: Duration) -> Result<usize> {
        let tmp_path = self.root.join(TMP_DIR);
        let Some(tmp) = self.tmp_dir()? else {
            return Ok(0);
        };
        let mut removed = 0;
        for e in tmp.list().map_err(io_err("list", &tmp_path))? {
            let Some(name) = e.name_str() else {
                let _ = tmp.remove_tree(&e.name);
                continue;
            };
            if name.starts_with(CORRUPT) {
                continue;
            }
            // One leftover that cannot be judged or removed (another
            // user's, say) must not stop the sweep: it is logged.
            let gone = match owner(&tmp, name, e.kind, max_age) {
                Ok(Owner::Gone(held)) => held,
                Ok(Owner::Alive) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    log::warn!(
                        "{}: cannot lock leftover: {e}",
                        tmp_path.join(name).display()
                    );
                    continue;
                }
            };
            match tmp.remove_tree(name) {
                Ok(()) => removed += 1,
                Err(e) => log::warn!(
                    "{}: cannot remove leftover: {e}",
                    tmp_path.join(name).display()
                ),
            }
            drop(gone);
        }
        removed += prune_quarantine(&tmp, self.quarantine_max, Some(max_age));
        Ok(removed)
    }

    /// Removes every quarantined entry: an explicit trim (`reduce_size`,
    /// `jobcache gc`) frees what damaged entries hold, since they are worth
    /// nothing to a computation. Returns how many were removed.
    pub(super) fn empty_quarantine(&self) -> Result<usize> {
        Ok(self
            .tmp_dir()?
            .map_or(0, |tmp| prune_quarantine(&tmp, 0, None)))
    }

    /// `tmp/` beneath the current root, if it is there (a symlink in its
    /// place is replaced by a directory).
    fn tmp_dir(&self) -> Result<Option<Dir>> {
        ensure_dir(&self.handle(), TMP_DIR, &self.root.join(TMP_DIR), true)
    }

    /// Moves the directory `name` (beneath `from`) into `tmp/del-*` and
    /// removes it there, holding its lock (so sweeps leave it to us, and
    /// remove it if we die). For a namespace (`wait`), the lock waits for
    /// publishers renaming into it (they hold it shared), so none lands in
    /// it once it is moved. Returns the bytes it held.
    fn remove_moved(
        &self,
        from: &Dir,
        name: &str,
        tmp: &Dir,
        shown: &Path,
        wait: bool,
    ) -> Result<u64> {
        for _ in 0..16 {
            let dir = match from.open_dir(name) {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(StoreError::io("remove", shown, e)),
            };
            let held = if wait {
                Some(lock::exclusive(dir.file()).map_err(io_err("lock", shown))?)
            } else {
                // An entry: its publisher may still hold it for a moment.
                let _ = lock::try_exclusive(dir.file());
                None
            };
            // Replaced while we waited: lock the new one.
            if !from
                .stat(name)
                .is_ok_and(|i| dir.fstat().is_ok_and(|d| d.same(&i)))
            {
                continue;
            }
            let del = temp_name("del");
            match from.rename(name, tmp, &del) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(StoreError::io("remove", shown, e)),
            }
            let bytes = tmp.tree_bytes(&del);
            tmp.remove_tree(&del)
                .map_err(io_err("remove", &self.root.join(TMP_DIR).join(&del)))?;
            drop(held);
            return Ok(bytes);
        }
        Err(StoreError::io(
            "remove",
            shown,
            io::Error::other("it keeps being replaced while it is removed"),
        ))
    }

    /// `ns/` and `tmp/` for a removal; `None` if the store is gone.
    fn dirs_for_removal(&self) -> Result<Option<(Dir, Dir)>> {
        let root = self.handle();
        let ns = ensure_dir(&root, NS_DIR, &self.root.join(NS_DIR), true)?;
        let tmp = ensure_dir(&root, TMP_DIR, &self.root.join(TMP_DIR), true)?;
        Ok(ns.zip(tmp))
    }

    pub(super) fn remove_entry(&self, namespace: &str, key: &str) -> Result<u64> {
        let mut freed = self.remove_entry_dir(namespace, key)?;
        if let Some(id) = index::id_of(namespace, key) {
            freed += self.remove_packed(&[id])?;
            self.index_append(&[Record::new(Op::Remove, id, 0, 0)]);
        }
        Ok(freed)
    }

    /// Moves an entry into `tmp/del-*` (readers then see it gone) and
    /// returns it, still locked, for [`FsStore::delete_moved`]; `None` if
    /// there was nothing to move (a planted non-directory is unlinked).
    pub(super) fn move_entry_away(&self, namespace: &str, key: &str) -> Result<Option<Moved>> {
        validate_key(key)?;
        let enc = encode_namespace(namespace)?;
        let Some((ns, tmp)) = self.dirs_for_removal()? else {
            return Ok(None);
        };
        let ns_path = self.root.join(NS_DIR).join(&enc);
        let Some(from) = open_ns(&ns, &enc, &ns_path)? else {
            return Ok(None);
        };
        let shown = ns_path.join(key);
        match from.stat(key) {
            Ok(i) if i.kind == Kind::Dir => {}
            Ok(_) => {
                return match from.unlink(key) {
                    Ok(()) => Ok(None),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(StoreError::io("remove", shown, e)),
                };
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("remove", shown, e)),
        }
        for _ in 0..16 {
            let dir = match from.open_dir(key) {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(StoreError::io("remove", shown, e)),
            };
            // Locked through this descriptor until it is closed, once
            // deleted: a sweep of `tmp/` leaves it alone meanwhile.
            let _ = lock::try_exclusive(dir.file());
            if !from
                .stat(key)
                .is_ok_and(|i| dir.fstat().is_ok_and(|d| d.same(&i)))
            {
                continue;
            }
            let del = temp_name("del");
            return match from.rename(key, &tmp, &del) {
                Ok(()) => Ok(Some(Moved {
                    tmp,
                    name: del,
                    _dir: dir,
                })),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(StoreError::io("remove", shown, e)),
            };
        }
        Err(StoreError::io(
            "remove",
            shown,
            io::Error::other("it keeps being replaced"),
        ))
    }

    /// Deletes entries moved away, on up to [`DELETERS`] threads (freeing a
    /// file's blocks waits on the device: deletions overlap well); returns
    /// the bytes freed. A failure is logged: the leftover is swept later.
    pub(super) fn delete_moved(&self, batch: Vec<Moved>) -> u64 {
        let delete = |m: Moved| -> u64 {
            let bytes = m.tmp.tree_bytes(&m.name);
            match m.tmp.remove_tree(&m.name) {
                Ok(()) => bytes,
                Err(e) if e.kind() == io::ErrorKind::NotFound => bytes,
                Err(e) => {
                    let path = self.root.join(TMP_DIR).join(&m.name);
                    log::warn!("{}: {e}", path.display());
                    0
                }
            }
        };
        if batch.len() <= 1 {
            return batch.into_iter().map(delete).sum();
        }
        let threads = batch.len().min(DELETERS);
        let queue = std::sync::Mutex::new(batch);
        let next = || match queue.lock() {
            Ok(mut q) => q.pop(),
            Err(poisoned) => poisoned.into_inner().pop(),
        };
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut freed = 0;
                        while let Some(m) = next() {
                            freed += delete(m);
                        }
                        freed
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
        })
    }

    fn remove_entry_dir(&self, namespace: &str, key: &str) -> Result<u64> {
        validate_key(key)?;
        let enc = encode_namespace(namespace)?;
        let Some((ns, tmp)) = self.dirs_for_removal()? else {
            return Ok(0);
        };
        let ns_path = self.root.join(NS_DIR).join(&enc);
        let Some(dir) = open_ns(&ns, &enc, &ns_path)? else {
            return Ok(0);
        };
        let path = ns_path.join(key);
        match dir.stat(key) {
            Ok(i) if i.kind == Kind::Dir => self.remove_moved(&dir, key, &tmp, &path, false),
            Ok(_) => {
                // A symlink or file planted as an entry: unlink the name.
                match dir.unlink(key) {
                    Ok(()) => Ok(0),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
                    Err(e) => Err(StoreError::io("remove", path, e)),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(StoreError::io("remove", path, e)),
        }
    }

    pub(super) fn remove_ns(&self, namespace: &str) -> Result<u64> {
        let enc = encode_namespace(namespace)?;
        let Some((ns, tmp)) = self.dirs_for_removal()? else {
            return Ok(0);
        };
        let path = self.root.join(NS_DIR).join(&enc);
        let packed = self.remove_packed_ns(&index::ns_id(namespace))?;
        if open_ns(&ns, &enc, &path)?.is_none() {
            return Ok(packed);
        }
        let freed = packed + self.remove_moved(&ns, &enc, &tmp, &path, true)?;
        let id = (index::ns_id(namespace), [0u8; 32]);
        self.index_append(&[Record::new(Op::RemoveNs, id, 0, 0)]);
        // Leftovers of publishers and removers killed meanwhile.
        self.clean_temp(self.temp_max_age)?;
        Ok(freed)
    }

    /// Removes lock files of absent entries that nobody holds; returns how
    /// many. Safe while others lock (see `LAYOUT.md`, "Locks").
    pub fn clean_locks(&self) -> Result<usize> {
        let Some(ns) = self.ns_dir()? else {
            return Ok(0);
        };
        let nsroot = self.root.join(NS_DIR);
        let mut removed = 0;
        for e in ns.list().map_err(io_err("list", &nsroot))? {
            let Some(enc) = e.name_str().filter(|_| e.kind == Kind::Dir) else {
                continue;
            };
            let Ok(dir) = ns.open_dir(enc) else {
                continue;
            };
            for l in dir.list().unwrap_or_default() {
                let Some(name) = l.name_str() else { continue };
                let Some(key) = name.strip_suffix(".lock").filter(|k| is_hex_key(k)) else {
                    continue;
                };
                if dir.stat(key).is_ok() {
                    continue;
                }
                let path = nsroot.join(enc).join(name);
                let file = match dir.open_file(name, false) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) if super::is_not_followed(&e) => {
                        // A planted symlink: nobody's lock.
                        let _ = dir.unlink(name);
                        continue;
                    }
                    Err(e) => return Err(StoreError::io("remove lock", path, e)),
                };
                let linked = |f: &std::fs::File| lock_linked(&dir, name, f);
                let remove = || dir.unlink(name);
                if lock::remove_if_free(file, &linked, &remove)
                    .map_err(io_err("remove lock", &path))?
                {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// Whether `name` beneath `dir` still names the file `f` is open on.
pub(super) fn lock_linked(dir: &Dir, name: &str, f: &std::fs::File) -> io::Result<bool> {
    let held = info_of(f)?;
    match dir.stat(name) {
        Ok(i) => Ok(i.same(&held)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
