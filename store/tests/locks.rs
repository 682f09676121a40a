//! Entry lock files exist only while held (`LAYOUT.md`, "Locks"): a holder
//! unlinks its lock file on release, and a waiter on the unlinked file
//! starts over on a fresh one, so two holders never coexist.

use jobcache_store::StoreExt;
use jobcache_store::{FsStore, NewEntry, Store, Wait};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod support;

const NS: &str = "locks::f";

fn key(i: u64) -> String {
    format!("{i:064x}")
}

#[test]
fn a_released_lock_leaves_no_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = FsStore::create(dir.path().join("cache")).unwrap();
    for i in 0..20 {
        let guard = s.lock(NS, &key(i), Wait::NoWait).unwrap();
        assert!(guard.is_acquired());
        // Held as a byte of `index/locks` where the kernel has OFD locks:
        // no lock file at all; else one.
        assert!(support::lock_files(s.root(), NS) <= 1);
        s.publish_bytes(NS, &key(i), &NewEntry::default(), b"v")
            .unwrap();
        drop(guard);
    }
    assert_eq!(support::lock_files(s.root(), NS), 0);
}

#[test]
fn waiters_on_a_released_lock_never_hold_it_together() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(FsStore::create(dir.path().join("cache")).unwrap());
    let inside = Arc::new(AtomicUsize::new(0));
    let rounds = 40;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (s, inside) = (Arc::clone(&s), Arc::clone(&inside));
            std::thread::spawn(move || {
                for _ in 0..rounds {
                    let g = s.lock(NS, &key(1), Wait::Forever).unwrap();
                    assert!(g.is_acquired());
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    std::thread::sleep(Duration::from_micros(200));
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(g);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(support::lock_files(s.root(), NS), 0);
}
