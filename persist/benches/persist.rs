//! The `persist` benchmark group: container save/load/map and `.npy` I/O of
//! 1 GiB of f64, each against a baseline measured in the same run (raw
//! writes, `std::fs::read`, Python joblib, the ndarray-npy crate).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark aborts on I/O failure

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jobcache_bench::{
    gb_per_s, median_of, millis, python_measure, python_venv, scratch_dir, Group, Row,
};
use ndarray::{Array1, Ix1};
use serde::{Deserialize, Serialize};

const GIB: usize = 1 << 30;
const N: usize = GIB / 8;
const FIELD: usize = 100 << 20;
const M: usize = FIELD / 8;
const REPS: usize = 5;

#[derive(Serialize, Deserialize)]
struct Plain {
    name: String,
    epoch: u32,
    f0: Array1<f64>,
    f1: Array1<f64>,
    f2: Array1<f64>,
    f3: Array1<f64>,
    f4: Array1<f64>,
    f5: Array1<f64>,
    f6: Array1<f64>,
    f7: Array1<f64>,
    f8: Array1<f64>,
    f9: Array1<f64>,
    losses: Vec<f64>,
}

#[derive(Serialize, Deserialize)]
struct Direct {
    name: String,
    epoch: u32,
    #[serde(with = "jobcache_persist::direct")]
    f0: Array1<f64>,
    #[serde(with = "jobcache_persist::direct")]
    f1: Array1<f64>,
    #[serde(with = "jobcache_persist::direct")]
    f2: Array1<f64>,
    #[serde(with = "jobcache_persist::direct")]
    f3: Array1<f64>,
    #[serde(with = "jobcache_persist::direct")]
    f4: Array1<f64>,
    #[serde(with = "jobcache_persist::direct")]
    f5: Array1<f64>,
    #[serde(with = "jobcache_persist::direct")]
    f6: Array1<f64>,
    #[serde(with = "jobcache_persist::direct")]
    f7: Array1<f64>,
    #[serde(with = "jobcache_persist::direct")]
    f8: Array1<f64>,
    #[serde(with = "jobcache_persist::direct")]
    f9: Array1<f64>,
    losses: Vec<f64>,
}

fn field(i: usize) -> Array1<f64> {
    Array1::from_shape_fn(M, |k| (k + i) as f64)
}

fn plain() -> Plain {
    Plain {
        name: "model".into(),
        epoch: 7,
        f0: field(0),
        f1: field(1),
        f2: field(2),
        f3: field(3),
        f4: field(4),
        f5: field(5),
        f6: field(6),
        f7: field(7),
        f8: field(8),
        f9: field(9),
        losses: vec![0.5; 100],
    }
}

fn fields(p: &Plain) -> [&Array1<f64>; 10] {
    [
        &p.f0, &p.f1, &p.f2, &p.f3, &p.f4, &p.f5, &p.f6, &p.f7, &p.f8, &p.f9,
    ]
}

fn bytes_of(a: &Array1<f64>) -> &[u8] {
    let s = a.as_slice().unwrap();
    // SAFETY: f64 has no padding and every byte is initialised.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
}

/// Raw baseline: create, write_all, fsync.
fn raw_write(path: &Path, parts: &[&[u8]]) {
    let mut f = File::create(path).unwrap();
    for p in parts {
        f.write_all(p).unwrap();
    }
    f.sync_all().unwrap();
}

fn timed<T>(f: impl FnOnce() -> T) -> Duration {
    let start = Instant::now();
    let value = f();
    let elapsed = start.elapsed();
    drop(value);
    elapsed
}

/// Measures two operations alternately (one warm-up each, then `REPS`
/// pairs) so that drift in the shared machine's disk and memory speed hits
/// both alike; returns both medians. Before each timed operation all dirty
/// data is written back, so that neither pays for the writeback (or the
/// freeing of a replaced 1 GiB file) that the other left behind.
fn paired(
    mut ours: impl FnMut() -> Duration,
    mut base: impl FnMut() -> Duration,
) -> (Duration, Duration) {
    let settle = || {
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { libc::sync() };
        std::thread::sleep(Duration::from_millis(200));
    };
    ours();
    base();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..REPS {
        settle();
        a.push(ours());
        settle();
        b.push(base());
    }
    a.sort();
    b.sort();
    (a[REPS / 2], b[REPS / 2])
}

