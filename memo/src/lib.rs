//! `Memory` and the memoizing wrapper: transparent disk caching of Rust function calls.
//!
//! This crate is part of [jobcache](https://github.com/jobcache/jobcache); its
//! public surface is being built and is not usable yet.
#![deny(missing_docs)]
