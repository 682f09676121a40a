//! The run journal: an append-only JSON Lines file, one [`Event`] per line.

use crate::nofollow::{self, Write as Mode};
use crate::{Event, EventKind, Timestamp, TraceError, Tracer};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines longer than this are not events: the reader skips them, and
/// [`Journal::append`] cuts an event's message and summary to stay below.
pub const MAX_LINE: usize = 1 << 20;

/// How a [`Journal`] rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOptions {
    /// Rotate when the file would grow beyond this many bytes (`None`: never).
    pub max_bytes: Option<u64>,
    /// Rotated files kept: `journal.jsonl.1` (newest) to `journal.jsonl.<keep>`.
    /// At least 1.
    pub keep: usize,
}

impl Default for JournalOptions {
    /// Rotate at 64 MiB, keep 3 old files.
    fn default() -> Self {
        JournalOptions {
            max_bytes: Some(64 << 20),
            keep: 3,
        }
    }
}

/// An open journal that events are appended to.
///
/// Every event is one line written with one `write` call on a file opened
/// with `O_APPEND`, so lines from many threads and processes never interleave.
/// When the file would pass [`JournalOptions::max_bytes`], the process that
/// notices renames it to `<name>.1` (shifting older ones) under a lock on
/// `<name>.lock`; others notice the rename and reopen. Lines written to the
/// old file meanwhile stay there, so none are lost unless a file is rotated
/// out of [`JournalOptions::keep`]. A process looks at the file when its
/// own lines would pass the cap, every 32 appends and at least once a
/// second: its length, its link count, and whether the path still names it.
/// So with several writers a file can end up to 32 lines per process over
/// the cap, and a journal deleted under a live process (its directory
/// removed by hand) is created again, directory included, at the next look
/// instead of being written into a deleted file.
///
/// No name in the cache folder is followed: the journal, its lock and its
/// rotated files are opened with `O_NOFOLLOW`, and a symlink found at the
/// journal's name is removed (its target untouched) and replaced by a new
/// file, with a warning.
///
/// As a [`Tracer`], a failed append is a `log` warning (once per journal),
/// never an error for the computation.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    opts: JournalOptions,
    state: Mutex<State>,
    warned: AtomicBool,
}

#[derive(Debug)]
struct State {
    file: File,
    id: FileId,
    buf: Vec<u8>,
    /// The file's length when last looked at, plus our lines since.
    est_len: u64,
    /// Appends since the file was last looked at.
    since_check: u32,
    /// When the file was last looked at.
    checked_at: Instant,
    /// When a rotation last gave up waiting for another process's lock:
    /// none is tried again for [`ROTATE_RETRY_AFTER`].
    rotation_refused: Option<Instant>,
    /// Hit lines held to be written together (see [`Tracer::record`]), in
    /// the order they were first recorded.
    held: Vec<Held>,
    /// Where each held line's call is in `held`, by [`call_id`].
    held_index: HashMap<u64, usize>,
    /// About how many bytes the held lines take once written.
    held_bytes: usize,
    /// When the oldest held line was recorded.
    pending_since: Instant,
    /// The process that held them (a forked child drops its copy).
    pending_pid: u32,
    /// The held lines encoded for writing (kept to reuse its allocation).
    out: Vec<u8>,
}

/// A held `hit` line, and when the last of the calls it counts ended.
#[derive(Debug)]
struct Held {
    event: Event,
    last: Instant,
}

impl Held {
    /// Counts `calls` more calls of this line's call, which took
    /// `duration` together, the last ending at `ended`.
    fn add(&mut self, calls: u64, duration: Duration, ended: Instant) {
        self.event.calls = self.event.calls.saturating_add(calls);
        self.event.duration = self.event.duration.saturating_add(duration);
        self.last = self.last.max(ended);
    }
}

/// Identifies a call (function and argument digest) among the held lines;
/// a match is confirmed by comparing both.
fn call_id(function: &str, digest: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let mut h = KEYS.get_or_init(Default::default).build_hasher();
    h.write(function.as_bytes());
    h.write_u8(0xff);
    h.write(digest.as_bytes());
    h.finish()
}

/// Hit lines held in memory at most: the next hit writes them all. A
/// repeated hit of a call already held adds to that call's line instead.
pub const HIT_BATCH: u32 = 64;

