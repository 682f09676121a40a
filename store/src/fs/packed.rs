//! Small entries in shared pack files (`LAYOUT.md`, "Packs"): appends under
//! the pack's `flock`, lookups through a per-process map caught up by one
//! `stat` of the pack when its counter in the generation page moved (none
//! at all otherwise: `generations`), removals by `remove` records.

use super::generations::{coarse_now, coarse_wall_now, Generations, REVALIDATE};
use super::index::{self, Id, NsId, Op, Record};
use super::layout::{ensure_dir, remove_in_the_way};
use super::pack::{self, PackMap, PackOp};
use super::{guard, is_not_followed, Durability, FsStore};
use crate::api::{Corruption, Entry, EntryInfo, Lookup, Payload};
use crate::beneath::{info_of, Dir, Kind};
use crate::error::{Result, StoreError};
use crate::lock;
use crate::meta::{self, EntryMeta};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// The directory of the packs.
pub(super) const PACKS_DIR: &str = "packs";
/// Number of packs (one per first byte of the key).
const PACK_COUNT: usize = super::generations::COUNTERS;
/// Bytes of checked records a process keeps per pack, so that a repeated
/// hit reads nothing from the file.
const RECORDS_KEPT_MAX: usize = 128 * 1024;
/// Accesses remembered per process before the memory is cleared (an entry
/// then costs at most one more `access` record).
const ACCESSED_MAX: usize = 1 << 16;
/// Meta files (inline payload included) up to this size are packed.
pub(super) const PACK_META_MAX: usize = 64 * 1024;

/// A pack as this process knows it.
#[derive(Debug)]
struct Open {
    file: File,
    dev: u64,
    ino: u64,
    /// Opened for writing (by an append): an append may use it.
    writable: bool,
    map: PackMap,
    /// Records read and checked since this file was opened, by offset:
    /// records are immutable, so one stays right while its offset is live
    /// in `map` (cleared if the file is found cut below what was scanned).
    records: HashMap<u64, Kept>,
    records_bytes: usize,
}

/// A record read and checked, with what its meta file decoded to.
#[derive(Debug, Clone)]
pub(super) struct Kept {
    bytes: Vec<u8>,
    meta: EntryMeta,
    /// Where the inline payload lies in `bytes`.
    range: std::ops::Range<usize>,
    /// `<pack path>@<offset>`, formatted once.
    location: String,
}

/// What [`Packs::read`] found.
#[derive(Debug)]
enum Read {
    /// The record's bytes, just read.
    Fresh(Vec<u8>),
    /// The record as checked and decoded before.
    Kept(Kept),
}

/// A pack slot: the pack as this process knows it, and the generation
/// counter it was last caught up at.
#[derive(Debug, Default)]
struct Slot {
    open: Option<Open>,
    /// The pack's counter when the map was last caught up, and when
    /// ([`coarse_now`]).
    seen: Option<(u64, Duration)>,
    /// The generation page whose counter a writer of this process last
    /// read under the pack's lock (its address; 0 if none), so that an
    /// append trusts an unmoved counter only of the same root's page.
    written_under: usize,
}

impl Slot {
    /// Whether the map is known current: the counter has not moved since
    /// it was caught up, not longer ago than [`REVALIDATE`].
    fn is_current(&self, generation: Option<u64>, now: Duration) -> bool {
        is_current(self.seen, generation, now)
    }
}

/// Whether a map caught up at `seen` (counter, time) is current when the
/// counter reads `generation` at `now`.
fn is_current(seen: Option<(u64, Duration)>, generation: Option<u64>, now: Duration) -> bool {
    match (generation, seen) {
        (Some(g), Some((seen, at))) => g == seen && now.saturating_sub(at) < REVALIDATE,
        _ => false,
    }
}

/// The packs a process has touched, and the accesses it recorded.
#[derive(Debug)]
pub(super) struct Packs {
    slots: Box<[Mutex<Slot>]>,
    /// The generation page of the current root, if mapped.
    generations: RwLock<Option<Arc<Generations>>>,
    /// When this process last tried to map a missing page.
    generations_tried: Mutex<Option<Instant>>,
    /// `packs/` of the current root, kept open for appends.
    packs_dir: Mutex<Option<(Arc<Dir>, Arc<Dir>)>>,
    /// When this process last recorded an access of a packed entry in the
    /// ledger (nanoseconds since the epoch).
    accessed: Mutex<HashMap<Id, u64>>,
}

impl Default for Packs {
    fn default() -> Self {
        Packs {
            slots: (0..PACK_COUNT)
                .map(|_| Mutex::new(Slot::default()))
                .collect(),
            generations: RwLock::new(None),
            generations_tried: Mutex::new(None),
            packs_dir: Mutex::new(None),
            accessed: Mutex::new(HashMap::new()),
        }
    }
}

/// `<xx>.pack`: the pack of keys whose first byte is `b`.
pub(super) fn pack_name(b: u8) -> String {
    format!("{b:02x}.pack")
}

pub(super) fn pack_rel(b: u8) -> String {
    format!("{PACKS_DIR}/{}", pack_name(b))
}

