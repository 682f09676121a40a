//! Helpers shared by the container tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use ndarray::{Array1, Array2, Array3, ArrayD};
use serde::{Deserialize, Serialize};

/// A value like the ones users' functions return: arrays as plain fields,
/// nested, in containers, next to metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    pub name: String,
    pub weights: Array2<f64>,
    pub counts: Array1<u32>,
    pub mask: Array1<bool>,
    pub layers: Vec<Array1<f32>>,
    pub optional: Option<Array3<i16>>,
    pub dynamic: ArrayD<i64>,
    pub meta: BTreeMap<String, f64>,
    pub kind: Kind,
    pub pair: (u8, i128, char),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Kind {
    Unit,
    Newtype(i32),
    Tuple(u64, String),
    Struct { a: Array1<u8>, b: bool },
}

pub fn sample(seed: u64) -> Output {
    let s = seed as f64;
    Output {
        name: format!("run {seed} ✓"),
        weights: Array2::from_shape_fn((3, 5), |(i, j)| s + i as f64 * 0.5 - j as f64),
        counts: Array1::from_shape_fn(7, |i| i as u32 * 3 + seed as u32),
        mask: Array1::from_shape_fn(9, |i| (i as u64 + seed).is_multiple_of(2)),
        layers: vec![Array1::zeros(0), Array1::from_elem(4, 1.5f32 + s as f32)],
        optional: seed
            .is_multiple_of(2)
            .then(|| Array3::from_shape_fn((2, 1, 3), |(a, b, c)| (a + b + c) as i16 - 2)),
        dynamic: ArrayD::from_shape_fn(ndarray::IxDyn(&[2, 2, 1, 2]), |ix| {
            ix[0] as i64 - ix[3] as i64
        }),
        meta: [("lr".to_string(), 0.01), ("seed".to_string(), s)]
            .into_iter()
            .collect(),
        kind: match seed % 4 {
            0 => Kind::Unit,
            1 => Kind::Newtype(-(seed as i32)),
            2 => Kind::Tuple(seed, "t".into()),
            _ => Kind::Struct {
                a: Array1::from_elem(3, 7),
                b: true,
            },
        },
        pair: (200, -(1i128 << 100), 'λ'),
    }
}

/// Recomputes the metadata checksum after a test edited the metadata, so
/// the structural checks behind it are reached.
pub fn reseal(bytes: &mut [u8]) {
    let n = bytes.len();
    let body_offset = u64::from_le_bytes(bytes[n - 64..n - 56].try_into().unwrap()) as usize;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&bytes[..64]);
    h.update(&bytes[body_offset..n - 64]);
    h.update(&bytes[n - 64..n - 16]);
    let sum = h.digest().to_le_bytes();
    bytes[n - 16..n - 8].copy_from_slice(&sum);
}

/// Offset of the segment table.
pub fn table_offset(bytes: &[u8]) -> usize {
    let n = bytes.len();
    let body_offset = u64::from_le_bytes(bytes[n - 64..n - 56].try_into().unwrap());
    let body_len = u64::from_le_bytes(bytes[n - 56..n - 48].try_into().unwrap());
    (body_offset + body_len) as usize
}

/// Proptest cases: moderate by default so `cargo test` stays fast;
/// `PROPTEST_CASES` overrides it.
pub fn config() -> proptest::prelude::ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    proptest::prelude::ProptestConfig::with_cases(cases)
}

/// Whether the allocator may refuse a request larger than memory: not
/// where every allocation is granted (`vm.overcommit_memory` 1), where a
/// test of a refused allocation has nothing to show.
pub fn allocator_can_refuse() -> bool {
    !std::fs::read_to_string("/proc/sys/vm/overcommit_memory").is_ok_and(|m| m.trim() == "1")
}
