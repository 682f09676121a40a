//! `cargo xtask bench memo`: the cost memo adds to a cached call, measured
//! against the store underneath, against Python joblib and against the
//! `cached` crate's redb disk store, in the same run. Every row with a
//! baseline alternates subject and baseline ([`pairs`]); its ratio is the
//! median of the per-pair ratios.
//!
//! `MEMO_BENCH_ONLY=small` runs the small-call rows alone (seconds, not
//! minutes); `MEMO_BENCH_ONLY=pipeline` the plain pipeline rows alone
//! (`large` the other 1 GiB rows); a comma-separated list runs several. `MEMO_BENCH_HITS=N` runs one miss then `N` hits of the small
//! call and exits, for counting the hit path's system calls:
//! `strace -c -f` of that run with `N` = 10000 minus the run with `N` = 0.

use cached::stores::RedbCache;
use cached::ConcurrentCached;
use jobcache_bench::{
    micros, millis, pairs, python_venv, samples, scratch_dir, Group, Pairs, PythonWorker, Row,
};
use jobcache_memo::{Memory, Shelved};
use jobcache_store::{FsStore, NewEntry, StoreExt};
use ndarray::Array1;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Calls per timed repetition of the small hit rows (one call is microseconds).
const CALLS: u32 = 2000;
/// Calls per timed repetition of the small miss rows (each a new argument).
const MISSES: u32 = 200;
/// Repetitions (alternated pairs) of the small rows and of the large ones.
const REPS: usize = 7;
const BIG_REPS: usize = 5;
const GIB_ELEMS: usize = (1 << 30) / 8;
/// The seed of the pipeline's generated data (the same on both sides).
const SEED: u64 = 3;

type Result<T> = std::io::Result<T>;

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

/// The time of `n` calls of `f`.
fn block(n: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed()
}

/// Microseconds per call of a block of `n` calls.
fn per_call(n: u32) -> impl Fn(Duration) -> f64 {
    move |t| micros(t) / f64::from(n)
}

/// Writes back all dirty data and lets the disk settle, before every timed
/// repetition of a large row, on both sides alike (a save must not pay for
/// the writeback the previous one left behind).
fn settle() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    std::thread::sleep(Duration::from_millis(200));
}

/// The joblib side of the small rows: `square` cached in `cache`, a block
/// of hits on one argument, a block of misses on new ones.
fn joblib_small(python: &Path, cache: &Path) -> Option<PythonWorker> {
    let setup = format!(
        r#"
import joblib
mem = joblib.Memory({cache:?}, verbose=0)
def square(x):
    return x * x
f = mem.cache(square)
f(12345)
nxt = [1000000]
def hit_block():
    for _ in range({CALLS}):
        f(12345)
def miss_block():
    for _ in range({MISSES}):
        nxt[0] += 1
        f(nxt[0])
"#,
        cache = cache.display().to_string()
    );
    PythonWorker::start(python, &setup)
}

fn redb(dir: &Path, name: &str, durable: bool) -> Result<RedbCache<u64, u64>> {
    RedbCache::builder(name)
        .disk_dir(dir)
        .durable(durable)
        .build()
        .map_err(io)
}

/// A miss through `cached`'s store as its `#[io_cached]` functions do it:
/// look up, compute, store.
fn redb_miss(cache: &RedbCache<u64, u64>, x: u64) -> u64 {
    if let Ok(Some(v)) = cache.cache_get(&x) {
        return v;
    }
    let v = square(x);
    black_box(cache.cache_set(x, v).ok());
    v
}

