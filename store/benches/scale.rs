//! The `scale` benchmark group (issue 20): a store of 10⁶ small entries
//! against one of 10³, and its whole-store operations against a bare
//! directory walk of the same tree.
//!
//! The caches are built once, outside every timer, under
//! `target/bench-scale/` and kept between runs (a run tops them up to their
//! size again: `gc` removes 10 %). `JOBCACHE_SCALE_N` sets the large
//! cache's size (default 1,000,000) for a quicker look; the row names keep
//! `1e6`, and the group prints the size it measured.
//!
//! Small entries are packed (`FsStore::with_packs`); `JOBCACHE_SCALE_PACKS=0`
//! measures the directory-per-entry layout instead (separate caches).
//!
//! - `scale/hit_small_1e6`: µs per verified hit of an 8-byte entry at 10⁶
//!   entries (a working set of 10³ keys spread over the cache); baseline
//!   the same at 10³ (ratio = 10³ time ÷ 10⁶ time).
//! - `scale/miss_small_policy_1e6`: µs per publish of a new 8-byte entry
//!   followed by `apply_limits` with an item limit that holds the size
//!   (each publish evicts one entry); baseline the same at 10³.
//! - `scale/ls_1e6`: s to list every entry with its metadata (what
//!   `jobcache ls` reads); baseline `find <root> -type f | wc -l`.
//! - `scale/gc_1e6`: s for `reduce_size` evicting 10 % by item count;
//!   baseline the same `find`.
//! - `scale/verify_quick_1e6`: s for `verify_quick`; baseline the same `find`.
//! - `scale/first_hit_fresh_handle_1e6` (reported only): µs of the first
//!   hit of a newly opened handle, which reads the whole pack of its key.
//! - `scale/disk_per_small_entry_1e6`: bytes of disk (`du -s -B1`) of the
//!   cache over its entries.
//! - `scale/inodes_per_small_entry_1e6`: names in the tree (`find | wc -l`)
//!   over its entries.

use jobcache_bench::{micros, paired, target_dir, Group, Row, DEFAULT_REPS};
use jobcache_store::StoreExt;
use jobcache_store::{FsStore, Limits, NewEntry, Store};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const NS: &str = "bench::scale::small";
const SMALL_N: u64 = 1_000;
const HITS: u64 = 2_000;
const MISSES: u64 = 200;

/// The key of entry `i`: its first byte spread as a digest's is (so that
/// packed entries spread over the 256 packs as real keys do).
fn key(i: u64) -> String {
    let first = (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8;
    format!("{first:02x}{i:062x}")
}

/// Keys spread over the whole cache (a multiplicative hash of `i`).
fn spread(i: u64, n: u64) -> u64 {
    i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % n
}

/// Publishes entries `0..n` that are missing (a previous run's misses and
/// `gc` evicted some), on two threads.
fn fill(store: &FsStore, n: u64) -> Result<u64, String> {
    let start = Instant::now();
    let meta = NewEntry::new(Duration::from_millis(1)).field("function", NS);
    let present: std::collections::HashSet<String> = store
        .entries(NS)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|e| e.key)
        .collect();
    let todo: Vec<u64> = (0..n).filter(|i| !present.contains(&key(*i))).collect();
    let threads = 2;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (todo, meta) = (&todo, &meta);
            scope.spawn(move || {
                for (j, i) in todo.iter().enumerate() {
                    if j % threads == t {
                        let _ = store.publish_bytes(NS, &key(*i), meta, &i.to_le_bytes());
                    }
                }
            });
        }
    });
    eprintln!(
        "scale: published {} entries in {:.1?}",
        todo.len(),
        start.elapsed()
    );
    Ok(store.indexed_totals().map_err(|e| e.to_string())?.0 as u64)
}

fn open(dir: &Path, n: u64, packs: bool) -> Result<FsStore, Box<dyn std::error::Error>> {
    let store = FsStore::create(dir)?.with_packs(packs);
    fill(&store, n)?;
    Ok(store)
}

/// Seconds of `find <root> -type f | wc -l`.
fn find_files(root: &Path) -> f64 {
    let start = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg("find \"$1\" -type f | wc -l")
        .arg("sh")
        .arg(root)
        .output();
    assert!(out.is_ok_and(|o| o.status.success()), "find failed");
    start.elapsed().as_secs_f64()
}

