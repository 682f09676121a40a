//! The `Store` trait and `FsStore`, a crash-safe, concurrent file store with atomic publish, per-entry locks, integrity checks and eviction.
//!
//! This crate is part of [jobcache](https://github.com/jobcache/jobcache); its
//! public surface is being built and is not usable yet.
#![deny(missing_docs)]
