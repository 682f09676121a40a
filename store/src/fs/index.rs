//! The index: a ledger of fixed-size records under `index/` that keeps every
//! entry's size and last access, so that a size policy costs O(1) per
//! publish and eviction reads no meta file to find what to remove
//! (`LAYOUT.md`, "Index").
//!
//! Every append, compaction and rebuild happens under an exclusive `flock`
//! on `index/lock`, so writers never interleave. A record carries its own
//! checksum; a torn tail (a writer killed mid-write, a crash) is cut off by
//! the next writer, under the lock, before it appends. Records are set
//! operations (add, remove, access), so replaying a duplicate is harmless.
//! A process that applies a policy keeps the table in memory and reads only
//! the records appended since its last look.

use super::layout::{ensure_dir, remove_in_the_way, INDEX_DIR};
use super::{temp_name, FsStore};
use crate::api::{EntryInfo, Store};
use crate::beneath::{info_of, Dir, Info, Kind};
use crate::checksum::xxh3_64;
use crate::lock;
use crate::meta::to_nanos;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex, MutexGuard};

/// The ledger's file name in `index/`.
pub(super) const LEDGER: &str = "ledger";
/// The lock every writer of the ledger holds.
const LOCK: &str = "lock";
/// Prefix of a ledger being written by a rebuild or compaction.
const NEW_PREFIX: &str = "ledger.new-";
/// Size of one record.
pub(super) const REC: usize = 80;
const MAGIC: [u8; 4] = *b"JCIX";
/// Compaction runs when the ledger holds more than twice the live records
/// plus this many.
const COMPACT_SLACK: u64 = 4096;
const READ_CHUNK: usize = REC * 8192;
/// How far back from its end a ledger is searched for its last whole
/// record (5 MiB). A torn tail is what one killed append left (a few
/// records), or blocks of zeros after a crash.
const TAIL_SCAN_MAX: u64 = REC as u64 * 65536;
/// A writer without a table loads one (to compact) past this ledger size.
const LOAD_TO_COMPACT: u64 = 64 << 20;

/// What a record does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// The first record of a ledger: it holds every entry from the start.
    Header = 0,
    /// An entry was published (`time`: its creation).
    Add = 1,
    /// An entry was removed.
    Remove = 2,
    /// An entry was used (`time`: then); recorded coarsely.
    Access = 3,
    /// A namespace was removed with all its entries (`key` is zero).
    RemoveNs = 4,
}

/// The first 16 bytes of SHA-256 of a namespace's UTF-8.
pub(super) type NsId = [u8; 16];
/// A key's 32 bytes.
pub(super) type KeyBytes = [u8; 32];
/// An entry in the index.
pub(super) type Id = (NsId, KeyBytes);

/// One record of the ledger (80 bytes on disk, little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) op: Op,
    pub(super) bytes: u64,
    pub(super) time: u64,
    pub(super) ns: NsId,
    pub(super) key: KeyBytes,
}

impl Record {
    pub(super) fn encode(&self) -> [u8; REC] {
        let mut b = [0u8; REC];
        b[0..4].copy_from_slice(&MAGIC);
        b[4] = self.op as u8;
        b[8..16].copy_from_slice(&self.bytes.to_le_bytes());
        b[16..24].copy_from_slice(&self.time.to_le_bytes());
        b[24..40].copy_from_slice(&self.ns);
        b[40..72].copy_from_slice(&self.key);
        let sum = xxh3_64(&b[..72]);
        b[72..80].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// The record in `b` (exactly [`REC`] bytes), if it is whole and valid.
    pub(super) fn decode(b: &[u8]) -> Option<Record> {
        if b.len() != REC || b.get(0..4)? != MAGIC || b.get(5..8)? != [0, 0, 0] {
            return None;
        }
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
        };
        if u64_at(72)? != xxh3_64(b.get(..72)?) {
            return None;
        }
        let op = match b[4] {
            0 => Op::Header,
            1 => Op::Add,
            2 => Op::Remove,
            3 => Op::Access,
            4 => Op::RemoveNs,
            _ => return None,
        };
        Some(Record {
            op,
            bytes: u64_at(8)?,
            time: u64_at(16)?,
            ns: b.get(24..40)?.try_into().ok()?,
            key: b.get(40..72)?.try_into().ok()?,
        })
    }