/// Bytes of hit lines held in memory at most (estimated).
pub const HIT_BYTES: usize = 32 << 10;

/// How long a hit line is held at most, when other events follow it: the
/// first event recorded after this delay writes the held lines.
pub const HIT_DELAY: Duration = Duration::from_millis(100);

/// Appends between two looks at the file (its length, its link count, and
/// whether the path still names it): the size cap can be passed by this many
/// lines per process, and a writer follows another's rotation within them.
const CHECK_EVERY: u32 = 32;

/// The longest time between two looks at the file, however few the appends:
/// a journal deleted under a live process is noticed within it.
const CHECK_AFTER: Duration = Duration::from_secs(1);

impl Journal {
    /// Opens (creating it and its directory if needed) the journal at `path`,
    /// rotating at 64 MiB and keeping 3 old files.
    pub fn open(path: impl AsRef<Path>) -> Result<Journal, TraceError> {
        Journal::open_with(path, JournalOptions::default())
    }

    /// Opens the journal at `path` with explicit rotation options.
    pub fn open_with(path: impl AsRef<Path>, opts: JournalOptions) -> Result<Journal, TraceError> {
        let path = path.as_ref().to_path_buf();
        let (file, id) = open_append(&path)?;
        let est_len = file
            .metadata()
            .map_err(|e| TraceError::io(&path, "stat", e))?
            .len();
        Ok(Journal {
            path,
            opts: JournalOptions {
                keep: opts.keep.max(1),
                ..opts
            },
            state: Mutex::new(State {
                file,
                id,
                buf: Vec::with_capacity(512),
                est_len,
                since_check: 0,
                checked_at: Instant::now(),
                rotation_refused: None,
                held: Vec::new(),
                held_index: HashMap::new(),
                held_bytes: 0,
                pending_since: Instant::now(),
                pending_pid: 0,
                out: Vec::new(),
            }),
            warned: AtomicBool::new(false),
        })
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event as one line, at once: a single `write` carries it,
    /// after any hit lines [`Tracer::record`] was holding (so the file keeps
    /// the order events were recorded in).
    pub fn append(&self, event: &Event) -> Result<(), TraceError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        encode_line(event, &mut state.buf)?;
        self.write_out(&mut state, true)
    }

