//! The [`Tracer`] trait and its simple implementations.

use crate::{Event, EventKind};
use std::sync::Arc;
use std::time::Duration;

/// Where events go. memo calls [`record`](Tracer::record) for every event and
/// knows nothing of what is done with it.
///
/// Implementations must not fail the caller's computation: an error (a full
/// disk under the journal) is reported as a `log` warning and dropped.
pub trait Tracer: Send + Sync {
    /// Records one event.
    fn record(&self, event: &Event);
}

impl<T: Tracer + ?Sized> Tracer for &T {
    fn record(&self, event: &Event) {
        (**self).record(event);
    }
}

impl<T: Tracer + ?Sized> Tracer for Box<T> {
    fn record(&self, event: &Event) {
        (**self).record(event);
    }
}

impl<T: Tracer + ?Sized> Tracer for Arc<T> {
    fn record(&self, event: &Event) {
        (**self).record(event);
    }
}

/// A tracer that drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTracer;

impl Tracer for NoTracer {
    fn record(&self, _event: &Event) {}
}

/// Sends each event to several tracers, in order (for example log lines and
/// a journal).
#[derive(Default)]
pub struct FanOut {
    tracers: Vec<Box<dyn Tracer>>,
}

impl FanOut {
    /// An empty fan-out.
    pub fn new() -> FanOut {
        FanOut::default()
    }

    /// Adds a tracer.
    #[must_use]
    pub fn with(mut self, tracer: impl Tracer + 'static) -> FanOut {
        self.tracers.push(Box::new(tracer));
        self
    }

    /// Adds a tracer.
    pub fn push(&mut self, tracer: Box<dyn Tracer>) {
        self.tracers.push(tracer);
    }

    /// How many tracers it sends to.
    pub fn len(&self) -> usize {
        self.tracers.len()
    }

    /// Whether it sends to none.
    pub fn is_empty(&self) -> bool {
        self.tracers.is_empty()
    }
}

impl std::fmt::Debug for FanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanOut")
            .field("tracers", &self.tracers.len())
            .finish()
    }
}

impl Tracer for FanOut {
    fn record(&self, event: &Event) {
        for t in &self.tracers {
            t.record(event);
        }
    }
}

/// The `log` target of every line this crate writes.
pub const LOG_TARGET: &str = "jobcache";

/// Log lines through the [`log`] crate (target `jobcache`), chosen by a
/// verbosity as joblib's `verbose`:
///
/// | verbose | lines |
/// |---|---|
/// | 0 | warnings only: corrupt entries and storage errors |
/// | ≥ 1 | also `[Memory] Calling square...` and the argument summary when a computation starts ([`EventKind::Calling`]), `square - 1.2s, 0.0min` when it is done, failures |
/// | ≥ 2 | also a line per hit, eviction and clear |
///
/// Corrupt entries and storage errors are warnings at every verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogTracer {
    verbose: u8,
}

impl LogTracer {
    /// A log tracer at verbosity `verbose`.
    pub fn new(verbose: u8) -> LogTracer {
        LogTracer { verbose }
    }

    /// The verbosity.
    pub fn verbose(&self) -> u8 {
        self.verbose
    }

    /// Whether this tracer writes anything for events of `kind` at its
    /// verbosity: calls, computations and failures from 1, hits, evictions
    /// and clears from 2, corrupt entries and storage errors always.
    pub fn logs(&self, kind: EventKind) -> bool {
        let least = match kind {
            EventKind::Calling | EventKind::Computed | EventKind::Failed => 1,
            EventKind::Hit | EventKind::Evicted | EventKind::Cleared => 2,
            EventKind::Corrupt | EventKind::StorageError => 0,
            _ => return false,
        };
        self.verbose >= least
    }

