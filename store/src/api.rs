//! The `Store` trait and the types that cross it.

use crate::checksum::Xxh3;
use crate::error::{Result, StoreError};
use crate::meta::{EntryMeta, NewEntry};
#[cfg(doc)]
use crate::policy::StoreExt;
use std::any::Any;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long [`Store::lock`] waits for another holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Try once; do not wait.
    NoWait,
    /// Wait at most this long, then give up (the caller computes anyway).
    Timeout(Duration),
    /// Wait until the holder releases the lock (or dies). A thread that
    /// already holds the same entry's lock would wait for itself.
    Forever,
}

/// What a lock attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// The caller holds the entry's lock until the guard is dropped.
    Acquired,
    /// Another holder kept the lock past the wait policy.
    TimedOut,
    /// The backend cannot lock (for example a file system without `flock`);
    /// the caller may compute, correctness does not depend on the lock.
    Unavailable,
}

/// The guard of a per-entry compute lock; the lock is released on drop.
///
/// Check [`EntryLock::is_acquired`]: a guard is also returned when waiting
/// timed out or locking is unavailable, so the caller can go on either way.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct EntryLock {
    state: LockState,
    waited: Duration,
    _held: Option<Box<dyn Any + Send + Sync>>,
}

impl EntryLock {
    /// A guard for a backend: `held` is whatever keeps the lock, released
    /// when dropped (for [`FsStore`](crate::FsStore), the locked file).
    pub fn new(
        state: LockState,
        waited: Duration,
        held: Option<Box<dyn Any + Send + Sync>>,
    ) -> Self {
        EntryLock {
            state,
            waited,
            _held: held,
        }
    }

    /// What the attempt came to.
    pub fn state(&self) -> LockState {
        self.state
    }

    /// Whether the caller holds the lock.
    pub fn is_acquired(&self) -> bool {
        self.state == LockState::Acquired
    }

    /// How long the attempt waited.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl fmt::Debug for EntryLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryLock")
            .field("state", &self.state)
            .field("waited", &self.waited)
            .finish()
    }
}

/// Where an entry's payload bytes come from.
pub enum Payload {
    /// Bytes already in memory: `buf[range]` is the payload.
    Memory {
        /// A buffer holding the payload.
        buf: Vec<u8>,
        /// The payload's range in `buf`.
        range: std::ops::Range<usize>,
    },
    /// An open file whose whole content is the payload.
    File(File),
    /// Any other reader (a remote backend's stream).
    Reader(Box<dyn Read + Send>),
}

type CorruptHook = Box<dyn FnMut(&str) + Send>;

/// A stored entry found by [`Store::get`]: its metadata and its payload.
///
/// The payload can be read with [`Entry::read_to_vec`] or
/// [`Entry::read_into`] (which check the checksum before returning when the
/// lookup asked for verification), through [`Read`] (which reports a
/// checksum mismatch as an [`io::ErrorKind::InvalidData`] error at the end,
/// after the bytes were handed out), or, for a local backend, mapped
/// through [`Entry::local_path`] or [`Entry::file`].
pub struct Entry {
    meta: EntryMeta,
    payload: Payload,
    path: Option<PathBuf>,
    location: String,
    /// Whether the checksum still has to be checked while reading.
    pending: bool,
    /// Whether the checksum was checked (by the backend, or while reading).
    verified: bool,
    /// Boxed: the hasher is 64-byte aligned, and an over-aligned `Entry`
    /// would make every boxed entry an aligned allocation (slow in glibc).
    hasher: Option<Box<Xxh3>>,
    pos: u64,
    on_corrupt: Option<CorruptHook>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("meta", &self.meta)
            .field("path", &self.path)
            .field("location", &self.location)
            .field("verified", &self.verified)
            .finish()
    }
}

const CHUNK: usize = 1 << 20;
/// Payloads from this size on are hashed on a second thread while read.
const PARALLEL_HASH_MIN: usize = 8 << 20;

/// Reads `buf.len()` bytes in chunks, passing each chunk to `each`.
fn read_chunks(src: &mut dyn Read, buf: &mut [u8], each: &mut dyn FnMut(&[u8])) -> io::Result<()> {
    for chunk in buf.chunks_mut(CHUNK) {
        src.read_exact(chunk)?;
        each(chunk);
    }
    Ok(())
}

