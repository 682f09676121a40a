//! Log lines by verbosity, as joblib's `verbose`: one logger per process, so
//! this file holds the only test that installs one.

use jobcache_memo::Memory;
mod support;
use support::take;

fn double(x: u32) -> u32 {
    x * 2
}

#[test]
fn verbosity_chooses_the_lines() {
    support::capture_logs(log::LevelFilter::Trace);
    let dir = tempfile::tempdir().unwrap();

    let silent = Memory::builder(dir.path()).verbose(0).build().unwrap();
    silent.cache(double).call(1);
    silent.cache(double).call(1);
    assert!(take().is_empty());

    let normal = Memory::builder(dir.path()).verbose(1).build().unwrap();
    normal.cache(double).call(2);
    let mut lines = take();
    // At debug level, a miss first says why it missed.
    let why = lines.remove(0);
    assert!(why.starts_with("logging::double: miss ("), "{why}");
    assert!(why.ends_with("): argument 1 changed"), "{why}");
    assert_eq!(lines[0], "[Memory] Calling logging::double...");
    assert_eq!(lines[1], "logging::double(2)");
    assert!(
        lines[2].ends_with("logging::double - 0.0s, 0.0min"),
        "{lines:?}"
    );
    normal.cache(double).call(2);
    assert!(take().is_empty(), "hits are quiet at verbosity 1");

    let chatty = Memory::builder(dir.path()).verbose(2).build().unwrap();
    chatty.cache(double).call(2);
    let lines = take();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("Loading logging::double"), "{lines:?}");
}
