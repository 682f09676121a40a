//! Capturing what a computation writes to stdout and stderr, at the file
//! descriptor level, while passing it through to the terminal.

use serde::{Deserialize, Serialize};
use std::io::Write;

/// Output captured by [`capture`]: the first bytes of stdout and stderr, and
/// how many were written in all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Captured {
    /// The first [`CaptureOptions::max_bytes`] bytes written to stdout.
    pub stdout: Vec<u8>,
    /// The first [`CaptureOptions::max_bytes`] bytes written to stderr.
    pub stderr: Vec<u8>,
    /// Bytes written to stdout in all (more than kept if truncated).
    pub stdout_total: u64,
    /// Bytes written to stderr in all (more than kept if truncated).
    pub stderr_total: u64,
}

impl Captured {
    /// Whether some output was written beyond what was kept.
    pub fn truncated(&self) -> bool {
        self.stdout_total > self.stdout.len() as u64 || self.stderr_total > self.stderr.len() as u64
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.stdout_total == 0 && self.stderr_total == 0
    }
}

/// Limits of [`capture_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureOptions {
    /// Bytes kept per stream (all output is still passed through).
    pub max_bytes: usize,
    /// Pass output through to the original stdout/stderr as it is written.
    pub tee: bool,
}

impl Default for CaptureOptions {
    /// Keep 1 MiB per stream, pass output through.
    fn default() -> Self {
        CaptureOptions {
            max_bytes: 1 << 20,
            tee: true,
        }
    }
}

/// Writes captured output again (on a cache hit): stdout to stdout, stderr
/// to stderr, then a note on stderr if some was not kept.
pub fn replay(captured: &Captured) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(&captured.stdout)?;
    out.flush()?;
    let mut err = std::io::stderr().lock();
    err.write_all(&captured.stderr)?;
    if captured.truncated() {
        let lost = captured
            .stdout_total
            .saturating_sub(captured.stdout.len() as u64)
            + captured
                .stderr_total
                .saturating_sub(captured.stderr.len() as u64);
        writeln!(err, "[jobcache] {lost} more bytes of output were not kept")?;
    }
    err.flush()
}

/// Runs `f` while capturing stdout and stderr (1 MiB kept per stream,
/// output passed through). See [`capture_with`].
///
/// ```
/// let (n, out) = jobcache_trace::capture(|| {
///     println!("computing");
///     42
/// });
/// assert_eq!(n, 42);
/// # let _ = out;
/// ```
#[cfg(unix)]
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Captured) {
    capture_with(&CaptureOptions::default(), f)
}

#[cfg(unix)]
pub use imp::capture_with;

#[cfg(unix)]
mod imp {
    use super::{CaptureOptions, Captured};
    use crate::TraceError;
    use std::cell::Cell;
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    thread_local! {
        static ACTIVE: Cell<bool> = const { Cell::new(false) };
    }

    /// How long to wait, after `f` returns, for output still in the pipes
    /// (a child process that `f` started and left running keeps them open).
    const DRAIN_WAIT: Duration = Duration::from_secs(2);

