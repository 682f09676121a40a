//! Execution logging, the append-only run journal, captured output and
//! reports for [jobcache](https://github.com/jobcache/jobcache).
//!
//! memo reports what happens to each call as an [`Event`] (a [`EventKind::Hit`],
//! a [`EventKind::Computed`] output, a [`EventKind::Corrupt`] entry, …) to a
//! [`Tracer`], a one-method trait, and knows nothing of where events go:
//!
//! - [`LogTracer`]: joblib-style lines through the `log` crate (target
//!   `jobcache`), chosen by a verbosity as joblib's `verbose`:
//!   `[Memory] Calling square...` and `square - 1.2s, 0.0min`.
//! - [`Journal`]: the run journal, an append-only JSON Lines file that many
//!   processes share (format: `JOURNAL.md`); read back with [`read_journal`], [`JournalReader`] and
//!   a [`Filter`], or followed as it grows with a [`Follower`].
//! - [`FanOut`] sends to several tracers, [`NoTracer`] to none.
//!
//! [`summarize`] renders any `Serialize` argument as a short line in a time
//! bounded by its budget, not by the value's size (a 1 GiB ndarray array shows
//! as `array(float64, shape=[16384, 8192], [0.0, 0.0, 0.0, 0.0, …])`).
//! [`capture`] runs a computation while capturing its stdout and stderr at the
//! file-descriptor level, and [`replay`] writes them again on a hit.
//! [`report::text`], [`report::html`] and [`report::json`] turn events into
//! per-function totals, runs with a timeline each, grouped problems and the
//! cache over time (one [`report::Summary`]). [`chain`] prints an error with
//! its causes once: a level's message in this crate does not repeat its
//! source.
//!
//! # Example: write and read a journal
//!
//! ```
//! use jobcache_trace::{read_journal, summarize, Event, EventKind, FanOut, Filter, Journal, LogTracer, Tracer};
//! use std::time::Duration;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("journal.jsonl");
//! let tracer = FanOut::new().with(LogTracer::new(1)).with(Journal::open(&path)?);
//!
//! let args = (vec![1.0, 2.0, 3.0], "mode");
//! let event = Event::new(EventKind::Computed, "square")
//!     .args("9f".repeat(32), summarize(&args))
//!     .duration(Duration::from_millis(1200))
//!     .output_bytes(24);
//! tracer.record(&event);
//! tracer.record(&Event::new(EventKind::Hit, "square").args("9f".repeat(32), summarize(&args)));
//! // A journal holds hit lines and writes them in batches; dropping it writes them.
//! drop(tracer);
//!
//! let events = read_journal(&path, &Filter::new().function("square"))?;
//! assert_eq!(events.len(), 2);
//! assert_eq!(events[0].args_summary, r#"([1.0, 2.0, 3.0], "mode")"#);
//! assert!(jobcache_trace::report::text(&events).contains("square"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Limitations
//!
//! - Lines never interleave because each is one `write` to an `O_APPEND`
//!   file: true on local file systems, not on NFS, where appends from
//!   several hosts can overwrite each other.
//! - As a [`Tracer`], a journal holds `hit` and `computed` lines in memory
//!   and writes up to [`HIT_BATCH`] of them with one `write` (with the next
//!   other event, on [`Journal::flush`], or on drop): a process killed
//!   before that loses them. Repeated hits of one call held together are
//!   one line counting them ([`Event::calls`]). Other events are written
//!   at once. See `JOURNAL.md`.
//! - Rotation renames the file; a process still writing to the old one
//!   keeps its lines there (up to 32 of them), and lines in a file rotated
//!   out of [`JournalOptions::keep`] are gone.
//! - Journal files are opened with `O_NOFOLLOW`: a symlink at a journal
//!   name is replaced when writing and an error when reading, never
//!   followed (Unix; elsewhere names are opened as they are).
//! - [`capture`] (Unix only) redirects descriptors 1 and 2 of the whole
//!   process: output of other threads in that window is captured too, and
//!   concurrent captures wait for each other. The order between stdout and
//!   stderr is not kept. A child process left running keeps the pipes open;
//!   capture stops waiting for it after two seconds.
//! - Time saved by hits is estimated from computation times found in the
//!   events (or recorded with the hit), not measured.
//! - A report's runs are told apart by host and process id; a process id
//!   used again after an hour of silence starts a new run, sooner it does not.
//! - The report's "cache over time" replays the journal: entries removed
//!   without an event (files deleted by hand) are not seen.
#![deny(missing_docs)]

/// The README's example is compiled and run as a test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod capture;
mod error;
mod event;
mod journal;
mod nofollow;
pub mod report;
mod summary;
mod time;
mod tracer;

#[cfg(unix)]
pub use capture::{capture, capture_with};
pub use capture::{replay, CaptureOptions, Captured};
pub use error::{chain, Chain, TraceError};
pub use event::{host_name, process_id, Event, EventKind, JOBCACHE_VERSION};
pub use journal::{
    journal_files, read_journal, Filter, Follower, Journal, JournalOptions, JournalReader,
    HIT_BATCH, HIT_BYTES, HIT_DELAY, MAX_LINE,
};
pub use summary::{summarize, summarize_with, SummaryOptions};
pub use time::Timestamp;
pub use tracer::{format_time, FanOut, LogTracer, NoTracer, Tracer, LOG_TARGET};
