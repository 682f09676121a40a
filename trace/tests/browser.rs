//! The report in a real browser: headless Chromium renders the page of a
//! generated journal; the rendered DOM is checked (runs, lanes, boxes,
//! grouped problems) and screenshots at desktop and phone width are saved
//! under `target/report-browser/`.
//!
//! Uses `$JOBCACHE_CHROMIUM`, else the first of `chromium`,
//! `chromium-browser`, `google-chrome` found on `PATH`; without one the
//! test prints a notice and passes (CI installs Debian's `chromium`).
// Test helpers outside #[test] functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jobcache_trace::{read_journal, report, Event, EventKind, Filter, Journal, Timestamp};
use scraper::{Html, Selector};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("JOBCACHE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("report-browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the browser headless with `args` on `page`; its stdout.
fn headless(browser: &Path, args: &[String], page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--allow-file-access-from-files",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} did not finish in 120 s", browser.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

fn at(secs: f64) -> Timestamp {
    Timestamp::from_unix_micros(1_780_000_000_000_000 + (secs * 1e6) as i64)
}

/// Two runs of a three-step pipeline (the second mostly hits), a third
/// process that fails twelve times the same way and meets a corrupt
/// entry, and a `gc` that evicts.
fn journal(path: &Path) -> Vec<Event> {
    let j = Journal::open(path).unwrap();
    let push = |pid: u32, e: Event| {
        let mut e = e;
        e.pid = pid;
        e.host = "lab-1".into();
        j.append(&e).unwrap();
    };
    let key = |i: usize| format!("{i:064x}");
    // Run 1 (pid 100): generate 2 s, smooth 8 s ×3, fit 1 s ×3.
    let mut t = 0.0;
    push(
        100,
        Event::new(EventKind::Computed, "pipeline::generate")
            .args(key(1), "(20000, 64, 7)")
            .duration(Duration::from_secs(2))
            .output_bytes(10 << 20)
            .at(at(2.0)),
    );
    t += 2.0;
    for w in 0..3 {
        t += 8.0;
        push(
            100,
            Event::new(EventKind::Computed, "pipeline::smooth")
                .args(key(10 + w), format!("(generate@00000000, {})", 25 + w))
                .duration(Duration::from_secs(8))
                .output_bytes(10 << 20)
                .at(at(t)),
        );
        t += 1.0;
        push(
            100,
            Event::new(EventKind::Computed, "pipeline::fit")
                .args(key(20 + w), format!("(smooth@{:08x})", 10 + w))
                .duration(Duration::from_secs(1))
                .output_bytes(512)
                .at(at(t)),
        );
    }
    // Run 2 (pid 200), ten minutes later: hits, one new width computed.
    let t0 = 600.0;
    push(
        200,
        Event::new(EventKind::Hit, "pipeline::generate")
            .args(key(1), "(20000, 64, 7)")
            .duration(Duration::from_millis(30))
            .output_bytes(10 << 20)
            .at(at(t0 + 0.1)),
    );
    for w in 0..3 {
        push(
            200,
            Event::new(EventKind::Hit, "pipeline::smooth")
                .args(key(10 + w), "(generate@00000000, 25)")
                .duration(Duration::from_millis(20))
                .output_bytes(10 << 20)
                .at(at(t0 + 1.0 + w as f64)),
        );
    }
    push(
        200,
        Event::new(EventKind::Computed, "pipeline::smooth")
            .args(key(13), "(generate@00000000, 51)")
            .duration(Duration::from_secs(9))
            .output_bytes(10 << 20)
            .at(at(t0 + 14.0)),
    );
    push(
        200,
        Event::new(EventKind::Hit, "pipeline::fit")
            .args(key(20), "(smooth@0000000a)")
            .duration(Duration::from_millis(5))
            .output_bytes(512)
            .at(at(t0 + 15.0)),
    );
    // Run 3 (pid 300): twelve identical failures and a corrupt entry.
    let t0 = 1200.0;
    push(
        300,
        Event::new(EventKind::Corrupt, "pipeline::fit")
            .args(key(21), "")
            .message("checksum mismatch in payload")
            .at(at(t0)),
    );
    push(
        300,
        Event::new(EventKind::Computed, "pipeline::fit")
            .args(key(21), "(smooth@0000000b)")
            .duration(Duration::from_secs(1))
            .output_bytes(512)
            .at(at(t0 + 1.0)),
    );
    for i in 0..12 {
        push(
            300,
            Event::new(EventKind::Failed, "load_data")
                .args(key(40 + i), format!("(\"run{i}.csv\")"))
                .duration(Duration::from_millis(300))
                .message("no such file: data/<run>.csv")
                .at(at(t0 + 2.0 + f64::from(i as u32) * 2.0)),
        );
    }
    // A `jobcache gc` (pid 400) evicts one entry.
    push(
        400,
        Event::new(EventKind::Evicted, "pipeline::smooth")
            .args(key(12), "")
            .output_bytes(10 << 20)
            .message("removed by jobcache gc")
            .at(at(1300.0)),
    );
    read_journal(path, &Filter::new()).unwrap()
}

#[test]
fn the_report_renders_in_a_real_browser() {
    let Some(browser) = chromium() else {
        eprintln!(
            "NOTICE: no chromium, chromium-browser or google-chrome on PATH (or JOBCACHE_CHROMIUM): \
             the browser test of the report is skipped"
        );
        return;
    };
    let dir = out_dir();
    let events = journal(&tempfile::tempdir().unwrap().path().join("journal.jsonl"));
    assert_eq!(events.len(), 28);
    let page = dir.join("report.html");
    std::fs::write(&page, report::html(&events)).unwrap();

    let dom = headless(&browser, &["--dump-dom".to_string()], &page);
    let doc = Html::parse_document(&dom);
    let sel = |s: &str| Selector::parse(s).unwrap();
    let count = |q: &str| doc.select(&sel(q)).count();
    assert!(count("h1") == 1, "the browser gave no page:\n{dom}");

    // Runs: three processes with calls, newest first; the gc is a removal.
    let runs: Vec<_> = doc.select(&sel("details.run")).collect();
    let pids: Vec<&str> = runs
        .iter()
        .filter_map(|r| r.value().attr("data-pid"))
        .collect();
    assert_eq!(pids, ["300", "200", "100"]);
    assert_eq!(count("tr.run-row"), 3);
    // Lanes: one per function of each run.
    let lanes: Vec<usize> = runs
        .iter()
        .map(|r| r.select(&sel(".lane")).count())
        .collect();
    assert_eq!(lanes, [2, 3, 3]);
    // Boxes: every call (and corrupt entry) counted once; bars as long as
    // the computation: smooth's 8 s of a 29 s run is about 28%.
    let counted: u64 = doc
        .select(&sel(".track [data-count]"))
        .map(|b| {
            b.value()
                .attr("data-count")
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(counted, 27);
    let first_run = runs.last().unwrap();
    let bars: Vec<_> = first_run.select(&sel(".bar.computed")).collect();
    assert_eq!(bars.len(), 7);
    let smooth = first_run
        .select(&sel(".lane[data-function=\"pipeline::smooth\"] .bar"))
        .next()
        .unwrap();
    let style = smooth.value().attr("style").unwrap();
    assert!(style.contains("width:27.586%"), "{style}");
    let ticks: Vec<String> = first_run
        .select(&sel(".tick"))
        .map(|t| t.text().collect())
        .collect();
    assert_eq!(ticks, ["0 s", "5 s", "10 s", "15 s", "20 s", "25 s"]);
    // Problems grouped: twelve failures are one row, with their message.
    let problems: Vec<String> = doc
        .select(&sel("tr.problem"))
        .map(|r| r.text().collect::<Vec<_>>().join("|"))
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("failed|load_data|12|"), "{problems:?}");
    assert!(
        problems[0].contains("no such file: data/<run>.csv"),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("corrupt|pipeline::fit|1|"),
        "{problems:?}"
    );
    // Removals and the cache chart.
    assert_eq!(count("tr.removal"), 2);
    assert_eq!(count("svg.chart polyline"), 2);
    // Short computations drawn as marks keep their colour (the page's CSS
    // gives every kind its own).
    let css: String = doc
        .select(&sel("style"))
        .map(|s| s.text().collect::<String>())
        .collect();
    for class in ["computed", "hit", "failed", "corrupt"] {
        assert!(
            css.contains(&format!(".track .{class}{{background:")),
            "{class}"
        );
    }
    // Self-contained: nothing to fetch.
    assert_eq!(count("script, link, img, iframe, [src], [href]"), 0);

    for (name, size) in [
        ("report-1400.png", "1400,1300"),
        ("report-phone.png", "390,1400"),
    ] {
        let shot = dir.join(name);
        let _ = std::fs::remove_file(&shot);
        headless(
            &browser,
            &[
                format!("--screenshot={}", shot.display()),
                format!("--window-size={size}"),
            ],
            &page,
        );
        let len = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(len > 10_000, "{} is {len} bytes", shot.display());
        eprintln!("saved {}", shot.display());
    }
}
