//! `.npz` archives and arrays of unknown dtype (issue 18): NumPy-written
//! fixtures read with the right values, our archives loaded by NumPy (when
//! Python with NumPy is available), hostile archives refused cleanly, and
//! property tests (round trips of every dtype, no panic on any bytes).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::config;
use jobcache_persist::npy::{self, AnyArray};
use jobcache_persist::npz::{self, Compression, NpzLimits, NpzReader, NpzWriter};
use jobcache_persist::{DType, Error};
use ndarray::{
    array, Array, Array1, Array2, ArrayD, Dimension, Ix0, Ix1, Ix2, IxDyn, ShapeBuilder,
};
use proptest::prelude::*;
use serde_json::{json, Value};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/npz")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The values of an array in logical (C) order, as JSON, as `make.py`
/// records them.
fn values(a: &AnyArray) -> Vec<Value> {
    fn each<T: Copy>(a: &ArrayD<T>) -> Vec<Value>
    where
        Value: From<T>,
    {
        a.iter().map(|&x| Value::from(x)).collect()
    }
    match a {
        AnyArray::Bool(a) => each(a),
        AnyArray::I8(a) => each(a),
        AnyArray::I16(a) => each(a),
        AnyArray::I32(a) => each(a),
        AnyArray::I64(a) => each(a),
        AnyArray::U8(a) => each(a),
        AnyArray::U16(a) => each(a),
        AnyArray::U32(a) => each(a),
        AnyArray::U64(a) => each(a),
        AnyArray::F32(a) => a.iter().map(|&x| json!(f64::from(x))).collect(),
        AnyArray::F64(a) => each(a),
        other => panic!("a dtype this test does not know: {:?}", other.dtype()),
    }
}

/// Whether the array is held in Fortran order (and not also C order).
fn fortran(a: &AnyArray) -> bool {
    fn f<T>(a: &ArrayD<T>) -> bool {
        a.ndim() > 1 && !a.is_standard_layout() && a.t().is_standard_layout()
    }
    match a {
        AnyArray::Bool(a) => f(a),
        AnyArray::I8(a) => f(a),
        AnyArray::I16(a) => f(a),
        AnyArray::I32(a) => f(a),
        AnyArray::I64(a) => f(a),
        AnyArray::U8(a) => f(a),
        AnyArray::U16(a) => f(a),
        AnyArray::U32(a) => f(a),
        AnyArray::U64(a) => f(a),
        AnyArray::F32(a) => f(a),
        AnyArray::F64(a) => f(a),
        _ => false,
    }
}

/// A manifest entry for an array, as `make.py` writes them.
fn describe(a: &AnyArray) -> Value {
    json!({
        "dtype": a.dtype().name(),
        "shape": a.shape(),
        "fortran": fortran(a),
        "values": values(a),
    })
}

fn check_against(
    expected: &serde_json::Map<String, Value>,
    read: &[(String, AnyArray)],
    what: &str,
) {
    let names: Vec<&String> = read.iter().map(|(n, _)| n).collect();
    let mut want: Vec<&String> = expected.keys().collect();
    let mut got = names.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want, "{what}: names");
    for (name, array) in read {
        assert_eq!(&describe(array), &expected[name], "{what}: {name}");
    }
}

#[test]
fn numpy_fixtures_read_with_their_values_orders_and_types() {
    let manifest = manifest();
    let archives = manifest["archives"].as_object().unwrap();
    assert_eq!(archives.len(), 4);
    for (file, expected) in archives {
        let expected = expected.as_object().unwrap();
        let path = fixtures().join(file);
        // From the file (stored members by positional reads).
        let mut npz = NpzReader::open(&path).unwrap();
        assert_eq!(npz.len(), expected.len());
        let all = npz.read_all().unwrap();
        check_against(expected, &all, file);
        // From any reader (every member streamed).
        let bytes = std::fs::read(&path).unwrap();
        let streamed = NpzReader::new(Cursor::new(bytes))
            .unwrap()
            .read_all()
            .unwrap();
        assert_eq!(streamed, all, "{file}: streamed");
    }
}