/// Like [`read_chunks`] with a checksum, but the checksum runs on a scoped
/// thread one chunk behind the reads, so that it costs (almost) no time.
fn read_hashing_in_parallel(src: &mut dyn Read, buf: &mut [u8]) -> io::Result<Option<u64>> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<&[u8]>(4);
        let hasher = scope.spawn(move || {
            let mut h = Xxh3::new();
            for chunk in rx {
                h.update(chunk);
            }
            h.digest()
        });
        let mut result = Ok(());
        for chunk in buf.chunks_mut(CHUNK) {
            if let Err(e) = src.read_exact(chunk) {
                result = Err(e);
                break;
            }
            let chunk: &[u8] = chunk;
            if tx.send(chunk).is_err() {
                break;
            }
        }
        drop(tx);
        let sum = hasher
            .join()
            .map_err(|_| io::Error::other("the checksum thread panicked"))?;
        result.map(|()| Some(sum))
    })
}

impl Entry {
    /// An entry for a backend. `location` names it in messages;
    /// `verify_pending` asks the reading methods to check the payload
    /// against `meta.checksum`.
    pub fn new(
        meta: EntryMeta,
        payload: Payload,
        local_path: Option<PathBuf>,
        location: String,
        verify_pending: bool,
    ) -> Self {
        Entry {
            meta,
            payload,
            path: local_path,
            location,
            pending: verify_pending,
            verified: false,
            hasher: verify_pending.then(|| Box::new(Xxh3::new())),
            pos: 0,
            on_corrupt: None,
        }
    }

    /// Records that the backend checked the payload against
    /// `meta.checksum` before returning the entry (nothing is left
    /// pending): [`Entry::is_verified`] is then true.
    pub fn checked(mut self) -> Self {
        self.pending = false;
        self.hasher = None;
        self.verified = true;
        self
    }

    /// Sets what to run when a read finds the payload corrupt (a backend
    /// removes or quarantines the entry there).
    pub fn on_corrupt(mut self, hook: impl FnMut(&str) + Send + 'static) -> Self {
        self.on_corrupt = Some(Box::new(hook));
        self
    }

    /// The entry's metadata.
    pub fn meta(&self) -> &EntryMeta {
        &self.meta
    }

    /// Payload length in bytes.
    pub fn len(&self) -> u64 {
        self.meta.payload_len
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.meta.payload_len == 0
    }

    /// The payload file, when the backend is local and the payload is a
    /// file of its own (small payloads are kept inside the metadata file
    /// and have none). The file is immutable while it exists.
    ///
    /// Mapping it bypasses the reading methods: if verification is still
    /// pending ([`Entry::is_verified`] is false), call [`Entry::verify`]
    /// first, or look the entry up without verification knowingly (its
    /// checksum was checked at publish).
    pub fn local_path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The open payload file (the one [`Entry::local_path`] names), to map
    /// it without opening it again.
    pub fn file(&self) -> Option<&File> {
        match &self.payload {
            Payload::File(f) => Some(f),
            _ => None,
        }
    }

    /// The payload, when it is already in memory (small payloads).
    pub fn bytes_in_memory(&self) -> Option<&[u8]> {
        match &self.payload {
            Payload::Memory { buf, range } => buf.get(range.clone()),
            _ => None,
        }
    }

    /// Whether the payload checksum was checked: by the lookup, or by a
    /// read or [`Entry::verify`] since. False for an entry looked up without
    /// verification (nothing checks it unless [`Entry::verify`] is called)
    /// and for one whose check is pending until it is read.
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    fn corrupt(&mut self, reason: String) -> StoreError {
        if let Some(hook) = self.on_corrupt.as_mut() {
            hook(&reason);
        }
        self.on_corrupt = None;
        StoreError::Corrupt {
            path: PathBuf::from(&self.location),
            reason,
        }
    }

    fn check_sum(&mut self, sum: u64) -> Result<()> {
        if sum != self.meta.checksum {
            let reason = format!(
                "payload checksum {sum:016x} does not match the recorded {:016x}",
                self.meta.checksum
            );
            return Err(self.corrupt(reason));
        }
        self.pending = false;
        self.verified = true;
        self.hasher = None;
        Ok(())
    }

