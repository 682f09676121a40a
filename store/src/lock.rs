//! Per-entry lock files and the liveness locks of temporary directories:
//! the only place that calls fs2.
//!
//! Protocol (`LAYOUT.md`, "Locks"): open the lock file fresh (create it if
//! needed), `flock` it exclusively, then check that the path still names the
//! locked inode; if it does not (the file was unlinked by a cleaner holding
//! the lock), start again. A cleaner unlinks a lock file only while holding
//! it, so a lock file can be removed without two holders ever coexisting.

use crate::api::{EntryLock, LockState, Wait};
use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// A held lock file; unlocked on drop (closing would also release it, but
/// an inherited descriptor in a child process would keep it).
#[derive(Debug)]
pub(crate) struct Held(pub(crate) File);

impl Drop for Held {
    fn drop(&mut self) {
        unlock(&self.0);
    }
}

/// Releases a lock taken on `file`.
pub(crate) fn unlock(file: &File) {
    let _ = fs2::FileExt::unlock(file);
}

/// Whether the file system cannot lock.
pub(crate) fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOLCK | libc::EOPNOTSUPP | libc::ENOSYS)
    )
}

/// What a try at a lock came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Try {
    /// Locked now by the caller.
    Locked,
    /// Someone holds it.
    Busy,
    /// The file system cannot lock.
    Unsupported,
}

/// Tries once to lock `file` exclusively (a directory's own descriptor
/// works too: `LAYOUT.md`, "Temporary files").
pub(crate) fn try_exclusive(file: &File) -> io::Result<Try> {
    match try_lock(file) {
        Ok(true) => Ok(Try::Locked),
        Ok(false) => Ok(Try::Busy),
        Err(e) if is_unsupported(&e) => Ok(Try::Unsupported),
        Err(e) => Err(e),
    }
}

/// How long a store waits for a lock that others hold only for a moment
/// (an append to a pack or the index, a compaction, a rename into a
/// namespace, a namespace's removal) before it gives up with an error that
/// names the lock: a stopped or hostile process holding one must not hang
/// every other process of the cache.
pub(crate) const BRIEF_WAIT_MAX: Duration = if cfg!(test) {
    // The crate's own tests show the store giving up without waiting 30 s.
    Duration::from_millis(300)
} else {
    Duration::from_secs(30)
};

/// Waits at most `max` for a lock on `file` (exclusive, or shared) that
/// others hold only for a moment, trying again after 10 µs, then twice as
/// long each time, at most 5 ms; where the file system cannot lock,
/// returns at once. Fails with `TimedOut` once `max` has passed.
pub(crate) fn wait_brief(file: &File, exclusive: bool, max: Duration) -> io::Result<()> {
    let mut attempt = || {
        let tried = if exclusive {
            fs2::FileExt::try_lock_exclusive(file)
        } else {
            fs2::FileExt::try_lock_shared(file)
        };
        match tried {
            Ok(()) => Ok(true),
            Err(e) if is_unsupported(&e) => Ok(true),
            Err(e) if is_contended(&e) => Ok(false),
            Err(e) => Err(e),
        }
    };
    let pauses = (Duration::from_micros(10), Duration::from_millis(5));
    if poll_paced(Instant::now() + max, pauses, &mut attempt)? {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "another process has held this lock for {} s; if no jobcache process is \
             working on this cache, a stopped or stray process holds it \
             (`fuser -v <file>` names it): end it, or point the cache elsewhere",
            max.as_secs()
        ),
    ))
}

/// Whether a try at a lock failed because someone holds it.
fn is_contended(e: &io::Error) -> bool {
    e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
        || e.kind() == io::ErrorKind::WouldBlock
}

/// Waits (at most [`BRIEF_WAIT_MAX`]) for an exclusive lock on `file`,
/// held until it is unlocked or closed; where the file system cannot lock,
/// returns at once.
pub(crate) fn wait_exclusive(file: &File) -> io::Result<()> {
    wait_brief(file, true, BRIEF_WAIT_MAX)
}

/// Tries once to take a shared lock on `file` (a reader of a payload holds
/// one while its entry is alive: `LAYOUT.md`, "Eviction"); true if taken.
pub(crate) fn try_shared(file: &File) -> bool {
    fs2::FileExt::try_lock_shared(file).is_ok()
}

/// A blocking lock on a directory (or file), released on drop; holds
/// nothing where the file system cannot lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub(crate) struct Guard<'a>(Option<&'a File>);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.0 {
            unlock(f);
        }
    }
}

fn guard(file: &File, got: io::Result<()>) -> io::Result<Guard<'_>> {
    match got {
        Ok(()) => Ok(Guard(Some(file))),
        Err(e) if is_unsupported(&e) => Ok(Guard(None)),
        Err(e) => Err(e),
    }
}

/// Waits for a shared lock on `file`: publishers into a namespace hold it
/// while they check that the directory is live and rename into it.
pub(crate) fn shared(file: &File) -> io::Result<Guard<'_>> {
    guard(file, wait_brief(file, false, BRIEF_WAIT_MAX))
}

/// Waits for an exclusive lock on `file`: a namespace removal holds it
/// while it moves the directory away and deletes it.
pub(crate) fn exclusive(file: &File) -> io::Result<Guard<'_>> {
    guard(file, wait_exclusive(file))
}

