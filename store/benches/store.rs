//! The `store` benchmark group: `FsStore` hits and publishes, small and
//! large, each against the raw file operation on the same bytes in the same
//! run.
//!
//! - `store/get_small`: µs for a verified hit of a 100-byte entry and its
//!   payload read; baseline `std::fs::read` of the file that holds the
//!   payload (small payloads live inside the entry's meta file).
//! - `store/publish_small`: µs to publish a 100-byte entry (the default
//!   durability, no `fsync`); baseline creating a 100-byte file and
//!   `write_all`. `store/publish_small_synced` (reported only): the same
//!   with `Durability::Synced`, baseline `write_all` + `fsync`.
//! - `store/get_small_packed`, `store/publish_small_packed` (reported
//!   only): the same rows with small entries packed into shared pack files
//!   (`FsStore::with_packs`), against the same baselines.
//! - `store/get_256MiB`: GB/s of a verified hit read into a buffer already
//!   faulted in; baseline `open` + `read_exact` into the same buffer.
//!   (`store/get_256MiB_unverified`, reported only: the same without the
//!   payload checksum.)
//! - `store/publish_256MiB`: GB/s of a publish (default durability);
//!   baseline `write_all` of the same bytes to a new file.
//!   `store/publish_256MiB_synced` (reported only): with
//!   `Durability::Synced`, baseline `write_all` + `fsync`.

use jobcache_bench::{gb_per_s, micros, paired, scratch_dir, timed, Group, Row, DEFAULT_REPS};
use jobcache_store::{Durability, FsStore, NewEntry, Store};
use std::cell::{Cell, RefCell};
use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

const NS: &str = "bench::store";
const BIG: usize = 256 << 20;
const REPS: usize = DEFAULT_REPS + 2;

fn key(i: u64) -> String {
    format!("{i:064x}")
}

/// Publishes through one store against raw writes into `raw_dir`, with
/// `fsync` on the raw side exactly when the store syncs.
struct Publishes<'a> {
    store: &'a FsStore,
    sync: bool,
    meta: &'a NewEntry,
    raw_dir: &'a Path,
    next: &'a Cell<u64>,
}

impl Publishes<'_> {
    fn bump(&self) -> u64 {
        self.next.set(self.next.get() + 1);
        self.next.get()
    }

    fn raw_write(&self, path: &Path, bytes: &[u8]) {
        let mut f = File::create(path).ok();
        if let Some(f) = f.as_mut() {
            let r = f
                .write_all(bytes)
                .and_then(|()| if self.sync { f.sync_all() } else { Ok(()) });
            assert!(r.is_ok());
        }
    }

    /// Time per publish of a new small entry, and per raw write.
    fn small(&self, bytes: &[u8]) -> (Duration, Duration) {
        const M: u32 = 50;
        let (ours, raw) = paired(
            REPS,
            || {
                timed(|| {
                    for _ in 0..M {
                        let k = key(self.bump());
                        let published = self.store.publish_bytes(NS, &k, self.meta, bytes);
                        assert!(published.is_ok_and(|p| !p.already_present));
                    }
                })
            },
            || {
                timed(|| {
                    for _ in 0..M {
                        self.raw_write(&self.raw_dir.join(self.bump().to_string()), bytes);
                    }
                })
            },
        );
        (ours / M, raw / M)
    }

    /// Time of a large publish and of a raw write: a fresh key or file each
    /// time, the previous one removed first (outside the timing). Returns
    /// the key last published, left in the store.
    fn large(&self, data: &[u8]) -> (Duration, Duration, u64) {
        let last_key = Cell::new(0u64);
        let last_raw = Cell::new(0u64);
        let (ours, raw) = paired(
            REPS,
            || {
                let _ = self.store.remove(NS, &key(last_key.get()));
                let k = self.bump();
                last_key.set(k);
                timed(|| {
                    assert!(self
                        .store
                        .publish_bytes(NS, &key(k), self.meta, data)
                        .is_ok())
                })
            },
            || {
                let _ = std::fs::remove_file(self.raw_dir.join(format!("big{}", last_raw.get())));
                let n = self.bump();
                last_raw.set(n);
                let path = self.raw_dir.join(format!("big{n}"));
                timed(|| self.raw_write(&path, data))
            },
        );
        let _ = std::fs::remove_file(self.raw_dir.join(format!("big{}", last_raw.get())));
        (ours, raw, last_key.get())
    }
}

