//! Small entries packed into shared pack files (issue 20, `LAYOUT.md`,
//! "Packs"): lookups, listing, removal and eviction over packs; torn and
//! damaged records; two processes appending to one pack; a writer killed
//! while it appends; disk and inodes per small entry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jobcache_store::StoreExt;
use jobcache_store::{FsStore, Limits, Location, Lookup, NewEntry, Store};
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NS: &str = "jobcache::tests::packs";
const ROLE: &str = "JOBCACHE_PACKS_CHILD";

fn key(i: u64) -> String {
    format!("{i:064x}")
}

/// Keys that all fall in pack `ab`.
fn key_ab(i: u64) -> String {
    format!("ab{i:062x}")
}

fn value(k: &str) -> Vec<u8> {
    let n = u64::from_str_radix(&k[48..], 16).unwrap();
    let len = (n % 700) as usize;
    (0..len).map(|i| (i as u64 ^ n) as u8).collect()
}

fn store(root: &Path) -> FsStore {
    FsStore::create(root).unwrap()
}

fn pack_path(root: &Path, k: &str) -> PathBuf {
    root.join("packs").join(format!("{}.pack", &k[..2]))
}

fn publish(s: &FsStore, k: &str) {
    s.publish_bytes(NS, k, &NewEntry::default().field("f", "x"), &value(k))
        .unwrap();
}

#[test]
fn small_entries_go_to_packs_and_large_ones_to_directories() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    let s = store(&root);
    for i in 0..50 {
        publish(&s, &key(i));
    }
    let big = vec![7u8; 100_000];
    s.publish_bytes(NS, &key(1000), &NewEntry::default(), &big)
        .unwrap();
    for i in 0..50 {
        let k = key(i);
        assert_eq!(s.get_bytes(NS, &k).unwrap().unwrap(), value(&k), "{k}");
        assert!(!s.entry_dir(NS, &k).unwrap().exists());
    }
    assert!(pack_path(&root, &key(0)).is_file());
    assert!(s.entry_dir(NS, &key(1000)).unwrap().is_dir());
    assert_eq!(s.get_bytes(NS, &key(1000)).unwrap().unwrap(), big);
    // Publishing again finds the entry.
    let again = s
        .publish_bytes(NS, &key(3), &NewEntry::default(), &value(&key(3)))
        .unwrap();
    assert!(again.already_present);
    // Another handle, packing or not, sees the same entries.
    let other = FsStore::open(&root).unwrap();
    assert_eq!(
        other.get_bytes(NS, &key(7)).unwrap().unwrap(),
        value(&key(7))
    );
    let listed = other.entries(NS).unwrap();
    assert_eq!(listed.len(), 51);
    assert!(listed.iter().all(|e| e.meta.is_ok()));
    assert_eq!(other.indexed_totals().unwrap().0, 51);
    // verify rebuilds the index from the same listing.
    let report = other.verify_all(&mut |_, _| {}).unwrap();
    assert_eq!(report.corrupt, 0);
    assert_eq!(other.indexed_totals().unwrap().0, 51);
}

/// A lookup that misses on a namespace directory holding no entry
/// directory answers from the directory's link count, which it reads again
/// on every lookup: an entry directory that another handle makes right
/// after the miss (in the same tick of the coarse clock) is found at once,
/// and so is one of a namespace whose directory did not exist at the miss.
#[test]
fn an_entry_directory_made_right_after_a_miss_is_found_at_once() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    let reader = store(&root);
    let writer = FsStore::open(&root).unwrap();
    let big = vec![9u8; 100_000];
    for (ns, first) in [(NS, true), ("jobcache::tests::packs::fresh", false)] {
        if first {
            publish(&writer, &key(1));
        }
        for i in 0..20u64 {
            let k = key(100 + i);
            assert!(matches!(reader.get(ns, &k, true).unwrap(), Lookup::Missing));
            writer
                .publish_bytes(ns, &k, &NewEntry::default(), &big)
                .unwrap();
            assert!(writer.entry_dir(ns, &k).unwrap().is_dir());
            assert_eq!(reader.get_bytes(ns, &k).unwrap().unwrap(), big, "{ns} {k}");
            // Removed again: the namespace directory holds no entry
            // directory, and the next miss is answered from its link count.
            writer.remove(ns, &k).unwrap();
            assert!(matches!(reader.get(ns, &k, true).unwrap(), Lookup::Missing));
        }
    }
}

