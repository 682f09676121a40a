//! The payload writer and the publish protocol (`LAYOUT.md`, "Publish"),
//! namespace creation, and entry locks.

use super::clean::lock_linked;
use super::index::{self, Op, Record};
use super::layout::{remove_in_the_way, NS_DIR, TMP_DIR};
use super::packed::PACK_META_MAX;
use super::read::open_ns;
use super::{
    entry_rel, guard, io_err, is_exists, is_not_followed, temp_name, Durability, FsStore,
    META_FILE, PAYLOAD_FILE,
};
use crate::api::{EntryLock, Published, Wait, WriteFn};
use crate::beneath::Dir;
use crate::checksum::Xxh3;
use crate::error::{Result, StoreError};
use crate::lock::{self, Try};
use crate::meta::{self, NewEntry, FIELDS_MAX, INLINE_MAX};
use crate::names::{encode_namespace, validate_key};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

const NAME_FILE: &str = "name";
/// Tries of the final rename while removals keep deleting the namespace
/// directory right before it.
const RENAME_TRIES: usize = 64;
const CHUNK: usize = 1 << 20;
/// Writes from this size on are hashed on a second thread.
const PARALLEL_HASH_MIN: usize = 8 << 20;

/// A directory under `tmp/` that this process made and holds locked while
/// it works in it, so sweeps know its owner is alive (`LAYOUT.md`,
/// "Temporary files").
#[must_use]
struct Claimed {
    name: String,
    dir: Dir,
    locked: bool,
}

impl Drop for Claimed {
    fn drop(&mut self) {
        if self.locked {
            lock::unlock(self.dir.file());
        }
    }
}

/// Makes `tmp/<what>-…` and locks it. A sweep may take the directory
/// between the `mkdir` and the lock (it looked ownerless): then the lock
/// fails, or the name no longer names it, and another name is tried.
fn claim(tmp: &Dir, what: &str, tmp_path: &Path) -> Result<Claimed> {
    for _ in 0..16 {
        let name = temp_name(what);
        let path = tmp_path.join(&name);
        tmp.mkdir(&name)
            .map_err(io_err("create temporary directory", &path))?;
        let dir = match tmp.open_dir(&name) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io("open temporary directory", path, e)),
        };
        match lock::try_exclusive(dir.file()).map_err(io_err("lock", &path))? {
            Try::Locked => {
                let linked = tmp
                    .stat(&name)
                    .is_ok_and(|i| dir.fstat().is_ok_and(|d| d.same(&i)));
                if linked {
                    return Ok(Claimed {
                        name,
                        dir,
                        locked: true,
                    });
                }
                lock::unlock(dir.file());
            }
            Try::Busy => {}
            Try::Unsupported => {
                return Ok(Claimed {
                    name,
                    dir,
                    locked: false,
                })
            }
        }
    }
    Err(StoreError::io(
        "create temporary directory",
        tmp_path,
        io::Error::other("every new directory was taken by a concurrent sweep"),
    ))
}

/// A held entry lock. On release its lock file is unlinked while still
/// locked, if the name still names it, so lock files cost no inode once
/// their computation is done (`LAYOUT.md`, "Locks"); a process waiting on
/// it finds it unlinked after its `flock` and starts over on a fresh file.
struct LockFile {
    held: lock::Held,
    root: Arc<Dir>,
    rel: String,
}

impl Drop for LockFile {
    fn drop(&mut self) {
        if lock_linked(&self.root, &self.rel, &self.held.0).unwrap_or(false) {
            let _ = self.root.unlink(&self.rel);
        }
        // `held` unlocks when dropped, after this.
    }
}

/// Whether `dir` still is `ns/<enc>` (not moved away by a removal).
fn is_live(ns: &Dir, enc: &str, dir: &Dir) -> bool {
    ns.stat(enc)
        .is_ok_and(|i| dir.fstat().is_ok_and(|d| d.same(&i)))
}

/// The handles a write into a namespace needs.
struct Place {
    ns: Dir,
    tmp: Dir,
    ns_dir: Dir,
}

