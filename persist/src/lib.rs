//! Fast, safe persistence of serde values with raw, 64-byte aligned ndarray arrays, memory-mapped loads and NumPy `.npy` interop.
//!
//! This crate is part of [jobcache](https://github.com/jobcache/jobcache); its
//! public surface is being built and is not usable yet.
#![deny(missing_docs)]
