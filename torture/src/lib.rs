//! The torture run of jobcache (`cargo xtask torture`): worker processes
//! make cached calls whose every result can be checked exactly, through the
//! public API only (the `jobcache` facade and the `jobcache` binary), while
//! an orchestrator process injects faults into the cache directory. The
//! run ends with one line of figures; see `README.md` for what each counts
//! and which must be zero.
//!
//! The binary has two modes: `jobcache-torture run …` (the orchestrator)
//! and `jobcache-torture worker …`, which the orchestrator starts itself.
#![deny(missing_docs)]

pub mod calls;
pub mod faults;
pub mod orchestrator;
pub mod report;
pub mod rng;
pub mod sentinel;
pub mod worker;

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock nanoseconds since the Unix epoch: the one clock every process
/// of a run shares (call starts, injections, failures are compared on it).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