    pub(super) fn new(op: Op, id: Id, bytes: u64, time: u64) -> Record {
        Record {
            op,
            bytes,
            time,
            ns: id.0,
            key: id.1,
        }
    }
}

/// The index id of a namespace.
pub(super) fn ns_id(namespace: &str) -> NsId {
    thread_local! {
        /// The last namespace this thread asked for, and its id: lookups
        /// come in runs of one namespace (one cached function).
        static LAST: std::cell::RefCell<(String, NsId)> =
            const { std::cell::RefCell::new((String::new(), [0; 16])) };
    }
    let cached = LAST.with(|l| {
        let l = l.try_borrow().ok()?;
        (!l.0.is_empty() && l.0 == namespace).then_some(l.1)
    });
    if let Some(id) = cached {
        return id;
    }
    let d = Sha256::digest(namespace.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    LAST.with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.0.clear();
            l.0.push_str(namespace);
            l.1 = id;
        }
    });
    id
}

/// The bytes of a valid key (64 lowercase hex digits).
pub(super) fn key_bytes(key: &str) -> Option<KeyBytes> {
    let hex = key.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = nib(hex[2 * i])? << 4 | nib(hex[2 * i + 1])?;
    }
    Some(out)
}

/// A key's 64 lowercase hex digits.
pub(super) fn key_hex(key: &KeyBytes) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in key {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// The id of an entry, if its key is valid.
pub(super) fn id_of(namespace: &str, key: &str) -> Option<Id> {
    Some((ns_id(namespace), key_bytes(key)?))
}

/// An entry as the index knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Known {
    pub(super) bytes: u64,
    /// Last access (or creation), nanoseconds since the epoch.
    pub(super) access: u64,
}

/// The entries of the store with their sizes, in access order.
#[derive(Debug, Default)]
pub(super) struct Table {
    map: HashMap<Id, Known>,
    order: BTreeSet<(u64, Id)>,
    bytes: u64,
    /// Records read (the ledger's length in records).
    records: u64,
}

impl Table {
    pub(super) fn apply(&mut self, r: &Record) {
        self.records += 1;
        let id = (r.ns, r.key);
        match r.op {
            Op::Header => {}
            Op::Add => {
                self.drop_id(&id);
                self.insert(
                    id,
                    Known {
                        bytes: r.bytes,
                        access: r.time,
                    },
                );
            }
            Op::Remove => self.drop_id(&id),
            Op::Access => {
                if let Some(k) = self.map.get(&id).copied() {
                    if r.time > k.access {
                        self.drop_id(&id);
                        self.insert(
                            id,
                            Known {
                                bytes: k.bytes,
                                access: r.time,
                            },
                        );
                    }
                }
            }
            Op::RemoveNs => {
                let gone: Vec<Id> = self.map.keys().filter(|k| k.0 == r.ns).copied().collect();
                for id in gone {
                    self.drop_id(&id);
                }
            }
        }
    }

    fn insert(&mut self, id: Id, k: Known) {
        self.bytes = self.bytes.saturating_add(k.bytes);
        self.order.insert((k.access, id));
        self.map.insert(id, k);
    }

    fn drop_id(&mut self, id: &Id) {
        if let Some(k) = self.map.remove(id) {
            self.bytes = self.bytes.saturating_sub(k.bytes);
            self.order.remove(&(k.access, *id));
        }
    }

    /// Entries in the index.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// Bytes in all entries.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The least recently used entry after `after` (in access order).
    pub(super) fn next_after(&self, after: Option<&(u64, Id)>) -> Option<(u64, Id, Known)> {
        let mut it = match after {
            Some(a) => self
                .order
                .range((std::ops::Bound::Excluded(*a), std::ops::Bound::Unbounded)),
            None => self.order.range(..),
        };
        let (access, id) = *it.next()?;
        let k = *self.map.get(&id)?;
        Some((access, id, k))
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity((self.map.len() + 1) * REC);
        out.extend_from_slice(&header().encode());
        for (access, id) in &self.order {
            let bytes = self.map.get(id).map_or(0, |k| k.bytes);
            out.extend_from_slice(&Record::new(Op::Add, *id, bytes, *access).encode());
        }
        out
    }
}

