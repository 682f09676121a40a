//! The `persist` benchmark group: container save/load/map and `.npy` I/O of
//! 1 GiB of f64, each against a baseline measured in the same run (raw
//! writes, `std::fs::read`, Python joblib, the ndarray-npy crate).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark aborts on I/O failure

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jobcache_bench::{
    gb_per_s, median_of, millis, python_measure, python_venv, scratch_dir, timed, Group, Row,
};
use ndarray::{Array1, Ix1};
use serde::{Deserialize, Serialize};

#[path = "data/smooth_field.rs"]
mod smooth_field;
use smooth_field::smooth_field;

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

/// Writes back all dirty data and lets the machine settle, outside any
/// timed region, so that no operation pays for the writeback (or the
/// freeing of a replaced 1 GiB file) that another left behind.
fn settle() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    std::thread::sleep(Duration::from_millis(200));
}

/// Measures two operations alternately with the harness's
/// [`jobcache_bench::paired`] (one warm-up each, then `REPS` pairs), each
/// preceded by [`settle`] outside its timer; returns both medians.
fn paired(
    mut ours: impl FnMut() -> Duration,
    mut base: impl FnMut() -> Duration,
) -> (Duration, Duration) {
    jobcache_bench::paired(
        REPS,
        || {
            settle();
            ours()
        },
        || {
            settle();
            base()
        },
    )
}

/// A save timed from an empty target on both sides: the previous file is
/// removed (and the removal written back) outside the timer.
fn fresh_save<T>(path: &Path, save: impl FnOnce() -> T) -> Duration {
    let _ = std::fs::remove_file(path);
    settle();
    timed(save)
}

/// [`paired`] against a Python baseline that times one operation per
/// process (`body` prints seconds): subject and baseline alternate in the
/// same way; without Python only the subject is measured.
fn paired_python(
    python: &Option<PathBuf>,
    reps: usize,
    mut ours: impl FnMut() -> Duration,
    body: &str,
) -> (Duration, Option<Duration>) {
    let Some(py) = python else {
        return (median_of(reps, ours), None);
    };
    let script = format!("import time, numpy as np, joblib\n{body}");
    let mut failed = false;
    let (a, b) = jobcache_bench::paired(
        reps,
        || {
            settle();
            ours()
        },
        || {
            settle();
            match python_measure(py, &script) {
                Some(s) => Duration::from_secs_f64(s),
                None => {
                    failed = true;
                    Duration::ZERO
                }
            }
        },
    );
    (a, (!failed).then_some(b))
}

