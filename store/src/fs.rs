//! `FsStore`: the store on a local directory (`LAYOUT.md`).

use crate::api::{
    reduce_with, verify_with, Entry, EntryInfo, EntryLock, Limits, Lookup, Payload, Published,
    Reduction, Store, Verdict, VerifyReport, Wait, WriteFn, RECENT,
};
use crate::checksum::Xxh3;
use crate::error::{Result, StoreError};
use crate::lock;
use crate::meta::{self, EntryMeta, NewEntry, FIELDS_MAX, INLINE_MAX, META_FILE_MAX};
use crate::names::{decode_namespace, encode_namespace, validate_key, DecodedNamespace, KEY_LEN};
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Layout version written in [`VERSION_FILE`].
pub const LAYOUT_VERSION: u32 = 1;
/// The file at the root that marks a store and names its layout version.
pub const VERSION_FILE: &str = "jobcache-store-layout";
const VERSION_PREFIX: &str = "jobcache-store layout ";
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by jobcache.\n\
# For information about cache directory tags, see https://bford.info/cachedir/\n";
const NS_DIR: &str = "ns";
const TMP_DIR: &str = "tmp";
const NAME_FILE: &str = "name";
const META_FILE: &str = "meta";
const PAYLOAD_FILE: &str = "payload";

/// Default interval below which a hit does not update the access time.
pub const ACCESS_GRANULARITY: Duration = Duration::from_secs(60);
/// Default age after which a leftover temporary directory is removed.
pub const TEMP_MAX_AGE: Duration = Duration::from_secs(3600);
/// Payloads up to this size are read and verified inside `get`.
const EAGER_VERIFY_MAX: u64 = 1 << 20;
const CHUNK: usize = 1 << 20;
/// Writes from this size on are hashed on a second thread.
const PARALLEL_HASH_MIN: usize = 8 << 20;

/// The store on a local directory: see the crate docs and `LAYOUT.md`.
#[derive(Debug)]
pub struct FsStore {
    root: PathBuf,
    root_dir: File,
    counter: AtomicU64,
    access_granularity: Duration,
    temp_max_age: Duration,
    recent: Duration,
    swept: AtomicBool,
    openat2: AtomicBool,
    noatime: AtomicBool,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |e| StoreError::io(op, path, e)
}

fn is_hex_key(name: &str) -> bool {
    name.len() == KEY_LEN && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Sizes of a directory's regular files and subdirectories, not following
/// symlinks.
fn tree_bytes(path: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(path) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let md = fs::symlink_metadata(path).ok()?;
    let mut newest = md.modified().ok()?;
    if md.is_dir() {
        for e in fs::read_dir(path).ok()?.flatten() {
            if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                newest = newest.max(t);
            }
        }
    }
    Some(newest)
}

impl FsStore {
    /// Creates a store at `root` (and the directory, if needed), or opens the
    /// store already there. Refuses a non-empty directory that is not a store.
    pub fn create(root: impl AsRef<Path>) -> Result<FsStore> {
        let root = root.as_ref();
        fs::create_dir_all(root).map_err(io_err("create store directory", root))?;
        let version = root.join(VERSION_FILE);
        if !version.exists() {
            let known = [VERSION_FILE, "CACHEDIR.TAG", NS_DIR, TMP_DIR];
            for e in fs::read_dir(root).map_err(io_err("list store directory", root))? {
                let e = e.map_err(io_err("list store directory", root))?;
                let name = e.file_name();
                let name = name.to_string_lossy();
                if !known.contains(&name.as_ref()) && !name.starts_with(".init-") {
                    return Err(StoreError::NotAStore {
                        path: root.to_path_buf(),
                        reason: format!(
                            "the directory is not empty (it holds {name:?}) and has no {VERSION_FILE} file"
                        ),
                    });
                }
            }
            for dir in [NS_DIR, TMP_DIR] {
                let p = root.join(dir);
                fs::create_dir_all(&p).map_err(io_err("create directory", &p))?;
            }
            write_atomic(root, "CACHEDIR.TAG", CACHEDIR_TAG.as_bytes())?;
            let text = format!("{VERSION_PREFIX}{LAYOUT_VERSION}\n");
            write_atomic(root, VERSION_FILE, text.as_bytes())?;
            sync_dir(root).map_err(io_err("sync directory", root))?;
        }
        FsStore::open(root)
    }

