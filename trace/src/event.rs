//! One traced event: what happened to one call of a cached function.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use std::time::Duration;

/// The version of jobcache that wrote an event.
pub const JOBCACHE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What happened. Written in the journal in snake case (`"computed"`).
///
/// Kinds unknown to this version (written by a newer jobcache) read back as
/// [`EventKind::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A computation starts (sent before the function runs; the log banner).
    Calling,
    /// The output was loaded from the cache.
    Hit,
    /// The function ran and its output was stored.
    Computed,
    /// The function ran and failed (panicked or returned an error).
    Failed,
    /// A cache entry failed its checks; it was treated as a miss.
    Corrupt,
    /// An entry was removed to respect a size limit.
    Evicted,
    /// Entries were removed on request.
    Cleared,
    /// The store could not be read or written; the call went on uncached.
    StorageError,
    /// A kind this version does not know.
    #[serde(other)]
    Other,
}

impl EventKind {
    /// The name used in the journal (`"hit"`, `"computed"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Calling => "calling",
            EventKind::Hit => "hit",
            EventKind::Computed => "computed",
            EventKind::Failed => "failed",
            EventKind::Corrupt => "corrupt",
            EventKind::Evicted => "evicted",
            EventKind::Cleared => "cleared",
            EventKind::StorageError => "storage_error",
            EventKind::Other => "other",
        }
    }
}

/// One event, one line of the journal.
///
/// Build one with [`Event::new`] (time, pid, host and version filled in) and
/// the builder methods, or fill the public fields directly.
///
/// ```
/// use jobcache_trace::{Event, EventKind};
/// use std::time::Duration;
/// let e = Event::new(EventKind::Computed, "square")
///     .args("ab".repeat(32), "(array(float64, shape=[3], [1.0, 2.0, 3.0]))")
///     .duration(Duration::from_millis(1200))
///     .output_bytes(24);
/// assert_eq!(e.kind, EventKind::Computed);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When the event was recorded (for a call: when it ended).
    pub time: Timestamp,
    /// The process that recorded it.
    pub pid: u32,
    /// The host name of that process.
    pub host: String,
    /// The cached function's name.
    pub function: String,
    /// The argument digest, 64 hex digits (empty when not about one call).
    #[serde(default)]
    pub args_digest: String,
    /// A bounded one-line summary of the arguments (see [`summarize`](crate::summarize)).
    #[serde(default)]
    pub args_summary: String,
    /// What happened.
    pub kind: EventKind,
    /// How long it took: computing for `computed`, loading for `hit` (for
    /// a line that counts several calls, their total).
    #[serde(default, with = "secs")]
    pub duration: Duration,
    /// How many calls the line counts: 1, or more for a `hit` line that
    /// stands for repeated hits of the same call (same function, same
    /// argument digest) recorded close together; [`time`](Event::time) is
    /// then when the last of them ended. Written only when not 1.
    #[serde(default = "one_call", skip_serializing_if = "is_one_call")]
    pub calls: u64,
    /// For a `hit`: how long the original computation took, when known.
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub compute_duration: Option<Duration>,
    /// Bytes of the stored output (written for `computed`, read for `hit`).
    #[serde(default)]
    pub output_bytes: u64,
    /// The jobcache version that recorded it.
    #[serde(default)]
    pub version: String,
    /// A free-form message: the error for `failed`, `corrupt`, `storage_error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Event {
    /// An event of `kind` for `function`, now, in this process and host.
    pub fn new(kind: EventKind, function: impl Into<String>) -> Event {
        Event {
            time: Timestamp::now(),
            pid: process_id(),
            host: host_name().to_string(),
            function: function.into(),
            args_digest: String::new(),
            args_summary: String::new(),
            kind,
            duration: Duration::ZERO,
            calls: 1,
            compute_duration: None,
            output_bytes: 0,
            version: JOBCACHE_VERSION.to_string(),
            message: None,
        }
    }

    /// Sets the argument digest (64 hex digits) and summary.
    #[must_use]
    pub fn args(mut self, digest: impl Into<String>, summary: impl Into<String>) -> Event {
        self.args_digest = digest.into();
        self.args_summary = summary.into();
        self
    }

    /// Sets the duration.
    #[must_use]
    pub fn duration(mut self, d: Duration) -> Event {
        self.duration = d;
        self
    }

    /// Sets, for a hit, how long the original computation took.
    #[must_use]
    pub fn compute_duration(mut self, d: Duration) -> Event {
        self.compute_duration = Some(d);
        self
    }

    /// Sets the output size in bytes.
    #[must_use]
    pub fn output_bytes(mut self, n: u64) -> Event {
        self.output_bytes = n;
        self
    }

    /// Sets the message.
    #[must_use]
    pub fn message(mut self, m: impl Into<String>) -> Event {
        self.message = Some(m.into());
        self
    }

    /// Sets the time.
    #[must_use]
    pub fn at(mut self, t: Timestamp) -> Event {
        self.time = t;
        self
    }

    /// When the call started: [`time`](Event::time) minus [`duration`](Event::duration)
    /// (for a line that counts several calls, as if they had run back to back).
    pub fn start(&self) -> Timestamp {
        self.time.saturating_sub(self.duration)
    }
}