#[test]
fn numpy_fixtures_read_by_name_typed_and_viewed() {
    for file in ["savez.npz", "savez_compressed.npz"] {
        let mut npz = NpzReader::open(fixtures().join(file)).unwrap();
        let c = npz.by_name::<i32, Ix2>("i32_c").unwrap();
        assert_eq!(
            c,
            Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as i32 - 5)
        );
        let f = npz.by_name::<i32, Ix2>("i32_f.npy").unwrap();
        assert_eq!(f, c);
        assert!(f.t().is_standard_layout());
        assert_eq!(npz.by_name::<f64, Ix0>("f64_0d").unwrap()[()], 2.5);
        assert_eq!(
            npz.by_name::<f32, Ix2>("f32_empty").unwrap().shape(),
            &[0, 3]
        );
        assert_eq!(npz.by_name::<u64, Ix1>("u64_big").unwrap()[1], u64::MAX);
        let be = npz.by_name::<f64, Ix2>("f64_be").unwrap();
        assert_eq!(be[[1, 2]], 0.0);
        let err = npz.by_name::<f64, Ix2>("i32_c").unwrap_err();
        assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
        assert!(err.to_string().contains("i32_c.npy"), "{err}");
        let err = npz.by_name::<f64, Ix2>("nope").unwrap_err();
        assert!(matches!(err, Error::NoSuchArray { .. }), "{err}");
        assert!(err.to_string().contains("f64_0d"), "{err}");
        // NumPy does not align members: views copy when they must, and
        // agree with the copying read either way.
        for name in ["f64_long", "u8_c", "f64_be", "f32_empty"] {
            let any = npz.read_any(name).unwrap();
            // SAFETY: nothing modifies the fixtures.
            let view = unsafe { npz.view::<f64, IxDyn>(name) };
            match any {
                AnyArray::F64(a) => assert_eq!(view.unwrap().view(), a.view()),
                _ => assert!(matches!(view, Err(Error::TypeMismatch { .. }))),
            }
        }
    }
}

/// Arrays of every dtype, both orders, 0-d and empty: what our archives
/// must carry to NumPy.
fn zoo() -> Vec<(String, AnyArray)> {
    let grid = |i: usize, j: usize| (i * 4 + j) as i64 - 5;
    let mut out: Vec<(String, AnyArray)> = Vec::new();
    for fortran in [false, true] {
        let shape = (3, 4).set_f(fortran);
        let order = if fortran { "f" } else { "c" };
        let arrays: Vec<AnyArray> = vec![
            Array2::from_shape_fn(shape, |(i, j)| grid(i, j) % 3 == 0).into(),
            Array2::from_shape_fn(shape, |(i, j)| grid(i, j) as i8).into(),
            Array2::from_shape_fn(shape, |(i, j)| grid(i, j) as i16 * 1000).into(),
            Array2::from_shape_fn(shape, |(i, j)| grid(i, j) as i32 * 100_000).into(),
            Array2::from_shape_fn(shape, |(i, j)| grid(i, j) << 40).into(),
            Array2::from_shape_fn(shape, |(i, j)| (i * 4 + j) as u8 * 20).into(),
            Array2::from_shape_fn(shape, |(i, j)| (i * 4 + j) as u16 * 5000).into(),
            Array2::from_shape_fn(shape, |(i, j)| (i * 4 + j) as u32 * 300_000_000).into(),
            Array2::from_shape_fn(shape, |(i, j)| u64::MAX - (i * 4 + j) as u64).into(),
            Array2::from_shape_fn(shape, |(i, j)| grid(i, j) as f32 / 3.0).into(),
            Array2::from_shape_fn(shape, |(i, j)| grid(i, j) as f64 / 7.0).into(),
        ];
        for a in arrays {
            out.push((format!("{}_{order}", a.dtype().name()), a));
        }
    }
    out.push(("f64_0d".into(), Array::from_elem((), -0.5).into()));
    out.push(("u16_0d".into(), Array::from_elem((), 7u16).into()));
    out.push(("f32_empty".into(), Array2::<f32>::zeros((0, 3)).into()));
    out.push(("bool_empty".into(), Array1::<bool>::from(vec![]).into()));
    out.push((
        "i16_3d_f".into(),
        Array::from_shape_fn((2, 3, 4).f(), |(i, j, k)| (i * 12 + j * 4 + k) as i16).into(),
    ));
    out
}

fn write_zoo(path: &Path, compression: Compression) -> Vec<(String, AnyArray)> {
    let zoo = zoo();
    npz::write_file(path, compression, |w| {
        for (name, a) in &zoo {
            w.add_any(name, a)?;
        }
        Ok(())
    })
    .unwrap();
    zoo
}

