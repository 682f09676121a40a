//! Lookups and listing (`LAYOUT.md`, "Lookup", "Access times").

use super::clean::{quarantine, Ident, Quarantine};
use super::index::{self, Op, Record};
use super::layout::{ensure_dir, NS_DIR};
use super::{entry_rel, io_err, is_hex_key, is_not_followed, FsStore, META_FILE, PAYLOAD_FILE};
use crate::api::{Corruption, Entry, EntryInfo, Lookup, Payload, Store, Verdict, VerifyReport};
use crate::beneath::{Dir, Info, Kind};
use crate::error::{Result, StoreError};
use crate::lock;
use crate::meta::{self, EntryMeta, META_FILE_MAX};
use crate::names::{decode_namespace, encode_namespace, validate_key, DecodedNamespace};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A namespace directory this handle opened, and when (see
/// `FsStore::ns_this_tick`).
#[derive(Debug)]
pub(super) struct NsOpen {
    /// The root handle it was opened beneath.
    root: Arc<Dir>,
    /// Its name beneath `ns/`.
    enc: String,
    dir: Dir,
    /// The coarse-clock tick it was opened in.
    tick: u64,
    /// Whether its file system counts subdirectories in a directory's link
    /// count (see [`link_count_counts_subdirs`]).
    counts_subdirs: bool,
}

/// Whether the file system of `dir` is one whose directory link count is 2
/// plus the number of subdirectories: ext2/3/4 (which sets 1 past 65,000
/// subdirectories), XFS and tmpfs. Others may report 1 (btrfs, overlay
/// merged directories) or a constant (some FUSE file systems), so their
/// link counts are not read for this.
fn link_count_counts_subdirs(dir: &Dir) -> bool {
    const EXT4: i64 = 0xEF53;
    const XFS: i64 = 0x5846_5342;
    const TMPFS: i64 = 0x0102_1994;
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    rustix::fs::fstatfs(dir.file()).is_ok_and(|st| matches!(st.f_type as i64, EXT4 | XFS | TMPFS))
}

/// Payloads up to this size are read and verified inside `get`.
const EAGER_VERIFY_MAX: u64 = 1 << 20;

/// The last access recorded in a meta file's atime.
fn atime_of(md: &std::fs::Metadata) -> SystemTime {
    SystemTime::UNIX_EPOCH
        + Duration::new(
            md.atime().max(0) as u64,
            md.atime_nsec().clamp(0, 999_999_999) as u32,
        )
}

fn touch_atime(file: &File) {
    use rustix::fs::{futimens, Timespec, Timestamps, UTIME_NOW, UTIME_OMIT};
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_NOW,
        },
        last_modification: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
    };
    if let Err(e) = futimens(file, &times) {
        log::debug!("cannot record access time: {e}");
    }
}

/// Opens the existing namespace directory `enc` beneath `ns`; a symlink or
/// file in its place is removed (with a warning) and counts as absent.
pub(super) fn open_ns(ns: &Dir, enc: &str, path: &Path) -> Result<Option<Dir>> {
    match ns.open_dir(enc) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if is_not_followed(&e) => {
            super::layout::remove_in_the_way(ns, enc, path, "a namespace directory")?;
            Ok(None)
        }
        Err(e) => Err(StoreError::io("open namespace directory", path, e)),
    }
}

impl FsStore {
    /// Checks one entry as [`StoreExt::verify_all`](crate::StoreExt::verify_all)
    /// does — metadata, payload length and full payload checksum — without
    /// changing anything: a corrupt entry is reported, not quarantined, and
    /// its access time is not recorded. For tools that report before they
    /// repair (`jobcache verify` without `--fix`).
    pub fn check(&self, namespace: &str, key: &str) -> Result<Verdict> {
        crate::policy::verdict_of(self.get_inner(namespace, key, true, false, false)?)
    }

    /// Records a use of an entry in the index (coarsely: only when its
    /// access time is updated, at most once per granularity).
    fn index_access(&self, namespace: &str, key: &str, when: SystemTime) {
        if let Some(id) = index::id_of(namespace, key) {
            let r = Record::new(Op::Access, id, 0, meta::to_nanos(when));
            self.index_append(&[r]);
        }
    }

