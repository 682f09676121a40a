//! Damages a valid zstd-compressed container (format version 2) as the
//! fuzzer directs: byte edits anywhere (frames, the block directory, the
//! tables) and a cut. Every loader must return an error or the original
//! value, never panic, never allocate what a damaged frame header claims,
//! never return another value.
#![no_main]

use std::sync::OnceLock;

use jobcache_persist::{from_bytes, to_writer_with, SaveOptions};
use libfuzzer_sys::fuzz_target;
use ndarray::Array1;

type Value = (String, Array1<f64>, Array1<u16>, Vec<u8>);

/// The value and its compressed container: three 1 MiB blocks of f64 (two
/// frames and a short last block), a small u16 array, a compressed body.
fn original() -> &'static (Value, Vec<u8>) {
    static ORIGINAL: OnceLock<(Value, Vec<u8>)> = OnceLock::new();
    ORIGINAL.get_or_init(|| {
        let f = Array1::from_shape_fn(300_000, |i| ((i as f64 * 1e-3).sin() * 100.0).round());
        let u = Array1::from_shape_fn(5_000, |i| (i % 7) as u16);
        let value = ("field".to_string(), f, u, vec![3u8; 4_000]);
        let mut bytes = Vec::new();
        to_writer_with(&mut bytes, &value, &SaveOptions::default().compress(3))
            .expect("an in-memory save");
        (value, bytes)
    })
}

fuzz_target!(|data: &[u8]| {
    let (value, bytes) = original();
    let mut bad = bytes.clone();
    // Each 5 bytes of input: a little-endian position and a xor mask.
    let mut edits = data.chunks_exact(5);
    for e in &mut edits {
        let at = u32::from_le_bytes([e[0], e[1], e[2], e[3]]) as usize % bad.len();
        bad[at] ^= e[4];
    }
    // A trailing byte (if any) cuts the file at that fraction of its length.
    if let Some(&cut) = edits.remainder().first() {
        let keep = bad.len() * usize::from(cut) / 256;
        bad.truncate(keep);
    }
    if let Ok(back) = from_bytes::<Value>(&bad) {
        assert_eq!(&back, value, "a damaged file loaded as another value");
    }
    let dir = std::env::temp_dir().join(format!("jobcache-persist-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input-zstd.jcp");
    if std::fs::write(&path, &bad).is_ok() {
        if let Ok(back) = jobcache_persist::load::<Value>(&path) {
            assert_eq!(&back, value, "a damaged file loaded as another value");
        }
        let _ = jobcache_persist::verify(&path);
        let _ = jobcache_persist::inspect(&path);
    }
});