    fn rewind(&mut self) -> Result<()> {
        self.pos = 0;
        if self.pending {
            self.hasher = Some(Box::new(Xxh3::new()));
        }
        match &mut self.payload {
            Payload::File(f) => f
                .seek(SeekFrom::Start(0))
                .map(|_| ())
                .map_err(|e| StoreError::io("seek payload", &self.location, e)),
            Payload::Memory { .. } => Ok(()),
            Payload::Reader(_) => Err(StoreError::io(
                "rewind payload",
                &self.location,
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a streamed payload can be read once",
                ),
            )),
        }
    }

    /// Reads the whole payload into `buf`, which must be exactly
    /// [`Entry::len`] bytes long, in chunks of 1 MiB; with verification
    /// pending, the checksum is checked before returning.
    pub fn read_into(&mut self, buf: &mut [u8]) -> Result<()> {
        if buf.len() as u64 != self.meta.payload_len {
            return Err(StoreError::io(
                "read payload",
                &self.location,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "buffer of {} bytes for a payload of {}",
                        buf.len(),
                        self.meta.payload_len
                    ),
                ),
            ));
        }
        if let Some(bytes) = self.bytes_in_memory() {
            buf.copy_from_slice(bytes);
            return if self.pending {
                let sum = crate::checksum::xxh3_64(buf);
                self.check_sum(sum)
            } else {
                Ok(())
            };
        }
        if self.pos != 0 {
            self.rewind()?;
        }
        let verify = self.pending;
        let location = self.location.clone();
        let src: &mut dyn Read = match &mut self.payload {
            Payload::File(f) => f,
            Payload::Reader(r) => r,
            // In memory, but its range is not within its buffer: nothing
            // can fill `buf`.
            Payload::Memory { buf: held, range } => {
                let reason = format!(
                    "in-memory payload range {}..{} is outside its {}-byte buffer",
                    range.start,
                    range.end,
                    held.len()
                );
                return Err(self.corrupt(reason));
            }
        };
        let read = if verify && buf.len() >= PARALLEL_HASH_MIN {
            read_hashing_in_parallel(src, buf)
        } else {
            let mut hasher = verify.then(Xxh3::new);
            read_chunks(src, buf, &mut |chunk| {
                if let Some(h) = hasher.as_mut() {
                    h.update(chunk);
                }
            })
            .map(|()| hasher.map(|h| h.digest()))
        };
        match read {
            Ok(sum) => {
                self.pos = self.meta.payload_len;
                match sum {
                    Some(sum) => self.check_sum(sum),
                    None => Ok(()),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(self.corrupt(format!("reading the payload failed: {e}")))
            }
            Err(e) => Err(StoreError::io("read payload", location, e)),
        }
    }

    /// Reads the whole payload into a new vector (its length was checked
    /// against the stored file); with verification pending, the checksum
    /// is checked before returning. A payload larger than the memory the
    /// allocator will give (a file of holes planted with a forged meta
    /// file, say) is an `OutOfMemory` error, not an abort.
    pub fn read_to_vec(&mut self) -> Result<Vec<u8>> {
        let too_large = || {
            StoreError::io(
                "read payload",
                &self.location,
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "a payload of {} bytes does not fit in memory; read it in parts with Entry::read",
                        self.meta.payload_len
                    ),
                ),
            )
        };
        let len = usize::try_from(self.meta.payload_len).map_err(|_| too_large())?;
        let mut buf = try_zeroed(len).ok_or_else(too_large)?;
        self.read_into(&mut buf)?;
        Ok(buf)
    }

    /// Reads the whole payload through a small buffer and checks its
    /// checksum, whether or not verification was asked for at lookup.
    pub fn verify(&mut self) -> Result<()> {
        if let Some(bytes) = self.bytes_in_memory() {
            let sum = crate::checksum::xxh3_64(bytes);
            self.pending = true;
            return self.check_sum(sum);
        }
        self.pending = true;
        self.rewind()?;
        let mut scratch = vec![0u8; CHUNK];
        let mut h = Xxh3::new();
        let mut total = 0u64;
        loop {
            let n = match self.read_raw(&mut scratch) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StoreError::io("read payload", &self.location, e)),
            };
            total += n as u64;
            h.update(scratch.get(..n).unwrap_or_default());
        }
        self.pos = total;
        if total != self.meta.payload_len {
            let reason = format!(
                "payload has {total} bytes, the metadata records {}",
                self.meta.payload_len
            );
            return Err(self.corrupt(reason));
        }
        self.check_sum(h.digest())
    }

    fn read_raw(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match &mut self.payload {
            Payload::File(f) => f.read(out),
            Payload::Reader(r) => r.read(out),
            Payload::Memory { buf, range } => {
                let start = range.start.saturating_add(self.pos as usize).min(range.end);
                let src = buf.get(start..range.end).unwrap_or_default();
                let n = src.len().min(out.len());
                out[..n].copy_from_slice(&src[..n]);
                Ok(n)
            }
        }
    }
}

