//! Golden vectors: the digests of ~40 values are pinned, so any change of the
//! canonical encoding (ENCODING.md) fails here. An intended change bumps
//! `ENCODING_VERSION` and regenerates the table with
//! `JOBCACHE_BLESS=1 cargo test -p jobcache-hash --test golden -- --nocapture`.

use jobcache_hash::{hash, Digest};
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
}

const GOLDEN: &[(&str, &str)] = &[
    (
        "unit",
        "f3b55e1b6e2d3417e4042a4e5edd8b3454369d863495b40783a4d619b0fcb00d",
    ),
    (
        "true",
        "49d8b0cf6a105073086f4a549546ad70ba373d0e4fe698b8bd582ba17385d82c",
    ),
    (
        "false",
        "0db40caa46e9814bda1119bb90e40c2a7bc321486c00cdd63a18899ef4d60629",
    ),
    (
        "u8_255",
        "b138b2aeb0e1f49f14dd5a4174b1e5996cf4cf5a8771f999fd25d4bb44502cdc",
    ),
    (
        "u16_300",
        "c6729379f7a46e123d138bad25ea49c345b21fb3213bb340955bd8bcdcfbba7f",
    ),
    (
        "u32_max",
        "091f01e1bdb6fac375f7f8dc82add18d8ca35af7b0b57bdc8aeebd2cc0deca07",
    ),
    (
        "u64_max",
        "74b8920cfd641d67ae2497d0a24e5ecd78c18be31382d891a321c21ffcac9fbd",
    ),
    (
        "u128_max",
        "fa8568bd6c81d9da05f2ce59e346a91b062d0f3f2a0c5e1defdbfaf9630a67f2",
    ),
    (
        "i8_-1",
        "b138b2aeb0e1f49f14dd5a4174b1e5996cf4cf5a8771f999fd25d4bb44502cdc",
    ),
    (
        "i16_min",
        "eadc7bec09ab139d18592503e702554e82d2ba9bdf59cb5808e2f3fce5fda9a0",
    ),
    (
        "i32_-1",
        "49d8b0cf6a105073086f4a549546ad70ba373d0e4fe698b8bd582ba17385d82c",
    ),
    (
        "i64_min",
        "74b8920cfd641d67ae2497d0a24e5ecd78c18be31382d891a321c21ffcac9fbd",
    ),
    (
        "i128_min",
        "fa8568bd6c81d9da05f2ce59e346a91b062d0f3f2a0c5e1defdbfaf9630a67f2",
    ),
    (
        "usize_max",
        "74b8920cfd641d67ae2497d0a24e5ecd78c18be31382d891a321c21ffcac9fbd",
    ),
    (
        "isize_min",
        "74b8920cfd641d67ae2497d0a24e5ecd78c18be31382d891a321c21ffcac9fbd",
    ),
    (
        "f32_1.5",
        "4657bebb3034acea2a5504b6a0043dec484a39f6efc9be87da6f234bd249e8e6",
    ),
    (
        "f64_0",
        "a085684180e1cd1a15b3f717a6d29fbc844d265518ab5a3a5b57b313c0067bb0",
    ),
    (
        "f64_-0",
        "eb20bfba2261978f25946b9107e384ce9bbc480a54cb3ca5ad2a91b832b8ac25",
    ),
    (
        "f64_nan",
        "1e3d00e37555fd4f917fc6ebf5bfa81be3b15a9579bd1ccd446112ceeceb8b38",
    ),
    (
        "char",
        "4b5b7271951e4222822ce16cb468bd9e041ae0d95b2be6492eb7a34e5ff64f7a",
    ),
    (
        "str_empty",
        "0db40caa46e9814bda1119bb90e40c2a7bc321486c00cdd63a18899ef4d60629",
    ),
    (
        "string",
        "785dba2c92925dffcd15c328cdca6758a66d007d934b103feae0ff7506b41a88",
    ),
    (
        "none",
        "0db40caa46e9814bda1119bb90e40c2a7bc321486c00cdd63a18899ef4d60629",
    ),
    (
        "some",
        "f653aaaef82436ac50e1fd12638c8699b7a76aaaca2c92e1531b27383b14ddf4",
    ),
    (
        "vec_u64",
        "602e803f82470b3630a02605af95bbd2b714389f888fcbb7105c3b615c3cc9b0",
    ),
    (
        "tuple",
        "558e99fb6c425395d39e5a280ff03d42d69ab298ad2d8e1600d95441e34663cc",
    ),
    (
        "struct",
        "bdcbfd71c6124e143bee20ad6a559bb5a395f2e2c399cc2819b69d25553b0994",
    ),
    (
        "enum_unit",
        "0db40caa46e9814bda1119bb90e40c2a7bc321486c00cdd63a18899ef4d60629",
    ),
    (
        "enum_newtype",
        "5a14d5700576e0c08d6725c49933a1da792f87642ccbbde8b44e187186af9627",
    ),
    (
        "enum_tuple",
        "473ffc94266ebc4e63400ccf45aa14f8589aa78abcea58e98753d8313ae591d6",
    ),
    (
        "enum_struct",
        "8382a22c95e884aab469c4a36d265b10be897ec1ae9588409f62d39ece3f3971",
    ),
    (
        "btreemap",
        "26e75b2f7987f8dbc2311abd2ab1c209ddb264e02c1e2fbd34228a8c934ccedf",
    ),
    (
        "hashmap",
        "26e75b2f7987f8dbc2311abd2ab1c209ddb264e02c1e2fbd34228a8c934ccedf",
    ),
    (
        "array1_f64",
        "f0e85262c2dcece7b697b800086c2927223d6600be531f23d1a921f7fac7e93c",
    ),
    (
        "array2_f32_c",
        "ae4a9be7102d623ab2b69418da17c6beba1e7f6dbf956a5df1e7de8cff647cd3",
    ),
    (
        "array2_f32_fortran",
        "ae4a9be7102d623ab2b69418da17c6beba1e7f6dbf956a5df1e7de8cff647cd3",
    ),
    (
        "array1_bool",
        "a4668e5280f6c1b5f2933648aeccc8d438fbeac1973d3ebca7c2095b8ebf69bc",
    ),
    (
        "array1_i8",
        "046f50bf2083950d5f2edfdce45b5f0883d739f15dbe213fa4f3ddb2ce530920",
    ),
    (
        "array1_i16",
        "dcd7efcc84bd368def1a2377f91827b0865065487d4b5aeb0f7b9dae8b9d7829",
    ),
    (
        "array1_i32",
        "8ccdfef93e83b7adcf5e2029d7c8bc30e156a44efc1a90da4d15fcc35ef13b7f",
    ),
    (
        "array1_i64",
        "6ae8c4d5ed0f33a93137a2356a3020fe23fb90f90c3b217e2046ae0c88b5bdaa",
    ),
    (
        "array1_u8",
        "1b2c42ce725ce9595f4cd400d806884ea8bcf3230a81161ebdda4453af67b272",
    ),
    (
        "array1_u16",
        "9c8891761abe1e474f23a3ededa8e96b276a312c036cf16b043d478a2f35b16c",
    ),
    (
        "array1_u32",
        "1b25bc65799f282842a076bf66f8fb190b05306ee3eae9ea6207213ca77ddc78",
    ),
    (
        "array1_u64",
        "9bc499134eaef5204c5dea84b1e44c6569d14b9d95cd10c3e13b6e194cab1c17",
    ),
    (
        "arrayd_f64",
        "7afd3f8d9f2cc77b0c995494b2875bd1154c73e81d6cccde4c51b3cf0ba1d461",
    ),
    (
        "array3_zeros",
        "6a4e99d93c839c47c6abdcf29fec650efa7f79613a6c4cd148cbaf8255cf2124",
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
    assert_eq!(by_name["btreemap"], by_name["hashmap"]);
    assert_ne!(
        by_name["f64_0"], by_name["f64_-0"],
        "floats hash by bit pattern"
    );
}
