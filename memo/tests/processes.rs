//! Cached calls across real processes: this test binary re-runs itself as a
//! child (selected by an environment variable) to race, to receive a shelved
//! handle, and to run under a file-size limit.

use jobcache_memo::{Memory, Shelved};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const ROLE: &str = "JOBCACHE_MEMO_TEST_ROLE";
const DIR: &str = "JOBCACHE_MEMO_TEST_DIR";
const HANDLE: &str = "JOBCACHE_MEMO_TEST_HANDLE";

fn child(role: &str, dir: &Path, handle: Option<&str>) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(ROLE, role).env(DIR, dir).args([
        "--exact",
        "child_entry_point",
        "--nocapture",
        "--test-threads=1",
    ]);
    if let Some(h) = handle {
        cmd.env(HANDLE, h);
    }
    cmd
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A slow function that leaves a line in a file each time it really runs.
fn slow_marked(dir: &Path, x: u64) -> u64 {
    let mut marks = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("ran.txt"))
        .unwrap();
    writeln!(marks, "ran {}", std::process::id()).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    x + 1
}

#[test]
fn child_entry_point() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let dir = std::path::PathBuf::from(std::env::var(DIR).unwrap());
    match role.as_str() {
        "race" => {
            let cache = dir.join("cache");
            let mem = Memory::builder(&cache).verbose(0).build().unwrap();
            let marks = dir.clone();
            let f = mem.cache_named("slow_marked", move |x: u64| slow_marked(&marks, x));
            println!("RESULT={}", f.call(41));
        }
        "load" => {
            let handle: Shelved<Vec<u32>> =
                serde_json::from_str(&std::env::var(HANDLE).unwrap()).unwrap();
            let value = handle.load().unwrap();
            println!("RESULT={}", value.iter().sum::<u32>());
        }
        "full_disk" => {
            let mem = Memory::builder(dir.join("cache"))
                .verbose(0)
                .build()
                .unwrap();
            let f = mem.cache_named("big", |n: usize| vec![7u8; n]);
            // From here on no file may grow past 4 KiB; writing past it
            // fails with EFBIG instead of killing the process.
            // SAFETY: plain libc calls on this process's own limits and
            // signal disposition.
            unsafe {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let limit = libc::rlimit {
                    rlim_cur: 4096,
                    rlim_max: 4096,
                };
                assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
            }
            let value = f.call(1 << 20);
            println!("RESULT={}", value.len());
            println!("CACHED={}", f.check_call_in_cache(&(1 << 20)));
        }
        "capture" => {
            let mem = Memory::builder(dir.join("cache"))
                .verbose(0)
                .capture_output(true)
                .build()
                .unwrap();
            let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counter = runs.clone();
            let f = mem.cache_named("chatty", move |x: u32| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                println!("computing {x} on stdout");
                eprintln!("a note on stderr");
                x * 2
            });
            assert_eq!(f.call(21), 42);
            assert_eq!(f.call(21), 42);
            println!("RUNS={}", runs.load(std::sync::atomic::Ordering::SeqCst));
        }
        other => panic!("unknown role {other}"),
    }
}

fn result_of(text: &str, name: &str) -> String {
    text.split(&format!("{name}="))
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .to_string()
}

#[test]
fn two_processes_racing_on_one_call_compute_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            child("race", dir.path(), None)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(result_of(&stdout_of(&out), "RESULT"), "42");
    }
    let marks = std::fs::read_to_string(dir.path().join("ran.txt")).unwrap();
    assert_eq!(marks.lines().count(), 1, "computed once: {marks}");
}

#[test]
fn a_shelved_handle_loads_in_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::builder(dir.path().join("cache"))
        .verbose(0)
        .build()
        .unwrap();
    let f = mem.cache_named("numbers", |n: u32| (1..=n).collect::<Vec<u32>>());
    let handle = f.call_and_shelve(100);
    let json = serde_json::to_string(&handle).unwrap();
    let out = child("load", dir.path(), Some(&json)).output().unwrap();
    assert_eq!(result_of(&stdout_of(&out), "RESULT"), "5050");
}

#[test]
fn a_full_disk_during_store_still_returns_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let out = child("full_disk", dir.path(), None).output().unwrap();
    let text = stdout_of(&out);
    assert_eq!(result_of(&text, "RESULT"), (1 << 20).to_string());
    assert_eq!(result_of(&text, "CACHED"), "false");
}

#[test]
fn captured_output_is_replayed_on_a_hit() {
    let dir = tempfile::tempdir().unwrap();
    let out = child("capture", dir.path(), None).output().unwrap();
    let text = stdout_of(&out);
    assert_eq!(result_of(&text, "RUNS"), "1");
    assert_eq!(text.matches("computing 21 on stdout").count(), 2, "{text}");
    let errors = String::from_utf8_lossy(&out.stderr);
    assert_eq!(errors.matches("a note on stderr").count(), 2, "{errors}");
}