impl Read for Entry {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.read_raw(out)?;
        self.pos += n as u64;
        if let Some(h) = self.hasher.as_mut() {
            h.update(out.get(..n).unwrap_or_default());
        }
        if n == 0 && !out.is_empty() && self.pending {
            let sum = self.hasher.as_ref().map_or(0, |h| h.digest());
            let short = self.pos != self.meta.payload_len;
            let result = if short {
                let reason = format!(
                    "payload has {} bytes, the metadata records {}",
                    self.pos, self.meta.payload_len
                );
                Err(self.corrupt(reason))
            } else {
                self.check_sum(sum)
            };
            if let Err(e) = result {
                return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()));
            }
        }
        Ok(n)
    }
}

/// Why an entry was found corrupt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// Where the entry was (a path for a local backend).
    pub location: String,
    /// What did not match.
    pub reason: String,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is corrupt: {}", self.location, self.reason)
    }
}

/// The outcome of [`Store::get`].
#[derive(Debug)]
pub enum Lookup {
    /// The entry exists and its metadata (and, if asked, payload) checked out.
    Found(Box<Entry>),
    /// No such entry.
    Missing,
    /// The entry was torn or damaged; it was removed or quarantined and
    /// must be treated as missing.
    Corrupt(Corruption),
}

impl Lookup {
    /// The entry, if found.
    pub fn found(self) -> Option<Entry> {
        match self {
            Lookup::Found(e) => Some(*e),
            _ => None,
        }
    }
}

/// The outcome of a successful [`Store::publish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The metadata written (or that would have been written).
    pub meta: EntryMeta,
    /// Another writer had published the key first; its entry was kept and
    /// this one discarded (entries are immutable).
    pub already_present: bool,
}

/// One entry as listed by [`Store::entries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// The entry's namespace.
    pub namespace: String,
    /// The entry's key.
    pub key: String,
    /// Bytes the entry takes in the store (payload plus metadata).
    pub stored_bytes: u64,
    /// Last recorded access (see [`EntryMeta::last_access`]).
    pub last_access: SystemTime,
    /// The metadata, or why it could not be read.
    pub meta: std::result::Result<EntryMeta, String>,
}

/// Limits for [`StoreExt::reduce_size`]; `None` means no limit of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// At most this many bytes in all entries.
    pub max_bytes: Option<u64>,
    /// At most this many entries.
    pub max_items: Option<usize>,
    /// No entry last accessed longer ago than this.
    pub max_age: Option<Duration>,
}

/// Why [`StoreExt::reduce_size`] kept an entry that the limits would remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A live process holds the entry's compute lock (it is being computed,
    /// or read under the lock).
    Locked,
    /// A live process has the entry's payload open for reading (an
    /// [`Entry`] with a payload file of its own is alive).
    Reading,
    /// Published or used within the grace window a backend was configured
    /// with (none by default; see `FsStore::with_recent_protection`).
    Recent,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::Locked => "being computed (its lock is held)",
            SkipReason::Reading => "open for reading",
            SkipReason::Recent => "used within the grace window",
        })
    }
}

/// An entry [`StoreExt::reduce_size`] kept although the limits asked for its
/// removal, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The entry.
    pub entry: EntryInfo,
    /// Why it was kept.
    pub reason: SkipReason,
}

/// What [`StoreExt::reduce_size`] removed (or would remove, in a dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reduction {
    /// The entries removed, least recently used first.
    pub removed: Vec<EntryInfo>,
    /// Bytes freed by removing them.
    pub freed_bytes: u64,
    /// Entries left.
    pub kept_items: usize,
    /// Bytes left in entries.
    pub kept_bytes: u64,
    /// How many entries would have gone but were in use (the length of
    /// [`Reduction::skipped_entries`]); the limits may not hold because of
    /// them.
    pub skipped: usize,
    /// The entries that would have gone but were in use, and why.
    pub skipped_entries: Vec<Skipped>,
    /// Whether this was a dry run (nothing removed).
    pub dry_run: bool,
}

impl Reduction {
    pub(crate) fn skip(&mut self, entry: EntryInfo, reason: SkipReason) {
        self.skipped += 1;
        self.skipped_entries.push(Skipped { entry, reason });
    }
}