    /// Writes the hit lines [`Tracer::record`] holds, if any, with one
    /// `write`. Dropping the journal does the same.
    pub fn flush(&self) -> Result<(), TraceError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.held.is_empty() {
            return Ok(());
        }
        self.write_out(&mut state, false)
    }

    /// Counts one more hit of a call whose `hit` line is held (same
    /// function, same argument digest), which took `duration` and ended at
    /// `ended` (the caller's own clock reading, so none is taken here): the
    /// line's [`Event::calls`] grows by one and its duration by `duration`.
    /// Returns `false`, recording nothing, when no line of that call is
    /// held; the caller then records the hit as an [`Event`]. This is what
    /// keeps a loop of hits from writing a line per call.
    pub fn repeat_hit(
        &self,
        function: &str,
        digest: &str,
        duration: Duration,
        ended: Instant,
    ) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = &mut *state;
        let Some(held) = held_call(state, function, digest) else {
            return false;
        };
        held.add(1, duration, ended);
        if ended.saturating_duration_since(state.pending_since) >= HIT_DELAY {
            if let Err(e) = self.write_out(state, false) {
                self.warn(&e);
            }
        }
        true
    }

    /// Holds a `hit` or `computed` line in memory (a hit of a call already
    /// held adds to its line), writing the held lines once there are
    /// [`HIT_BATCH`] of them, [`HIT_BYTES`] of them, or the oldest is
    /// [`HIT_DELAY`] old (looked at when the next event comes).
    fn hold(&self, event: &Event) -> Result<(), TraceError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = &mut *state;
        let now = Instant::now();
        // Hits of one call add up; a `computed` line stands alone.
        let hit = event.kind == EventKind::Hit;
        let held = if hit {
            held_call(state, &event.function, &event.args_digest)
        } else {
            None
        };
        if let Some(held) = held {
            held.add(event.calls, event.duration, now);
        } else {
            if state.held.is_empty() {
                state.pending_since = now;
                state.pending_pid = crate::process_id();
            }
            if hit {
                let id = call_id(&event.function, &event.args_digest);
                state.held_index.insert(id, state.held.len());
            }
            state.held_bytes += LINE_OVERHEAD
                + event.function.len()
                + event.args_digest.len()
                + event.args_summary.len()
                + event.host.len();
            state.held.push(Held {
                event: event.clone(),
                last: now,
            });
        }
        if state.held.len() >= HIT_BATCH as usize
            || state.held_bytes >= HIT_BYTES
            || state.pending_since.elapsed() >= HIT_DELAY
        {
            return self.write_out(state, false);
        }
        Ok(())
    }

    /// Writes the held lines, then (`with_line`) the line in `buf`, with one
    /// `write`, looking at the file first when it is time to (see the type's
    /// doc). Held lines a failed write did not take are dropped (the error
    /// says so), and so are lines held by the parent of a forked process
    /// (the parent writes them).
    fn write_out(&self, state: &mut State, with_line: bool) -> Result<(), TraceError> {
        let State {
            file,
            id,
            buf,
            held,
            held_index,
            held_bytes,
            pending_pid,
            est_len,
            since_check,
            checked_at,
            rotation_refused,
            out: encoded,
            ..
        } = state;
        if !held.is_empty() && *pending_pid != crate::process_id() {
            held.clear();
        }
        let mut lines = held.len() as u32 + u32::from(with_line);
        let has_held = !held.is_empty();
        let mut encoding = Ok(());
        if has_held {
            encoded.clear();
            let (now, wall) = (Instant::now(), Timestamp::now());
            for h in held.iter_mut() {
                if h.event.calls > 1 {
                    // A line that counts several calls is dated by the last.
                    h.event.time = wall.saturating_sub(now.saturating_duration_since(h.last));
                }
                encoding = encoding.and_then(|()| append_line(&h.event, encoded));
            }
            if with_line {
                encoded.extend_from_slice(buf);
            }
        }
        held.clear();
        held_index.clear();
        *held_bytes = 0;
        encoding?;
        let out: &[u8] = if has_held { encoded } else { buf };
        (|| {
            let len = out.len() as u64;
            let over = self.opts.max_bytes.is_some_and(|max| *est_len + len > max);
            if over || *since_check >= CHECK_EVERY || checked_at.elapsed() >= CHECK_AFTER {
                // The estimate counts only our own lines: look at the file.
                *since_check = 0;
                *checked_at = Instant::now();
                let mut meta = self.stat(file)?;
                if links(&meta) == 0 || !self.names(*id) {
                    // Deleted (its directory too, perhaps), rotated by another
                    // process, or replaced: open the path again.
                    (*file, *id) = open_append(&self.path)?;
                    meta = self.stat(file)?;
                }
                *est_len = meta.len();
                if let Some(max) = self.opts.max_bytes {
                    let refused_lately =
                        rotation_refused.is_some_and(|at| at.elapsed() < ROTATE_RETRY_AFTER);
                    if *est_len > 0 && *est_len + len > max && !refused_lately {
                        let rotated = self.rotate(file, id)?;
                        *rotation_refused = (!rotated).then(Instant::now);
                        *est_len = self.stat(file)?.len();
                    }
                }
            }
            loop {
                match file.write(out) {
                    Ok(n) if n == out.len() => {
                        *est_len += len;
                        *since_check += std::mem::take(&mut lines);
                        return Ok(());
                    }
                    Ok(n) => {
                        return Err(TraceError::ShortWrite {
                            path: self.path.clone(),
                            expected: out.len(),
                            written: n,
                        })
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(TraceError::io(&self.path, "append to", e)),
                }
            }
        })()
    }

    fn stat(&self, file: &File) -> Result<std::fs::Metadata, TraceError> {
        file.metadata()
            .map_err(|e| TraceError::io(&self.path, "stat", e))
    }

    /// Whether the path names the file `id` (not following a symlink).
    fn names(&self, id: FileId) -> bool {
        std::fs::symlink_metadata(&self.path).is_ok_and(|m| FileId::of(&m) == id)
    }

    /// Rotates the file, or reopens it if another process already did;
    /// false if another process held the rotation lock too long (nothing
    /// done).
    fn rotate(&self, file: &mut File, id: &mut FileId) -> Result<bool, TraceError> {
        let lock_path = sibling(&self.path, ".lock");
        let lock = nofollow::open_write(&lock_path, Mode::Lock)?;
        let locked = lock_within(&lock, ROTATE_WAIT_MAX)
            .map_err(|e| TraceError::io(&lock_path, "lock", e))?;
        if !locked {
            log::warn!(
                "{}: another process has held the rotation lock for {} s; writing on without rotating",
                lock_path.display(),
                ROTATE_WAIT_MAX.as_secs()
            );
            return Ok(false);
        }
        let result = (|| {
            if self.names(*id) {
                for i in (1..self.opts.keep).rev() {
                    let from = sibling(&self.path, &format!(".{i}"));
                    let to = sibling(&self.path, &format!(".{}", i + 1));
                    shift(&from, &to)?;
                }
                let to = sibling(&self.path, ".1");
                // rename replaces the name `to`, never what a symlink there
                // points at.
                std::fs::rename(&self.path, &to)
                    .map_err(|e| TraceError::io(&self.path, "rotate", e))?;
            }
            (*file, *id) = open_append(&self.path)?;
            Ok(())
        })();
        let _ = fs2::FileExt::unlock(&lock);
        result.map(|()| true)
    }
}

