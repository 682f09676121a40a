use super::*;
use ndarray::{Array, Array1, Array2, Dimension, IxDyn};
use proptest::prelude::*;
use std::cell::Cell;
use std::collections::BTreeMap;

/// A sequence that never ends and counts how many items were asked for.
struct Endless<'a>(&'a Cell<u64>);

impl Serialize for Endless<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(None)?;
        loop {
            self.0.set(self.0.get() + 1);
            seq.serialize_element(&1.5f64)?;
            if self.0.get() > 10_000_000 {
                return seq.end();
            }
        }
    }
}

#[test]
fn arrays_show_dtype_shape_and_a_few_values() {
    let a = Array2::from_shape_fn((300, 400), |(i, j)| (i * 400 + j) as f64);
    assert_eq!(
        summarize(&a),
        "array(float64, shape=[300, 400], [0.0, 1.0, 2.0, 3.0, …])"
    );
    let small = Array1::from(vec![1i32, 2, 3]);
    assert_eq!(summarize(&small), "array(int32, shape=[3], [1, 2, 3])");
    let dynamic = Array::<f32, _>::zeros(IxDyn(&[2, 0, 5]));
    assert_eq!(summarize(&dynamic), "array(unknown, shape=[2, 0, 5], [])");
    let view = a.slice(ndarray::s![1.., ..2]);
    assert_eq!(
        summarize(&view),
        "array(float64, shape=[299, 2], [400.0, 401.0, 800.0, 801.0, …])"
    );
    let args = (&a, 3u8, "name");
    assert_eq!(
        summarize(&args),
        "(array(float64, shape=[300, 400], [0.0, 1.0, 2.0, 3.0, …]), 3, \"name\")"
    );
}

#[test]
fn arrays_of_strings_and_structs() {
    let a = Array1::from(vec!["a".to_string(), "b".repeat(100)]);
    let s = summarize(&a);
    assert!(s.starts_with("array(str, shape=[2], [\"a\", \"bbbb"), "{s}");
    let b = Array1::from(vec![(1, 2), (3, 4)]);
    assert_eq!(summarize(&b), "array(object, shape=[2], [(1, 2), (3, 4)])");
}

#[test]
fn endless_sequences_stop_early() {
    let count = Cell::new(0);
    let s = summarize(&Endless(&count));
    assert_eq!(s, "[1.5, 1.5, 1.5, 1.5, 1.5, 1.5, …]");
    assert_eq!(count.get(), 7);
    let count = Cell::new(0);
    let s = summarize(&vec![Endless(&count), Endless(&count)]);
    assert!(s.len() < 100, "{s}");
    assert_eq!(count.get(), 14);
}

#[test]
fn long_strings_and_containers_are_cut() {
    let s = summarize(&"é".repeat(1000));
    assert!(
        s.starts_with("\"éé") && s.ends_with("…\" (2000 bytes)"),
        "{s}"
    );
    let v: Vec<u32> = (0..100).collect();
    assert_eq!(summarize(&v), "[0, 1, 2, 3, 4, 5, … (100 items)]");
    let mut m = BTreeMap::new();
    m.insert("k", Some(1));
    m.insert("z", None);
    assert_eq!(summarize(&m), "{\"k\": Some(1), \"z\": None}");
    assert_eq!(summarize(&[[[[[[1]]]]]]), "(((((…)))))");
    assert_eq!(summarize(&vec![vec![vec![vec![vec![1]]]]]), "[[[[[…]]]]]");
    assert_eq!(summarize(&b"\x00\x01"[..]), "[0, 1]");
}

#[derive(serde::Serialize)]
struct Params {
    name: String,
    rate: f64,
    mode: Mode,
    unit: (),
}

#[derive(serde::Serialize)]
enum Mode {
    Fast,
    Custom { level: u8 },
}

#[test]
fn structs_and_enums() {
    let p = Params {
        name: "x".into(),
        rate: 0.5,
        mode: Mode::Fast,
        unit: (),
    };
    assert_eq!(
        summarize(&p),
        "Params { name: \"x\", rate: 0.5, mode: Fast, unit: () }"
    );
    assert_eq!(summarize(&Mode::Custom { level: 3 }), "Custom { level: 3 }");
    let a = Array1::from(vec![Mode::Fast]);
    assert_eq!(summarize(&a), "array(enum, shape=[1], [Fast])");
}

#[test]
fn a_struct_named_array_that_is_not_ndarray() {
    #[derive(serde::Serialize)]
    struct Array {
        a: u8,
        b: u8,
        c: u8,
    }
    assert_eq!(summarize(&Array { a: 1, b: 2, c: 3 }), "Array { … }");
}

/// The serde shape of jobcache-memo's `Shelved` handle.
#[derive(serde::Serialize)]
struct Shelved {
    function: String,
    key: Option<String>,
    location: Option<std::path::PathBuf>,
}

#[test]
fn shelved_handles_show_function_and_key() {
    let h = Shelved {
        function: "pipeline::generate".into(),
        key: Some("2824532dde09b0e20d8a17aca543db24ae544587".repeat(2)),
        location: Some("/tmp/jobcache-pipeline-example".into()),
    };
    assert_eq!(summarize(&(&h, 25)), "(generate@2824532d, 25)");
    let held = Shelved {
        function: "f".into(),
        key: None,
        location: None,
    };
    assert_eq!(summarize(&held), "f@unstored");
    // Another struct of that name is shown as a struct, not guessed at.
    #[derive(serde::Serialize)]
    struct Other {
        inner: Shelved2,
    }
    #[derive(serde::Serialize)]
    #[serde(rename = "Shelved")]
    struct Shelved2 {
        a: u8,
        b: u8,
        c: u8,
    }
    assert_eq!(
        summarize(&Other {
            inner: Shelved2 { a: 1, b: 2, c: 3 }
        }),
        "Other { inner: Shelved { … } }"
    );
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "\\PC{0,200}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(6, 400, 40, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..40).prop_map(serde_json::Value::from),
            prop::collection::btree_map("\\PC{0,30}", inner, 0..40)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {

    #[test]
    fn prop_summary_is_bounded_and_one_line(v in json_value(), max_len in 8usize..300) {
        let opts = SummaryOptions { max_len, ..SummaryOptions::default() };
        let s = summarize_with(&v, &opts);
        prop_assert!(s.len() <= max_len, "{} > {max_len}: {s}", s.len());
        prop_assert!(!s.contains('\n'));
    }

    #[test]
    fn prop_short_values_are_shown_whole(v in prop::collection::vec(any::<i16>(), 0..6)) {
        let s = summarize(&v);
        let expected = format!("{v:?}");
        prop_assert_eq!(s, expected);
    }

    #[test]
    fn prop_arrays_show_their_shape_and_first_values(shape in prop::collection::vec(0usize..12, 0..4)) {
        let a = Array::from_shape_fn(IxDyn(&shape), |ix| ix.slice().iter().sum::<usize>() as i64);
        let s = summarize(&a);
        let first: Vec<String> = a.iter().take(4).map(i64::to_string).collect();
        let dtype = if a.is_empty() { "unknown" } else { "int64" };
        let more = if a.len() > 4 { if a.is_empty() { "…" } else { ", …" } } else { "" };
        let expected = format!("array({dtype}, shape={shape:?}, [{}{more}])", first.join(", "));
        prop_assert_eq!(s, expected);
    }
}
