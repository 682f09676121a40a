//! Creating and opening a store: the layout files and directories at the
//! root, the names a store's directory may hold, and healing the layout
//! when it vanishes under a live handle (`LAYOUT.md`, "Tree", "Concurrent
//! creation", "Self-healing").

use super::packed::PACKS_DIR;
use super::{io_err, is_not_followed, temp_name, FsStore};
use crate::beneath::{info_of, Dir, Kind};
use crate::error::{clip, Result, StoreError};
use crate::lock::{self, Try};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How long a root found live is taken as live by lookups that miss
/// (`LAYOUT.md`, "Self-healing").
const ROOT_RECHECK_NANOS: u64 = 10_000_000;

/// Layout version written in [`VERSION_FILE`]. Version 2 adds the index
/// (`index/`); a version-1 store is upgraded in place when opened (its
/// entries are unchanged; the index is built from them once).
pub const LAYOUT_VERSION: u32 = 3;
/// The earlier layouts this version upgrades (`LAYOUT.md`, "Versions").
const UPGRADES_FROM: [u32; 2] = [1, 2];
/// The file at the root that marks a store and names its layout version.
pub const VERSION_FILE: &str = "jobcache-store-layout";
const VERSION_PREFIX: &str = "jobcache-store layout ";
pub(super) const NS_DIR: &str = "ns";
pub(super) const TMP_DIR: &str = "tmp";
pub(super) const INDEX_DIR: &str = "index";
const TAG_FILE: &str = "CACHEDIR.TAG";
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by jobcache.\n\
# For information about cache directory tags, see https://bford.info/cachedir/\n";
const GITIGNORE_FILE: &str = ".gitignore";
/// Keeps the cache out of version control (joblib writes the same).
const GITIGNORE: &str = "*\n";
/// The run journal jobcache keeps next to the store.
const JOURNAL: &str = "journal.jsonl";

/// Whether `name` is one the product writes at a store's root, so that
/// concurrent creators never take each other's files for foreign ones.
fn is_reserved(name: &str) -> bool {
    [VERSION_FILE, TAG_FILE, GITIGNORE_FILE, NS_DIR, TMP_DIR, INDEX_DIR, super::packed::PACKS_DIR, JOURNAL].contains(&name)
        // Journal rotation and its lock: journal.jsonl.1, journal.jsonl.lock, …
        || name.strip_prefix(JOURNAL).is_some_and(|rest| rest.starts_with('.'))
        // Temporary layout files of earlier versions.
        || name.starts_with(".init-")
}

/// What the version file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    /// A valid layout line of this version.
    Current,
    /// A valid layout line of the version this one upgrades.
    Older,
    /// No version file.
    Missing,
}

/// Reads the version file. A symlink or special file there is removed
/// (never followed, never read) and counts as missing.
fn read_version(dir: &Dir, root: &Path) -> Result<Version> {
    let path = root.join(VERSION_FILE);
    let file = match dir.open_file(VERSION_FILE, false) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Version::Missing),
        Err(e) if is_not_followed(&e) => {
            remove_in_the_way(dir, VERSION_FILE, &path, "its layout file")?;
            return Ok(Version::Missing);
        }
        Err(e) => return Err(StoreError::io("read", path, e)),
    };
    // A FIFO, socket or device node in its place (opened without blocking)
    // is in the way, as a symlink is.
    if info_of(&file).is_ok_and(|i| i.kind == Kind::Other) {
        drop(file);
        remove_in_the_way(dir, VERSION_FILE, &path, "its layout file")?;
        return Ok(Version::Missing);
    }
    let mut bytes = Vec::new();
    let bad = |found: String| StoreError::BadLayoutFile {
        path: path.clone(),
        found,
    };
    match file.take(256).read_to_end(&mut bytes) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::EISDIR) => return Err(bad("a directory".into())),
        Err(e) => return Err(StoreError::io("read", &path, e)),
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Err(bad("bytes that are not text".into()));
    };
    let found = text.trim();
    if found.is_empty() {
        return Err(bad("an empty file".into()));
    }
    let Some(number) = found.strip_prefix(VERSION_PREFIX) else {
        return Err(bad(format!(
            "{:?}, expected {VERSION_PREFIX:?} and a number",
            clip(found)
        )));
    };
    match number.parse::<u32>() {
        Ok(LAYOUT_VERSION) => Ok(Version::Current),
        Ok(n) if UPGRADES_FROM.contains(&n) => Ok(Version::Older),
        _ => Err(StoreError::UnsupportedVersion {
            path,
            expected: LAYOUT_VERSION,
            found: clip(found),
        }),
    }
}

