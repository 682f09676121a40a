//! Property tests for every encoder and decoder: round trips, and no panic
//! (only errors) on arbitrary or mutated bytes. Names start with `prop_` so
//! `cargo xtask proptest --cases N` runs them longer.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use common::{config, sample, Output};
use jobcache_persist::{from_bytes, load, npy, to_writer, Error};
use ndarray::{Array1, Array2, ArrayD, Dimension, Ix2, IxDyn, ShapeBuilder};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Value {
    label: String,
    xs: Array1<f64>,
    grid: Array2<i32>,
    dynamic: ArrayD<u8>,
    flags: Vec<Array1<bool>>,
    maybe: Option<(i64, Array1<f32>)>,
    tail: Vec<u16>,
}

fn arb_value() -> impl Strategy<Value = Value> {
    (
        ".{0,12}",
        prop::collection::vec(
            any::<f64>().prop_filter("NaN != NaN", |x| !x.is_nan()),
            0..40,
        ),
        (0usize..5, 0usize..5, any::<i32>()),
        (prop::collection::vec(0usize..3, 0..4), any::<u8>()),
        prop::collection::vec(prop::collection::vec(any::<bool>(), 0..10), 0..3),
        prop::option::of((any::<i64>(), prop::collection::vec(-1e6f32..1e6, 0..10))),
        prop::collection::vec(any::<u16>(), 0..10),
    )
        .prop_map(
            |(label, xs, (r, c, seed), (shape, fill), flags, maybe, tail)| Value {
                label,
                xs: Array1::from(xs),
                grid: Array2::from_shape_fn((r, c), |(i, j)| seed.wrapping_add((i * 7 + j) as i32)),
                dynamic: ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
                    fill.wrapping_add(ix.as_array_view().iter().sum::<usize>() as u8)
                }),
                flags: flags.into_iter().map(Array1::from).collect(),
                maybe: maybe.map(|(i, v)| (i, Array1::from(v))),
                tail,
            },
        )
}

fn valid_file() -> Vec<u8> {
    let mut bytes = Vec::new();
    to_writer(&mut bytes, &sample(3)).unwrap();
    bytes
}

