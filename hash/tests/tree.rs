//! The tree hash of long values (ENCODING.md, version 3): the digest is a
//! function of the canonical bytes alone, whatever the number of threads,
//! wherever the chunk boundaries fall, and whichever path (ndarray's serde
//! form or the array fast path) wrote the bytes; values shorter than a chunk
//! hash exactly as in version 1, but for the version number.

use jobcache_hash::{canonical_bytes, Digest, Hasher, ENCODING_VERSION, TREE_THRESHOLD};
use ndarray::{s, Array1, Array2, ArrayD, IxDyn, ShapeBuilder};
use proptest::prelude::*;
use serde::{Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

const MIB: usize = TREE_THRESHOLD;

/// The digest of one value, computed from ENCODING.md with plain SHA-256 and
/// BLAKE3 (the chunk digests).
fn reference(canonical: &[u8]) -> Digest {
    let mut sha = Sha256::new();
    sha.update(b"jobcache-hash\0");
    sha.update(ENCODING_VERSION.to_le_bytes());
    if canonical.len() < MIB {
        sha.update([1]);
        sha.update(canonical);
    } else {
        let mut root = Sha256::new();
        for chunk in canonical.chunks(MIB) {
            root.update(blake3::hash(chunk).as_bytes());
        }
        root.update((canonical.len() as u64).to_le_bytes());
        sha.update([3]);
        sha.update(root.finalize());
    }
    Digest::from_bytes(sha.finalize().into())
}

fn with_threads<T: Serialize + ?Sized>(value: &T, threads: usize) -> Digest {
    let mut h = Hasher::with_threads(threads);
    h.update(value).unwrap();
    h.finalize()
}

/// A byte string serialized with `serialize_bytes`.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// An array hashed through ndarray's own `Serialize` (element by element),
/// not the fast path: the encoder sees this wrapper's type, not the array's.
struct ViaSerde<T>(T);

impl<T: Serialize> Serialize for ViaSerde<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

fn bytes_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(seed | 1) ^ (i >> 9) as u8)
        .collect()
}

/// Lengths on each side of the chunk boundaries, and many chunks.
fn run_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(MIB - 1),
        Just(MIB),
        Just(MIB + 1),
        Just(2 * MIB - 1),
        Just(2 * MIB),
        Just(2 * MIB + 1),
        (0usize..5 * MIB),
        (MIB - 64..MIB + 64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn prop_long_byte_strings_are_trees_whatever_the_threads(
        len in run_len(),
        seed in any::<u8>(),
        head in 0usize..40,
        threads in 1usize..6,
    ) {
        // Some bytes before the string shift the chunk boundaries inside it.
        let data = bytes_of(len, seed);
        let value = (vec![7u8; head], Bytes(&data), 9u16);
        let expected = reference(&canonical_bytes(&value).unwrap());
        prop_assert_eq!(with_threads(&value, threads), expected);
        prop_assert_eq!(with_threads(&value, 1), expected);
        // The same bytes as a sequence of u8 encode alike but for the
        // length prefix of u8 elements: same rule, other bytes.
        let seq = (vec![7u8; head], data.clone(), 9u16);
        prop_assert_eq!(with_threads(&seq, threads), reference(&canonical_bytes(&seq).unwrap()));
        // Raw byte strings: the run is the bytes themselves.
        let mut a = Hasher::with_threads(threads);
        a.update_bytes(&data);
        let mut b = Hasher::with_threads(1);
        b.update_bytes(&data);
        prop_assert_eq!(a.finalize(), b.finalize());
    }

    #[test]
    fn prop_long_arrays_hash_alike_in_every_layout_and_path(
        rows in 1usize..300,
        cols in 1usize..1200,
        threads in 1usize..5,
        step in 1usize..3,
    ) {
        let c = Array2::from_shape_fn((rows, cols), |(i, j)| (i * 7919 + j) as f64 * 0.5);
        let expected = reference(&canonical_bytes(&ViaSerde(&c)).unwrap());
        prop_assert_eq!(canonical_bytes(&c).unwrap(), postcard::to_allocvec(&c).unwrap());
        prop_assert_eq!(with_threads(&c, threads), expected);
        prop_assert_eq!(with_threads(&ViaSerde(&c), threads), expected);
        let mut fortran = Array2::<f64>::zeros((rows, cols).f());
        fortran.assign(&c);
        prop_assert_eq!(with_threads(&fortran, threads), expected);
        prop_assert_eq!(with_threads(&&fortran, threads), expected);
        prop_assert_eq!(with_threads(&fortran.view(), threads), expected);
        prop_assert_eq!(with_threads(&(1u8, &fortran.t().t()), threads), {
            let mut h = Hasher::with_threads(1);
            h.update(&(1u8, ViaSerde(&c))).unwrap();
            h.finalize()
        });
        // Strided views: every `step`-th column of a wider array, in C and
        // in Fortran order.
        let mut wide = Array2::<f64>::zeros((rows, step * cols));
        wide.slice_mut(s![.., ..;step]).assign(&c);
        prop_assert_eq!(with_threads(&wide.slice(s![.., ..;step]), threads), expected);
        let mut wide_f = Array2::<f64>::zeros((rows, step * cols).f());
        wide_f.slice_mut(s![.., ..;step]).assign(&c);
        prop_assert_eq!(with_threads(&wide_f.slice(s![.., ..;step]), threads), expected);
        // f32 and N-D arrays take the same paths.
        let c32 = c.mapv(|x| x as f32);
        let mut f32_fortran = Array2::<f32>::zeros((rows, cols).f());
        f32_fortran.assign(&c32);
        prop_assert_eq!(with_threads(&f32_fortran, threads), with_threads(&ViaSerde(&c32), 1));
        let dyn3 = ArrayD::from_shape_vec(IxDyn(&[rows, cols, 1]), c.iter().copied().collect()).unwrap();
        let dyn3_f = {
            let mut f = ArrayD::<f64>::zeros(IxDyn(&[rows, cols, 1]).f());
            f.assign(&dyn3);
            f
        };
        prop_assert_eq!(with_threads(&dyn3_f, threads), with_threads(&ViaSerde(&dyn3), 1));
    }

    #[test]
    fn prop_values_shorter_than_a_chunk_keep_the_version_1_framing(
        data in prop::collection::vec(any::<f64>(), 0..2000),
        names in prop::collection::btree_map(".{0,6}", any::<i32>(), 0..20),
    ) {
        let value = (Array1::from(data.clone()), &names, data);
        let canonical = canonical_bytes(&value).unwrap();
        prop_assume!(canonical.len() < MIB);
        // Domain, version, tag 0x01, the canonical (postcard) bytes: the
        // version 1 construction with the current version number.
        prop_assert_eq!(with_threads(&value, 3), reference(&canonical));
    }
}

