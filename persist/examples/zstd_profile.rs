//! Profiles the compressed save of the persist bench's 1 GiB compressible
//! array: per-block compression, checksum and probe costs on one thread,
//! then whole saves at several levels. Run with
//! `cargo run --release -p jobcache-persist --example zstd_profile -- DIR [LEVELS..]`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use ndarray::Array1;

const N: usize = (1 << 30) / 8;
const BLOCK: usize = 1 << 20;

#[path = "../benches/data/smooth_field.rs"]
mod smooth_field;
use smooth_field::smooth_field;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: zstd_profile DIR [LEVELS..]"));
    let rest: Vec<String> = args.collect();
    if rest.first().is_some_and(|m| m.starts_with("npy")) {
        let a = Array1::from_shape_fn(N, |i| i as f64);
        let path = dir.join("profile.npy");
        let _ = std::fs::remove_file(&path);
        // SAFETY: sync(2) takes no arguments.
        unsafe { libc::sync() };
        let t = Instant::now();
        if rest[0] == "npy-ours" {
            jobcache_persist::npy::write(&path, &a).unwrap();
        } else {
            ndarray_npy::write_npy(&path, &a).unwrap();
            std::fs::File::open(&path).unwrap().sync_all().unwrap();
        }
        println!("{}: {:.3} s", rest[0], t.elapsed().as_secs_f64());
        return;
    }
    if rest.first().is_some_and(|m| m == "load") {
        let path = dir.join("profile.jcp");
        if !path.exists() {
            jobcache_persist::save(&path, &Array1::from_shape_fn(N, |i| i as f64)).unwrap();
        }
        for _ in 0..7 {
            let t = Instant::now();
            let a = jobcache_persist::load::<Array1<f64>>(&path).unwrap();
            let s = t.elapsed().as_secs_f64();
            drop(a);
            print!("load: {s:.3} s ");
        }
        println!();
        return;
    }
    if rest.first().is_some_and(|m| m.starts_with("npz")) {
        let arrays: Vec<Array1<f64>> = (0..10)
            .map(|i| Array1::from_shape_fn(N / 10, |k| (k + i) as f64))
            .collect();
        let path = dir.join("profile.npz");
        let _ = std::fs::remove_file(&path);
        // SAFETY: sync(2) takes no arguments.
        unsafe { libc::sync() };
        let t = Instant::now();
        if rest[0] == "npz-ours" {
            use jobcache_persist::npz;
            npz::write_file(&path, npz::Compression::Stored, |w| {
                for (i, a) in arrays.iter().enumerate() {
                    w.add(&format!("f{i}"), a)?;
                }
                Ok(())
            })
            .unwrap();
        } else {
            let mut w = ndarray_npy::NpzWriter::new(std::fs::File::create(&path).unwrap());
            for (i, a) in arrays.iter().enumerate() {
                w.add_array(format!("f{i}"), a).unwrap();
            }
            w.finish().unwrap().sync_all().unwrap();
        }
        println!("{}: {:.3} s", rest[0], t.elapsed().as_secs_f64());
        if rest.get(1).is_some_and(|m| m == "read") {
            for _ in 0..5 {
                let t = Instant::now();
                let mut npz = jobcache_persist::npz::NpzReader::open(&path).unwrap();
                let all: Vec<Array1<f64>> = (0..10)
                    .map(|i| npz.by_name::<f64, ndarray::Ix1>(&format!("f{i}")).unwrap())
                    .collect();
                let s = t.elapsed().as_secs_f64();
                drop(all);
                println!("read: {s:.3} s");
            }
        }
        return;
    }
    let levels: Vec<i32> = rest.iter().map(|a| a.parse().unwrap()).collect();
    let levels = if levels.is_empty() {
        vec![1, 3]
    } else {
        levels
    };
    let a = smooth_field();
    let s = a.as_slice().unwrap();
    // SAFETY: f64 has no padding.
    let bytes = unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), s.len() * 8) };
    // One thread, 256 blocks (a quarter of the array).
    let sample = &bytes[..256 * BLOCK];
    let t = Instant::now();
    for b in sample.chunks(BLOCK) {
        std::hint::black_box(xxhash_rust::xxh3::xxh3_64(b));
    }
    let gb = sample.len() as f64 / 1e9;
    println!("xxh3: {:.2} GB/s", gb / t.elapsed().as_secs_f64());
    if std::env::var_os("PROFILE_PARAMS").is_some() {
        params(sample);
        return;
    }
    let one_thread = std::env::var_os("PROFILE_SAVES_ONLY").is_none();
    for &level in levels.iter().filter(|_| one_thread) {
        let mut c = zstd::bulk::Compressor::new(level).unwrap();
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(BLOCK));
        let mut stored = 0;
        let t = Instant::now();
        let cpu0 = cpu_seconds();
        for b in sample.chunks(BLOCK) {
            out.clear();
            stored += c.compress_to_buffer(b, &mut out).unwrap();
        }
        let reuse = gb / t.elapsed().as_secs_f64();
        let per_cpu = gb / (cpu_seconds() - cpu0);
        let t = Instant::now();
        for b in sample.chunks(BLOCK) {
            std::hint::black_box(c.compress(b).unwrap());
        }
        let fresh = gb / t.elapsed().as_secs_f64();
        println!(
            "level {level}: one thread {reuse:.3} GB/s ({per_cpu:.3} GB per CPU second) into a reused buffer, {fresh:.3} GB/s into new Vecs; ratio {:.2}",
            sample.len() as f64 / stored as f64
        );
    }
    for &level in &levels {
        let path = dir.join(format!("profile.{level}.jcp"));
        let opts = jobcache_persist::SaveOptions::default().compress(level);
        for _ in 0..3 {
            let _ = std::fs::remove_file(&path);
            // SAFETY: sync(2) takes no arguments.
            unsafe { libc::sync() };
            let t = Instant::now();
            let cpu0 = cpu_seconds();
            let n = jobcache_persist::save_with(&path, &a, &opts).unwrap();
            let s = t.elapsed().as_secs_f64();
            println!(
                "save level {level}: {:.3} s ({:.3} s of CPU), {:.3} GB/s, {:.2}x",
                s,
                cpu_seconds() - cpu0,
                bytes.len() as f64 / 1e9 / s,
                bytes.len() as f64 / n as f64
            );
        }
        let _ = std::fs::remove_file(&path);
    }
}

