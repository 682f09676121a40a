//! Property tests of the invariants memo promises: a cached call returns
//! exactly what the function returns, on a miss and on every later hit, and
//! calls with different arguments never share an entry.
//! Long runs: `cargo xtask proptest --cases 10000`.

use jobcache_memo::{Ignored, Memory};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok());
    // Each miss publishes durably (fsync): keep the everyday run short.
    ProptestConfig {
        cases: cases.unwrap_or(48),
        ..ProptestConfig::default()
    }
}

type Input = (Vec<i64>, String, Option<f64>, BTreeMap<String, u8>);

fn input() -> impl Strategy<Value = Input> {
    (
        prop::collection::vec(any::<i64>(), 0..40),
        ".{0,20}",
        any::<Option<f64>>(),
        prop::collection::btree_map(".{0,4}", any::<u8>(), 0..4),
    )
}

/// Some function of the input whose output has several shapes.
fn digest(input: &Input) -> (i64, usize, Vec<String>, Option<u64>) {
    let (numbers, text, float, map) = input;
    (
        numbers.iter().fold(0i64, |a, x| a.wrapping_add(*x)),
        text.chars().count(),
        map.keys().cloned().collect(),
        float.map(f64::to_bits),
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_a_cached_call_returns_what_the_function_returns(
        inputs in prop::collection::vec(input(), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mem = Memory::builder(dir.path()).verbose(0).journal(false).build().unwrap();
        let cached = mem.cache_named("digest", |i: &Input| digest(i));
        for input in &inputs {
            let expected = digest(input);
            prop_assert_eq!(cached.call(input), expected.clone(), "miss");
            prop_assert_eq!(cached.call(input), expected, "hit");
        }
    }

    #[test]
    fn prop_keys_are_deterministic_and_tell_arguments_apart(
        a in input(),
        b in input(),
        noise in any::<u64>(),
    ) {
        let mem = Memory::disabled();
        let f = mem.cache_named("keyed", |(i, _): (&Input, Ignored<u64>)| digest(i));
        let key_a = f.key(&(&a, Ignored(noise))).unwrap();
        prop_assert_eq!(key_a, f.key(&(&a, Ignored(noise.wrapping_add(1)))).unwrap());
        let a_bits = (a.0.clone(), a.1.clone(), a.2.map(f64::to_bits), a.3.clone());
        let b_bits = (b.0.clone(), b.1.clone(), b.2.map(f64::to_bits), b.3.clone());
        let same = a_bits == b_bits;
        prop_assert_eq!(same, key_a == f.key(&(&b, Ignored(noise))).unwrap());
    }
}
