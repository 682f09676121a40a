//! Compute locks as open-file-description byte-range locks (`LAYOUT.md`,
//! "Locks"): the lock of an entry is one byte of the shared file
//! `index/locks`, at an offset hashed from its namespace and key, taken
//! with `fcntl(F_OFD_SETLK)`. No file is made or removed per lock, and the
//! kernel releases the byte when its holder dies.
//!
//! OFD locks conflict between open file descriptions, not between threads
//! sharing one: a handle keeps one description of the file, and its threads
//! exclude each other through an in-process set of held offsets first.
//! Where the kernel or file system refuses OFD locks, the per-entry lock
//! files are used instead.

use super::generations::coarse_tick;
use super::index::Id;
use super::layout::{ensure_dir, INDEX_DIR};
use super::{guard, FsStore};
use crate::api::{EntryLock, LockState, Wait};
use crate::beneath::{info_of, Dir};
use crate::checksum::xxh3_64;
use crate::lock;
use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The lock file's name beneath `index/`.
pub(super) const LOCKS_FILE: &str = "locks";

/// The byte of `index/locks` that stands for entry `id`: the XXH3-64 of
/// its namespace id and key bytes, cut to 62 bits (a valid `off_t`).
pub(super) fn offset_of(id: &Id) -> u64 {
    let mut b = [0u8; 48];
    b[..16].copy_from_slice(&id.0);
    b[16..].copy_from_slice(&id.1);
    xxh3_64(&b) >> 2
}

/// The lock file of one root, and the offsets this handle holds.
#[derive(Debug)]
struct Shared {
    file: File,
    root: Arc<Dir>,
    held: Mutex<Claims>,
    freed: Condvar,
    /// The coarse-clock tick in which `file` was last found to be
    /// `index/locks` still.
    linked_at: AtomicU64,
}

impl Shared {
    /// Whether `file` is still `index/locks` beneath `root`: not unlinked
    /// (deleted by hand or by another user) nor replaced. A lock taken on
    /// a file that is no longer there does not meet the locks that others
    /// take on the new one.
    fn still_linked(&self, root: &Dir) -> bool {
        info_of(&self.file).is_ok_and(|held| {
            held.nlink > 0
                && root
                    .stat(format!("{INDEX_DIR}/{LOCKS_FILE}"))
                    .is_ok_and(|at| at.same(&held))
        })
    }
}

/// The offsets this handle's threads hold, and how many threads wait for
/// one to be released (so that a release with no one waiting makes no
/// `futex` call).
#[derive(Debug, Default)]
struct Claims {
    offsets: HashSet<u64>,
    waiters: usize,
}

impl Shared {
    fn held(&self) -> MutexGuard<'_, Claims> {
        guard(&self.held)
    }

    fn release_claim(&self, offset: u64) {
        let mut held = self.held();
        held.offsets.remove(&offset);
        let waiting = held.waiters > 0;
        drop(held);
        if waiting {
            self.freed.notify_all();
        }
    }

    /// One `fcntl` on the byte at `offset`: `F_WRLCK` or `F_UNLCK`, with
    /// `F_OFD_SETLK` (or `F_OFD_SETLKW` when `block`).
    fn fcntl(&self, offset: u64, kind: libc::c_int, block: bool) -> io::Result<bool> {
        // SAFETY: a zeroed flock is a valid argument once filled.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = offset as libc::off_t;
        fl.l_len = 1;
        let cmd = if block {
            libc::F_OFD_SETLKW
        } else {
            libc::F_OFD_SETLK
        };
        loop {
            // SAFETY: fcntl on a descriptor we own with a valid flock.
            let r = unsafe { libc::fcntl(self.file.as_raw_fd(), cmd, &fl) };
            if r == 0 {
                return Ok(true);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN | libc::EACCES) if !block => return Ok(false),
                _ => return Err(e),
            }
        }
    }
}

/// A held compute lock; released (the byte and the in-process claim) on
/// drop.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub(super) struct OfdGuard {
    shared: Arc<Shared>,
    offset: u64,
}

impl Drop for OfdGuard {
    fn drop(&mut self) {
        let _ = self.shared.fcntl(self.offset, libc::F_UNLCK, false);
        self.shared.release_claim(self.offset);
    }
}

/// What a lock attempt came to.
#[derive(Debug)]
pub(super) enum Got {
    /// Held by the caller until the guard is dropped.
    Held(OfdGuard),
    /// Held by another thread or process (past the wait).
    Busy,
}

/// Where `flock` is refused, and also where the kernel does not know OFD
/// locks (`EINVAL`) or refuses them on this file (`EBADF`).
fn is_unsupported(e: &io::Error) -> bool {
    lock::is_unsupported(e) || matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EBADF))
}

/// The OFD locks of a store handle.
#[derive(Debug, Default)]
pub(super) struct OfdLocks {
    shared: Mutex<Option<Arc<Shared>>>,
    /// Set once OFD locks were refused here: lock files from then on.
    unsupported: AtomicBool,
}

