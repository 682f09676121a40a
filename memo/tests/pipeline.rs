//! Lazy pipelines: shelved results passed between cached steps are keyed by
//! their own keys, so an unchanged pipeline loads only what its last step
//! returns, and a change recomputes only the steps downstream of it.

use jobcache_memo::{Error, Memory, Shelved};
use ndarray::Array1;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Default)]
struct Counts {
    load: AtomicUsize,
    scale: AtomicUsize,
    total: AtomicUsize,
}

impl Counts {
    fn get(&self) -> [usize; 3] {
        [
            self.load.load(Ordering::SeqCst),
            self.scale.load(Ordering::SeqCst),
            self.total.load(Ordering::SeqCst),
        ]
    }
}

#[test]
fn a_changed_step_recomputes_only_what_is_downstream() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::builder(dir.path()).verbose(0).build().unwrap();
    let counts = Arc::new(Counts::default());

    let c = counts.clone();
    let load = mem.cache_named("load", move |n: usize| {
        c.load.fetch_add(1, Ordering::SeqCst);
        Array1::<f64>::from_elem(n, 1.0)
    });
    let c = counts.clone();
    let scale = mem.cache_named("scale", move |(x, k): (&Shelved<Array1<f64>>, f64)| {
        c.scale.fetch_add(1, Ordering::SeqCst);
        x.load().map(|a| a * k)
    });
    let c = counts.clone();
    let total = mem.cache_named("total", move |x: &Shelved<Array1<f64>>| {
        c.total.fetch_add(1, Ordering::SeqCst);
        x.load().map(|a| a.sum())
    });
    let run = |k: f64| -> Result<f64, Error> {
        let raw = load.call_and_shelve(10_000);
        let scaled = scale.try_call_and_shelve((&raw, k))?;
        total.try_call(&scaled)
    };

    assert_eq!(run(2.0).unwrap(), 20_000.0);
    assert_eq!(counts.get(), [1, 1, 1]);
    assert_eq!(run(2.0).unwrap(), 20_000.0);
    assert_eq!(counts.get(), [1, 1, 1], "every step hit");
    assert_eq!(run(3.0).unwrap(), 30_000.0);
    assert_eq!(
        counts.get(),
        [1, 2, 2],
        "the first step hit; the others ran"
    );
}

#[test]
fn a_hit_on_a_shelved_step_reads_no_value() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::builder(dir.path()).verbose(0).build().unwrap();
    let make = mem.cache_named("make", |n: usize| vec![0u8; n]);
    let first = make.call_and_shelve(1 << 20);
    // Damage the stored value: a shelved hit must not read it (only the
    // entry's metadata), so it still succeeds; loading then fails.
    let store = jobcache_store::FsStore::open(dir.path()).unwrap();
    let entry = store
        .entry_dir("make", &first.key().unwrap().to_string())
        .unwrap();
    let payload = std::fs::read_dir(&entry)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .unwrap();
    let mut bytes = std::fs::read(&payload).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&payload, bytes).unwrap();
    let again = make.call_and_shelve(1 << 20);
    assert_eq!(again.key(), first.key());
    assert!(again.load().is_err(), "the damage is caught when loading");
}

/// The keys of every step of a pipeline, run against a cache at `dir`.
fn pipeline_keys(dir: &std::path::Path) -> Vec<String> {
    let mem = Memory::builder(dir).verbose(0).build().unwrap();
    let load = mem.cache_named("load", |n: usize| Array1::<f64>::from_elem(n, 1.0));
    let scale = mem.cache_named("scale", |(x, k): (&Shelved<Array1<f64>>, f64)| {
        x.load().map(|a| a * k)
    });
    let total = mem.cache_named("total", |x: &Shelved<Array1<f64>>| {
        x.load().map(|a| a.sum())
    });
    let raw = load.call_and_shelve(100);
    let scaled = scale.try_call_and_shelve((&raw, 2.0)).unwrap();
    assert_eq!(total.try_call(&scaled).unwrap(), 200.0);
    assert_eq!(
        raw.location(),
        Some(dir),
        "the handle still knows where it is"
    );
    vec![
        raw.key().unwrap().to_string(),
        scaled.key().unwrap().to_string(),
        total.key(&&scaled).unwrap().to_string(),
    ]
}

#[test]
fn keys_do_not_depend_on_where_the_cache_lives() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let nested = b.path().join("somewhere/else/entirely");
    std::fs::create_dir_all(&nested).unwrap();
    let here = pipeline_keys(a.path());
    let there = pipeline_keys(&nested);
    assert_eq!(
        here, there,
        "every step has the same key in both directories"
    );
}

#[test]
fn a_sent_handle_keeps_its_location_and_loads_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::builder(dir.path()).verbose(0).build().unwrap();
    let make = mem.cache_named("make", |n: usize| vec![7u8; n]);
    let shelved = make.call_and_shelve(10);
    let text = serde_json::to_string(&shelved).unwrap();
    assert!(text.contains("location"), "{text}");
    let back: Shelved<Vec<u8>> = serde_json::from_str(&text).unwrap();
    assert_eq!(back.location(), Some(dir.path()));
    assert_eq!(back.key(), shelved.key());
    assert_eq!(back.load().unwrap(), vec![7u8; 10]);
}
