//! The command line's error type: everything that ends a command with
//! exit code 2, each message one line naming the path and the fix.
//!
//! A level's message does not repeat its source (anyhow's convention);
//! `main` prints the whole chain once with [`jobcache_trace::chain`].

use std::path::PathBuf;

/// Why a command could not be carried out (exit code 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The cache directory does not exist.
    #[error("no cache at {path}: the directory does not exist; pass --dir DIR or set JOBCACHE_DIR to a jobcache cache directory")]
    NoCache {
        /// The directory looked for.
        path: PathBuf,
    },
    /// The directory exists but is not a jobcache cache.
    #[error("{path} is not a jobcache cache ({reason}); pass --dir DIR or set JOBCACHE_DIR to a directory made by jobcache")]
    NotACache {
        /// The directory given.
        path: PathBuf,
        /// What was missing or wrong.
        reason: String,
    },
    /// A store operation failed (its message names the path).
    #[error(transparent)]
    Store(#[from] jobcache_store::StoreError),
    /// Reading the journal failed.
    #[error(transparent)]
    Trace(#[from] jobcache_trace::TraceError),
    /// Reading or exporting a persisted file failed.
    #[error(transparent)]
    Persist(#[from] jobcache_persist::Error),
    /// A file operation of the command line itself failed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// No function of that name is in the cache.
    #[error(
        "no function {name:?} in the cache at {dir}{hint}; run `jobcache ls` to list the functions"
    )]
    UnknownFunction {
        /// The name given.
        name: String,
        /// The cache directory.
        dir: PathBuf,
        /// Candidates, when the name was ambiguous (starts with "; ").
        hint: String,
    },
    /// No entry, or several, match a digest prefix.
    #[error("{what} {digest:?} of {function} in {dir}; run `jobcache ls {function}` to list its entries")]
    UnknownEntry {
        /// "no entry matches" or "several entries match".
        what: &'static str,
        /// The digest (prefix) given.
        digest: String,
        /// The function.
        function: String,
        /// The cache directory.
        dir: PathBuf,
    },
    /// Arguments that parse but do not make sense together.
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        CliError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`CliError`].
pub type Result<T, E = CliError> = std::result::Result<T, E>;
