//! The error type of this crate, and [`chain`] to print any error with its
//! causes.
//!
//! Convention (anyhow's): a level's message does not repeat its source;
//! the source is returned by `source()`, and whoever prints the error
//! prints the chain once, `journal x: cannot open: Permission denied`.

use std::path::PathBuf;

/// What went wrong while writing or reading a journal, or capturing output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// A file system operation on a journal file failed.
    #[error("cannot {action} the journal {path} (its directory must exist and be writable)")]
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
        reason: String,
    },
    /// Redirecting stdout or stderr failed.
    #[error("cannot capture output: {action} failed")]
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

/// An error and its causes on one line, `outer: cause: root cause`.
///
/// Each level's message is printed once: a cause whose text the message
/// before it already contains (an error that formats its source into its
/// own message, against this crate's convention) is not printed again.
///
/// ```
/// let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "Permission denied");
/// let e = jobcache_trace::TraceError::Capture { action: "dup", source: io };
/// assert_eq!(jobcache_trace::chain(&e).to_string(), "cannot capture output: dup failed: Permission denied");
/// ```
pub fn chain<'a>(err: &'a (dyn std::error::Error + 'static)) -> Chain<'a> {
    Chain(err)
}

/// What [`chain`] returns: displays an error and its causes.
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut last = self.0.to_string();
        f.write_str(&last)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            let text = cause.to_string();
            if !text.is_empty() && !last.contains(&text) {
                write!(f, ": {text}")?;
            }
            last = text;
            next = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer says {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn each_cause_is_printed_once() {
        let io = || std::io::Error::other("disk full");
        let e = TraceError::io("/j", "append to", io());
        assert_eq!(
            e.to_string(),
            "cannot append to the journal /j (its directory must exist and be writable)"
        );
        assert_eq!(
            chain(&e).to_string(),
            "cannot append to the journal /j (its directory must exist and be writable): disk full"
        );
        // A level that repeats its source is not repeated again.
        assert_eq!(chain(&Repeats(io())).to_string(), "outer says disk full");
    }
}
