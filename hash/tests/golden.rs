//! Golden vectors: the digests of ~50 values are pinned, so any change of the
//! canonical encoding (ENCODING.md) fails here. An intended change bumps
//! `ENCODING_VERSION` and regenerates the table with
//! `JOBCACHE_BLESS=1 cargo test -p jobcache-hash --test golden -- --nocapture`.
//!
//! The version 2 rows of long values (`*_tree`, `*_1MiB*`) were also
//! computed from ENCODING.md alone, without this crate, by
//! `tests/golden_v2.py` (Python's hashlib): its output is `tests/golden_v2.txt`,
//! and `tree_vectors_match_the_independent_python_encoder` checks that the
//! table agrees with it.

use jobcache_hash::{hash, Digest, Hasher, TREE_THRESHOLD};
use ndarray::{arr1, arr2, Array, Array2, ArrayD, IxDyn, ShapeBuilder};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Serialize)]
struct Params {
    name: String,
    alpha: f64,
    steps: Vec<u32>,
    inner: Inner,
}

#[derive(Serialize)]
struct Inner {
    flag: bool,
    label: Option<&'static str>,
}

#[derive(Serialize)]
enum Mode {
    Fast,
    Scaled(f32),
    Window(u16, u16),
    Custom { order: i8, name: &'static str },
}

fn d<T: Serialize + ?Sized>(value: &T) -> Digest {
    hash(value).expect("golden values serialize")
}

/// A byte string serialized with `serialize_bytes` (not as a sequence).
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

/// `len` bytes of a pattern `tests/golden_v2.py` repeats.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

/// The values of the version 2 tree rows (also in `tests/golden_v2.py`).
fn long_values() -> Vec<(&'static str, Digest)> {
    let mib = TREE_THRESHOLD;
    // 3 MiB of f64, then the same logical elements in a Fortran-order 2-D
    // array (as its C-order twin).
    let floats: ndarray::Array1<f64> = (0..3 * mib / 8).map(|i| i as f64 * 0.25).collect();
    let c2: Array2<f64> = floats
        .clone()
        .into_shape_with_order((768, 512))
        .expect("shape fits");
    let mut f2 = Array2::<f64>::zeros((768, 512).f());
    f2.assign(&c2);
    let raw = {
        let mut h = Hasher::new();
        h.update_bytes(&pattern(2 * mib + 1));
        h.finalize()
    };
    vec![
        // varint(len) is 3 bytes here: encodings of 1 MiB - 1 and 1 MiB.
        ("vec_u8_1MiB_minus_1", d(&pattern(mib - 4))),
        ("vec_u8_1MiB_tree", d(&pattern(mib - 3))),
        ("bytes_3MiB_plus_5_tree", d(&Bytes(pattern(3 * mib + 5)))),
        ("array1_f64_3MiB_tree", d(&floats)),
        ("array2_f64_3MiB_c_tree", d(&c2)),
        ("array2_f64_3MiB_fortran_tree", d(&f2)),
        ("raw_bytes_2MiB_plus_1_tree", raw),
    ]
}

fn values() -> Vec<(&'static str, Digest)> {
    let fortran: Array2<f32> = {
        let mut a = Array2::<f32>::zeros((2, 3).f());
        a.assign(&arr2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]));
        a
    };
    let map: BTreeMap<&str, u64> = [("b", 2), ("a", 1), ("c", 3)].into_iter().collect();
    let hash_map: HashMap<&str, u64> = map.iter().map(|(k, v)| (*k, *v)).collect();
    vec![
        ("unit", d(&())),
        ("true", d(&true)),
        ("false", d(&false)),
        ("u8_255", d(&255u8)),
        ("u16_300", d(&300u16)),
        ("u32_max", d(&u32::MAX)),
        ("u64_max", d(&u64::MAX)),
        ("u128_max", d(&u128::MAX)),
        ("i8_-1", d(&-1i8)),
        ("i16_min", d(&i16::MIN)),
        ("i32_-1", d(&-1i32)),
        ("i64_min", d(&i64::MIN)),
        ("i128_min", d(&i128::MIN)),
        ("usize_max", d(&usize::MAX)),
        ("isize_min", d(&isize::MIN)),
        ("f32_1.5", d(&1.5f32)),
        ("f64_0", d(&0.0f64)),
        ("f64_-0", d(&-0.0f64)),
        ("f64_nan", d(&f64::NAN)),
        ("char", d(&'é')),
        ("str_empty", d("")),
        ("string", d(&"hello, world".to_string())),
        ("none", d(&Option::<u8>::None)),
        ("some", d(&Some(1u8))),
        ("vec_u64", d(&vec![1u64, 2, 3])),
        ("tuple", d(&(1u8, "two", 3.0f64))),
        (
            "struct",
            d(&Params {
                name: "fit".into(),
                alpha: 0.5,
                steps: vec![10, 20],
                inner: Inner {
                    flag: true,
                    label: Some("x"),
                },
            }),
        ),
        ("enum_unit", d(&Mode::Fast)),
        ("enum_newtype", d(&Mode::Scaled(2.5))),
        ("enum_tuple", d(&Mode::Window(3, 4))),
        (
            "enum_struct",
            d(&Mode::Custom {
                order: -2,
                name: "c",
            }),
        ),
        ("btreemap", d(&map)),
        ("hashmap", d(&hash_map)),
        ("array1_f64", d(&arr1(&[1.0f64, 2.0, 3.0]))),
        (
            "array2_f32_c",
            d(&arr2(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]])),
        ),
        ("array2_f32_fortran", d(&fortran)),
        ("array1_bool", d(&arr1(&[true, false]))),
        ("array1_i8", d(&arr1(&[-1i8, 0, 1]))),
        ("array1_i16", d(&arr1(&[-300i16, 300]))),
        ("array1_i32", d(&arr1(&[i32::MIN, i32::MAX]))),
        ("array1_i64", d(&arr1(&[i64::MIN, i64::MAX]))),
        ("array1_u8", d(&arr1(&[0u8, 255]))),
        ("array1_u16", d(&arr1(&[u16::MAX]))),
        ("array1_u32", d(&arr1(&[u32::MAX]))),
        ("array1_u64", d(&arr1(&[u64::MAX]))),
        (
            "arrayd_f64",
            d(
                &ArrayD::<f64>::from_shape_vec(IxDyn(&[2, 1, 2]), vec![1.0, 2.0, 3.0, 4.0])
                    .expect("shape fits"),
            ),
        ),
        ("array3_zeros", d(&Array::<f64, _>::zeros((2, 0, 3)))),
    ]
    .into_iter()
    .chain(long_values())
    .collect()
}

