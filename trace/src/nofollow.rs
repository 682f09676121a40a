//! Opening journal files without following a symlink at their name.
//!
//! A cache folder may be shared and writable by others: a symlink planted at
//! `journal.jsonl` (or its lock or rotated files) must not make jobcache
//! append to, or read, the file it points at. Every journal file is opened
//! with `O_NOFOLLOW` (the directory holding it may be a symlink; only the
//! name inside it is not followed) and `O_NONBLOCK` (a FIFO planted there
//! fails or is refused instead of blocking the open), and must be a regular
//! file.

use crate::TraceError;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// How a journal file is opened for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// The journal itself: appended to.
    Append,
    /// The rotation lock: only locked, never written.
    Lock,
}

/// Opens `path` for reading, refusing a symlink or a non-regular file with
/// a clear error. A missing file is an `Io` error of kind `NotFound`.
pub(crate) fn open_read(path: &Path) -> Result<File, TraceError> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    no_follow(&mut opts);
    let file = opts.open(path).map_err(|e| refused(path, "read", e))?;
    regular(path, file)
}

/// Opens (creating it with mode 0o666 less the umask) a journal file for
/// writing. A symlink found at `path` is not followed: its name is unlinked
/// (inside the cache folder; the target is untouched) and a fresh file
/// created in its place, with one warning. So is a journal file with
/// other names (a hard link planted from outside the folder), which an
/// append would write through.
pub(crate) fn open_write(path: &Path, how: Write) -> Result<File, TraceError> {
    let action = match how {
        Write::Append => "open",
        Write::Lock => "open the rotation lock",
    };
    match options(how, false).open(path) {
        Ok(file) if how == Write::Append && links(&file) > 1 => {
            drop(file);
            replace(path, how, action, "a file with other names (a hard link)")
        }
        Ok(file) => regular(path, file),
        Err(_) if is_symlink(path) => replace(path, how, action, "a symlink"),
        Err(e) => Err(TraceError::io(path, action, e)),
    }
}

/// The link count of `file` (1 where it cannot be read).
fn links(file: &File) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        file.metadata().map_or(1, |m| m.nlink())
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        1
    }
}

/// Unlinks what was `found` at `path` (only the name: a symlink's target or
/// a hard link's other names are untouched) and creates a fresh file there,
/// with one warning.
fn replace(path: &Path, how: Write, action: &'static str, found: &str) -> Result<File, TraceError> {
    log::warn!(
        target: crate::LOG_TARGET,
        "journal {}: found {found} there; jobcache does not write through it inside a \
         cache folder: removed the name and created a new file (the file it led to is untouched)",
        path.display()
    );
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(TraceError::io(path, "remove the name at", e)),
    }
    let file = match options(how, true).open(path) {
        // Another process created it between the unlink and here.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => options(how, false)
            .open(path)
            .map_err(|e| refused(path, action, e))?,
        other => other.map_err(|e| refused(path, action, e))?,
    };
    regular(path, file)
}

fn options(how: Write, exclusive: bool) -> OpenOptions {
    let mut opts = OpenOptions::new();
    match how {
        Write::Append => opts.append(true),
        Write::Lock => opts.write(true).truncate(false),
    };
    if exclusive {
        opts.create_new(true);
    } else {
        opts.create(true);
    }
    no_follow(&mut opts);
    opts
}

#[cfg(unix)]
fn no_follow(opts: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .mode(0o666);
}

#[cfg(not(unix))]
fn no_follow(_opts: &mut OpenOptions) {}

/// Whether `path` names a symlink (without following it).
fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// The error for a failed open: a clear one when a symlink was refused.
fn refused(path: &Path, action: &'static str, e: io::Error) -> TraceError {
    if is_symlink(path) {
        TraceError::Symlink {
            path: path.to_path_buf(),
        }
    } else {
        TraceError::io(path, action, e)
    }
}

/// `file` if it is a regular file (not a FIFO, device or directory).
fn regular(path: &Path, file: File) -> Result<File, TraceError> {
    let meta = file
        .metadata()
        .map_err(|e| TraceError::io(path, "stat", e))?;
    if meta.is_file() {
        Ok(file)
    } else {
        Err(TraceError::NotAFile {
            path: path.to_path_buf(),
        })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_symlink_is_replaced_for_writing_and_refused_for_reading() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("journal.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_read(&link).unwrap_err();
        assert!(matches!(err, TraceError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains("is a symlink"), "{err}");
        appends_to_a_new_file_leaving(&link, &target);
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
    }

    #[test]
    fn a_hard_link_is_replaced_for_appending() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"keep").unwrap();
        let link = dir.path().join("journal.jsonl");
        std::fs::hard_link(&outside, &link).unwrap();
        appends_to_a_new_file_leaving(&link, &outside);
    }

    /// A line appended at `journal` goes to a new file there; `planted`,
    /// which the name led to and which holds "keep", keeps it.
    fn appends_to_a_new_file_leaving(journal: &Path, planted: &Path) {
        let mut file = open_write(journal, Write::Append).unwrap();
        std::io::Write::write_all(&mut file, b"line\n").unwrap();
        assert_eq!(std::fs::read(planted).unwrap(), b"keep");
        assert_eq!(std::fs::read(journal).unwrap(), b"line\n");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("journal.jsonl");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(open_read(&fifo).is_err());
        assert!(open_write(&fifo, Write::Append).is_err());
        assert!(open_write(&fifo, Write::Lock).is_err());
    }

    #[test]
    fn new_files_are_no_wider_than_0o666_less_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        drop(open_write(&path, Write::Append).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o666, 0, "{mode:o}");
    }
}