/// Packing is the default; `with_packs(false)` keeps a directory per
/// entry; `locate` says which, and `pack_damage` finds what a scan skips.
#[test]
fn packing_is_the_default_and_locate_says_where_an_entry_lives() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    let s = FsStore::create(&root).unwrap();
    assert!(root.join("packs").is_dir(), "made with the store");
    publish(&s, &key_ab(1));
    publish(&s, &key_ab(2));
    let at = |k: &str| s.locate(NS, k).unwrap();
    let Some(Location::Packed { pack, offset, len }) = at(&key_ab(1)) else {
        panic!("not packed: {:?}", at(&key_ab(1)));
    };
    assert_eq!(pack, pack_path(&root, &key_ab(1)));
    assert_eq!(offset, 0);
    let listed = s.entries(NS).unwrap();
    assert_eq!(
        listed[0].stored_bytes, len,
        "a record's length is what it stores"
    );
    assert_eq!(
        at(&key_ab(2)),
        Some(Location::Packed {
            pack: pack.clone(),
            offset: len,
            len: fs::metadata(&pack).unwrap().len() - len,
        })
    );
    assert_eq!(
        at(&key_ab(2)).unwrap().to_string(),
        format!("{} @ {len}", pack.display())
    );
    // Off: a directory each, found by every handle.
    let dirs = FsStore::open(&root).unwrap().with_packs(false);
    publish(&dirs, &key_ab(3));
    let dir = s.entry_dir(NS, &key_ab(3)).unwrap();
    assert_eq!(at(&key_ab(3)), Some(Location::Directory(dir.clone())));
    assert_eq!(
        at(&key_ab(3)).unwrap().to_string(),
        dir.display().to_string()
    );
    assert_eq!(at(&key_ab(4)), None);
    assert!(s.pack_damage().unwrap().is_empty());
    // A damaged record and a torn tail, by place, naming their entry.
    let mut bytes = fs::read(&pack).unwrap();
    bytes[offset as usize + 70] ^= 1;
    bytes.extend_from_within(..30);
    fs::write(&pack, &bytes).unwrap();
    let damage = s.pack_damage().unwrap();
    assert_eq!(damage.len(), 2, "{damage:?}");
    assert_eq!(
        (damage[0].offset, damage[0].len, damage[0].tail),
        (0, len, false)
    );
    assert_eq!(
        damage[0].entry,
        Some((Some(NS.to_string()), key_ab(1))),
        "the header names the entry"
    );
    let end = bytes.len() as u64;
    assert_eq!(
        (damage[1].offset, damage[1].len, damage[1].tail),
        (end - 30, 30, true)
    );
    assert_eq!(damage[1].pack, pack);
    // Another process skips the damaged record; repairing drops both.
    let other = FsStore::open(&root).unwrap();
    assert_eq!(other.get_bytes(NS, &key_ab(1)).unwrap(), None);
    assert_eq!(other.repair_packs().unwrap(), 1);
    assert!(other.pack_damage().unwrap().is_empty());
    assert_eq!(
        other.get_bytes(NS, &key_ab(2)).unwrap().unwrap(),
        value(&key_ab(2))
    );
}

