//! Feeds arbitrary bytes to the `.npz` readers (from a file, with
//! positional reads and maps, and from memory, streamed), with small
//! limits: errors, never panics, never more memory than the limits allow;
//! and the two readers reach the same verdict on every member.
#![no_main]

use std::io::Cursor;

use jobcache_persist::npz::{NpzLimits, NpzReader};
use libfuzzer_sys::fuzz_target;
use ndarray::IxDyn;

fuzz_target!(|data: &[u8]| {
    let limits = NpzLimits::default()
        .with_max_members(64)
        .with_max_inflated(16 << 20);
    let dir = std::env::temp_dir().join(format!("jobcache-persist-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input.npz");
    let streamed = NpzReader::with_limits(Cursor::new(data), limits);
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let opened = NpzReader::open_with(&path, limits);
    assert_eq!(opened.is_ok(), streamed.is_ok());
    let (Ok(mut opened), Ok(mut streamed)) = (opened, streamed) else {
        return;
    };
    assert_eq!(opened.names(), streamed.names());
    for name in opened.names() {
        let a = opened.read_any(&name);
        let b = streamed.read_any(&name);
        if let (Ok(a), Ok(b)) = (&a, &b) {
            assert_eq!(a, b);
        }
        // SAFETY: this process alone writes the file, and not while mapped.
        if let Ok(v) = unsafe { opened.view::<f64, IxDyn>(&name) } {
            let _ = v.view().sum();
        }
    }
});