#[test]
fn our_archives_round_trip_with_orders_and_alignment() {
    let dir = tempfile::tempdir().unwrap();
    for compression in [Compression::Stored, Compression::Deflated] {
        let path = dir.path().join("zoo.npz");
        let zoo = write_zoo(&path, compression);
        let mut npz = NpzReader::open(&path).unwrap();
        let names: Vec<String> = zoo.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(npz.names(), names);
        let all = npz.read_all().unwrap();
        assert_eq!(all, zoo);
        for (name, a) in &all {
            assert_eq!(fortran(a), name.ends_with("_f"), "{name}");
        }
        // Stored members are aligned, so they map; compressed ones copy.
        // SAFETY: nothing modifies the test's archive.
        let view = unsafe { npz.view::<f64, Ix2>("f64_f") }.unwrap();
        assert_eq!(view.is_mapped(), compression == Compression::Stored);
        assert_eq!(AnyArray::from(view.view().to_owned()), all[21].1);
    }
}

#[test]
fn writer_refuses_bad_and_duplicate_names() {
    let mut w = NpzWriter::new(Cursor::new(Vec::new()), Compression::Stored);
    w.add("a", &array![1.0]).unwrap();
    let err = w.add("a", &array![2.0]).unwrap_err();
    assert!(matches!(err, Error::BadName { .. }), "{err}");
    let err = w.add("", &array![2.0]).unwrap_err();
    assert!(matches!(err, Error::BadName { .. }), "{err}");
    let bytes = w.finish().unwrap().into_inner();
    let mut npz = NpzReader::new(Cursor::new(bytes)).unwrap();
    assert_eq!(npz.by_name::<f64, Ix1>("a").unwrap(), array![1.0]);
}

/// A Python with NumPy: the bench virtualenv (`target/bench-venv`, which
/// `cargo xtask bench` creates), else `python3` if it has NumPy.
fn python_with_numpy() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-venv/bin/python");
    [venv, PathBuf::from("python3")].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import numpy"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn numpy_loads_our_archives_with_the_same_values() {
    let Some(python) = python_with_numpy() else {
        eprintln!("skipped: no Python with NumPy (run `cargo xtask bench persist` once to create target/bench-venv)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for compression in [Compression::Stored, Compression::Deflated] {
        let path = dir.path().join("zoo.npz");
        let zoo = write_zoo(&path, compression);
        let manifest: serde_json::Map<String, Value> =
            zoo.iter().map(|(n, a)| (n.clone(), describe(a))).collect();
        let mpath = dir.path().join("zoo.json");
        std::fs::write(&mpath, serde_json::to_string(&manifest).unwrap()).unwrap();
        let out = Command::new(&python)
            .arg(fixtures().join("check.py"))
            .args([&path, &mpath])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{compression:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.trim(), "ok");
    }
}

#[test]
fn read_any_reads_every_npy_fixture_as_read_does() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/npy");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let any = npy::read_any(&path).unwrap();
        let header = npy::read_header(&path).unwrap();
        assert_eq!(any.dtype(), header.dtype, "{}", path.display());
        let shape: Vec<usize> = header.shape.iter().map(|&d| d as usize).collect();
        assert_eq!(any.shape(), &shape[..]);
        let streamed = npy::from_reader_any(&mut std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(streamed, any);
        if any.dtype() == DType::F64 {
            assert_eq!(
                any.clone().into_f64().unwrap(),
                npy::read::<f64, IxDyn>(&path).unwrap()
            );
        }
        // SAFETY: nothing modifies the fixtures.
        match unsafe { npy::map_any(&path) } {
            Ok(m) => {
                assert_eq!(m.to_owned(), any);
                assert_eq!(m.dtype(), any.dtype());
            }
            Err(e) => assert!(header.big_endian, "{}: {e}", path.display()),
        }
        seen += 1;
    }
    assert!(seen > 90);
}

// --- hostile archives -----------------------------------------------------

/// An archive with one deflated member `name` holding `bytes` as given.
fn raw_archive(name: &str, bytes: &[u8], method: zip::CompressionMethod) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    w.start_file(name, options).unwrap();
    w.write_all(bytes).unwrap();
    w.finish().unwrap().into_inner()
}