#[test]
fn removal_and_clear_reach_packed_entries() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    let s = store(&root);
    for i in 0..20 {
        publish(&s, &key(i));
    }
    assert!(s.remove(NS, &key(4)).unwrap() > 0);
    assert!(matches!(s.get(NS, &key(4), true).unwrap(), Lookup::Missing));
    let other = FsStore::open(&root).unwrap();
    assert!(matches!(
        other.get(NS, &key(4), true).unwrap(),
        Lookup::Missing
    ));
    assert_eq!(other.entries(NS).unwrap().len(), 19);
    // Published again after its removal: found again.
    publish(&s, &key(4));
    assert_eq!(
        other.get_bytes(NS, &key(4)).unwrap().unwrap(),
        value(&key(4))
    );
    assert!(other.clear().unwrap() > 0);
    for i in 0..20 {
        assert!(matches!(s.get(NS, &key(i), true).unwrap(), Lookup::Missing));
    }
    assert!(s.entries(NS).unwrap().is_empty());
    assert_eq!(s.indexed_totals().unwrap(), (0, 0));
}

#[test]
fn eviction_of_packed_entries_follows_access_order() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    let s = store(&root).with_access_granularity(Duration::ZERO);
    for i in 0..30 {
        publish(&s, &key(i));
    }
    for i in 0..10 {
        std::thread::sleep(Duration::from_millis(2));
        s.touch(NS, &key(i)).unwrap();
        assert!(s.get(NS, &key(i), true).unwrap().found().is_some());
    }
    let r = s
        .apply_limits(&Limits {
            max_items: Some(10),
            ..Limits::default()
        })
        .unwrap();
    let removed: Vec<String> = r.removed.iter().map(|e| e.key.clone()).collect();
    assert_eq!(removed, (10..30).map(key).collect::<Vec<_>>());
    assert_eq!(r.kept_items, 10);
    assert!(r.freed_bytes > 0);
    for i in 0..30 {
        let found = s.get(NS, &key(i), true).unwrap().found().is_some();
        assert_eq!(found, i < 10, "{i}");
    }
    assert_eq!(s.entries(NS).unwrap().len(), 10);
}

#[test]
fn a_touch_alone_keeps_a_packed_entry_from_eviction() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    let s = store(&root);
    for i in 0..6 {
        publish(&s, &key(i));
        std::thread::sleep(Duration::from_millis(2));
    }
    // The oldest three, touched (never read) after all were published.
    for i in 0..3 {
        s.touch(NS, &key(i)).unwrap();
    }
    assert!(matches!(
        s.locate(NS, &key(0)).unwrap(),
        Some(Location::Packed { .. })
    ));
    let r = s
        .apply_limits(&Limits {
            max_items: Some(3),
            ..Limits::default()
        })
        .unwrap();
    let mut removed: Vec<String> = r.removed.iter().map(|e| e.key.clone()).collect();
    removed.sort();
    assert_eq!(removed, (3..6).map(key).collect::<Vec<_>>());
    // A touch of an entry that is not there is not an error.
    s.touch(NS, &key(99)).unwrap();
}

#[test]
fn a_torn_tail_is_ignored_and_cut_by_the_next_append() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    let s = store(&root);
    for i in 0..5 {
        publish(&s, &key_ab(i));
    }
    let pack = pack_path(&root, &key_ab(0));
    let whole = fs::metadata(&pack).unwrap().len();
    // What a writer killed mid-append, or a power loss, leaves: half a
    // record, then zeros.
    let bytes = fs::read(&pack).unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(&pack).unwrap();
    f.write_all(&bytes[..bytes.len() / 7]).unwrap();
    f.write_all(&[0u8; 300]).unwrap();
    drop(f);
    let other = FsStore::open(&root).unwrap();
    for i in 0..5 {
        let k = key_ab(i);
        assert_eq!(other.get_bytes(NS, &k).unwrap().unwrap(), value(&k));
    }
    publish(&other, &key_ab(5));
    assert!(fs::metadata(&pack).unwrap().len() > whole);
    for i in 0..6 {
        let k = key_ab(i);
        assert_eq!(s.get_bytes(NS, &k).unwrap().unwrap(), value(&k), "{i}");
    }
    assert_eq!(s.entries(NS).unwrap().len(), 6);
}