/// Unlinks what sits at `name` instead of a directory or file of the
/// layout (a symlink is removed as a name: its target is not touched), with
/// one warning; fails naming the path and the fix if it cannot.
pub(super) fn remove_in_the_way(
    dir: &Dir,
    name: &str,
    path: &Path,
    expected: &'static str,
) -> Result<()> {
    let found = match dir.stat(name) {
        Ok(i) => match i.kind {
            Kind::Symlink => "a symlink",
            Kind::File if i.nlink > 1 => "a file with other names (a hard link)",
            Kind::File => "a file",
            Kind::Dir => "a directory",
            Kind::Other => "a special file",
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io("inspect", path, e)),
    };
    let removed = if found == "a directory" {
        dir.remove_tree(name)
    } else {
        dir.unlink(name)
    };
    match removed {
        Ok(()) => {
            log::warn!(
                "{}: found {found} where the store keeps {expected}; removed it (symlinks inside the store are never followed; a target is left untouched)",
                path.display()
            );
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::InTheWay {
            path: path.to_path_buf(),
            found: found.into(),
            expected,
            source,
        }),
    }
}

/// Opens the layout directory `name` beneath `parent`, making it if it is
/// missing and replacing a symlink or file in its place. `None` when
/// `parent` itself is gone (deleted under a live handle).
pub(super) fn ensure_dir(
    parent: &Dir,
    name: &str,
    path: &Path,
    warn_if_made: bool,
) -> Result<Option<Dir>> {
    for _ in 0..8 {
        match parent.open_dir(name) {
            Ok(d) => return Ok(Some(d)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match parent.mkdir(name) {
                Ok(()) if warn_if_made => log::warn!(
                    "{}: the directory was deleted while the store was in use; made it again",
                    path.display()
                ),
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(StoreError::io("create directory", path, e)),
            },
            Err(e) if is_not_followed(&e) => {
                remove_in_the_way(parent, name, path, "a directory")?;
            }
            Err(e) => return Err(StoreError::io("open directory", path, e)),
        }
    }
    Err(StoreError::io(
        "open directory",
        path,
        io::Error::other("it keeps being replaced while the store opens it"),
    ))
}

/// Writes `root/name` through a temporary file under `tmp/` and a rename
/// (which replaces a symlink there as a name, never its target). The
/// temporary file is locked while written, so sweeps leave it alone.
fn write_atomic(root_dir: &Dir, tmp: &Dir, root: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let target = root.join(name);
    for _ in 0..16 {
        let temp = temp_name("init");
        let r = (|| -> io::Result<bool> {
            let mut f = tmp.create_file(&temp)?;
            let locked = lock::try_exclusive(&f)?;
            let linked = tmp
                .stat(&temp)
                .is_ok_and(|i| info_of(&f).is_ok_and(|h| h.same(&i)));
            if locked == Try::Busy || !linked {
                // A sweep took it before the lock: try another name.
                return Ok(false);
            }
            f.write_all(bytes)?;
            f.sync_all()?;
            tmp.rename(&temp, root_dir, name)?;
            Ok(true)
        })();
        match r {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => {
                let _ = tmp.unlink(&temp);
                if e.kind() != io::ErrorKind::NotFound {
                    return Err(StoreError::io("write", target, e));
                }
            }
        }
    }
    Err(StoreError::io(
        "write",
        target,
        io::Error::other("every temporary file was taken by a concurrent sweep"),
    ))
}

/// Makes every directory and file of the layout that is missing, the
/// version file last. `None` when the root itself is gone.
fn write_layout(dir: &Dir, root: &Path) -> Result<Option<()>> {
    if ensure_dir(dir, NS_DIR, &root.join(NS_DIR), false)?.is_none() {
        return Ok(None);
    }
    let Some(tmp) = ensure_dir(dir, TMP_DIR, &root.join(TMP_DIR), false)? else {
        return Ok(None);
    };
    // Made with the store, so that the first packed publish does not take
    // it for a directory deleted under a live store.
    if ensure_dir(dir, PACKS_DIR, &root.join(PACKS_DIR), false)?.is_none() {
        return Ok(None);
    }
    write_atomic(dir, &tmp, root, TAG_FILE, CACHEDIR_TAG.as_bytes())?;
    if matches!(dir.stat(GITIGNORE_FILE), Err(e) if e.kind() == io::ErrorKind::NotFound) {
        write_atomic(dir, &tmp, root, GITIGNORE_FILE, GITIGNORE.as_bytes())?;
    }
    let text = format!("{VERSION_PREFIX}{LAYOUT_VERSION}\n");
    write_atomic(dir, &tmp, root, VERSION_FILE, text.as_bytes())?;
    dir.sync().map_err(io_err("sync directory", root))?;
    Ok(Some(()))
}

/// Makes `dir` a store unless it holds a name the product does not write.
/// The version file is read again before refusing: a concurrent creator
/// may have finished (and its journal appeared) since the first check.
/// `between` runs after the first check (tests use it to interleave).
fn make_store(dir: &Dir, root: &Path, between: &dyn Fn()) -> Result<()> {
    match read_version(dir, root)? {
        Version::Current => return Ok(()),
        Version::Older => return upgrade(dir, root),
        Version::Missing => {}
    }
    between();
    let list = dir.list().map_err(io_err("list store directory", root))?;
    // Dot-files (`.keep`, a `.gitignore`) are not user data: adopt them.
    let adoptable = |e: &crate::beneath::Listed| {
        e.name_str()
            .is_some_and(|n| is_reserved(n) || (n.starts_with('.') && e.kind == Kind::File))
    };
    let foreign = list.iter().find(|e| !adoptable(e));
    if let Some(e) = foreign {
        if read_version(dir, root)? == Version::Current {
            return Ok(());
        }
        return Err(StoreError::NotAStore {
            path: root.to_path_buf(),
            reason: format!(
                "the directory is not empty (it holds {:?}) and has no {VERSION_FILE} file",
                e.name
            ),
        });
    }
    write_layout_here(dir, root, "create store")
}

/// [`write_layout`], failing with `op` if the root is gone.
fn write_layout_here(dir: &Dir, root: &Path, op: &'static str) -> Result<()> {
    match write_layout(dir, root)? {
        Some(()) => Ok(()),
        None => Err(StoreError::io(
            op,
            root,
            io::Error::from(io::ErrorKind::NotFound),
        )),
    }
}

/// Upgrades a version-1 store: its entries are kept as they are; the
/// layout file says version 2 from now on (so processes of the earlier
/// version, which would not keep the index, refuse it with a clear
/// message), and the index is built from the entries when the store is
/// opened.
fn upgrade(dir: &Dir, root: &Path) -> Result<()> {
    log::info!(
        "{}: upgrading the store layout to version {LAYOUT_VERSION} (the entries stay; an index of them is built once if missing)",
        root.display()
    );
    write_layout_here(dir, root, "upgrade store")
}

fn open_root(root: &Path) -> Result<Dir> {
    Dir::open_path(root).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOTDIR) => StoreError::NotAStore {
            path: root.to_path_buf(),
            reason: "it is not a directory".into(),
        },
        _ => StoreError::io("open store directory", root, e),
    })
}

