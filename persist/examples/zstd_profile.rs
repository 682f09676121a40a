//! Profiles the compressed save of the persist bench's 1 GiB compressible
//! array: per-block compression, checksum and probe costs on one thread,
//! then whole saves at several levels. Run with
//! `cargo run --release -p jobcache-persist --example zstd_profile -- DIR [LEVELS..]`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use ndarray::Array1;

const N: usize = (1 << 30) / 8;
const BLOCK: usize = 1 << 20;

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
    let levels: Vec<i32> = rest.iter().map(|a| a.parse().unwrap()).collect();
    let levels = if levels.is_empty() { vec![1, 3] } else { levels };
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
    for &level in &levels {
        let mut c = zstd::bulk::Compressor::new(level).unwrap();
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(BLOCK));
        let mut stored = 0;
        let t = Instant::now();
        for b in sample.chunks(BLOCK) {
            out.clear();
            stored += c.compress_to_buffer(b, &mut out).unwrap();
        }
        let reuse = gb / t.elapsed().as_secs_f64();
        let t = Instant::now();
        for b in sample.chunks(BLOCK) {
            std::hint::black_box(c.compress(b).unwrap());
        }
        let fresh = gb / t.elapsed().as_secs_f64();
        println!(
            "level {level}: one thread {reuse:.3} GB/s into a reused buffer, {fresh:.3} GB/s into new Vecs; ratio {:.2}",
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
            let n = jobcache_persist::save_with(&path, &a, &opts).unwrap();
            let s = t.elapsed().as_secs_f64();
            println!(
                "save level {level}: {:.3} s, {:.3} GB/s, {:.2}x",
                s,
                bytes.len() as f64 / 1e9 / s,
                bytes.len() as f64 / n as f64
            );
        }
        let _ = std::fs::remove_file(&path);
    }
}
