//! The error type of this crate.

use std::path::PathBuf;

/// What went wrong while writing or reading a journal, or capturing output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// A file system operation on a journal file failed.
    #[error("journal {path}: cannot {action}: {source} (check that the directory exists and is writable)")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What was being done (`open`, `append to`, `read`, `rotate`, …).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A journal file's name is a symlink, which jobcache does not follow
    /// (it would read or write the file it points at, outside the cache).
    #[error(
        "{path} is a symlink; jobcache does not follow symlinks inside a cache folder: remove it"
    )]
    Symlink {
        /// The symlink.
        path: PathBuf,
    },
    /// A journal file's name is a FIFO, device or directory.
    #[error("{path} is not a regular file; a journal is a plain file: remove it")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The operating system accepted only part of a journal line.
    #[error(
        "journal {path}: short append: wrote {written} of {expected} bytes (is the disk full?)"
    )]
    ShortWrite {
        /// The journal file.
        path: PathBuf,
        /// Bytes of the line.
        expected: usize,
        /// Bytes the kernel reported written.
        written: usize,
    },
    /// A complete journal line is not a valid event.
    #[error("journal {path}: line {line} is not a jobcache event: {reason} (the line is skipped; remove it or rotate the journal)")]
    Malformed {
        /// The journal file.
        path: PathBuf,
        /// The 1-based line number.
        line: u64,
        /// Why it could not be read.
        reason: String,
    },
    /// An event could not be encoded as JSON.
    #[error("cannot encode event for {function}: {reason}")]
    Encode {
        /// The event's function.
        function: String,
        /// The encoder's message.
        reason: String,
    },
    /// A timestamp is not RFC 3339 (`2024-05-01T12:00:00Z`).
    #[error("invalid RFC 3339 timestamp {text:?}: expected YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM), {reason}")]
    Timestamp {
        /// The text that was given.
        text: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// Redirecting stdout or stderr failed.
    #[error("cannot capture output: {action} failed: {source}")]
    Capture {
        /// The system call or step that failed.
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl TraceError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        TraceError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}