const GOLDEN: &[(&str, &str)] = &[
    (
        "unit",
        "9d263433b6b3baf52040d0041220265cbdbe4840acf769cd8171c6636aef197d",
    ),
    (
        "true",
        "8087505b8ec3f6f7d09eea72f37eb4d30c84c88d65a38d12487f6b838cafc40d",
    ),
    (
        "false",
        "3f9c8f48d8916960117f079205d29dbb8618cde601ba40e8c9d0e5cc39764fb9",
    ),
    (
        "u8_255",
        "ef2bd111b113bd978132007482dd28482620514cc82c7637487eb68503786980",
    ),
    (
        "u16_300",
        "334559dac12504282febf5889f40eed8972fd7d49d7824ed373010cd97b19221",
    ),
    (
        "u32_max",
        "a407fbab4ae3346765fa9aeddca71461c31b3c1f3dd40a77f7fa02a279e53790",
    ),
    (
        "u64_max",
        "db11d0431caa9307201cbde64dae61b69c0e580feb1d635dbc5dfe9bb8964175",
    ),
    (
        "u128_max",
        "0c437b75d3faaf1b7d54d33be43ec22b8f97a183f3df7eab564e25f5b89a40ac",
    ),
    (
        "i8_-1",
        "ef2bd111b113bd978132007482dd28482620514cc82c7637487eb68503786980",
    ),
    (
        "i16_min",
        "39ea9809dad20c311b74d0ec57ec8dfeb45bc1ae9c8bfeb6036b218329ee975e",
    ),
    (
        "i32_-1",
        "8087505b8ec3f6f7d09eea72f37eb4d30c84c88d65a38d12487f6b838cafc40d",
    ),
    (
        "i64_min",
        "db11d0431caa9307201cbde64dae61b69c0e580feb1d635dbc5dfe9bb8964175",
    ),
    (
        "i128_min",
        "0c437b75d3faaf1b7d54d33be43ec22b8f97a183f3df7eab564e25f5b89a40ac",
    ),
    (
        "usize_max",
        "db11d0431caa9307201cbde64dae61b69c0e580feb1d635dbc5dfe9bb8964175",
    ),
    (
        "isize_min",
        "db11d0431caa9307201cbde64dae61b69c0e580feb1d635dbc5dfe9bb8964175",
    ),
    (
        "f32_1.5",
        "b953f5190952ee2ef6350540947d6de97f802885c6ba151a0c11b18c25ce4c92",
    ),
    (
        "f64_0",
        "ecc8422f1c05cc36f036fb20d7d8cf80a8778351bee4fb9ad1496ef92c8b2fd8",
    ),
    (
        "f64_-0",
        "84bf351956f1d978c5b1bc813ea60d18be6123afb3787745ba8db5911e8def27",
    ),
    (
        "f64_nan",
        "52f1d0c493c1cd4730db1ef5f742406f8ef03421e8827cc8d1f6ba591bd4e2ac",
    ),
    (
        "char",
        "f7ed59a71026fc224e9b3f4b432d0ee15b884922bb5a88afe4b40e39d1427ed6",
    ),
    (
        "str_empty",
        "3f9c8f48d8916960117f079205d29dbb8618cde601ba40e8c9d0e5cc39764fb9",
    ),
    (
        "string",
        "4923196e866085cbcd40620fba18dc352f7e86cd8317685011bc4d92d1efd60c",
    ),
    (
        "none",
        "3f9c8f48d8916960117f079205d29dbb8618cde601ba40e8c9d0e5cc39764fb9",
    ),
    (
        "some",
        "ba650a59fdc32f9c55e51412584e62866e98dae913eb72999bc274f2b6e44932",
    ),
    (
        "vec_u64",
        "52d7c75b1b85075f9e15cb6e664f9e4a27480ef52c6df1ddf10f41143699ce98",
    ),
    (
        "tuple",
        "ca5e139948d5a782dc7463654dbec76ca6317a3caa3861f428cab8ae3bab47fc",
    ),
    (
        "struct",
        "189d448daaae7a015e7043d0f0fe643d94ae9694660acec7191436445239d321",
    ),
    (
        "enum_unit",
        "3f9c8f48d8916960117f079205d29dbb8618cde601ba40e8c9d0e5cc39764fb9",
    ),
    (
        "enum_newtype",
        "b1ecae81703bebb54db3218ecc37b11188f4623ec95204d053369dafba010ff8",
    ),
    (
        "enum_tuple",
        "1b2958ff3d69dda8ac4ed048901ca661a8a93a0e46a4f57c93306fac7844273a",
    ),
    (
        "enum_struct",
        "e2073216cc06be4fb5afdf05f71a95a6800f557d9c4e6c32b7827ee5130e8f32",
    ),
    (
        "btreemap",
        "7eae4bec33f9f3379582e312ef2880eaef08f6a189374d633f8b52257c72d29c",
    ),
    (
        "hashmap",
        "7eae4bec33f9f3379582e312ef2880eaef08f6a189374d633f8b52257c72d29c",
    ),
    (
        "array1_f64",
        "029d3340ce0fc6d25a3ce3f163111f235c835415a66d0ff35aa5f9e497a7adc7",
    ),
    (
        "array2_f32_c",
        "a3cd961cd7b8563f8562642040db0c8ebb1dbcce7b1493240adadf727c573b45",
    ),
    (
        "array2_f32_fortran",
        "a3cd961cd7b8563f8562642040db0c8ebb1dbcce7b1493240adadf727c573b45",
    ),
    (
        "array1_bool",
        "ef1433e34fe50238de81673a75c5c498cf86f9d62bd785cea8322ac3a96372b6",
    ),
    (
        "array1_i8",
        "c00570cbaab1ab61e99f314ed340e783377f01f4a3d0e8e73e2ccd7b2ed7ad9b",
    ),
    (
        "array1_i16",
        "271c1450fd3c38334017faa3a3fe4936ab2ef4fb8095008bebca34be9ea1a00e",
    ),
    (
        "array1_i32",
        "ffb803e0114adf1ba484c0146f20a6678d2fffe8b08a4f7f5e9b195cd70da259",
    ),
    (
        "array1_i64",
        "8bf423eb34e4f03236f09fe01ae8e34d8a3064c6f7a9f79248778313af10c83b",
    ),
    (
        "array1_u8",
        "54bacf4572b6f608f90d29c6283c98841e8cd84a4531c4ee45a1f99ace583370",
    ),
    (
        "array1_u16",
        "7f9e10f0a0ac5a49dced331e20c26b2ee76191ac9c6634788567ca0775f3b62b",
    ),
    (
        "array1_u32",
        "7f793493938060f8253a12d3dab3adb092c697dae299477545400944a95e20bb",
    ),
    (
        "array1_u64",
        "4737a3849059d84e326ccd90de898c3256f50d4414373017b9a14947e6095c14",
    ),
    (
        "arrayd_f64",
        "28a025106ace5708232e7e1c8b9661621fa3d03677e4876ce3711370408d9a0b",
    ),
    (
        "array3_zeros",
        "64c4298a251e2194b6c44e832d091cc1bd8ea6e5d6eb95179467e4bd6926e7f6",
    ),
    (
        "vec_u8_1MiB_minus_1",
        "91fc475d7121e37280c67f0967384850078d74bf94c3a79ff9a87a19d5f2b6f6",
    ),
    (
        "vec_u8_1MiB_tree",
        "4f858b88b27398f7248279e33d2218527b698a9a6f7737b67135974cb190b98a",
    ),
    (
        "bytes_3MiB_plus_5_tree",
        "3b0fb26685f5c6cd4396344a815101a38cd8bebcc43052551fe46fe7b3881334",
    ),
    (
        "array1_f64_3MiB_tree",
        "91e905ad468a0baea7ad1aed9c81aeeede23a16c54fa7104f5c908b3d5d9512c",
    ),
    (
        "array2_f64_3MiB_c_tree",
        "b081e0fd9c8d2b88c1b3d4f1688b545b2990468a15a0e245bd69c9828712d1f9",
    ),
    (
        "array2_f64_3MiB_fortran_tree",
        "b081e0fd9c8d2b88c1b3d4f1688b545b2990468a15a0e245bd69c9828712d1f9",
    ),
    (
        "raw_bytes_2MiB_plus_1_tree",
        "06de082ae60b81ca5647f2a693272fcec886ef08f3a600518de1101418961ce5",
    ),
];