fn main() {
    let mut group = Group::new("persist");
    let dir = scratch_dir("persist").unwrap();
    let only = std::env::var("PERSIST_BENCH_ONLY").unwrap_or_default();
    // `PERSIST_BENCH_ONLY=npz cargo xtask bench persist` runs the .npz rows
    // alone; the value is a comma-separated list of sections: `load` (the
    // 1 GiB save and load rows), `npy`, `struct`, `npz`, `zstd` (the
    // compression rows of issue 16; `zlib3`, `lz4` or `random` for one
    // comparison of them). The full group moves 1 GiB arrays for minutes.
    let wanted = |section: &str| only.is_empty() || only.split(',').any(|s| s.trim() == section);
    let python = python_venv();
    if wanted("load") {
        array_rows(&mut group, &dir, &python);
    }
    if wanted("npy") {
        npy_rows(&mut group, &dir);
    }
    if wanted("struct") {
        struct_rows(&mut group, &dir, &python);
    }
    if wanted("npz") {
        npz_rows(&mut group, &dir, &python);
    }
    let zstd = wanted("zstd");
    let comparisons: Vec<&str> = ["zlib3", "lz4"]
        .into_iter()
        .filter(|&c| zstd || wanted(c))
        .collect();
    zstd_rows(
        &mut group,
        &dir,
        &python,
        &comparisons,
        zstd || wanted("random"),
    );
    group.finish().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Python that removes `path` and settles (as [`fresh_save`] does), then
/// prints the seconds `stmt` takes, with the file it wrote synced to disk
/// as our saves sync theirs (the baseline pays what the subject pays).
fn py_fresh_dump(path: &Path, setup: &str, stmt: &str) -> String {
    format!(
        "import os\n{setup}\ntry:\n    os.remove({p:?})\nexcept FileNotFoundError:\n    pass\n\
         os.sync(); time.sleep(0.2)\nt = time.perf_counter(); {stmt}\n\
         fd = os.open({p:?}, os.O_RDONLY); os.fsync(fd); os.close(fd)\n\
         print(time.perf_counter() - t)",
        p = path.to_str().unwrap()
    )
}

/// Python that prints the seconds `expr` takes, its result freed outside
/// the timer.
fn py_timed(expr: &str) -> String {
    format!("t = time.perf_counter(); r = {expr}; t = time.perf_counter() - t; del r; print(t)")
}

/// 1 GiB `Array1<f64>`: save against a raw write and joblib, load against
/// joblib, `std::fs::read` and a parallel read (the machine's limit), map
/// against joblib's mmap mode.
fn array_rows(group: &mut Group, dir: &Path, python: &Option<PathBuf>) {
    let bytes = (N * 8) as u64;
    let a = Array1::from_shape_fn(N, |i| i as f64);
    let ours = dir.join("a.jcp");
    let raw = dir.join("a.raw");
    let (save_t, raw_t) = paired(
        || fresh_save(&ours, || jobcache_persist::save(&ours, &a).unwrap()),
        || fresh_save(&raw, || raw_write(&raw, &[bytes_of(&a)])),
    );
    std::fs::remove_file(&raw).unwrap();
    group.push(Row::ratio_higher_is_better(
        "persist/save_1GiB",
        gb_per_s(bytes, save_t),
        "GB/s",
        gb_per_s(bytes, raw_t),
    ));
    let jl = dir.join("a.joblib");
    let jls = jl.to_str().unwrap();
    let (save_t, dump) = paired_python(
        python,
        REPS,
        || fresh_save(&ours, || jobcache_persist::save(&ours, &a).unwrap()),
        &py_fresh_dump(
            &jl,
            &format!("a = np.arange({N}, dtype=np.float64)"),
            &format!("joblib.dump(a, {jls:?})"),
        ),
    );
    push_gbps(group, "persist/save_1GiB_vs_joblib", bytes, save_t, dump);
    drop(a);

    let load = || timed(|| jobcache_persist::load::<Array1<f64>>(&ours).unwrap());
    let (load_t, jl_load) = paired_python(
        python,
        REPS,
        load,
        &py_timed(&format!("joblib.load({jls:?})")),
    );
    push_gbps(group, "persist/load_1GiB", bytes, load_t, jl_load);
    let (load_t, fs_read_t) = paired(load, || timed(|| std::fs::read(&ours).unwrap()));
    group.push(Row::ratio_higher_is_better(
        "persist/load_1GiB_vs_fs_read",
        gb_per_s(bytes, load_t),
        "GB/s",
        gb_per_s(bytes, fs_read_t),
    ));
    // The machine's limit: the same file read by as many threads as a load
    // uses into a buffer already faulted in and advised for huge pages.
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 4);
    let len = std::fs::metadata(&ours).unwrap().len() as usize;
    let mut buffer = prefaulted(len);
    let (load_t, par_t) = paired(load, || {
        timed(|| parallel_read(&ours, &mut buffer, threads))
    });
    drop(buffer);
    group.push(Row::ratio_higher_is_better(
        "persist/load_1GiB_vs_parallel_read",
        gb_per_s(bytes, load_t),
        "GB/s",
        gb_per_s(bytes, par_t),
    ));
    let (map_t, jl_map) = paired_python(
        python,
        REPS,
        || {
            timed(|| {
                // SAFETY: the bench's files are replaced by rename, never modified.
                let m = unsafe { jobcache_persist::map::<f64, Ix1>(&ours) }.unwrap();
                std::hint::black_box(m.view().len());
                m
            })
        },
        &py_timed(&format!("joblib.load({jls:?}, mmap_mode='r')")),
    );
    group.push(Row::time_vs_optional(
        "persist/map_1GiB",
        millis(map_t),
        "ms",
        jl_map.map(millis),
    ));
    let _ = std::fs::remove_file(&jl);
    let _ = std::fs::remove_file(&ours);
}

/// A zeroed buffer of `len` bytes advised for huge pages and faulted in.
fn prefaulted(len: usize) -> Vec<u8> {
    let mut buffer = vec![0u8; len];
    // SAFETY: the range lies inside the buffer; the advice changes only how
    // the kernel backs it.
    unsafe {
        let start = (buffer.as_mut_ptr() as usize).div_ceil(4096) * 4096;
        let end = (buffer.as_mut_ptr() as usize + len) / 4096 * 4096;
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
    }
    for page in buffer.chunks_mut(4096) {
        page[0] = 1;
    }
    buffer
}

/// Reads `path` into `buffer` with `threads` threads, each a contiguous
/// share by positioned reads.
fn parallel_read(path: &Path, buffer: &mut [u8], threads: usize) {
    use std::os::unix::fs::FileExt;
    let file = File::open(path).unwrap();
    let share = buffer.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for (k, part) in buffer.chunks_mut(share).enumerate() {
            let file = &file;
            scope.spawn(move || file.read_exact_at(part, (k * share) as u64).unwrap());
        }
    });
}

