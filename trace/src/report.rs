//! Reports of what ran: per-function totals as a terminal table
//! ([`text`]) or a self-contained HTML page with an SVG timeline ([`html`]).

use crate::{Event, EventKind, Timestamp};
use std::collections::{BTreeMap, HashMap};
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
}

/// Per-function totals, sorted by function name.
pub fn totals(events: &[Event]) -> Vec<FunctionTotals> {
    let mut by_args: HashMap<(&str, &str), Duration> = HashMap::new();
    let mut sums: HashMap<&str, (Duration, u32)> = HashMap::new();
    for e in events.iter().filter(|e| e.kind == EventKind::Computed) {
        by_args.insert((&e.function, &e.args_digest), e.duration);
        let s = sums.entry(&e.function).or_default();
        s.0 = s.0.saturating_add(e.duration);
        s.1 = s.1.saturating_add(1);
    }
    let mut map: BTreeMap<&str, FunctionTotals> = BTreeMap::new();
    for e in events {
        let t = map.entry(&e.function).or_insert_with(|| FunctionTotals {
            function: e.function.clone(),
            ..FunctionTotals::default()
        });
        match e.kind {
            EventKind::Hit => {
                t.calls += 1;
                t.hits += 1;
                t.time_loading = t.time_loading.saturating_add(e.duration);
                let compute = e
                    .compute_duration
                    .or_else(|| {
                        by_args
                            .get(&(e.function.as_str(), e.args_digest.as_str()))
                            .copied()
                    })
                    .or_else(|| sums.get(e.function.as_str()).map(|(d, n)| *d / (*n).max(1)))
                    .unwrap_or_default();
                t.time_saved = t
                    .time_saved
                    .saturating_add(compute.saturating_sub(e.duration));
            }
            EventKind::Computed => {
                t.calls += 1;
                t.computed += 1;
                t.time_computing = t.time_computing.saturating_add(e.duration);
                t.bytes_written = t.bytes_written.saturating_add(e.output_bytes);
            }
            EventKind::Failed => {
                t.calls += 1;
                t.failed += 1;
                t.time_computing = t.time_computing.saturating_add(e.duration);
            }
            EventKind::Corrupt => t.corrupt += 1,
            _ => {}
        }
    }
    map.into_values().collect()
}

