//! Log lines reach the `log` crate with target `jobcache`, by verbosity.
// Test helpers outside #[test] functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jobcache_trace::{Event, EventKind, LogTracer, Tracer};
use std::sync::Mutex;
use std::time::Duration;

static LINES: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct Collect;

impl log::Log for Collect {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        LINES.lock().unwrap().push((
            record.level(),
            record.target().to_string(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

static LOGGER: Collect = Collect;

fn take() -> Vec<(log::Level, String, String)> {
    std::mem::take(&mut *LINES.lock().unwrap())
}

fn calls(tracer: &dyn Tracer) {
    let args = jobcache_trace::summarize(&(ndarray::Array1::<f64>::zeros(1_000_000),));
    tracer.record(&Event::new(EventKind::Calling, "square").args("ab".repeat(32), args.clone()));
    tracer.record(
        &Event::new(EventKind::Computed, "square")
            .args("ab".repeat(32), args.clone())
            .duration(Duration::from_millis(1200)),
    );
    tracer.record(&Event::new(EventKind::Hit, "square").args("ab".repeat(32), args));
    tracer.record(&Event::new(EventKind::Corrupt, "square").message("checksum mismatch"));
    tracer.record(&Event::new(EventKind::StorageError, "square").message("disk full"));
}

// One test: the logger is process-wide.
#[test]
fn verbosity_levels_as_joblib() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Trace);

    calls(&LogTracer::new(0));
    let lines = take();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines
        .iter()
        .all(|(level, target, _)| *level == log::Level::Warn && target == "jobcache"));
    assert!(lines[0].2.contains("checksum mismatch"));
    assert!(lines[1].2.contains("disk full"));

    calls(&LogTracer::new(1));
    let lines = take();
    let texts: Vec<&str> = lines.iter().map(|l| l.2.as_str()).collect();
    assert_eq!(texts[0], "[Memory] Calling square...");
    assert_eq!(
        texts[1],
        "square(array(float64, shape=[1000000], [0.0, 0.0, 0.0, 0.0, …]))"
    );
    assert!(texts[2].ends_with("square - 1.2s, 0.0min") && texts[2].starts_with("____"));
    assert_eq!(lines.len(), 5);
    assert!(lines.iter().all(|(_, target, _)| target == "jobcache"));

    calls(&LogTracer::new(2));
    let lines = take();
    assert_eq!(lines.len(), 6);
    assert!(lines[3].2.contains("Loading square"), "{:?}", lines[3]);
}