/// `.npy` of 1 GiB against the ndarray-npy crate.
fn npy_rows(group: &mut Group, dir: &Path) {
    let bytes = (N * 8) as u64;
    let a = Array1::from_shape_fn(N, |i| i as f64);
    let npy_ours = dir.join("ours.npy");
    let npy_theirs = dir.join("theirs.npy");
    let (npy_save, npy_save_base) = paired(
        || {
            fresh_save(&npy_ours, || {
                jobcache_persist::npy::write(&npy_ours, &a).unwrap()
            })
        },
        || {
            fresh_save(&npy_theirs, || {
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
    let (npy_load, npy_load_base) = paired(
        || timed(|| jobcache_persist::npy::read::<f64, Ix1>(&npy_ours).unwrap()),
        || timed(|| ndarray_npy::read_npy::<_, Array1<f64>>(&npy_theirs).unwrap()),
    );
    group.push(Row::ratio_higher_is_better(
        "persist/npy_load_1GiB",
        gb_per_s(bytes, npy_load),
        "GB/s",
        gb_per_s(bytes, npy_load_base),
    ));
    std::fs::remove_file(&npy_ours).unwrap();
    std::fs::remove_file(&npy_theirs).unwrap();
}

/// A struct of ten 100 MiB arrays: save against raw writes, load (plain
/// and `direct` fields) against joblib's load of a dict of the same arrays.
fn struct_rows(group: &mut Group, dir: &Path, python: &Option<PathBuf>) {
    let sbytes = (10 * FIELD) as u64;
    let p = plain();
    let spath = dir.join("s.jcp");
    let raw = dir.join("s.raw");
    let parts: Vec<&[u8]> = fields(&p).into_iter().map(bytes_of).collect();
    let (s_save, s_raw) = paired(
        || fresh_save(&spath, || jobcache_persist::save(&spath, &p).unwrap()),
        || fresh_save(&raw, || raw_write(&raw, &parts)),
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
    let made = python.as_ref().and_then(|py| {
        python_measure(
            py,
            &format!(
                "import numpy as np, joblib\n\
                 d = {{'f%d' % i: np.arange({M}, dtype=np.float64) + i for i in range(10)}}\n\
                 joblib.dump(d, {p:?})\nprint(0)",
                p = sjl.to_str().unwrap()
            ),
        )
    });
    let jl_python = if made.is_some() { python.clone() } else { None };
    let jl_load = py_timed(&format!("joblib.load({:?})", sjl.to_str().unwrap()));
    let (s_load, jl_struct) = paired_python(
        &jl_python,
        REPS,
        || timed(|| jobcache_persist::load::<Plain>(&spath).unwrap()),
        &jl_load,
    );
    push_gbps(
        group,
        "persist/struct_10x100MiB_load",
        sbytes,
        s_load,
        jl_struct,
    );
    let (d_load, jl_struct) = paired_python(
        &jl_python,
        REPS,
        || timed(|| jobcache_persist::load::<Direct>(&dpath).unwrap()),
        &jl_load,
    );
    push_gbps(
        group,
        "persist/struct_10x100MiB_load_direct",
        sbytes,
        d_load,
        jl_struct,
    );
    let _ = std::fs::remove_file(&sjl);
    let _ = std::fs::remove_file(&spath);
    let _ = std::fs::remove_file(&dpath);
}

/// A GB/s row whose baseline is a Python time (null if Python was
/// unavailable).
fn push_gbps(group: &mut Group, name: &str, bytes: u64, ours: Duration, base: Option<Duration>) {
    let value = gb_per_s(bytes, ours);
    group.push(match base {
        Some(b) => Row::ratio_higher_is_better(name, value, "GB/s", gb_per_s(bytes, b)),
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
    // Both start from a removed file (else ndarray-npy's `File::create`
    // would pay for truncating the last archive inside its timer, and ours
    // for the rename over it).
    let (write_t, write_base) = paired(
        || {
            fresh_save(&ours, || {
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
            fresh_save(&theirs, || {
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
    let ours_t = || {
        timed(|| {
            let mut npz = NpzReader::open(&packed).unwrap();
            npz.by_name::<f64, Ix1>("a").unwrap()
        })
    };
    let (ours_t, np_load) = paired_python(
        python,
        REPS,
        ours_t,
        &py_timed(&format!("np.load({:?})['a']", packed.to_str().unwrap())),
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

/// The zstd level of the rows against joblib's zlib 3 (the level
/// `compress(3)` users pick for size).
const ZSTD_LEVEL: i32 = 3;
/// The zstd level of the rows against joblib's lz4, the choice of a user
/// who wants speed (the README names it). On the bench's field, level -1
/// takes about 0.8x the CPU time of level 1 and writes a smaller file (3.6x
/// against 3.2x): the fast strategy with zstd's acceleration finds the
/// same long matches (runs of zeros, repeated quantised values) and skips
/// the costly short ones.
const ZSTD_FAST_LEVEL: i32 = -1;

/// 1 GiB of f64 of random bits (incompressible: uniform floats in [0, 1)
/// would not be, their exponent bytes repeat), deterministic.
fn random_field() -> Array1<f64> {
    Array1::from_shape_fn(N, |i| {
        let mut x = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        f64::from_bits(x ^ (x >> 31))
    })
}

/// Compressed saves and loads of [`smooth_field`] against
/// `joblib.dump(compress=3)` (zlib; zstd level [`ZSTD_LEVEL`]) and
/// `compress='lz4'` (zstd level [`ZSTD_FAST_LEVEL`]) of the same bytes, each
/// pair alternating; the file sizes; and a compressed save of random floats
/// against the uncompressed save of the same array.
fn zstd_rows(
    group: &mut Group,
    dir: &Path,
    python: &Option<PathBuf>,
    comparisons: &[&str],
    random: bool,
) {
    let bytes = (N * 8) as u64;
    if comparisons.is_empty() {
        if random {
            random_rows(group, dir, bytes);
        }
        return;
    }
    let a = smooth_field();
    let npy = dir.join("field.npy");
    jobcache_persist::npy::write(&npy, &a).unwrap();
    let npys = npy.to_str().unwrap();
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
    // zlib at level 3 takes tens of seconds per GiB: three pairs.
    for (tag, compress, level, reps) in [
        ("zlib3", "3", ZSTD_LEVEL, 3),
        ("lz4", "'lz4'", ZSTD_FAST_LEVEL, REPS),
    ] {
        if !comparisons.contains(&tag) {
            continue;
        }
        let ours = dir.join(format!("field.{tag}.jcp"));
        let opts = jobcache_persist::SaveOptions::default().compress(level);
        let jl = dir.join(format!("field.{tag}.joblib"));
        let jls = jl.to_str().unwrap();
        let (save_t, dump) = paired_python(
            python,
            reps,
            || {
                fresh_save(&ours, || {
                    jobcache_persist::save_with(&ours, &a, &opts).unwrap()
                })
            },
            &py_fresh_dump(
                &jl,
                &format!("a = np.load({npys:?})"),
                &format!("joblib.dump(a, {jls:?}, compress={compress})"),
            ),
        );
        let our_size = std::fs::metadata(&ours).unwrap().len();
        eprintln!(
            "  zstd level {level}: {our_size} bytes ({:.2}x)",
            bytes as f64 / our_size as f64
        );
        let (load_t, load) = paired_python(
            python,
            reps,
            || timed(|| jobcache_persist::load::<Array1<f64>>(&ours).unwrap()),
            &py_timed(&format!("joblib.load({jls:?})")),
        );
        // The JSON names the zstd level each comparison used.
        group.push(Row::plain(
            &format!("persist/zstd_level_vs_joblib_{tag}"),
            f64::from(level),
            "level",
        ));
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
        if let Ok(m) = std::fs::metadata(&jl) {
            eprintln!("  joblib {tag}: {} bytes", m.len());
            if tag == "zlib3" {
                group.push(Row::plain(
                    "persist/zstd_size_vs_zlib3",
                    our_size as f64 / m.len() as f64,
                    "x",
                ));
            }
        }
        let _ = std::fs::remove_file(&jl);
        let _ = std::fs::remove_file(&ours);
    }
    drop(a);
    let _ = std::fs::remove_file(&npy);
    if random {
        random_rows(group, dir, bytes);
    }
}

/// Incompressible data: a compressed save stores every block raw; against
/// the uncompressed save of the same array.
fn random_rows(group: &mut Group, dir: &Path, bytes: u64) {
    let r = random_field();
    let packed = dir.join("random.zstd.jcp");
    let plain = dir.join("random.jcp");
    let opts = jobcache_persist::SaveOptions::default().compress(ZSTD_LEVEL);
    let (zstd_t, plain_t) = paired(
        || {
            fresh_save(&packed, || {
                jobcache_persist::save_with(&packed, &r, &opts).unwrap()
            })
        },
        || fresh_save(&plain, || jobcache_persist::save(&plain, &r).unwrap()),
    );
    group.push(Row::ratio_higher_is_better(
        "persist/save_1GiB_random_zstd",
        gb_per_s(bytes, zstd_t),
        "GB/s",
        gb_per_s(bytes, plain_t),
    ));
    let _ = std::fs::remove_file(&packed);
    let _ = std::fs::remove_file(&plain);
}
