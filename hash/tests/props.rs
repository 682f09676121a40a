//! Property tests of the canonical encoding. Long runs:
//! `cargo xtask proptest --cases 100000`.

use jobcache_hash::{canonical_bytes, hash, hash_elements, Digest, Hasher};
use ndarray::{s, Array2, ShapeBuilder};
use proptest::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Serialize)]
enum Shape {
    Empty,
    Scalar(i64),
    Pair(u8, String),
    Named { x: Option<u32>, y: Vec<i16> },
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Empty),
        any::<i64>().prop_map(Shape::Scalar),
        (any::<u8>(), ".{0,8}").prop_map(|(a, b)| Shape::Pair(a, b)),
        (
            any::<Option<u32>>(),
            prop::collection::vec(any::<i16>(), 0..5)
        )
            .prop_map(|(x, y)| Shape::Named { x, y }),
    ]
}

type Value = (Vec<u8>, i64, String, Vec<Shape>, Option<f64>);

fn value() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(any::<u8>(), 0..6),
        any::<i64>(),
        ".{0,6}",
        prop::collection::vec(shape(), 0..3),
        any::<Option<f64>>(),
    )
}

/// Every digest seen by `prop_distinct_values_have_distinct_digests`, across
/// all its cases (256 cases × 400 values ≥ 100k values at proptest's default), with the canonical bytes of the value it came from.
static SEEN: Mutex<Option<HashMap<Digest, Vec<u8>>>> = Mutex::new(None);

proptest! {
    #[test]
    fn prop_tuple_elements_hash_as_they_do_alone(a in value(), b in value(), c in any::<u64>()) {
        let digests = hash_elements(&(&a, &b, c), 3).unwrap();
        prop_assert_eq!(digests, Some(vec![hash(&a).unwrap(), hash(&b).unwrap(), hash(&c).unwrap()]));
        // Too many elements, or no tuple at all: the caller hashes it whole.
        prop_assert_eq!(hash_elements(&(&a, &b, c), 2).unwrap(), None);
        prop_assert_eq!(hash_elements(&a, 3).unwrap(), None);
    }

    #[test]
    fn prop_hashing_is_deterministic(v in value()) {
        prop_assert_eq!(hash(&v).unwrap(), hash(&v.clone()).unwrap());
    }

    #[test]
    fn prop_map_free_values_encode_as_postcard(v in value()) {
        prop_assert_eq!(canonical_bytes(&v).unwrap(), postcard::to_allocvec(&v).unwrap());
    }

    #[test]
    fn prop_map_insertion_order_does_not_matter(
        entries in prop::collection::btree_map(".{0,6}", any::<u32>(), 0..40),
        seed in any::<u64>(),
    ) {
        let sorted: Vec<(String, u32)> = entries.clone().into_iter().collect();
        let mut shuffled = sorted.clone();
        // A deterministic shuffle from the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let forward: HashMap<String, u32> = sorted.into_iter().collect();
        let mixed: HashMap<String, u32> = shuffled.into_iter().rev().collect();
        let expected = hash(&entries).unwrap();
        prop_assert_eq!(hash(&forward).unwrap(), expected);
        prop_assert_eq!(hash(&mixed).unwrap(), expected);
        // Nested inside other values too.
        prop_assert_eq!(hash(&(1u8, &forward)).unwrap(), hash(&(1u8, &entries)).unwrap());
    }

    #[test]
    fn prop_array_digest_ignores_memory_layout(
        rows in 1usize..7,
        cols in 1usize..7,
        data in prop::collection::vec(any::<f64>(), 49),
    ) {
        let c = Array2::from_shape_vec((rows, cols), data[..rows * cols].to_vec()).unwrap();
        let mut fortran = Array2::<f64>::zeros((rows, cols).f());
        fortran.assign(&c);
        // A strided view: every other column of a wider array.
        let mut wide = Array2::<f64>::zeros((rows, 2 * cols));
        wide.slice_mut(s![.., ..;2]).assign(&c);
        let strided = wide.slice(s![.., ..;2]);
        let expected = hash(&c).unwrap();
        prop_assert_eq!(hash(&fortran).unwrap(), expected);
        prop_assert_eq!(hash(&strided).unwrap(), expected);
        prop_assert_eq!(hash(&c.t().to_owned().t()).unwrap(), expected);
        if rows != cols {
            let reshaped = Array2::from_shape_vec((cols, rows), c.iter().copied().collect()).unwrap();
            prop_assert_ne!(hash(&reshaped).unwrap(), expected);
        }
    }

    #[test]
    fn prop_distinct_values_have_distinct_digests(
        batch in prop::collection::vec(value(), 400),
    ) {
        let mut guard = SEEN.lock().unwrap();
        let seen = guard.get_or_insert_with(HashMap::new);
        for v in &batch {
            let bytes = canonical_bytes(v).unwrap();
            let digest = hash(v).unwrap();
            if let Some(previous) = seen.insert(digest, bytes.clone()) {
                prop_assert_eq!(previous, bytes, "two distinct values share {}", digest);
            }
        }
    }

    #[test]
    fn prop_framing_separates_splits(text in ".{2,12}", at in 1usize..12) {
        let at = (1..=at.min(text.len() - 1)).rev().find(|&i| text.is_char_boundary(i));
        prop_assume!(at.is_some());
        let (a, b) = text.split_at(at.unwrap_or(1));
        let whole = {
            let mut h = Hasher::new();
            h.update(&text).unwrap().update("").unwrap();
            h.finalize()
        };
        let split = {
            let mut h = Hasher::new();
            h.update(a).unwrap().update(b).unwrap();
            h.finalize()
        };
        prop_assert_ne!(whole, split);
        let raw_whole = { let mut h = Hasher::new(); h.update_bytes(text.as_bytes()).update_bytes(b""); h.finalize() };
        let raw_split = { let mut h = Hasher::new(); h.update_bytes(a.as_bytes()).update_bytes(b.as_bytes()); h.finalize() };
        prop_assert_ne!(raw_whole, raw_split);
    }
}

#[test]
fn btreemap_and_hashmap_agree_with_nested_maps() {
    let inner: BTreeMap<u8, Vec<u8>> = [(2, vec![1]), (1, vec![])].into_iter().collect();
    let outer_b: BTreeMap<String, BTreeMap<u8, Vec<u8>>> = [
        ("z".to_string(), inner.clone()),
        ("a".to_string(), inner.clone()),
    ]
    .into_iter()
    .collect();
    let outer_h: HashMap<String, HashMap<u8, Vec<u8>>> = outer_b
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into_iter().collect()))
        .collect();
    assert_eq!(hash(&outer_b).unwrap(), hash(&outer_h).unwrap());
}
