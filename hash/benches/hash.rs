//! `cargo xtask bench hash`: hashing throughput against raw SHA-256 of the
//! same bytes, measured in the same run.

use jobcache_bench::{gb_per_s, median, Group, Row};
use jobcache_hash::hash;
use ndarray::{Array1, Array2, ShapeBuilder};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::hint::black_box;

const BYTES: usize = 256 << 20;
const REPS: usize = 7;

fn raw_sha_gbps(bytes: &[u8]) -> f64 {
    let time = median(REPS, || {
        black_box(Sha256::digest(black_box(bytes)));
    });
    gb_per_s(bytes.len() as u64, time)
}

fn main() -> std::io::Result<()> {
    let mut group = Group::new("hash");
    let n = BYTES / 8;

    let array: Array1<f64> = (0..n).map(|i| i as f64 * 0.5).collect();
    let raw: Vec<u8> = array.iter().flat_map(|x| x.to_le_bytes()).collect();
    let baseline = raw_sha_gbps(&raw);
    let ours = gb_per_s(
        BYTES as u64,
        median(REPS, || {
            black_box(hash(black_box(&array)).ok());
        }),
    );
    group.push(Row::ratio_higher_is_better(
        "hash/ndarray_f64_256MiB",
        ours,
        "GB/s",
        baseline,
    ));
    drop(array);

    let mut fortran = Array2::<f64>::zeros((4096, n / 4096).f());
    fortran
        .iter_mut()
        .enumerate()
        .for_each(|(i, x)| *x = i as f64);
    let ours = gb_per_s(
        BYTES as u64,
        median(REPS, || {
            black_box(hash(black_box(&fortran)).ok());
        }),
    );
    group.push(Row::ratio_higher_is_better(
        "hash/ndarray_f64_256MiB_fortran",
        ours,
        "GB/s",
        baseline,
    ));
    drop(fortran);
    drop(raw);

    let entries = 100_000;
    let map: HashMap<String, u64> = (0..entries as u64)
        .map(|i| (format!("key-{i}"), i))
        .collect();
    let time = median(REPS, || {
        black_box(hash(black_box(&map)).ok());
    });
    group.push(Row::plain(
        "hash/hashmap_100k",
        entries as f64 / time.as_secs_f64(),
        "entries/s",
    ));

    let strings: Vec<String> = (0..entries).map(|i| format!("value-{i}")).collect();
    let time = median(REPS, || {
        black_box(hash(black_box(&strings)).ok());
    });
    group.push(Row::plain(
        "hash/vec_string_100k",
        entries as f64 / time.as_secs_f64(),
        "entries/s",
    ));

    group.finish()?;
    Ok(())
}