#[test]
fn a_damaged_record_is_a_corrupt_miss_never_a_wrong_value() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    let s = store(&root);
    for i in 0..3 {
        publish(&s, &key_ab(i + 100));
    }
    let pack = pack_path(&root, &key_ab(0));
    let mut bytes = fs::read(&pack).unwrap();
    // The last byte of the second record before its checksum.
    let starts = record_starts(&bytes);
    assert_eq!(starts.len(), 3);
    bytes[starts[2] - 9] ^= 0x40;
    fs::write(&pack, &bytes).unwrap();
    let other = FsStore::open(&root).unwrap();
    let mut ok = 0;
    for i in 0..3 {
        let k = key_ab(i + 100);
        match other.get(NS, &k, true).unwrap() {
            Lookup::Found(mut e) => {
                assert_eq!(e.read_to_vec().unwrap(), value(&k));
                ok += 1;
            }
            Lookup::Missing => {}
            Lookup::Corrupt(c) => panic!("a skipped record is a miss: {}", c.reason),
        }
    }
    // The damaged record is skipped by the scan: the other two are found.
    assert_eq!(ok, 2);
}

/// Where the records of a pack begin (its payloads hold no magic).
fn record_starts(bytes: &[u8]) -> Vec<usize> {
    bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"JCPK")
        .map(|(i, _)| i)
        .collect()
}

/// Entry point of child processes; a no-op in the parent's run.
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let root = PathBuf::from(std::env::var("STORE_ROOT").unwrap());
    let id: u64 = std::env::var("CHILD_ID").unwrap().parse().unwrap();
    let s = FsStore::open(&root).unwrap();
    match role.as_str() {
        "appender" => {
            for i in 0..400 {
                publish(&s, &key_ab(id * 1_000_000 + i));
            }
        }
        "forever" => {
            for i in 0.. {
                publish(&s, &key_ab(id * 1_000_000 + i));
            }
        }
        other => panic!("unknown role {other}"),
    }
}

fn spawn(role: &str, root: &Path, id: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env("STORE_ROOT", root)
        .env("CHILD_ID", id.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_processes_append_to_one_pack_without_interleaving() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    drop(store(&root));
    let children: Vec<Child> = (1..=2).map(|id| spawn("appender", &root, id)).collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let s = FsStore::open(&root).unwrap();
    for id in 1..=2 {
        for i in 0..400 {
            let k = key_ab(id * 1_000_000 + i);
            assert_eq!(s.get_bytes(NS, &k).unwrap().unwrap(), value(&k), "{k}");
        }
    }
    let listed = s.entries(NS).unwrap();
    assert_eq!(listed.len(), 800);
    assert!(listed.iter().all(|e| e.meta.is_ok()));
    // One pack only, and every byte of it is a whole record.
    let packs: Vec<_> = fs::read_dir(root.join("packs"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".pack"))
        })
        .collect();
    assert_eq!(packs.len(), 1);
    let total: u64 = listed.iter().map(|e| e.stored_bytes).sum();
    assert_eq!(
        fs::metadata(pack_path(&root, &key_ab(0))).unwrap().len(),
        total
    );
}

#[test]
fn a_writer_killed_while_appending_leaves_every_whole_record_readable() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    drop(store(&root));
    for round in 0..3u64 {
        let mut c = spawn("forever", &root, round + 1);
        std::thread::sleep(Duration::from_millis(150 + 37 * round));
        c.kill().unwrap();
        c.wait().unwrap();
    }
    let s = FsStore::open(&root).unwrap();
    let listed = s.entries(NS).unwrap();
    assert!(!listed.is_empty());
    for e in &listed {
        assert_eq!(s.get_bytes(NS, &e.key).unwrap().unwrap(), value(&e.key));
    }
    // The next append works and is found.
    publish(&s, &key_ab(9_999_999));
    let again = FsStore::open(&root).unwrap();
    assert_eq!(
        again.get_bytes(NS, &key_ab(9_999_999)).unwrap().unwrap(),
        value(&key_ab(9_999_999))
    );
    assert_eq!(again.entries(NS).unwrap().len(), listed.len() + 1);
}

