//! Property tests: the namespace encoding cannot escape the root and is
//! injective; any payload and fields round-trip through a store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jobcache_store::StoreExt;
use jobcache_store::{
    decode_namespace, encode_namespace, DecodedNamespace, FsStore, NewEntry, Store,
};
use proptest::prelude::*;
use std::time::Duration;

/// Namespaces biased towards the characters that matter: separators, dots,
/// colons, percent signs, NUL, non-ASCII.
fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_:]{1,40}",
        "[./:%~\\\\\\x00 a-zA-Z0-9é漢-]{1,60}",
        any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
        "[a-z:]{150,400}",
    ]
}

fn is_safe(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.%~".contains(&b))
}

// Case counts follow PROPTEST_CASES (default 256), so that
// `cargo xtask proptest --cases N` scales them.
proptest! {

    #[test]
    fn prop_namespace_encoding_is_safe_and_reversible(ns in namespace()) {
        let enc = encode_namespace(&ns).unwrap();
        prop_assert!(is_safe(&enc), "{enc:?}");
        prop_assert!(enc != "." && enc != "..");
        match decode_namespace(&enc) {
            Some(DecodedNamespace::Full(back)) => prop_assert_eq!(back, ns),
            Some(DecodedNamespace::Cut) => prop_assert!(enc.contains('~') && ns.len() > 60),
            None => prop_assert!(false, "{enc:?} does not decode"),
        }
    }

    #[test]
    fn prop_namespace_encoding_is_injective(a in namespace(), b in namespace()) {
        prop_assume!(a != b);
        prop_assert_ne!(encode_namespace(&a).unwrap(), encode_namespace(&b).unwrap());
    }

    #[test]
    fn prop_near_namespaces_stay_distinct(base in "[a-z:]{1,30}", extra in "[:.%]{1,3}") {
        let other = format!("{base}{extra}");
        prop_assert_ne!(encode_namespace(&base).unwrap(), encode_namespace(&other).unwrap());
    }

    #[test]
    fn prop_decoding_arbitrary_names_never_panics(name in "[a-zA-Z0-9_.%~-]{0,40}") {
        if let Some(DecodedNamespace::Full(ns)) = decode_namespace(&name) {
            prop_assert_eq!(encode_namespace(&ns).unwrap(), name);
        }
    }
}

proptest! {
    // Each case creates a store and syncs files: a tenth of the cases.
    #![proptest_config(ProptestConfig::with_cases(ProptestConfig::default().cases / 10))]

    #[test]
    fn prop_any_payload_and_fields_round_trip(
        payload in proptest::collection::vec(any::<u8>(), 0..40_000),
        fields in proptest::collection::btree_map(".{0,10}", ".{0,200}", 0..5),
        ns in namespace(),
        k in "[0-9a-f]{64}",
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::create(dir.path()).unwrap();
        let entry = NewEntry { compute_duration: Duration::from_nanos(7), fields };
        store.publish_bytes(&ns, &k, &entry, &payload).unwrap();
        let mut found = store.get(&ns, &k, true).unwrap().found().unwrap();
        prop_assert_eq!(&*found.meta().fields, &entry.fields);
        prop_assert_eq!(found.read_to_vec().unwrap(), payload);
        prop_assert_eq!(store.namespaces().unwrap(), vec![ns]);
    }
}
