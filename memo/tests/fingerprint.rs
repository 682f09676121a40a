//! `fingerprint::emit` as a build script runs it: in a process whose
//! `CARGO_MANIFEST_DIR` is the crate, printing cargo's instructions.

use std::process::Command;

const ROLE: &str = "JOBCACHE_MEMO_FINGERPRINT_ROLE";

#[test]
fn build_script_entry_point() {
    if std::env::var_os(ROLE).is_none() {
        return;
    }
    if let Err(e) = jobcache_memo::fingerprint::emit(&["src"]) {
        eprintln!("emit failed: {e}");
        std::process::exit(3);
    }
}

fn emit_in(krate: &std::path::Path) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .env(ROLE, "1")
        .env("CARGO_MANIFEST_DIR", krate)
        .args(["--exact", "build_script_entry_point", "--nocapture"])
        .output()
        .unwrap()
}

fn fingerprint_line(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("cargo:rerun-if-changed=src"), "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("cargo:rustc-env=JOBCACHE_CRATE_FINGERPRINT="))
        .unwrap_or_else(|| panic!("no fingerprint line in {text}"))
        .to_string()
}

#[test]
fn emit_prints_a_fingerprint_that_follows_the_sources() {
    let krate = tempfile::tempdir().unwrap();
    std::fs::create_dir(krate.path().join("src")).unwrap();
    std::fs::write(krate.path().join("src/lib.rs"), "pub fn a() {}").unwrap();
    let first = fingerprint_line(&emit_in(krate.path()));
    assert_eq!(first.len(), 16);
    assert!(first.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(fingerprint_line(&emit_in(krate.path())), first);
    std::fs::write(krate.path().join("src/lib.rs"), "pub fn a() { }").unwrap();
    assert_ne!(fingerprint_line(&emit_in(krate.path())), first);
    // A crate without src/ is an error naming the path, not a panic.
    let empty = tempfile::tempdir().unwrap();
    let out = emit_in(empty.path());
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("src"));
}