fn small_rows(group: &mut Group, dir: &Path, python: Option<&Path>) -> Result<()> {
    let mem = Memory::builder(dir.join("cache"))
        .verbose(0)
        .build()
        .map_err(io)?;
    let cached = mem.cache(square);
    cached.call(12345);
    let mut ours_hits = || {
        block(CALLS, || {
            black_box(cached.call(black_box(12345)));
        })
    };

    // A hit against a raw store get of a small entry.
    let store = FsStore::create(dir.join("raw-store")).map_err(io)?;
    let key = "ab".repeat(32);
    store
        .publish_bytes("bench", &key, &NewEntry::new(Duration::ZERO), &[7u8; 100])
        .map_err(io)?;
    let p = pairs(REPS, &mut ours_hits, || {
        Some(block(CALLS, || {
            black_box(store.get_bytes("bench", &key).ok());
        }))
    });
    group.push(Row::from_pairs("memo/hit_small", "us", &p, per_call(CALLS)));

    // Against joblib: the same small call, hits, then misses on new arguments.
    let mut worker = python.and_then(|py| joblib_small(py, &dir.join("joblib-cache")));
    let p = pairs(REPS, &mut ours_hits, || worker.as_mut()?.time("hit_block"));
    group.push(
        Row::from_pairs("memo/hit_small_vs_joblib", "us", &p, per_call(CALLS))
            .with_python_versions(),
    );
    let mut next = 1_000_000u64;
    let mut ours_misses = || {
        block(MISSES, || {
            next += 1;
            black_box(cached.call(next));
        })
    };
    let p = pairs(REPS, &mut ours_misses, || {
        worker.as_mut()?.time("miss_block")
    });
    group.push(
        Row::from_pairs("memo/miss_small_vs_joblib", "us", &p, per_call(MISSES))
            .with_python_versions(),
    );
    group.push(Row::from_samples(
        "memo/miss_overhead_small",
        "us",
        &p.subject,
        per_call(MISSES),
    ));
    drop(worker);

    // Against `cached` 4.x with its redb disk store (durable by default,
    // as `cached` ships it), a fresh cache: hits on one key, then misses.
    let redb_dir = dir.join("redb");
    let durable = redb(&redb_dir, "durable", true)?;
    redb_miss(&durable, 12345);
    let p = pairs(REPS, &mut ours_hits, || {
        Some(block(CALLS, || {
            black_box(durable.cache_get(&black_box(12345)).ok());
        }))
    });
    group.push(Row::from_pairs(
        "memo/hit_small_vs_cached_redb",
        "us",
        &p,
        per_call(CALLS),
    ));
    // redb without fsync: its commits may be lost even on a clean exit, a
    // weaker promise than any of ours; reported, not floored.
    let lax = redb(&redb_dir, "lax", false)?;
    for (row, cache) in [
        ("memo/miss_small_vs_cached_redb", &durable),
        ("memo/miss_small_vs_cached_redb_nondurable", &lax),
    ] {
        let mut next = 1_000_000u64;
        let p = pairs(REPS, &mut ours_misses, || {
            Some(block(MISSES, || {
                next += 1;
                black_box(redb_miss(cache, next));
            }))
        });
        group.push(Row::from_pairs(row, "us", &p, per_call(MISSES)));
    }
    Ok(())
}

/// One miss, then `hits` hits of the small call, then `misses` misses on
/// new arguments, for `strace -c -f`.
fn calls_only(dir: &Path, hits: u64, misses: u64) -> Result<()> {
    let mem = Memory::builder(dir.join("cache"))
        .verbose(0)
        .build()
        .map_err(io)?;
    let cached = mem.cache(square);
    cached.call(12345);
    for _ in 0..hits {
        black_box(cached.call(black_box(12345)));
    }
    for x in 0..misses {
        black_box(cached.call(black_box(2_000_000 + x)));
    }
    Ok(())
}