/// User and system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Single-thread CPU cost and ratio of zstd parameter variants, and of a
/// byte shuffle (byte k of every element together) before compression.
fn params(sample: &[u8]) {
    let gb = sample.len() as f64 / 1e9;
    let mut shuffled = vec![0u8; sample.len()];
    for (src, dst) in sample.chunks(BLOCK).zip(shuffled.chunks_mut(BLOCK)) {
        let n = src.len() / 8;
        for (i, e) in src.chunks_exact(8).enumerate() {
            for (k, &b) in e.iter().enumerate() {
                dst[k * n + i] = b;
            }
        }
    }
    type Setup = fn(&mut zstd::bulk::Compressor<'static>);
    let mut variants: Vec<(&str, i32, Setup, bool)> = Vec::new();
    for level in [1, -1, -2, -3, -4, -5, -6, -8, 1, -1, -2, -3, -4, -5, -6, -8] {
        variants.push(("plain", level, |_| {}, false));
    }

    for (name, level, setup, shuf) in variants {
        let mut c = zstd::bulk::Compressor::new(level).unwrap();
        setup(&mut c);
        let data = if shuf { &shuffled[..] } else { sample };
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(BLOCK));
        let mut stored = 0;
        let cpu0 = cpu_seconds();
        for b in data.chunks(BLOCK) {
            out.clear();
            stored += c.compress_to_buffer(b, &mut out).unwrap();
        }
        println!(
            "{name:>14} level {level:>2}: {:.3} GB per CPU second, ratio {:.2}",
            gb / (cpu_seconds() - cpu0),
            sample.len() as f64 / stored as f64
        );
    }
}