    /// Opens an existing store; refuses a directory that is not one.
    pub fn open(root: impl AsRef<Path>) -> Result<FsStore> {
        let root = root.as_ref();
        let md = fs::metadata(root).map_err(io_err("open store directory", root))?;
        if !md.is_dir() {
            return Err(StoreError::NotAStore {
                path: root.to_path_buf(),
                reason: "it is not a directory".into(),
            });
        }
        let vpath = root.join(VERSION_FILE);
        let text = match fs::File::open(&vpath) {
            Ok(f) => {
                let mut s = String::new();
                f.take(256)
                    .read_to_string(&mut s)
                    .map_err(io_err("read", &vpath))?;
                s
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotAStore {
                    path: root.to_path_buf(),
                    reason: format!("it has no {VERSION_FILE} file"),
                })
            }
            Err(e) => return Err(StoreError::io("read", vpath, e)),
        };
        let found = text.trim();
        let version = found
            .strip_prefix(VERSION_PREFIX)
            .and_then(|v| v.parse::<u32>().ok());
        if version != Some(LAYOUT_VERSION) {
            return Err(StoreError::UnsupportedVersion {
                path: vpath,
                expected: LAYOUT_VERSION,
                found: found.chars().take(100).collect(),
            });
        }
        for dir in [NS_DIR, TMP_DIR] {
            let p = root.join(dir);
            if !p.is_dir() {
                fs::create_dir_all(&p).map_err(io_err("create directory", &p))?;
            }
        }
        let root_dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(root)
            .map_err(io_err("open store directory", root))?;
        Ok(FsStore {
            root: root.to_path_buf(),
            root_dir,
            counter: AtomicU64::new(0),
            access_granularity: ACCESS_GRANULARITY,
            temp_max_age: TEMP_MAX_AGE,
            recent: RECENT,
            swept: AtomicBool::new(false),
            openat2: AtomicBool::new(true),
            noatime: AtomicBool::new(true),
        })
    }

    /// Sets how stale an access time must be before a hit updates it
    /// (default [`ACCESS_GRANULARITY`]; zero updates on every hit).
    pub fn with_access_granularity(mut self, granularity: Duration) -> Self {
        self.access_granularity = granularity;
        self
    }

    /// Sets the age after which leftover temporary files of crashed writers
    /// are removed (default [`TEMP_MAX_AGE`]). Must exceed the longest
    /// payload write.
    pub fn with_temp_max_age(mut self, age: Duration) -> Self {
        self.temp_max_age = age;
        self
    }

    /// Sets how recently published or used an entry must be for
    /// [`Store::reduce_size`] to keep it regardless of limits (default
    /// [`RECENT`]).
    pub fn with_recent_protection(mut self, recent: Duration) -> Self {
        self.recent = recent;
        self
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Checks one entry as [`Store::verify_all`] does — metadata, payload
    /// length and full payload checksum — without changing anything: a
    /// corrupt entry is reported, not quarantined, and its access time is
    /// not recorded. For tools that report before they repair
    /// (`jobcache verify` without `--fix`).
    pub fn check(&self, namespace: &str, key: &str) -> Result<Verdict> {
        match self.get_inner(namespace, key, true, false, false)? {
            Lookup::Found(mut entry) => match entry.verify() {
                Ok(()) => Ok(Verdict::Ok),
                Err(StoreError::Corrupt { reason, .. }) => Ok(Verdict::Corrupt(reason)),
                Err(e) => Err(e),
            },
            Lookup::Missing => Ok(Verdict::Missing),
            Lookup::Corrupt(c) => Ok(Verdict::Corrupt(c.reason)),
        }
    }

    /// The directory an entry lives in (whether or not it exists).
    pub fn entry_dir(&self, namespace: &str, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.ns_dir(&encode_namespace(namespace)?).join(key))
    }

    fn ns_dir(&self, enc: &str) -> PathBuf {
        self.root.join(NS_DIR).join(enc)
    }

    fn tmp_path(&self, what: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = meta::to_nanos(SystemTime::now()) % 1_000_000_000_000;
        self.root
            .join(TMP_DIR)
            .join(format!("{what}-{}-{n}-{nanos}", std::process::id()))
    }

    /// Opens `rel` (relative to the root) read-only, refusing symlinks
    /// anywhere on the way (`openat2` with `RESOLVE_BENEATH |
    /// RESOLVE_NO_SYMLINKS`; on kernels without it, `O_NOFOLLOW` on the last
    /// component), with `O_NOATIME` where allowed so that only the store
    /// decides the access times.
    fn open_beneath(&self, rel: &str) -> io::Result<File> {
        let noatime = if self.noatime.load(Ordering::Relaxed) {
            libc::O_NOATIME
        } else {
            0
        };
        if self.openat2.load(Ordering::Relaxed) {
            match openat2(&self.root_dir, rel, noatime) {
                Err(e) if e.raw_os_error() == Some(libc::EPERM) && noatime != 0 => {
                    // Not the owner: O_NOATIME is not allowed.
                    self.noatime.store(false, Ordering::Relaxed);
                    return self.open_beneath(rel);
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
                    self.openat2.store(false, Ordering::Relaxed);
                }
                r => return r,
            }
        }
        let open = |flags| {
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | flags)
                .open(self.root.join(rel))
        };
        match open(noatime) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && noatime != 0 => {
                self.noatime.store(false, Ordering::Relaxed);
                open(0)
            }
            r => r,
        }
    }

    /// Creates the namespace directory with its `name` file, atomically.
    fn ensure_ns(&self, namespace: &str, enc: &str) -> Result<PathBuf> {
        let dir = self.ns_dir(enc);
        match fs::symlink_metadata(&dir) {
            Ok(md) if md.is_dir() => return Ok(dir),
            Ok(_) => {
                return Err(StoreError::io(
                    "open namespace directory",
                    &dir,
                    io::Error::other("not a directory (symlinks are not followed)"),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("open namespace directory", dir, e)),
        }
        let tmp = self.tmp_path("ns");
        fs::create_dir(&tmp).map_err(io_err("create temporary directory", &tmp))?;
        let result = (|| {
            let name = tmp.join(NAME_FILE);
            let mut f = File::create(&name).map_err(io_err("create", &name))?;
            f.write_all(namespace.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(io_err("write", &name))?;
            sync_dir(&tmp).map_err(io_err("sync directory", &tmp))?;
            match fs::rename(&tmp, &dir) {
                Ok(()) => {
                    let parent = self.root.join(NS_DIR);
                    sync_dir(&parent).map_err(io_err("sync directory", &parent))
                }
                Err(e) if is_exists(&e) => Ok(()),
                Err(e) => Err(StoreError::io("create namespace directory", &dir, e)),
            }
        })();
        let _ = fs::remove_dir_all(&tmp);
        result.map(|()| dir)
    }

    /// Moves a corrupt entry out of the way (if it is still the one read),
    /// when repairing.
    fn quarantine_if(&self, repair: bool, entry_dir: &Path, meta_id: Option<(u64, u64)>) {
        if !repair {
            return;
        }
        let ident = meta_id.map_or(Ident::Any, |(dev, ino)| Ident::Meta(dev, ino));
        quarantine(entry_dir, &self.tmp_path("corrupt"), ident);
    }

    /// Looks an entry up. With `repair`, a corrupt entry found on the way
    /// (or later, while its payload is read) is quarantined; without, nothing
    /// in the store is changed.
    fn get_inner(
        &self,
        namespace: &str,
        key: &str,
        verify: bool,
        touch: bool,
        repair: bool,
    ) -> Result<Lookup> {
        validate_key(key)?;
        let enc = encode_namespace(namespace)?;
        let rel_dir = format!("{NS_DIR}/{enc}/{key}");
        let location = || self.root.join(&rel_dir);
        let corrupt = |reason: String| {
            Ok(Lookup::Corrupt(crate::api::Corruption {
                location: location().display().to_string(),
                reason,
            }))
        };
        let meta_file = match self.open_beneath(&format!("{rel_dir}/{META_FILE}")) {
            Ok(f) => f,
            Err(e) => {
                return match e.raw_os_error() {
                    Some(libc::ENOENT) => {
                        // Entries appear whole: a directory without its meta
                        // file is torn (damage, or a crash on a file system
                        // that lost the order of writes).
                        let dir = location();
                        match fs::symlink_metadata(&dir) {
                            Ok(md)
                                if md.is_dir()
                                    && fs::symlink_metadata(dir.join(META_FILE)).is_err() =>
                            {
                                if repair {
                                    let to = self.tmp_path("corrupt");
                                    quarantine(&dir, &to, Ident::Dir(md.dev(), md.ino()));
                                }
                                corrupt("the entry directory has no meta file".into())
                            }
                            _ => Ok(Lookup::Missing),
                        }
                    }
                    Some(libc::ELOOP | libc::EXDEV | libc::ENOTDIR) => {
                        self.quarantine_if(repair, &location(), None);
                        corrupt(format!(
                            "a symlink or non-directory on the way to the entry: {e}"
                        ))
                    }
                    _ => Err(StoreError::io("open", location().join(META_FILE), e)),
                };
            }
        };
        let md = meta_file
            .metadata()
            .map_err(io_err("stat", &location().join(META_FILE)))?;
        let meta_id = Some((md.dev(), md.ino()));
        if md.len() > META_FILE_MAX {
            self.quarantine_if(repair, &location(), meta_id);
            return corrupt(format!(
                "meta file of {} bytes exceeds the {META_FILE_MAX}-byte limit",
                md.len()
            ));
        }
        let mut buf = vec![0u8; md.len() as usize];
        (&meta_file)
            .read_exact(&mut buf)
            .map_err(io_err("read", &location().join(META_FILE)))?;
        let decoded = match meta::decode(&buf) {
            Ok(d) => d,
            Err(reason) => {
                self.quarantine_if(repair, &location(), meta_id);
                return corrupt(reason);
            }
        };
        let mut entry_meta = decoded.meta;
        let atime = SystemTime::UNIX_EPOCH
            + Duration::new(
                md.atime().max(0) as u64,
                md.atime_nsec().clamp(0, 999_999_999) as u32,
            );
        entry_meta.last_access = atime.max(entry_meta.created);
        if touch {
            let now = SystemTime::now();
            if now.duration_since(atime).unwrap_or_default() >= self.access_granularity {
                touch_atime(&meta_file);
                entry_meta.last_access = now;
            }
        }
        drop(meta_file);
        let loc_string = location().display().to_string();
        if let Some(range) = decoded.inline {
            if verify
                && meta::payload_checksum(buf.get(range.clone()).unwrap_or_default())
                    != entry_meta.checksum
            {
                self.quarantine_if(repair, &location(), meta_id);
                return corrupt("inline payload checksum does not match".into());
            }
            let payload = Payload::Memory { buf, range };
            return Ok(Lookup::Found(Box::new(Entry::new(
                entry_meta, payload, None, loc_string, false,
            ))));
        }
        let payload_rel = format!("{rel_dir}/{PAYLOAD_FILE}");
        let payload_file = match self.open_beneath(&payload_rel) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Removed meanwhile (then the meta file is gone too), or torn.
                return if self
                    .open_beneath(&format!("{rel_dir}/{META_FILE}"))
                    .is_err()
                {
                    Ok(Lookup::Missing)
                } else {
                    self.quarantine_if(repair, &location(), meta_id);
                    corrupt("the payload file is missing".into())
                };
            }
            Err(e) => return Err(StoreError::io("open", self.root.join(&payload_rel), e)),
        };
        let plen = payload_file
            .metadata()
            .map_err(io_err("stat", &self.root.join(&payload_rel)))?
            .len();
        if plen != entry_meta.payload_len {
            self.quarantine_if(repair, &location(), meta_id);
            return corrupt(format!(
                "payload file has {plen} bytes, the metadata records {}",
                entry_meta.payload_len
            ));
        }
        let path = Some(self.root.join(&payload_rel));
        if verify && plen <= EAGER_VERIFY_MAX {
            let mut data = vec![0u8; plen as usize];
            (&payload_file)
                .read_exact(&mut data)
                .map_err(io_err("read", &self.root.join(&payload_rel)))?;
            if meta::payload_checksum(&data) != entry_meta.checksum {
                self.quarantine_if(repair, &location(), meta_id);
                return corrupt("payload checksum does not match".into());
            }
            let range = 0..data.len();
            let payload = Payload::Memory { buf: data, range };
            return Ok(Lookup::Found(Box::new(Entry::new(
                entry_meta, payload, path, loc_string, false,
            ))));
        }
        let dir = location();
        let tmp_dir = self.root.join(TMP_DIR);
        let entry = Entry::new(
            entry_meta,
            Payload::File(payload_file),
            path,
            loc_string,
            verify,
        );
        if !repair {
            return Ok(Lookup::Found(Box::new(entry)));
        }
        let entry = entry.on_corrupt(move |reason| {
            log::warn!("{}: corrupt payload, quarantined: {reason}", dir.display());
            let nanos = meta::to_nanos(SystemTime::now());
            let to = tmp_dir.join(format!("corrupt-{}-{nanos}", std::process::id()));
            let ident = meta_id.map_or(Ident::Any, |(dev, ino)| Ident::Meta(dev, ino));
            quarantine(&dir, &to, ident);
        });
        Ok(Lookup::Found(Box::new(entry)))
    }

    fn info(&self, namespace: &str, dir: &Path, key: &str) -> EntryInfo {
        let meta_path = dir.join(META_FILE);
        let read = || -> std::result::Result<(EntryMeta, u64), String> {
            let f =
                open_noatime(&meta_path).map_err(|e| format!("cannot open the meta file: {e}"))?;
            let md = f.metadata().map_err(|e| e.to_string())?;
            if md.len() > META_FILE_MAX {
                return Err(format!("meta file of {} bytes is too large", md.len()));
            }
            let mut buf = vec![0u8; md.len() as usize];
            (&f).read_exact(&mut buf).map_err(|e| e.to_string())?;
            let mut m = meta::decode(&buf)?.meta;
            let atime = SystemTime::UNIX_EPOCH
                + Duration::new(
                    md.atime().max(0) as u64,
                    md.atime_nsec().clamp(0, 999_999_999) as u32,
                );
            m.last_access = atime.max(m.created);
            Ok((m, md.len()))
        };
        let payload_bytes = fs::symlink_metadata(dir.join(PAYLOAD_FILE)).map_or(0, |m| m.len());
        match read() {
            Ok((m, meta_len)) => EntryInfo {
                namespace: namespace.to_string(),
                key: key.to_string(),
                stored_bytes: meta_len + payload_bytes,
                last_access: m.last_access,
                meta: Ok(m),
            },
            Err(reason) => EntryInfo {
                namespace: namespace.to_string(),
                key: key.to_string(),
                stored_bytes: tree_bytes(dir),
                last_access: fs::symlink_metadata(dir)
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH),
                meta: Err(reason),
            },
        }
    }

    /// Removes leftovers of crashed writers and removals under `tmp/` whose
    /// newest modification is older than `max_age`; returns how many.
    pub fn clean_temp(&self, max_age: Duration) -> Result<usize> {
        let tmp = self.root.join(TMP_DIR);
        let now = SystemTime::now();
        let mut removed = 0;
        for e in fs::read_dir(&tmp).map_err(io_err("list", &tmp))?.flatten() {
            let path = e.path();
            let Some(t) = newest_mtime(&path) else {
                continue;
            };
            if now.duration_since(t).unwrap_or_default() < max_age {
                continue;
            }
            let r = match e.file_type() {
                Ok(ft) if ft.is_dir() => fs::remove_dir_all(&path),
                _ => fs::remove_file(&path),
            };
            match r {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove", path, e)),
            }
        }
        Ok(removed)
    }

    /// Removes lock files of absent entries that nobody holds; returns how
    /// many. Safe while others lock (see `LAYOUT.md`, "Locks").
    pub fn clean_locks(&self) -> Result<usize> {
        let nsroot = self.root.join(NS_DIR);
        let mut removed = 0;
        for ns in fs::read_dir(&nsroot)
            .map_err(io_err("list", &nsroot))?
            .flatten()
        {
            if !ns.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(rd) = fs::read_dir(ns.path()) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name();
                let Some(key) = name.to_str().and_then(|n| n.strip_suffix(".lock")) else {
                    continue;
                };
                if ns.path().join(key).exists() {
                    continue;
                }
                if lock::remove_if_free(&e.path()).map_err(io_err("remove lock", &e.path()))? {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

fn is_exists(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY))
}

/// What must still be in place for a quarantine to go ahead, so that an
/// entry published meanwhile under the same key is left alone.
#[derive(Debug, Clone, Copy)]
enum Ident {
    /// The meta file that was read (device, inode).
    Meta(u64, u64),
    /// The entry directory that was seen (device, inode).
    Dir(u64, u64),
    /// Nothing to compare (a symlink in the way).
    Any,
}

fn quarantine(entry_dir: &Path, to: &Path, ident: Ident) {
    let same = match ident {
        Ident::Meta(dev, ino) => fs::symlink_metadata(entry_dir.join(META_FILE))
            .is_ok_and(|md| (md.dev(), md.ino()) == (dev, ino)),
        Ident::Dir(dev, ino) => {
            fs::symlink_metadata(entry_dir).is_ok_and(|md| (md.dev(), md.ino()) == (dev, ino))
        }
        Ident::Any => true,
    };
    if !same {
        return;
    }
    match fs::symlink_metadata(entry_dir) {
        Ok(md) if md.file_type().is_symlink() => {
            let _ = fs::remove_file(entry_dir);
        }
        Ok(_) => {
            if let Err(e) = fs::rename(entry_dir, to) {
                log::warn!(
                    "{}: cannot quarantine corrupt entry: {e}",
                    entry_dir.display()
                );
            }
        }
        Err(_) => {}
    }
}

fn open_noatime(path: &Path) -> io::Result<File> {
    let open = |flags| {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | flags)
            .open(path)
    };
    match open(libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0),
        r => r,
    }
}