fn main() -> Result<()> {
    let dir = scratch_dir("memo")?;
    let count = |name: &str| -> Result<Option<u64>> {
        std::env::var_os(name)
            .map(|n| {
                n.to_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| io(format!("{name} must be a count of calls, e.g. 10000")))
            })
            .transpose()
    };
    let (hits, misses) = (count("MEMO_BENCH_HITS")?, count("MEMO_BENCH_MISSES")?);
    if hits.is_some() || misses.is_some() {
        return calls_only(&dir, hits.unwrap_or(0), misses.unwrap_or(0));
    }
    let only = std::env::var("MEMO_BENCH_ONLY").unwrap_or_default();
    let wanted = |section: &str| only.is_empty() || only.split(',').any(|s| s.trim() == section);
    let mut group = Group::new("memo");
    let python = python_venv();
    if wanted("small") {
        small_rows(&mut group, &dir, python.as_deref())?;
    }
    if wanted("large") {
        large_rows(&mut group, &dir)?;
    }
    if wanted("pipeline") {
        pipeline_rows(&mut group, &dir, python.as_deref())?;
    }
    group.finish()?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn large_rows(group: &mut Group, dir: &Path) -> Result<()> {
    let mem = Memory::builder(dir.join("cache"))
        .verbose(0)
        .build()
        .map_err(io)?;

    // A hit whose argument is a 1 MiB array: hashing it is most of the work.
    let arg: Array1<f64> = (0..(1 << 17)).map(f64::from).collect();
    let sum = mem.cache_named("sum", |a: &Array1<f64>| a.sum());
    sum.call(&arg);
    let s = samples(REPS, || {
        for _ in 0..50 {
            black_box(sum.call(black_box(&arg)));
        }
    });
    group.push(Row::from_samples(
        "memo/hit_1MiB_array_arg",
        "us",
        &s,
        per_call(50),
    ));

    // A hit returning a 1 GiB array, against a raw read of its payload into
    // a buffer already faulted in, alternated.
    let ones = mem.cache_named("ones", |n: usize| Array1::<f64>::from_elem(n, 1.0));
    ones.call(GIB_ELEMS);
    let payload = largest_file(&dir.join("cache"))?;
    let mut buf = vec![1u8; usize::try_from(std::fs::metadata(&payload)?.len()).map_err(io)?];
    let p = pairs(
        BIG_REPS,
        || {
            let start = Instant::now();
            let out = ones.call(GIB_ELEMS);
            let t = start.elapsed();
            drop(black_box(out));
            t
        },
        || raw_read(&payload, &mut buf).ok(),
    );
    group.push(Row::from_pairs(
        "memo/hit_1GiB_array_output",
        "ms",
        &p,
        millis,
    ));
    drop(buf);
    drop(ones);

    // A 3-step pipeline over 1 GiB arrays passed as shelved handles, every
    // step a hit.
    let step1 = mem.cache_named("step1", |n: usize| Array1::<f64>::from_elem(n, 2.0));
    let step2 = mem.cache_named("step2", |x: &Shelved<Array1<f64>>| {
        x.load().map(|a| a * 2.0)
    });
    let step3 = mem.cache_named("step3", |x: &Shelved<Array1<f64>>| {
        x.load().map(|a| a + 1.0)
    });
    let pipeline = || -> std::result::Result<Shelved<Array1<f64>>, jobcache_memo::Error> {
        let a = step1.call_and_shelve(GIB_ELEMS);
        let b = step2.try_call_and_shelve(&a)?;
        step3.try_call_and_shelve(&b)
    };
    pipeline().map_err(io)?;
    let s = samples(REPS, || {
        black_box(pipeline().ok());
    });
    group.push(Row::from_samples(
        "memo/pipeline_3x1GiB_all_hits",
        "ms",
        &s,
        millis,
    ));
    drop((step1, step2, step3));
    mem.clear().map_err(io)?;
    Ok(())
}

/// Step 1 of the plain pipeline: 1 GiB of deterministic data,
/// `((i * 7 + seed) % 1000) * 0.5`, the same values NumPy makes below.
fn generate(seed: u64) -> Array1<f64> {
    (0..GIB_ELEMS as u64)
        .map(|i| ((i * 7 + seed) % 1000) as f64 * 0.5)
        .collect()
}

/// Step 2: `a * 2 + 1`.
fn transform(a: &Array1<f64>) -> Array1<f64> {
    a.mapv(|x| x * 2.0 + 1.0)
}

/// Step 3: the mean.
fn fit(a: &Array1<f64>) -> f64 {
    a.mean().unwrap_or(f64::NAN)
}

/// The plain pipeline in joblib: the same three steps over the same
/// values, arrays passed as they are. `warm` runs on a filled cache;
/// `cold` and `plain` time only the pipeline (the old cache is removed
/// before the clock starts).
fn joblib_pipeline(python: &Path, dir: &Path) -> Option<PythonWorker> {
    let setup = format!(
        r#"
import shutil, time, numpy as np, joblib
N = {GIB_ELEMS}
def generate(seed):
    i = np.arange(N, dtype=np.uint64)
    i *= 7
    i += np.uint64(seed)
    i %= np.uint64(1000)
    a = i.astype(np.float64)
    del i
    a *= 0.5
    return a
def transform(a):
    return a * 2.0 + 1.0
def fit(a):
    return float(a.mean())
def run(mem):
    g, t, f = mem.cache(generate), mem.cache(transform), mem.cache(fit)
    return f(t(g({SEED})))
warm_mem = joblib.Memory({warm:?}, verbose=0)
def warm():
    run(warm_mem)
def cold():
    shutil.rmtree({cold:?}, ignore_errors=True)
    mem = joblib.Memory({cold:?}, verbose=0)
    t = time.perf_counter()
    run(mem)
    return time.perf_counter() - t
def plain():
    mem = joblib.Memory(None, verbose=0)
    t = time.perf_counter()
    run(mem)
    return time.perf_counter() - t
"#,
        warm = dir.join("joblib-warm").display().to_string(),
        cold = dir.join("joblib-cold").display().to_string(),
    );
    PythonWorker::start(python, &setup)
}

