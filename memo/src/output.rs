//! Capturing a computation's stdout and stderr (Unix), and replaying them.

use jobcache_trace::Captured;

/// Runs `compute` with its output captured. If capturing cannot be set up,
/// the computation runs uncaptured (jobcache-trace logs why): capture is a
/// convenience, never a reason to fail.
#[cfg(unix)]
pub(crate) fn capture<R>(compute: impl FnOnce() -> R) -> (R, Option<Captured>) {
    let (value, captured) = jobcache_trace::capture(compute);
    (value, Some(captured))
}

#[cfg(not(unix))]
pub(crate) fn capture<R>(compute: impl FnOnce() -> R) -> (R, Option<Captured>) {
    (compute(), None)
}

/// Writes stored output again, as it was written when the result was computed.
pub(crate) fn replay(stdout: Option<&String>, stderr: Option<&String>) {
    let captured = Captured {
        stdout: stdout.map(|s| s.as_bytes().to_vec()).unwrap_or_default(),
        stderr: stderr.map(|s| s.as_bytes().to_vec()).unwrap_or_default(),
        stdout_total: stdout.map_or(0, |s| s.len() as u64),
        stderr_total: stderr.map_or(0, |s| s.len() as u64),
    };
    if !captured.is_empty() {
        if let Err(e) = jobcache_trace::replay(&captured) {
            log::warn!(target: "jobcache", "cannot replay captured output: {e}");
        }
    }
}
