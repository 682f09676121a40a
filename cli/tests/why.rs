//! `jobcache why` and the `cleared` events of the journal, on caches made
//! through jobcache-memo.

use jobcache_memo::{memoize, Memory};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jobcache"))
        .env_remove("JOBCACHE_DIR")
        .env("NO_COLOR", "1")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

memoize! {
    fn smooth(values: &[f64], width: usize) -> f64 {
        values.iter().take(width).sum()
    }
}

#[test]
fn why_names_what_changed_call_by_call() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::builder(dir.path()).verbose(0).build().unwrap();
    let f = mem.cache(smooth);
    let values = [1.0, 2.0, 3.0];
    f.call((&values[..], 2));
    std::thread::sleep(std::time::Duration::from_millis(20));
    f.call((&values[..], 3));
    let out = stdout(&run(dir.path(), &["why", "smooth"]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].ends_with("::smooth"), "{out}");
    assert!(lines[2].ends_with("no earlier call"), "{out}");
    assert!(
        lines[3].ends_with("argument 2 (`width`) changed; code unchanged"),
        "{out}"
    );
    let last = stdout(&run(dir.path(), &["why", "smooth", "--last"]));
    assert_eq!(last.lines().count(), 3, "{last}");
    assert!(last.contains("argument 2 (`width`) changed"), "{last}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&run(dir.path(), &["why", "smooth", "--json"]))).unwrap();
    assert_eq!(json["calls"].as_array().unwrap().len(), 2);
    assert_eq!(json["calls"][0]["why"], "no earlier call");
    // An unknown function is an error naming it.
    let unknown = run(dir.path(), &["why", "nothing"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nothing"));
}

#[test]
fn log_shows_what_memory_and_cached_clear() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::builder(dir.path()).verbose(0).build().unwrap();
    let f = mem.cache(smooth);
    f.call((&[1.0][..], 1));
    f.clear().unwrap();
    f.call((&[1.0][..], 1));
    mem.clear().unwrap();
    let out = stdout(&run(dir.path(), &["log", "--kind", "cleared"]));
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("cleared")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].contains("smooth"), "{out}");
    assert!(lines[1].contains("smooth"), "{out}");
    assert!(lines[1].contains("Memory::clear"), "{out}");
}
