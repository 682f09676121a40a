//! Mapped loads: map checks header, body and table; `verify…` checks the
//! arrays over the map itself. Together they detect damage anywhere in a
//! file, as a copying load does.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use std::path::Path;

use common::{config, sample};
use jobcache_persist::{load, map, save, Error, Mapped};
use ndarray::{Array1, Array2, Ix1, Ix2};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// Maps `path` and verifies every array: the mapped path's full check.
fn map_and_verify(path: &Path) -> Result<(), Error> {
    // SAFETY: tests replace files by rename, never modify them while mapped.
    unsafe { Mapped::open(path) }?.verify_arrays()
}

/// Writes `bytes` as a new file at `path` (by rename, as a store would).
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn every_flipped_or_zeroed_byte_is_detected_by_map_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.jcp");
    save(&path, &sample(3)).unwrap();
    let good = std::fs::read(&path).unwrap();
    map_and_verify(&path).unwrap();
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        replace(&path, &bad);
        assert!(map_and_verify(&path).is_err(), "flip at {i} undetected");
        let end = (i + 8).min(good.len());
        bad[i..end].fill(0);
        if bad[..] != good[..] {
            replace(&path, &bad);
            assert!(map_and_verify(&path).is_err(), "zeros at {i} undetected");
        }
    }
}

#[test]
fn one_mapped_array_verifies_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jcp");
    let a = Array2::from_shape_fn((30, 7), |(i, j)| (i * 7 + j) as f64 + 0.5);
    save(&path, &a).unwrap();
    let good = std::fs::read(&path).unwrap();
    // SAFETY: the file is replaced by rename, never modified while mapped.
    let m = unsafe { map::<f64, Ix2>(&path) }.unwrap();
    m.verify().unwrap();
    assert_eq!(m.view(), a.view());
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        replace(&path, &bad);
        // SAFETY: as above.
        let verdict = unsafe { map::<f64, Ix2>(&path) }.and_then(|m| m.verify());
        assert!(verdict.is_err(), "flip at {i} undetected");
    }
    // The handle mapped before the damage still views the old file.
    m.verify().unwrap();
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Multi {
    label: String,
    big: Array1<f64>,
    small: Array1<i32>,
    mask: Array1<bool>,
}

fn multi() -> Multi {
    Multi {
        label: "multi-block".into(),
        // Just over 1 MiB: two checksum blocks.
        big: Array1::from_shape_fn((1 << 17) + 9, |i| i as f64 * 0.25 - 7.0),
        small: Array1::from_shape_fn(33, |i| i as i32 - 16),
        mask: Array1::from_shape_fn(17, |i| i % 3 == 0),
    }
}

/// The saved `multi()` file, made once.
static MULTI: std::sync::LazyLock<(tempfile::TempDir, Vec<u8>)> = std::sync::LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("multi.jcp");
    save(&path, &multi()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(load::<Multi>(&path).unwrap(), multi());
    (dir, bytes)
});

proptest! {
    #![proptest_config(config())]

    /// A byte flip or a zero-fill anywhere in a saved file — array data,
    /// padding, body, table, header or trailer — is caught by map plus
    /// `verify_arrays`, as by a copying load.
    #[test]
    fn prop_map_and_verify_detect_damage(
        at in 0.0f64..1.0,
        zero_len in prop_oneof![Just(0usize), 1usize..9000],
        flip in 1u8..=255,
    ) {
        let (dir, good) = &*MULTI;
        let path = dir.path().join(format!("m{i}.jcp", i = (at * 1e9) as u64));
        let mut bytes = good.clone();
        let i = ((at * bytes.len() as f64) as usize).min(bytes.len() - 1);
        if zero_len == 0 {
            bytes[i] ^= flip;
        } else {
            let end = (i + zero_len).min(bytes.len());
            bytes[i..end].fill(0);
        }
        prop_assume!(&bytes != good);
        std::fs::write(&path, &bytes).unwrap();
        prop_assert!(map_and_verify(&path).is_err(), "damage at {} undetected", i);
        prop_assert!(load::<Multi>(&path).is_err());
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn verification_leaves_the_view_zero_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("z.jcp");
    let a = Array1::from_shape_fn(4096, |i| i as u32);
    save(&path, &a).unwrap();
    // SAFETY: the file is not modified while mapped.
    let m = unsafe { map::<u32, Ix1>(&path) }.unwrap();
    let before = m.view().as_ptr();
    m.verify().unwrap();
    m.mapped().verify_arrays().unwrap();
    assert_eq!(m.view().as_ptr(), before);
    let err = m.mapped().verify_array(1).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
}

#[test]
fn mapped_handles_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<jobcache_persist::MappedArray<f64, Ix2>>();
    send_sync::<jobcache_persist::npy::MappedNpy<u8, ndarray::IxDyn>>();
    send_sync::<Mapped>();
}

/// `map_file` maps the file it is given, not what its name points at when
/// it maps: a name replaced (by a symlink, or another file) after the open
/// changes nothing.
#[test]
fn map_file_maps_the_open_file_whatever_its_name_points_at() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jcp");
    let other = dir.path().join("b.jcp");
    let a = Array1::from_iter((0..1000).map(|i| i as f64));
    save(&path, &a).unwrap();
    save(&other, &Array1::<f64>::zeros(1000)).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&other, &path).unwrap();
    // SAFETY: the test's files are never modified in place.
    let mapped = unsafe { jobcache_persist::map_file::<f64, Ix1>(&file, &path) }.unwrap();
    mapped.verify().unwrap();
    assert_eq!(mapped.view(), a.view());
}