impl FsStore {
    /// Creates a store at `root` (and the directory, if needed), or opens the
    /// store already there. Refuses a non-empty directory that is not a
    /// store; any number of processes may create the same store at once.
    pub fn create(root: impl AsRef<Path>) -> Result<FsStore> {
        FsStore::create_with(root.as_ref(), &|| {})
    }

    fn create_with(root: &Path, between: &dyn Fn()) -> Result<FsStore> {
        std::fs::create_dir_all(root).map_err(io_err("create store directory", root))?;
        let dir = open_root(root)?;
        make_store(&dir, root, between)?;
        FsStore::finish_open(root, dir)
    }

    /// Opens an existing store; refuses a directory that is not one.
    pub fn open(root: impl AsRef<Path>) -> Result<FsStore> {
        let root = root.as_ref();
        let dir = open_root(root)?;
        let version = read_version(&dir, root)?;
        if version == Version::Older {
            upgrade(&dir, root)?;
        }
        if version == Version::Missing {
            // A version file replaced by a symlink was removed above; a
            // store that has its namespaces directory gets it back.
            let store_like = dir.stat(NS_DIR).is_ok_and(|i| i.kind == Kind::Dir);
            if !store_like {
                return Err(StoreError::NotAStore {
                    path: root.to_path_buf(),
                    reason: format!("it has no {VERSION_FILE} file"),
                });
            }
            make_store(&dir, root, &|| {})?;
        }
        FsStore::finish_open(root, dir)
    }

    fn finish_open(root: &Path, dir: Dir) -> Result<FsStore> {
        for name in [NS_DIR, TMP_DIR] {
            ensure_dir(&dir, name, &root.join(name), false)?;
        }
        let store = FsStore::with_root(root, dir);
        // A store this process cannot write (read-only, another user's)
        // is still readable: the index is built by the next writer.
        if let Err(e) = store.ensure_index() {
            log::warn!("{e}");
        }
        Ok(store)
    }