impl OfdLocks {
    /// The lock file of the store's current root, opened (made if missing)
    /// beneath it on first use; `None` where it cannot be.
    fn shared(&self, store: &FsStore) -> Option<Arc<Shared>> {
        if self.unsupported.load(Ordering::Relaxed) {
            return None;
        }
        let root = store.handle();
        let mut slot = guard(&self.shared);
        if let Some(s) = slot.as_ref().filter(|s| Arc::ptr_eq(&s.root, &root)) {
            // Looked at once per tick of the coarse clock: a lock file
            // deleted meanwhile is opened (made) again within a tick,
            // instead of being locked on for as long as the handle lives.
            let tick = coarse_tick();
            if s.linked_at.load(Ordering::Relaxed) == tick || s.still_linked(&root) {
                s.linked_at.store(tick, Ordering::Relaxed);
                return Some(Arc::clone(s));
            }
            log::debug!(
                "{}: deleted or replaced; opening it again",
                store.root.join(INDEX_DIR).join(LOCKS_FILE).display()
            );
        }
        let path = store.root.join(INDEX_DIR);
        let idx = match ensure_dir(&root, INDEX_DIR, &path, false) {
            Ok(Some(d)) => d,
            _ => return None,
        };
        let file = match idx.open_or_create_file(LOCKS_FILE) {
            Ok(f) => f,
            Err(e) => {
                log::debug!("{}: {e}", path.join(LOCKS_FILE).display());
                return None;
            }
        };
        let s = Arc::new(Shared {
            file,
            root,
            held: Mutex::new(Claims::default()),
            freed: Condvar::new(),
            linked_at: AtomicU64::new(coarse_tick()),
        });
        *slot = Some(Arc::clone(&s));
        Some(s)
    }

    fn refuse(&self, e: &io::Error) {
        log::debug!("byte-range locks refused ({e}): per-entry lock files instead");
        self.unsupported.store(true, Ordering::Relaxed);
        *guard(&self.shared) = None;
    }

    /// Takes the compute lock of `id` as `wait` says; `None` where OFD
    /// locks cannot be used (the caller falls back to lock files).
    pub(super) fn lock(&self, store: &FsStore, id: &Id, wait: Wait) -> Option<io::Result<Got>> {
        let shared = self.shared(store)?;
        let offset = offset_of(id);
        let start = Instant::now();
        let deadline = match wait {
            Wait::Timeout(d) => Some(start + d),
            _ => None,
        };
        // The in-process claim: threads of this handle share one open file
        // description, between whose holders OFD locks do not conflict.
        {
            let mut held = shared.held();
            while held.offsets.contains(&offset) {
                let timeout = match (wait, deadline) {
                    (Wait::NoWait, _) => return Some(Ok(Got::Busy)),
                    (_, Some(at)) => {
                        let now = Instant::now();
                        if now >= at {
                            return Some(Ok(Got::Busy));
                        }
                        Some(at - now)
                    }
                    _ => None,
                };
                held.waiters += 1;
                held = match timeout {
                    Some(t) => match shared.freed.wait_timeout(held, t) {
                        Ok((g, _)) => g,
                        Err(poisoned) => poisoned.into_inner().0,
                    },
                    None => match shared.freed.wait(held) {
                        Ok(g) => g,
                        Err(poisoned) => poisoned.into_inner(),
                    },
                };
                held.waiters -= 1;
            }
            held.offsets.insert(offset);
        }
        let got = match wait {
            Wait::Forever => shared.fcntl(offset, libc::F_WRLCK, true),
            Wait::NoWait => shared.fcntl(offset, libc::F_WRLCK, false),
            Wait::Timeout(_) => lock::poll_with(deadline.unwrap_or(start), &mut || {
                shared.fcntl(offset, libc::F_WRLCK, false)
            }),
        };
        match got {
            Ok(true) => Some(Ok(Got::Held(OfdGuard { shared, offset }))),
            Ok(false) => {
                shared.release_claim(offset);
                Some(Ok(Got::Busy))
            }
            Err(e) => {
                shared.release_claim(offset);
                if is_unsupported(&e) {
                    self.refuse(&e);
                    None
                } else {
                    Some(Err(e))
                }
            }
        }
    }

    /// Takes the lock of `id` if nobody holds it, for a removal: `None` if a
    /// thread or live process holds it, `Some(None)` where OFD locks are
    /// not used.
    pub(super) fn try_hold(&self, store: &FsStore, id: &Id) -> Option<Option<OfdGuard>> {
        match self.lock(store, id, Wait::NoWait) {
            None | Some(Err(_)) => Some(None),
            Some(Ok(Got::Held(g))) => Some(Some(g)),
            Some(Ok(Got::Busy)) => None,
        }
    }
}

impl Got {
    /// The entry lock a caller gets: the guard (if held) and its state.
    pub(super) fn into_entry_lock(self, waited: Duration) -> EntryLock {
        match self {
            Got::Held(g) => EntryLock::new(LockState::Acquired, waited, Some(Box::new(g))),
            Got::Busy => EntryLock::new(LockState::TimedOut, waited, None),
        }
    }
}