#[test]
fn long_values_inside_maps_and_unknown_length_sequences() {
    // A map's entries are sorted before they are hashed: its long values
    // arrive in one piece, cut into chunks in place.
    let map: BTreeMap<String, Vec<u8>> = (0..5)
        .map(|i| (format!("k{i}"), bytes_of(MIB / 2 + i, i as u8)))
        .collect();
    let expected = reference(&canonical_bytes(&map).unwrap());
    for threads in [1, 2, 4] {
        assert_eq!(with_threads(&map, threads), expected);
    }
    struct Unsized(Vec<u32>);
    impl Serialize for Unsized {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().filter(|_| true))
        }
    }
    let long = Unsized((0..3 * MIB as u32 / 2).collect());
    let expected = reference(&canonical_bytes(&long).unwrap());
    assert_eq!(expected, reference(&canonical_bytes(&long.0).unwrap()));
    for threads in [1, 3] {
        assert_eq!(with_threads(&long, threads), expected);
    }
}

#[test]
fn fortran_arrays_larger_than_one_band_hash_as_their_c_order_twin() {
    // 5.3 MB of f64: the column-wise copy takes two bands, the second short.
    let c = Array2::from_shape_fn((1100, 601), |(i, j)| (i * 601 + j) as f64);
    let mut fortran = Array2::<f64>::zeros((1100, 601).f());
    fortran.assign(&c);
    let expected = with_threads(&ViaSerde(&c), 1);
    for threads in [1, 2, 3] {
        assert_eq!(with_threads(&fortran, threads), expected);
        assert_eq!(with_threads(&c, threads), expected);
    }
    let c32 = c.mapv(|x| x as f32);
    let mut f32_fortran = Array2::<f32>::zeros((1100, 601).f());
    f32_fortran.assign(&c32);
    assert_eq!(
        with_threads(&f32_fortran, 2),
        with_threads(&ViaSerde(&c32), 1)
    );
    // Inside a map, where nothing is cut until the map ends.
    let map: BTreeMap<u8, ViaSerde<&Array2<f64>>> = [(1, ViaSerde(&c))].into_iter().collect();
    let map_f: BTreeMap<u8, (u8, &Array2<f64>)> = [(1, (0, &fortran))].into_iter().collect();
    let map_c: BTreeMap<u8, (u8, ViaSerde<&Array2<f64>>)> =
        [(1, (0, ViaSerde(&c)))].into_iter().collect();
    assert_eq!(with_threads(&map_f, 2), with_threads(&map_c, 1));
    assert_ne!(with_threads(&map, 2), with_threads(&map_c, 1));
}