impl FsStore {
    /// Whether an entry directory of `key` exists (written by layout 2, or
    /// while packing was off): then it is the entry, and a packed publish
    /// adds nothing. Checked beneath the live root (checked as every write
    /// checks it) with one `openat2` of `ns/<enc>/<key>`, unless a lookup
    /// of this handle found none in the current tick of the coarse clock
    /// (a directory made meanwhile by another process only means the entry
    /// is stored twice, both whole); the namespace directory, which lists
    /// the namespace, is made first if this handle has not seen it in the
    /// current tick.
    fn key_dir_exists(&self, namespace: &str, enc: &str, key: &str) -> Result<bool> {
        let root = match self.packed_root()? {
            Some(root)
                if self
                    .ns_this_tick(&root, enc, |ns| ns.is_some())
                    .unwrap_or(false) =>
            {
                root
            }
            _ => self.place(namespace, enc)?.0,
        };
        let rel = entry_rel(enc, key);
        if self.dir_missing.is_noted(&rel) {
            // The lookup that missed just before this publish (the second
            // lookup of a call, under its compute lock) found none.
            return Ok(false);
        }
        match root.open_dir(&rel) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            // Something not a directory, or a symlink, at the key's name:
            // not an entry; the packed record is.
            Err(e) if is_not_followed(&e) || e.raw_os_error() == Some(libc::ENOTDIR) => Ok(false),
            Err(e) => Err(StoreError::io(
                "open",
                self.root.join(NS_DIR).join(enc).join(key),
                e,
            )),
        }
    }

    /// The live root with its layout file, for a packed publish; `None` if
    /// the layout file is missing. The full check (the handle's `fstat`,
    /// the root path's `stat`, the layout file's `stat` beneath the handle)
    /// is paid once: after it, one `stat` of `<root path>/<layout file>`
    /// that finds the very file seen through the handle (same device and
    /// inode) shows at once that the path still names the handle's
    /// directory (not deleted, not moved away, not replaced) and that the
    /// layout file is in place. Anything else takes the full check, which
    /// heals.
    fn packed_root(&self) -> Result<Option<Arc<Dir>>> {
        use std::os::unix::fs::MetadataExt;
        let seen = guard(&self.version_seen).clone();
        if let Some((dir, dev, ino)) = seen {
            let current = Arc::ptr_eq(&dir, &self.handle());
            if current
                && std::fs::symlink_metadata(&self.version_path)
                    .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
            {
                return Ok(Some(dir));
            }
        }
        let root = self.live_root()?;
        let Ok(version) = root.stat(super::layout::VERSION_FILE) else {
            return Ok(None);
        };
        *guard(&self.version_seen) = Some((Arc::clone(&root), version.dev, version.ino));
        Ok(Some(root))
    }
}

/// The writer a publish hands to the caller: keeps small payloads in
/// memory (to be stored inline), spills larger ones to the payload file,
/// and hashes everything on the way.
struct PayloadWriter<'a> {
    store: &'a FsStore,
    /// `tmp/`, opened when the payload spills (a packed entry needs none).
    tmp: Option<Dir>,
    tmp_path: PathBuf,
    what: String,
    /// The temporary entry directory, claimed when the payload spills.
    temp: Option<Claimed>,
    path: PathBuf,
    buf: Vec<u8>,
    file: Option<File>,
    hasher: Xxh3,
    len: u64,
    failed: Option<io::Error>,
}

impl PayloadWriter<'_> {
    fn fail(&mut self, e: io::Error) -> io::Error {
        let copy = match e.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(e.kind(), e.to_string()),
        };
        self.failed = Some(e);
        copy
    }

    /// Claims the temporary entry directory, opening `tmp/` first if this
    /// publish has not.
    fn claim_temp(&mut self) -> Result<Claimed> {
        let tmp = match self.tmp.take() {
            Some(tmp) => tmp,
            None => self.store.layout()?.2,
        };
        claim(self.tmp.insert(tmp), &self.what, &self.tmp_path)
    }

    fn spill(&mut self) -> io::Result<()> {
        if self.temp.is_none() {
            let claimed = self.claim_temp();
            let temp = claimed.map_err(|e| self.fail(io::Error::other(e.to_string())))?;
            self.path = self.tmp_path.join(&temp.name).join(PAYLOAD_FILE);
            self.temp = Some(temp);
        }
        let created = match &self.temp {
            Some(t) => t.dir.create_file(PAYLOAD_FILE),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        };
        let mut f = created.map_err(|e| self.fail(e))?;
        f.write_all(&self.buf).map_err(|e| self.fail(e))?;
        self.buf = Vec::new();
        self.file = Some(f);
        Ok(())
    }
}

