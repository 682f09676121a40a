//! `Memory` and the memoizing wrapper: transparent disk caching of Rust
//! function calls.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod cached;
mod callable;
mod codec;
mod error;
mod identity;
mod ignored;
mod mapped;
mod memory;
mod output;
mod shelved;

pub use cached::{fields, Cached, Validator};
pub use callable::Callable;
pub use error::Error;
pub use identity::{Definition, Identity};
pub use ignored::Ignored;
pub use mapped::ArrayOutput;
pub use memory::{Memory, MemoryBuilder, JOURNAL_FILE};
pub use shelved::Shelved;

pub use jobcache_store::{EntryMeta, Limits, Reduction, Store, Wait};
