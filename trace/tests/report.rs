//! Reports rendered from a committed journal fixture: the figures, and an
//! HTML page that an HTML5 parser accepts without a single parse error.
// Test helpers outside #[test] functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jobcache_trace::report::{self, FunctionTotals};
use jobcache_trace::{read_journal, Event, EventKind, Filter};
use scraper::{Html, Selector};
use std::time::Duration;

fn fixture() -> Vec<Event> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/journal.jsonl");
    read_journal(path, &Filter::new()).unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn totals_from_the_fixture() {
    let events = fixture();
    // 14 complete lines; the torn last line is ignored.
    assert_eq!(events.len(), 14);
    assert_eq!(events[13].kind, EventKind::Other);
    let rows = report::totals_with_sum(&events);
    let by = |f: &str| rows.iter().find(|r| r.function == f).unwrap().clone();
    // square: computed a (1.2 s, 8000 B) and b (2.0 s, 16000 B); two hits of
    // a (0.01 s, 0.02 s) each save 1.2 s minus the load.
    assert_eq!(
        by("square"),
        FunctionTotals {
            function: "square".into(),
            calls: 4,
            hits: 2,
            computed: 2,
            failed: 0,
            corrupt: 0,
            time_computing: ms(3200),
            time_loading: ms(30),
            time_saved: ms(2370),
            bytes_written: 24000,
            slowest: ms(2000),
            slowest_args: String::new(),
        }
    );
    // load_data: computed 30 s, one hit (0.5 s: saves 29.5 s), one failure of 3 s.
    let l = by("load_data");
    assert_eq!((l.calls, l.hits, l.computed, l.failed), (3, 1, 1, 1));
    assert_eq!(
        (l.time_computing, l.time_saved, l.bytes_written),
        (ms(33_000), ms(29_500), 1 << 20)
    );
    // fit: one corrupt entry, then computed 60 s; eviction and unknown kinds are not calls.
    let f = by("fit");
    assert_eq!(
        (f.calls, f.computed, f.corrupt, f.time_saved),
        (1, 1, 1, Duration::ZERO)
    );
    // A hit that carries its compute time: 5 s - 1 s.
    assert_eq!(by("<b>evil</b>").time_saved, ms(4000));
    let t = rows.last().unwrap();
    assert_eq!(t.function, "TOTAL");
    assert_eq!(
        (t.calls, t.hits, t.computed, t.failed, t.corrupt),
        (9, 4, 4, 1, 1)
    );
    assert_eq!(t.time_computing, ms(96_200));
    assert_eq!(t.time_saved, ms(35_870));
    assert_eq!(t.bytes_written, 24000 + (1 << 20) + 512);
}

#[test]
fn text_table() {
    let text = report::text(&fixture());
    println!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("FUNCTION") && lines[0].contains("SAVED"));
    let square = lines.iter().find(|l| l.starts_with("square")).unwrap();
    let cols: Vec<&str> = square.split_whitespace().collect();
    assert_eq!(
        cols,
        ["square", "4", "2", "2", "0", "0", "3.2", "s", "2.4", "s", "23.4", "KiB"]
    );
    let total = lines.last().unwrap();
    let cols: Vec<&str> = total.split_whitespace().collect();
    assert_eq!(
        cols,
        ["TOTAL", "9", "4", "4", "1", "1", "1.6", "min", "35.9", "s", "1.0", "MiB"]
    );
    // Columns line up: every line has the same width.
    assert!(lines
        .iter()
        .all(|l| l.chars().count() == lines[0].chars().count()));
}

