//! zstd-compressed containers (format version 2): round trips of every
//! element type through every load path, uncompressed files unchanged,
//! hostile and damaged compressed files refused without a panic. Property
//! tests start with `prop_`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use jobcache_persist::{
    export_npy, from_bytes, inspect, load, load_array, npy, save_with, to_writer, to_writer_with,
    verify, Error, Mapped, SaveOptions,
};
use ndarray::{Array1, Array2, ArrayD, Dimension, IxDyn};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

fn zstd(level: i32) -> SaveOptions {
    SaveOptions::default().compress(level)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AllTypes {
    label: String,
    b: Array1<bool>,
    i8: Array1<i8>,
    i16: Array1<i16>,
    i32: Array2<i32>,
    i64: Array1<i64>,
    u8: ArrayD<u8>,
    u16: Array1<u16>,
    u32: Array1<u32>,
    u64: Array1<u64>,
    f32: Array1<f32>,
    f64: Array1<f64>,
    words: Vec<u64>,
}

fn arb_all() -> impl Strategy<Value = AllTypes> {
    (
        ".{0,8}",
        prop::collection::vec(any::<bool>(), 0..50),
        prop::collection::vec(any::<i8>(), 0..50),
        prop::collection::vec(any::<i16>(), 0..50),
        (0usize..6, 0usize..6, any::<i32>()),
        prop::collection::vec(any::<i64>(), 0..50),
        prop::collection::vec(0usize..4, 0..3),
        prop::collection::vec(any::<u16>(), 0..50),
        prop::collection::vec(any::<u32>(), 0..50),
        prop::collection::vec(0u64..4, 0..3000),
        prop::collection::vec(any::<f32>().prop_filter("NaN", |x| !x.is_nan()), 0..50),
        prop::collection::vec(any::<f64>().prop_filter("NaN", |x| !x.is_nan()), 0..50),
    )
        .prop_flat_map(|t| (Just(t), prop::collection::vec(0u64..3, 0..400)))
        .prop_map(
            |((label, b, i8, i16, (r, c, s), i64, shape, u16, u32, u64, f32, f64), words)| {
                AllTypes {
                    label,
                    b: b.into(),
                    i8: i8.into(),
                    i16: i16.into(),
                    i32: Array2::from_shape_fn((r, c), |(i, j)| s.wrapping_add((i * 3 + j) as i32)),
                    i64: i64.into(),
                    u8: ArrayD::from_shape_fn(IxDyn(&shape), |ix| ix.as_array_view().sum() as u8),
                    u16: u16.into(),
                    u32: u32.into(),
                    u64: u64.into(),
                    f32: f32.into(),
                    f64: f64.into(),
                    words,
                }
            },
        )
}

fn compressible(n: usize) -> Array1<f64> {
    Array1::from_shape_fn(n, |i| {
        if (i / 1000) % 4 == 0 {
            0.0
        } else {
            ((i as f64 * 1e-4).sin() * 1000.0).round() / 1000.0
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn prop_zstd_round_trips_every_element_type(v in arb_all(), level in -3i32..6) {
        let mut bytes = Vec::new();
        to_writer_with(&mut bytes, &v, &zstd(level)).unwrap();
        prop_assert_eq!(&bytes[8..12], &2u32.to_le_bytes());
        prop_assert_eq!(from_bytes::<AllTypes>(&bytes).unwrap(), v.clone());
    }

    #[test]
    fn prop_zstd_mutated_bytes_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = Vec::new();
        let value = (String::from("x"), compressible(300_000), vec![1u8; 3000]);
        to_writer_with(&mut bytes, &value, &zstd(3)).unwrap();
        let mut bad = bytes.clone();
        for (at, x) in &flips {
            let i = at.index(bad.len());
            bad[i] ^= x | 1;
        }
        // A flip is either refused or harmless: zstd's entropy coding has
        // bits a decoder may ignore (about 3 % of a frame's bytes here), and
        // the checksums of the decompressed bytes prove the value unchanged.
        // Inside a cache the store's checksum of the file's bytes refuses it.
        match from_bytes::<(String, Array1<f64>, Vec<u8>)>(&bad) {
            Err(_) => {}
            Ok(loaded) => prop_assert!(loaded == value, "a flipped byte loaded another value"),
        }
        let r = from_bytes::<(String, Array1<f64>, Vec<u8>)>(&bytes[..cut.index(bytes.len())]);
        prop_assert!(r.is_err());
    }

    #[test]
    fn prop_arbitrary_bytes_after_a_v2_header_never_panic(tail in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = b"\x89JCPRS\r\n\x02\0\0\0".to_vec();
        bytes.resize(64, 0);
        bytes.extend_from_slice(&tail);
        let _ = from_bytes::<(String, Array1<f64>)>(&bytes);
    }
}

#[test]
fn uncompressed_files_are_version_1_and_unchanged() {
    let value = (String::from("golden"), compressible(5000));
    let mut plain = Vec::new();
    to_writer(&mut plain, &value).unwrap();
    let mut with_default = Vec::new();
    to_writer_with(&mut with_default, &value, &SaveOptions::default()).unwrap();
    assert_eq!(plain, with_default);
    assert_eq!(&plain[8..12], &1u32.to_le_bytes());
}

#[test]
fn large_arrays_compress_in_blocks_on_threads_and_load_by_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jcp");
    let a = compressible(10_000_000); // 80 MB: the parallel path
    let n = save_with(&path, &a, &zstd(3)).unwrap();
    assert!(n < 80_000_000 / 2, "{n}");
    assert_eq!(load::<Array1<f64>>(&path).unwrap(), a);
    assert_eq!(load_array::<f64, ndarray::Ix1>(&path, 0).unwrap(), a);
    let arc: ndarray::ArcArray1<f64> = load(&path).unwrap();
    assert_eq!(arc, a);
    let info = inspect(&path).unwrap();
    assert!(info.arrays[0].zstd);
    assert!(info.arrays[0].stored_len < info.arrays[0].byte_len);
    assert!(verify(&path).unwrap().is_valid());
    // .npy export decompresses; the .npy is plain NumPy.
    let out = dir.path().join("a.npy");
    export_npy(&path, 0, &out).unwrap();
    assert_eq!(npy::read::<f64, ndarray::Ix1>(&out).unwrap(), a);
    // A compressed array cannot be viewed in place, but the map loads it.
    // SAFETY: the file is not modified while mapped.
    let mapped = unsafe { Mapped::open(&path) }.unwrap();
    let err = mapped.array::<f64, ndarray::Ix1>(0).unwrap_err();
    assert!(matches!(err, Error::Unmappable { .. }), "{err}");
    mapped.verify_arrays().unwrap();
    assert_eq!(mapped.load::<Array1<f64>>().unwrap(), a);
}

#[test]
fn incompressible_blocks_are_stored_raw() {
    let mut x = 1u64;
    let a = Array1::from_shape_fn(400_000, |_| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        f64::from_bits(x)
    });
    let mut plain = Vec::new();
    to_writer(&mut plain, &a).unwrap();
    let mut packed = Vec::new();
    to_writer_with(&mut packed, &a, &zstd(3)).unwrap();
    // Raw blocks cost only the directory and table words.
    assert!(
        packed.len() <= plain.len() + 128,
        "{} vs {}",
        packed.len(),
        plain.len()
    );
    let back: Array1<f64> = from_bytes(&packed).unwrap();
    assert_eq!(back.len(), a.len());
    assert!(back.iter().zip(&a).all(|(x, y)| x.to_bits() == y.to_bits()));
}

#[test]
fn a_corrupted_compressed_block_is_a_checksum_or_format_error() {
    let a = compressible(1_000_000);
    let mut bytes = Vec::new();
    to_writer_with(&mut bytes, &a, &zstd(1)).unwrap();
    for at in [64usize, 64 + 1000, bytes.len() / 3] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x55;
        let err = from_bytes::<Array1<f64>>(&bad).unwrap_err();
        assert!(
            matches!(
                err,
                Error::ChecksumMismatch { .. } | Error::Malformed { .. }
            ),
            "{err}"
        );
    }
}