/// How long a writer waits for another process's rotation (a few renames)
/// before it writes on without rotating: a stopped or hostile process
/// holding the rotation lock must not hang every writer.
const ROTATE_WAIT_MAX: Duration = Duration::from_secs(10);
/// After a rotation gave up waiting, none is tried for this long.
const ROTATE_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Takes an exclusive lock on `file` within `max`, trying again after 1 ms,
/// then twice as long each time, at most 20 ms; false if it stayed held.
fn lock_within(file: &File, max: Duration) -> std::io::Result<bool> {
    let deadline = Instant::now() + max;
    let mut pause = Duration::from_millis(1);
    loop {
        match fs2::FileExt::try_lock_exclusive(file) {
            Ok(()) => return Ok(true),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.raw_os_error() == fs2::lock_contended_error().raw_os_error() => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Moves rotated file `from` to `to`; a symlink planted at `from` is not a
/// journal file and is removed instead (its target untouched).
fn shift(from: &Path, to: &Path) -> Result<(), TraceError> {
    let planted = std::fs::symlink_metadata(from).is_ok_and(|m| m.file_type().is_symlink());
    let moved = if planted {
        std::fs::remove_file(from)
    } else {
        std::fs::rename(from, to)
    };
    match moved {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(TraceError::io(from, "rotate", e))
        }
        _ => Ok(()),
    }
}

/// The link count of an open file: 0 once its last name is unlinked.
#[cfg(unix)]
fn links(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::nlink(meta)
}

#[cfg(not(unix))]
fn links(_meta: &std::fs::Metadata) -> u64 {
    1
}

impl Journal {
    /// Warns of a failed write, once per journal.
    fn warn(&self, e: &TraceError) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            log::warn!(target: crate::LOG_TARGET, "{}; further journal errors are not shown", crate::chain(e));
        }
    }
}

/// As a tracer, a journal holds `hit` and `computed` lines in memory and
/// writes them together (one `write` per [`HIT_BATCH`] lines, or sooner:
/// see [`HIT_BYTES`], [`HIT_DELAY`]), because a hit costs microseconds, a
/// small miss tens of them, and a `write` a good part of that; every other
/// event (a failure, a corrupt entry, an eviction…) is written at once,
/// with the held lines before it. Dropping the journal, or
/// [`Journal::flush`], writes what is held. A process killed before that
/// loses its last held lines, never another event's line, and never leaves
/// half a line. The stored results themselves do not depend on the
/// journal.
impl Tracer for Journal {
    fn record(&self, event: &Event) {
        let done = if matches!(event.kind, EventKind::Hit | EventKind::Computed) {
            self.hold(event)
        } else {
            self.append(event)
        };
        if let Err(e) = done {
            self.warn(&e);
        }
    }
}

impl Drop for Journal {
    /// Writes the hit lines still held.
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            self.warn(&e);
        }
    }
}

/// Encodes `event` as one line in `buf` (emptied first).
fn encode_line(event: &Event, buf: &mut Vec<u8>) -> Result<(), TraceError> {
    buf.clear();
    append_line(event, buf)
}

