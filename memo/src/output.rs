//! Capturing a computation's stdout and stderr (Unix), and replaying them.

use jobcache_trace::Captured;

/// Runs `compute` with its output captured. If capturing cannot be set up,
/// the computation runs uncaptured (with a warning): capture is a
/// convenience, never a reason to fail.
#[cfg(unix)]
pub(crate) fn capture<R>(compute: impl FnOnce() -> R) -> (R, Option<Captured>) {
    let mut pending = Some(compute);
    let attempt = jobcache_trace::capture(|| pending.take().map(|f| f()));
    match (attempt, pending.take()) {
        (Ok((Some(value), captured)), _) => (value, Some(captured)),
        (Err(e), Some(f)) => {
            log::warn!(target: "jobcache", "cannot capture output ({e}); running uncaptured");
            (f(), None)
        }
        // Either the closure ran (and returned Some) or it did not (and is
        // still pending): the two arms above cover both.
        (_, _) => unreachable!("capture either ran the computation or left it pending"),
    }
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