    /// The root handle after checking that it still is a directory in the
    /// tree (not deleted meanwhile); heals the store if it is not.
    pub(super) fn live_root(&self) -> Result<Arc<Dir>> {
        let dir = self.handle();
        if self.is_live(&dir) {
            self.note_live();
            return Ok(dir);
        }
        self.heal()
    }

    /// Notes that the current root handle was found live now.
    fn note_live(&self) {
        let now = super::generations::coarse_tick();
        self.root_live_at.store(now.max(1), Ordering::Relaxed);
    }

    /// Whether `dir` still is the directory the root path names. A link
    /// count above zero is not enough: a root renamed away (as `rm -rf`
    /// tools and users moving a cache do) stays linked elsewhere, and
    /// writing on through the old handle would fill a directory nobody
    /// looks in.
    fn is_live(&self, dir: &Dir) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (dir.fstat(), std::fs::metadata(&self.root)) {
            (Ok(held), Ok(named)) => {
                held.nlink > 0 && held.dev == named.dev() && held.ino == named.ino()
            }
            _ => false,
        }
    }

    /// The root, `ns/` and `tmp/` for a write, each made again if it was
    /// deleted under this handle (with one warning).
    pub(super) fn layout(&self) -> Result<(Arc<Dir>, Dir, Dir)> {
        let mut root = self.live_root()?;
        for attempt in 0..2 {
            let version_gone = matches!(root.stat(VERSION_FILE),
                Err(e) if e.kind() == io::ErrorKind::NotFound);
            if attempt > 0 || version_gone {
                root = self.heal()?;
            }
            let ns = ensure_dir(&root, NS_DIR, &self.root.join(NS_DIR), true)?;
            let tmp = ensure_dir(&root, TMP_DIR, &self.root.join(TMP_DIR), true)?;
            if let (Some(ns), Some(tmp)) = (ns, tmp) {
                return Ok((root, ns, tmp));
            }
        }
        Err(StoreError::io(
            "open store directory",
            &self.root,
            io::Error::other("its layout keeps vanishing"),
        ))
    }

    /// Makes the root and its layout again (the root path resolved anew,
    /// normally), and takes the new root handle. Refuses a directory that
    /// has become something else meanwhile.
    fn heal(&self) -> Result<Arc<Dir>> {
        let root = &self.root;
        std::fs::create_dir_all(root).map_err(io_err("create store directory", root))?;
        let dir = open_root(root)?;
        make_store(&dir, root, &|| {})?;
        log::warn!(
            "{}: the store's directory or its layout file was deleted while in use; made them again",
            root.display()
        );
        Ok(self.set_handle(dir))
    }

    /// After a miss: if the root handle was deleted or moved and the path names a
    /// store again (made by another process), take the new one.
    pub(super) fn refresh_root(&self, seen: &Dir) -> Option<Arc<Dir>> {
        // Found live a moment ago (the lookups of one miss, a run of
        // misses): a root replaced by another process meanwhile costs at
        // most a miss more, and the next publish checks it anyway.
        let at = self.root_live_at.load(Ordering::Relaxed);
        let now = super::generations::coarse_tick();
        let current = std::ptr::eq(seen, &*self.handle());
        if current && at != 0 && now.saturating_sub(at) < ROOT_RECHECK_NANOS {
            return None;
        }
        if self.is_live(seen) {
            if current {
                self.note_live();
            }
            return None;
        }
        let dir = Dir::open_path(&self.root).ok()?;
        (read_version(&dir, &self.root).ok()? == Version::Current).then(|| self.set_handle(dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names() {
        for n in [
            "ns",
            "tmp",
            "CACHEDIR.TAG",
            ".gitignore",
            VERSION_FILE,
            "journal.jsonl",
            "journal.jsonl.1",
            "journal.jsonl.lock",
        ] {
            assert!(is_reserved(n), "{n}");
        }
        for n in ["journal.jsonlx", "notes.txt", "ns2", "NS"] {
            assert!(!is_reserved(n), "{n}");
        }
    }

    /// Another creator finishes (and a file that is not the product's
    /// appears) between our first look at the version file and our listing.
    #[test]
    fn a_store_finished_by_another_creator_meanwhile_is_accepted() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cache");
        let other = root.clone();
        let store = FsStore::create_with(&root, &|| {
            FsStore::create(&other).unwrap();
            std::fs::write(other.join("results.csv"), b"a user's file").unwrap();
        })
        .unwrap();
        assert!(store.root().join(VERSION_FILE).is_file());
    }
}