impl Write for PayloadWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.file.is_none() && self.buf.len() + data.len() <= INLINE_MAX {
            self.buf.extend_from_slice(data);
            self.hasher.update(data);
            self.len += data.len() as u64;
            return Ok(data.len());
        }
        if self.file.is_none() {
            self.spill()?;
        }
        if data.len() >= PARALLEL_HASH_MIN {
            // Hash on a second thread while this one writes the same bytes.
            let (hasher, file) = (&mut self.hasher, &mut self.file);
            let r = std::thread::scope(|scope| {
                let h = scope.spawn(move || hasher.update(data));
                let r = match file.as_mut() {
                    Some(f) => f.write_all(data),
                    None => Ok(()),
                };
                h.join()
                    .map_err(|_| io::Error::other("the checksum thread panicked"))
                    .and(r)
            });
            r.map_err(|e| self.fail(e))?;
            self.len += data.len() as u64;
            return Ok(data.len());
        }
        for chunk in data.chunks(CHUNK) {
            self.hasher.update(chunk);
            let r = match self.file.as_mut() {
                Some(f) => f.write_all(chunk),
                None => Ok(()),
            };
            r.map_err(|e| self.fail(e))?;
            self.len += chunk.len() as u64;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl FsStore {
    /// Opens `ns/<enc>`, creating it atomically (with its `name` file) if
    /// missing: made under `tmp/`, then renamed into place.
    fn ensure_ns(&self, ns: &Dir, tmp: &Dir, namespace: &str, enc: &str) -> Result<Dir> {
        let path = self.root.join(NS_DIR).join(enc);
        let tmp_path = self.root.join(TMP_DIR);
        for _ in 0..64 {
            if let Some(d) = open_ns(ns, enc, &path)? {
                return Ok(d);
            }
            let temp = claim(tmp, "ns", &tmp_path)?;
            let name_path = tmp_path.join(&temp.name).join(NAME_FILE);
            let mut f = temp
                .dir
                .create_file(NAME_FILE)
                .map_err(io_err("create", &name_path))?;
            f.write_all(namespace.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(io_err("write", &name_path))?;
            temp.dir
                .sync()
                .map_err(io_err("sync directory", &tmp_path.join(&temp.name)))?;
            let renamed = tmp.rename(&temp.name, ns, enc);
            match renamed {
                Ok(()) => {
                    ns.sync()
                        .map_err(io_err("sync directory", &self.root.join(NS_DIR)))?;
                    // The directory just made is the namespace's, even if a
                    // removal takes it again at once (publish checks).
                    return temp.dir.try_clone().map_err(io_err("open", &path));
                }
                // Another creator won the race: use theirs.
                Err(e) if is_exists(&e) => {}
                Err(e) => {
                    let _ = tmp.remove_tree(&temp.name);
                    return Err(StoreError::io("create namespace directory", path, e));
                }
            }
            let _ = tmp.remove_tree(&temp.name);
        }
        Err(StoreError::io(
            "create namespace directory",
            path,
            io::Error::other("it keeps being removed while it is made"),
        ))
    }

    /// The layout and the namespace directory for a write, made again if
    /// they were deleted (once more if they vanish while this runs).
    fn place(&self, namespace: &str, enc: &str) -> Result<(Arc<Dir>, Place)> {
        let mut last = None;
        for _ in 0..2 {
            let (root, ns, tmp) = self.layout()?;
            match self.ensure_ns(&ns, &tmp, namespace, enc) {
                Ok(ns_dir) => return Ok((root, Place { ns, tmp, ns_dir })),
                Err(e) if e.io_kind() == Some(io::ErrorKind::NotFound) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            StoreError::io("open", &self.root, io::Error::from(io::ErrorKind::NotFound))
        }))
    }

    pub(super) fn publish_entry(
        &self,
        namespace: &str,
        key: &str,
        entry: &NewEntry,
        write: WriteFn<'_>,
    ) -> Result<Published> {
        validate_key(key)?;
        let enc = encode_namespace(namespace)?;
        let flen = meta::fields_len(&entry.fields);
        if flen > FIELDS_MAX {
            return Err(StoreError::MetadataTooLarge {
                namespace: namespace.to_string(),
                key: key.to_string(),
                found: flen,
                max: FIELDS_MAX,
            });
        }
        self.sweep_once();
        let tmp_path = self.root.join(TMP_DIR);
        let mut w = PayloadWriter {
            store: self,
            tmp: None,
            tmp_path: tmp_path.clone(),
            what: format!("pub-{key}"),
            temp: None,
            path: tmp_path,
            buf: Vec::new(),
            file: None,
            hasher: Xxh3::new(),
            len: 0,
            failed: None,
        };
        let written = write(&mut w);
        let result = self.publish_in(namespace, &enc, key, entry, written, &mut w);
        if let (Some(temp), Some(tmp)) = (&w.temp, &w.tmp) {
            if result.is_err() || result.as_ref().is_ok_and(|p| p.already_present) {
                let _ = tmp.remove_tree(&temp.name);
            }
        }
        result
    }

    fn publish_in(
        &self,
        namespace: &str,
        enc: &str,
        key: &str,
        entry: &NewEntry,
        written: io::Result<()>,
        w: &mut PayloadWriter<'_>,
    ) -> Result<Published> {
        let created = SystemTime::now();
        if let Some(e) = w.failed.take() {
            return Err(StoreError::io("write payload", &w.path, e));
        }
        if let Err(source) = written {
            return Err(StoreError::writer(namespace, key, source));
        }
        let checksum = w.hasher.digest();
        let spilled = w.file.is_some();
        let synced = self.durability == Durability::Synced;
        if let Some(f) = w.file.take() {
            if synced {
                f.sync_data().map_err(io_err("sync payload", &w.path))?;
            }
        }
        let inline = (!spilled).then_some(w.buf.as_slice());
        let bytes = meta::encode(entry, created, w.len, checksum, inline);
        let mut decoded = meta::decode(&bytes)
            .map_err(|r| StoreError::io("encode metadata", self.root(), io::Error::other(r)))?
            .meta;
        decoded.last_access = created;
        let done = |already_present| {
            Ok(Published {
                meta: decoded.clone(),
                already_present,
            })
        };
        if !spilled && self.pack_small && bytes.len() <= PACK_META_MAX {
            if let Some(id) = index::id_of(namespace, key) {
                let present = self.key_dir_exists(namespace, enc, key)?
                    || self.publish_packed(id, &bytes, meta::to_nanos(created))?;
                return done(present);
            }
        }
        let (_root, place) = self.place(namespace, enc)?;
        let tmp = match &w.tmp {
            Some(tmp) => tmp,
            None => &*w.tmp.insert(place.tmp),
        };
        let temp = match &mut w.temp {
            Some(temp) => &*temp,
            slot @ None => &*slot.insert(claim(tmp, &w.what, &w.tmp_path)?),
        };
        let tmp_dir_path = w.tmp_path.join(&temp.name);
        let meta_path = tmp_dir_path.join(META_FILE);
        let mut f = temp
            .dir
            .create_file(META_FILE)
            .map_err(io_err("create metadata", &meta_path))?;
        f.write_all(&bytes)
            .and_then(|()| if synced { f.sync_data() } else { Ok(()) })
            .map_err(io_err("write metadata", &meta_path))?;
        drop(f);
        if synced {
            temp.dir
                .sync()
                .map_err(io_err("sync directory", &tmp_dir_path))?;
        }
        let target = self.entry_dir(namespace, key)?;
        let mut ns_dir = place.ns_dir.try_clone().map_err(io_err("open", &target))?;
        let parent = target.parent().unwrap_or(&target).to_path_buf();
        for attempt in 0..RENAME_TRIES {
            // A removal holds the namespace directory exclusively while it
            // moves it away: holding it shared, a live directory stays live
            // until the entry is in.
            let held = lock::shared(ns_dir.file()).map_err(io_err("lock", &parent))?;
            if !is_live(&place.ns, enc, &ns_dir) {
                drop(held);
                ns_dir = self.ensure_ns(&place.ns, tmp, namespace, enc)?;
                continue;
            }
            match tmp.rename(&temp.name, &ns_dir, key) {
                Ok(()) => {}
                Err(e) if is_exists(&e) => return done(true),
                // Deleted meanwhile where locks do not work: try again.
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt + 1 < RENAME_TRIES => {
                    continue
                }
                Err(e) => return Err(StoreError::io("publish entry", target, e)),
            }
            drop(held);
            if synced {
                ns_dir.sync().map_err(io_err("sync directory", &parent))?;
            }
            if let Some(id) = index::id_of(namespace, key) {
                let stored = bytes.len() as u64 + if spilled { w.len } else { 0 };
                let time = meta::to_nanos(created);
                self.index_append(&[Record::new(Op::Add, id, stored, time)]);
            }
            return done(false);
        }
        Err(StoreError::io(
            "publish entry",
            target,
            io::Error::other("the namespace directory keeps vanishing"),
        ))
    }

    pub(super) fn lock_entry(&self, namespace: &str, key: &str, wait: Wait) -> Result<EntryLock> {
        validate_key(key)?;
        let enc = encode_namespace(namespace)?;
        // A byte of `index/locks` where the kernel allows it (`LAYOUT.md`,
        // "Locks"); a lock file of its own otherwise.
        if let Some(id) = super::index::id_of(namespace, key) {
            let start = std::time::Instant::now();
            if let Some(got) = self.ofd.lock(self, &id, wait) {
                let got = got.map_err(|e| {
                    StoreError::io("lock", self.root.join(super::layout::INDEX_DIR), e)
                })?;
                return Ok(got.into_entry_lock(start.elapsed()));
            }
        }
        let name = format!("{key}.lock");
        let rel = format!("{NS_DIR}/{enc}/{name}");
        let shown = self.root.join(&rel);
        let as_io = |e: StoreError| io::Error::other(e.to_string());
        let open = || -> io::Result<File> {
            for _ in 0..4 {
                match self.handle().open_or_create_file(&rel) {
                    Ok(f) => return Ok(f),
                    Err(e)
                        if e.kind() == io::ErrorKind::NotFound
                            || is_not_followed(&e)
                            || e.raw_os_error() == Some(libc::EISDIR) =>
                    {
                        // Made again if missing; what sits in the way of
                        // ns/, the namespace or the lock file is removed.
                        let (_, place) = self.place(namespace, &enc).map_err(as_io)?;
                        if e.kind() != io::ErrorKind::NotFound {
                            remove_in_the_way(&place.ns_dir, &name, &shown, "a lock file")
                                .map_err(as_io)?;
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(io::Error::other("the lock file keeps vanishing"))
        };
        let linked = |f: &File| lock_linked(&self.handle(), &rel, f);
        let keep = |f: File| -> Box<dyn std::any::Any + Send + Sync> {
            Box::new(LockFile {
                held: lock::Held(f),
                root: self.handle(),
                rel: rel.clone(),
            })
        };
        lock::acquire(&shown, wait, &open, &linked, &keep)
            .map_err(|e| StoreError::io("lock", shown.clone(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_directory_is_locked_and_a_sweep_leaves_it() {
        let t = tempfile::tempdir().unwrap();
        let tmp = Dir::open_path(t.path()).unwrap();
        let claimed = claim(&tmp, "pub-x", t.path()).unwrap();
        let other = tmp.open_dir(&claimed.name).unwrap();
        assert_eq!(lock::try_exclusive(other.file()).unwrap(), Try::Busy);
        drop(claimed);
        assert_eq!(lock::try_exclusive(other.file()).unwrap(), Try::Locked);
    }
}