#[test]
fn html_page_is_well_formed_self_contained_and_escaped() {
    let events = fixture();
    let page = report::html(&events);
    std::fs::write(
        std::env::temp_dir().join("jobcache-report-test.html"),
        &page,
    )
    .unwrap();
    let doc = Html::parse_document(&page);
    assert!(
        doc.errors.is_empty(),
        "HTML5 parse errors: {:?}",
        doc.errors
    );

    // Self-contained: no script, no external reference.
    let sel = |s: &str| Selector::parse(s).unwrap();
    assert_eq!(
        doc.select(&sel("script, link, img, iframe, object"))
            .count(),
        0
    );
    assert_eq!(doc.select(&sel("[src], [href]")).count(), 0);
    assert!(!page.contains("url("));

    // Figures in the table.
    let cell = |function: &str, column: &str| {
        let s = format!("tr[data-function=\"{function}\"] td.{column}");
        doc.select(&sel(&s))
            .next()
            .unwrap()
            .text()
            .collect::<String>()
    };
    assert_eq!(cell("square", "calls"), "4");
    assert_eq!(cell("square", "hits"), "2");
    assert_eq!(cell("square", "computing"), "3.2 s");
    assert_eq!(cell("square", "saved"), "2.4 s");
    assert_eq!(cell("square", "written"), "23.4 KiB");
    assert_eq!(cell("load_data", "failed"), "1");
    assert_eq!(cell("TOTAL", "calls"), "9");
    assert_eq!(cell("TOTAL", "saved"), "35.9 s");

    // User text is text, never markup.
    assert_eq!(cell("<b>evil</b>", "function"), "<b>evil</b>");
    assert_eq!(doc.select(&sel("td b")).count(), 0);

    // Problems grouped by kind and function, with their (escaped) messages.
    let problems: Vec<String> = doc
        .select(&sel("table.problems tr.problem"))
        .map(|tr| tr.text().collect())
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("load_data") && p.contains("<oops> & \"quote\"")),
        "{problems:?}"
    );
    assert!(problems
        .iter()
        .any(|p| p.contains("fit") && p.contains("checksum mismatch")));

    // Runs, newest first: pid 4243 (one hit), then 4242 with four lanes.
    let runs: Vec<_> = doc.select(&sel("details.run")).collect();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].value().attr("data-pid"), Some("4243"));
    assert_eq!(runs[1].select(&sel(".lane")).count(), 4);
    assert_eq!(doc.select(&sel("tr.run-row")).count(), 2);
    // One box per call (9) and per corrupt entry met (1), each counted.
    let count = |q: &str| -> u64 {
        doc.select(&sel(q))
            .map(|m| {
                m.value()
                    .attr("data-count")
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            })
            .sum()
    };
    assert_eq!(count(".track [data-count]"), 10);
    assert_eq!(count(".track .hit"), 4);
    assert_eq!(count(".track .failed"), 1);
    assert_eq!(count(".track .corrupt"), 1);
    // The axis reads in relative units; the absolute start is shown once per run.
    let ticks: Vec<String> = runs[1]
        .select(&sel(".tick"))
        .map(|t| t.text().collect())
        .collect();
    assert_eq!(ticks.first().map(String::as_str), Some("0 s"), "{ticks:?}");
    assert!(ticks.iter().any(|t| t.ends_with("min")), "{ticks:?}");
    // Eviction and corruption are listed; the cache chart has its two lines.
    assert_eq!(doc.select(&sel("tr.removal")).count(), 2);
    assert_eq!(doc.select(&sel("svg.chart polyline")).count(), 2);
}

#[test]
fn empty_and_hostile_inputs() {
    let page = report::html(&[]);
    assert!(Html::parse_document(&page).errors.is_empty());
    assert!(report::text(&[]).starts_with("FUNCTION"));
    let hostile = vec![
        Event::new(EventKind::Computed, "]]></svg><script>x</script>\u{0}")
            .message("</title>")
            .duration(Duration::from_secs(u64::MAX / 4)),
        Event::new(EventKind::Hit, "&amp;\"'"),
    ];
    let doc = Html::parse_document(&report::html(&hostile));
    assert!(doc.errors.is_empty(), "{:?}", doc.errors);
    assert_eq!(doc.select(&Selector::parse("script").unwrap()).count(), 0);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn prop_any_events_give_a_well_formed_page(
            specs in prop::collection::vec(("\\PC{0,16}|[<>&\"']{1,6}", 0usize..4, 0u64..100_000, proptest::option::of("\\PC{0,16}")), 0..12),
        ) {
            let kinds = [EventKind::Hit, EventKind::Computed, EventKind::Failed, EventKind::Corrupt];
            let events: Vec<Event> = specs
                .into_iter()
                .map(|(f, k, ms, msg)| {
                    let mut e = Event::new(kinds[k], f).duration(Duration::from_millis(ms));
                    e.message = msg;
                    e
                })
                .collect();
            let doc = Html::parse_document(&report::html(&events));
            prop_assert!(doc.errors.is_empty(), "{:?}", doc.errors);
            let rows = doc.select(&Selector::parse("table.functions tbody tr").unwrap()).count();
            prop_assert_eq!(rows, report::totals_with_sum(&events).len());
            let t = report::text(&events);
            prop_assert_eq!(t.lines().count(), rows + 2 + usize::from(rows > 1));
        }
    }
}