/// `len` zero bytes, or `None` if the allocator refuses them (zeroed by
/// the allocator: fresh pages are not written twice).
fn try_zeroed(len: usize) -> Option<Vec<u8>> {
    if len == 0 {
        return Some(Vec::new());
    }
    let layout = std::alloc::Layout::array::<u8>(len).ok()?;
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout
    // of `[u8; len]`, and all of its bytes are initialised (zero).
    Some(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

/// The verdict of [`StoreExt::verify_all`] on one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Metadata and payload checksum match.
    Ok,
    /// The entry disappeared while verifying (removed by someone else).
    Missing,
    /// The entry was corrupt and has been removed or quarantined.
    Corrupt(String),
}

/// Totals of [`StoreExt::verify_all`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries that checked out.
    pub ok: usize,
    /// Entries found corrupt (and removed).
    pub corrupt: usize,
    /// Entries that disappeared meanwhile.
    pub missing: usize,
    /// Payload bytes read.
    pub bytes: u64,
}

/// The function a publish writes the payload with: it receives a writer
/// into the store and writes the whole payload.
pub type WriteFn<'a> = &'a mut dyn FnMut(&mut dyn Write) -> io::Result<()>;

/// The storage seam of jobcache: entries addressed by (namespace, key), each
/// an immutable payload plus [`EntryMeta`].
///
/// `namespace` is any non-empty UTF-8 name up to 4096 bytes (a function
/// path such as `my_crate::stats::square`); `key` is a digest as 64
/// lowercase hex characters. The trait is object-safe: memo and the CLI hold
/// an `Arc<dyn Store>`.
///
/// Seven methods are required, the primitives a backend must supply:
/// [`get`](Store::get), [`publish`](Store::publish), [`lock`](Store::lock),
/// [`remove`](Store::remove), [`remove_namespace`](Store::remove_namespace),
/// [`namespaces`](Store::namespaces) and [`entries`](Store::entries). Six
/// provided hooks have defaults built on them, which a backend replaces
/// only where it can do the same step better:
/// [`all_entries`](Store::all_entries) (listing everything), [`touch`](Store::touch),
/// [`check_entry`](Store::check_entry) (one entry of a verification walk),
/// [`evict`](Store::evict) (the eviction walk), [`apply_limits`](Store::apply_limits)
/// (after a publish) and [`tidy`](Store::tidy) (housekeeping after a walk).
/// Policy over the trait — [`StoreExt::verify_all`],
/// [`StoreExt::reduce_size`], [`StoreExt::clear`], [`StoreExt::get_bytes`],
/// [`StoreExt::get_or_compute`] and the rest — lives in [`StoreExt`], which
/// every backend gets through a blanket implementation and none overrides.
///
/// Correctness never depends on [`Store::lock`]: two publishers of one key
/// both succeed, the first one's entry stays, and readers see a complete
/// entry or none.
pub trait Store: Send + Sync + fmt::Debug {
    /// Looks an entry up. Metadata integrity and payload length are always
    /// checked; with `verify_payload` the payload checksum is also checked
    /// before any payload byte reaches the caller (see [`Entry`]). Skip it
    /// for a payload that will be memory-mapped and was verified at publish.
    fn get(&self, namespace: &str, key: &str, verify_payload: bool) -> Result<Lookup>;

    /// Publishes an entry atomically: `write` writes the payload into the
    /// store; the entry appears whole once everything is durable, or not at
    /// all (if `write` fails, nothing is left behind).
    fn publish(
        &self,
        namespace: &str,
        key: &str,
        entry: &NewEntry,
        write: WriteFn<'_>,
    ) -> Result<Published>;

    /// Takes the entry's exclusive compute lock, waiting as `wait` says.
    fn lock(&self, namespace: &str, key: &str, wait: Wait) -> Result<EntryLock>;

    /// Removes an entry; returns the bytes freed (0 if it was absent).
    fn remove(&self, namespace: &str, key: &str) -> Result<u64>;

    /// Removes a namespace with all its entries; returns the bytes freed.
    fn remove_namespace(&self, namespace: &str) -> Result<u64>;

    /// The namespaces in the store, sorted.
    fn namespaces(&self) -> Result<Vec<String>>;

    /// The entries of one namespace with their metadata, sorted by key.
    fn entries(&self, namespace: &str) -> Result<Vec<EntryInfo>>;

    /// Every entry of every namespace: what the maintenance walks read. The
    /// default lists each namespace in turn; a backend that can list
    /// everything at once (one request for a whole prefix) may.
    fn all_entries(&self) -> Result<Vec<EntryInfo>> {
        let mut all = Vec::new();
        for ns in self.namespaces()? {
            all.extend(self.entries(&ns)?);
        }
        Ok(all)
    }

