//! `Memory` and the memoizing wrapper: transparent disk caching of Rust
//! function calls.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod callable;
mod identity;
mod ignored;

pub use callable::Callable;
pub use identity::{Definition, Identity};
pub use ignored::Ignored;
