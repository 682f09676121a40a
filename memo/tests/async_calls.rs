//! Cached async functions on two executors (tokio, and pollster's plain
//! `block_on`), computing once across tasks and across processes.

use jobcache_memo::{memoize, Memory};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const ROLE: &str = "JOBCACHE_MEMO_ASYNC_ROLE";
const DIR: &str = "JOBCACHE_MEMO_ASYNC_DIR";

fn quiet(dir: &Path) -> Memory {
    Memory::builder(dir).verbose(0).build().unwrap()
}

static DOUBLES: AtomicUsize = AtomicUsize::new(0);

memoize! {
    async fn double(x: u64) -> u64 {
        DOUBLES.fetch_add(1, Ordering::SeqCst);
        x * 2
    }
}

#[test]
fn a_plain_block_on_computes_then_loads() {
    let dir = tempfile::tempdir().unwrap();
    let mem = quiet(dir.path());
    let f = mem.cache(double);
    let before = DOUBLES.load(Ordering::SeqCst);
    assert_eq!(pollster::block_on(f.call_async(21)), 42);
    assert_eq!(pollster::block_on(f.call_async(21)), 42);
    assert_eq!(DOUBLES.load(Ordering::SeqCst) - before, 1);
    // The sync API sees the same entry: check_call_in_cache, why.
    assert!(f.check_call_in_cache(&21));
    assert_eq!(
        f.why(&22).unwrap().to_string(),
        "argument 1 (`x`) changed; code unchanged"
    );
}

#[test]
fn try_call_async_stores_ok_only() {
    let dir = tempfile::tempdir().unwrap();
    let mem = quiet(dir.path());
    let runs = AtomicUsize::new(0);
    let f = mem.cache_named("fallible", |x: u32| {
        let n = runs.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                Err(format!("first try of {x} fails"))
            } else {
                Ok(x + 1)
            }
        }
    });
    assert!(pollster::block_on(f.try_call_async(1)).is_err());
    assert_eq!(pollster::block_on(f.try_call_async(1)), Ok(2));
    assert_eq!(pollster::block_on(f.try_call_async(1)), Ok(2));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

/// Tasks asking for one call at once on a runtime: one computes.
fn tasks_compute_once(runtime: tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let mem = quiet(dir.path());
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let f = Arc::new(mem.cache_named("slow", move |x: u64| {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            vec![x; 1000]
        }
    }));
    let results = runtime.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let f = Arc::clone(&f);
                tokio::spawn(async move { f.call_async(7).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1, "computed once");
    assert!(results.iter().all(|r| *r == vec![7; 1000]));
}

#[test]
fn tokio_tasks_on_many_threads_compute_once() {
    tasks_compute_once(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_time()
            .build()
            .unwrap(),
    );
}

#[test]
fn tokio_tasks_on_one_thread_wait_without_blocking_it() {
    // A waiting task that blocked the one thread would never let the
    // computing one finish.
    tasks_compute_once(
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap(),
    );
}

/// A slow async function that leaves a line in a file each time it runs.
async fn slow_marked(dir: std::path::PathBuf, x: u64) -> u64 {
    use std::io::Write;
    let mut marks = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("ran.txt"))
        .unwrap();
    writeln!(marks, "ran {}", std::process::id()).unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    x + 1
}

#[test]
fn child_entry_point() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let dir = std::path::PathBuf::from(std::env::var(DIR).unwrap());
    assert_eq!(role, "race");
    let mem = quiet(&dir.join("cache"));
    let f = mem.cache_named("async_race", |x: u64| slow_marked(dir.clone(), x));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    println!("result {}", runtime.block_on(f.call_async(41)));
}

#[test]
fn processes_racing_on_one_async_call_compute_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .env(ROLE, "race")
                .env(DIR, dir.path())
                .args(["--exact", "child_entry_point", "--nocapture"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("result 42"));
    }
    let ran = std::fs::read_to_string(dir.path().join("ran.txt")).unwrap();
    assert_eq!(ran.lines().count(), 1, "computed once: {ran}");
}

#[test]
fn the_spawn_blocking_pattern_for_large_results() {
    // The pattern the docs give: the disk work of a call with a large
    // result runs on the runtime's blocking pool, not on a worker.
    let dir = tempfile::tempdir().unwrap();
    let mem = quiet(dir.path());
    let big = Arc::new(mem.cache_named("big", |n: usize| async move { vec![1u8; n] }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let len = runtime.block_on(async {
        let handle = tokio::runtime::Handle::current();
        let mut lens = Vec::new();
        for _ in 0..2 {
            let big = Arc::clone(&big);
            let handle = handle.clone();
            let task =
                tokio::task::spawn_blocking(move || handle.block_on(big.call_async(1 << 20)).len());
            lens.push(task.await.unwrap());
        }
        lens
    });
    assert_eq!(len, [1 << 20, 1 << 20]);
    assert!(big.check_call_in_cache(&(1 << 20)));
}