    /// Records an access to an entry (a lookup through [`Store::get`]
    /// already does). The default does nothing.
    fn touch(&self, namespace: &str, key: &str) -> Result<()> {
        let _ = (namespace, key);
        Ok(())
    }

    /// Reads one listed entry's payload in full and checks its checksums:
    /// the step [`StoreExt::verify_all`] takes for each entry. A corrupt
    /// entry is removed or quarantined. The default looks the entry up with
    /// verification and reads it through; a backend overrides it to check
    /// without side effects a walk should not have (access times) or from
    /// the metadata it listed.
    fn check_entry(&self, info: &EntryInfo) -> Result<Verdict> {
        crate::policy::verdict_of(self.get(&info.namespace, &info.key, true)?)
    }

    /// Removes least-recently-used entries until every given limit holds
    /// (or only entries in use remain: locked by a live computation, or
    /// open for reading; see [`Reduction::skipped_entries`]); with
    /// `dry_run`, removes nothing and reports what would go. The step
    /// [`StoreExt::reduce_size`] takes. The default lists every entry and
    /// orders them by last access ([`crate::policy::evict_listed`]); a
    /// backend that keeps an index of sizes and access order answers from
    /// it instead.
    fn evict(&self, limits: &Limits, dry_run: bool) -> Result<Reduction> {
        crate::policy::evict_listed(self, limits, dry_run)
    }

    /// Applies a size policy right after a publish (memo calls it after
    /// each new result). The default is [`Store::evict`]; a backend that
    /// keeps running totals answers in time independent of the number of
    /// entries, and a tiered one applies it to its local tier only.
    fn apply_limits(&self, limits: &Limits) -> Result<Reduction> {
        self.evict(limits, false)
    }

    /// Housekeeping after a maintenance walk ([`StoreExt::verify_all`],
    /// or a [`StoreExt::reduce_size`] that was not a dry run): what a
    /// backend keeps besides entries (leftover temporary files, quarantine,
    /// lock files, an index). The default does nothing.
    fn tidy(&self, after: Walk) -> Result<()> {
        let _ = after;
        Ok(())
    }
}

/// The maintenance walk a [`Store::tidy`] follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Walk {
    /// [`StoreExt::verify_all`]: every entry was read and checked.
    Verify,
    /// [`StoreExt::reduce_size`]: entries over the limits were removed.
    Reduce,
}

macro_rules! forward_store {
    ($($ptr:ident)::+) => {
        impl<S: Store + ?Sized> Store for $($ptr)::+<S> {
            fn get(&self, namespace: &str, key: &str, verify_payload: bool) -> Result<Lookup> {
                (**self).get(namespace, key, verify_payload)
            }
            fn publish(&self, namespace: &str, key: &str, entry: &NewEntry, write: WriteFn<'_>) -> Result<Published> {
                (**self).publish(namespace, key, entry, write)
            }
            fn lock(&self, namespace: &str, key: &str, wait: Wait) -> Result<EntryLock> {
                (**self).lock(namespace, key, wait)
            }
            fn remove(&self, namespace: &str, key: &str) -> Result<u64> {
                (**self).remove(namespace, key)
            }
            fn remove_namespace(&self, namespace: &str) -> Result<u64> {
                (**self).remove_namespace(namespace)
            }
            fn namespaces(&self) -> Result<Vec<String>> {
                (**self).namespaces()
            }
            fn entries(&self, namespace: &str) -> Result<Vec<EntryInfo>> {
                (**self).entries(namespace)
            }
            fn all_entries(&self) -> Result<Vec<EntryInfo>> {
                (**self).all_entries()
            }
            fn touch(&self, namespace: &str, key: &str) -> Result<()> {
                (**self).touch(namespace, key)
            }
            fn check_entry(&self, info: &EntryInfo) -> Result<Verdict> {
                (**self).check_entry(info)
            }
            fn evict(&self, limits: &Limits, dry_run: bool) -> Result<Reduction> {
                (**self).evict(limits, dry_run)
            }
            fn apply_limits(&self, limits: &Limits) -> Result<Reduction> {
                (**self).apply_limits(limits)
            }
            fn tidy(&self, after: Walk) -> Result<()> {
                (**self).tidy(after)
            }
        }
    };
}

forward_store!(std::sync::Arc);
forward_store!(Box);
