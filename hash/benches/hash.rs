//! `cargo xtask bench hash`: hashing throughput against single-core raw
//! SHA-256 of the same bytes, subject and baseline alternating in one run.
//!
//! A hash that fails fails the run: a row is never written from a hash that
//! returned an error (which would take no time and look infinitely fast).

use jobcache_bench::{gb_per_s, median_of, paired, Group, Row};
use jobcache_hash::{hash, Error};
use ndarray::{Array1, Array2, ShapeBuilder};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const BYTES: usize = 256 << 20;
const REPS: usize = 7;

/// The time of one `hash(value)`; a failure is kept in `failed`.
fn time_hash<T: Serialize + ?Sized>(value: &T, failed: &mut Option<Error>) -> Duration {
    let start = Instant::now();
    let digest = hash(black_box(value));
    let time = start.elapsed();
    match digest {
        Ok(d) => {
            black_box(d);
        }
        Err(e) => *failed = Some(e),
    }
    time
}

/// The time of one single-core SHA-256 of `bytes`.
fn time_raw_sha(bytes: &[u8]) -> Duration {
    let start = Instant::now();
    black_box(Sha256::digest(black_box(bytes)));
    start.elapsed()
}

/// One SHA-256 per core over equal parts of `bytes`, with std threads only:
/// the most that hashing on every core can give on the machine as loaded
/// during the run.
fn time_raw_sha_every_core(bytes: &[u8]) -> Duration {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    std::thread::scope(|scope| {
        for part in bytes.chunks(bytes.len().div_ceil(cores).max(1)) {
            scope.spawn(move || black_box(Sha256::digest(black_box(part))));
        }
    });
    start.elapsed()
}

/// A row of `value` (whose logical content is `raw`) against raw SHA-256 of
/// `raw`, alternating.
fn vs_raw_sha<T: Serialize + ?Sized>(name: &str, value: &T, raw: &[u8]) -> Result<Row, Error> {
    let mut failed = None;
    let (ours, baseline) = paired(REPS, || time_hash(value, &mut failed), || time_raw_sha(raw));
    if let Some(e) = failed {
        return Err(e);
    }
    let bytes = raw.len() as u64;
    Ok(Row::ratio_higher_is_better(
        name,
        gb_per_s(bytes, ours),
        "GB/s",
        gb_per_s(bytes, baseline),
    ))
}

/// The median time of hashing `value`, failing on the first error.
fn hash_time<T: Serialize + ?Sized>(value: &T) -> Result<Duration, Error> {
    let mut failed = None;
    let time = median_of(REPS, || time_hash(value, &mut failed));
    failed.map_or(Ok(time), Err)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut group = Group::new("hash");
    let n = BYTES / 8;

    let array: Array1<f64> = (0..n).map(|i| i as f64 * 0.5).collect();
    let raw: Vec<u8> = array.iter().flat_map(|x| x.to_le_bytes()).collect();
    group.push(vs_raw_sha("hash/ndarray_f64_256MiB", &array, &raw)?);
    // A control without a floor: plain SHA-256 on every core against one
    // core, in the same run. Near 1.0 means the machine had no core to
    // spare while the group ran, and the parallel rows cannot pass.
    let (every_core, one_core) = paired(
        REPS,
        || time_raw_sha_every_core(&raw),
        || time_raw_sha(&raw),
    );
    group.push(Row::ratio_higher_is_better(
        "hash/control_raw_sha256_every_core_256MiB",
        gb_per_s(BYTES as u64, every_core),
        "GB/s",
        gb_per_s(BYTES as u64, one_core),
    ));
    drop(array);

    // The same logical elements in Fortran order: the bytes hashed are
    // those of the C-order array, so the baseline hashes `raw` again.
    let mut fortran = Array2::<f64>::zeros((4096, n / 4096).f());
    fortran
        .iter_mut()
        .enumerate()
        .for_each(|(i, x)| *x = i as f64 * 0.5);
    group.push(vs_raw_sha(
        "hash/ndarray_f64_256MiB_fortran",
        &fortran,
        &raw,
    )?);
    drop(fortran);
    drop(raw);

    let entries = 100_000;
    let map: HashMap<String, u64> = (0..entries as u64)
        .map(|i| (format!("key-{i}"), i))
        .collect();
    let time = hash_time(&map)?;
    group.push(Row::plain(
        "hash/hashmap_100k",
        entries as f64 / time.as_secs_f64(),
        "entries/s",
    ));

    let strings: Vec<String> = (0..entries).map(|i| format!("value-{i}")).collect();
    let time = hash_time(&strings)?;
    group.push(Row::plain(
        "hash/vec_string_100k",
        entries as f64 / time.as_secs_f64(),
        "entries/s",
    ));

    group.finish()?;
    Ok(())
}