    /// Runs `f` while capturing what it writes to file descriptors 1 and 2.
    ///
    /// Each descriptor is pointed at a pipe (`dup2`); a reader thread per
    /// pipe keeps the first [`CaptureOptions::max_bytes`] bytes and, if
    /// [`CaptureOptions::tee`], writes everything on to the original
    /// descriptor as it arrives. Output of C code and child processes is
    /// caught too. Rust's and C's stdio buffers are flushed before and after.
    /// The descriptors are restored before this returns, also when `f`
    /// panics (the panic then continues).
    ///
    /// The redirection is process-wide: other threads' output in that window
    /// is captured too. Captures are serialized; one nested in another on
    /// the same thread runs `f` uncaptured and returns empty output.
    ///
    /// Tracing never stops a computation: if the redirection cannot be set
    /// up (no descriptor 1, no pipes left), a `log` warning is written and
    /// `f` runs uncaptured, returning empty output.
    pub fn capture_with<R>(opts: &CaptureOptions, f: impl FnOnce() -> R) -> (R, Captured) {
        if ACTIVE.with(Cell::get) {
            return (f(), Captured::default());
        }
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        flush_all();
        let started = Redirect::start(1, opts).and_then(|out| match Redirect::start(2, opts) {
            Ok(err) => Ok((out, err)),
            Err(e) => {
                out.finish();
                Err(e)
            }
        });
        let (out, err) = match started {
            Ok(pair) => pair,
            Err(e) => {
                log::warn!(target: crate::LOG_TARGET, "{}; running without capturing output", crate::chain(&e));
                return (f(), Captured::default());
            }
        };
        ACTIVE.with(|a| a.set(true));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        ACTIVE.with(|a| a.set(false));
        flush_all();
        out.restore();
        err.restore();
        let deadline = Instant::now() + DRAIN_WAIT;
        let (stdout, stdout_total) = out.collect(deadline);
        let (stderr, stderr_total) = err.collect(deadline);
        match result {
            Ok(r) => (
                r,
                Captured {
                    stdout,
                    stderr,
                    stdout_total,
                    stderr_total,
                },
            ),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    fn flush_all() {
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        // SAFETY: fflush(NULL) flushes every C stdio output stream; it takes
        // no pointer from us.
        unsafe {
            libc::fflush(std::ptr::null_mut());
        }
    }

    fn os_err(action: &'static str) -> TraceError {
        TraceError::Capture {
            action,
            source: std::io::Error::last_os_error(),
        }
    }

    #[derive(Default)]
    struct Sink {
        kept: Vec<u8>,
        total: u64,
    }

    /// One descriptor pointed at a pipe, with its reader thread.
    struct Redirect {
        fd: RawFd,
        saved: OwnedFd,
        sink: Arc<Mutex<Sink>>,
        done: mpsc::Receiver<()>,
    }

    impl Redirect {
        fn start(fd: RawFd, opts: &CaptureOptions) -> Result<Redirect, TraceError> {
            // SAFETY: F_DUPFD_CLOEXEC on a descriptor number only creates a new
            // descriptor; a failure is reported as -1.
            let saved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
            if saved < 0 {
                return Err(os_err("dup of stdout/stderr"));
            }
            // SAFETY: `saved` was just created and is owned by nothing else.
            let saved = unsafe { OwnedFd::from_raw_fd(saved) };
            let mut fds = [0 as RawFd; 2];
            // SAFETY: `fds` has room for the two descriptors pipe writes.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                return Err(os_err("pipe"));
            }
            // SAFETY: both descriptors were just created by pipe and are
            // owned by nothing else.
            let (read_end, write_end) =
                unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            for end in [&read_end, &write_end] {
                // SAFETY: F_SETFD on a valid descriptor we own; child processes
                // must not inherit the pipe's own ends.
                unsafe {
                    libc::fcntl(end.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            // SAFETY: dup2 between valid descriptors; `fd` now refers to the
            // pipe (without close-on-exec, so child processes write to it).
            if unsafe { libc::dup2(write_end.as_raw_fd(), fd) } < 0 {
                return Err(os_err("dup2 to the pipe"));
            }
            drop(write_end);
            let sink = Arc::new(Mutex::new(Sink::default()));
            let (tx, done) = mpsc::channel();
            let tee = if opts.tee {
                saved.try_clone().ok().map(std::fs::File::from)
            } else {
                None
            };
            let thread_sink = Arc::clone(&sink);
            let max = opts.max_bytes;
            let spawned = std::thread::Builder::new()
                .name("jobcache-capture".into())
                .spawn(move || {
                    pump(std::fs::File::from(read_end), tee, &thread_sink, max);
                    let _ = tx.send(());
                });
            let redirect = Redirect {
                fd,
                saved,
                sink,
                done,
            };
            if spawned.is_err() {
                redirect.finish();
                return Err(TraceError::Capture {
                    action: "starting the reader thread",
                    source: std::io::Error::other("thread spawn failed"),
                });
            }
            Ok(redirect)
        }

        /// Restores the descriptor, waits for the reader, returns the output.
        fn finish(self) -> (Vec<u8>, u64) {
            self.restore();
            self.collect(Instant::now() + DRAIN_WAIT)
        }

        /// Points the descriptor back at what it was.
        fn restore(&self) {
            // SAFETY: both are valid descriptors; this closes our pipe write
            // end held at `fd`, so the reader sees end of file.
            unsafe {
                libc::dup2(self.saved.as_raw_fd(), self.fd);
            }
        }

        /// Waits (until `deadline` at most) for the reader, returns the output.
        fn collect(self, deadline: Instant) -> (Vec<u8>, u64) {
            let _ = self
                .done
                .recv_timeout(deadline.saturating_duration_since(Instant::now()));
            let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
            (std::mem::take(&mut sink.kept), sink.total)
        }
    }

    fn pump(
        mut from: std::fs::File,
        mut tee: Option<std::fs::File>,
        sink: &Mutex<Sink>,
        max: usize,
    ) {
        use std::io::Read;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let chunk = buf.get(..n).unwrap_or_default();
            if let Some(t) = tee.as_mut() {
                if t.write_all(chunk).is_err() {
                    tee = None;
                }
            }
            let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
            let room = max.saturating_sub(s.kept.len()).min(n);
            s.kept
                .extend_from_slice(chunk.get(..room).unwrap_or_default());
            s.total += n as u64;
        }
    }
}
