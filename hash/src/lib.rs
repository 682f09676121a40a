//! Stable SHA-256 digests of any `serde::Serialize` value: the cache keys of jobcache.
//!
//! This crate is part of [jobcache](https://github.com/jobcache/jobcache); its
//! public surface is being built and is not usable yet.
#![deny(missing_docs)]