/// Arrays of every element type whose values repeat (so every segment is
/// really zstd-compressed, not stored raw), from a small alphabet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Compressible {
    b: Array1<bool>,
    i8: Array1<i8>,
    i16: Array1<i16>,
    i32: Array2<i32>,
    i64: Array1<i64>,
    u8: Array1<u8>,
    u16: Array1<u16>,
    u32: Array1<u32>,
    u64: Array1<u64>,
    f32: Array1<f32>,
    f64: Array1<f64>,
}

fn arb_compressible() -> impl Strategy<Value = Compressible> {
    (
        prop::collection::vec(any::<u8>(), 1..8),
        5_000usize..20_000,
        1usize..4,
    )
        .prop_map(|(alphabet, n, run)| {
            let at = |i: usize| alphabet[(i / run) % alphabet.len()];
            Compressible {
                b: Array1::from_shape_fn(n, |i| at(i) % 2 == 0),
                i8: Array1::from_shape_fn(n, |i| at(i) as i8),
                i16: Array1::from_shape_fn(n, |i| i16::from(at(i)).wrapping_mul(-129)),
                i32: Array2::from_shape_fn((n / 4, 4), |(i, j)| i32::from(at(i + j)) << 20),
                i64: Array1::from_shape_fn(n, |i| -(i64::from(at(i)) << 40)),
                u8: Array1::from_shape_fn(n, at),
                u16: Array1::from_shape_fn(n, |i| u16::from(at(i)) * 257),
                u32: Array1::from_shape_fn(n, |i| u32::from(at(i)) * 65_537),
                u64: Array1::from_shape_fn(n, |i| u64::from(at(i)) << 56),
                f32: Array1::from_shape_fn(n, |i| f32::from(at(i)) / 7.0),
                f64: Array1::from_shape_fn(n, |i| f64::from(at(i)) * -1.5e300),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn prop_compressed_segments_of_every_element_type_round_trip(
        v in arb_compressible(),
        level in prop::sample::select(vec![-5, -1, 1, 3, 9]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.jcp");
        save_with(&path, &v, &zstd(level)).unwrap();
        let info = inspect(&path).unwrap();
        prop_assert_eq!(info.arrays.len(), 11);
        for a in &info.arrays {
            prop_assert!(a.zstd && a.stored_len < a.byte_len, "{:?}", a);
        }
        prop_assert_eq!(load::<Compressible>(&path).unwrap(), v.clone());
        // SAFETY: the file is not modified while mapped.
        let mapped = unsafe { Mapped::open(&path) }.unwrap();
        prop_assert_eq!(mapped.load::<Compressible>().unwrap(), v);
    }
}

/// A compressed file of one array and where its first zstd frame starts.
fn one_frame_file() -> (Vec<u8>, usize) {
    let mut bytes = Vec::new();
    to_writer_with(&mut bytes, &compressible(100_000), &zstd(3)).unwrap();
    let magic = [0x28, 0xB5, 0x2F, 0xFD];
    let at = bytes
        .windows(4)
        .position(|w| w == magic)
        .expect("a zstd frame");
    (bytes, at)
}

#[test]
fn a_frame_whose_header_claims_a_huge_size_is_refused_before_decoding() {
    let (mut bytes, at) = one_frame_file();
    // Frame header descriptor: bits 7-6 give the content-size field's
    // width, bit 5 says whether a window descriptor byte comes first.
    let fhd = bytes[at + 4];
    let width = [0usize, 2, 4, 8][usize::from(fhd >> 6)];
    assert!(width >= 4, "the frame records its content size");
    let field = at + 5 + usize::from(fhd & 0x20 == 0);
    for b in &mut bytes[field..field + width] {
        *b = 0xFF; // 4 GiB or 16 EiB
    }
    let err = from_bytes::<Array1<f64>>(&bytes).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("zstd frame"), "{err}");
}

#[test]
fn a_truncated_frame_or_directory_is_an_error() {
    let (bytes, at) = one_frame_file();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.jcp");
    for cut in [at + 2, at + 100, bytes.len() - 70, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert!(load::<Array1<f64>>(&path).is_err(), "cut at {cut}");
        assert!(from_bytes::<Array1<f64>>(&bytes[..cut]).is_err());
    }
}

#[test]
fn every_single_bit_flip_in_a_frame_is_detected() {
    let (bytes, at) = one_frame_file();
    let original: Array1<f64> = from_bytes(&bytes).unwrap();
    for i in (at..bytes.len()).step_by(97) {
        for bit in [0, 3, 7] {
            let mut bad = bytes.clone();
            bad[i] ^= 1 << bit;
            // Whatever loads is the original value, never another one.
            if let Ok(v) = from_bytes::<Array1<f64>>(&bad) {
                assert_eq!(v, original, "flip at {i} bit {bit}");
            }
        }
    }
}