/// A `.npy` header (as NumPy writes it) for a `u8` array of `n` elements.
fn u8_header(n: u64) -> Vec<u8> {
    let dict = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': ({n},), }}");
    let mut text = dict.into_bytes();
    while (10 + text.len() + 1) % 64 != 0 {
        text.push(b' ');
    }
    text.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(text.len() as u16).to_le_bytes());
    out.extend_from_slice(&text);
    out
}

#[test]
fn zip_bombs_and_member_counts_are_refused_by_limits() {
    let small = NpzLimits::default().with_max_inflated(1 << 20);
    // A member that declares (in the zip directory) 64 MiB of zeros.
    let zeros = Array1::<u8>::zeros(64 << 20);
    let mut w = NpzWriter::new(Cursor::new(Vec::new()), Compression::Deflated);
    w.add("zeros", &zeros).unwrap();
    let bomb = w.finish().unwrap().into_inner();
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let mut npz = NpzReader::with_limits(Cursor::new(&bomb), small).unwrap();
    let err = npz.read_any("zeros").unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
    assert!(err.to_string().contains("zeros.npy"), "{err}");
    // Within the default limits it reads.
    let mut npz = NpzReader::new(Cursor::new(&bomb)).unwrap();
    assert_eq!(npz.by_name::<u8, Ix1>("zeros").unwrap().len(), 64 << 20);

    // A member whose zip sizes are small but whose .npy header claims 8 GiB.
    let mut lying = u8_header(8 << 30);
    lying.extend_from_slice(&[0u8; 4096]);
    let archive = raw_archive("big.npy", &lying, zip::CompressionMethod::Deflated);
    let mut npz = NpzReader::new(Cursor::new(&archive)).unwrap();
    let err = npz.read_any("big").unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
    // Past the limit, the claim must still match the member's real size.
    let huge = NpzLimits::default().with_max_inflated(u64::MAX);
    let mut npz = NpzReader::with_limits(Cursor::new(&archive), huge).unwrap();
    let err = npz.read_any("big").unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
    // The same lie in a stored member.
    let archive = raw_archive("big.npy", &lying, zip::CompressionMethod::Stored);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lying.npz");
    std::fs::write(&path, &archive).unwrap();
    let err = NpzReader::open(&path).unwrap().read_any("big").unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");

    // Member counts.
    let mut w = NpzWriter::new(Cursor::new(Vec::new()), Compression::Stored);
    for i in 0..5 {
        w.add(&format!("a{i}"), &array![i]).unwrap();
    }
    let five = w.finish().unwrap().into_inner();
    let few = NpzLimits::default().with_max_members(4);
    let err = NpzReader::with_limits(Cursor::new(&five), few).unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
}

#[test]
fn damaged_archives_are_clean_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npz");
    let a = Array1::from_shape_fn(1000, |i| i as f64);
    npz::write_file(&path, Compression::Stored, |w| w.add("a", &a)).unwrap();
    let good = std::fs::read(&path).unwrap();
    // A flipped data byte: the CRC-32 catches it on the positional path.
    let at = good.len() / 2;
    let mut bad = good.clone();
    bad[at] ^= 0x40;
    std::fs::write(&path, &bad).unwrap();
    let err = NpzReader::open(&path)
        .unwrap()
        .by_name::<f64, Ix1>("a")
        .unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    // ... and on the streamed path.
    assert!(NpzReader::new(Cursor::new(&bad))
        .unwrap()
        .by_name::<f64, Ix1>("a")
        .is_err());
    // Not a zip, cut short, empty.
    for bytes in [&b"\x93NUMPY not a zip"[..], &good[..good.len() - 10], &[]] {
        std::fs::write(&path, bytes).unwrap();
        let err = NpzReader::open(&path).unwrap_err();
        assert!(matches!(err, Error::Zip { .. } | Error::Io { .. }), "{err}");
    }
}

// --- properties --------------------------------------------------------------

