//! jobcache: joblib's `Memory` for Rust.
//!
//! Wrap an expensive function so its output is cached on disk, keyed by a
//! hash of its arguments and of its code, and recomputed only when something
//! changed. This facade re-exports the workspace's crates as modules:
//!
//! - [`hash`]: stable SHA-256 digests of any `serde::Serialize` value.
//!
//! ```
//! let key = jobcache::hash::hash(&("square", [1.0_f64, 2.0, 3.0]))?;
//! assert_eq!(key.to_string().len(), 64);
//! # Ok::<(), jobcache::hash::Error>(())
//! ```
#![deny(missing_docs)]

pub use jobcache_hash as hash;