fn one_call() -> u64 {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_one_call(n: &u64) -> bool {
    *n == 1
}

/// This process's id, read once per process: `getpid` is a system call,
/// and a cache hit records an event. A child made by `fork` reads its own
/// (a fork handler forgets the parent's).
pub fn process_id() -> u32 {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    static PID: AtomicU32 = AtomicU32::new(0);
    static CACHING: AtomicBool = AtomicBool::new(false);
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    let pid = PID.load(Ordering::Relaxed);
    if pid != 0 {
        return pid;
    }
    #[cfg(unix)]
    AT_FORK.call_once(|| {
        extern "C" fn forget() {
            // Async-signal-safe: one atomic store.
            PID.store(0, Ordering::Relaxed);
        }
        // SAFETY: `forget` is a plain function that only stores to an
        // atomic, which a child may do right after fork. If registration
        // fails the pid is not cached (read on every call instead).
        let registered = unsafe { libc::pthread_atfork(None, None, Some(forget)) } == 0;
        CACHING.store(registered, Ordering::Relaxed);
    });
    let pid = std::process::id();
    if CACHING.load(Ordering::Relaxed) {
        PID.store(pid, Ordering::Relaxed);
    }
    pid
}

/// This machine's host name (read once; `"unknown"` if it cannot be read).
pub fn host_name() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| read_host_name().unwrap_or_else(|| "unknown".to_string()))
}

#[cfg(unix)]
fn read_host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call;
    // gethostname writes at most `len` bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(buf.get(..end)?).into_owned();
    (!name.is_empty()).then_some(name)
}

#[cfg(not(unix))]
fn read_host_name() -> Option<String> {
    std::env::var("COMPUTERNAME").ok()
}

/// Durations as seconds (a float) in JSON.
mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(from_secs(f64::deserialize(d)?))
    }

    /// Seconds to a duration, rounded to the nanosecond; negative, NaN or
    /// huge values (a hand-edited journal) become zero or saturate.
    pub fn from_secs(secs: f64) -> Duration {
        if secs.is_nan() || secs <= 0.0 {
            return Duration::ZERO;
        }
        let whole = secs.trunc();
        if whole >= u64::MAX as f64 {
            return Duration::MAX;
        }
        let nanos = ((secs - whole) * 1e9).round() as u32;
        Duration::new(whole as u64, 0).saturating_add(Duration::from_nanos(u64::from(nanos)))
    }
}

mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map(super::secs::from_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unknown_kinds_read_as_other() {
        let k: EventKind = serde_json::from_str("\"teleported\"").unwrap();
        assert_eq!(k, EventKind::Other);
        let k: EventKind = serde_json::from_str("\"storage_error\"").unwrap();
        assert_eq!(k, EventKind::StorageError);
        assert_eq!(serde_json::to_string(&k).unwrap(), "\"storage_error\"");
    }

    /// Pins the line format described in JOURNAL.md.
    #[test]
    fn golden_line() {
        let mut e = Event::new(EventKind::Computed, "square")
            .args("ab".repeat(32), "(1, 2)")
            .duration(Duration::from_millis(1200))
            .output_bytes(8000)
            .at(Timestamp::parse("2024-05-01T10:00:01.2Z").unwrap());
        e.pid = 4242;
        e.host = "lab-1".into();
        e.version = "0.1.0".into();
        let golden = concat!(
            r#"{"time":"2024-05-01T10:00:01.200000Z","pid":4242,"host":"lab-1","function":"square","#,
            r#""args_digest":"abababababababababababababababababababababababababababababababab","#,
            r#""args_summary":"(1, 2)","kind":"computed","duration":1.2,"output_bytes":8000,"version":"0.1.0"}"#
        );
        assert_eq!(serde_json::to_string(&e).unwrap(), golden);
        let back: Event = serde_json::from_str(golden).unwrap();
        assert_eq!(back, e);
        // Minimal and extended lines read too.
        let minimal = r#"{"time":"2024-05-01T12:00:00+02:00","pid":1,"host":"h","function":"f","kind":"hit","new_field":[1]}"#;
        let m: Event = serde_json::from_str(minimal).unwrap();
        assert_eq!(
            (m.kind, m.duration, m.output_bytes),
            (EventKind::Hit, Duration::ZERO, 0)
        );
    }

    #[test]
    fn host_and_pid_are_filled() {
        let e = Event::new(EventKind::Hit, "f");
        assert_eq!(e.pid, std::process::id());
        assert_eq!(process_id(), std::process::id(), "cached");
        assert!(!e.host.is_empty());
        assert_eq!(e.version, JOBCACHE_VERSION);
    }

    proptest! {
        #[test]
        fn prop_event_json_round_trips(
            function in "\\PC{0,20}", summary in "\\PC{0,40}", micros in 0i64..4_000_000_000_000_000,
            dur_us in 0u64..10_000_000_000, bytes in any::<u64>(), msg in proptest::option::of("\\PC{0,20}"),
        ) {
            let mut e = Event::new(EventKind::Computed, function)
                .args("0".repeat(64), summary)
                .duration(Duration::from_micros(dur_us))
                .output_bytes(bytes)
                .at(Timestamp::from_unix_micros(micros));
            e.message = msg;
            let line = serde_json::to_string(&e).unwrap();
            prop_assert!(!line.contains('\n'));
            let back: Event = serde_json::from_str(&line).unwrap();
            prop_assert_eq!(back.time, e.time);
            prop_assert_eq!(&back.function, &e.function);
            prop_assert_eq!(&back.message, &e.message);
            prop_assert_eq!(back.output_bytes, e.output_bytes);
            // Seconds as f64 keep microseconds exactly in this range.
            prop_assert_eq!(back.duration.as_micros(), e.duration.as_micros());
        }
    }
}