fn header() -> Record {
    Record {
        op: Op::Header,
        bytes: 0,
        time: to_nanos(std::time::SystemTime::now()),
        ns: [0; 16],
        key: [0; 32],
    }
}

/// What a process knows of the ledger.
#[derive(Debug, Default)]
pub(super) struct IndexState {
    /// `index/` beneath the root it was opened in (kept open: one path
    /// walk per handle, not per append).
    dir: Option<(Arc<Dir>, Arc<Dir>)>,
    /// `index/lock`, kept open, with what it was when opened.
    lock: Option<(File, Info)>,
    ledger: Option<(File, Info)>,
    /// A length of the ledger this process found or left valid (whole
    /// records, a header): a ledger still that long needs no tail check.
    valid: u64,
    /// How far this process has read the ledger into `table`.
    offset: u64,
    table: Option<Table>,
}

/// The index of one `FsStore` handle.
#[derive(Debug, Default)]
pub(super) struct Index {
    state: Mutex<IndexState>,
}

/// The ledger, locked: what a caller may do while holding the index lock.
pub(super) struct Locked<'a> {
    state: MutexGuard<'a, IndexState>,
    idx: Arc<Dir>,
    /// The ledger's length as found when the lock was taken, for the first
    /// look at it (nothing else writes it meanwhile).
    ledger_seen: Option<u64>,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // The cached descriptor of `index/lock` holds the lock.
        if let Some((f, _)) = self.state.lock.as_ref() {
            lock::unlock(f);
        }
    }
}

fn bad_data(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Cuts a torn or damaged tail off the ledger; returns its valid length.
/// A ledger without a valid header comes to 0 (it must be rebuilt).
fn fix_tail(file: &File, len: u64) -> io::Result<u64> {
    let end = len - len % REC as u64;
    // Searched backwards in chunks, no further than TAIL_SCAN_MAX: past
    // that, the tail is damage, not a torn write (a file extended by a
    // terabyte of holes would otherwise be read through), and the ledger is
    // cut to nothing and rebuilt from the entries.
    let floor = end.saturating_sub(TAIL_SCAN_MAX);
    // The usual tail (another process's appends, whole) is found in the
    // first small read; chunks grow from there.
    let mut valid = 0;
    let mut hi = end;
    let mut step = REC * 64;
    let mut buf = Vec::new();
    'scan: while hi > floor {
        let lo = hi.saturating_sub(step as u64).max(floor);
        buf.resize((hi - lo) as usize, 0);
        let chunk = buf.as_mut_slice();
        file.read_exact_at(chunk, lo)?;
        step = (step * 2).min(READ_CHUNK);
        for (i, rec) in chunk.chunks_exact(REC).enumerate().rev() {
            if Record::decode(rec).is_some() {
                valid = lo + ((i + 1) * REC) as u64;
                break 'scan;
            }
        }
        hi = lo;
    }
    let mut head = [0u8; REC];
    if valid >= REC as u64 {
        file.read_exact_at(&mut head, 0)?;
        if Record::decode(&head).is_none_or(|r| r.op != Op::Header) {
            valid = 0;
        }
    }
    if valid != len {
        log::warn!(
            "index/{LEDGER}: cut {} bytes of a torn or damaged tail",
            len - valid
        );
        file.set_len(valid)?;
    }
    Ok(valid)
}

/// Applies the records of `file` from `from` to `to` to `table`; fails on
/// a damaged record (the ledger is then rebuilt).
fn read_into(file: &File, from: u64, to: u64, table: &mut Table) -> io::Result<()> {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut at = from;
    while at < to {
        let n = ((to - at) as usize).min(READ_CHUNK);
        let chunk = buf.get_mut(..n).ok_or_else(|| bad_data("chunk"))?;
        file.read_exact_at(chunk, at)?;
        for rec in chunk.chunks_exact(REC) {
            let r = Record::decode(rec).ok_or_else(|| bad_data("a damaged record"))?;
            table.apply(&r);
        }
        at += n as u64;
    }
    Ok(())
}

