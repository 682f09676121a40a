//! A `HashMap` hashed in two freshly spawned processes (each with its own
//! random hasher state, so its own iteration order) gives one digest.

use jobcache_hash::hash;
use std::collections::HashMap;
use std::process::Command;

const CHILD: &str = "JOBCACHE_HASH_TEST_CHILD";

fn map_digest() -> String {
    let map: HashMap<String, u64> = (0..1000).map(|i| (format!("key-{i}"), i * 7)).collect();
    hash(&map).unwrap().to_string()
}

#[test]
fn child_prints_map_digest() {
    if std::env::var_os(CHILD).is_some() {
        println!("DIGEST={}", map_digest());
    }
}

#[test]
fn hashmap_digest_agrees_across_processes() {
    let exe = std::env::current_exe().unwrap();
    let run_child = || {
        let out = Command::new(&exe)
            .env(CHILD, "1")
            .args([
                "--exact",
                "child_prints_map_digest",
                "--nocapture",
                "--test-threads=1",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        // The harness may print the test name on the same line.
        text.split("DIGEST=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string)
            .unwrap_or_else(|| panic!("child printed no digest: {text}"))
    };
    let first = run_child();
    let second = run_child();
    assert_eq!(first, second);
    assert_eq!(first, map_digest());
}