fn touch_atime(file: &File) {
    use std::os::fd::AsRawFd;
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
    ];
    // SAFETY: the descriptor is open for the duration of the call and
    // `times` points to two valid timespecs, as futimens requires.
    let rc = unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) };
    if rc != 0 {
        log::debug!("cannot record access time: {}", io::Error::last_os_error());
    }
}

fn openat2(dir: &File, rel: &str, extra_flags: i32) -> io::Result<File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let c = CString::new(rel).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: open_how is a plain struct of integers, for which all zeroes
    // is a valid value (and the kernel requires unused fields to be zero).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW | extra_flags) as u64;
    how.resolve = 0x08 | 0x04; // RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
                               // SAFETY: `c` is a NUL-terminated string and `how` a valid open_how that
                               // both outlive the call; the size passed is that of `how`.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd as i32) })
}

/// Writes `root/name` through a temporary file and a rename.
fn write_atomic(root: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = root.join(format!(".init-{name}-{}", std::process::id()));
    let target = root.join(name);
    let r = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, &target)
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r.map_err(io_err("write", &target))
}

/// The writer a publish hands to the caller: keeps small payloads in
/// memory (to be stored inline), spills larger ones to the payload file,
/// and hashes everything on the way.
struct PayloadWriter {
    path: PathBuf,
    buf: Vec<u8>,
    file: Option<File>,
    hasher: Xxh3,
    len: u64,
    failed: Option<io::Error>,
}