/// Bytes read at a time while catching up with a pack.
const CATCH_UP_CHUNK: usize = 4 << 20;
/// Past this many bytes without a whole record after the last one, the
/// rest of a pack is its tail and is not read further: a pack extended by
/// a terabyte of holes (or garbage) is neither read through nor into memory
/// at once. The next append cuts such a tail.
const DAMAGE_RUN_MAX: u64 = 64 << 20;
const _: () = assert!(CATCH_UP_CHUNK > 2 * pack::RECORD_MAX);

/// Reads what was appended to `open`'s file up to `len` into its map (from
/// the start if the file shrank).
fn catch_up(open: &mut Open, len: u64) -> io::Result<()> {
    if len < open.map.scanned {
        open.map = PackMap::default();
        open.records.clear();
        open.records_bytes = 0;
    }
    feed_chunked(&open.file, &mut open.map, len)
}

/// Feeds `map` the bytes of `file` from `map.scanned` up to `len`, a chunk
/// at a time, stopping at a run of [`DAMAGE_RUN_MAX`] bytes without a
/// record: what lies past `map.scanned` then is the pack's tail, not read
/// again at the same length. (A short tail, a record torn by a killed
/// writer, is read again at each look: others may cut it and append
/// records that bring the pack back to the same length.)
fn feed_chunked(file: &File, map: &mut PackMap, len: u64) -> io::Result<()> {
    if len == map.scanned || map.tail_at == Some(len) {
        return Ok(());
    }
    let mut pos = map.scanned;
    let mut buf = Vec::new();
    while pos < len {
        let n = usize::try_from(len - pos).map_or(CATCH_UP_CHUNK, |n| n.min(CATCH_UP_CHUNK));
        buf.resize(n, 0);
        match file.read_exact_at(&mut buf, pos) {
            Ok(()) => {}
            // Cut meanwhile by a writer: read again at the next look.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let last = map.scanned;
        map.feed(pos, &buf);
        if map.scanned > pos {
            // Whole chunks skipped before this one held no record: damage.
            map.damaged += pos - last;
            pos = map.scanned;
            continue;
        }
        // No whole record in this chunk: the end of the last one stands.
        map.scanned = last;
        if pos + n as u64 >= len {
            break;
        }
        // The next chunk overlaps this one by a record's largest size, so
        // that a record cut by this chunk's end is read whole.
        pos += n.saturating_sub(pack::RECORD_MAX).max(1) as u64;
        if pos - last > DAMAGE_RUN_MAX {
            map.tail_at = Some(len);
            break;
        }
    }
    Ok(())
}

/// Where the records of the pack `file` (of `len` bytes) end: past it lies
/// its tail, damage that no record follows (see [`feed_chunked`]).
pub(super) fn records_end(file: &File, len: u64) -> io::Result<u64> {
    let mut map = PackMap::default();
    feed_chunked(file, &mut map, len)?;
    Ok(map.scanned)
}

fn open_at(file: File) -> io::Result<Open> {
    let i = info_of(&file)?;
    let mut open = Open {
        file,
        dev: i.dev,
        ino: i.ino,
        writable: false,
        map: PackMap::default(),
        records: HashMap::new(),
        records_bytes: 0,
    };
    catch_up(&mut open, i.len)?;
    Ok(open)
}

impl Packs {
    /// The generation page of `root`: mapped on first use (made first if
    /// `create`, by a writer), dropped when the root is replaced or the
    /// page found truncated. A missing page is looked for again at most
    /// once per [`REVALIDATE`] by readers.
    fn generations(&self, root: &Arc<Dir>, create: bool) -> Option<Arc<Generations>> {
        let held = match self.generations.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if let Some(g) = held {
            if g.belongs_to(root) && g.is_sound() {
                return Some(g);
            }
        }
        {
            let mut tried = guard(&self.generations_tried);
            if !create && tried.is_some_and(|at| at.elapsed() < REVALIDATE) {
                return None;
            }
            *tried = Some(Instant::now());
        }
        let opened = match Generations::open(root, PACKS_DIR, create) {
            Ok(g) => g.map(Arc::new),
            Err(e) => {
                log::debug!("{PACKS_DIR}/{}: {e}", super::generations::GENERATIONS_FILE);
                None
            }
        };
        match self.generations.write() {
            Ok(mut g) => g.clone_from(&opened),
            Err(poisoned) => poisoned.into_inner().clone_from(&opened),
        }
        opened
    }

    /// Brings the slot of pack `b` up to date with the pack `root` holds:
    /// one `stat`; the new tail is read, or the pack again if it was
    /// replaced. Writes nothing: a symlink or directory in the pack's place
    /// counts as no pack.
    fn sync(root: &Dir, b: u8, slot: &mut Option<Open>) -> io::Result<()> {
        let rel = pack_rel(b);
        let info = match root.stat(&rel) {
            Ok(i) if i.kind == Kind::File => i,
            Ok(_) => {
                *slot = None;
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound || is_not_followed(&e) => {
                *slot = None;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if let Some(open) = slot.as_mut() {
            if open.dev == info.dev && open.ino == info.ino {
                return catch_up(open, info.len);
            }
        }
        *slot = match root.open_file(&rel, false) {
            Ok(f) => Some(open_at(f)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound || is_not_followed(&e) => None,
            Err(e) => return Err(e),
        };
        Ok(())
    }

    /// The record of `id` and its offset, if packed: what was kept of it
    /// (checked before), or its bytes read from the pack (always, with
    /// `fresh`). No system call when the pack's counter has not moved since
    /// the map was caught up and the record was kept.
    fn read(&self, root: &Arc<Dir>, id: &Id, fresh: bool) -> io::Result<Option<(Read, u64)>> {
        let Some((slot, s)) = self.live(root, id)? else {
            return Ok(None);
        };
        let Some(open) = slot.open.as_ref() else {
            return Ok(None);
        };
        if let Some(kept) = open.records.get(&s.offset).filter(|_| !fresh) {
            return Ok(Some((Read::Kept(kept.clone()), s.offset)));
        }
        let mut buf = vec![0u8; s.len as usize];
        match open.file.read_exact_at(&mut buf, s.offset) {
            Ok(()) => {}
            // A pack cut since it was mapped: no whole record, which the
            // caller's checks make a corrupt miss (never an error).
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => buf.clear(),
            Err(e) => return Err(e),
        }
        Ok(Some((Read::Fresh(buf), s.offset)))
    }

    /// The slot of `id`'s pack, caught up if its counter moved, and where
    /// `id`'s live record lies in it; `None` if `id` is not packed.
    fn live(
        &self,
        root: &Arc<Dir>,
        id: &Id,
    ) -> io::Result<Option<(MutexGuard<'_, Slot>, pack::Slot)>> {
        let b = id.1[0];
        let now = coarse_now();
        let generation = self
            .generations(root, false)
            .and_then(|g| g.load_linked(b, now));
        let mut slot = guard(&self.slots[usize::from(b)]);
        if !slot.is_current(generation, now) {
            Self::sync(root, b, &mut slot.open)?;
            slot.seen = generation.map(|g| (g, now));
        }
        let at = slot.open.as_ref().and_then(|o| o.map.live.get(id).copied());
        Ok(at.map(|s| (slot, s)))
    }

    /// Keeps the record of `id` read at `offset`, once checked, for the
    /// next hits (if it is still the live record there and room is left).
    fn keep(&self, id: &Id, offset: u64, record: &Kept) {
        let mut slot = guard(&self.slots[usize::from(id.1[0])]);
        let Some(open) = slot.open.as_mut() else {
            return;
        };
        let live = open.map.live.get(id).is_some_and(|s| s.offset == offset);
        if !live || open.records.contains_key(&offset) {
            return;
        }
        if open.records_bytes + record.bytes.len() > RECORDS_KEPT_MAX {
            open.records.clear();
            open.records_bytes = 0;
        }
        open.records_bytes += record.bytes.len();
        open.records.insert(offset, record.clone());
    }

    /// Runs `work` holding pack `b`'s `flock` (made if missing), once the
    /// pack's name is checked to still name the locked file and this
    /// process's map of it is caught up.
    fn locked<T>(
        &self,
        store: &FsStore,
        b: u8,
        checked: bool,
        work: impl FnOnce(Locked<'_>) -> Result<T>,
    ) -> Result<T> {
        // The caller made the layout (a publish, which has just checked the
        // root: `checked`) or only removes (the root is checked here);
        // `packs/` is made if missing (by the first packed publish, so its
        // making is no news).
        let root = if checked {
            store.handle()
        } else {
            store.live_root()?
        };
        let dir_path = store.root.join(PACKS_DIR);
        let mut packs = self.packs_dir(store, &root, false)?;
        let name = pack_name(b);
        let path = dir_path.join(&name);
        let ioerr = |op: &'static str| {
            let path = path.clone();
            move |e| StoreError::io(op, path, e)
        };
        let generations = self.generations(&root, true);
        let mut slot = guard(&self.slots[usize::from(b)]);
        for attempt in 0..16 {
            // The descriptor this process already has, if opened for
            // writing (by an earlier append); else the pack opened afresh.
            let (seen, written_under) = (slot.seen, slot.written_under);
            let mut reopened = false;
            let open = match slot.open.take() {
                Some(o) if o.writable => o,
                kept => {
                    reopened = true;
                    let file = match packs.open_or_create_file(&name) {
                        Ok(f) => f,
                        Err(e) if is_not_followed(&e) || e.raw_os_error() == Some(libc::EISDIR) => {
                            remove_in_the_way(&packs, &name, &path, "a pack file")?;
                            continue;
                        }
                        // `packs/` deleted under the kept handle.
                        Err(e) if e.kind() == io::ErrorKind::NotFound && attempt == 0 => {
                            packs = self.packs_dir(store, &root, true)?;
                            continue;
                        }
                        Err(e) => return Err(StoreError::io("open", path, e)),
                    };
                    let i = info_of(&file).map_err(ioerr("stat"))?;
                    if i.kind != Kind::File || i.nlink > 1 {
                        // A FIFO, socket or device node (opened without
                        // blocking) is in the way, as a symlink is; so is a
                        // pack with other names (a hard link planted from
                        // outside the root), which an append would write
                        // through.
                        drop(file);
                        remove_in_the_way(&packs, &name, &path, "a pack file")?;
                        continue;
                    }
                    // The map of the same file, read through another
                    // descriptor, is kept.
                    let map = match kept {
                        Some(o) if o.dev == i.dev && o.ino == i.ino => {
                            (o.map, o.records, o.records_bytes)
                        }
                        _ => (PackMap::default(), HashMap::new(), 0),
                    };
                    Open {
                        file,
                        dev: i.dev,
                        ino: i.ino,
                        writable: true,
                        map: map.0,
                        records: map.1,
                        records_bytes: map.2,
                    }
                }
            };
            let open = slot.open.insert(open);
            lock::wait_exclusive(&open.file).map_err(ioerr("lock"))?;
            let held = Unlock(open.file.as_raw_fd());
            // Every writer bumps the pack's counter under this lock: if it
            // has not moved since this process last caught up with the
            // descriptor it holds (and not longer ago than `REVALIDATE`), the
            // pack is that file, as long as it was then; a publish's append
            // (`checked`) needs no look at its name or length. Compaction and
            // removals look (a compaction weighs the file's real length). A writer killed between its write and its
            // bump left bytes past that length: the append writes over them
            // (its caller never got an answer), and what is left of them past
            // the new record is a torn tail, cut by the next full look.
            let counter = generations.as_ref().and_then(|g| g.load(b));
            let page = generations.as_ref().map_or(0, |g| Arc::as_ptr(g) as usize);
            let same_page = page != 0 && written_under == page;
            let len =
                if checked && !reopened && same_page && is_current(seen, counter, coarse_now()) {
                    open.map.scanned
                } else {
                    // Replaced by a compaction (or removed) since it was opened.
                    let linked = match packs.stat(&name) {
                        Ok(i) => i.kind == Kind::File && i.dev == open.dev && i.ino == open.ino,
                        Err(e) if e.kind() == io::ErrorKind::NotFound || is_not_followed(&e) => {
                            false
                        }
                        Err(e) => return Err(StoreError::io("stat", path, e)),
                    };
                    if !linked {
                        drop(held);
                        slot.open = None;
                        if attempt == 0 {
                            packs = self.packs_dir(store, &root, true)?;
                        }
                        continue;
                    }
                    let len = info_of(&open.file).map_err(ioerr("stat"))?.len;
                    catch_up(open, len).map_err(ioerr("read"))?;
                    len
                };
            let mut changed = false;
            let out = work(Locked {
                len,
                open,
                packs: &packs,
                name: &name,
                path: &path,
                changed: &mut changed,
            });
            if changed {
                if let Some(g) = &generations {
                    g.bump(b);
                }
            }
            // Caught up under the lock, which every writer holds while it
            // changes the pack and bumps its counter: current at the counter
            // as it is now, read before the lock is let go (another writer
            // may append as soon as it is).
            let now = generations.as_ref().and_then(|g| g.load(b));
            drop(held);
            if slot.open.as_ref().is_some_and(|o| o.ino == 0) {
                // Replaced by a compaction: opened again at the next look.
                slot.open = None;
                slot.seen = None;
            } else if out.is_ok() {
                slot.seen = now.map(|g| (g, coarse_now()));
                slot.written_under = page;
            }
            return out;
        }
        Err(StoreError::io(
            "append",
            path,
            io::Error::other("the pack keeps being replaced"),
        ))
    }

    /// `packs/` beneath `root`, kept open per root (made if missing);
    /// `fresh` opens it again (it was found deleted under the kept handle).
    fn packs_dir(&self, store: &FsStore, root: &Arc<Dir>, fresh: bool) -> Result<Arc<Dir>> {
        let mut kept = guard(&self.packs_dir);
        if let Some((r, d)) = kept.as_ref() {
            if !fresh && Arc::ptr_eq(r, root) {
                return Ok(Arc::clone(d));
            }
        }
        let dir_path = store.root.join(PACKS_DIR);
        let Some(packs) = ensure_dir(root, PACKS_DIR, &dir_path, false)? else {
            return Err(StoreError::io(
                "open",
                &dir_path,
                io::Error::from(io::ErrorKind::NotFound),
            ));
        };
        let packs = Arc::new(packs);
        *kept = Some((Arc::clone(root), Arc::clone(&packs)));
        Ok(packs)
    }

    /// Appends what `build` makes of the pack's current map to pack `b`,
    /// under the pack's `flock`: the torn tail is cut first, the bytes go in
    /// one write. Returns what `build` returned besides the bytes.
    fn append<T>(
        &self,
        store: &FsStore,
        b: u8,
        checked: bool,
        build: impl FnOnce(&PackMap) -> (Vec<u8>, T),
    ) -> Result<T> {
        self.locked(store, b, checked, |l| {
            let ioerr = |op: &'static str| move |e| StoreError::io(op, l.path, e);
            let end = l.open.map.scanned;
            let (bytes, out) = build(&l.open.map);
            if bytes.is_empty() {
                return Ok(out);
            }
            *l.changed = true;
            if l.len > end {
                log::debug!(
                    "{}: cutting a torn tail of {} bytes",
                    l.path.display(),
                    l.len - end
                );
                l.open.file.set_len(end).map_err(ioerr("truncate"))?;
            }
            l.open
                .file
                .write_all_at(&bytes, end)
                .map_err(ioerr("append"))?;
            if store.durability == Durability::Synced {
                l.open.file.sync_data().map_err(ioerr("sync"))?;
            }
            l.open.map.feed(end, &bytes);
            Ok(out)
        })
    }

    /// Rewrites pack `b` with its live records only if its dead bytes (removed
    /// or replaced records, damage, a torn tail) exceed half of it, or if
    /// `damaged` and it holds damage: written under `tmp/`, synced, renamed
    /// over the pack, all under the pack's `flock`. Readers holding the old
    /// file keep reading it (records are immutable). Returns the damaged
    /// bytes dropped, if it was rewritten.
    fn compact(&self, store: &FsStore, b: u8, damaged: bool) -> Result<Option<u64>> {
        let tmp = store.layout()?.2;
        let tmp_path = store.root.join(super::layout::TMP_DIR);
        self.locked(store, b, false, |l| {
            let ioerr = |op: &'static str| move |e| StoreError::io(op, l.path, e);
            let map = &l.open.map;
            let dead = l.len.saturating_sub(map.live_bytes);
            let due = dead > l.len / 2 || (damaged && (map.damaged > 0 || l.len > map.scanned));
            if !due || l.len == 0 {
                return Ok(None);
            }
            let mut old = vec![0u8; map.scanned as usize];
            l.open
                .file
                .read_exact_at(&mut old, 0)
                .map_err(ioerr("read"))?;
            let mut slots: Vec<pack::Slot> = map.live.values().copied().collect();
            slots.sort_by_key(|s| s.offset);
            let mut new = Vec::with_capacity(map.live_bytes as usize);
            for s in &slots {
                let at = s.offset as usize;
                new.extend_from_slice(old.get(at..at + s.len as usize).unwrap_or_default());
            }
            let name = super::temp_name("pack");
            let shown = tmp_path.join(&name);
            let f = tmp
                .create_file(&name)
                .map_err(|e| StoreError::io("create", &shown, e))?;
            // Locked while written, so a sweep leaves it (`Temporary files`).
            let _ = lock::try_exclusive(&f);
            let written = f.write_all_at(&new, 0).and_then(|()| f.sync_data());
            let renamed = written.and_then(|()| tmp.rename(&name, l.packs, l.name));
            if let Err(e) = renamed {
                let _ = tmp.unlink(&name);
                if e.kind() == io::ErrorKind::NotFound {
                    // `tmp/` or `packs/` removed meanwhile (a clear, or by
                    // hand): the pack stays as it is, whole; nothing to do.
                    return Ok(None);
                }
                return Err(StoreError::io("compact", l.path, e));
            }
            let _ = l.packs.sync();
            lock::unlock(&f);
            let dropped = map.damaged + l.len.saturating_sub(map.scanned);
            if dropped > 0 {
                log::warn!(
                    "{}: {dropped} bytes of damaged or torn records dropped",
                    l.path.display()
                );
            }
            // Marks the slot for reopening.
            l.open.ino = 0;
            *l.changed = true;
            Ok(Some(dropped))
        })
    }

    /// Notes that this process recorded an access of `id` at `now`; true
    /// if the last one it recorded is older than `granularity`.
    fn access_due(&self, id: &Id, now: u64, granularity: u64) -> bool {
        let mut seen = guard(&self.accessed);
        if seen.len() >= ACCESSED_MAX {
            seen.clear();
        }
        match seen.get(id) {
            Some(&last) if now.saturating_sub(last) < granularity => false,
            _ => {
                seen.insert(*id, now);
                true
            }
        }
    }
}

/// Releases a pack's `flock` taken on the descriptor kept in its slot
/// (which stays open for the next append).
struct Unlock(std::os::fd::RawFd);

impl Drop for Unlock {
    fn drop(&mut self) {
        // SAFETY: the descriptor is owned by the slot, which outlives this
        // guard (the slot's mutex is held meanwhile).
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.0) };
        let _ = rustix::fs::flock(fd, rustix::fs::FlockOperation::Unlock);
    }
}

/// A pack held under its `flock`, for [`Packs::locked`].
struct Locked<'a> {
    /// The pack's length when locked.
    len: u64,
    open: &'a mut Open,
    packs: &'a Dir,
    name: &'a str,
    path: &'a std::path::Path,
    /// Set by a change of the pack, which bumps its generation counter.
    changed: &'a mut bool,
}

impl FsStore {
    /// Compacts every pack whose dead bytes exceed half of it (and, with
    /// `damaged`, every pack holding damage); returns how many were
    /// rewritten.
    pub(super) fn compact_packs(&self, damaged: bool) -> Result<usize> {
        let mut n = 0;
        for b in 0..=u8::MAX {
            if self.pack_exists(b) && self.packs.compact(self, b, damaged)?.is_some() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Publishes a small entry as a record of its pack; `Ok(true)` if it
    /// was already packed.
    pub(super) fn publish_packed(&self, id: Id, meta_bytes: &[u8], created: u64) -> Result<bool> {
        let record = pack::encode(PackOp::Put, &id.0, &id.1, meta_bytes);
        let len = record.len() as u64;
        // The publish checked the root (its layout) just before.
        let present = self.packs.append(self, id.1[0], true, |map| {
            if map.live.contains_key(&id) {
                (Vec::new(), true)
            } else {
                (record, false)
            }
        })?;
        if !present {
            // A fresh entry counts as used at its creation (granularity 0:
            // always recorded).
            self.packs.access_due(&id, created, 0);
            self.index_append(&[Record::new(Op::Add, id, len, created)]);
        }
        Ok(present)
    }

    /// Looks a packed entry up; `None` if it is not packed.
    pub(super) fn get_packed(
        &self,
        root: &Arc<Dir>,
        id: &Id,
        verify: bool,
        touch: bool,
        repair: bool,
    ) -> Result<Option<Lookup>> {
        let path = || self.root.join(pack_rel(id.1[0]));
        // A verification walk (verified, no access recorded) reads the
        // record from the pack and checks its own checksum too, so that it
        // sees damage done after this process kept the record.
        let walk = verify && !touch;
        let Some((read, offset)) = self
            .packs
            .read(root, id, walk)
            .map_err(|e| StoreError::io("read", path(), e))?
        else {
            return Ok(None);
        };
        let buf = match read {
            Read::Fresh(buf) => buf,
            Read::Kept(k) => return Ok(Some(self.packed_found(id, k, verify, touch))),
        };
        let location = format!("{}@{offset}", path().display());
        let corrupt = |reason: String| -> Result<Option<Lookup>> {
            if repair {
                log::warn!("{location}: corrupt packed entry, dropped: {reason}");
                let _ = self.remove_packed(&[*id]);
            }
            Ok(Some(Lookup::Corrupt(Corruption {
                location: location.clone(),
                reason,
            })))
        };
        // The scan checked the record's checksum when it mapped it; the
        // meta checksum below covers the meta bytes and the payload again.
        let rec = if walk {
            pack::decode(&buf).ok_or("the pack record's checksum does not match")
        } else {
            pack::parse(&buf).ok_or("the pack record is not whole")
        };
        let rec = match rec {
            Ok(rec) => rec,
            Err(reason) => return corrupt(reason.into()),
        };
        if rec.op != PackOp::Put || (rec.ns, rec.key) != *id {
            return corrupt("the pack record is not this entry's".into());
        }
        let decoded = match meta::decode(rec.meta) {
            Ok(d) => d,
            Err(reason) => return corrupt(reason),
        };
        let Some(range) = decoded.inline else {
            return corrupt("a packed entry without an inline payload".into());
        };
        let range = range.start + pack::HEAD..range.end + pack::HEAD;
        if meta::payload_checksum(buf.get(range.clone()).unwrap_or_default())
            != decoded.meta.checksum
        {
            return corrupt("inline payload checksum does not match".into());
        }
        // Checked: the next hits need not read or decode it again.
        let kept = Kept {
            bytes: buf,
            meta: decoded.meta,
            range,
            location,
        };
        self.packs.keep(id, offset, &kept);
        Ok(Some(self.packed_found(id, kept, verify, touch)))
    }

    /// Where `id`'s live record lies in its pack, as a lookup sees it;
    /// `None` if it is not packed.
    pub(super) fn packed_slot(&self, root: &Arc<Dir>, id: &Id) -> Result<Option<pack::Slot>> {
        let live = self
            .packs
            .live(root, id)
            .map_err(|e| StoreError::io("read", self.root.join(pack_rel(id.1[0])), e))?;
        Ok(live.map(|(_, s)| s))
    }

    /// Records an access of `id` now if it is packed (an explicit touch,
    /// so no granularity applies); false if it is not packed.
    pub(super) fn touch_packed(&self, root: &Arc<Dir>, id: &Id) -> Result<bool> {
        let present = self.packed_slot(root, id)?.is_some();
        if present {
            let now = meta::to_nanos(SystemTime::now());
            self.packs.access_due(id, now, 0);
            self.index_append(&[Record::new(Op::Access, *id, 0, now)]);
        }
        Ok(present)
    }

    /// The lookup of a packed entry whose record was checked.
    fn packed_found(&self, id: &Id, kept: Kept, verify: bool, touch: bool) -> Lookup {
        let Kept {
            bytes: buf,
            meta: mut entry_meta,
            range,
            location,
        } = kept;
        let created = meta::to_nanos(entry_meta.created);
        let last = guard(&self.packs.accessed)
            .get(id)
            .copied()
            .unwrap_or(created);
        entry_meta.last_access = meta::from_nanos(last.max(created));
        if touch {
            let now = coarse_wall_now();
            let granularity = u64::try_from(self.access_granularity.as_nanos()).unwrap_or(u64::MAX);
            if self.packs.access_due(id, now, granularity) {
                self.index_append(&[Record::new(Op::Access, *id, 0, now)]);
                entry_meta.last_access = meta::from_nanos(now);
            }
        }
        let entry = Entry::new(
            entry_meta,
            Payload::Memory { buf, range },
            None,
            location,
            false,
        );
        // Every kept record had its payload checked before it was kept (its
        // bytes do not change in memory); an unverified lookup reports it
        // unverified, as others do.
        Lookup::Found(Box::new(if verify { entry.checked() } else { entry }))
    }

    /// Appends `remove` records for those of `ids` that are packed; returns
    /// the bytes their records held.
    pub(super) fn remove_packed(&self, ids: &[Id]) -> Result<u64> {
        let mut by_pack: HashMap<u8, Vec<Id>> = HashMap::new();
        for id in ids {
            by_pack.entry(id.1[0]).or_default().push(*id);
        }
        let mut freed = 0;
        for (b, ids) in by_pack {
            if !self.pack_exists(b) {
                continue;
            }
            freed += self.packs.append(self, b, false, |map| {
                let mut bytes = Vec::new();
                let mut freed = 0;
                for id in &ids {
                    if let Some(s) = map.live.get(id) {
                        freed += u64::from(s.len);
                        bytes.extend(pack::encode(PackOp::Remove, &id.0, &id.1, &[]));
                    }
                }
                (bytes, freed)
            })?;
        }
        Ok(freed)
    }

    /// Appends a `remove namespace` record to every pack that holds entries
    /// of `ns`; returns the bytes their records held.
    pub(super) fn remove_packed_ns(&self, ns: &NsId) -> Result<u64> {
        let mut freed = 0;
        for b in 0..=u8::MAX {
            if !self.pack_exists(b) {
                continue;
            }
            freed += self.packs.append(self, b, false, |map| {
                let held: u64 = map
                    .live
                    .iter()
                    .filter(|((n, _), _)| n == ns)
                    .map(|(_, s)| u64::from(s.len))
                    .sum();
                if held == 0 {
                    return (Vec::new(), 0);
                }
                (pack::encode(PackOp::RemoveNs, ns, &[0; 32], &[]), held)
            })?;
        }
        Ok(freed)
    }

    fn pack_exists(&self, b: u8) -> bool {
        self.handle()
            .stat(pack_rel(b))
            .is_ok_and(|i| i.kind == Kind::File)
    }

    /// The packed entries of `namespace`, for listing (one read per pack).
    pub(super) fn packed_entries(&self, namespace: &str) -> Result<Vec<EntryInfo>> {
        let ns = index::ns_id(namespace);
        let root = self.handle();
        let mut out = Vec::new();
        for b in 0..=u8::MAX {
            let path = self.root.join(pack_rel(b));
            let ioerr = |e| StoreError::io("read", &path, e);
            let mut slot = guard(&self.packs.slots[usize::from(b)]);
            Packs::sync(&root, b, &mut slot.open).map_err(ioerr)?;
            slot.seen = None;
            let Some(open) = slot.open.as_ref() else {
                continue;
            };
            let mut mine: Vec<(Id, pack::Slot)> = open
                .map
                .live
                .iter()
                .filter(|((n, _), _)| *n == ns)
                .map(|(id, s)| (*id, *s))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let mut buf = vec![0u8; open.map.scanned as usize];
            open.file.read_exact_at(&mut buf, 0).map_err(ioerr)?;
            drop(slot);
            mine.sort_by_key(|(_, s)| s.offset);
            for (id, s) in mine {
                let bytes = buf
                    .get(s.offset as usize..(s.offset + u64::from(s.len)) as usize)
                    .unwrap_or_default();
                let meta: std::result::Result<EntryMeta, String> = pack::decode(bytes)
                    .ok_or_else(|| "the pack record's checksum does not match".to_string())
                    .and_then(|r| meta::decode(r.meta).map(|d| d.meta));
                let last_access = meta.as_ref().map_or(SystemTime::UNIX_EPOCH, |m| {
                    let seen = guard(&self.packs.accessed).get(&id).copied();
                    seen.map_or(m.created, meta::from_nanos).max(m.created)
                });
                let meta = meta.map(|mut m| {
                    m.last_access = last_access;
                    m
                });
                out.push(EntryInfo {
                    namespace: namespace.to_string(),
                    key: index::key_hex(&id.1),
                    stored_bytes: u64::from(s.len),
                    last_access,
                    meta,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a pack's bytes map to when read by [`catch_up`], a chunk at a
    /// time, and when fed whole at once.
    fn both_maps(bytes: &[u8]) -> (PackMap, PackMap) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00.pack");
        std::fs::write(&path, bytes).unwrap();
        let chunked = open_at(File::open(&path).unwrap()).unwrap().map;
        let mut whole = PackMap::default();
        whole.feed(0, bytes);
        (chunked, whole)
    }

    /// A pack of parts `(record, length, fill)`: a record (meta of
    /// `length` bytes of `fill`, key numbered by its place) or a run of
    /// `length` damaged bytes of `fill`, some longer than a chunk.
    fn pack_of(parts: &[(bool, usize, u8)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (i, &(record, len, fill)) in parts.iter().enumerate() {
            if record {
                let mut key = [0u8; 32];
                key[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let meta = vec![fill; len % 60_000];
                b.extend(pack::encode(PackOp::Put, &[7; 16], &key, &meta));
            } else {
                b.extend(std::iter::repeat_n(fill, len));
            }
        }
        b
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Reading a pack a chunk at a time maps it exactly as one read of
        /// it whole would: the same live records, scanned end and damage,
        /// whatever straddles a chunk's end.
        #[test]
        fn a_chunked_catch_up_maps_a_pack_as_a_whole_read(
            parts in proptest::collection::vec(
                (any::<bool>(), prop_oneof![0usize..70_000, 3_000_000usize..9_000_000], any::<u8>()),
                1..12,
            )
        ) {
            let bytes = pack_of(&parts);
            let (chunked, whole) = both_maps(&bytes);
            prop_assert_eq!(chunked.scanned, whole.scanned);
            prop_assert_eq!(chunked.damaged, whole.damaged);
            prop_assert_eq!(chunked.live_bytes, whole.live_bytes);
            prop_assert_eq!(chunked.live, whole.live);
        }
    }

    /// A record that a chunk holding no record cuts at its end, and one
    /// cut by the end of a chunk of records, are both read whole.
    #[test]
    fn records_cut_by_a_chunk_end_are_read_whole() {
        for damage in [
            CATCH_UP_CHUNK - 100,
            CATCH_UP_CHUNK - 5_000,
            2 * CATCH_UP_CHUNK - 700,
        ] {
            let bytes = pack_of(&[
                (true, 10, 1),
                (false, damage, 0),
                (true, 50_000, 3),
                (true, 9, 4),
            ]);
            let (chunked, whole) = both_maps(&bytes);
            assert_eq!(whole.live.len(), 3);
            assert_eq!(chunked.live, whole.live, "damage {damage}");
            assert_eq!(chunked.damaged, whole.damaged, "damage {damage}");
        }
        let many: Vec<_> = (0..200).map(|i| (true, 40_000 + i, i as u8)).collect();
        let (chunked, whole) = both_maps(&pack_of(&many));
        assert_eq!(chunked.live, whole.live);
        assert_eq!(chunked.scanned, whole.scanned);
    }

    /// A short torn tail is read again at each look: another writer may cut
    /// it and append a record of the very same length.
    #[test]
    fn a_short_tail_is_read_again_at_the_same_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00.pack");
        let records = pack_of(&[(true, 100, 1), (true, 200, 2)]);
        let end = records.len() as u64;
        let next = pack_of(&[(true, 0, 0), (true, 0, 0), (true, 150, 3)]);
        let next = &next[next.len() - pack::OVERHEAD - 150..];
        let mut torn = records.clone();
        torn.extend(&next[..next.len() - 1]);
        torn.push(0xEE);
        std::fs::write(&path, &torn).unwrap();
        let len = torn.len() as u64;
        let mut open = open_at(File::open(&path).unwrap()).unwrap();
        assert_eq!(open.map.scanned, end);
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(next, end).unwrap();
        assert_eq!(f.metadata().unwrap().len(), len);
        catch_up(&mut open, len).unwrap();
        assert_eq!(open.map.scanned, len);
    }

    /// A pack lock, `index/lock` or a namespace directory's lock that
    /// another process never lets go (here another open of the same file)
    /// costs a publish at most the brief wait (300 ms in these tests, 30 s
    /// in a build): a packed publish fails naming the pack, one that only
    /// cannot append to the index succeeds, a directory publish fails
    /// naming the namespace directory; none hangs.
    #[test]
    fn a_brief_lock_held_forever_is_waited_for_then_given_up() {
        use crate::meta::NewEntry;
        use crate::policy::StoreExt;
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(FsStore::create(dir.path()).unwrap());
        let key = |i: u8| format!("ab{i:062x}");
        s.publish_bytes("ns", &key(1), &NewEntry::default(), b"one")
            .unwrap();
        let hold = |rel: &str| {
            let f = File::open(dir.path().join(rel)).unwrap();
            fs2::FileExt::lock_exclusive(&f).unwrap();
            f
        };
        // Published on another thread, watched: a blocking wait would hang
        // the test instead of failing it.
        let publish = |i: u8, len: usize| -> crate::Result<()> {
            let (s, k) = (Arc::clone(&s), key(i));
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let r = s.publish_bytes("ns", &k, &NewEntry::default(), &vec![i; len]);
                let _ = tx.send(r.map(|_| ()));
            });
            rx.recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("publish {i} still waits after 10 s"))
        };
        let pack = hold("packs/ab.pack");
        let e = publish(2, 3).unwrap_err();
        assert!(
            e.to_string().contains("ab.pack") && e.to_string().contains("fuser"),
            "{e}"
        );
        drop(pack);
        let index = hold("index/lock");
        publish(3, 3).unwrap();
        drop(index);
        assert_eq!(s.get_bytes("ns", &key(3)).unwrap().unwrap(), [3u8; 3]);
        let enc = crate::names::encode_namespace("ns").unwrap();
        let ns = hold(&format!("ns/{enc}"));
        let e = publish(4, 100_000).unwrap_err();
        assert!(e.to_string().contains("fuser"), "{e}");
        drop(ns);
    }

    /// Past `DAMAGE_RUN_MAX` bytes without a record the rest is a tail:
    /// holes are not read through, and are not read again at the same
    /// length.
    #[test]
    fn a_long_run_without_a_record_ends_the_catch_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00.pack");
        let mut bytes = pack_of(&[(true, 100, 1), (true, 200, 2)]);
        let end = bytes.len() as u64;
        bytes.extend(pack_of(&[(false, 0, 0)]));
        std::fs::write(&path, &bytes).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(1 << 40).unwrap();
        let mut open = open_at(File::open(&path).unwrap()).unwrap();
        assert_eq!(open.map.scanned, end);
        assert_eq!(open.map.live.len(), 2);
        assert_eq!(open.map.tail_at, Some(1 << 40));
        catch_up(&mut open, 1 << 40).unwrap();
        assert_eq!(open.map.scanned, end);
        // An append cuts the tail and writes past the records; another
        // writer's records then bring the file back to the very length the
        // tail was seen at: they are read, not skipped for that length.
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(end).unwrap();
        let ours = pack_of(&[(true, 300, 3)]);
        f.write_all_at(&ours, end).unwrap();
        open.map.feed(end, &ours);
        let theirs = pack_of(&[(false, 0, 0), (true, 400, 4)]);
        f.write_all_at(&theirs, end + ours.len() as u64).unwrap();
        f.set_len(1 << 40).unwrap();
        catch_up(&mut open, 1 << 40).unwrap();
        assert_eq!(open.map.scanned, end + (ours.len() + theirs.len()) as u64);
    }
}
