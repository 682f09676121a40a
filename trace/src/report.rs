//! Reports of what ran: per-function totals as a terminal table
//! ([`text`]), a self-contained HTML page ([`html`]: runs, a timeline per
//! run, per-function totals, problems, the cache over time) and the same
//! figures as JSON ([`json`]), all from one [`Summary`].

mod model;
mod page;

pub use model::{
    downsample, is_call, summarize_events, CachePoint, Call, ProblemGroup, Run, Summary, RUN_GAP,
};
pub use page::{html, html_with, json, json_with, Stored};

use crate::{Event, EventKind};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Totals of one function over a set of events: the one definition of
/// calls, hits, computed and failed that `jobcache ls`, `report` and their
/// `--json` share.
///
/// A *call* is a hit, a computation or a failure (`calls = hits + computed
/// + failed`); `corrupt` counts entries found damaged (the call that met one
/// is counted again as computed or failed); `calling` events and removals
/// (`evicted`, `cleared`) are not calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunctionTotals {
    /// The function (`"TOTAL"` in the sum row of [`totals_with_sum`]).
    pub function: String,
    /// Calls: hits + computations + failures.
    pub calls: u64,
    /// Outputs loaded from the cache.
    pub hits: u64,
    /// Outputs computed and stored.
    pub computed: u64,
    /// Computations that failed.
    pub failed: u64,
    /// Corrupt entries met.
    pub corrupt: u64,
    /// Time spent computing (computations and failures).
    pub time_computing: Duration,
    /// Time spent loading hits.
    pub time_loading: Duration,
    /// Time saved by hits: for each hit, what computing took (the hit's
    /// `compute_duration`, else a computation of the same arguments in
    /// these events, else the function's mean computation) minus the load.
    pub time_saved: Duration,
    /// Bytes written by computations, ever (in these events): what is
    /// stored now is smaller once entries were evicted or cleared.
    pub bytes_written: u64,
    /// The longest computation or failure.
    pub slowest: Duration,
    /// Its argument summary.
    pub slowest_args: String,
}

impl FunctionTotals {
    /// Counts one call (a hit, computation or failure) that saved `saved`.
    fn add_call(&mut self, e: &Event, saved: Duration) {
        match e.kind {
            EventKind::Hit => {
                self.calls += e.calls;
                self.hits += e.calls;
                self.time_loading = self.time_loading.saturating_add(e.duration);
                self.time_saved = self.time_saved.saturating_add(saved);
            }
            EventKind::Computed | EventKind::Failed => {
                self.calls += 1;
                if e.kind == EventKind::Computed {
                    self.computed += 1;
                    self.bytes_written = self.bytes_written.saturating_add(e.output_bytes);
                } else {
                    self.failed += 1;
                }
                self.time_computing = self.time_computing.saturating_add(e.duration);
                if e.duration >= self.slowest
                    && (e.duration > self.slowest || self.slowest_args.is_empty())
                {
                    self.slowest = e.duration;
                    self.slowest_args.clone_from(&e.args_summary);
                }
            }
            _ => {}
        }
    }

    /// Hits ÷ calls, or `None` without calls.
    pub fn hit_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.hits as f64 / self.calls as f64)
    }

    fn add(&mut self, r: &FunctionTotals) {
        self.calls += r.calls;
        self.hits += r.hits;
        self.computed += r.computed;
        self.failed += r.failed;
        self.corrupt += r.corrupt;
        self.time_computing = self.time_computing.saturating_add(r.time_computing);
        self.time_loading = self.time_loading.saturating_add(r.time_loading);
        self.time_saved = self.time_saved.saturating_add(r.time_saved);
        self.bytes_written = self.bytes_written.saturating_add(r.bytes_written);
        if r.slowest > self.slowest {
            self.slowest = r.slowest;
            self.slowest_args.clone_from(&r.slowest_args);
        }
    }
}

/// Per-function totals, sorted by function name.
pub fn totals(events: &[Event]) -> Vec<FunctionTotals> {
    totals_of_calls(events, &model::calls(events))
}

