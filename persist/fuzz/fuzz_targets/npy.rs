//! Feeds arbitrary bytes to the `.npy` readers: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndarray::{Ix2, IxDyn};

fuzz_target!(|data: &[u8]| {
    let _ = jobcache_persist::npy::from_reader::<f64, Ix2>(&mut &data[..]);
    let _ = jobcache_persist::npy::from_reader::<bool, IxDyn>(&mut &data[..]);
    let dir = std::env::temp_dir().join(format!("jobcache-persist-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input.npy");
    if std::fs::write(&path, data).is_ok() {
        let _ = jobcache_persist::npy::read::<i16, IxDyn>(&path);
        let _ = jobcache_persist::inspect(&path);
        // SAFETY: this process alone writes the file, and not while mapped.
        if let Ok(m) = unsafe { jobcache_persist::npy::map::<u8, IxDyn>(&path) } {
            let _ = m.view().sum();
        }
    }
});