/// Runs a joblib snippet that prints a median time in seconds.
fn joblib_seconds(python: &Option<PathBuf>, body: &str) -> Option<f64> {
    let python = python.as_ref()?;
    let script = format!(
        "import time, statistics, numpy as np, joblib\n\
         def med(f, reps={REPS}):\n    f()\n    ts = []\n    for _ in range(reps):\n        t = time.perf_counter(); r = f(); ts.append(time.perf_counter() - t); del r\n    return statistics.median(ts)\n{body}"
    );
    python_measure(python, &script)
}

fn main() {
    let mut group = Group::new("persist");
    let dir = scratch_dir("persist").unwrap();
    // `PERSIST_BENCH_ONLY=npz cargo xtask bench persist` runs the .npz rows
    // alone (the others move 1 GiB arrays for minutes).
    if std::env::var("PERSIST_BENCH_ONLY").is_ok_and(|v| v == "npz") {
        npz_rows(&mut group, &dir, &python_venv());
        group.finish().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    // `PERSIST_BENCH_ONLY=zstd`: the compression rows alone (issue 16).
    if std::env::var("PERSIST_BENCH_ONLY").is_ok_and(|v| v == "zstd") {
        zstd_rows(&mut group, &dir, &python_venv());
        group.finish().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let python = python_venv();
    let bytes = (N * 8) as u64;

    // --- 1 GiB Array1<f64> ---------------------------------------------
    let a = Array1::from_shape_fn(N, |i| i as f64);
    let ours = dir.join("a.jcp");
    let raw = dir.join("a.raw");
    let (save_t, raw_t) = paired(
        || timed(|| jobcache_persist::save(&ours, &a).unwrap()),
        || timed(|| raw_write(&raw, &[bytes_of(&a)])),
    );
    std::fs::remove_file(&raw).unwrap();
    group.push(Row::ratio_higher_is_better(
        "persist/save_1GiB",
        gb_per_s(bytes, save_t),
        "GB/s",
        gb_per_s(bytes, raw_t),
    ));
    let jl = dir.join("a.joblib");
    let dump = joblib_seconds(
        &python,
        &format!(
            "a = np.arange({N}, dtype=np.float64)\nprint(med(lambda: joblib.dump(a, {:?})))",
            jl.to_str().unwrap()
        ),
    );
    push_gbps(
        &mut group,
        "persist/save_1GiB_vs_joblib",
        bytes,
        save_t,
        dump,
    );
    drop(a);

    let load_t = median_of(REPS, || {
        timed(|| jobcache_persist::load::<Array1<f64>>(&ours).unwrap())
    });
    let jl_load = joblib_seconds(
        &python,
        &format!(
            "print(med(lambda: joblib.load({:?})))",
            jl.to_str().unwrap()
        ),
    );
    push_gbps(&mut group, "persist/load_1GiB", bytes, load_t, jl_load);
    // Not interleaved with our loads: freeing std::fs::read's 4 KiB-paged
    // buffer measurably slows the next huge-page allocation, which would
    // charge the baseline's cost to us.
    let fs_read_t = median_of(REPS, || timed(|| std::fs::read(&ours).unwrap()));
    group.push(Row::ratio_higher_is_better(
        "persist/load_1GiB_vs_fs_read",
        gb_per_s(bytes, load_t),
        "GB/s",
        gb_per_s(bytes, fs_read_t),
    ));
    let map_t = median_of(REPS * 4, || {
        timed(|| {
            // SAFETY: the bench's files are replaced by rename, never modified.
            let m = unsafe { jobcache_persist::map::<f64, Ix1>(&ours) }.unwrap();
            std::hint::black_box(m.view().len());
            m
        })
    });
    let jl_map = joblib_seconds(
        &python,
        &format!(
            "print(med(lambda: joblib.load({:?}, mmap_mode='r'), 20))",
            jl.to_str().unwrap()
        ),
    );
    group.push(Row::time_vs_optional(
        "persist/map_1GiB",
        millis(map_t),
        "ms",
        jl_map.map(|s| s * 1e3),
    ));
    let _ = std::fs::remove_file(&jl);

    // --- .npy against ndarray-npy ----------------------------------------
    let a = Array1::from_shape_fn(N, |i| i as f64);
    let npy_ours = dir.join("ours.npy");
    let npy_theirs = dir.join("theirs.npy");
    let (npy_save, npy_save_base) = paired(
        || timed(|| jobcache_persist::npy::write(&npy_ours, &a).unwrap()),
        || {
            timed(|| {
                ndarray_npy::write_npy(&npy_theirs, &a).unwrap();
                File::open(&npy_theirs).unwrap().sync_all().unwrap();
            })
        },
    );
    group.push(Row::ratio_higher_is_better(
        "persist/npy_save_1GiB",
        gb_per_s(bytes, npy_save),
        "GB/s",
        gb_per_s(bytes, npy_save_base),
    ));
    drop(a);
    let npy_load = median_of(REPS, || {
        timed(|| jobcache_persist::npy::read::<f64, Ix1>(&npy_ours).unwrap())
    });
    let npy_load_base = median_of(REPS, || {
        timed(|| ndarray_npy::read_npy::<_, Array1<f64>>(&npy_theirs).unwrap())
    });
    group.push(Row::ratio_higher_is_better(
        "persist/npy_load_1GiB",
        gb_per_s(bytes, npy_load),
        "GB/s",
        gb_per_s(bytes, npy_load_base),
    ));
    std::fs::remove_file(&npy_ours).unwrap();
    std::fs::remove_file(&npy_theirs).unwrap();
    std::fs::remove_file(&ours).unwrap();

    // --- a struct of ten 100 MiB arrays ----------------------------------
    let sbytes = (10 * FIELD) as u64;
    let p = plain();
    let spath = dir.join("s.jcp");
    let parts: Vec<&[u8]> = fields(&p).into_iter().map(bytes_of).collect();
    let (s_save, s_raw) = paired(
        || timed(|| jobcache_persist::save(&spath, &p).unwrap()),
        || timed(|| raw_write(&raw, &parts)),
    );
    std::fs::remove_file(&raw).unwrap();
    group.push(Row::ratio_higher_is_better(
        "persist/struct_10x100MiB_save",
        gb_per_s(sbytes, s_save),
        "GB/s",
        gb_per_s(sbytes, s_raw),
    ));
    let dpath = dir.join("d.jcp");
    let d = Direct {
        name: p.name.clone(),
        epoch: p.epoch,
        f0: p.f0.clone(),
        f1: p.f1.clone(),
        f2: p.f2.clone(),
        f3: p.f3.clone(),
        f4: p.f4.clone(),
        f5: p.f5.clone(),
        f6: p.f6.clone(),
        f7: p.f7.clone(),
        f8: p.f8.clone(),
        f9: p.f9.clone(),
        losses: p.losses.clone(),
    };
    drop(p);
    jobcache_persist::save(&dpath, &d).unwrap();
    drop(d);
    let sjl = dir.join("s.joblib");
    let jl_struct = joblib_seconds(
        &python,
        &format!(
            "d = {{'f%d' % i: np.arange({M}, dtype=np.float64) + i for i in range(10)}}\n\
             joblib.dump(d, {p:?})\ndel d\nprint(med(lambda: joblib.load({p:?})))",
            p = sjl.to_str().unwrap()
        ),
    );
    let s_load = median_of(REPS, || {
        timed(|| jobcache_persist::load::<Plain>(&spath).unwrap())
    });
    push_gbps(
        &mut group,
        "persist/struct_10x100MiB_load",
        sbytes,
        s_load,
        jl_struct,
    );
    let d_load = median_of(REPS, || {
        timed(|| jobcache_persist::load::<Direct>(&dpath).unwrap())
    });
    push_gbps(
        &mut group,
        "persist/struct_10x100MiB_load_direct",
        sbytes,
        d_load,
        jl_struct,
    );
    let _ = std::fs::remove_file(&sjl);

    npz_rows(&mut group, &dir, &python);
    zstd_rows(&mut group, &dir, &python);
    group.finish().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A GB/s row whose baseline is a Python time in seconds (null if Python
/// was unavailable).
fn push_gbps(group: &mut Group, name: &str, bytes: u64, ours: Duration, base_seconds: Option<f64>) {
    let value = gb_per_s(bytes, ours);
    group.push(match base_seconds {
        Some(s) => Row::ratio_higher_is_better(name, value, "GB/s", bytes as f64 / s / 1e9),
        None => Row::plain(name, value, "GB/s"),
    });
}

/// `.npz` of ten 100 MiB f64 arrays, stored (as `np.savez` writes them),
/// against the ndarray-npy crate's reader and writer on the same data.
/// Both writers end with the archive synced to disk; both readers read the
/// archive ndarray-npy wrote (unaligned members, as NumPy's). Then one
/// 100 MiB array in an `np.savez_compressed` archive, against `np.load`.
fn npz_rows(group: &mut Group, dir: &Path, python: &Option<PathBuf>) {
    use jobcache_persist::npz::{self, Compression, NpzReader};
    let bytes = (10 * FIELD) as u64;
    let arrays: Vec<Array1<f64>> = (0..10).map(field).collect();
    let names: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
    let ours = dir.join("ours.npz");
    let theirs = dir.join("theirs.npz");
    let (write_t, write_base) = paired(
        || {
            timed(|| {
                npz::write_file(&ours, Compression::Stored, |w| {
                    for (name, a) in names.iter().zip(&arrays) {
                        w.add(name, a)?;
                    }
                    Ok(())
                })
                .unwrap()
            })
        },
        || {
            timed(|| {
                let mut w = ndarray_npy::NpzWriter::new(File::create(&theirs).unwrap());
                for (name, a) in names.iter().zip(&arrays) {
                    w.add_array(name.as_str(), a).unwrap();
                }
                w.finish().unwrap().sync_all().unwrap();
            })
        },
    );
    group.push(Row::ratio_higher_is_better(
        "persist/npz_write_10x100MiB",
        gb_per_s(bytes, write_t),
        "GB/s",
        gb_per_s(bytes, write_base),
    ));
    drop(arrays);
    std::fs::remove_file(&ours).unwrap();
    let (read_t, read_base) = paired(
        || {
            timed(|| {
                let mut npz = NpzReader::open(&theirs).unwrap();
                let all: Vec<Array1<f64>> = names
                    .iter()
                    .map(|n| npz.by_name::<f64, Ix1>(n).unwrap())
                    .collect();
                all
            })
        },
        || {
            timed(|| {
                let mut npz = ndarray_npy::NpzReader::new(File::open(&theirs).unwrap()).unwrap();
                let all: Vec<Array1<f64>> = names
                    .iter()
                    .map(|n| npz.by_name::<ndarray::OwnedRepr<f64>, Ix1>(n).unwrap())
                    .collect();
                all
            })
        },
    );
    group.push(Row::ratio_higher_is_better(
        "persist/npz_read_10x100MiB",
        gb_per_s(bytes, read_t),
        "GB/s",
        gb_per_s(bytes, read_base),
    ));
    std::fs::remove_file(&theirs).unwrap();

    // NumPy writes the compressed archive; both read it.
    let Some(py) = python else {
        eprintln!("  persist/npz_read_compressed_100MiB skipped: no Python");
        return;
    };
    let packed = dir.join("packed.npz");
    let made = jobcache_bench::python_measure(
        py,
        &format!(
            "import numpy as np\nnp.savez_compressed({:?}, a=np.arange({M}, dtype=np.float64))\nprint(0)",
            packed.to_str().unwrap()
        ),
    );
    if made.is_none() {
        return;
    }
    let ours_t = median_of(REPS, || {
        timed(|| {
            let mut npz = NpzReader::open(&packed).unwrap();
            npz.by_name::<f64, Ix1>("a").unwrap()
        })
    });
    let np_load = joblib_seconds(
        python,
        &format!(
            "print(med(lambda: np.load({:?})['a']))",
            packed.to_str().unwrap()
        ),
    );
    push_gbps(
        group,
        "persist/npz_read_compressed_100MiB",
        FIELD as u64,
        ours_t,
        np_load,
    );
    std::fs::remove_file(&packed).unwrap();
}

/// The zstd level of the compression rows.
const ZSTD_LEVEL: i32 = 3;

/// 1 GiB of f64 that compresses about 4x: a smooth field plus a little
/// hashed noise, quantised to 3 decimals, with every fourth run of 4096
/// values zero. Deterministic; Python reads the very bytes from a `.npy`.
fn smooth_field() -> Array1<f64> {
    Array1::from_shape_fn(N, |i| {
        if (i / 4096) % 4 == 0 {
            return 0.0;
        }
        let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        let noise = (h % 1000) as f64 / 1000.0 * 0.05;
        ((100.0 * (i as f64 * 1e-4).sin() + noise) * 1000.0).round() / 1000.0
    })
}

/// Compressed saves and loads of [`smooth_field`] (zstd, level
/// [`ZSTD_LEVEL`]) against `joblib.dump(compress=3)` (zlib) and
/// `compress='lz4'` of the same bytes, and the file sizes.
fn zstd_rows(group: &mut Group, dir: &Path, python: &Option<PathBuf>) {
    let bytes = (N * 8) as u64;
    let a = smooth_field();
    let npy = dir.join("field.npy");
    jobcache_persist::npy::write(&npy, &a).unwrap();
    let ours = dir.join("field.jcp");
    let opts = jobcache_persist::SaveOptions::default().compress(ZSTD_LEVEL);
    let save_t = median_of(REPS, || {
        timed(|| jobcache_persist::save_with(&ours, &a, &opts).unwrap())
    });
    drop(a);
    let load_t = median_of(REPS, || {
        timed(|| jobcache_persist::load::<Array1<f64>>(&ours).unwrap())
    });
    let our_size = std::fs::metadata(&ours).unwrap().len();
    eprintln!(
        "  zstd level {ZSTD_LEVEL}: {our_size} bytes ({:.2}x)",
        bytes as f64 / our_size as f64
    );
    if let Some(py) = python {
        // lz4 is joblib's optional dependency: installed here on first use.
        let has_lz4 = std::process::Command::new(py)
            .args(["-c", "import lz4"])
            .status()
            .is_ok_and(|s| s.success())
            || std::process::Command::new(py)
                .args(["-m", "pip", "install", "--quiet", "lz4"])
                .status()
                .is_ok_and(|s| s.success());
        if !has_lz4 {
            eprintln!("  lz4 unavailable: its rows have no baseline");
        }
    }
    // zlib at level 3 takes tens of seconds per GiB: three timed runs.
    for (tag, compress, reps) in [("zlib3", "3", 3), ("lz4", "'lz4'", REPS)] {
        let jl = dir.join(format!("field.{tag}.joblib"));
        let dump = joblib_seconds(
            python,
            &format!(
                "a = np.load({npy:?})\nprint(med(lambda: joblib.dump(a, {jl:?}, compress={compress}), {reps}))",
                npy = npy.to_str().unwrap(),
                jl = jl.to_str().unwrap(),
            ),
        );
        let load = joblib_seconds(
            python,
            &format!(
                "print(med(lambda: joblib.load({jl:?}), {reps}))",
                jl = jl.to_str().unwrap()
            ),
        );
        push_gbps(
            group,
            &format!("persist/save_1GiB_zstd_vs_joblib_{tag}"),
            bytes,
            save_t,
            dump,
        );
        push_gbps(
            group,
            &format!("persist/load_1GiB_zstd_vs_joblib_{tag}"),
            bytes,
            load_t,
            load,
        );
        if tag == "zlib3" {
            if let Ok(m) = std::fs::metadata(&jl) {
                eprintln!("  joblib zlib 3: {} bytes", m.len());
                group.push(Row::plain(
                    "persist/zstd_size_vs_zlib3",
                    our_size as f64 / m.len() as f64,
                    "x",
                ));
            }
        }
        let _ = std::fs::remove_file(&jl);
    }
    let _ = std::fs::remove_file(&npy);
    let _ = std::fs::remove_file(&ours);
}