fn shell_number(cmd: &str, root: &Path) -> f64 {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .arg("sh")
        .arg(root)
        .output()
        .ok()
        .filter(|o| o.status.success());
    out.and_then(|o| {
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
    .unwrap_or(f64::NAN)
}

/// `HITS` verified hits over a working set of `SMALL_N` keys spread over
/// the cache: both caches see the same number of distinct keys, so both pay
/// the same coarse access-time updates (one per key and minute, in the
/// warm-up) and the ratio shows what the cache's size alone costs.
fn hits(store: &FsStore, n: u64, round: &mut u64) -> Duration {
    *round += 1;
    let start = Instant::now();
    for i in 0..HITS {
        let k = key(spread((i + *round * HITS) % SMALL_N, n));
        let got = store.get_bytes(NS, &k).ok().flatten();
        assert!(got.is_some_and(|b| b.len() == 8), "{k}");
    }
    start.elapsed() / HITS as u32
}

/// Publishes new keys above `n`, each followed by the size policy.
fn misses(store: &FsStore, next: &mut u64, limits: &Limits) -> Duration {
    let meta = NewEntry::new(Duration::from_millis(1)).field("function", NS);
    let start = Instant::now();
    for _ in 0..MISSES {
        *next += 1;
        let k = key(*next);
        let p = store.publish_bytes(NS, &k, &meta, &next.to_le_bytes());
        assert!(p.is_ok());
        let r = store.apply_limits(limits);
        assert!(r.is_ok());
    }
    start.elapsed() / MISSES as u32
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::var("JOBCACHE_SCALE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // Small entries packed (LAYOUT.md, "Packs") unless JOBCACHE_SCALE_PACKS=0.
    let packs = std::env::var("JOBCACHE_SCALE_PACKS").map_or(true, |v| v != "0");
    let layout = if packs { "packed" } else { "dirs" };
    let base = target_dir().join("bench-scale");
    let small_dir = base.join(format!("small-1e3-{layout}"));
    let big_dir = base.join(format!("big-{n}-{layout}"));
    let small = open(&small_dir, SMALL_N, packs)?;
    let big = open(&big_dir, n, packs)?;
    eprintln!("scale: measuring {n} entries against {SMALL_N}, small entries {layout}");
    let mut group = Group::new("scale");
    let reps = DEFAULT_REPS;

    let (mut ra, mut rb) = (0, 0);
    let (at_big, at_small) = paired(
        reps,
        || hits(&big, n, &mut ra),
        || hits(&small, SMALL_N, &mut rb),
    );
    group.push(Row::ratio_lower_is_better(
        "scale/hit_small_1e6",
        micros(at_big),
        "us",
        micros(at_small),
    ));

    // The first hit of a fresh handle reads the whole pack of its key
    // (1/256 of the packed entries) to build its map.
    let mut firsts = Vec::new();
    for r in 0..reps as u64 {
        let fresh = FsStore::open(big.root())?.with_packs(packs);
        let k = key(spread(r * 7919, n));
        let start = Instant::now();
        let got = fresh.get_bytes(NS, &k)?;
        firsts.push(start.elapsed());
        assert!(got.is_some(), "{k}");
    }
    firsts.sort();
    group.push(Row::plain(
        "scale/first_hit_fresh_handle_1e6",
        micros(firsts[firsts.len() / 2]),
        "us",
    ));

    // Publishing above the cache's keys with an item limit at its size:
    // every publish evicts the least recently used entry.
    // Fresh keys in every run (a run's keys stay in the kept caches).
    let fresh = 1u64 << 40
        | (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            % (1 << 20))
            << 18;
    let (mut nb, mut ns) = (fresh, fresh);
    let big_limits = Limits {
        max_items: Some(n as usize),
        ..Limits::default()
    };
    let small_limits = Limits {
        max_items: Some(SMALL_N as usize),
        ..Limits::default()
    };
    let (at_big, at_small) = paired(
        reps,
        || misses(&big, &mut nb, &big_limits),
        || misses(&small, &mut ns, &small_limits),
    );
    group.push(Row::ratio_lower_is_better(
        "scale/miss_small_policy_1e6",
        micros(at_big),
        "us",
        micros(at_small),
    ));

    let root = big.root().to_path_buf();
    // Disk and inodes (the entries just evicted were replaced 1:1).
    let entries = big.indexed_totals()?.0 as f64;
    let disk = shell_number("du -s -B1 \"$1\"", &root);
    let inodes = shell_number("find \"$1\" | wc -l", &root);
    group.push(Row::plain(
        "scale/disk_per_small_entry_1e6",
        disk / entries,
        "bytes",
    ));
    group.push(Row::plain(
        "scale/inodes_per_small_entry_1e6",
        inodes / entries,
        "inodes",
    ));

    // Whole-store operations, each against a bare walk of the same tree.
    let find = find_files(&root);
    let start = Instant::now();
    let listed = big.all_entries()?.len();
    let ls = start.elapsed().as_secs_f64();
    assert!(listed as f64 >= entries * 0.99);
    let find2 = find_files(&root);
    group.push(Row::ratio_lower_is_better(
        "scale/ls_1e6",
        ls,
        "s",
        find.min(find2),
    ));

    let start = Instant::now();
    let report = big.verify_quick(&mut |_, _| {})?;
    let quick = start.elapsed().as_secs_f64();
    assert_eq!(report.corrupt, 0);
    let find3 = find_files(&root);
    group.push(Row::ratio_lower_is_better(
        "scale/verify_quick_1e6",
        quick,
        "s",
        find2.min(find3),
    ));

    let keep = (entries * 0.9) as usize;
    let start = Instant::now();
    let r = big.reduce_size(
        &Limits {
            max_items: Some(keep),
            ..Limits::default()
        },
        false,
    )?;
    let gc = start.elapsed().as_secs_f64();
    eprintln!("scale: gc removed {} entries", r.removed.len());
    let find4 = find_files(&root);
    group.push(Row::ratio_lower_is_better(
        "scale/gc_1e6",
        gc,
        "s",
        find3.min(find4),
    ));
    group.finish()?;
    Ok(())
}