#[test]
fn digests_match_the_pinned_vectors() {
    let values = values();
    if std::env::var_os("JOBCACHE_BLESS").is_some() {
        for (name, digest) in &values {
            println!("    (\"{name}\", \"{digest}\"),");
        }
        return;
    }
    assert_eq!(
        values.len(),
        GOLDEN.len(),
        "every golden value has a pinned digest"
    );
    for ((name, digest), (pinned_name, pinned)) in values.iter().zip(GOLDEN) {
        assert_eq!(name, pinned_name);
        assert_eq!(&digest.to_string(), pinned, "digest of `{name}` changed");
    }
}

#[test]
fn layout_and_map_order_do_not_change_digests() {
    let by_name: HashMap<&str, Digest> = values().into_iter().collect();
    assert_eq!(by_name["array2_f32_c"], by_name["array2_f32_fortran"]);
    assert_eq!(
        by_name["array2_f64_3MiB_c_tree"],
        by_name["array2_f64_3MiB_fortran_tree"]
    );
    assert_eq!(by_name["btreemap"], by_name["hashmap"]);
    assert_ne!(
        by_name["f64_0"], by_name["f64_-0"],
        "floats hash by bit pattern"
    );
}

#[test]
fn tree_vectors_match_the_independent_python_encoder() {
    let python = include_str!("golden_v2.txt");
    let mut checked = 0;
    for line in python.lines().filter(|l| !l.trim().is_empty()) {
        let (name, digest) = line.split_once(' ').expect("`name digest` lines");
        let pinned = GOLDEN
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} is not in the golden table"));
        assert_eq!(
            pinned.1, digest,
            "{name}: the table and golden_v2.py differ"
        );
        checked += 1;
    }
    assert_eq!(checked, long_values().len());
}