/// Appends `event` as one line to `out`, cutting its long fields when the
/// line would pass [`MAX_LINE`].
fn append_line(event: &Event, out: &mut Vec<u8>) -> Result<(), TraceError> {
    let start = out.len();
    let encode = |e: &Event, out: &mut Vec<u8>| {
        out.truncate(start);
        serde_json::to_writer(&mut *out, e).map_err(|err| TraceError::Encode {
            function: e.function.chars().take(100).collect(),
            reason: err.to_string(),
        })?;
        out.push(b'\n');
        Ok::<(), TraceError>(())
    };
    encode(event, out)?;
    if out.len() - start > MAX_LINE {
        let cut = |s: &str| s.chars().take(4096).collect::<String>();
        let mut small = event.clone();
        small.function = cut(&small.function);
        small.host = cut(&small.host);
        small.args_digest = cut(&small.args_digest);
        small.args_summary = cut(&small.args_summary);
        small.version = cut(&small.version);
        small.message = small
            .message
            .as_deref()
            .map(|m| format!("{}… (cut)", cut(m)));
        encode(&small, out)?;
    }
    Ok(())
}

/// The held line of the call `function` with `digest`, if one is held.
fn held_call<'s>(state: &'s mut State, function: &str, digest: &str) -> Option<&'s mut Held> {
    if state.pending_pid != crate::process_id() {
        // Held by the parent of this forked process: not ours to add to.
        return None;
    }
    let i = *state.held_index.get(&call_id(function, digest))?;
    state
        .held
        .get_mut(i)
        .filter(|h| h.event.function == function && h.event.args_digest == digest)
}

/// Bytes of a hit line besides its function, digest, summary and host.
const LINE_OVERHEAD: usize = 240;

/// Opens the journal for appending, creating it and, if it is gone, its
/// directory.
fn open_append(path: &Path) -> Result<(File, FileId), TraceError> {
    let file = match nofollow::open_write(path, Mode::Append) {
        Err(TraceError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| TraceError::io(dir, "create the directory of", e))?;
            }
            nofollow::open_write(path, Mode::Append)?
        }
        other => other?,
    };
    let meta = file
        .metadata()
        .map_err(|e| TraceError::io(path, "stat", e))?;
    Ok((file, FileId::of(&meta)))
}

/// `journal.jsonl` + `.1` → `journal.jsonl.1`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Which file a path or handle refers to (device and inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64);

impl FileId {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId(meta.dev(), meta.ino())
    }

    #[cfg(not(unix))]
    fn of(_meta: &std::fs::Metadata) -> FileId {
        FileId(0, 0)
    }
}

/// Which events to keep when reading.
///
/// ```
/// use jobcache_trace::{Filter, Timestamp};
/// let f = Filter::new().function("square").since(Timestamp::parse("2024-05-01").unwrap());
/// assert_eq!(f.function.as_deref(), Some("square"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Only this function.
    pub function: Option<String>,
    /// Only events at or after this time.
    pub since: Option<Timestamp>,
    /// Only events before this time.
    pub until: Option<Timestamp>,
    /// Only these kinds (all when empty).
    pub kinds: Vec<EventKind>,
}

impl Filter {
    /// A filter that keeps everything.
    pub fn new() -> Filter {
        Filter::default()
    }

    /// Keeps only `function`.
    #[must_use]
    pub fn function(mut self, function: impl Into<String>) -> Filter {
        self.function = Some(function.into());
        self
    }

    /// Keeps events at or after `t`.
    #[must_use]
    pub fn since(mut self, t: Timestamp) -> Filter {
        self.since = Some(t);
        self
    }

    /// Keeps events before `t`.
    #[must_use]
    pub fn until(mut self, t: Timestamp) -> Filter {
        self.until = Some(t);
        self
    }

    /// Keeps events of `kind` (may be called several times).
    #[must_use]
    pub fn kind(mut self, kind: EventKind) -> Filter {
        self.kinds.push(kind);
        self
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &Event) -> bool {
        self.function.as_ref().is_none_or(|f| *f == event.function)
            && self.since.is_none_or(|t| event.time >= t)
            && self.until.is_none_or(|t| event.time < t)
            && (self.kinds.is_empty() || self.kinds.contains(&event.kind))
    }
}

/// Iterates the events of one journal file, in order.
///
/// A last line without its newline (a write cut short by a crash) is
/// ignored. A complete line that is not an event (or is longer than
/// [`MAX_LINE`]) yields [`TraceError::Malformed`] and reading goes on.
#[derive(Debug)]
pub struct JournalReader {
    path: PathBuf,
    reader: BufReader<File>,
    line_no: u64,
    line: Vec<u8>,
    filter: Filter,
}

