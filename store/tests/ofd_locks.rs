//! Compute locks as bytes of `index/locks` (issue 19 section 2, `LAYOUT.md`,
//! "Locks"): threads of one handle and handles of one process exclude each
//! other, a killed holder releases its lock, no lock file is made, and a held
//! lock keeps its entry from eviction.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jobcache_store::{FsStore, Limits, NewEntry, SkipReason, Store, StoreExt, Wait};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod support;

const NS: &str = "jobcache::tests::ofd";
const ROLE: &str = "JOBCACHE_OFD_CHILD";

fn key(i: u64) -> String {
    format!("{i:064x}")
}

/// Entry point of child processes; a no-op in the parent's run.
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let root = PathBuf::from(std::env::var("STORE_ROOT").unwrap());
    let s = FsStore::open(&root).unwrap();
    match role.as_str() {
        "hold" => {
            let g = s.lock(NS, &key(1), Wait::NoWait).unwrap();
            assert!(g.is_acquired());
            println!("held");
            std::thread::sleep(Duration::from_secs(60));
            drop(g);
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn threads_of_one_handle_exclude_each_other_without_lock_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(FsStore::create(dir.path().join("cache")).unwrap());
    let inside = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (s, inside) = (Arc::clone(&s), Arc::clone(&inside));
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let g = s.lock(NS, &key(1), Wait::Forever).unwrap();
                    assert!(g.is_acquired());
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    assert_eq!(support::lock_files(s.root(), NS), 0);
                    std::thread::sleep(Duration::from_micros(100));
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(g);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(s.root().join("index/locks").is_file());
    assert_eq!(support::lock_files(s.root(), NS), 0);
}

#[test]
fn a_thread_waits_with_a_timeout_and_then_gets_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(FsStore::create(dir.path().join("cache")).unwrap());
    let g = s.lock(NS, &key(2), Wait::NoWait).unwrap();
    assert!(g.is_acquired());
    let s2 = Arc::clone(&s);
    let busy = std::thread::spawn(move || {
        let t = s2.lock(NS, &key(2), Wait::Timeout(Duration::from_millis(50)));
        t.unwrap().is_acquired()
    })
    .join()
    .unwrap();
    assert!(!busy);
    // Another key is free meanwhile.
    assert!(s.lock(NS, &key(3), Wait::NoWait).unwrap().is_acquired());
    drop(g);
    assert!(s.lock(NS, &key(2), Wait::NoWait).unwrap().is_acquired());
}

#[test]
fn two_handles_of_one_process_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let a = FsStore::create(&root).unwrap();
    let b = FsStore::open(&root).unwrap();
    let g = a.lock(NS, &key(1), Wait::NoWait).unwrap();
    assert!(g.is_acquired());
    assert!(!b.lock(NS, &key(1), Wait::NoWait).unwrap().is_acquired());
    drop(g);
    assert!(b.lock(NS, &key(1), Wait::NoWait).unwrap().is_acquired());
}

#[test]
fn a_killed_holder_releases_its_lock_and_a_held_lock_keeps_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let s = FsStore::create(&root).unwrap();
    for i in 0..3 {
        s.publish_bytes(NS, &key(i), &NewEntry::default(), b"value")
            .unwrap();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(ROLE, "hold")
        .env("STORE_ROOT", &root)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("held") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the child ended");
    }
    assert!(!s.lock(NS, &key(1), Wait::NoWait).unwrap().is_acquired());
    // Eviction of everything keeps the entry whose lock is held.
    let r = s
        .reduce_size(
            &Limits {
                max_items: Some(0),
                ..Limits::default()
            },
            false,
        )
        .unwrap();
    assert_eq!(r.removed.len(), 2, "{r:?}");
    assert_eq!(r.skipped_entries.len(), 1);
    assert_eq!(r.skipped_entries[0].entry.key, key(1));
    assert_eq!(r.skipped_entries[0].reason, SkipReason::Locked);
    child.kill().unwrap();
    child.wait().unwrap();
    let g = s.lock(NS, &key(1), Wait::Timeout(Duration::from_secs(5)));
    assert!(g.unwrap().is_acquired());
    assert_eq!(support::lock_files(&root, NS), 0);
}

/// `index/locks` deleted (by hand, or by another user) while handles hold
/// it open: a handle that locks again after a tick of the coarse clock
/// locks the file at the path, which the others lock too, not the deleted
/// one it had open (on which nobody else would meet it).
#[test]
fn a_deleted_lock_file_is_locked_no_more_once_a_tick_passed() {
    let t = tempfile::tempdir().unwrap();
    let a = FsStore::create(t.path()).unwrap();
    let b = FsStore::open(t.path()).unwrap();
    drop(a.lock(NS, &key(1), Wait::NoWait).unwrap());
    std::fs::remove_file(t.path().join("index/locks")).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let held = b.lock(NS, &key(1), Wait::NoWait).unwrap();
    assert!(held.is_acquired());
    assert!(t.path().join("index/locks").is_file());
    let again = a.lock(NS, &key(1), Wait::NoWait).unwrap();
    assert!(
        !again.is_acquired(),
        "locked the deleted file, which nobody else locks"
    );
    drop(held);
    assert!(a.lock(NS, &key(1), Wait::NoWait).unwrap().is_acquired());
}
