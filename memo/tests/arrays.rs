//! Array arguments and results: stored raw through jobcache-persist, and
//! viewed in place with mmap on.

use jobcache_memo::Memory;
use ndarray::{Array1, Array2, ShapeBuilder};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};

static OUTER: AtomicUsize = AtomicUsize::new(0);
fn outer(v: &Array1<f64>) -> Array2<f64> {
    OUTER.fetch_add(1, Ordering::SeqCst);
    let n = v.len();
    Array2::from_shape_fn((n, n), |(i, j)| v[i] * v[j])
}

#[test]
fn array_results_round_trip_and_map() {
    let dir = tempfile::tempdir().unwrap();
    let v: Array1<f64> = (0..200).map(f64::from).collect();
    let expected = outer(&v);
    let before = OUTER.load(Ordering::SeqCst);

    let plain = Memory::builder(dir.path()).verbose(0).build().unwrap();
    let f = plain.cache(outer);
    assert_eq!(f.call(&v), expected);
    assert_eq!(f.call(&v), expected);
    assert!(!f.call_mapped(&v).is_mapped(), "mmap is off by default");
    assert_eq!(OUTER.load(Ordering::SeqCst) - before, 1);

    let mapped = Memory::builder(dir.path())
        .verbose(0)
        .mmap(true)
        .build()
        .unwrap();
    let g = mapped.cache(outer);
    let hit = g.call_mapped(&v);
    assert!(hit.is_mapped());
    assert_eq!(hit.view(), expected.view());
    assert_eq!(OUTER.load(Ordering::SeqCst) - before, 1, "a mapped hit");

    // A miss computes, stores, and hands back a view of what was stored.
    let w: Array1<f64> = (0..150).map(|x| f64::from(x) * 0.5).collect();
    let miss = g.call_mapped(&w);
    assert!(miss.is_mapped());
    assert_eq!(miss.into_owned(), outer(&w));
}

#[test]
fn array_arguments_hash_by_content_not_layout() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::builder(dir.path()).verbose(0).build().unwrap();
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let total = mem.cache_named("total", move |a: &Array2<f64>| {
        counter.fetch_add(1, Ordering::SeqCst);
        a.sum()
    });
    let c = Array2::from_shape_fn((30, 40), |(i, j)| (i * 40 + j) as f64);
    let mut f = Array2::<f64>::zeros((30, 40).f());
    f.assign(&c);
    assert_eq!(total.call(&c), total.call(&f));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Model {
    name: String,
    weights: Array2<f32>,
    bias: Array1<f32>,
}

#[test]
fn structs_holding_arrays_are_cached() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::builder(dir.path()).verbose(0).build().unwrap();
    let train = mem.cache_named("train", |n: usize| Model {
        name: format!("model-{n}"),
        weights: Array2::from_elem((n, n), 0.5),
        bias: Array1::from_elem(n, -1.0),
    });
    let first = train.call(64);
    let second = train.call(64);
    assert_eq!(first, second);
}

static SMOOTH: AtomicUsize = AtomicUsize::new(0);
fn smooth(n: &usize) -> Array1<f64> {
    SMOOTH.fetch_add(1, Ordering::SeqCst);
    Array1::from_shape_fn(*n, |i| ((i / 100) as f64 * 0.25).round())
}

#[test]
fn compressed_results_round_trip_and_mapped_calls_fall_back_to_owned_loads() {
    let dir = tempfile::tempdir().unwrap();
    let memory = mapping_memory(dir.path(), Some(3));
    let f = memory.cache(smooth);
    let expected = smooth_too(&300_000);
    assert_eq!(f.call(&300_000), expected);
    let hit = f.call_mapped(&300_000);
    assert!(!hit.is_mapped(), "a compressed entry is loaded, not mapped");
    assert_eq!(hit.into_owned(), expected);
    let miss = f.call_mapped(&1000);
    assert_eq!(miss.into_owned().len(), 1000);
    assert_eq!(SMOOTH.load(Ordering::SeqCst), 2);
    // The payload on disk is much smaller than the 2.4 MB array.
    let total: u64 = walk(dir.path());
    assert!(total < 1_000_000, "{total} bytes stored");
    // A memory without the option reads the compressed entries.
    let plain = Memory::builder(dir.path()).verbose(0).build().unwrap();
    assert_eq!(plain.cache(smooth).call(&300_000), expected);
    assert_eq!(SMOOTH.load(Ordering::SeqCst), 2);
}

/// A quiet memory that maps results, compressing them at `level` if given.
fn mapping_memory(dir: &std::path::Path, level: Option<i32>) -> Memory {
    let builder = Memory::builder(dir).verbose(0).mmap(true);
    match level {
        Some(level) => builder.compress(level),
        None => builder,
    }
    .build()
    .unwrap()
}

fn smooth_too(n: &usize) -> Array1<f64> {
    Array1::from_shape_fn(*n, |i| ((i / 100) as f64 * 0.25).round())
}

#[test]
fn a_function_overrides_the_memory_compression_either_way() {
    let expected = smooth_too(&300_000);
    // A raw memory, one function compressed.
    let dir = tempfile::tempdir().unwrap();
    let memory = mapping_memory(dir.path(), None);
    let f = memory.cache(smooth_too).compress(1);
    assert_eq!(f.compression(), Some(1));
    assert_eq!(f.call(&300_000), expected);
    assert!(walk(dir.path()) < 1_000_000, "stored compressed");
    let hit = f.call_mapped(&300_000);
    assert!(!hit.is_mapped());
    assert_eq!(hit.into_owned(), expected);
    // A compressing memory, one function raw: its results map in place.
    let dir = tempfile::tempdir().unwrap();
    let memory = mapping_memory(dir.path(), Some(3));
    assert_eq!(memory.cache(smooth_too).compression(), Some(3));
    let g = memory.cache(smooth_too).uncompressed();
    assert_eq!(g.compression(), None);
    assert_eq!(g.call(&300_000), expected);
    assert!(walk(dir.path()) > 2_400_000, "stored raw");
    let hit = g.call_mapped(&300_000);
    assert!(hit.is_mapped(), "a raw entry maps");
    assert_eq!(hit.into_owned(), expected);
}

fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                walk(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}
