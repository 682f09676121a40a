//! jobcache: joblib's `Memory` for Rust.
//!
//! You rerun the same long script again and again while you tune it. Wrap
//! each expensive step — a plain Rust function — with a [`Memory`], and its
//! output is cached on disk, keyed by a hash of its arguments and of its
//! code, and recomputed only when something changed:
//!
//! ```
//! use jobcache::prelude::*;
//! use ndarray::Array2;
//!
//! fn square(a: &Array2<f64>) -> Array2<f64> {
//!     a * a
//! }
//!
//! # fn main() -> Result<(), jobcache::Error> {
//! # let dir = tempfile::tempdir().map_err(|_| jobcache::Error::Disabled)?;
//! let mem = Memory::new(dir.path())?;              // creates the directory
//! let square = mem.cache(square);                  // named from its path
//! let a = Array2::from_elem((3, 3), 2.0);
//! let b = square.call(&a);                         // computes and stores
//! let c = square.call(&a);                         // loads; square does not run
//! assert_eq!(b, c);
//! # Ok(())
//! # }
//! ```
//!
//! The facade re-exports the workspace's crates as modules:
//!
//! - [`memo`]: [`Memory`], [`Cached`], [`memoize!`], [`Ignored`], [`Shelved`].
//! - [`persist`]: fast, safe save/load of serde values with raw ndarray
//!   arrays, memory mapping and NumPy `.npy`.
//! - [`hash`]: stable SHA-256 digests of any `serde::Serialize` value.
//!
//! Log lines (joblib's `[Memory] Calling square...`) go through the `log`
//! crate, target `jobcache`; [`log_to_stderr`] shows them without setting up
//! a logger.
#![deny(missing_docs)]

pub use jobcache_hash as hash;
pub use jobcache_memo as memo;
pub use jobcache_persist as persist;

pub use jobcache_memo::{memoize, Cached, Error, Ignored, Memory, MemoryBuilder, Shelved};

/// The names most programs need: `use jobcache::prelude::*;`.
pub mod prelude {
    pub use jobcache_memo::{memoize, Cached, Ignored, Memory, Shelved};
}

/// Shows jobcache's log lines (target `jobcache`, level info and above) on
/// standard error, as joblib prints them, when no other logger is set up.
/// Does nothing if the program already installed a logger.
pub fn log_to_stderr() {
    log_to_stderr_at(log::LevelFilter::Info);
}

/// [`log_to_stderr`] up to `level`: `Debug` adds the line each miss logs
/// about why it missed ("argument 2 (`scale`) changed; code unchanged", see
/// [`memo::why`]). Does nothing if the program already installed a logger.
pub fn log_to_stderr_at(level: log::LevelFilter) {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.target().starts_with("jobcache") && metadata.level() <= log::max_level()
        }
        fn log(&self, record: &log::Record<'_>) {
            if self.enabled(record.metadata()) {
                eprintln!("{}", record.args());
            }
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}