impl Locked<'_> {
    /// The ledger's valid length, or `None` if there is no usable ledger.
    fn ledger_len(&mut self) -> io::Result<Option<u64>> {
        let Some((file, _)) = self.state.ledger.as_ref() else {
            return Ok(None);
        };
        let known = self.state.valid;
        let len = match self.ledger_seen.take() {
            Some(len) => len,
            None => info_of(file)?.len,
        };
        let len = match len {
            len if len == known && len > 0 => len,
            len => fix_tail(file, len)?,
        };
        self.state.valid = len;
        Ok((len > 0).then_some(len))
    }

    /// Appends records (nothing if there is no ledger: the next load
    /// rebuilds it from the entries). Keeps a loaded table current.
    pub(super) fn append(&mut self, records: &[Record]) -> io::Result<()> {
        let Some(len) = self.ledger_len()? else {
            return Ok(());
        };
        self.catch_up(len)?;
        let mut buf = Vec::with_capacity(records.len() * REC);
        for r in records {
            buf.extend_from_slice(&r.encode());
        }
        if let Some((file, _)) = self.state.ledger.as_ref() {
            file.write_all_at(&buf, len)?;
            self.state.valid = len + buf.len() as u64;
        }
        if let Some(t) = self.state.table.as_mut() {
            for r in records {
                t.apply(r);
            }
            self.state.offset = len + buf.len() as u64;
        } else if len > LOAD_TO_COMPACT {
            // Nobody may ever load the table (no policy, no gc): a large
            // ledger is loaded by its next writer, which compacts it.
            let mut t = Table::default();
            let end = len + buf.len() as u64;
            if let Some((f, _)) = self.state.ledger.as_ref() {
                read_into(f, 0, end, &mut t)?;
            }
            self.state.table = Some(t);
            self.state.offset = end;
        }
        self.compact_if_needed()
    }

    /// Reads what others appended since this process last looked.
    fn catch_up(&mut self, len: u64) -> io::Result<()> {
        let state = &mut *self.state;
        if let (Some(t), Some((file, _))) = (state.table.as_mut(), state.ledger.as_ref()) {
            if state.offset < len {
                read_into(file, state.offset, len, t)?;
            }
            state.offset = len;
        }
        Ok(())
    }

    /// The table, current, loaded or rebuilt from the entries if needed.
    pub(super) fn table(&mut self, store: &FsStore) -> io::Result<&Table> {
        let len = self.ledger_len()?;
        let loaded = match len {
            Some(len) if self.state.table.is_some() => self.catch_up(len).is_ok(),
            Some(len) => {
                let mut t = Table::default();
                let read = self
                    .state
                    .ledger
                    .as_ref()
                    .map(|(f, _)| read_into(f, 0, len, &mut t));
                if let Some(Ok(())) = read {
                    self.state.table = Some(t);
                    self.state.offset = len;
                    true
                } else {
                    false
                }
            }
            None => false,
        };
        if !loaded {
            self.rebuild(store)?;
        }
        self.state
            .table
            .as_ref()
            .ok_or_else(|| bad_data("the index could not be loaded"))
    }

    /// Builds the ledger again from the entries (reading every meta file).
    pub(super) fn rebuild(&mut self, store: &FsStore) -> io::Result<()> {
        let entries = store
            .all_entries()
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.rebuild_from(&entries)
    }

    /// Builds the ledger again from a listing of every entry.
    pub(super) fn rebuild_from(&mut self, entries: &[EntryInfo]) -> io::Result<()> {
        let mut t = Table::default();
        t.apply(&header());
        for e in entries {
            if let Some(id) = id_of(&e.namespace, &e.key) {
                let r = Record::new(Op::Add, id, e.stored_bytes, to_nanos(e.last_access));
                t.apply(&r);
            }
        }
        self.install(t)
    }

    /// Writes `t` as the new ledger (through a temporary name and a
    /// rename) and takes it as this process's table.
    fn install(&mut self, mut t: Table) -> io::Result<()> {
        let bytes = t.snapshot();
        t.records = (bytes.len() / REC) as u64;
        let name = format!("{NEW_PREFIX}{}", temp_name("x"));
        let write = || -> io::Result<()> {
            let mut f = self.idx.create_file(&name)?;
            f.write_all(&bytes)?;
            f.sync_data()?;
            self.idx.rename(&name, &self.idx, LEDGER)
        };
        if let Err(e) = write() {
            let _ = self.idx.unlink(&name);
            return Err(e);
        }
        let f = self.idx.open_rw(LEDGER)?;
        let info = info_of(&f)?;
        self.state.ledger = Some((f, info));
        // Written whole just now: its length is valid.
        self.state.valid = bytes.len() as u64;
        self.ledger_seen = None;
        self.state.offset = bytes.len() as u64;
        self.state.table = Some(t);
        Ok(())
    }

    fn compact_if_needed(&mut self) -> io::Result<()> {
        let Some(t) = self.state.table.as_ref() else {
            return Ok(());
        };
        if t.records <= 2 * t.map.len() as u64 + COMPACT_SLACK {
            return Ok(());
        }
        let t = self.state.table.take().unwrap_or_default();
        self.install(t)
    }
}