impl JournalReader {
    /// Opens `path` for reading. A symlink at `path` is not followed: it is
    /// [`TraceError::Symlink`].
    pub fn open(path: impl AsRef<Path>) -> Result<JournalReader, TraceError> {
        let path = path.as_ref().to_path_buf();
        let file = nofollow::open_read(&path)?;
        Ok(JournalReader {
            path,
            reader: BufReader::with_capacity(64 << 10, file),
            line_no: 0,
            line: Vec::new(),
            filter: Filter::default(),
        })
    }

    /// Yields only events that pass `filter`.
    #[must_use]
    pub fn filter(mut self, filter: Filter) -> JournalReader {
        self.filter = filter;
        self
    }

    /// Reads the next line into `self.line`: `Some(true)` a complete line,
    /// `Some(false)` a line too long (skipped), `None` at the end.
    fn next_line(&mut self) -> Result<Option<bool>, TraceError> {
        self.line.clear();
        let mut too_long = false;
        loop {
            let chunk = self
                .reader
                .fill_buf()
                .map_err(|e| TraceError::io(&self.path, "read", e))?;
            if chunk.is_empty() {
                // End of file: what is left has no newline, a torn write.
                return Ok(None);
            }
            let (part, found) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (chunk.get(..i).unwrap_or_default(), true),
                None => (chunk, false),
            };
            let used = part.len() + usize::from(found);
            if !too_long && self.line.len() + part.len() <= MAX_LINE {
                self.line.extend_from_slice(part);
            } else {
                too_long = true;
                self.line.clear();
            }
            self.reader.consume(used);
            if found {
                self.line_no += 1;
                return Ok(Some(!too_long));
            }
        }
    }
}

impl Iterator for JournalReader {
    type Item = Result<Event, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let complete = match self.next_line() {
                Ok(Some(c)) => c,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            if !complete {
                return Some(Err(self.malformed(format!("longer than {MAX_LINE} bytes"))));
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Event>(&self.line) {
                Ok(e) if self.filter.matches(&e) => return Some(Ok(e)),
                Ok(_) => continue,
                Err(e) => return Some(Err(self.malformed(e.to_string()))),
            }
        }
    }
}

impl JournalReader {
    fn malformed(&self, reason: String) -> TraceError {
        TraceError::Malformed {
            path: self.path.clone(),
            line: self.line_no,
            reason,
        }
    }
}

/// The files of the journal at `path` that exist, oldest first: the rotated
/// ones (`.N` … `.1`), then `path` itself.
pub fn journal_files(path: impl AsRef<Path>) -> Vec<PathBuf> {
    let path = path.as_ref();
    let mut rotated: Vec<(u64, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let prefix = format!("{}.", name.to_string_lossy());
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let file_name = entry.file_name();
                let n = file_name
                    .to_str()
                    .and_then(|s| s.strip_prefix(&prefix))
                    .and_then(|s| s.parse::<u64>().ok());
                if let Some(n) = n {
                    rotated.push((n, sibling(path, &format!(".{n}"))));
                }
            }
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    // A symlink is listed too (not followed): reading it is an error.
    if std::fs::symlink_metadata(path).is_ok() {
        files.push(path.to_path_buf());
    }
    files
}