fn valid_npy() -> Vec<u8> {
    let a = Array2::from_shape_fn((5, 3), |(i, j)| (i * 3 + j) as f64);
    let mut bytes = Vec::new();
    npy::to_writer(&mut bytes, &a).unwrap();
    bytes
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_container_round_trips(value in arb_value()) {
        let mut bytes = Vec::new();
        let n = to_writer(&mut bytes, &value).unwrap();
        prop_assert_eq!(n as usize, bytes.len());
        prop_assert_eq!(bytes.len() % 64, 0);
        prop_assert_eq!(from_bytes::<Value>(&bytes).unwrap(), value);
    }

    #[test]
    fn prop_direct_array_round_trips(xs in prop::collection::vec(any::<i64>(), 0..200), cols in 1usize..5) {
        let rows = xs.len() / cols;
        let a = Array2::from_shape_vec((rows, cols), xs[..rows * cols].to_vec()).unwrap();
        let mut bytes = Vec::new();
        to_writer(&mut bytes, &a).unwrap();
        prop_assert_eq!(from_bytes::<Array2<i64>>(&bytes).unwrap(), a.clone());
        prop_assert_eq!(from_bytes::<ArrayD<i64>>(&bytes).unwrap(), a.into_dyn());
    }

    #[test]
    fn prop_npy_round_trips(xs in prop::collection::vec(any::<u32>(), 0..200), cols in 1usize..6, fortran in any::<bool>()) {
        let rows = xs.len() / cols;
        let data = xs[..rows * cols].to_vec();
        let a = Array2::from_shape_vec((rows, cols).set_f(fortran), data).unwrap();
        let mut bytes = Vec::new();
        npy::to_writer(&mut bytes, &a).unwrap();
        let back: Array2<u32> = npy::from_reader(&mut &bytes[..]).unwrap();
        prop_assert_eq!(back, a);
    }

    #[test]
    fn prop_arbitrary_bytes_are_errors_not_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        prop_assert!(from_bytes::<Output>(&bytes).is_err());
        let _ = from_bytes::<Array1<f64>>(&bytes);
        let _ = npy::from_reader::<f64, Ix2>(&mut &bytes[..]);
        let _ = npy::from_reader::<u8, IxDyn>(&mut &bytes[..]);
    }

    #[test]
    fn prop_arbitrary_bytes_after_valid_magic_are_errors(tail in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = b"\x89JCPRS\r\n\x01\0\0\0".to_vec();
        bytes.extend_from_slice(&tail);
        prop_assert!(from_bytes::<Output>(&bytes).is_err());
        let mut npy_bytes = b"\x93NUMPY\x01\x00".to_vec();
        npy_bytes.extend_from_slice(&tail);
        let _ = npy::from_reader::<f64, IxDyn>(&mut &npy_bytes[..]);
    }

    #[test]
    fn prop_mutated_container_is_always_detected(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let good = valid_file();
        let mut bad = good.clone();
        for (at, xor) in &edits {
            bad[at.index(good.len())] ^= xor;
        }
        if bad != good {
            prop_assert!(from_bytes::<Output>(&bad).is_err());
        }
    }

    #[test]
    fn prop_truncated_or_extended_container_is_detected(cut in any::<prop::sample::Index>(), extra in prop::collection::vec(any::<u8>(), 1..100)) {
        let good = valid_file();
        let cut = cut.index(good.len());
        prop_assert!(from_bytes::<Output>(&good[..cut]).is_err());
        let mut longer = good.clone();
        longer.extend_from_slice(&extra);
        prop_assert!(from_bytes::<Output>(&longer).is_err());
        let mut inserted = good[..cut].to_vec();
        inserted.extend_from_slice(&extra);
        inserted.extend_from_slice(&good[cut..]);
        prop_assert!(from_bytes::<Output>(&inserted).is_err());
    }

    #[test]
    fn prop_mutated_files_through_every_loader(at in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let dir = tempfile::tempdir().unwrap();
        let mut bad = valid_file();
        let i = at.index(bad.len());
        bad[i] ^= xor;
        let path = dir.path().join("f.jcp");
        std::fs::write(&path, &bad).unwrap();
        prop_assert!(load::<Output>(&path).is_err());
        // SAFETY: the file is not modified while mapped.
        if let Ok(m) = unsafe { jobcache_persist::Mapped::open(&path) } {
            // Only segment bytes can pass the metadata checks.
            prop_assert!(m.verify_arrays().is_err() || m.load::<Output>().is_err());
        }
        let _ = jobcache_persist::inspect(&path);
        prop_assert!(!jobcache_persist::verify(&path).map(|r| r.is_valid()).unwrap_or(false));

        let mut npy_bad = valid_npy();
        let j = at.index(npy_bad.len());
        npy_bad[j] ^= xor;
        let npath = dir.path().join("f.npy");
        std::fs::write(&npath, &npy_bad).unwrap();
        let _ = npy::read::<f64, Ix2>(&npath);
        let _ = npy::read::<f64, IxDyn>(&npath);
        // SAFETY: as above.
        let _ = unsafe { npy::map::<f64, Ix2>(&npath) };
        let _ = jobcache_persist::inspect(&npath);
    }

    #[test]
    fn prop_errors_name_the_file(at in any::<prop::sample::Index>()) {
        let dir = tempfile::tempdir().unwrap();
        let good = valid_file();
        let path = dir.path().join("named.jcp");
        std::fs::write(&path, &good[..at.index(good.len())]).unwrap();
        let err: Error = load::<Output>(&path).unwrap_err();
        prop_assert!(err.to_string().contains("named.jcp"), "{}", err);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Unit,
    New(i16),
    Tup(u8, Option<String>),
    Rec { a: u128, b: i128 },
}

fn arb_shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Unit),
        any::<i16>().prop_map(Shape::New),
        (any::<u8>(), prop::option::of(".{0,5}")).prop_map(|(a, b)| Shape::Tup(a, b)),
        (any::<u128>(), any::<i128>()).prop_map(|(a, b)| Shape::Rec { a, b }),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Without arrays, the body is exactly postcard's encoding, and decodes.
    #[test]
    fn prop_body_is_postcard(
        rows in prop::collection::vec((".{0,6}", any::<i64>(), any::<u32>(), any::<bool>(), any::<char>(), any::<f32>().prop_filter("NaN", |x| !x.is_nan())), 0..6),
        shapes in prop::collection::vec(arb_shape(), 0..4),
        map in prop::collection::btree_map(any::<u16>(), any::<i8>(), 0..4),
        bytes in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let value = (rows, shapes, map, serde_bytes_like(bytes), (), Some(-1i32));
        let mut out = Vec::new();
        to_writer(&mut out, &value).unwrap();
        let postcard = postcard::to_allocvec(&value).unwrap();
        prop_assert_eq!(&out[64..64 + postcard.len()], &postcard[..]);
        prop_assert_eq!(from_bytes::<ValueTuple>(&out).unwrap(), value);
    }
}

type ValueTuple = (
    Vec<(String, i64, u32, bool, char, f32)>,
    Vec<Shape>,
    std::collections::BTreeMap<u16, i8>,
    Vec<u8>,
    (),
    Option<i32>,
);

fn serde_bytes_like(b: Vec<u8>) -> Vec<u8> {
    b
}
