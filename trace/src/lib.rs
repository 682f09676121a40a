//! Execution logging, the append-only run journal, captured output and reports for jobcache.
//!
//! This crate is part of [jobcache](https://github.com/jobcache/jobcache); its
//! public surface is being built and is not usable yet.
#![deny(missing_docs)]
