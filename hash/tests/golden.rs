//! Golden vectors: the digests of ~50 values are pinned, so any change of the
//! canonical encoding (ENCODING.md) fails here. An intended change bumps
//! `ENCODING_VERSION` and regenerates the table with
//! `JOBCACHE_BLESS=1 cargo test -p jobcache-hash --test golden -- --nocapture`.
//!
//! The version 3 rows of long values (`*_tree`, `*_1MiB*`) were also
//! computed from ENCODING.md alone, without this crate, by
//! `tests/golden_v3.py` (Python's hashlib and the `blake3` package): its
//! output is `tests/golden_v3.txt`, and
//! `tree_vectors_match_the_independent_python_encoder` checks that the table
//! agrees with it.

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

/// `len` bytes of a pattern `tests/golden_v3.py` repeats.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

/// The values of the version 3 tree rows (also in `tests/golden_v3.py`).
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
        "ccf0c1abdda80e26187e779d791cd7d34a3801c0ef3aca835bd81cea1ebf8b9a",
    ),
    (
        "true",
        "66c25baa5caa9ab661cbc7af0e76ee0079763790c6d09c60e5a09ac09339ea48",
    ),
    (
        "false",
        "346643b8224ab7ca42215dc933ad258f5a5f72bdeea79afaa8ac08bf19d313eb",
    ),
    (
        "u8_255",
        "762884b5fb55521e0f1c612ca6548f7c6c9c744e500d6b9c79785f4e4baad8a8",
    ),
    (
        "u16_300",
        "3bad3b637d773380c8b4a79565ba0b468c6fe5d613e5321d6fd09c6916a3111f",
    ),
    (
        "u32_max",
        "d0ff12931ac2ce1513e662e7dc8af0357c641efa47207bf9886c1a1f03aee88c",
    ),
    (
        "u64_max",
        "1812d66e075b87fbadeee6fff0c4e118a51e7bc510d2d2deb7e2f171ab7f0c49",
    ),
    (
        "u128_max",
        "e24abb2ed39ad84d5e77e6de8ebcbde305384a3c8f9d54c34c2c5284e9b26ae5",
    ),
    (
        "i8_-1",
        "762884b5fb55521e0f1c612ca6548f7c6c9c744e500d6b9c79785f4e4baad8a8",
    ),
    (
        "i16_min",
        "d881630ac6a52714244435a8084add011195bb155bbf03ab391991f6bd465354",
    ),
    (
        "i32_-1",
        "66c25baa5caa9ab661cbc7af0e76ee0079763790c6d09c60e5a09ac09339ea48",
    ),
    (
        "i64_min",
        "1812d66e075b87fbadeee6fff0c4e118a51e7bc510d2d2deb7e2f171ab7f0c49",
    ),
    (
        "i128_min",
        "e24abb2ed39ad84d5e77e6de8ebcbde305384a3c8f9d54c34c2c5284e9b26ae5",
    ),
    (
        "usize_max",
        "1812d66e075b87fbadeee6fff0c4e118a51e7bc510d2d2deb7e2f171ab7f0c49",
    ),
    (
        "isize_min",
        "1812d66e075b87fbadeee6fff0c4e118a51e7bc510d2d2deb7e2f171ab7f0c49",
    ),
    (
        "f32_1.5",
        "c0f5c97504381bdbfb9a0c40173bbf7a53edaa0da02b2d16ec97707abad4df31",
    ),
    (
        "f64_0",
        "996a78facc7dd6a3da927d7b4ffc8aa5ee490e0f8946a04fd9cf9edf2dbf96d2",
    ),
    (
        "f64_-0",
        "46ce30ff6c707f5130cf9437e849cf77111692e549918ae9335a11a4d7de17ca",
    ),
    (
        "f64_nan",
        "e1adb8c881f95805bc603d6ea08c1be4a5a48475c901065e9c5f5bfbd6fb918d",
    ),
    (
        "char",
        "c61dd89d236dfed63ebe0da4fcf9093965a41ef0d09583ae5676c3df13f27b9f",
    ),
    (
        "str_empty",
        "346643b8224ab7ca42215dc933ad258f5a5f72bdeea79afaa8ac08bf19d313eb",
    ),
    (
        "string",
        "4b2ba6f262e52f8df14b5ea76d7d9b06e1fffdda046f623e764dd873223829f2",
    ),
    (
        "none",
        "346643b8224ab7ca42215dc933ad258f5a5f72bdeea79afaa8ac08bf19d313eb",
    ),
    (
        "some",
        "04acbafd5820485a42075e79077c25ee1ca91afd01298e9e5b48daebeffd754c",
    ),
    (
        "vec_u64",
        "47aa274a9a648abb449fd53d30dec532b32a387a0677a21c3ae84c0d033e3f7b",
    ),
    (
        "tuple",
        "a98c7e32e9755392f42fddd17e2e764dc142153872984aa66860e0f435fe8b3d",
    ),
    (
        "struct",
        "ebbbbaefa09e9a2cfdb724287b408c389486ed0429f043ccd94d81e5da6ac191",
    ),
    (
        "enum_unit",
        "346643b8224ab7ca42215dc933ad258f5a5f72bdeea79afaa8ac08bf19d313eb",
    ),
    (
        "enum_newtype",
        "2f0e41f0c5ddcc96ade6ed68b6ee0151cc2542dc385117edc487d1ada3243919",
    ),
    (
        "enum_tuple",
        "f002f9161060b6b615add601607a1f280c5c18d3b25bd89149dc08b5e6c3b470",
    ),
    (
        "enum_struct",
        "51c223271eb614e86a2db4274e1e067118fd03f98513666ecc5edf82510175a7",
    ),
    (
        "btreemap",
        "10b62f1b025ccebe9f682e6058d1891456ce22a114b42721a8f85cfa84cb6789",
    ),
    (
        "hashmap",
        "10b62f1b025ccebe9f682e6058d1891456ce22a114b42721a8f85cfa84cb6789",
    ),
    (
        "array1_f64",
        "dc8d98fff2d511d24d7ac5a2e4d462f5d69e65aa5f84e0279fa0c7e7396aeb7b",
    ),
    (
        "array2_f32_c",
        "4ca92eaf29870cad0e42fef91a45454a1072ea3712fd9b6c24aed707ffe30306",
    ),
    (
        "array2_f32_fortran",
        "4ca92eaf29870cad0e42fef91a45454a1072ea3712fd9b6c24aed707ffe30306",
    ),
    (
        "array1_bool",
        "695bc48050136d7dc257dfee493f9ceac87b87d08586b25da34ee2b3b136771c",
    ),
    (
        "array1_i8",
        "00aec2bd45f4d5425e0b7fd6c924349605e18dc251c439eb7f021dd4178bc1e1",
    ),
    (
        "array1_i16",
        "b996fb73869902c4fe25a49a357e1ab772a47df011e09f6360768935a3e0a40c",
    ),
    (
        "array1_i32",
        "69b0b076244b531cd614daf15f783844eede011830f2ea8bf2d0adb29d690efd",
    ),
    (
        "array1_i64",
        "d4b195b2c656372259089528e32d9f34ee2f41ccd1ea5a6ad00ee05fee36eda3",
    ),
    (
        "array1_u8",
        "dc3ff0d81a498774c92225413414e3069fb81f6d6f703c795a6ddb3304b96a3d",
    ),
    (
        "array1_u16",
        "40f652194577634365621c4b587b5761ed27b3c1986349a021fe779f6d0cb02f",
    ),
    (
        "array1_u32",
        "9496a69821bcc7511ac778f852a0041fc91886852c7245e4c0ae40203ee38a65",
    ),
    (
        "array1_u64",
        "81d47a8f2d4a078bc236fdbb8fa09aee6e745c94c2abdfdacbf271bab24de000",
    ),
    (
        "arrayd_f64",
        "bc4e271b1eb892e3f0601632a9927e8109615bbe7256ffc9f2664275d8fb7cc8",
    ),
    (
        "array3_zeros",
        "2ec373f67a368e049c1509912cda8f3a37830969d32c6b7fea8bbfb7d2e3787d",
    ),
    (
        "vec_u8_1MiB_minus_1",
        "487506344e4a160dd95008a9f90ac75e20e6061b27da74e5931f889bb959bde5",
    ),
    (
        "vec_u8_1MiB_tree",
        "35a74225ee3fdc7ec2f4899463d3a4a771e6364bc33dab3866376c3c90c66aa2",
    ),
    (
        "bytes_3MiB_plus_5_tree",
        "eed972796cd41eefb0bcd320a125b5b95cc7a264c864118db35fbbfe45428060",
    ),
    (
        "array1_f64_3MiB_tree",
        "8f0afe75967bb606d171dc2e2e340133cc004f7e64c983e03c1826688633eb12",
    ),
    (
        "array2_f64_3MiB_c_tree",
        "583c539cb2eb21a6ff93a418433f878683e6273a7448d057f420704c8dfec753",
    ),
    (
        "array2_f64_3MiB_fortran_tree",
        "583c539cb2eb21a6ff93a418433f878683e6273a7448d057f420704c8dfec753",
    ),
    (
        "raw_bytes_2MiB_plus_1_tree",
        "a39749b4afd1a41ec1357a9db3af2f847fcfb8bead621be593fdae4b122dab5b",
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
    let python = include_str!("golden_v3.txt");
    let mut checked = 0;
    for line in python.lines().filter(|l| !l.trim().is_empty()) {
        let (name, digest) = line.split_once(' ').expect("`name digest` lines");
        let pinned = GOLDEN
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} is not in the golden table"));
        assert_eq!(
            pinned.1, digest,
            "{name}: the table and golden_v3.py differ"
        );
        checked += 1;
    }
    assert_eq!(checked, long_values().len());
}