/// [`totals`] followed by a `TOTAL` row summing them.
pub fn totals_with_sum(events: &[Event]) -> Vec<FunctionTotals> {
    let mut rows = totals(events);
    let mut sum = FunctionTotals {
        function: "TOTAL".to_string(),
        ..FunctionTotals::default()
    };
    for r in &rows {
        sum.calls += r.calls;
        sum.hits += r.hits;
        sum.computed += r.computed;
        sum.failed += r.failed;
        sum.corrupt += r.corrupt;
        sum.time_computing = sum.time_computing.saturating_add(r.time_computing);
        sum.time_loading = sum.time_loading.saturating_add(r.time_loading);
        sum.time_saved = sum.time_saved.saturating_add(r.time_saved);
        sum.bytes_written = sum.bytes_written.saturating_add(r.bytes_written);
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

/// Calls drawn on the timeline at most (the latest ones).
pub const TIMELINE_MAX: usize = 5000;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}table{border-collapse:collapse;margin:1em 0}\
th,td{padding:.3em .8em;border-bottom:1px solid #ddd}td.num{text-align:right;font-variant-numeric:tabular-nums}\
tr.total td{font-weight:bold;border-top:2px solid #888}th{text-align:left;background:#f4f4f4}\
.legend span{display:inline-block;margin-right:1.5em}.sw{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}\
svg{border:1px solid #ddd;background:#fcfcfc}";

fn color(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Computed => "#3b6fd0",
        EventKind::Hit => "#2f9e52",
        _ => "#d0453b",
    }
}

/// One self-contained HTML page: per-function totals and an SVG timeline of
/// calls (computations, hits, failures). Inline CSS, no script, no external
/// asset; all text from events is escaped.
pub fn html(events: &[Event]) -> String {
    let rows = totals_with_sum(events);
    let mut h = String::with_capacity(16 << 10);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<title>jobcache report</title>\n<style>");
    h.push_str(STYLE);
    h.push_str("</style>\n</head>\n<body>\n<h1>jobcache report</h1>\n");
    let first = events.iter().map(|e| e.start()).min();
    let last = events.iter().map(|e| e.time).max();
    let _ = write!(h, "<p class=\"range\">{} events", events.len());
    if let (Some(a), Some(b)) = (first, last) {
        let _ = write!(h, " from <time>{a}</time> to <time>{b}</time>");
    }
    h.push_str(".</p>\n<h2>Per function</h2>\n<table>\n<thead><tr>");
    for c in COLUMNS {
        let _ = write!(h, "<th>{c}</th>");
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (i, r) in rows.iter().enumerate() {
        let total = i + 1 == rows.len();
        let class = if total { " class=\"total\"" } else { "" };
        let _ = write!(
            h,
            "<tr{class} data-function=\"{}\">",
            escape_html(&r.function)
        );
        for (j, (c, name)) in cells(r).iter().zip(COLUMNS).enumerate() {
            let num = if j == 0 { "" } else { " num" };
            let _ = write!(
                h,
                "<td class=\"{}{num}\">{}</td>",
                name.to_ascii_lowercase(),
                escape_html(c)
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n<h2>Timeline</h2>\n");
    timeline(&mut h, events);
    problems(&mut h, events);
    h.push_str("</body>\n</html>\n");
    h
}

/// Problems listed at most (the latest ones).
const PROBLEMS_MAX: usize = 200;

/// Failures, corrupt entries and storage errors, with their messages.
fn problems(h: &mut String, events: &[Event]) {
    let list: Vec<&Event> = events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::Failed | EventKind::Corrupt | EventKind::StorageError
            )
        })
        .collect();
    if list.is_empty() {
        return;
    }
    let skipped = list.len().saturating_sub(PROBLEMS_MAX);
    h.push_str("<h2>Problems</h2>\n<ul class=\"problems\">\n");
    for e in list.get(skipped..).unwrap_or_default() {
        let _ = writeln!(
            h,
            "<li><time>{}</time> {} <b>{}</b>: {}</li>",
            e.time,
            escape_html(&short(&e.function, 80)),
            e.kind.as_str(),
            escape_html(&short(e.message.as_deref().unwrap_or("no message"), 500))
        );
    }
    h.push_str("</ul>\n");
    if skipped > 0 {
        let _ = writeln!(h, "<p>{skipped} earlier problems are not listed.</p>");
    }
}

fn short(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", s.get(..at).unwrap_or_default()),
        None => s.to_string(),
    }
}

fn timeline(h: &mut String, events: &[Event]) {
    let calls: Vec<&Event> = events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::Computed | EventKind::Hit | EventKind::Failed
            )
        })
        .collect();
    let skipped = calls.len().saturating_sub(TIMELINE_MAX);
    let calls = calls.get(skipped..).unwrap_or_default();
    if calls.is_empty() {
        h.push_str("<p>No calls to draw.</p>\n");
        return;
    }
    let mut lanes: Vec<&str> = calls.iter().map(|e| e.function.as_str()).collect();
    lanes.sort_unstable();
    lanes.dedup();
    let t0 = calls.iter().map(|e| e.start()).min().unwrap_or_default();
    let t1 = calls.iter().map(|e| e.time).max().unwrap_or_default();
    let span = ((t1.unix_micros() - t0.unix_micros()) as f64).max(1.0);
    let (left, width, lane_h, top) = (160.0, 800.0, 22.0, 10.0);
    let height = top + lane_h * lanes.len() as f64 + 30.0;
    let x = |t: Timestamp| left + (t.unix_micros() - t0.unix_micros()) as f64 / span * width;
    let _ = writeln!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" viewBox=\"0 0 {w} {height}\" role=\"img\" aria-label=\"timeline of calls\">",
        w = left + width + 20.0
    );
    for (i, lane) in lanes.iter().enumerate() {
        let y = top + lane_h * i as f64;
        let _ = writeln!(
            h,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\">{}</text><line x1=\"{left}\" x2=\"{}\" y1=\"{y2}\" y2=\"{y2}\" stroke=\"#eee\"/>",
            left - 8.0,
            y + lane_h * 0.65,
            escape_html(&short(lane, 22)),
            left + width,
            y2 = y + lane_h
        );
    }
    for e in calls {
        let lane = lanes.binary_search(&e.function.as_str()).unwrap_or(0);
        let y = top + lane_h * lane as f64 + 3.0;
        let x0 = x(e.start());
        let w = (x(e.time) - x0).max(1.5);
        let _ = writeln!(
            h,
            "<rect class=\"{}\" x=\"{x0:.2}\" y=\"{y}\" width=\"{w:.2}\" height=\"{}\" fill=\"{}\"><title>{} {} {} at {}</title></rect>",
            e.kind.as_str(),
            lane_h - 6.0,
            color(e.kind),
            escape_html(&e.function),
            e.kind.as_str(),
            human_duration(e.duration),
            e.time
        );
    }
    let axis_y = top + lane_h * lanes.len() as f64 + 18.0;
    let _ = writeln!(
        h,
        "<text x=\"{left}\" y=\"{axis_y}\" font-size=\"11\">{t0}</text><text x=\"{}\" y=\"{axis_y}\" font-size=\"11\" text-anchor=\"end\">{t1}</text>\n</svg>",
        left + width
    );
    let _ = writeln!(
        h,
        "<p class=\"legend\"><span><i class=\"sw\" style=\"background:{}\"></i>computed</span><span><i class=\"sw\" style=\"background:{}\"></i>hit</span><span><i class=\"sw\" style=\"background:{}\"></i>failed</span></p>",
        color(EventKind::Computed),
        color(EventKind::Hit),
        color(EventKind::Failed)
    );
    if skipped > 0 {
        let _ = writeln!(h, "<p>{skipped} earlier calls are not drawn.</p>");
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
