//! `cargo xtask bench memo`: the cost memo adds to a cached call, measured
//! against the store underneath and against Python joblib, in the same run.

use jobcache_bench::{
    median, median_of, micros, millis, python_measure, python_venv, scratch_dir, Group, Row,
};
use jobcache_memo::{Memory, Shelved};
use jobcache_store::{FsStore, NewEntry, Store};
use ndarray::Array1;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

/// Calls per timed repetition of the small rows (one call is microseconds).
const CALLS: u32 = 2000;
const GIB_ELEMS: usize = (1 << 30) / 8;

fn per_call(reps: usize, mut f: impl FnMut()) -> f64 {
    micros(median(reps, || {
        for _ in 0..CALLS {
            f();
        }
    })) / f64::from(CALLS)
}

fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

fn store_get_small(dir: &Path) -> std::io::Result<f64> {
    let store = FsStore::create(dir.join("raw-store")).map_err(std::io::Error::other)?;
    let key = "ab".repeat(32);
    store
        .publish_bytes("bench", &key, &NewEntry::new(Duration::ZERO), &[7u8; 100])
        .map_err(std::io::Error::other)?;
    Ok(per_call(7, || {
        black_box(store.get_bytes("bench", &key).ok());
    }))
}

fn joblib_hit_small(python: &Path, dir: &Path) -> Option<f64> {
    let script = dir.join("joblib_hit.py");
    let cache = dir.join("joblib-cache");
    let code = format!(
        r#"
import time, statistics, joblib
mem = joblib.Memory({cache:?}, verbose=0)
def square(x):
    return x * x
f = mem.cache(square)
f(12345)
times = []
for _ in range(7):
    t = time.perf_counter()
    for _ in range({CALLS}):
        f(12345)
    times.append((time.perf_counter() - t) / {CALLS} * 1e6)
print(statistics.median(times))
"#,
        cache = cache.display().to_string()
    );
    std::fs::write(&script, code).ok()?;
    python_measure(
        python,
        &format!("exec(open({:?}).read())", script.display().to_string()),
    )
}

fn main() -> std::io::Result<()> {
    let dir = scratch_dir("memo")?;
    let mut group = Group::new("memo");
    let mem = Memory::builder(dir.join("cache"))
        .verbose(0)
        .build()
        .map_err(std::io::Error::other)?;

    // A hit on f(x: u64) -> u64, against a raw store get of a small entry.
    let cached = mem.cache(square);
    cached.call(12345);
    let ours = per_call(7, || {
        black_box(cached.call(black_box(12345)));
    });
    let store_baseline = store_get_small(&dir)?;
    group.push(Row::ratio_lower_is_better(
        "memo/hit_small",
        ours,
        "us",
        store_baseline,
    ));
    let joblib = python_venv().and_then(|py| joblib_hit_small(&py, &dir));
    group.push(Row::time_vs_optional(
        "memo/hit_small_vs_joblib",
        ours,
        "us",
        joblib,
    ));

    // What a miss adds to the function's own time: a new argument each call.
    let mut next = 1_000_000u64;
    let miss = micros(median_of(7, || {
        let start = Instant::now();
        for _ in 0..200 {
            next += 1;
            black_box(cached.call(next));
        }
        start.elapsed() / 200
    }));
    group.push(Row::plain("memo/miss_overhead_small", miss, "us"));

    // A hit whose argument is a 1 MiB array: hashing it is most of the work.
    let arg: Array1<f64> = (0..(1 << 17)).map(f64::from).collect();
    let sum = mem.cache_named("sum", |a: &Array1<f64>| a.sum());
    sum.call(&arg);
    let hit_arg = micros(median(7, || {
        for _ in 0..50 {
            black_box(sum.call(black_box(&arg)));
        }
    })) / 50.0;
    group.push(Row::plain("memo/hit_1MiB_array_arg", hit_arg, "us"));

    // A hit returning a 1 GiB array, against a raw read of its payload.
    let ones = mem.cache_named("ones", |n: usize| Array1::<f64>::from_elem(n, 1.0));
    ones.call(GIB_ELEMS);
    let ours = median_of(5, || {
        let start = Instant::now();
        black_box(ones.call(GIB_ELEMS));
        start.elapsed()
    });
    let payload = largest_file(&dir.join("cache"))?;
    let raw = raw_read(&payload)?;
    group.push(Row::ratio_lower_is_better(
        "memo/hit_1GiB_array_output",
        millis(ours),
        "ms",
        millis(raw),
    ));
    drop(ones);

    // A 3-step pipeline over 1 GiB arrays, every step a hit.
    let step1 = mem.cache_named("step1", |n: usize| Array1::<f64>::from_elem(n, 2.0));
    let step2 = mem.cache_named("step2", |x: &Shelved<Array1<f64>>| {
        x.load().map(|a| a * 2.0)
    });
    let step3 = mem.cache_named("step3", |x: &Shelved<Array1<f64>>| {
        x.load().map(|a| a + 1.0)
    });
    let pipeline = || -> Result<Shelved<Array1<f64>>, jobcache_memo::Error> {
        let a = step1.call_and_shelve(GIB_ELEMS);
        let b = step2.try_call_and_shelve(&a)?;
        step3.try_call_and_shelve(&b)
    };
    pipeline().map_err(std::io::Error::other)?;
    let warm = median(7, || {
        black_box(pipeline().ok());
    });
    group.push(Row::plain(
        "memo/pipeline_3x1GiB_all_hits",
        millis(warm),
        "ms",
    ));

    group.finish()?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The largest file under `dir`: the 1 GiB payload.
fn largest_file(dir: &Path) -> std::io::Result<std::path::PathBuf> {
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

/// `read_exact` of the whole file into a buffer that is already faulted in.
fn raw_read(path: &Path) -> std::io::Result<Duration> {
    use std::io::Read;
    let len = std::fs::metadata(path)?.len() as usize;
    let mut buf = vec![1u8; len];
    let mut times = Vec::new();
    for _ in 0..6 {
        let start = Instant::now();
        std::fs::File::open(path)?.read_exact(&mut buf)?;
        times.push(start.elapsed());
        black_box(&buf);
    }
    times.sort();
    Ok(times[times.len() / 2])
}
