//! Feeds arbitrary bytes to the `.npy` readers: errors, never panics, and
//! every reader reaches the same verdict (`map` may refuse, as documented,
//! data it cannot view in place: other byte order, misaligned offset).
#![no_main]

use jobcache_persist::{npy, Error};
use libfuzzer_sys::fuzz_target;
use ndarray::{Ix2, IxDyn};

fuzz_target!(|data: &[u8]| {
    let _ = npy::from_reader::<f64, Ix2>(&mut &data[..]);
    let _ = npy::from_reader::<bool, IxDyn>(&mut &data[..]);
    let dir = std::env::temp_dir().join(format!("jobcache-persist-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input.npy");
    if std::fs::write(&path, data).is_ok() {
        let _ = jobcache_persist::inspect(&path);
        let header = npy::read_header(&path).map(|h| h.shape);
        let read = npy::read::<i16, IxDyn>(&path).map(|a| a.shape().to_vec());
        let streamed = npy::from_reader::<i16, IxDyn>(&mut &data[..]).map(|a| a.shape().to_vec());
        // SAFETY: this process alone writes the file, and not while mapped.
        let mapped = unsafe { npy::map::<i16, IxDyn>(&path) }.map(|m| {
            let _ = m.view().sum();
            m.view().shape().to_vec()
        });
        assert_eq!(read.is_ok(), streamed.is_ok(), "{read:?} vs {streamed:?}");
        if let (Ok(r), Ok(s)) = (&read, &streamed) {
            assert_eq!(r, s);
        }
        // Files of another dtype fail `read` with a type mismatch, which
        // `read_header` does not check; otherwise they agree.
        if !matches!(read, Err(Error::TypeMismatch { .. })) {
            assert_eq!(header.is_ok(), read.is_ok(), "{header:?} vs {read:?}");
        }
        match (&read, &mapped) {
            (Ok(r), Ok(m)) => assert_eq!(r, m),
            (Err(_), Err(_)) | (Ok(_), Err(Error::Unmappable { .. })) => {}
            _ => panic!("read: {read:?}, map: {mapped:?}"),
        }
    }
});
