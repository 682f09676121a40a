//! The generation page `packs/generations` (issue 19 section 2, `LAYOUT.md`,
//! "Generations"): a handle sees what another process appended without
//! reopening anything; a garbled, frozen, short or truncated page never
//! makes a lookup return a wrong value or a removed entry for longer than
//! the revalidation bound.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jobcache_store::{FsStore, Lookup, NewEntry, Store, StoreExt};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const NS: &str = "jobcache::tests::generations";
const ROLE: &str = "JOBCACHE_GENERATIONS_CHILD";
/// A little over the revalidation bound of `LAYOUT.md`, "Generations".
const REVALIDATE: Duration = Duration::from_millis(1100);

/// Keys that all fall in pack `cd`.
fn key(i: u64) -> String {
    format!("cd{i:062x}")
}

fn value(k: &str) -> Vec<u8> {
    let n = u64::from_str_radix(&k[48..], 16).unwrap();
    (0..(n % 300) as usize + 1)
        .map(|i| (i as u64 ^ n) as u8)
        .collect()
}

fn store(root: &Path) -> FsStore {
    FsStore::open(root).unwrap()
}

fn publish(s: &FsStore, k: &str) {
    s.publish_bytes(NS, k, &NewEntry::default(), &value(k))
        .unwrap();
}

fn page(root: &Path) -> PathBuf {
    root.join("packs").join("generations")
}

/// The value found for `k`, or `None` for a miss; never a wrong value.
fn found(s: &FsStore, k: &str) -> Option<Vec<u8>> {
    match s.get(NS, k, true).unwrap() {
        Lookup::Found(mut e) => {
            let v = e.read_to_vec().unwrap();
            assert_eq!(v, value(k), "a wrong value for {k}");
            Some(v)
        }
        Lookup::Missing => None,
        Lookup::Corrupt(c) => panic!("{k}: {}", c.reason),
    }
}

/// Entry point of child processes; a no-op in the parent's run.
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let root = PathBuf::from(std::env::var("STORE_ROOT").unwrap());
    let k = std::env::var("KEY").unwrap();
    let s = store(&root);
    match role.as_str() {
        "publish" => publish(&s, &k),
        "remove" => {
            s.remove(NS, &k).unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

fn run_child(role: &str, root: &Path, k: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env("STORE_ROOT", root)
        .env("KEY", k)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn new_root() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    drop(FsStore::create(&root).unwrap());
    (t, root)
}

#[test]
fn the_page_is_made_with_the_first_pack_and_holds_one_counter_per_pack() {
    let (_t, root) = new_root();
    let s = store(&root);
    publish(&s, &key(1));
    let bytes = fs::read(page(&root)).unwrap();
    assert_eq!(bytes.len(), 256 * 8);
    let counter = |b: usize| u64::from_le_bytes(bytes[b * 8..b * 8 + 8].try_into().unwrap());
    assert!(counter(0xcd) >= 1);
    assert_eq!(counter(0xab), 0);
}

#[test]
fn an_append_by_another_process_is_seen_at_once_and_so_is_a_removal() {
    let (_t, root) = new_root();
    let s = store(&root);
    publish(&s, &key(0));
    // Caught up: the next lookups of this pack read nothing from it.
    assert!(found(&s, &key(0)).is_some());
    assert!(found(&s, &key(1)).is_none());
    run_child("publish", &root, &key(1));
    // Within the revalidation bound: seen through the counter alone.
    assert!(found(&s, &key(1)).is_some());
    run_child("remove", &root, &key(0));
    assert!(found(&s, &key(0)).is_none());
    assert!(found(&s, &key(1)).is_some());
}

#[test]
fn a_garbled_or_frozen_page_never_gives_a_wrong_value() {
    let (_t, root) = new_root();
    let s = store(&root);
    for i in 0..5 {
        publish(&s, &key(i));
        assert!(found(&s, &key(i)).is_some());
    }
    // Garbled: every counter overwritten.
    fs::write(page(&root), vec![0xa5; 256 * 8]).unwrap();
    for i in 0..5 {
        assert!(found(&s, &key(i)).is_some());
    }
    run_child("publish", &root, &key(7));
    assert!(found(&s, &key(7)).is_some());
    // Frozen: another process removes an entry, then the page is put back
    // as this handle last saw it. The removal may be missed for at most the
    // revalidation bound; no value is ever wrong.
    let now = fs::read(page(&root)).unwrap();
    run_child("remove", &root, &key(3));
    fs::write(page(&root), &now).unwrap();
    for i in 0..5 {
        let _ = found(&s, &key(i));
    }
    std::thread::sleep(REVALIDATE);
    assert!(found(&s, &key(3)).is_none());
    // Zeroed.
    fs::write(page(&root), vec![0; 256 * 8]).unwrap();
    run_child("publish", &root, &key(8));
    assert!(found(&s, &key(8)).is_some());
}

#[test]
fn a_page_truncated_under_a_live_mapping_is_caught_and_lookups_still_work() {
    let (_t, root) = new_root();
    let s = store(&root);
    publish(&s, &key(1));
    assert!(found(&s, &key(1)).is_some());
    // Shrunk under the mapping: the next load faults (SIGBUS), which is
    // caught; lookups then look at the pack each time.
    fs::OpenOptions::new()
        .write(true)
        .open(page(&root))
        .unwrap()
        .set_len(0)
        .unwrap();
    assert!(found(&s, &key(1)).is_some());
    assert!(found(&s, &key(2)).is_none());
    // The other process finds the empty page and sizes it again: either
    // way, this handle sees its changes.
    run_child("publish", &root, &key(2));
    assert!(found(&s, &key(2)).is_some());
    run_child("remove", &root, &key(1));
    assert!(found(&s, &key(1)).is_none());
}

#[test]
fn a_short_or_foreign_page_counts_as_absent() {
    let (_t, root) = new_root();
    fs::create_dir_all(root.join("packs")).unwrap();
    fs::write(page(&root), b"short").unwrap();
    let s = store(&root);
    publish(&s, &key(1));
    assert!(found(&s, &key(1)).is_some());
    run_child("publish", &root, &key(2));
    assert!(found(&s, &key(2)).is_some());
    run_child("remove", &root, &key(1));
    assert!(found(&s, &key(1)).is_none());
    assert_eq!(fs::read(page(&root)).unwrap(), b"short");
    // A symlink in its place is not followed: the target is never written.
    let (_t2, root2) = new_root();
    let target = _t2.path().join("elsewhere");
    fs::write(&target, b"").unwrap();
    fs::create_dir_all(root2.join("packs")).unwrap();
    std::os::unix::fs::symlink(&target, page(&root2)).unwrap();
    let s2 = store(&root2);
    publish(&s2, &key(1));
    assert!(found(&s2, &key(1)).is_some());
    run_child("publish", &root2, &key(2));
    assert!(found(&s2, &key(2)).is_some());
    assert_eq!(fs::read(&target).unwrap(), b"");
}