/// Time of `n` verified hits of `k` with its payload read, and of `n` raw
/// reads of `raw_file`.
fn hit_small(
    store: &FsStore,
    k: &str,
    small: &[u8],
    raw_file: &Path,
    n: u32,
) -> (Duration, Duration) {
    paired(
        REPS,
        || {
            timed(|| {
                for _ in 0..n {
                    let mut e = store.get(NS, k, true).ok().and_then(|l| l.found());
                    let bytes = e.as_mut().and_then(|e| e.read_to_vec().ok());
                    assert_eq!(bytes.as_deref(), Some(small));
                }
            })
        },
        || {
            timed(|| {
                for _ in 0..n {
                    black_box(std::fs::read(raw_file).ok());
                }
            })
        },
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch_dir("store")?;
    let store = FsStore::create(dir.join("cache"))?.with_packs(false);
    let mut group = Group::new("store");
    let meta = NewEntry::new(Duration::from_millis(5))
        .field("function", NS)
        .field("args", "x: f64 = 1.5");

    // Small hit.
    let small = vec![42u8; 100];
    store.publish_bytes(NS, &key(0), &meta, &small)?;
    let small_file = store.entry_dir(NS, &key(0))?.join("meta");
    const N: u32 = 2000;
    let (ours, raw) = hit_small(&store, &key(0), &small, &small_file, N);
    group.push(Row::ratio_lower_is_better(
        "store/get_small",
        micros(ours / N),
        "us",
        micros(raw / N),
    ));

    // The same hit of an entry packed into a shared pack file.
    let packed = FsStore::open(dir.join("cache"))?.with_packs(true);
    packed.publish_bytes(NS, &key(1), &meta, &small)?;
    let (ours, raw) = hit_small(&packed, &key(1), &small, &small_file, N);
    group.push(Row::ratio_lower_is_better(
        "store/get_small_packed",
        micros(ours / N),
        "us",
        micros(raw / N),
    ));

    // Publishes, small and large, in each durability mode, against the raw
    // writes that pay the same: no fsync for the default, `fsync` for
    // `Synced`.
    let next = Cell::new(1_000u64);
    let raw_dir = dir.join("raw");
    std::fs::create_dir_all(&raw_dir)?;
    let synced = FsStore::open(dir.join("cache"))?
        .with_packs(false)
        .with_durability(Durability::Synced);
    let data: Vec<u8> = (0..BIG).map(|i| (i as u8).wrapping_mul(13)).collect();
    let mut last_key = 0u64;
    let p = Publishes {
        store: &packed,
        sync: false,
        meta: &meta,
        raw_dir: &raw_dir,
        next: &next,
    };
    let (ours, raw) = p.small(&small);
    group.push(Row::ratio_lower_is_better(
        "store/publish_small_packed",
        micros(ours),
        "us",
        micros(raw),
    ));
    for (s, sync, suffix) in [(&store, false, ""), (&synced, true, "_synced")] {
        let p = Publishes {
            store: s,
            sync,
            meta: &meta,
            raw_dir: &raw_dir,
            next: &next,
        };
        let (ours, raw) = p.small(&small);
        group.push(Row::ratio_lower_is_better(
            &format!("store/publish_small{suffix}"),
            micros(ours),
            "us",
            micros(raw),
        ));
        let (ours, raw, k) = p.large(&data);
        last_key = k;
        group.push(Row::ratio_higher_is_better(
            &format!("store/publish_256MiB{suffix}"),
            gb_per_s(BIG as u64, ours),
            "GB/s",
            gb_per_s(BIG as u64, raw),
        ));
    }

    // Large verified hit into a buffer already faulted in.
    let big_key = key(last_key);
    let buf = RefCell::new(vec![1u8; BIG]);
    let payload_path = store.entry_dir(NS, &big_key)?.join("payload");
    let (ours, raw) = paired(
        REPS,
        || {
            let mut buf = buf.borrow_mut();
            timed(|| {
                let mut e = store.get(NS, &big_key, true).ok().and_then(|l| l.found());
                let ok = e.as_mut().map(|e| e.read_into(&mut buf).is_ok());
                assert_eq!(ok, Some(true));
            })
        },
        || {
            let mut buf = buf.borrow_mut();
            timed(|| {
                let ok = File::open(&payload_path).and_then(|mut f| f.read_exact(&mut buf));
                assert!(ok.is_ok());
            })
        },
    );
    assert!(*buf.borrow() == data);
    group.push(Row::ratio_higher_is_better(
        "store/get_256MiB",
        gb_per_s(BIG as u64, ours),
        "GB/s",
        gb_per_s(BIG as u64, raw),
    ));

    // The same without payload verification (what a caller that maps the
    // payload, verified at publish, pays): reported only.
    let (ours, raw) = paired(
        REPS,
        || {
            let mut buf = buf.borrow_mut();
            timed(|| {
                let mut e = store.get(NS, &big_key, false).ok().and_then(|l| l.found());
                let ok = e.as_mut().map(|e| e.read_into(&mut buf).is_ok());
                assert_eq!(ok, Some(true));
            })
        },
        || {
            let mut buf = buf.borrow_mut();
            timed(|| {
                let ok = File::open(&payload_path).and_then(|mut f| f.read_exact(&mut buf));
                assert!(ok.is_ok());
            })
        },
    );
    group.push(Row::ratio_higher_is_better(
        "store/get_256MiB_unverified",
        gb_per_s(BIG as u64, ours),
        "GB/s",
        gb_per_s(BIG as u64, raw),
    ));

    group.finish()?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