impl PayloadWriter {
    fn fail(&mut self, e: io::Error) -> io::Error {
        let copy = match e.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(e.kind(), e.to_string()),
        };
        self.failed = Some(e);
        copy
    }

    fn spill(&mut self) -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&self.path)
            .map_err(|e| self.fail(e))?;
        f.write_all(&self.buf).map_err(|e| self.fail(e))?;
        self.buf = Vec::new();
        self.file = Some(f);
        Ok(())
    }
}

impl Write for PayloadWriter {
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
        if !self.swept.swap(true, Ordering::Relaxed) {
            if let Err(e) = self.clean_temp(self.temp_max_age) {
                log::warn!("cleaning temporary files: {e}");
            }
        }
        let ns_dir = self.ensure_ns(namespace, &enc)?;
        let tmp = self.tmp_path(&format!("pub-{key}"));
        fs::create_dir(&tmp).map_err(io_err("create temporary directory", &tmp))?;
        let result = self.publish_in(namespace, key, entry, write, &tmp, &ns_dir);
        if result.is_err() || result.as_ref().is_ok_and(|p| p.already_present) {
            let _ = fs::remove_dir_all(&tmp);
        }
        result
    }

    fn lock(&self, namespace: &str, key: &str, wait: Wait) -> Result<EntryLock> {
        validate_key(key)?;
        let enc = encode_namespace(namespace)?;
        let dir = self.ensure_ns(namespace, &enc)?;
        let path = dir.join(format!("{key}.lock"));
        let ensure = || {
            self.ensure_ns(namespace, &enc)
                .map(|_| ())
                .map_err(|e| io::Error::other(e.to_string()))
        };
        lock::acquire(&path, wait, &ensure).map_err(|e| StoreError::io("lock", path, e))
    }

    fn remove(&self, namespace: &str, key: &str) -> Result<u64> {
        let dir = self.entry_dir(namespace, key)?;
        match fs::symlink_metadata(&dir) {
            Ok(md) if md.file_type().is_symlink() => {
                fs::remove_file(&dir).map_err(io_err("remove", &dir))?;
                return Ok(0);
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(StoreError::io("remove", dir, e)),
        }
        let bytes = tree_bytes(&dir);
        let to = self.tmp_path("del");
        match fs::rename(&dir, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(StoreError::io("remove", dir, e)),
        }
        fs::remove_dir_all(&to).map_err(io_err("remove", &to))?;
        Ok(bytes)
    }

    fn remove_namespace(&self, namespace: &str) -> Result<u64> {
        let dir = self.ns_dir(&encode_namespace(namespace)?);
        match fs::symlink_metadata(&dir) {
            Ok(md) if md.file_type().is_symlink() => {
                fs::remove_file(&dir).map_err(io_err("remove", &dir))?;
                return Ok(0);
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(StoreError::io("remove", dir, e)),
        }
        let to = self.tmp_path("del");
        match fs::rename(&dir, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(StoreError::io("remove", dir, e)),
        }
        let bytes = tree_bytes(&to);
        fs::remove_dir_all(&to).map_err(io_err("remove", &to))?;
        Ok(bytes)
    }

    fn namespaces(&self) -> Result<Vec<String>> {
        let nsroot = self.root.join(NS_DIR);
        let mut out = Vec::new();
        for e in fs::read_dir(&nsroot).map_err(io_err("list", &nsroot))? {
            let e = e.map_err(io_err("list", &nsroot))?;
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            match decode_namespace(name) {
                Some(DecodedNamespace::Full(ns)) => out.push(ns),
                Some(DecodedNamespace::Cut) => {
                    let p = e.path().join(NAME_FILE);
                    let full = open_noatime(&p).and_then(|f| {
                        let mut s = String::new();
                        f.take(crate::names::NAMESPACE_MAX as u64 + 1)
                            .read_to_string(&mut s)
                            .map(|_| s)
                    });
                    match full {
                        Ok(ns) if encode_namespace(&ns).is_ok_and(|e| e == name) => out.push(ns),
                        _ => log::warn!("{}: namespace name file missing or wrong", p.display()),
                    }
                }
                None => log::warn!("{}: not a namespace directory; ignored", e.path().display()),
            }
        }
        out.sort();
        Ok(out)
    }

    fn entries(&self, namespace: &str) -> Result<Vec<EntryInfo>> {
        let dir = self.ns_dir(&encode_namespace(namespace)?);
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("list", dir, e)),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(io_err("list", &dir))?;
            let name = e.file_name();
            let Some(key) = name.to_str().filter(|n| is_hex_key(n)) else {
                continue;
            };
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            out.push(self.info(namespace, &e.path(), key));
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn touch(&self, namespace: &str, key: &str) -> Result<()> {
        let p = self.entry_dir(namespace, key)?.join(META_FILE);
        match open_noatime(&p) {
            Ok(f) => {
                touch_atime(&f);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("open", p, e)),
        }
    }

    fn verify_all(&self, progress: &mut dyn FnMut(&EntryInfo, &Verdict)) -> Result<VerifyReport> {
        verify_with(
            self.all_entries()?,
            &|ns, key| self.get_inner(ns, key, true, false, true),
            progress,
        )
    }

    fn reduce_size(&self, limits: &Limits, dry_run: bool) -> Result<Reduction> {
        if !dry_run {
            self.clean_temp(self.temp_max_age)?;
        }
        let report = reduce_with(self, self.all_entries()?, limits, dry_run, self.recent)?;
        if !dry_run {
            self.clean_locks()?;
        }
        Ok(report)
    }
}

impl FsStore {
    fn publish_in(
        &self,
        namespace: &str,
        key: &str,
        entry: &NewEntry,
        write: WriteFn<'_>,
        tmp: &Path,
        ns_dir: &Path,
    ) -> Result<Published> {
        let created = SystemTime::now();
        let mut w = PayloadWriter {
            path: tmp.join(PAYLOAD_FILE),
            buf: Vec::new(),
            file: None,
            hasher: Xxh3::new(),
            len: 0,
            failed: None,
        };
        let written = write(&mut w);
        if let Some(e) = w.failed.take() {
            return Err(StoreError::io("write payload", w.path, e));
        }
        if let Err(source) = written {
            return Err(StoreError::Writer {
                namespace: namespace.to_string(),
                key: key.to_string(),
                source,
            });
        }
        let checksum = w.hasher.digest();
        let spilled = w.file.is_some();
        if let Some(f) = w.file.take() {
            f.sync_data().map_err(io_err("sync payload", &w.path))?;
        }
        let inline = (!spilled).then_some(w.buf.as_slice());
        let bytes = meta::encode(entry, created, w.len, checksum, inline);
        let meta_path = tmp.join(META_FILE);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&meta_path)
            .map_err(io_err("create metadata", &meta_path))?;
        f.write_all(&bytes)
            .and_then(|()| f.sync_data())
            .map_err(io_err("write metadata", &meta_path))?;
        drop(f);
        sync_dir(tmp).map_err(io_err("sync directory", tmp))?;
        let target = ns_dir.join(key);
        let mut decoded = meta::decode(&bytes)
            .map_err(|r| StoreError::io("encode metadata", &meta_path, io::Error::other(r)))?
            .meta;
        decoded.last_access = created;
        let mut renamed = fs::rename(tmp, &target);
        if renamed
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
            && tmp.exists()
        {
            // The namespace was removed meanwhile: create it again.
            let enc = ns_dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            self.ensure_ns(namespace, enc)?;
            renamed = fs::rename(tmp, &target);
        }
        match renamed {
            Ok(()) => {
                sync_dir(ns_dir).map_err(io_err("sync directory", ns_dir))?;
                Ok(Published {
                    meta: decoded,
                    already_present: false,
                })
            }
            Err(e) if is_exists(&e) => Ok(Published {
                meta: decoded,
                already_present: true,
            }),
            Err(e) => Err(StoreError::io("publish entry", target, e)),
        }
    }
}