/// Bytes (allocated blocks) and inodes of a tree.
fn usage(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut inodes) = (0, 0);
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let md = fs::symlink_metadata(e.path()).unwrap();
        bytes += md.blocks() * 512;
        inodes += 1;
        if md.is_dir() {
            let (b, i) = usage(&e.path());
            bytes += b;
            inodes += i;
        }
    }
    (bytes, inodes)
}

#[test]
fn a_small_entry_costs_at_most_1_kib_and_a_tenth_of_an_inode() {
    const N: u64 = 10_000;
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    let s = store(&root);
    for i in 0..N {
        let k = format!(
            "{:064x}",
            (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
        );
        s.publish_bytes(NS, &k, &NewEntry::default(), &i.to_le_bytes())
            .unwrap();
    }
    let (bytes, inodes) = usage(&root);
    let per_entry = bytes as f64 / N as f64;
    let inodes_per = inodes as f64 / N as f64;
    println!("disk per small entry {per_entry:.0} B, inodes per entry {inodes_per:.4}");
    assert!(per_entry <= 1024.0, "{per_entry} B per entry");
    assert!(inodes_per <= 0.1, "{inodes_per} inodes per entry");
    assert_eq!(s.indexed_totals().unwrap().0, N as usize);
}

#[test]
fn gc_compacts_a_mostly_dead_pack_and_verify_drops_damage() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    let s = store(&root);
    for i in 0..40 {
        publish(&s, &key_ab(i));
    }
    let pack = pack_path(&root, &key_ab(0));
    let before = fs::metadata(&pack).unwrap();
    let reader = FsStore::open(&root).unwrap();
    assert!(reader.get_bytes(NS, &key_ab(39)).unwrap().is_some());
    for i in 0..30 {
        s.remove(NS, &key_ab(i)).unwrap();
    }
    s.reduce_size(&Limits::default(), false).unwrap();
    let after = fs::metadata(&pack).unwrap();
    assert_ne!(after.ino(), before.ino(), "the pack was rewritten");
    assert!(after.len() < before.len() / 3);
    let listed = reader.entries(NS).unwrap();
    assert_eq!(listed.len(), 10);
    assert_eq!(
        listed.iter().map(|e| e.stored_bytes).sum::<u64>(),
        after.len()
    );
    for i in 0..40 {
        let k = key_ab(i);
        let got = reader.get_bytes(NS, &k).unwrap();
        assert_eq!(got, (i >= 30).then(|| value(&k)), "{i}");
    }
    // Damage in the middle: verify rewrites the pack without it.
    let mut bytes = fs::read(&pack).unwrap();
    let starts = record_starts(&bytes);
    bytes[starts[5] - 9] ^= 0x01;
    fs::write(&pack, &bytes).unwrap();
    let v = FsStore::open(&root).unwrap();
    v.verify_all(&mut |_, _| {}).unwrap();
    let listed = v.entries(NS).unwrap();
    assert_eq!(listed.len(), 9);
    let len = fs::metadata(&pack).unwrap().len();
    assert_eq!(listed.iter().map(|e| e.stored_bytes).sum::<u64>(), len);
    assert_eq!(v.indexed_totals().unwrap(), (9, len));
}

#[test]
fn compaction_while_another_process_appends() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    let s = store(&root);
    let child = spawn("appender", &root, 1);
    let mut round = 0u64;
    let done = loop {
        for i in 0..20 {
            publish(&s, &key_ab(5_000_000 + round * 100 + i));
        }
        for i in 0..20 {
            s.remove(NS, &key_ab(5_000_000 + round * 100 + i)).unwrap();
        }
        s.reduce_size(&Limits::default(), false).unwrap();
        round += 1;
        let listed = s.entries(NS).unwrap();
        assert!(listed.iter().all(|e| e.meta.is_ok()));
        if listed.len() == 400 || round > 2000 {
            break listed.len();
        }
    };
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(done, 400, "after {round} rounds");
    let fresh = FsStore::open(&root).unwrap();
    for i in 0..400 {
        let k = key_ab(1_000_000 + i);
        assert_eq!(fresh.get_bytes(NS, &k).unwrap().unwrap(), value(&k), "{k}");
    }
}