pub(crate) fn totals_of_calls(events: &[Event], calls: &[model::Call]) -> Vec<FunctionTotals> {
    let mut map: BTreeMap<&str, FunctionTotals> = BTreeMap::new();
    let row = |f: &str| -> FunctionTotals {
        FunctionTotals {
            function: f.to_string(),
            ..FunctionTotals::default()
        }
    };
    for c in calls {
        let e = &events[c.event];
        map.entry(&e.function)
            .or_insert_with(|| row(&e.function))
            .add_call(e, c.saved);
    }
    for e in events.iter().filter(|e| e.kind == EventKind::Corrupt) {
        map.entry(&e.function)
            .or_insert_with(|| row(&e.function))
            .corrupt += 1;
    }
    map.into_values().collect()
}

/// [`totals`] followed by a `TOTAL` row summing them.
pub fn totals_with_sum(events: &[Event]) -> Vec<FunctionTotals> {
    with_sum(totals(events))
}

fn with_sum(mut rows: Vec<FunctionTotals>) -> Vec<FunctionTotals> {
    let mut sum = FunctionTotals {
        function: "TOTAL".to_string(),
        ..FunctionTotals::default()
    };
    for r in &rows {
        sum.add(r);
    }
    rows.push(sum);
    rows
}

/// A duration for people: `350 ms`, `1.2 s`, `3.5 min`, `1.5 h`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// A size for people: `512 B`, `1.5 KiB`, `3.0 MiB`, `1.0 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in UNITS.iter().skip(1) {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// The headers of [`text`], in the CLI's casing.
const COLUMNS: [&str; 9] = [
    "FUNCTION",
    "CALLS",
    "HITS",
    "COMPUTED",
    "FAILED",
    "CORRUPT",
    "COMPUTING",
    "SAVED",
    "WRITTEN",
];

fn cells(t: &FunctionTotals) -> [String; 9] {
    [
        t.function.clone(),
        t.calls.to_string(),
        t.hits.to_string(),
        t.computed.to_string(),
        t.failed.to_string(),
        t.corrupt.to_string(),
        human_duration(t.time_computing),
        human_duration(t.time_saved),
        human_bytes(t.bytes_written),
    ]
}

/// Per-function totals as a terminal table, with a `TOTAL` row.
pub fn text(events: &[Event]) -> String {
    let rows: Vec<[String; 9]> = totals_with_sum(events).iter().map(cells).collect();
    let mut widths = COLUMNS.map(|c| c.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, r: &[String]| {
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            if i == 0 {
                let _ = write!(out, "{c:<w$}");
            } else {
                let _ = write!(out, "  {c:>w$}");
            }
        }
        out.push('\n');
    };
    line(&mut out, &COLUMNS.map(String::from));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut out, &rule);
    for (i, r) in rows.iter().enumerate() {
        if i + 1 == rows.len() && rows.len() > 1 {
            line(&mut out, &rule);
        }
        line(&mut out, r);
    }
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `s` cut to `max` characters, with an ellipsis.
fn short(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", s.get(..at).unwrap_or_default()),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventKind, f: &str, digest: &str, ms: u64) -> Event {
        Event::new(kind, f)
            .args(digest, "")
            .duration(Duration::from_millis(ms))
    }

    #[test]
    fn time_saved_uses_the_best_known_compute_time() {
        let events = vec![
            ev(EventKind::Computed, "f", "a", 1000).output_bytes(10),
            ev(EventKind::Computed, "f", "b", 3000).output_bytes(5),
            ev(EventKind::Hit, "f", "a", 100),
            ev(EventKind::Hit, "f", "c", 0),
            ev(EventKind::Hit, "f", "z", 10).compute_duration(Duration::from_millis(510)),
            ev(EventKind::Failed, "f", "d", 50),
        ];
        let t = &totals(&events)[0];
        assert_eq!((t.calls, t.hits, t.computed, t.failed), (6, 3, 2, 1));
        // 900 (same args) + 2000 (mean) + 500 (known).
        assert_eq!(t.time_saved, Duration::from_millis(3400));
        assert_eq!(t.time_computing, Duration::from_millis(4050));
        assert_eq!(t.bytes_written, 15);
    }

    #[test]
    fn escapes_everything_user_written() {
        assert_eq!(
            escape_html("<a href='x'>&\"</a>\u{7}"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;\u{FFFD}"
        );
        let page = html(&[ev(EventKind::Computed, "<script>alert(1)</script>", "a", 5)]);
        assert!(!page.contains("<script>"));
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(human_duration(Duration::from_millis(350)), "350 ms");
        assert_eq!(human_duration(Duration::from_secs(210)), "3.5 min");
    }
}
