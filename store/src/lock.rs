//! Per-entry lock files, the only place that calls fs2.
//!
//! Protocol (`LAYOUT.md`, "Locks"): open the lock file fresh (create it if
//! needed), `flock` it exclusively, then check that the path still names the
//! locked inode; if it does not (the file was unlinked by a cleaner holding
//! the lock), start again. A cleaner unlinks a lock file only while holding
//! it, so a lock file can be removed without two holders ever coexisting.

use crate::api::{EntryLock, LockState, Wait};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

/// A held lock file; unlocked on drop (closing would also release it, but
/// an inherited descriptor in a child process would keep it).
#[derive(Debug)]
pub(crate) struct Held(pub(crate) File);

impl Drop for Held {
    fn drop(&mut self) {
        let _ = fs2::FileExt::unlock(&self.0);
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o666)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOLCK | libc::EOPNOTSUPP | libc::ENOSYS)
    )
}

/// Whether `path` still names the inode `file` is open on.
fn still_linked(file: &File, path: &Path) -> io::Result<bool> {
    let held = file.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Takes the lock at `path`. `ensure_dir` recreates its directory if a
/// namespace removal took it away meanwhile.
pub(crate) fn acquire(
    path: &Path,
    wait: Wait,
    ensure_dir: &dyn Fn() -> io::Result<()>,
) -> io::Result<EntryLock> {
    let start = Instant::now();
    let deadline = match wait {
        Wait::Timeout(d) => Some(start + d),
        _ => None,
    };
    loop {
        let file = match open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                ensure_dir()?;
                open(path)?
            }
            Err(e) => return Err(e),
        };
        let got = match wait {
            Wait::Forever => fs2::FileExt::lock_exclusive(&file).map(|()| true),
            Wait::NoWait => try_lock(&file),
            Wait::Timeout(_) => poll(&file, deadline.unwrap_or(start)),
        };
        match got {
            Ok(true) => {
                if still_linked(&file, path)? {
                    let held: Box<dyn std::any::Any + Send + Sync> = Box::new(Held(file));
                    return Ok(EntryLock::new(
                        LockState::Acquired,
                        start.elapsed(),
                        Some(held),
                    ));
                }
                // Unlinked by a cleaner: retry on the current file.
                drop(Held(file));
            }
            Ok(false) => {
                log::info!(
                    "{}: lock still held after {:?}",
                    path.display(),
                    start.elapsed()
                );
                return Ok(EntryLock::new(LockState::TimedOut, start.elapsed(), None));
            }
            Err(e) if is_unsupported(&e) => {
                log::warn!(
                    "{}: locking is not supported here ({e}); going on without the lock",
                    path.display()
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
        Err(e) if e.raw_os_error() == fs2::lock_contended_error().raw_os_error() => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

fn poll(file: &File, deadline: Instant) -> io::Result<bool> {
    let mut pause = Duration::from_millis(1);
    loop {
        if try_lock(file)? {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Removes the lock file at `path` if nobody holds it; true if removed.
pub(crate) fn remove_if_free(path: &Path) -> io::Result<bool> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if !try_lock(&file)? {
        return Ok(false);
    }
    let held = Held(file);
    let removed = if still_linked(&held.0, path)? {
        std::fs::remove_file(path)?;
        true
    } else {
        false
    };
    drop(held);
    Ok(removed)
}