fn arb_any() -> impl Strategy<Value = AnyArray> {
    let shape = prop::collection::vec(0usize..4, 0..4);
    (shape, 0u8..11, any::<u64>(), any::<bool>()).prop_map(|(shape, kind, seed, fortran)| {
        let dim = IxDyn(&shape).set_f(fortran);
        let n = |ix: ndarray::IxDyn| {
            let k: usize = ix
                .slice()
                .iter()
                .enumerate()
                .map(|(a, &i)| i << (a * 3))
                .sum();
            seed.wrapping_mul(k as u64 + 1).rotate_left(k as u32 % 64)
        };
        match kind {
            0 => ArrayD::from_shape_fn(dim, |ix| n(ix) % 2 == 0).into(),
            1 => ArrayD::from_shape_fn(dim, |ix| n(ix) as i8).into(),
            2 => ArrayD::from_shape_fn(dim, |ix| n(ix) as i16).into(),
            3 => ArrayD::from_shape_fn(dim, |ix| n(ix) as i32).into(),
            4 => ArrayD::from_shape_fn(dim, |ix| n(ix) as i64).into(),
            5 => ArrayD::from_shape_fn(dim, |ix| n(ix) as u8).into(),
            6 => ArrayD::from_shape_fn(dim, |ix| n(ix) as u16).into(),
            7 => ArrayD::from_shape_fn(dim, |ix| n(ix) as u32).into(),
            8 => ArrayD::from_shape_fn(dim, n).into(),
            9 => ArrayD::from_shape_fn(dim, |ix| (n(ix) % 1_000_000) as f32 / 8.0).into(),
            _ => ArrayD::from_shape_fn(dim, |ix| f64::from_bits(n(ix) >> 2)).into(),
        }
    })
}

fn archive_of(arrays: &[AnyArray], compression: Compression) -> Vec<u8> {
    let mut w = NpzWriter::new(Cursor::new(Vec::new()), compression);
    for (i, a) in arrays.iter().enumerate() {
        w.add_any(&format!("a{i}"), a).unwrap();
    }
    w.finish().unwrap().into_inner()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_npz_round_trips_every_dtype(arrays in prop::collection::vec(arb_any(), 0..5), deflate in any::<bool>()) {
        let compression = if deflate { Compression::Deflated } else { Compression::Stored };
        let bytes = archive_of(&arrays, compression);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.npz");
        std::fs::write(&path, &bytes).unwrap();
        let from_file = NpzReader::open(&path).unwrap().read_all().unwrap();
        let streamed = NpzReader::new(Cursor::new(&bytes)).unwrap().read_all().unwrap();
        prop_assert_eq!(&from_file, &streamed);
        for (i, ((name, got), want)) in from_file.iter().zip(&arrays).enumerate() {
            prop_assert_eq!(name, &format!("a{i}"));
            prop_assert_eq!(got, want);
        }
        prop_assert_eq!(from_file.len(), arrays.len());
    }

    #[test]
    fn prop_npy_any_round_trips(a in arb_any()) {
        let mut bytes = Vec::new();
        match &a {
            AnyArray::F64(x) => npy::to_writer(&mut bytes, x).unwrap(),
            AnyArray::Bool(x) => npy::to_writer(&mut bytes, x).unwrap(),
            AnyArray::U64(x) => npy::to_writer(&mut bytes, x).unwrap(),
            _ => {
                let archive = archive_of(std::slice::from_ref(&a), Compression::Stored);
                let mut npz = NpzReader::new(Cursor::new(archive)).unwrap();
                prop_assert_eq!(npz.read_any("a0").unwrap(), a);
                return Ok(());
            }
        };
        prop_assert_eq!(npy::from_reader_any(&mut &bytes[..]).unwrap(), a);
    }

    #[test]
    fn prop_npz_readers_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(mut npz) = NpzReader::new(Cursor::new(&bytes)) {
            let _ = npz.read_all();
        }
    }

    #[test]
    fn prop_npz_readers_never_panic_on_damaged_archives(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        deflate in any::<bool>(),
    ) {
        let arrays = vec![
            AnyArray::from(Array2::from_shape_fn((4, 5), |(i, j)| (i * 5 + j) as f64)),
            AnyArray::from(array![true, false, true]),
        ];
        let compression = if deflate { Compression::Deflated } else { Compression::Stored };
        let mut bytes = archive_of(&arrays, compression);
        for (at, x) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x | 1;
        }
        let keep = bytes.len() - cut.index(bytes.len() / 4 + 1);
        bytes.truncate(keep);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.npz");
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(mut npz) = NpzReader::open(&path) {
            let names = npz.names();
            for name in names {
                let _ = npz.read_any(&name);
                // SAFETY: this test alone writes the file, and not while mapped.
                if let Ok(v) = unsafe { npz.view::<f64, IxDyn>(&name) } {
                    let _ = v.view().sum();
                }
            }
        }
        if let Ok(mut npz) = NpzReader::new(Cursor::new(&bytes)) {
            let _ = npz.read_all();
        }
    }
}