/// Takes the lock of the file that `open` opens (creating it if needed,
/// and its directory if a namespace removal took it away meanwhile);
/// `linked` tells whether the path still names the file that was locked.
///
/// `keep` turns the locked file into what the guard holds (it must unlock
/// the file when dropped, as [`Held`] does).
pub(crate) fn acquire(
    shown: &Path,
    wait: Wait,
    open: &dyn Fn() -> io::Result<File>,
    linked: &dyn Fn(&File) -> io::Result<bool>,
    keep: &dyn Fn(File) -> Box<dyn std::any::Any + Send + Sync>,
) -> io::Result<EntryLock> {
    let start = Instant::now();
    let deadline = match wait {
        Wait::Timeout(d) => Some(start + d),
        _ => None,
    };
    loop {
        let file = open()?;
        let got = match wait {
            Wait::Forever => fs2::FileExt::lock_exclusive(&file).map(|()| true),
            Wait::NoWait => try_lock(&file),
            Wait::Timeout(_) => poll(&file, deadline.unwrap_or(start)),
        };
        match got {
            Ok(true) => {
                if linked(&file)? {
                    return Ok(EntryLock::new(
                        LockState::Acquired,
                        start.elapsed(),
                        Some(keep(file)),
                    ));
                }
                // Unlinked by a cleaner: retry on the current file.
                drop(Held(file));
            }
            Ok(false) => {
                log::info!(
                    "{}: lock still held after {:?}",
                    shown.display(),
                    start.elapsed()
                );
                return Ok(EntryLock::new(LockState::TimedOut, start.elapsed(), None));
            }
            Err(e) if is_unsupported(&e) => {
                log::warn!(
                    "{}: locking is not supported here ({e}); going on without the lock",
                    shown.display()
                );
                return Ok(EntryLock::new(
                    LockState::Unavailable,
                    start.elapsed(),
                    None,
                ));
            }
            Err(e) => return Err(e),
        }
    }
}

fn try_lock(file: &File) -> io::Result<bool> {
    match fs2::FileExt::try_lock_exclusive(file) {
        Ok(()) => Ok(true),
        Err(e) if is_contended(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

fn poll(file: &File, deadline: Instant) -> io::Result<bool> {
    poll_with(deadline, &mut || try_lock(file))
}

/// Tries `attempt` until it takes the lock or `deadline` passes, pausing
/// 1 ms, then twice as long each time, at most 20 ms (a compute lock is
/// held for as long as a computation takes).
pub(crate) fn poll_with(
    deadline: Instant,
    attempt: &mut dyn FnMut() -> io::Result<bool>,
) -> io::Result<bool> {
    let pauses = (Duration::from_millis(1), Duration::from_millis(20));
    poll_paced(deadline, pauses, attempt)
}

/// Tries `attempt` until it takes the lock or `deadline` passes, pausing
/// `pauses.0`, then twice as long each time, at most `pauses.1`.
fn poll_paced(
    deadline: Instant,
    (first, most): (Duration, Duration),
    attempt: &mut dyn FnMut() -> io::Result<bool>,
) -> io::Result<bool> {
    let mut pause = first;
    loop {
        if attempt()? {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(most);
    }
}

/// Runs `remove` on a lock file nobody holds, while holding it, if it is
/// still linked; true if removed.
pub(crate) fn remove_if_free(
    file: File,
    linked: &dyn Fn(&File) -> io::Result<bool>,
    remove: &dyn Fn() -> io::Result<()>,
) -> io::Result<bool> {
    if !try_lock(&file)? {
        return Ok(false);
    }
    let held = Held(file);
    let removed = if linked(&held.0)? {
        remove()?;
        true
    } else {
        false
    };
    drop(held);
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two open file descriptions of one file: `flock`s on them conflict
    /// as two processes' would.
    fn two_opens() -> (tempfile::TempDir, File, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let a = File::create(&path).unwrap();
        let b = File::open(&path).unwrap();
        (dir, a, b)
    }

    #[test]
    fn a_lock_held_elsewhere_is_refused_once_the_wait_is_over() {
        let (_dir, a, b) = two_opens();
        fs2::FileExt::lock_exclusive(&a).unwrap();
        let start = Instant::now();
        let e = wait_brief(&b, true, Duration::from_millis(200)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("fuser"), "{e}");
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        assert!(wait_brief(&b, false, Duration::from_millis(50)).is_err());
        unlock(&a);
        wait_brief(&b, true, Duration::from_millis(50)).unwrap();
    }

    #[test]
    fn a_lock_released_during_the_wait_is_taken_at_once() {
        let (_dir, a, b) = two_opens();
        fs2::FileExt::lock_exclusive(&a).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            unlock(&a);
            a
        });
        let start = Instant::now();
        wait_brief(&b, true, Duration::from_secs(10)).unwrap();
        assert!(start.elapsed() < Duration::from_secs(2));
        drop(releaser.join().unwrap());
    }

    #[test]
    fn shared_locks_do_not_wait_for_each_other() {
        let (_dir, a, b) = two_opens();
        fs2::FileExt::lock_shared(&a).unwrap();
        wait_brief(&b, false, Duration::from_millis(10)).unwrap();
        assert!(wait_brief(&b, true, Duration::from_millis(10)).is_err());
    }
}
