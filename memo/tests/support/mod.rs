//! Captures the `jobcache` log lines of a test process (one logger per
//! process: each test file that needs one includes this module).
#![allow(dead_code)] // each test file uses part of it

use std::sync::{Mutex, Once};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

struct Collect;

impl log::Log for Collect {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target() == "jobcache"
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            LINES.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

/// Installs the collector (once per process), keeping lines up to `level`.
pub fn capture_logs(level: log::LevelFilter) {
    INSTALL.call_once(|| {
        log::set_logger(&Collect).unwrap();
        log::set_max_level(level);
    });
}

/// Takes every line captured so far.
pub fn take() -> Vec<String> {
    std::mem::take(&mut *LINES.lock().unwrap())
}

/// Takes the lines that mention `function` (tests of one file run in
/// parallel), leaving the others.
pub fn take_about(function: &str) -> Vec<String> {
    let mut lines = LINES.lock().unwrap();
    let (mine, others) = lines.drain(..).partition(|l: &String| l.contains(function));
    *lines = others;
    mine
}
