//! The cached functions of the run, and the values they must return.
//!
//! Every result is a pure function of its argument `id`, so a worker checks
//! each value it gets, hit or computed, element by element. Each function
//! body notes that it ran (and when), which is how a call is told to be a
//! computation or a hit, and how the orchestrator finds two workers that
//! computed one key at the same time.

use crate::now_ns;
use crate::rng::{mix, Rng};
use jobcache::Memory;
use ndarray::Array2;
use std::cell::RefCell;

/// Name of the `u64` function (also its namespace directory under `ns/`).
pub const SMALL_U64: &str = "torture_small_u64";
/// Name of the `Vec<u32>` function.
pub const SMALL_VEC: &str = "torture_small_vec";
/// Name of the `String` function.
pub const SMALL_STRING: &str = "torture_small_string";
/// Name of the fallible function (called with `try_call`).
pub const FALLIBLE: &str = "torture_fallible";
/// Name of the array function the copy-mode workers call (`call`).
pub const ARRAY_COPY: &str = "torture_array_copy";
/// Name of the array function the mapped-mode workers call (`call_mapped`).
pub const ARRAY_MAPPED: &str = "torture_array_mapped";
/// Every function name; each is its own namespace directory, since the
/// names use only characters `store/LAYOUT.md` keeps as they are.
pub const ALL: [&str; 6] = [
    SMALL_U64,
    SMALL_VEC,
    SMALL_STRING,
    FALLIBLE,
    ARRAY_COPY,
    ARRAY_MAPPED,
];

/// Distinct arguments of the small functions (small, so that hits are common).
pub const SMALL_IDS: u64 = 48;
/// Distinct arguments of the array functions.
pub const ARRAY_IDS: u64 = 24;
/// Array sizes in MiB, picked by `id % 12`.
const ARRAY_MIB: [usize; 12] = [1, 1, 2, 2, 3, 4, 6, 8, 12, 16, 32, 64];

/// One run of a function body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Computation {
    /// The function's name.
    pub function: &'static str,
    /// Its argument.
    pub id: u64,
    /// When the body started and ended (`now_ns`).
    pub start: u64,
    /// See `start`.
    pub end: u64,
}

thread_local! {
    static COMPUTED: RefCell<Vec<Computation>> = const { RefCell::new(Vec::new()) };
}

/// The computations this thread ran since the last call, oldest first.
pub fn take_computations() -> Vec<Computation> {
    COMPUTED.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

fn noted<T>(function: &'static str, id: u64, body: impl FnOnce() -> T) -> T {
    let start = now_ns();
    let value = body();
    let end = now_ns();
    COMPUTED.with(|c| {
        c.borrow_mut().push(Computation {
            function,
            id,
            start,
            end,
        })
    });
    value
}

/// The `u64` for `id`.
pub fn expected_u64(id: u64) -> u64 {
    mix(id ^ 0x5155_0001)
}

/// The `Vec<u32>` for `id` (0 to 39 elements).
pub fn expected_vec(id: u64) -> Vec<u32> {
    (0..id % 40).map(|i| mix((id << 8) ^ i) as u32).collect()
}

/// The `String` for `id`.
pub fn expected_string(id: u64) -> String {
    format!("torture-{id}-{:016x}|", mix(id ^ 0x5155_0002)).repeat(1 + (id % 8) as usize)
}

/// The fallible function's result for `id`: an error for every fifth.
pub fn expected_fallible(id: u64) -> Result<u64, String> {
    if id.is_multiple_of(5) {
        Err(format!("torture: no value for {id}"))
    } else {
        Ok(mix(id ^ 0x5155_0003))
    }
}

/// The shape of the array for `id`: 1 to 64 MiB of `u64`.
pub fn array_shape(id: u64) -> (usize, usize) {
    let mib = ARRAY_MIB[(id % 12) as usize];
    let cols = 1024 + (id / 12) as usize;
    (mib * 1024 * 1024 / 8 / cols, cols)
}

/// Element `i` (row-major) of the array for `id`: odd, so a zero-filled or
/// bit-flipped element never matches.
pub fn array_element(id: u64, i: u64) -> u64 {
    (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xD6E8_FEB8_6659_FD93)) | 1
}

fn array_for(id: u64) -> Array2<u64> {
    let (rows, cols) = array_shape(id);
    let mut i = 0u64;
    Array2::from_shape_simple_fn((rows, cols), || {
        let v = array_element(id, i);
        i += 1;
        v
    })
}