impl Index {
    /// Takes the index lock (waiting for other writers), with the ledger
    /// opened afresh if it was replaced (compacted, rebuilt, deleted).
    /// `None` when the store's directory is gone.
    pub(super) fn lock<'a>(&'a self, store: &FsStore) -> io::Result<Option<Locked<'a>>> {
        let mut state = super::guard(&self.state);
        let root = store.handle();
        let path = store.root().join(INDEX_DIR);
        let cached = state
            .dir
            .as_ref()
            .filter(|(r, _)| Arc::ptr_eq(r, &root))
            .map(|(_, d)| Arc::clone(d));
        let fresh = cached.is_none();
        let idx = match cached {
            Some(d) => d,
            None => {
                let d = match ensure_dir(&root, INDEX_DIR, &path, false) {
                    Ok(Some(d)) => Arc::new(d),
                    Ok(None) => return Ok(None),
                    Err(e) => return Err(io::Error::other(e.to_string())),
                };
                state.dir = Some((Arc::clone(&root), Arc::clone(&d)));
                state.lock = None;
                d
            }
        };
        // Nothing of the index is followed through a symlink: one planted
        // at `lock` (or anything not a file) is removed as a name, and the
        // lock file is made again; looked for when the lock file is opened.
        // `ledger` is looked at under the lock, below.
        let clear_the_way = |idx: &Dir| -> io::Result<()> {
            if idx.stat(LOCK).is_ok_and(|i| i.kind != Kind::File) {
                remove_in_the_way(idx, LOCK, &path.join(LOCK), "an index file")
                    .map_err(|e| io::Error::other(e.to_string()))?;
            }
            Ok(())
        };
        let mut locked = false;
        for _ in 0..8 {
            let (file, info) = match state.lock.take() {
                Some(held) => held,
                None => {
                    clear_the_way(&idx)?;
                    match idx.open_or_create_file(LOCK) {
                        Ok(f) => {
                            let info = info_of(&f)?;
                            (f, info)
                        }
                        // `index/` deleted under a cached handle: open it
                        // again.
                        Err(e) if e.kind() == io::ErrorKind::NotFound && !fresh => {
                            state.dir = None;
                            drop(state);
                            return self.lock(store);
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            // The cached descriptor itself holds the lock (one open file,
            // one lock), released when the `Locked` is dropped.
            lock::wait_exclusive(&file)?;
            let linked = idx.stat(LOCK).is_ok_and(|i| info.same(&i));
            if linked {
                state.lock = Some((file, info));
                locked = true;
                break;
            }
            lock::unlock(&file);
        }
        if !locked {
            return Err(io::Error::other(
                "index/lock keeps being replaced while it is locked",
            ));
        }
        let mut locked = Locked {
            state,
            idx,
            ledger_seen: None,
        };
        let state = &mut locked.state;
        let idx = Arc::clone(&locked.idx);
        match idx.stat(LEDGER) {
            // Appended to in place: a ledger with other names (a hard link
            // planted from outside the root) would be written through.
            Ok(now) if now.kind != Kind::File || now.nlink > 1 => {
                remove_in_the_way(&idx, LEDGER, &path.join(LEDGER), "an index file")
                    .map_err(|e| io::Error::other(e.to_string()))?;
                state.ledger = None;
                state.table = None;
            }
            Ok(now) => {
                locked.ledger_seen = Some(now.len);
                let same = state.ledger.as_ref().is_some_and(|(_, i)| i.same(&now));
                if !same {
                    let f = idx.open_rw(LEDGER)?;
                    let info = info_of(&f)?;
                    state.ledger = Some((f, info));
                    state.offset = 0;
                    state.valid = 0;
                    state.table = None;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                state.ledger = None;
                state.table = None;
            }
            Err(e) => return Err(e),
        }
        // Leftovers of rebuilds killed halfway (their writer held this lock).
        if state.ledger.is_none() {
            for e in idx.list().unwrap_or_default() {
                if let Some(n) = e.name_str().filter(|n| n.starts_with(NEW_PREFIX)) {
                    let _ = idx.unlink(n);
                }
            }
        }
        Ok(Some(locked))
    }
}

impl FsStore {
    /// Appends records to the index; a failure is logged (the index is
    /// then rebuilt by `verify`), never the caller's failure.
    pub(super) fn index_append(&self, records: &[Record]) {
        let r = self
            .index
            .lock(self)
            .and_then(|l| l.map_or(Ok(()), |mut l| l.append(records)));
        if let Err(e) = r {
            log::warn!(
                "{}: cannot update the index: {e}",
                self.root().join(INDEX_DIR).display()
            );
        }
    }

    /// Builds the index if the store has none (a new store, or one made
    /// by an earlier layout): one scan of the entries, once.
    pub(super) fn ensure_index(&self) -> crate::Result<()> {
        let path = self.root().join(INDEX_DIR);
        let has = self.handle().stat(format!("{INDEX_DIR}/{LEDGER}")).is_ok();
        if has {
            return Ok(());
        }
        let err = |e| crate::StoreError::io("build index", &path, e);
        if let Some(mut l) = self.index.lock(self).map_err(err)? {
            if l.ledger_len().map_err(err)?.is_none() {
                l.rebuild(self).map_err(err)?;
            }
        }
        Ok(())
    }

    /// Builds the index again from the entries (as `verify` does).
    pub fn rebuild_index(&self) -> crate::Result<()> {
        self.with_locked_index("rebuild index", |l| l.rebuild(self))
    }

    /// Builds the index again from a listing of every entry just made.
    pub(super) fn rebuild_index_from(&self, entries: &[EntryInfo]) -> crate::Result<()> {
        self.with_locked_index("rebuild index", |l| l.rebuild_from(entries))
    }

    /// Runs `f` holding the index lock (nothing if the store is gone).
    fn with_locked_index(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Locked<'_>) -> io::Result<()>,
    ) -> crate::Result<()> {
        let path = self.root().join(INDEX_DIR);
        match self.index.lock(self) {
            Ok(Some(mut l)) => f(&mut l).map_err(|e| crate::StoreError::io(op, &path, e)),
            Ok(None) => Ok(()),
            Err(e) => Err(crate::StoreError::io("lock index", &path, e)),
        }
    }

    /// The entries the index counts and their bytes.
    pub fn indexed_totals(&self) -> crate::Result<(usize, u64)> {
        let path = self.root().join(INDEX_DIR);
        let err = |e| crate::StoreError::io("read index", &path, e);
        match self.index.lock(self).map_err(err)? {
            Some(mut l) => {
                let t = l.table(self).map_err(err)?;
                Ok((t.len(), t.bytes()))
            }
            None => Ok((0, 0)),
        }
    }

    /// An [`EntryInfo`] for listing what eviction removed, from the index.
    pub(super) fn indexed_info(namespace: &str, id: &Id, k: &Known) -> EntryInfo {
        EntryInfo {
            namespace: namespace.to_string(),
            key: key_hex(&id.1),
            stored_bytes: k.bytes,
            last_access: crate::meta::from_nanos(k.access),
            meta: Err("not read".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op(n: u8) -> Op {
        [Op::Header, Op::Add, Op::Remove, Op::Access, Op::RemoveNs][n as usize % 5]
    }

    proptest! {
        #[test]
        fn records_round_trip(n in 0u8..5, bytes: u64, time: u64, ns: [u8; 16], key: [u8; 32]) {
            let r = Record { op: op(n), bytes, time, ns, key };
            prop_assert_eq!(Record::decode(&r.encode()), Some(r));
        }

        #[test]
        fn any_bytes_decode_without_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Record::decode(&b);
        }

        #[test]
        fn a_flipped_bit_is_detected(bit in 0usize..(REC * 8), time: u64) {
            let r = Record { op: Op::Add, bytes: 1, time, ns: [1; 16], key: [2; 32] };
            let mut b = r.encode();
            b[bit / 8] ^= 1 << (bit % 8);
            prop_assert_ne!(Record::decode(&b), Some(r));
        }

        /// Replaying any sequence of records gives the totals and the
        /// order of the set they describe (a model by hand).
        #[test]
        fn the_table_is_the_set_its_records_describe(
            ops in proptest::collection::vec((1u8..5, 0u8..2, 0u8..6, 0u64..1000, 0u64..50), 0..200)
        ) {
            let mut t = Table::default();
            let mut model: HashMap<Id, Known> = HashMap::new();
            for (o, ns, k, bytes, time) in ops {
                let id = ([ns; 16], [k; 32]);
                let r = Record::new(op(o), id, bytes, time);
                t.apply(&r);
                match r.op {
                    Op::Add => { model.insert(id, Known { bytes, access: time }); }
                    Op::Remove => { model.remove(&id); }
                    Op::Access => {
                        if let Some(m) = model.get_mut(&id) {
                            m.access = m.access.max(time);
                        }
                    }
                    Op::RemoveNs => model.retain(|i, _| i.0 != id.0),
                    Op::Header => {}
                }
            }
            prop_assert_eq!(t.len(), model.len());
            prop_assert_eq!(t.bytes(), model.values().map(|m| m.bytes).sum::<u64>());
            let mut want: Vec<(u64, Id)> = model.iter().map(|(i, m)| (m.access, *i)).collect();
            want.sort();
            let mut got = Vec::new();
            let mut at = None;
            while let Some((access, id, _)) = t.next_after(at.as_ref()) {
                got.push((access, id));
                at = Some((access, id));
            }
            prop_assert_eq!(got, want);
        }

        #[test]
        fn keys_round_trip(key: [u8; 32]) {
            prop_assert_eq!(key_bytes(&key_hex(&key)), Some(key));
        }
    }

    #[test]
    fn the_table_counts_set_operations_and_keeps_access_order() {
        let mut t = Table::default();
        let id = |k: u8| ([0; 16], [k; 32]);
        t.apply(&Record::new(Op::Add, id(1), 10, 5));
        t.apply(&Record::new(Op::Add, id(2), 20, 3));
        t.apply(&Record::new(Op::Add, id(2), 20, 3)); // duplicate
        assert_eq!((t.len(), t.bytes()), (2, 30));
        assert_eq!(t.next_after(None).map(|n| n.1), Some(id(2)));
        t.apply(&Record::new(Op::Access, id(2), 0, 9));
        assert_eq!(t.next_after(None).map(|n| n.1), Some(id(1)));
        t.apply(&Record::new(Op::Remove, id(1), 0, 0));
        t.apply(&Record::new(Op::Remove, id(7), 0, 0)); // absent
        assert_eq!((t.len(), t.bytes()), (1, 20));
        t.apply(&Record::new(Op::RemoveNs, ([0; 16], [0; 32]), 0, 0));
        assert_eq!((t.len(), t.bytes()), (0, 0));
    }

    #[test]
    fn a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger");
        let mut bytes = header().encode().to_vec();
        bytes.extend_from_slice(&Record::new(Op::Add, ([0; 16], [1; 32]), 1, 1).encode());
        bytes.extend_from_slice(&[7u8; 30]);
        std::fs::write(&path, &bytes).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let len = info_of(&f).unwrap().len;
        assert_eq!(fix_tail(&f, len).unwrap(), 2 * REC as u64);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * REC as u64);
    }
}
