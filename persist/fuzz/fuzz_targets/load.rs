//! Feeds arbitrary bytes to the container loaders (in memory, from a file,
//! and through a map): they must return errors, never panic or over-allocate.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use ndarray::{Array1, Array2, ArrayD, Ix1, IxDyn};
use serde::Deserialize;

#[allow(dead_code)]
#[derive(Deserialize)]
struct Value {
    name: String,
    weights: Array2<f64>,
    counts: Array1<u32>,
    layers: Vec<Array1<f32>>,
    meta: BTreeMap<String, f64>,
    dynamic: Option<ArrayD<i64>>,
}

fuzz_target!(|data: &[u8]| {
    let _ = jobcache_persist::from_bytes::<Value>(data);
    let _ = jobcache_persist::from_bytes::<Array1<f64>>(data);
    let _ = jobcache_persist::from_bytes::<ArrayD<bool>>(data);
    let dir = std::env::temp_dir().join(format!("jobcache-persist-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input.jcp");
    if std::fs::write(&path, data).is_ok() {
        let _ = jobcache_persist::load::<Value>(&path);
        let _ = jobcache_persist::verify(&path);
        // SAFETY: this process alone writes the file, and not while mapped.
        if let Ok(m) = unsafe { jobcache_persist::Mapped::open(&path) } {
            let verified = m.verify_arrays();
            let _ = m.array::<f64, Ix1>(0);
            // A map whose arrays verify loads exactly as the copying load.
            let copied = m.load::<Value>();
            if verified.is_ok() {
                assert_eq!(copied.is_ok(), jobcache_persist::load::<Value>(&path).is_ok());
            }
            if let Ok(a) = m.into_array::<f64, Ix1>(0) {
                let _ = a.view().sum();
                let _ = a.verify();
            }
        }
        // SAFETY: as above.
        if let Ok(a) = unsafe { jobcache_persist::map::<u32, IxDyn>(&path) } {
            let _ = a.view().sum();
            let _ = a.verify();
        }
    }
});