    /// Whether a live process has the entry's payload open for reading: it
    /// holds a shared lock on the payload file, so an exclusive one cannot
    /// be taken. Inline payloads are read whole inside the lookup, so they
    /// are never "open".
    pub(super) fn is_being_read(&self, namespace: &str, key: &str) -> bool {
        let Ok(enc) = encode_namespace(namespace) else {
            return false;
        };
        let rel = format!("{}/{PAYLOAD_FILE}", entry_rel(&enc, key));
        match self.open_noatime(&self.handle(), &rel) {
            Ok(f) => matches!(lock::try_exclusive(&f), Ok(lock::Try::Busy)),
            Err(_) => false,
        }
    }

    /// Checks every entry's metadata (header, checksum, fields) and, for a
    /// payload in a file of its own, the file's length — without reading
    /// any payload file — calling `progress` after each; then rebuilds the
    /// index from what it listed. Reports, never repairs: a corrupt entry is
    /// counted (`jobcache verify --quick`; the full `verify_all` checks
    /// payload checksums and quarantines).
    pub fn verify_quick(
        &self,
        progress: &mut dyn FnMut(&EntryInfo, &Verdict),
    ) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let mut listed = Vec::new();
        for ns in self.namespaces()? {
            let enc = encode_namespace(&ns)?;
            for info in self.entries(&ns)? {
                let verdict = match &info.meta {
                    Err(reason) => Verdict::Corrupt(reason.clone()),
                    Ok(m) if m.payload_len as usize > meta::INLINE_MAX => {
                        let rel = format!("{}/{PAYLOAD_FILE}", entry_rel(&enc, &info.key));
                        match self.handle().stat(&rel) {
                            Ok(i) if i.kind == Kind::File && i.len == m.payload_len => Verdict::Ok,
                            Ok(i) => Verdict::Corrupt(format!(
                                "payload file has {} bytes, the metadata records {}",
                                i.len, m.payload_len
                            )),
                            Err(e) if e.kind() == io::ErrorKind::NotFound => Verdict::Missing,
                            Err(e) => Verdict::Corrupt(format!("payload file: {e}")),
                        }
                    }
                    Ok(_) => Verdict::Ok,
                };
                match verdict {
                    Verdict::Ok => report.ok += 1,
                    Verdict::Missing => report.missing += 1,
                    Verdict::Corrupt(_) => report.corrupt += 1,
                }
                progress(&info, &verdict);
                listed.push(info);
            }
        }
        self.rebuild_index_from(&listed)?;
        Ok(report)
    }

    /// `ns/` beneath the current root, if it is there (a symlink in its
    /// place is replaced by a directory).
    pub(super) fn ns_dir(&self) -> Result<Option<Dir>> {
        let root = self.handle();
        ensure_dir(&root, NS_DIR, &self.root.join(NS_DIR), true)
    }

    /// Runs `f` on `ns/<enc>` beneath `root` as this handle opened it in
    /// the current tick of the coarse clock (opening it now if not; `None`
    /// if it does not exist, looked for again next time). Lookups read its
    /// link count, publishes its existence; a namespace directory replaced
    /// by another process within the tick (a clear) is seen as the old one
    /// until the tick passes. `Err` if it cannot be opened (a symlink or
    /// file in its place).
    pub(super) fn ns_this_tick<T>(
        &self,
        root: &Arc<Dir>,
        enc: &str,
        f: impl FnOnce(Option<&NsOpen>) -> T,
    ) -> io::Result<T> {
        let tick = super::generations::coarse_tick();
        let mut held = super::guard(&self.ns_open);
        let current = held
            .as_ref()
            .is_some_and(|h| h.tick == tick && h.enc == enc && Arc::ptr_eq(&h.root, root));
        if !current {
            *held = None;
            let dir = match root.open_dir(format!("{NS_DIR}/{enc}")) {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(f(None)),
                Err(e) => return Err(e),
            };
            let counts_subdirs = link_count_counts_subdirs(&dir);
            *held = Some(NsOpen {
                root: Arc::clone(root),
                enc: enc.to_string(),
                dir,
                tick,
                counts_subdirs,
            });
        }
        Ok(f(held.as_ref()))
    }

    /// Whether `ns/<enc>` beneath `root` holds no entry directory at all:
    /// it is missing, or its link count is 2 (itself and `.`: no
    /// subdirectory) on a file system whose directory link counts count
    /// subdirectories, read with one `fstat` of the handle of this tick
    /// ([`FsStore::ns_this_tick`]): an entry directory made by another
    /// process a moment ago counts at once. `false` when unsure.
    fn no_entry_dirs(&self, root: &Arc<Dir>, enc: &str) -> bool {
        self.ns_this_tick(root, enc, |ns| {
            ns.is_none_or(|h| {
                h.counts_subdirs
                    && h.dir
                        .fstat()
                        .is_ok_and(|i| i.kind == Kind::Dir && i.nlink == 2)
            })
        })
        .unwrap_or(false)
    }

    /// Looks an entry up. With `repair`, a corrupt entry found on the way
    /// (or later, while its payload is read) is quarantined; without, nothing
    /// in the store is changed.
    pub(super) fn get_inner(
        &self,
        namespace: &str,
        key: &str,
        verify: bool,
        touch: bool,
        repair: bool,
    ) -> Result<Lookup> {
        validate_key(key)?;
        let enc = encode_namespace(namespace)?;
        let root = self.handle();
        let at = (namespace, enc.as_str(), key);
        match self.lookup(&root, at, verify, touch, repair)? {
            Lookup::Missing => match self.refresh_root(&root) {
                // The root was deleted and made again by another process.
                Some(new) => self.lookup(&new, at, verify, touch, repair),
                None => Ok(Lookup::Missing),
            },
            found => Ok(found),
        }
    }

    /// `at`: the namespace, its directory name and the key.
    fn lookup(
        &self,
        root: &Arc<Dir>,
        (namespace, enc, key): (&str, &str, &str),
        verify: bool,
        touch: bool,
        repair: bool,
    ) -> Result<Lookup> {
        if let Some(id) = index::id_of(namespace, key) {
            if let Some(found) = self.get_packed(root, &id, verify, touch, repair)? {
                return Ok(found);
            }
        }
        let rel_dir = entry_rel(enc, key);
        let location = || self.root.join(&rel_dir);
        let corrupt = |reason: String| {
            Ok(Lookup::Corrupt(Corruption {
                location: location().display().to_string(),
                reason,
            }))
        };
        let q = Quarantine {
            root: Arc::clone(root),
            enc: enc.to_string(),
            key: key.to_string(),
            max: self.quarantine_max,
        };
        let quarantine_if = |ident: Ident| {
            if repair {
                quarantine(&q, ident);
            }
        };
        // Where small entries are packed, an entry directory is the rare
        // case: a namespace directory that holds none answers the usual miss
        // with one `fstat`; else the entry directory is opened first, so
        // that one `openat2` answers a miss, and its meta file is opened
        // beneath it.
        let entry_dir = if self.pack_small {
            if self.no_entry_dirs(root, enc) {
                self.dir_missing.note(rel_dir);
                return Ok(Lookup::Missing);
            }
            match root.open_dir(&rel_dir) {
                Ok(d) => Some(d),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // A publish of this key in the same tick need not look again.
                    self.dir_missing.note(rel_dir);
                    return Ok(Lookup::Missing);
                }
                // A symlink or worse on the way: the open below reports it.
                Err(_) => None,
            }
        } else {
            None
        };
        let meta_rel = format!("{rel_dir}/{META_FILE}");
        let opened = match &entry_dir {
            Some(d) => self.open_noatime(d, META_FILE),
            None => self.open_noatime(root, &meta_rel),
        };
        let meta_file = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Entries appear whole: a directory without its meta file is
                // torn (damage, or a crash on a file system that lost the
                // order of writes).
                // One `openat2` for the usual miss (no directory): the
                // directory is opened, not stat'ed through its parent.
                let dir = match entry_dir {
                    Some(d) => Ok(d),
                    None => root.open_dir(&rel_dir),
                };
                // Torn only if the directory is still the one at its path:
                // one moved away by a removal (its files going) is a miss.
                let in_place = |i: &Info| root.stat(&rel_dir).is_ok_and(|p| i.same(&p));
                return match dir.and_then(|d| d.fstat()) {
                    Ok(i)
                        if i.kind == Kind::Dir && in_place(&i) && root.stat(&meta_rel).is_err() =>
                    {
                        quarantine_if(Ident::Dir(i));
                        corrupt("the entry directory has no meta file".into())
                    }
                    _ => Ok(Lookup::Missing),
                };
            }
            Err(e) if is_not_followed(&e) => {
                if repair {
                    self.repair_path(root, enc, &q);
                }
                return corrupt(format!(
                    "a symlink or non-directory on the way to the entry: {e}"
                ));
            }
            Err(e) => return Err(StoreError::io("open", location().join(META_FILE), e)),
        };
        let md = meta_file
            .metadata()
            .map_err(io_err("stat", &location().join(META_FILE)))?;
        let meta_ident = Ident::Meta(md.dev(), md.ino());
        if md.len() > META_FILE_MAX {
            quarantine_if(meta_ident);
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
                quarantine_if(meta_ident);
                return corrupt(reason);
            }
        };
        let mut entry_meta = decoded.meta;
        let atime = atime_of(&md);
        entry_meta.last_access = atime.max(entry_meta.created);
        if touch {
            let now = SystemTime::now();
            if now.duration_since(atime).unwrap_or_default() >= self.access_granularity {
                touch_atime(&meta_file);
                entry_meta.last_access = now;
                self.index_access(namespace, key, now);
            }
        }
        drop(meta_file);
        let loc_string = location().display().to_string();
        if let Some(range) = decoded.inline {
            if verify
                && meta::payload_checksum(buf.get(range.clone()).unwrap_or_default())
                    != entry_meta.checksum
            {
                quarantine_if(meta_ident);
                return corrupt("inline payload checksum does not match".into());
            }
            let payload = Payload::Memory { buf, range };
            let entry = Entry::new(entry_meta, payload, None, loc_string, false);
            // Checked above only if asked: otherwise not verified.
            let entry = if verify { entry.checked() } else { entry };
            return Ok(Lookup::Found(Box::new(entry)));
        }
        let payload_rel = format!("{rel_dir}/{PAYLOAD_FILE}");
        let payload_path = self.root.join(&payload_rel);
        let payload_file = match self.open_noatime(root, &payload_rel) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound || is_not_followed(&e) => {
                // Removed meanwhile (then the meta file is gone too), or torn.
                return if self.open_noatime(root, &meta_rel).is_err() {
                    Ok(Lookup::Missing)
                } else {
                    quarantine_if(meta_ident);
                    corrupt(format!("the payload file is missing or not a file: {e}"))
                };
            }
            Err(e) => return Err(StoreError::io("open", payload_path, e)),
        };
        let plen = payload_file
            .metadata()
            .map_err(io_err("stat", &payload_path))?
            .len();
        if plen != entry_meta.payload_len {
            quarantine_if(meta_ident);
            return corrupt(format!(
                "payload file has {plen} bytes, the metadata records {}",
                entry_meta.payload_len
            ));
        }
        if verify && plen <= EAGER_VERIFY_MAX {
            let mut data = vec![0u8; plen as usize];
            (&payload_file)
                .read_exact(&mut data)
                .map_err(io_err("read", &payload_path))?;
            if meta::payload_checksum(&data) != entry_meta.checksum {
                quarantine_if(meta_ident);
                return corrupt("payload checksum does not match".into());
            }
            let range = 0..data.len();
            let payload = Payload::Memory { buf: data, range };
            return Ok(Lookup::Found(Box::new(
                Entry::new(entry_meta, payload, Some(payload_path), loc_string, false).checked(),
            )));
        }
        // The reader's liveness signal: a shared lock on the payload file
        // for as long as the entry (its descriptor) lives. Eviction skips an
        // entry whose payload it cannot lock exclusively. Not taking it (an
        // evictor holds it this instant) is harmless: the open file stays
        // readable after removal.
        let _ = lock::try_shared(&payload_file);
        let entry = Entry::new(
            entry_meta,
            Payload::File(payload_file),
            Some(payload_path),
            loc_string,
            verify,
        );
        if !repair {
            return Ok(Lookup::Found(Box::new(entry)));
        }
        let dir = location();
        let entry = entry.on_corrupt(move |reason| {
            log::warn!("{}: corrupt payload, quarantined: {reason}", dir.display());
            quarantine(&q, meta_ident);
        });
        Ok(Lookup::Found(Box::new(entry)))
    }

    /// After a symlink or non-directory was met on the way to an entry:
    /// replaces a planted `ns/`, removes a planted namespace directory, and
    /// quarantines an entry whose directory, meta or payload is not what
    /// the layout puts there.
    fn repair_path(&self, root: &Dir, enc: &str, q: &Quarantine) {
        let fix = || -> Result<()> {
            let Some(ns) = ensure_dir(root, NS_DIR, &self.root.join(NS_DIR), true)? else {
                return Ok(());
            };
            let ns_path = self.root.join(NS_DIR).join(enc);
            if open_ns(&ns, enc, &ns_path)?.is_some() {
                quarantine(q, Ident::Any);
            }
            Ok(())
        };
        if let Err(e) = fix() {
            log::warn!("{e}");
        }
    }

    /// The entry `key` of the namespace directory `dir`, described for
    /// listing (never failing: an unreadable entry is listed with its
    /// reason).
    fn info(&self, namespace: &str, dir: &Dir, key: &str) -> EntryInfo {
        let meta_rel = format!("{key}/{META_FILE}");
        let read = || -> std::result::Result<(EntryMeta, u64), String> {
            let f = self
                .open_noatime(dir, &meta_rel)
                .map_err(|e| format!("cannot open the meta file: {e}"))?;
            let md = f.metadata().map_err(|e| e.to_string())?;
            if md.len() > META_FILE_MAX {
                return Err(format!("meta file of {} bytes is too large", md.len()));
            }
            let mut buf = vec![0u8; md.len() as usize];
            (&f).read_exact(&mut buf).map_err(|e| e.to_string())?;
            let mut m = meta::decode(&buf)?.meta;
            m.last_access = atime_of(&md).max(m.created);
            Ok((m, md.len()))
        };
        let payload_bytes = dir
            .stat(format!("{key}/{PAYLOAD_FILE}"))
            .ok()
            .filter(|i| i.kind == Kind::File)
            .map_or(0, |i| i.len);
        let (stored_bytes, last_access, meta) = match read() {
            Ok((m, meta_len)) => (meta_len + payload_bytes, m.last_access, Ok(m)),
            Err(reason) => (
                dir.tree_bytes(key),
                dir.stat(key)
                    .map_or(SystemTime::UNIX_EPOCH, |i: Info| i.mtime),
                Err(reason),
            ),
        };
        EntryInfo {
            namespace: namespace.to_string(),
            key: key.to_string(),
            stored_bytes,
            last_access,
            meta,
        }
    }

    pub(super) fn list_namespaces(&self) -> Result<Vec<String>> {
        let Some(ns) = self.ns_dir()? else {
            return Ok(Vec::new());
        };
        let nsroot = self.root.join(NS_DIR);
        let mut out = Vec::new();
        for e in ns.list().map_err(io_err("list", &nsroot))? {
            if e.kind != Kind::Dir {
                continue;
            }
            let Some(name) = e.name_str() else { continue };
            match decode_namespace(name) {
                Some(DecodedNamespace::Full(ns)) => out.push(ns),
                Some(DecodedNamespace::Cut) => {
                    let rel = format!("{name}/name");
                    let full = self.open_noatime(&ns, &rel).and_then(|f| {
                        let mut s = String::new();
                        f.take(crate::names::NAMESPACE_MAX as u64 + 1)
                            .read_to_string(&mut s)
                            .map(|_| s)
                    });
                    match full {
                        Ok(full) if encode_namespace(&full).is_ok_and(|e| e == name) => {
                            out.push(full)
                        }
                        _ => log::warn!(
                            "{}: namespace name file missing or wrong",
                            nsroot.join(rel).display()
                        ),
                    }
                }
                None => log::warn!(
                    "{}: not a namespace directory; ignored",
                    nsroot.join(name).display()
                ),
            }
        }
        out.sort();
        Ok(out)
    }

    pub(super) fn list_entries(&self, namespace: &str) -> Result<Vec<EntryInfo>> {
        let enc = encode_namespace(namespace)?;
        let Some(ns) = self.ns_dir()? else {
            return Ok(Vec::new());
        };
        let path = self.root.join(NS_DIR).join(&enc);
        let Some(dir) = open_ns(&ns, &enc, &path)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for e in dir.list().map_err(io_err("list", &path))? {
            let Some(key) = e.name_str().filter(|n| is_hex_key(n)) else {
                continue;
            };
            if e.kind != Kind::Dir {
                continue;
            }
            out.push(self.info(namespace, &dir, key));
        }
        out.extend(self.packed_entries(namespace)?);
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    pub(super) fn touch_entry(&self, namespace: &str, key: &str) -> Result<()> {
        validate_key(key)?;
        if let Some(id) = index::id_of(namespace, key) {
            if self.touch_packed(&self.handle(), &id)? {
                return Ok(());
            }
        }
        let rel = format!(
            "{}/{META_FILE}",
            entry_rel(&encode_namespace(namespace)?, key)
        );
        match self.open_noatime(&self.handle(), &rel) {
            Ok(f) => {
                touch_atime(&f);
                self.index_access(namespace, key, SystemTime::now());
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("open", self.root.join(rel), e)),
        }
    }
}