    /// The lines this tracer writes for `event`, with their level (what
    /// [`record`](Tracer::record) sends to `log`).
    pub fn lines(&self, event: &Event) -> Vec<(log::Level, String)> {
        let f = &event.function;
        let mut out = Vec::new();
        if !self.logs(event.kind) {
            return out;
        }
        match event.kind {
            EventKind::Calling => {
                out.push((log::Level::Info, format!("[Memory] Calling {f}...")));
                out.push((log::Level::Info, call_repr(event)));
            }
            EventKind::Computed => {
                let msg = format!("{f} - {}", format_time(event.duration));
                let pad = 80usize.saturating_sub(msg.chars().count());
                out.push((log::Level::Info, format!("{}{msg}", "_".repeat(pad))));
            }
            EventKind::Failed => {
                out.push((
                    log::Level::Warn,
                    format!(
                        "[Memory] {} failed after {}: {}",
                        call_repr(event),
                        format_time(event.duration),
                        event.message.as_deref().unwrap_or("no message")
                    ),
                ));
            }
            EventKind::Hit => {
                out.push((
                    log::Level::Info,
                    format!(
                        "[Memory]{:>7.1}s, {:.1}min: Loading {f}",
                        event.duration.as_secs_f64(),
                        event.duration.as_secs_f64() / 60.0
                    ),
                ));
            }
            EventKind::Evicted | EventKind::Cleared => {
                out.push((
                    log::Level::Info,
                    format!(
                        "[Memory] {} {f} {}{}",
                        event.kind.as_str(),
                        short_digest(&event.args_digest),
                        message_suffix(event)
                    ),
                ));
            }
            EventKind::Corrupt => {
                out.push((
                    log::Level::Warn,
                    format!(
                        "[Memory] corrupt cache entry for {f} {} ignored and recomputed{}",
                        short_digest(&event.args_digest),
                        message_suffix(event)
                    ),
                ));
            }
            EventKind::StorageError => {
                out.push((
                    log::Level::Warn,
                    format!(
                        "[Memory] cache storage error for {f}; running uncached{}",
                        message_suffix(event)
                    ),
                ));
            }
            _ => {}
        }
        out
    }
}

impl Default for LogTracer {
    /// Verbosity 1, joblib's default.
    fn default() -> Self {
        LogTracer::new(1)
    }
}

impl Tracer for LogTracer {
    fn record(&self, event: &Event) {
        for (level, line) in self.lines(event) {
            log::log!(target: LOG_TARGET, level, "{line}");
        }
    }
}

/// `square(array(…))`: the function applied to its argument summary.
fn call_repr(event: &Event) -> String {
    let s = &event.args_summary;
    if s.starts_with('(') {
        format!("{}{s}", event.function)
    } else {
        format!("{}({s})", event.function)
    }
}

fn short_digest(d: &str) -> &str {
    d.get(..12).unwrap_or(d)
}

fn message_suffix(event: &Event) -> String {
    event
        .message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default()
}

/// joblib's duration form: `1.2s, 0.0min`.
pub fn format_time(d: Duration) -> String {
    let t = d.as_secs_f64();
    format!("{t:.1}s, {:.1}min", t / 60.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Collect(Mutex<Vec<EventKind>>);
    impl Tracer for Collect {
        fn record(&self, event: &Event) {
            self.0.lock().unwrap().push(event.kind);
        }
    }

    #[test]
    fn joblib_banner_and_done_line() {
        let t = LogTracer::new(1);
        let calling = Event::new(EventKind::Calling, "square")
            .args("ab", "(array(float64, shape=[3], [1.0, 2.0, 3.0]))");
        let lines = t.lines(&calling);
        assert_eq!(lines[0].1, "[Memory] Calling square...");
        assert_eq!(
            lines[1].1,
            "square(array(float64, shape=[3], [1.0, 2.0, 3.0]))"
        );
        let done = Event::new(EventKind::Computed, "square").duration(Duration::from_millis(1234));
        let line = &t.lines(&done)[0].1;
        assert!(line.ends_with("square - 1.2s, 0.0min"), "{line}");
        assert_eq!(line.chars().count(), 80);
        assert!(t.lines(&Event::new(EventKind::Hit, "square")).is_empty());
        assert_eq!(
            LogTracer::new(2)
                .lines(&Event::new(EventKind::Hit, "square"))
                .len(),
            1
        );
    }

    #[test]
    fn silent_but_warnings() {
        let t = LogTracer::new(0);
        assert!(t.lines(&Event::new(EventKind::Calling, "f")).is_empty());
        assert!(t.lines(&Event::new(EventKind::Computed, "f")).is_empty());
        let w = t.lines(&Event::new(EventKind::Corrupt, "f").message("bad checksum"));
        assert_eq!(w[0].0, log::Level::Warn);
        assert!(w[0].1.contains("bad checksum"));
        let w = t.lines(&Event::new(EventKind::StorageError, "f"));
        assert_eq!(w[0].0, log::Level::Warn);
    }

    #[test]
    fn fan_out_reaches_every_tracer_and_is_object_safe() {
        let a = Arc::new(Collect(Mutex::new(Vec::new())));
        let fan = FanOut::new().with(a.clone()).with(NoTracer).with(a.clone());
        let dynamic: &dyn Tracer = &fan;
        dynamic.record(&Event::new(EventKind::Hit, "f"));
        assert_eq!(*a.0.lock().unwrap(), vec![EventKind::Hit, EventKind::Hit]);
        assert_eq!(fan.len(), 3);
    }
}