fn pipeline_rows(group: &mut Group, dir: &Path, python: Option<&Path>) -> Result<()> {
    let run = |mem: &Memory| -> f64 {
        let g = mem.cache_named("generate", generate);
        let t = mem.cache_named("transform", |a: &Array1<f64>| transform(a));
        let f = mem.cache_named("fit", |a: &Array1<f64>| fit(a));
        let a = g.call(SEED);
        let b = t.call(&a);
        f.call(&b)
    };
    let timed = |mem: &Memory| {
        let start = Instant::now();
        black_box(run(mem));
        start.elapsed()
    };
    let mut worker = python.and_then(|py| joblib_pipeline(py, dir));

    // Warm: every step a hit, on both sides.
    let warm = Memory::builder(dir.join("pipeline-warm"))
        .verbose(0)
        .build()
        .map_err(io)?;
    let p = pairs(
        BIG_REPS,
        || {
            settle();
            timed(&warm)
        },
        || {
            settle();
            worker.as_mut()?.time("warm")
        },
    );
    group.push(
        Row::from_pairs(
            "memo/pipeline_plain_3x1GiB_warm_vs_joblib",
            "ms",
            &p,
            millis,
        )
        .with_python_versions(),
    );
    drop(warm);

    // Cold: a fresh cache each time (the old one removed before the clock
    // starts), minus the same side's run with caching disabled.
    let cold_dir = dir.join("pipeline-cold");
    let disabled = Memory::disabled();
    let ours_cold = || -> Result<Duration> {
        if cold_dir.exists() {
            std::fs::remove_dir_all(&cold_dir)?;
        }
        let mem = Memory::builder(&cold_dir).verbose(0).build().map_err(io)?;
        settle();
        Ok(timed(&mem))
    };
    let mut ours_overhead = || -> Duration {
        let cold = ours_cold().unwrap_or_else(|e| {
            // Reported as an infinite overhead: the row fails its floor.
            eprintln!("  the cold pipeline could not run: {e}");
            Duration::MAX
        });
        settle();
        cold.saturating_sub(timed(&disabled))
    };
    let mut joblib_overhead = || -> Option<Duration> {
        let w = worker.as_mut()?;
        settle();
        let cold = w.time("cold")?;
        settle();
        Some(cold.saturating_sub(w.time("plain")?))
    };
    let p: Pairs = pairs(BIG_REPS, &mut ours_overhead, &mut joblib_overhead);
    group.push(
        Row::from_pairs(
            "memo/pipeline_plain_3x1GiB_cold_overhead_vs_joblib",
            "ms",
            &p,
            millis,
        )
        .with_python_versions(),
    );
    if cold_dir.exists() {
        std::fs::remove_dir_all(&cold_dir)?;
    }
    Ok(())
}

/// The largest file under `dir`: the 1 GiB payload.
fn largest_file(dir: &Path) -> Result<PathBuf> {
    let mut best = (0, dir.to_path_buf());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let md = e.metadata()?;
            if md.is_dir() {
                stack.push(e.path());
            } else if md.len() > best.0 {
                best = (md.len(), e.path());
            }
        }
    }
    Ok(best.1)
}

/// `read_exact` of the whole file into `buf`, which is already faulted in.
fn raw_read(path: &Path, buf: &mut [u8]) -> Result<Duration> {
    use std::io::Read;
    let start = Instant::now();
    std::fs::File::open(path)?.read_exact(buf)?;
    let t = start.elapsed();
    black_box(&buf);
    Ok(t)
}