/// Reads every event of the journal at `path` (rotated files first, oldest
/// first) that passes `filter`. Malformed lines are skipped with a `log`
/// warning; a torn last line is ignored. Fails if no file can be read, or
/// if one of them is a symlink ([`TraceError::Symlink`]: never followed).
///
/// ```
/// use jobcache_trace::{read_journal, Event, EventKind, Filter, Journal};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("journal.jsonl");
/// let journal = Journal::open(&path).unwrap();
/// journal.append(&Event::new(EventKind::Computed, "square")).unwrap();
/// journal.append(&Event::new(EventKind::Hit, "square")).unwrap();
/// journal.append(&Event::new(EventKind::Hit, "cube")).unwrap();
/// let events = read_journal(&path, &Filter::new().function("square")).unwrap();
/// assert_eq!(events.len(), 2);
/// ```
pub fn read_journal(path: impl AsRef<Path>, filter: &Filter) -> Result<Vec<Event>, TraceError> {
    let path = path.as_ref();
    let files = journal_files(path);
    if files.is_empty() {
        return Err(TraceError::io(
            path,
            "read",
            std::io::Error::new(std::io::ErrorKind::NotFound, "no journal file here"),
        ));
    }
    let mut events = Vec::new();
    for file in files {
        let reader = match JournalReader::open(&file) {
            Ok(r) => r,
            // Rotated away between listing and opening.
            Err(TraceError::Io { ref source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        for item in reader.filter(filter.clone()) {
            match item {
                Ok(e) => events.push(e),
                Err(e) => log::warn!(target: crate::LOG_TARGET, "{}", crate::chain(&e)),
            }
        }
    }
    Ok(events)
}

/// Follows a journal as it grows (`tail -f`): each [`poll`](Follower::poll)
/// returns the events appended since the last one. Follows rotation: once
/// the path names a new file, the old one is read to its end, then the new
/// one from its start.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    file: Option<(File, FileId)>,
    pos: u64,
    partial: Vec<u8>,
    from_start: bool,
    filter: Filter,
}

impl Follower {
    /// Follows `path`; `from_start` also returns the events already there.
    /// The file need not exist yet.
    pub fn new(path: impl AsRef<Path>, from_start: bool) -> Follower {
        Follower {
            path: path.as_ref().to_path_buf(),
            file: None,
            pos: 0,
            partial: Vec::new(),
            from_start,
            filter: Filter::default(),
        }
    }

    /// Returns only events that pass `filter`.
    #[must_use]
    pub fn filter(mut self, filter: Filter) -> Follower {
        self.filter = filter;
        self
    }

    /// The events appended since the last call (malformed lines skipped).
    pub fn poll(&mut self) -> Result<Vec<Event>, TraceError> {
        let mut out = Vec::new();
        if self.file.is_none() && !self.reopen()? {
            return Ok(out);
        }
        self.drain(&mut out)?;
        let current = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| FileId::of(&m));
        let ours = self.file.as_ref().map(|(_, id)| *id);
        if current.is_some() && current != ours {
            self.from_start = true;
            self.partial.clear();
            if self.reopen()? {
                self.drain(&mut out)?;
            }
        }
        Ok(out)
    }

    fn reopen(&mut self) -> Result<bool, TraceError> {
        let mut file = match nofollow::open_read(&self.path) {
            Ok(f) => f,
            Err(TraceError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                // Whatever appears later is new.
                self.from_start = true;
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let meta = file
            .metadata()
            .map_err(|e| TraceError::io(&self.path, "stat", e))?;
        self.pos = if self.from_start { 0 } else { meta.len() };
        file.seek(SeekFrom::Start(self.pos))
            .map_err(|e| TraceError::io(&self.path, "read", e))?;
        self.file = Some((file, FileId::of(&meta)));
        self.from_start = true;
        Ok(true)
    }

    fn drain(&mut self, out: &mut Vec<Event>) -> Result<(), TraceError> {
        let Some((file, _)) = self.file.as_mut() else {
            return Ok(());
        };
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            let n = match file.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(TraceError::io(&self.path, "read", e)),
            };
            self.pos += n as u64;
            let mut rest = chunk.get(..n).unwrap_or_default();
            while let Some(i) = rest.iter().position(|&b| b == b'\n') {
                let (head, tail) = rest.split_at(i);
                self.partial.extend_from_slice(head);
                if self.partial.len() <= MAX_LINE {
                    match serde_json::from_slice::<Event>(&self.partial) {
                        Ok(e) if self.filter.matches(&e) => out.push(e),
                        Ok(_) => {}
                        Err(_) if self.partial.iter().all(u8::is_ascii_whitespace) => {}
                        Err(e) => {
                            log::warn!(target: crate::LOG_TARGET, "journal {}: skipped a line that is not an event: {e}", self.path.display())
                        }
                    }
                }
                self.partial.clear();
                rest = tail.get(1..).unwrap_or_default();
            }
            if self.partial.len() + rest.len() <= MAX_LINE + 1 {
                self.partial.extend_from_slice(rest);
            } else {
                // Too long to be an event: keep a marker byte so the line is dropped.
                self.partial.clear();
                self.partial.resize(MAX_LINE + 1, b' ');
            }
        }
    }
}
