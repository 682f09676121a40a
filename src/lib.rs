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
//! # Beyond joblib
//!
//! **Refresh** one call: run it whatever is cached, store the new result in
//! place of the old one, and return it.
//!
//! ```
//! # use jobcache::prelude::*;
//! # fn main() -> Result<(), jobcache::Error> {
//! # let dir = tempfile::tempdir().map_err(|_| jobcache::Error::Disabled)?;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! static PRICE: AtomicU32 = AtomicU32::new(100);
//! fn quote(item: &str) -> u32 {
//!     PRICE.load(Ordering::SeqCst) + item.len() as u32
//! }
//!
//! let mem = Memory::builder(dir.path()).verbose(0).build()?;
//! let quote = mem.cache(quote);
//! assert_eq!(quote.call("tea"), 103);
//! PRICE.store(200, Ordering::SeqCst);
//! assert_eq!(quote.call("tea"), 103);    // cached
//! assert_eq!(quote.refresh("tea"), 203); // run again and stored
//! assert_eq!(quote.call("tea"), 203);
//! # Ok(())
//! # }
//! ```
//!
//! **Async functions**, on any executor (the library depends on none; see
//! [`Cached::call_async`] for large results and `spawn_blocking`):
//!
//! ```
//! # use jobcache::prelude::*;
//! # fn main() -> Result<(), jobcache::Error> {
//! # let dir = tempfile::tempdir().map_err(|_| jobcache::Error::Disabled)?;
//! async fn fetch(id: u32) -> Vec<u8> {
//!     vec![id as u8; 4] // stands for a request
//! }
//!
//! let mem = Memory::builder(dir.path()).verbose(0).build()?;
//! let fetch = mem.cache(fetch);
//! let body = pollster::block_on(fetch.call_async(7)); // or .await in tokio
//! assert_eq!(body, pollster::block_on(fetch.call_async(7)));
//! # Ok(())
//! # }
//! ```
//!
//! **Why a call missed**: every miss logs (debug level) what differs from the
//! nearest cached call, [`Cached::why`] returns it, and `jobcache why
//! FUNCTION` prints it for every stored call:
//!
//! ```
//! # use jobcache::prelude::*;
//! # fn main() -> Result<(), jobcache::Error> {
//! # let dir = tempfile::tempdir().map_err(|_| jobcache::Error::Disabled)?;
//! memoize! {
//!     fn scale(values: &[f64], factor: f64) -> Vec<f64> {
//!         values.iter().map(|v| v * factor).collect()
//!     }
//! }
//! let mem = Memory::builder(dir.path()).verbose(0).build()?;
//! let scale = mem.cache(scale);
//! scale.call((&[1.0, 2.0][..], 2.0));
//! let why = scale.why(&(&[1.0, 2.0][..], 3.0))?;
//! assert_eq!(why.to_string(), "argument 2 (`factor`) changed; code unchanged");
//! # Ok(())
//! # }
//! ```
//!
//! **Code a function calls**: [`memoize!`] hashes the function's own source
//! only. The opt-in crate fingerprint ([`memo::fingerprint`]) makes every
//! `.rs` file of the crate part of a version, so editing any helper
//! invalidates — and so does any other edit of the crate. In `build.rs`,
//! `jobcache_memo::fingerprint::emit(&["src"])`; where the function is
//! cached, `.version(jobcache::memo::crate_fingerprint!())`. What it
//! computes:
//!
//! ```
//! # use jobcache::prelude::*;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let krate = tempfile::tempdir()?;
//! # std::fs::create_dir(krate.path().join("src"))?;
//! # std::fs::write(krate.path().join("src/helpers.rs"), "pub fn k() -> f64 { 1.0 }")?;
//! # let dir = tempfile::tempdir()?;
//! use jobcache::memo::fingerprint;
//! fn fit(x: f64) -> f64 { x * 2.0 } // calls helpers in src/helpers.rs
//!
//! let mem = Memory::builder(dir.path()).verbose(0).build()?;
//! let version = fingerprint::of_paths(krate.path(), &["src"])?;
//! mem.cache(fit).version(version).call(1.0);
//!
//! std::fs::write(krate.path().join("src/helpers.rs"), "pub fn k() -> f64 { 2.0 }")?;
//! let edited = fingerprint::of_paths(krate.path(), &["src"])?;
//! assert!(!mem.cache(fit).version(edited).check_call_in_cache(&1.0));
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
/// A shared cache on S3-compatible object storage (feature `remote`).
#[cfg(feature = "remote")]
pub use jobcache_object_store as object_store;
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