/// Where an array differs from the one for `id`: `None` if it is exactly it.
pub fn array_mismatch(id: u64, got: ndarray::ArrayView2<'_, u64>) -> Option<String> {
    let shape = array_shape(id);
    if got.dim() != shape {
        return Some(format!("shape {:?}, expected {:?}", got.dim(), shape));
    }
    got.iter()
        .zip(0u64..)
        .find(|(v, i)| **v != array_element(id, *i))
        .map(|(v, i)| {
            format!(
                "element {i} is {v:#x}, expected {:#x}",
                array_element(id, i)
            )
        })
}

/// The cached `u64` function.
pub fn small_u64(id: u64) -> u64 {
    noted(SMALL_U64, id, || expected_u64(id))
}

/// The cached `Vec<u32>` function.
pub fn small_vec(id: u64) -> Vec<u32> {
    noted(SMALL_VEC, id, || expected_vec(id))
}

/// The cached `String` function.
pub fn small_string(id: u64) -> String {
    noted(SMALL_STRING, id, || expected_string(id))
}

/// The cached fallible function.
pub fn fallible(id: u64) -> Result<u64, String> {
    noted(FALLIBLE, id, || expected_fallible(id))
}

/// The array function of the copy-mode workers.
pub fn array_copy(id: u64) -> Array2<u64> {
    noted(ARRAY_COPY, id, || array_for(id))
}

/// The array function of the mapped-mode workers (same values, its own
/// namespace, so that the injector can tell mapped payloads apart).
pub fn array_mapped(id: u64) -> Array2<u64> {
    noted(ARRAY_MAPPED, id, || array_for(id))
}

/// One call a worker makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `call` of [`small_u64`].
    U64(u64),
    /// `call` of [`small_vec`].
    Vec(u64),
    /// `call` of [`small_string`].
    Str(u64),
    /// `try_call` of [`fallible`].
    Fallible(u64),
    /// `call` of [`array_copy`] or `call_mapped` of [`array_mapped`].
    Array(u64),
}

impl Op {
    /// A random call: mostly small values, one in six an array, smaller
    /// arrays more often than large ones (the minimum of two draws).
    pub fn pick(rng: &mut Rng) -> Op {
        match rng.below(12) {
            0..=2 => Op::U64(rng.below(SMALL_IDS)),
            3..=5 => Op::Vec(rng.below(SMALL_IDS)),
            6..=7 => Op::Str(rng.below(SMALL_IDS)),
            8..=9 => Op::Fallible(rng.below(SMALL_IDS)),
            _ => {
                let a = rng.below(ARRAY_IDS);
                let b = rng.below(ARRAY_IDS);
                Op::Array(if a % 12 < b % 12 { a } else { b })
            }
        }
    }
}

/// The cache key (64 hex digits) of `function` called with `id`, as the
/// library computes it for a worker; `None` for an unknown name. Workers
/// cache function pointers, and a key includes the function's type name, so
/// the same pointer types are used here.
pub fn key(function: &str, id: u64) -> Option<String> {
    let memory = Memory::disabled();
    let key = match function {
        SMALL_U64 => memory
            .cache_named(SMALL_U64, small_u64 as fn(u64) -> u64)
            .key(&id),
        SMALL_VEC => memory
            .cache_named(SMALL_VEC, small_vec as fn(u64) -> Vec<u32>)
            .key(&id),
        SMALL_STRING => memory
            .cache_named(SMALL_STRING, small_string as fn(u64) -> String)
            .key(&id),
        FALLIBLE => memory
            .cache_named(FALLIBLE, fallible as fn(u64) -> Result<u64, String>)
            .key(&id),
        ARRAY_COPY => memory
            .cache_named(ARRAY_COPY, array_copy as fn(u64) -> Array2<u64>)
            .key(&id),
        ARRAY_MAPPED => memory
            .cache_named(ARRAY_MAPPED, array_mapped as fn(u64) -> Array2<u64>)
            .key(&id),
        _ => return None,
    };
    key.ok().map(|k| k.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_are_one_to_sixty_four_mib() {
        for id in 0..ARRAY_IDS {
            let (r, c) = array_shape(id);
            let bytes = r * c * 8;
            assert!((1 << 19..=64 << 20).contains(&bytes), "{id}: {bytes}");
        }
    }

    #[test]
    fn a_changed_element_is_a_mismatch() {
        let mut a = array_for(0);
        assert_eq!(array_mismatch(0, a.view()), None);
        a[[3, 5]] ^= 1 << 40;
        assert!(array_mismatch(0, a.view()).is_some());
        a[[3, 5]] = 0;
        assert!(array_mismatch(0, a.view()).is_some());
    }

    #[test]
    fn keys_are_64_hex_digits_and_differ() {
        let a = key(SMALL_U64, 1).unwrap_or_default();
        let b = key(SMALL_U64, 2).unwrap_or_default();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(key("nope", 1), None);
    }
}