#[test]
fn a_layout_2_store_opens_and_its_entry_directories_still_read() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    // What layout 2 wrote: an entry directory.
    let s = FsStore::create(&root).unwrap().with_packs(false);
    publish(&s, &key(1));
    drop(s);
    assert!(FsStore::open(&root)
        .unwrap()
        .entry_dir(NS, &key(1))
        .unwrap()
        .is_dir());
    fs::write(
        root.join("jobcache-store-layout"),
        "jobcache-store layout 2\n",
    )
    .unwrap();
    let s = FsStore::open(&root).unwrap();
    assert_eq!(
        fs::read_to_string(root.join("jobcache-store-layout")).unwrap(),
        format!("jobcache-store layout {}\n", jobcache_store::LAYOUT_VERSION)
    );
    assert_eq!(s.get_bytes(NS, &key(1)).unwrap().unwrap(), value(&key(1)));
    // Publishing the same key again finds the directory entry.
    let again = s
        .publish_bytes(NS, &key(1), &NewEntry::default(), &value(&key(1)))
        .unwrap();
    assert!(again.already_present);
    publish(&s, &key(2));
    assert!(!s.entry_dir(NS, &key(2)).unwrap().exists());
    assert_eq!(s.entries(NS).unwrap().len(), 2);
}

#[test]
fn threads_and_handles_of_one_process_append_without_interleaving() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    let shared = store(&root);
    std::thread::scope(|scope| {
        for th in 0..4u64 {
            let shared = &shared;
            let root = &root;
            scope.spawn(move || {
                // Two threads share a handle, two have their own.
                let own = (th >= 2).then(|| store(root));
                let s = own.as_ref().unwrap_or(shared);
                for i in 0..100 {
                    publish(s, &key_ab(th * 1_000_000 + i));
                }
            });
        }
    });
    let s = FsStore::open(&root).unwrap();
    let listed = s.entries(NS).unwrap();
    assert_eq!(listed.len(), 400);
    let total: u64 = listed.iter().map(|e| e.stored_bytes).sum();
    assert_eq!(
        fs::metadata(pack_path(&root, &key_ab(0))).unwrap().len(),
        total
    );
    for e in &listed {
        assert_eq!(s.get_bytes(NS, &e.key).unwrap().unwrap(), value(&e.key));
    }
}

#[test]
fn symlinks_where_packs_belong_are_removed_never_followed() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("ab.pack"), b"precious").unwrap();
    let s = store(&root);
    // packs/ (made with the store) replaced by a symlink to a directory
    // outside the root.
    fs::remove_dir(root.join("packs")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("packs")).unwrap();
    publish(&s, &key_ab(1));
    assert!(!fs::symlink_metadata(root.join("packs"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(outside.join("ab.pack")).unwrap(), b"precious");
    // A pack that is a symlink to a file outside.
    let pack = pack_path(&root, &key_ab(0));
    fs::remove_file(&pack).unwrap();
    std::os::unix::fs::symlink(outside.join("ab.pack"), &pack).unwrap();
    let other = FsStore::open(&root).unwrap();
    // A lookup never writes: the symlink is no pack.
    assert!(matches!(
        other.get(NS, &key_ab(1), true).unwrap(),
        Lookup::Missing
    ));
    publish(&other, &key_ab(2));
    assert!(fs::symlink_metadata(&pack).unwrap().is_file());
    assert_eq!(fs::read(outside.join("ab.pack")).unwrap(), b"precious");
    assert_eq!(
        other.get_bytes(NS, &key_ab(2)).unwrap().unwrap(),
        value(&key_ab(2))
    );
}
